/* Tests for the store's sorted-set, hash-counter and capped-set operations (the last block of
 * gateway/store.h): one table of steps run against the in-process store and a real
 * redis-server, then two Redis connections claiming from one queue (no member claimed twice). */
#include "tests/unit/check.h"
#include "tests/unit/store_util.h"
#include "gateway/err.h"
#include "gateway/store.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

/* The value of field in a reply of field, value pairs, or NULL. */
static const char *field(const struct result *r, const char *name)
{
    for (size_t i = 0; i + 1 < r->n && i + 1 < RESULT_ITEMS; i += 2)
        if (strcmp(r->items[i], name) == 0)
            return r->items[i + 1];
    return NULL;
}

/* The members of a reply joined with spaces. */
static const char *joined(const struct result *r)
{
    static char buf[RESULT_ITEMS * 65];
    buf[0] = '\0';
    for (size_t i = 0; i < r->n && i < RESULT_ITEMS; i++) {
        if (i)
            strcat(buf, " ");
        strcat(buf, r->items[i]);
    }
    return buf;
}

enum step_op { S_ZADD, S_ZREM, S_ZREM_IF, S_ZCLAIM, S_HINCRBY, S_HTAKE, S_HSET, S_SADD_CAPPED };

/* One step: the operation, its arguments, and what must come back. */
struct step {
    enum step_op op;
    const char *key, *member;
    long long score, score2; /* zadd/zrem_if: score; zclaim: max, lease; hincrby: by */
    int mode;
    size_t count; /* zadd: cap; zclaim: limit; sadd_capped: max */
    int want_err;
    long long want_int;
    const char *want_items; /* zclaim: the members in order; NULL: not checked */
};

static const struct step steps[] = {
    /* zadd modes and the cap */
    {S_ZADD, "z", "a", 100, 0, GW_ZADD_SET, 0, 0, 1, NULL},
    {S_ZADD, "z", "b", 50, 0, GW_ZADD_SET, 0, 0, 1, NULL},
    {S_ZADD, "z", "a", 200, 0, GW_ZADD_NX, 0, 0, 0, NULL},
    {S_ZADD, "z", "a", 150, 0, GW_ZADD_LT, 0, 0, 0, NULL},
    {S_ZADD, "z", "a", 80, 0, GW_ZADD_LT, 0, 0, 1, NULL},
    {S_ZADD, "z", "c", 10, 0, GW_ZADD_SET, 2, GW_ELIMIT, 0, NULL},
    {S_ZADD, "z", "a", 90, 0, GW_ZADD_SET, 2, 0, 1, NULL},
    {S_ZADD, "z", "new", 5, 0, GW_ZADD_LT, 0, 0, 1, NULL},
    {S_ZREM, "z", "new", 0, 0, 0, 0, 0, 1, NULL},
    /* claims: due members lowest first, leased; integer = the next score left */
    {S_ZCLAIM, "z", NULL, 85, 1000, 0, 10, 0, 90, "b"},
    {S_ZCLAIM, "z", NULL, 95, 1000, 0, 10, 0, 1000, "a"},
    {S_ZCLAIM, "z", NULL, 95, 1000, 0, 10, 0, 1000, ""},
    /* compare-and-delete against the lease */
    {S_ZREM_IF, "z", "a", 999, 0, 0, 0, 0, 0, NULL},
    {S_ZREM_IF, "z", "a", 1000, 0, 0, 0, 0, 1, NULL},
    {S_ZREM, "z", "b", 0, 0, 0, 0, 0, 1, NULL},
    {S_ZREM, "z", "b", 0, 0, 0, 0, 0, 0, NULL},
    {S_ZCLAIM, "z", NULL, 5000, 9000, 0, 10, 0, -1, ""},
    /* order and limit */
    {S_ZADD, "o", "m5", 5, 0, GW_ZADD_SET, 0, 0, 1, NULL},
    {S_ZADD, "o", "m3", 3, 0, GW_ZADD_SET, 0, 0, 1, NULL},
    {S_ZADD, "o", "m4", 4, 0, GW_ZADD_SET, 0, 0, 1, NULL},
    {S_ZADD, "o", "m1", 1, 0, GW_ZADD_SET, 0, 0, 1, NULL},
    {S_ZADD, "o", "m2", 2, 0, GW_ZADD_SET, 0, 0, 1, NULL},
    {S_ZADD, "o", "m2", 20, 0, GW_ZADD_SET, 0, 0, 1, NULL},
    {S_ZADD, "o", "m2", 2, 0, GW_ZADD_SET, 0, 0, 1, NULL},
    {S_ZCLAIM, "o", NULL, 10, 100, 0, 3, 0, 4, "m1 m2 m3"},
    {S_ZCLAIM, "o", NULL, 10, 100, 0, 3, 0, 100, "m4 m5"},
    /* hash counters */
    {S_HINCRBY, "h", "pending", 1, 0, 0, 0, 0, 1, NULL},
    {S_HINCRBY, "h", "pending", 2, 0, 0, 0, 0, 3, NULL},
    {S_HINCRBY, "h", "pending", -3, 0, 0, 0, 0, 0, NULL},
    {S_HSET, "h", "word", 0, 0, 0, 0, 0, 1, NULL},
    {S_HINCRBY, "h", "word", 1, 0, 0, 0, GW_EINVAL, 0, NULL},
    {S_HTAKE, "h", NULL, 0, 0, 0, 0, 0, 0, NULL},
    {S_HTAKE, "none", NULL, 0, 0, 0, 0, 0, 0, NULL},
    /* capped sets */
    {S_SADD_CAPPED, "s", "a", 0, 0, 0, 2, 0, 1, NULL},
    {S_SADD_CAPPED, "s", "b", 0, 0, 0, 2, 0, 1, NULL},
    {S_SADD_CAPPED, "s", "c", 0, 0, 0, 2, GW_ELIMIT, 0, NULL},
    {S_SADD_CAPPED, "s", "a", 0, 0, 0, 2, 0, 0, NULL},
    {S_SADD_CAPPED, "s", "c", 0, 0, 0, 0, 0, 1, NULL},
    /* a sorted-set op on a hash is refused */
    {S_ZADD, "h", "x", 1, 0, GW_ZADD_SET, 0, GW_EINVAL, 0, NULL},
};

static void run_step(struct gw_store *st, const char *name, size_t i, const struct step *s)
{
    struct result res;
    char key[64];
    snprintf(key, sizeof key, "tp:%s", s->key);
    struct gw_store_str m = gw_store_cstr(s->member ? s->member : "");
    struct gw_store_str tf = gw_store_cstr("t"), tv = gw_store_cstr("x");
    switch (s->op) {
    case S_ZADD:
        RUN(gw_store_zadd(st, key, m, s->score, (enum gw_store_zadd_mode)s->mode, s->count,
                          on_result, &res));
        break;
    case S_ZREM:
        RUN(gw_store_zrem(st, key, m, on_result, &res));
        break;
    case S_ZREM_IF:
        RUN(gw_store_zrem_if(st, key, m, s->score, on_result, &res));
        break;
    case S_ZCLAIM:
        RUN(gw_store_zclaim(st, key, s->score, s->count, s->score2, on_result, &res));
        break;
    case S_HINCRBY:
        RUN(gw_store_hincrby(st, key, m, s->score, 1, &tf, &tv, 0, on_result, &res));
        if (res.err == 0)
            CHECK(field(&res, "t") && strcmp(field(&res, "t"), "x") == 0 &&
                      field(&res, s->member) && atoll(field(&res, s->member)) == s->want_int,
                  "%s step %zu: expected the hash after the update in the reply", name, i);
        break;
    case S_HSET:
        RUN(gw_store_hset(st, key, 1, &m, &tf, 0, on_result, &res));
        break;
    case S_HTAKE: {
        struct gw_store_str f = gw_store_cstr("pending"), v = gw_store_cstr("0");
        RUN(gw_store_htake(st, key, 1, &f, &v, on_result, &res));
        bool exists = strcmp(s->key, "h") == 0;
        CHECK(exists ? (field(&res, "pending") && strcmp(field(&res, "pending"), "0") == 0 &&
                        field(&res, "word") != NULL)
                     : res.n == 0,
              "%s step %zu: htake expected the old hash (%s), got %zu items", name, i,
              exists ? "pending=0 word=t" : "nothing", res.n);
        RUN(gw_store_hgetall(st, key, on_result, &res));
        CHECK(exists ? field(&res, "pending") && strcmp(field(&res, "pending"), "0") == 0
                     : res.n == 0,
              "%s step %zu: htake expected %s after", name, i,
              exists ? "pending=0" : "the key still missing");
        return;
    }
    case S_SADD_CAPPED:
        RUN(gw_store_sadd_capped(st, key, m, s->count, 0, on_result, &res));
        break;
    }
    CHECK(res.done, "%s step %zu: expected a reply", name, i);
    CHECK(res.err == s->want_err, "%s step %zu: expected err %d, got %d", name, i, s->want_err,
          res.err);
    if (s->want_err == 0)
        CHECK(res.integer == s->want_int, "%s step %zu: expected integer %lld, got %lld", name, i,
              s->want_int, res.integer);
    if (s->want_items)
        CHECK(strcmp(joined(&res), s->want_items) == 0, "%s step %zu: expected [%s], got [%s]",
              name, i, s->want_items, joined(&res));
}

static void operations(struct gw_store *st, const char *name)
{
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
        run_step(st, name, i, &steps[i]);

    /* TTLs: hincrby and sadd_capped set them. */
    struct result res;
    struct gw_store_str f = gw_store_cstr("n");
    RUN(gw_store_hincrby(st, "tp:ttl", f, 1, 0, NULL, NULL, 100, on_result, &res));
    RUN(gw_store_sadd_capped(st, "tp:sttl", f, 5, 100, on_result, &res));
    sleep_loop(300);
    RUN(gw_store_hgetall(st, "tp:ttl", on_result, &res));
    CHECK(res.n == 0, "%s hincrby ttl: expected the hash gone, got %zu items", name, res.n);
    RUN(gw_store_smembers(st, "tp:sttl", on_result, &res));
    CHECK(res.n == 0, "%s sadd_capped ttl: expected the set gone, got %zu", name, res.n);

    /* A large queue: claims come out in score order across many members. */
    for (int i = 0; i < 300; i++) {
        char mem[16];
        snprintf(mem, sizeof mem, "q%03d", (i * 7) % 300);
        RUN(gw_store_zadd(st, "tp:big", gw_store_cstr(mem), (i * 7) % 300, GW_ZADD_SET, 0,
                          on_result, &res));
    }
    int expect = 0;
    bool ordered = true;
    for (;;) {
        RUN(gw_store_zclaim(st, "tp:big", 299, 32, 10000, on_result, &res));
        if (res.n == 0)
            break;
        for (size_t i = 0; i < res.n; i++) {
            char want[16];
            snprintf(want, sizeof want, "q%03d", expect++);
            ordered = ordered && strcmp(want, res.items[i]) == 0;
        }
    }
    CHECK(ordered && expect == 300, "%s big queue: expected 300 members in order, got %d%s", name,
          expect, ordered ? "" : " (out of order)");
    CHECK(res.integer == 10000, "%s big queue: expected the next score to be the lease, got %lld",
          name, res.integer);
    RUN(gw_store_del(st, "tp:big", on_result, &res));
}

/* Two stores on one Redis claim from one queue in turn: every member comes out exactly once. */
static void two_claimers(const char *url)
{
    struct gw_store *a, *b;
    gw_store_open(&loop, url, 1000, &a);
    gw_store_open(&loop, url, 1000, &b);
    for (int i = 0; i < 100 && !(gw_store_available(a) && gw_store_available(b)); i++)
        sleep_loop(50);
    struct result res;
    for (int i = 0; i < 100; i++) {
        char mem[16];
        snprintf(mem, sizeof mem, "c%02d", i);
        RUN(gw_store_zadd(a, "tp:shared", gw_store_cstr(mem), i, GW_ZADD_SET, 0, on_result, &res));
    }
    struct result ra, rb;
    int seen[100] = {0}, total = 0;
    for (int round = 0; round < 20; round++) {
        memset(&ra, 0, sizeof ra);
        memset(&rb, 0, sizeof rb);
        /* Both claims are in flight at once on separate connections. */
        gw_store_zclaim(a, "tp:shared", 1000, 7, 5000, on_result, &ra);
        gw_store_zclaim(b, "tp:shared", 1000, 7, 5000, on_result, &rb);
        wait_for(&ra, 3000);
        wait_for(&rb, 3000);
        for (size_t i = 0; i < ra.n; i++, total++)
            seen[atoi(ra.items[i] + 1)]++;
        for (size_t i = 0; i < rb.n; i++, total++)
            seen[atoi(rb.items[i] + 1)]++;
    }
    bool once = true;
    for (int i = 0; i < 100; i++)
        once = once && seen[i] == 1;
    CHECK(once && total == 100, "two claimers: expected each of 100 members once, got %d claims%s",
          total, once ? "" : " with duplicates or gaps");
    RUN(gw_store_del(a, "tp:shared", on_result, &res));
    gw_store_close(a, NULL, NULL);
    gw_store_close(b, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
}

int main(void)
{
    uv_loop_init(&loop);
    struct gw_store *st;
    CHECK(gw_store_open(&loop, NULL, 500, &st) == 0, "expected the memory store");
    operations(st, "memory");
    close_store(st);

    int port;
    char url[64];
    pid_t redis = start_own_redis(4, 1000, &st, &port, url, sizeof url);
    CHECK(redis > 0, "expected a redis-server of our own to come up");
    if (redis <= 0)
        return CHECK_DONE();
    operations(st, "redis");
    close_store(st);
    two_claimers(url);

    kill(redis, SIGTERM);
    waitpid(redis, NULL, 0);
    CHECK(uv_loop_close(&loop) == 0, "expected every handle closed");
    return CHECK_DONE();
}
