/* Tests for gateway/store*.c: the same table of operations against the in-process store and a
 * real redis-server started here, then Redis faults: a stopped server (commands time out and the
 * loop keeps running), a killed one (commands fail at once), and a restart (reconnect and
 * re-subscribe). */
#include "tests/unit/check.h"
#include "tests/unit/store_util.h"
#include "gateway/err.h"
#include "gateway/store.h"

#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static bool has(const struct result *r, const char *item)
{
    for (size_t i = 0; i < r->n && i < RESULT_ITEMS; i++)
        if (strcmp(r->items[i], item) == 0)
            return true;
    return false;
}

struct msgs {
    int count;
    char last[64];
};

static void on_msg(void *arg, const char *channel, const char *msg, size_t len)
{
    struct msgs *m = arg;
    (void)channel;
    m->count++;
    snprintf(m->last, sizeof m->last, "%.*s", (int)len, msg);
}

static void operations(struct gw_store *st, const char *name)
{
    struct result res;
    struct gw_store_str f[] = {gw_store_cstr("a"), gw_store_cstr("b")};
    struct gw_store_str v[] = {gw_store_cstr("1"), {"x\0y", 3}};
    RUN(gw_store_hset(st, "t:h", 2, f, v, 0, on_result, &res));
    CHECK(res.done && res.err == 0, "%s hset: expected ok, got %d", name, res.err);
    RUN(gw_store_hgetall(st, "t:h", on_result, &res));
    CHECK(res.err == 0 && res.n == 4 && has(&res, "a") && has(&res, "1"),
          "%s hgetall: expected 4 items, got %zu", name, res.n);
    RUN(gw_store_hgetall(st, "t:none", on_result, &res));
    CHECK(res.err == 0 && res.n == 0, "%s hgetall missing: expected 0 items, got %zu", name, res.n);

    RUN(gw_store_set(st, "t:s", gw_store_cstr("hello"), 0, on_result, &res));
    RUN(gw_store_get(st, "t:s", on_result, &res));
    CHECK(res.n == 1 && strcmp(res.items[0], "hello") == 0, "%s get: expected hello", name);
    RUN(gw_store_get(st, "t:none", on_result, &res));
    CHECK(res.err == 0 && res.n == 0, "%s get missing: expected nothing, got %zu", name, res.n);

    RUN(gw_store_sadd(st, "t:set", gw_store_cstr("m1"), 0, on_result, &res));
    CHECK(res.integer == 1, "%s sadd: expected 1 added, got %lld", name, res.integer);
    RUN(gw_store_sadd(st, "t:set", gw_store_cstr("m1"), 0, on_result, &res));
    CHECK(res.integer == 0, "%s sadd again: expected 0 added, got %lld", name, res.integer);
    RUN(gw_store_sadd(st, "t:set", gw_store_cstr("m2"), 0, on_result, &res));
    RUN(gw_store_smembers(st, "t:set", on_result, &res));
    CHECK(res.n == 2 && has(&res, "m1") && has(&res, "m2"), "%s smembers: expected m1 m2", name);
    RUN(gw_store_srem(st, "t:set", gw_store_cstr("m1"), on_result, &res));
    CHECK(res.integer == 1, "%s srem: expected 1, got %lld", name, res.integer);

    for (int i = 0; i < 3; i++) {
        char item[8];
        snprintf(item, sizeof item, "i%d", i);
        RUN(gw_store_rpush_capped(st, "t:l", gw_store_cstr(item), 3, 0, on_result, &res));
        CHECK(res.err == 0 && res.integer == i + 1, "%s rpush %d: expected length %d, got %lld",
              name, i, i + 1, res.integer);
    }
    RUN(gw_store_rpush_capped(st, "t:l", gw_store_cstr("over"), 3, 0, on_result, &res));
    CHECK(res.err == GW_ELIMIT, "%s rpush over the cap: expected GW_ELIMIT, got %d", name, res.err);
    RUN(gw_store_lrange(st, "t:l", 0, -1, on_result, &res));
    CHECK(res.n == 3 && strcmp(res.items[0], "i0") == 0 && strcmp(res.items[2], "i2") == 0,
          "%s lrange: expected i0..i2 in order, got %zu", name, res.n);
    RUN(gw_store_lpop_n(st, "t:l", 2, on_result, &res));
    CHECK(res.integer == 2, "%s lpop_n: expected 2, got %lld", name, res.integer);
    RUN(gw_store_lrange(st, "t:l", 0, -1, on_result, &res));
    CHECK(res.n == 1 && strcmp(res.items[0], "i2") == 0, "%s lrange after pop: expected i2", name);

    RUN(gw_store_incr(st, "t:c", 0, on_result, &res));
    RUN(gw_store_incr(st, "t:c", 0, on_result, &res));
    CHECK(res.integer == 2, "%s incr: expected 2, got %lld", name, res.integer);

    /* TTLs. */
    RUN(gw_store_set(st, "t:ttl", gw_store_cstr("v"), 100, on_result, &res));
    RUN(gw_store_sadd(st, "t:sttl", gw_store_cstr("m"), 100, on_result, &res));
    RUN(gw_store_incr(st, "t:cttl", 100, on_result, &res));
    RUN(gw_store_get(st, "t:ttl", on_result, &res));
    CHECK(res.n == 1, "%s ttl: expected the key before expiry", name);
    sleep_loop(250);
    RUN(gw_store_get(st, "t:ttl", on_result, &res));
    CHECK(res.n == 0, "%s ttl: expected the key gone after expiry", name);
    RUN(gw_store_smembers(st, "t:sttl", on_result, &res));
    CHECK(res.n == 0, "%s ttl: expected the set gone after expiry", name);
    RUN(gw_store_incr(st, "t:cttl", 100, on_result, &res));
    CHECK(res.integer == 1, "%s incr ttl: expected a new counter after expiry, got %lld", name,
          res.integer);

    RUN(gw_store_del(st, "t:h", on_result, &res));
    CHECK(res.integer == 1, "%s del: expected 1, got %lld", name, res.integer);

    /* Guarded writes apply only while the guard field holds the expected value. */
    struct gw_store_str of[] = {gw_store_cstr("owner"), gw_store_cstr("n")};
    struct gw_store_str ov[] = {gw_store_cstr("node-a"), gw_store_cstr("1")};
    struct gw_store_str two = gw_store_cstr("2"), node_b = gw_store_cstr("node-b");
    struct gw_store_guard ga = {"t:g", "owner", "node-a"}, gb = {"t:g", "owner", "node-b"};
    struct gw_store_guard nofield = {"t:g", "nofield", ""}, nokey = {"t:nokey", "owner", ""};
    RUN(gw_store_hset(st, "t:g", 2, of, ov, 0, on_result, &res));
    RUN(gw_store_hset_if(st, &gb, "t:g", 1, &of[1], &two, 0, on_result, &res));
    CHECK(res.done && res.err == GW_ESTALE, "%s hset_if wrong owner: expected GW_ESTALE, got %d",
          name, res.err);
    RUN(gw_store_hset_if(st, &ga, "t:g", 1, &of[1], &two, 0, on_result, &res));
    CHECK(res.err == 0, "%s hset_if owner: expected ok, got %d", name, res.err);
    RUN(gw_store_hset_if(st, &ga, "t:g", 1, &of[0], &node_b, 0, on_result, &res));
    CHECK(res.err == 0, "%s cas a->b: expected ok, got %d", name, res.err);
    RUN(gw_store_hset_if(st, &ga, "t:g", 1, &of[0], &node_b, 0, on_result, &res));
    CHECK(res.err == GW_ESTALE, "%s cas a->b again: expected GW_ESTALE, got %d", name, res.err);
    RUN(gw_store_hgetall(st, "t:g", on_result, &res));
    CHECK(res.n == 4 && has(&res, "node-b") && has(&res, "2") && !has(&res, "node-a"),
          "%s after cas: expected owner node-b and n 2, got %zu items", name, res.n);
    RUN(gw_store_hset_if(st, &nofield, "t:g", 1, &of[1], &ov[1], 0, on_result, &res));
    CHECK(res.err == 0, "%s guard on a missing field reads \"\": expected ok, got %d", name,
          res.err);
    RUN(gw_store_hset_if(st, &nokey, "t:nokey", 1, &of[1], &two, 0, on_result, &res));
    CHECK(res.err == GW_ESTALE, "%s guard on a missing key: expected GW_ESTALE, got %d", name,
          res.err);
    RUN(gw_store_hgetall(st, "t:nokey", on_result, &res));
    CHECK(res.n == 0, "%s failed guard: expected nothing written, got %zu", name, res.n);

    RUN(gw_store_rpush_if(st, &ga, "t:gl", gw_store_cstr("x"), 2, 0, on_result, &res));
    CHECK(res.err == GW_ESTALE, "%s rpush_if wrong owner: expected GW_ESTALE, got %d", name,
          res.err);
    RUN(gw_store_rpush_if(st, &gb, "t:gl", gw_store_cstr("q1"), 2, 0, on_result, &res));
    CHECK(res.err == 0 && res.integer == 1, "%s rpush_if: expected length 1, got %d/%lld", name,
          res.err, res.integer);
    RUN(gw_store_rpush_if(st, &gb, "t:gl", gw_store_cstr("q2"), 2, 60000, on_result, &res));
    RUN(gw_store_rpush_if(st, &gb, "t:gl", gw_store_cstr("q3"), 2, 0, on_result, &res));
    CHECK(res.err == GW_ELIMIT, "%s rpush_if over the cap: expected GW_ELIMIT, got %d", name,
          res.err);
    RUN(gw_store_lpop_n_if(st, &ga, "t:gl", 1, on_result, &res));
    CHECK(res.err == GW_ESTALE, "%s lpop_n_if wrong owner: expected GW_ESTALE, got %d", name,
          res.err);
    RUN(gw_store_lpop_n_if(st, &gb, "t:gl", 1, on_result, &res));
    CHECK(res.err == 0 && res.integer == 1, "%s lpop_n_if: expected 1 popped, got %d/%lld", name,
          res.err, res.integer);
    RUN(gw_store_lrange(st, "t:gl", 0, -1, on_result, &res));
    CHECK(res.n == 1 && strcmp(res.items[0], "q2") == 0, "%s after lpop_n_if: expected q2", name);

    const char *others[] = {"t:gl"};
    RUN(gw_store_del_if(st, &ga, 1, others, on_result, &res));
    CHECK(res.err == GW_ESTALE, "%s del_if wrong owner: expected GW_ESTALE, got %d", name, res.err);
    RUN(gw_store_lrange(st, "t:gl", 0, -1, on_result, &res));
    CHECK(res.n == 1, "%s failed del_if: expected the list kept, got %zu", name, res.n);
    RUN(gw_store_del_if(st, &gb, 1, others, on_result, &res));
    CHECK(res.err == 0 && res.integer == 2, "%s del_if: expected 2 keys removed, got %d/%lld", name,
          res.err, res.integer);
    RUN(gw_store_hgetall(st, "t:g", on_result, &res));
    CHECK(res.n == 0, "%s del_if: expected the hash gone, got %zu", name, res.n);
    RUN(gw_store_lrange(st, "t:gl", 0, -1, on_result, &res));
    CHECK(res.n == 0, "%s del_if: expected the list gone, got %zu", name, res.n);

    /* A guarded write sets the TTL too. */
    RUN(gw_store_hset(st, "t:gt", 1, of, ov, 0, on_result, &res));
    RUN(gw_store_hset_if(st, &(struct gw_store_guard){"t:gt", "owner", "node-a"}, "t:gt", 1, &of[1],
                         &two, 100, on_result, &res));
    sleep_loop(250);
    RUN(gw_store_hgetall(st, "t:gt", on_result, &res));
    CHECK(res.n == 0, "%s hset_if ttl: expected the key gone after expiry, got %zu", name, res.n);

    /* Pub/sub. */
    struct msgs m = {0};
    gw_store_subscribe(st, "t:chan", on_msg, &m);
    sleep_loop(100); /* the Redis subscriber connection comes up */
    RUN(gw_store_publish(st, "t:chan", gw_store_cstr("ping"), on_result, &res));
    CHECK(res.integer == 1, "%s publish: expected 1 receiver, got %lld", name, res.integer);
    sleep_loop(50);
    CHECK(m.count == 1 && strcmp(m.last, "ping") == 0, "%s subscribe: expected ping, got %d '%s'",
          name, m.count, m.last);
    gw_store_unsubscribe(st, "t:chan");
}

static void closed_cb(void *arg)
{
    *(bool *)arg = true;
}

/* Closes st and checks that the close callback came. */
static void close_checked(struct gw_store *st)
{
    bool closed = false;
    gw_store_close(st, closed_cb, &closed);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(closed, "expected the close callback");
}

/* Redis's own answer to a command, by a connection of the test's own. */
static redisReply *ask(int port, const char *cmd)
{
    redisContext *rc = redisConnect("127.0.0.1", port);
    redisReply *r = rc && !rc->err ? redisCommand(rc, cmd) : NULL;
    if (rc)
        redisFree(rc);
    return r;
}

/* Scripts run by their SHA-1, loaded when the connection came up; a SCRIPT FLUSH costs the next
 * script command (not run, not sent again) and nothing after it. */
static void scripts(struct gw_store *st, int port)
{
    redisReply *info = ask(port, "INFO commandstats");
    CHECK(info && info->type == REDIS_REPLY_STRING && strstr(info->str, "cmdstat_evalsha:calls=") &&
              strstr(info->str, "cmdstat_script|load:calls=15,") &&
              !strstr(info->str, "cmdstat_eval:"),
          "expected EVALSHA after 15 SCRIPT LOADs and no EVAL, got %s",
          info && info->str ? info->str : "no answer");
    freeReplyObject(info);

    redisReply *flush = ask(port, "SCRIPT FLUSH");
    CHECK(flush && flush->type == REDIS_REPLY_STATUS, "SCRIPT FLUSH: expected OK");
    freeReplyObject(flush);
    struct result res;
    struct gw_store_str f1 = gw_store_cstr("first"), f2 = gw_store_cstr("second"),
                        v = gw_store_cstr("1");
    RUN(gw_store_hset(st, "t:flush", 1, &f1, &v, 0, on_result, &res));
    CHECK(res.done && res.err == GW_EUNAVAIL, "after SCRIPT FLUSH: expected GW_EUNAVAIL, got %d",
          res.err);
    RUN(gw_store_hset(st, "t:flush", 1, &f2, &v, 0, on_result, &res));
    CHECK(res.done && res.err == 0, "after SCRIPT FLUSH: expected the next script to run, got %d",
          res.err);
    RUN(gw_store_hgetall(st, "t:flush", on_result, &res));
    CHECK(res.err == 0 && res.n == 2 && has(&res, "second") && !has(&res, "first"),
          "after SCRIPT FLUSH: expected only the second field, got %zu items", res.n);

    /* Where SCRIPT LOAD is refused (an ACL), a store sends its scripts as EVAL. */
    redisReply *acl = ask(port, "ACL SETUSER default -script|load");
    CHECK(acl && acl->type == REDIS_REPLY_STATUS, "ACL SETUSER: expected OK");
    freeReplyObject(acl);
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d/3", port);
    struct gw_store *st2;
    CHECK(gw_store_open(&loop, url, 300, &st2) == 0 && wait_available(st2, 5000),
          "expected a second store up");
    sleep_loop(100); /* the refusals are in */
    RUN(gw_store_hset(st2, "t:eval", 1, &f1, &v, 0, on_result, &res));
    CHECK(res.done && res.err == 0, "SCRIPT LOAD refused: expected the script to run, got %d",
          res.err);
    info = ask(port, "INFO commandstats");
    CHECK(info && info->type == REDIS_REPLY_STRING && strstr(info->str, "cmdstat_eval:calls=1,"),
          "SCRIPT LOAD refused: expected one EVAL");
    freeReplyObject(info);
    gw_store_close(st2, NULL, NULL); /* (close_store would run the loop dry: st is still open) */
    sleep_loop(100);
    acl = ask(port, "ACL SETUSER default +script|load");
    freeReplyObject(acl);
}

int main(void)
{
    uv_loop_init(&loop);
    struct gw_store *st;
    CHECK(gw_store_open(&loop, "http://x", 500, &st) == GW_EINVAL, "expected a bad URL refused");
    CHECK(gw_store_open(&loop, "redis://", 500, &st) == GW_EINVAL,
          "expected a hostless URL refused");

    CHECK(gw_store_open(&loop, NULL, 500, &st) == 0, "expected the memory store");
    CHECK(strcmp(gw_store_backend(st), "memory") == 0, "expected backend memory");
    operations(st, "memory");
    close_checked(st);

    int port;
    char url[64];
    pid_t redis = start_own_redis(3, 300, &st, &port, url, sizeof url);
    CHECK(redis > 0, "expected a redis-server of our own to come up");
    if (redis <= 0)
        return CHECK_DONE();
    operations(st, "redis");
    scripts(st, port);

    /* A stopped server: the command times out within its deadline, the loop keeps ticking. */
    struct result res = {0};
    kill(redis, SIGSTOP);
    gw_store_get(st, "t:s", on_result, &res);
    int ticks = wait_for(&res, 3000);
    CHECK(res.done && res.err == GW_ETIMEDOUT, "stopped: expected GW_ETIMEDOUT, got %d", res.err);
    CHECK(ticks >= 20, "stopped: expected the loop to keep running (≥20 ticks), got %d", ticks);
    memset(&res, 0, sizeof res);
    gw_store_get(st, "t:s", on_result, &res);
    wait_for(&res, 1000);
    CHECK(res.err == GW_EUNAVAIL || res.err == GW_ETIMEDOUT,
          "stopped: expected later commands to fail, got %d", res.err);
    kill(redis, SIGCONT);
    CHECK(wait_available(st, 8000), "continued: expected the store to reconnect");
    RUN(gw_store_get(st, "t:s", on_result, &res));
    CHECK(res.err == 0 && res.n == 1, "continued: expected commands to work again, got %d",
          res.err);

    /* A killed server: commands fail at once; a restart brings commands and pub/sub back. */
    struct msgs m = {0};
    gw_store_subscribe(st, "t:after", on_msg, &m);
    sleep_loop(100);
    kill(redis, SIGKILL);
    waitpid(redis, NULL, 0);
    sleep_loop(100);
    RUN(gw_store_get(st, "t:s", on_result, &res));
    CHECK(res.err == GW_EUNAVAIL, "killed: expected GW_EUNAVAIL, got %d", res.err);
    CHECK(!gw_store_available(st), "killed: expected unavailable");
    redis = start_redis(port);
    CHECK(wait_available(st, 8000), "restarted: expected the store to reconnect");
    /* An empty script cache again: the reconnect loaded the scripts before this command. */
    struct gw_store_str rf = gw_store_cstr("r"), rv = gw_store_cstr("1");
    RUN(gw_store_hset(st, "t:r", 1, &rf, &rv, 0, on_result, &res));
    CHECK(res.err == 0, "restarted: expected a script to run at once, got %d", res.err);
    sleep_loop(300); /* the subscriber reconnects on its own backoff */
    RUN(gw_store_publish(st, "t:after", gw_store_cstr("back"), on_result, &res));
    sleep_loop(100);
    CHECK(res.err == 0 && m.count == 1 && strcmp(m.last, "back") == 0,
          "restarted: expected the subscription restored, got %d msgs", m.count);

    close_checked(st);
    kill(redis, SIGTERM);
    waitpid(redis, NULL, 0);
    CHECK(uv_loop_close(&loop) == 0, "expected every handle closed");
    return CHECK_DONE();
}
