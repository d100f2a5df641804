/* Tests for web/bosh_window.c, the rid window of XEP-0124 §14: tables of request sequences with
 * the class each rid must get, kept answers, acks and reports. */
#include "tests/unit/check.h"
#include "gateway/err.h"
#include "web/bosh_window.h"

#include <string.h>

/* ---- the window ---- */

enum op { ADD_HELD, ADD_AHEAD, TAKE_NEXT, ANSWER_OLDEST, ANSWER_OLDEST_NOKEEP, ACK, CLASSIFY };

struct step {
    enum op op;
    uint64_t rid;                  /* ADD_*, ACK, CLASSIFY; TAKE_NEXT: the rid expected (0: none) */
    enum gw_bosh_rid_class expect; /* CLASSIFY */
};

struct window_case {
    const char *name;
    unsigned size, keep;
    struct step steps[16];
    size_t nsteps;
};

#define C(r, e)                                                                                    \
    {                                                                                              \
        CLASSIFY, r, GW_BOSH_RID_##e                                                               \
    }

static const struct window_case window_cases[] = {
    {"fresh window after creation rid 100",
     2,
     2,
     {{ADD_HELD, 100, 0},
      C(100, PENDING),
      C(101, NEXT),
      C(102, AHEAD),
      C(103, OUTSIDE),
      C(99, OUTSIDE),
      C(1, OUTSIDE),
      C(9007199254740991ULL, OUTSIDE)},
     8},
    {"answered creation is replayed, then falls out of the kept answers",
     2,
     2,
     {{ADD_HELD, 100, 0},
      {ANSWER_OLDEST, 0, 0},
      C(100, REPLAY),
      {ADD_HELD, 101, 0},
      {ANSWER_OLDEST, 0, 0},
      {ADD_HELD, 102, 0},
      {ANSWER_OLDEST, 0, 0},
      C(100, OUTSIDE),
      C(101, REPLAY),
      C(102, REPLAY),
      C(103, NEXT)},
     11},
    {"out of order: 102 waits for 101, then both are taken in order",
     2,
     2,
     {{ADD_HELD, 100, 0},
      {ADD_AHEAD, 102, 0},
      C(102, PENDING),
      C(101, NEXT),
      {ADD_HELD, 101, 0},
      {TAKE_NEXT, 102, 0},
      {TAKE_NEXT, 0, 0},
      C(103, NEXT),
      C(104, AHEAD),
      C(105, OUTSIDE)},
     10},
    {"a repeat of a held request is pending, not replayed",
     2,
     2,
     {{ADD_HELD, 100, 0},
      {ADD_HELD, 101, 0},
      {ANSWER_OLDEST, 0, 0},
      C(100, REPLAY),
      C(101, PENDING),
      C(102, NEXT)},
     6},
    {"answers without a copy (pause) cannot be replayed",
     2,
     2,
     {{ADD_HELD, 100, 0}, {ANSWER_OLDEST_NOKEEP, 0, 0}, C(100, OUTSIDE), C(101, NEXT)},
     4},
    {"client acks drop the kept copies up to the ack",
     2,
     8,
     {{ADD_HELD, 100, 0},
      {ANSWER_OLDEST, 0, 0},
      {ADD_HELD, 101, 0},
      {ANSWER_OLDEST, 0, 0},
      {ADD_HELD, 102, 0},
      {ANSWER_OLDEST, 0, 0},
      {ACK, 101, 0},
      C(100, OUTSIDE),
      C(101, OUTSIDE),
      C(102, REPLAY)},
     10},
    {"a wider window accepts more rids ahead",
     4,
     4,
     {{ADD_HELD, 10, 0}, C(11, NEXT), C(12, AHEAD), C(13, AHEAD), C(14, AHEAD), C(15, OUTSIDE)},
     6},
};

static void run_window_case(const struct window_case *c)
{
    struct gw_bosh_window w;
    gw_bosh_window_init(&w, c->steps[0].rid, c->size, c->keep);
    int dummy;
    for (size_t i = 0; i < c->nsteps; i++) {
        const struct step *s = &c->steps[i];
        struct gw_bosh_slot *slot = NULL;
        switch (s->op) {
        case ADD_HELD:
            CHECK(gw_bosh_window_add(&w, s->rid, GW_BOSH_HELD, &dummy, NULL) != NULL,
                  "%s: step %zu: expected to add held %llu", c->name, i,
                  (unsigned long long)s->rid);
            break;
        case ADD_AHEAD:
            CHECK(gw_bosh_window_add(&w, s->rid, GW_BOSH_AHEAD, &dummy, NULL) != NULL,
                  "%s: step %zu: expected to add ahead %llu", c->name, i,
                  (unsigned long long)s->rid);
            break;
        case TAKE_NEXT:
            slot = gw_bosh_window_take_next(&w);
            if (s->rid)
                CHECK(slot && slot->rid == s->rid, "%s: step %zu: expected to take %llu, got %llu",
                      c->name, i, (unsigned long long)s->rid,
                      (unsigned long long)(slot ? slot->rid : 0));
            else
                CHECK(slot == NULL, "%s: step %zu: expected nothing to take", c->name, i);
            break;
        case ANSWER_OLDEST:
        case ANSWER_OLDEST_NOKEEP:
            slot = gw_bosh_window_oldest_held(&w);
            CHECK(slot != NULL, "%s: step %zu: expected a held slot", c->name, i);
            if (slot)
                gw_bosh_window_answered(&w, slot, "<body/>", 7, s->op == ANSWER_OLDEST, 1000);
            break;
        case ACK:
            gw_bosh_window_ack(&w, s->rid);
            break;
        case CLASSIFY: {
            enum gw_bosh_rid_class got = gw_bosh_window_classify(&w, s->rid, &slot);
            CHECK(got == s->expect, "%s: step %zu: rid %llu: expected class %d, got %d", c->name, i,
                  (unsigned long long)s->rid, s->expect, got);
            if (got == GW_BOSH_RID_REPLAY)
                CHECK(slot && slot->len == 7 && memcmp(slot->response, "<body/>", 7) == 0,
                      "%s: step %zu: expected the kept response", c->name, i);
            break;
        }
        }
    }
    gw_bosh_window_clear(&w);
}

static void test_report(void)
{
    struct gw_bosh_window w;
    int dummy;
    gw_bosh_window_init(&w, 50, 2, 8);
    gw_bosh_window_add(&w, 50, GW_BOSH_HELD, &dummy, NULL);
    gw_bosh_window_answered(&w, gw_bosh_window_oldest_held(&w), "a", 1, true, 1000);
    gw_bosh_window_add(&w, 51, GW_BOSH_HELD, &dummy, NULL);
    gw_bosh_window_answered(&w, gw_bosh_window_oldest_held(&w), "b", 1, true, 2000);
    uint64_t rid = 0, age = 0;
    CHECK(!gw_bosh_window_report(&w, 50, 2500, 1000, &rid, &age),
          "expected no report for a response sent 500 ms ago");
    CHECK(gw_bosh_window_report(&w, 50, 4000, 1000, &rid, &age) && rid == 51 && age == 2000,
          "expected report 51 after 2000 ms, got %llu after %llu", (unsigned long long)rid,
          (unsigned long long)age);
    CHECK(!gw_bosh_window_report(&w, 51, 4000, 1000, &rid, &age),
          "expected no report when nothing after the ack was answered");
    gw_bosh_window_clear(&w);
}

int main(void)
{
    for (size_t i = 0; i < sizeof window_cases / sizeof window_cases[0]; i++)
        run_window_case(&window_cases[i]);
    test_report();
    return CHECK_DONE();
}
