/* Tests for gateway/map.c's counters (gw_map_tally): counts per key, removal at zero. */
#include "tests/unit/check.h"
#include "gateway/map.h"

int main(void)
{
    struct gw_map *m = gw_map_new();
    CHECK(gw_map_tally(m, "127.0.0.1") == 0, "an absent key counts 0");
    gw_map_tally_add(m, "127.0.0.1", 1);
    gw_map_tally_add(m, "127.0.0.1", 1);
    gw_map_tally_add(m, "::1", 1);
    CHECK(gw_map_tally(m, "127.0.0.1") == 2, "expected 2, got %zu", gw_map_tally(m, "127.0.0.1"));
    CHECK(gw_map_tally(m, "::1") == 1, "expected 1, got %zu", gw_map_tally(m, "::1"));
    gw_map_tally_add(m, "127.0.0.1", -1);
    gw_map_tally_add(m, "::1", -1);
    CHECK(gw_map_tally(m, "127.0.0.1") == 1, "expected 1, got %zu", gw_map_tally(m, "127.0.0.1"));
    CHECK(gw_map_count(m) == 1, "a count at 0 is removed: %zu keys", gw_map_count(m));
    gw_map_tally_add(m, "127.0.0.1", -1);
    CHECK(gw_map_count(m) == 0, "empty again: %zu keys", gw_map_count(m));
    gw_map_free(m);
    return CHECK_DONE();
}
