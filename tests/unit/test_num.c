/* Tests for gateway/num.c: every width of number against snprintf's "%" PRIu64. */
#include "tests/unit/check.h"
#include "gateway/num.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
    static const uint64_t cases[] = {
        0, 1, 9, 10, 99, 100, 4294967295, 4294967296, 1000000000000, UINT64_MAX - 1, UINT64_MAX};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char want[32], got[GW_U64_DEC_MAX + 1];
        memset(got, 'x', sizeof got);
        int wn = snprintf(want, sizeof want, "%" PRIu64, cases[i]);
        size_t n = gw_u64_dec(got, cases[i]);
        CHECK(n == (size_t)wn && strcmp(got, want) == 0, "%s: expected %s (%d) got %s (%zu)", want,
              want, wn, got, n);
    }
    /* Every power of ten and the number before it, so each digit count is met. */
    uint64_t p = 1;
    for (int d = 0; d < 20; d++, p *= 10) {
        char want[32], got[GW_U64_DEC_MAX];
        snprintf(want, sizeof want, "%" PRIu64, p);
        gw_u64_dec(got, p);
        CHECK(strcmp(got, want) == 0, "10^%d: expected %s got %s", d, want, got);
        snprintf(want, sizeof want, "%" PRIu64, p - 1);
        gw_u64_dec(got, p - 1);
        CHECK(strcmp(got, want) == 0, "10^%d - 1: expected %s got %s", d, want, got);
    }
    return CHECK_DONE();
}
