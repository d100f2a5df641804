/* Decimal formatting of integers without printf (glibc's snprintf costs some 500 instructions
 * per number; a persist of a JSON session writes a dozen). */
#include "gateway/num.h"

size_t gw_u64_dec(char *out, uint64_t v)
{
    char tmp[GW_U64_DEC_MAX];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    out[n] = '\0';
    return n;
}
