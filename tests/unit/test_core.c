/* Tests for gateway/core.h: which batch lists a read writes early, and the read's clock. */
#include "tests/unit/check.h"
#include "gateway/core.h"

#include <stdint.h>

struct fake_list {
    struct gw_batch_list l; /* first: the callback gets back to the fake from it */
    unsigned writes;
    uint64_t seen_read_ns; /* read_ns as the write saw it */
};

static struct gw_core *the_core;

static void write_early(struct gw_batch_list *l)
{
    struct fake_list *f = (struct fake_list *)l;
    f->writes++;
    f->seen_read_ns = the_core->read_ns;
    l->since = 0; /* as the real ones do once their list is empty */
}

#define MS 1000000ull

int main(void)
{
    struct gw_core core = {0};
    the_core = &core;
    struct fake_list old = {{0, write_early}, 0, 0}, fresh = old, empty = old, unlisted = old;
    gw_core_batch_list_add(&core, &old.l);
    gw_core_batch_list_add(&core, &fresh.l);

    /* old began 2 ms ago, fresh just now: a read writes old, whichever side began it */
    uint64_t t0 = uv_hrtime();
    old.l.since = t0 - 2 * MS;
    fresh.l.since = t0;
    uint64_t outer = gw_core_read_begin(&core);
    CHECK(outer == 0, "outer read stamp: expected 0 got %llu", (unsigned long long)outer);
    CHECK(core.read_ns >= t0, "read stamp: expected >= %llu got %llu", (unsigned long long)t0,
          (unsigned long long)core.read_ns);
    CHECK(old.writes == 1, "overdue list: expected 1 early write got %u", old.writes);
    CHECK(old.seen_read_ns == core.read_ns, "the early write sees the new read's stamp");
    CHECK(fresh.writes == 0, "list begun by this iteration's read: expected no write got %u",
          fresh.writes);

    /* A nested read keeps the outer stamp for its end; a list begun outside a read (since 0)
     * is never written early. */
    uint64_t mine = core.read_ns;
    empty.l.since = 0;
    gw_core_batch_list_remove(&core, &fresh.l);
    gw_core_batch_list_add(&core, &empty.l);
    uint64_t inner = gw_core_read_begin(&core);
    CHECK(inner == mine, "nested read: expected outer stamp %llu got %llu",
          (unsigned long long)mine, (unsigned long long)inner);
    CHECK(empty.writes == 0, "list without a read stamp: expected no write got %u", empty.writes);
    gw_core_read_end(&core, inner);
    CHECK(core.read_ns == mine, "the nested read's end restores the outer stamp");
    gw_core_read_end(&core, outer);
    CHECK(core.read_ns == 0, "outside a read: expected stamp 0 got %llu",
          (unsigned long long)core.read_ns);

    /* Outside a read nothing is written early, however old the list; a removed list never is. */
    old.l.since = uv_hrtime() - 10 * MS;
    gw_core_batch_check(&core, &old.l);
    CHECK(old.writes == 1, "outside a read: expected no further write got %u", old.writes);
    gw_core_batch_list_remove(&core, &old.l);
    unlisted.l.since = uv_hrtime() - 10 * MS;
    outer = gw_core_read_begin(&core);
    CHECK(old.writes == 1 && unlisted.writes == 0, "removed lists: expected no write got %u, %u",
          old.writes, unlisted.writes);

    /* Within a read, the check a send makes writes only what has waited GW_BATCH_WAIT_NS. */
    fresh.l.since = core.read_ns - GW_BATCH_WAIT_NS;
    gw_core_batch_check(&core, &fresh.l);
    CHECK(fresh.writes == 0, "exactly GW_BATCH_WAIT_NS: expected no write got %u", fresh.writes);
    fresh.l.since = core.read_ns - GW_BATCH_WAIT_NS - 1;
    gw_core_batch_check(&core, &fresh.l);
    CHECK(fresh.writes == 1, "past GW_BATCH_WAIT_NS: expected 1 write got %u", fresh.writes);
    gw_core_read_end(&core, outer);

    /* Freed slots are taken again: as many lists as GW_BATCH_LISTS fit. */
    gw_core_batch_list_remove(&core, &empty.l);
    struct fake_list more[GW_BATCH_LISTS];
    for (unsigned i = 0; i < GW_BATCH_LISTS; i++) {
        more[i] = (struct fake_list){{uv_hrtime() - 10 * MS, write_early}, 0, 0};
        gw_core_batch_list_add(&core, &more[i].l);
    }
    outer = gw_core_read_begin(&core);
    for (unsigned i = 0; i < GW_BATCH_LISTS; i++)
        CHECK(more[i].writes == 1, "list %u: expected 1 write got %u", i, more[i].writes);
    gw_core_read_end(&core, outer);
    return CHECK_DONE();
}
