/* The Redis store: hiredis async on the gateway's libuv loop through our own adapter.
 *
 * hiredis 0.14 has no command timeouts, so each connection keeps its commands in a FIFO with a
 * deadline each (replies arrive in order) and one timer armed for the oldest. When it fires,
 * every pending command fails with GW_ETIMEDOUT and the connection is dropped and rebuilt with
 * exponential backoff and jitter: one stuck reply means the connection cannot be trusted. A
 * second connection carries pub/sub (SUBSCRIBE turns a connection into a receiver) and
 * subscribes again after every reconnect. While a connection is down, commands fail at once
 * (from the loop) with GW_EUNAVAIL: Redis adds resumability and cross-node state, and callers
 * decide how to degrade.
 *
 * hiredis 0.14.1 predates `maxelements` (CVE-2021-32765, fixed in 1.0.1): replies are only
 * read from a Redis we trust, for keys whose size the gateway bounded when writing them.
 *
 * Scripts run by their SHA-1 (EVALSHA): an EVAL would send the script's text with every
 * command and make Redis hash it each time. The command connection loads every script (SCRIPT
 * LOAD) as soon as it is up, ahead of any command on it, and a reconnect loads them again, so
 * a restarted or failed-over Redis has them before it is asked to run one. A command that
 * still meets an empty script cache (SCRIPT FLUSH while connected) gets NOSCRIPT: Redis did not
 * run it, and it fails with GW_EUNAVAIL rather than being sent again, since the commands
 * pipelined behind it have run already and a resend would reorder them; the scripts are loaded
 * again at once, for what follows. Where SCRIPT LOAD is refused (an ACL that allows EVAL
 * only, say), the store falls back to EVAL. */
#include "gateway/store_impl.h"

#include "gateway/err.h"
#include "gateway/log.h"
#include "gateway/mem.h"
#include "gateway/num.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <mbedtls/sha1.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PENDING    10000
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define MAX_ARGS       72

static const char HSET_TTL[] =
    "redis.call('HSET', KEYS[1], unpack(ARGV, 2)) "
    "if tonumber(ARGV[1]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end return 1";
static const char SADD_TTL[] =
    "local n = redis.call('SADD', KEYS[1], ARGV[2]) "
    "if tonumber(ARGV[1]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end return n";
static const char RPUSH_CAPPED[] =
    "if redis.call('LLEN', KEYS[1]) >= tonumber(ARGV[2]) then return -1 end "
    "local n = redis.call('RPUSH', KEYS[1], ARGV[1]) "
    "if tonumber(ARGV[3]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end return n";
static const char LPOP_N[] = "local n = math.min(tonumber(ARGV[1]), redis.call('LLEN', KEYS[1])) "
                             "if n > 0 then redis.call('LTRIM', KEYS[1], n, -1) end return n";
static const char INCR_TTL[] =
    "local v = redis.call('INCR', KEYS[1]) "
    "if v == 1 and tonumber(ARGV[1]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end "
    "return v";

/* Guarded variants: KEYS[1] is the guard's hash, ARGV[1] its field and ARGV[2] the expected
 * value; -2 means the guard failed and nothing was done. */
#define GUARD                                                                                      \
    "if redis.call('EXISTS', KEYS[1]) == 0 or "                                                    \
    "(redis.call('HGET', KEYS[1], ARGV[1]) or '') ~= ARGV[2] then return -2 end "
static const char HSET_IF[] =
    GUARD "redis.call('HSET', KEYS[2], unpack(ARGV, 4)) "
          "if tonumber(ARGV[3]) > 0 then redis.call('PEXPIRE', KEYS[2], ARGV[3]) end return 1";
static const char RPUSH_IF[] =
    GUARD "if redis.call('LLEN', KEYS[2]) >= tonumber(ARGV[4]) then return -1 end "
          "local n = redis.call('RPUSH', KEYS[2], ARGV[3]) "
          "if tonumber(ARGV[5]) > 0 then redis.call('PEXPIRE', KEYS[2], ARGV[5]) end return n";
static const char LPOP_N_IF[] =
    GUARD "local n = math.min(tonumber(ARGV[3]), redis.call('LLEN', KEYS[2])) "
          "if n > 0 then redis.call('LTRIM', KEYS[2], n, -1) end return n";
static const char DEL_IF[] = GUARD "return redis.call('DEL', unpack(KEYS))";

/* Sorted sets, hash counters and capped sets (store.h's last block; redis_submit_ext). */
static const char ZADD_CAPPED[] =
    "local cur = redis.call('ZSCORE', KEYS[1], ARGV[1]) "
    "if not cur then "
    "  if tonumber(ARGV[4]) > 0 and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then "
    "    return -1 end "
    "  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1]) return 1 end "
    "if ARGV[3] == 'nx' then return 0 end "
    "if ARGV[3] == 'lt' and tonumber(ARGV[2]) >= tonumber(cur) then return 0 end "
    "redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1]) return 1";
static const char ZREM_IF[] = "local cur = redis.call('ZSCORE', KEYS[1], ARGV[1]) "
                              "if cur and tonumber(cur) == tonumber(ARGV[2]) then "
                              "  return redis.call('ZREM', KEYS[1], ARGV[1]) end return 0";
static const char ZCLAIM[] =
    "local m = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2]) "
    "for i = 1, #m do redis.call('ZADD', KEYS[1], ARGV[3], m[i]) end "
    "local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES') "
    "table.insert(m, 1, first[2] or '-1') return m";
static const char HINCRBY_SET[] =
    "local v = redis.call('HINCRBY', KEYS[1], ARGV[3], ARGV[2]) "
    "for i = 4, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end "
    "if tonumber(ARGV[1]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end "
    "local h = redis.call('HGETALL', KEYS[1]) table.insert(h, 1, tostring(v)) return h";
static const char HTAKE[] = "local h = redis.call('HGETALL', KEYS[1]) "
                            "if #h > 0 then redis.call('HSET', KEYS[1], unpack(ARGV)) end return h";
static const char SADD_CAPPED[] =
    "local added = 0 "
    "if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 then "
    "  if tonumber(ARGV[2]) > 0 and redis.call('SCARD', KEYS[1]) >= tonumber(ARGV[2]) then "
    "    return -1 end "
    "  added = redis.call('SADD', KEYS[1], ARGV[1]) end "
    "if tonumber(ARGV[3]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end return added";

enum script {
    S_HSET_TTL,
    S_SADD_TTL,
    S_RPUSH_CAPPED,
    S_LPOP_N,
    S_INCR_TTL,
    S_HSET_IF,
    S_RPUSH_IF,
    S_LPOP_N_IF,
    S_DEL_IF,
    S_ZADD_CAPPED,
    S_ZREM_IF,
    S_ZCLAIM,
    S_HINCRBY_SET,
    S_HTAKE,
    S_SADD_CAPPED,
    SCRIPT_COUNT
};

static const char *const script_body[SCRIPT_COUNT] = {
    [S_HSET_TTL] = HSET_TTL,       [S_SADD_TTL] = SADD_TTL,   [S_RPUSH_CAPPED] = RPUSH_CAPPED,
    [S_LPOP_N] = LPOP_N,           [S_INCR_TTL] = INCR_TTL,   [S_HSET_IF] = HSET_IF,
    [S_RPUSH_IF] = RPUSH_IF,       [S_LPOP_N_IF] = LPOP_N_IF, [S_DEL_IF] = DEL_IF,
    [S_ZADD_CAPPED] = ZADD_CAPPED, [S_ZREM_IF] = ZREM_IF,     [S_ZCLAIM] = ZCLAIM,
    [S_HINCRBY_SET] = HINCRBY_SET, [S_HTAKE] = HTAKE,         [S_SADD_CAPPED] = SADD_CAPPED,
};

struct redis_store;

struct pend {
    struct pend *next;
    struct gw_store *st;
    uint64_t deadline;
    gw_store_cb cb;
    void *arg;
    bool done;
    bool capped;  /* rpush_capped: -1 means full */
    bool guarded; /* a guarded script: -2 means the guard failed */
    bool script;  /* an EVALSHA: NOSCRIPT means Redis lost its scripts */
    uint64_t seq; /* the connection's count of commands sent, this one included */
};

struct conn {
    struct redis_store *rs;
    redisAsyncContext *ac;
    bool up;
    bool is_sub;
    uv_timer_t timer; /* connect deadline, oldest command deadline, or reconnect backoff */
    uint64_t backoff;
    struct pend *head, *tail;
    size_t npending;
    uint64_t sent;   /* commands sent on this connection */
    uint64_t loaded; /* sent when the scripts were last loaded (SCRIPT LOAD) */
};

struct script_load {
    struct redis_store *rs;
    enum script i;
};

struct redis_store {
    struct gw_store base;
    char host[256];
    int port, db;
    struct conn cmd, sub;
    char sha[SCRIPT_COUNT][41]; /* each script's SHA-1, hex */
    struct script_load loads[SCRIPT_COUNT];
    bool use_eval;    /* SCRIPT LOAD was refused: scripts go as EVAL with their text */
    unsigned handles; /* libuv handles still open while closing */
};

/* One uv_poll per hiredis connection: hiredis's ev hooks turn interest on and off. Changing a
 * uv_poll's events costs three epoll_ctl calls in libuv 1.44 (two DELs and an ADD), so once the
 * connection is up, a command is not written by arming POLLOUT (and disarming it after the
 * write: six calls and a wakeup per command) but by one uv_prepare just before the loop sleeps,
 * which writes everything queued in this iteration at once (STYLE.md: append, flush before
 * sleeping). Only when the socket takes less does the adapter wait for POLLOUT. */
struct adapter {
    uv_poll_t poll;
    uv_prepare_t flush;
    redisAsyncContext *ac;
    int events;
    bool want_write; /* hiredis has output (addWrite without delWrite since) */
    bool flushing;   /* inside the flush: an addWrite now means the socket is full */
    unsigned open_handles;
    struct redis_store *rs;
};

static void connect_conn(struct conn *c);
static void subscribe_all(struct conn *c);
static int send_argv(struct conn *c, int argc, const char **argv, const size_t *lens,
                     gw_store_cb cb, void *arg, bool capped, bool guarded);
static void load_scripts(struct conn *c);
static int redis_submit_ext(struct redis_store *rs, const struct store_cmd *cmd, gw_store_cb cb,
                            void *arg);

/* ---- adapter ---- */

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct adapter *a = h->data;
    if (!a->ac)
        return;
    if (status < 0)
        events = a->events; /* let hiredis find the error itself */
    if (events & UV_READABLE)
        redisAsyncHandleRead(a->ac);
    if (a->ac && (events & UV_WRITABLE))
        redisAsyncHandleWrite(a->ac);
}

static void set_events(struct adapter *a, int ev)
{
    if (ev == a->events)
        return;
    a->events = ev;
    if (ev)
        uv_poll_start(&a->poll, ev, on_poll);
    else
        uv_poll_stop(&a->poll);
}

static void ad_add_read(void *p)
{
    struct adapter *a = p;
    set_events(a, a->events | UV_READABLE);
}

static void ad_del_read(void *p)
{
    struct adapter *a = p;
    set_events(a, a->events & ~UV_READABLE);
}

static void on_flush(uv_prepare_t *h)
{
    struct adapter *a = h->data;
    uv_prepare_stop(h);
    if (!a->ac || !a->want_write)
        return;
    a->flushing = true;
    redisAsyncHandleWrite(a->ac); /* may end the connection: ad_cleanup then clears a->ac */
    a->flushing = false;
}

static void ad_add_write(void *p)
{
    struct adapter *a = p;
    a->want_write = true;
    /* Until connected, POLLOUT is how hiredis learns that connect() finished. */
    if (a->flushing || !(a->ac->c.flags & REDIS_CONNECTED))
        set_events(a, a->events | UV_WRITABLE);
    else
        uv_prepare_start(&a->flush, on_flush);
}

static void ad_del_write(void *p)
{
    struct adapter *a = p;
    a->want_write = false;
    set_events(a, a->events & ~UV_WRITABLE);
}

static void handle_closed(uv_handle_t *h);

static void adapter_closed(uv_handle_t *h)
{
    struct adapter *a = h->data;
    if (--a->open_handles > 0)
        return; /* the other handle's close is still to come */
    struct redis_store *rs = a->rs;
    free(a);
    rs->handles--;
    if (rs->base.closing && rs->handles == 0)
        store_base_close(&rs->base);
}

static void ad_cleanup(void *p)
{
    struct adapter *a = p;
    a->ac = NULL;
    uv_poll_stop(&a->poll);
    uv_prepare_stop(&a->flush);
    uv_close((uv_handle_t *)&a->poll, adapter_closed);
    uv_close((uv_handle_t *)&a->flush, adapter_closed);
}

static int attach(struct redis_store *rs, redisAsyncContext *ac)
{
    struct adapter *a = gw_calloc(1, sizeof *a);
    if (uv_poll_init(rs->base.loop, &a->poll, ac->c.fd) != 0) {
        free(a);
        return GW_EIO;
    }
    a->poll.data = a;
    uv_prepare_init(rs->base.loop, &a->flush);
    a->flush.data = a;
    a->open_handles = 2;
    a->ac = ac;
    a->rs = rs;
    rs->handles++;
    ac->ev.data = a;
    ac->ev.addRead = ad_add_read;
    ac->ev.delRead = ad_del_read;
    ac->ev.addWrite = ad_add_write;
    ac->ev.delWrite = ad_del_write;
    ac->ev.cleanup = ad_cleanup;
    return 0;
}

/* ---- pending commands and deadlines ---- */

static void on_timer(uv_timer_t *t);

static void arm(struct conn *c)
{
    if (c->head) {
        uint64_t now = uv_now(c->rs->base.loop);
        uv_timer_start(&c->timer, on_timer, c->head->deadline > now ? c->head->deadline - now : 0,
                       0);
    } else if (c->up) {
        uv_timer_stop(&c->timer);
    }
}

static void fail_pending(struct conn *c, int err)
{
    for (struct pend *p = c->head; p; p = p->next) {
        if (!p->done) {
            p->done = true;
            store_complete(&c->rs->base, p->cb, p->arg, err, NULL);
        }
    }
}

static void schedule_reconnect(struct conn *c)
{
    if (c->rs->base.closing)
        return;
    c->backoff = c->backoff ? c->backoff * 2 : BACKOFF_MIN_MS;
    if (c->backoff > BACKOFF_MAX_MS)
        c->backoff = BACKOFF_MAX_MS;
    uint64_t delay = c->backoff / 2 + (uint64_t)rand() % (c->backoff / 2 + 1); /* jitter */
    uv_timer_start(&c->timer, on_timer, delay, 0);
}

/* Drops the connection: pending commands have already been failed by the caller. */
static void drop_conn(struct conn *c, const char *why)
{
    redisAsyncContext *ac = c->ac;
    bool was_up = c->up;
    c->ac = NULL;
    c->up = false;
    if (was_up)
        GW_WARN("store.disconnected", "backend=redis addr=%s:%d conn=%s reason=\"%s\"", c->rs->host,
                c->rs->port, c->is_sub ? "pubsub" : "commands", why);
    /* The pending records now belong to hiredis's callbacks, which free them. */
    c->head = c->tail = NULL;
    c->npending = 0;
    if (ac) {
        ac->data = NULL;
        redisAsyncFree(ac); /* calls each reply callback with NULL; they see done = true */
    }
    schedule_reconnect(c);
}

static void on_timer(uv_timer_t *t)
{
    struct conn *c = t->data;
    if (!c->ac) {
        connect_conn(c);
        return;
    }
    if (!c->up) {
        GW_WARN("store.connect_timeout", "backend=redis addr=%s:%d", c->rs->host, c->rs->port);
        drop_conn(c, "connect timeout");
        return;
    }
    if (c->head && c->head->deadline <= uv_now(c->rs->base.loop)) {
        GW_WARN("store.timeout", "backend=redis pending=%zu", c->npending);
        fail_pending(c, GW_ETIMEDOUT);
        drop_conn(c, "command timeout");
        return;
    }
    arm(c);
}

static void convert(const redisReply *r, struct gw_store_reply *out, struct gw_store_str *items,
                    size_t max)
{
    out->integer = 0;
    out->n = 0;
    out->items = items;
    switch (r->type) {
    case REDIS_REPLY_INTEGER:
        out->integer = r->integer;
        break;
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
        items[0].ptr = r->str;
        items[0].len = r->len;
        out->n = 1;
        break;
    case REDIS_REPLY_ARRAY:
        for (size_t i = 0; i < r->elements && out->n < max; i++) {
            const redisReply *e = r->element[i];
            if (e->type == REDIS_REPLY_STRING || e->type == REDIS_REPLY_STATUS) {
                items[out->n].ptr = e->str;
                items[out->n++].len = e->len;
            }
        }
        out->integer = (long long)out->n;
        break;
    default:
        break;
    }
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct pend *p = privdata;
    struct conn *c = ac->data;
    if (c) {
        /* Replies come in order: p is the head. */
        if (c->head == p) {
            c->head = p->next;
            if (!c->head)
                c->tail = NULL;
        } else {
            for (struct pend *q = c->head; q; q = q->next)
                if (q->next == p) {
                    q->next = p->next;
                    if (c->tail == p)
                        c->tail = q;
                    break;
                }
        }
        c->npending--;
    }
    if (!p->done) {
        const redisReply *r = reply;
        if (!r) {
            store_complete(p->st, p->cb, p->arg, GW_EUNAVAIL, NULL);
        } else if (r->type == REDIS_REPLY_ERROR && p->script && c &&
                   strncmp(r->str, "NOSCRIPT", 8) == 0) {
            /* Not run; the commands behind it have run, so it is not sent again (top of file) */
            store_complete(p->st, p->cb, p->arg, GW_EUNAVAIL, NULL);
            if (p->seq > c->loaded) { /* the first since the last load: load again */
                GW_WARN("store.scripts_lost", "backend=redis addr=%s:%d", c->rs->host, c->rs->port);
                load_scripts(c);
            }
        } else if (r->type == REDIS_REPLY_ERROR) {
            GW_WARN("store.error", "backend=redis reply=\"%.*s\"",
                    (int)(r->len > 120 ? 120 : r->len), r->str);
            store_complete(p->st, p->cb, p->arg, GW_EINVAL, NULL);
        } else if (p->guarded && r->type == REDIS_REPLY_INTEGER && r->integer == -2) {
            store_complete(p->st, p->cb, p->arg, GW_ESTALE, NULL);
        } else if (p->capped && r->type == REDIS_REPLY_INTEGER && r->integer < 0) {
            store_complete(p->st, p->cb, p->arg, GW_ELIMIT, NULL);
        } else {
            size_t max = r->type == REDIS_REPLY_ARRAY ? r->elements : 1;
            struct gw_store_str *items = gw_calloc(max ? max : 1, sizeof *items);
            struct gw_store_reply out;
            convert(r, &out, items, max);
            store_complete(p->st, p->cb, p->arg, 0, &out);
            free(items);
        }
    }
    free(p);
    if (c)
        arm(c);
}

/* The command in RESP, as hiredis's redisFormatCommandArgv writes it ("*argc", then "$len"
 * and the bytes of each argument), in one pass. hiredis spends some 15,000 instructions on the
 * 25 arguments of a JSON session's persist (a printf-style call per argument, bench/callgrind);
 * this, a tenth. Returns the length; the command, NUL-terminated, is in buf when it fits (cap
 * bytes), else in *heap (owned). */
static size_t format_resp(int argc, const char **argv, const size_t *lens, char *buf, size_t cap,
                          char **heap)
{
    size_t total =
        1 + GW_U64_DEC_MAX + 2 + 1; /* and a NUL: hiredis looks for the name with strchr */
    for (int i = 0; i < argc; i++)
        total += 1 + GW_U64_DEC_MAX + 2 + lens[i] + 2;
    *heap = NULL;
    if (total > cap)
        buf = *heap = gw_malloc(total);
    char *p = buf;
    *p++ = '*';
    p += gw_u64_dec(p, (uint64_t)argc);
    *p++ = '\r';
    *p++ = '\n';
    for (int i = 0; i < argc; i++) {
        *p++ = '$';
        p += gw_u64_dec(p, lens[i]);
        *p++ = '\r';
        *p++ = '\n';
        if (lens[i])
            memcpy(p, argv[i], lens[i]);
        p += lens[i];
        *p++ = '\r';
        *p++ = '\n';
    }
    *p = '\0';
    return (size_t)(p - buf);
}

static int send_argv(struct conn *c, int argc, const char **argv, const size_t *lens,
                     gw_store_cb cb, void *arg, bool capped, bool guarded)
{
    struct gw_store *st = &c->rs->base;
    if (!c->up) {
        store_complete(st, cb, arg, GW_EUNAVAIL, NULL);
        return 0;
    }
    if (c->npending >= MAX_PENDING) {
        store_complete(st, cb, arg, GW_EAGAIN, NULL);
        return 0;
    }
    struct pend *p = gw_calloc(1, sizeof *p);
    p->st = st;
    p->deadline = uv_now(st->loop) + st->timeout_ms;
    p->cb = cb;
    p->arg = arg;
    p->capped = capped;
    p->guarded = guarded;
    p->script = lens[0] == 7 && memcmp(argv[0], "EVALSHA", 7) == 0;
    p->seq = ++c->sent;
    char small[2048], *heap;
    size_t len = format_resp(argc, argv, lens, small, sizeof small, &heap);
    int rc = redisAsyncFormattedCommand(c->ac, on_reply, p, heap ? heap : small, len);
    free(heap);
    if (rc != REDIS_OK) {
        free(p);
        store_complete(st, cb, arg, GW_EUNAVAIL, NULL);
        return 0;
    }
    if (c->tail)
        c->tail->next = p;
    else
        c->head = p;
    c->tail = p;
    c->npending++;
    if (c->npending == 1)
        arm(c);
    return 0;
}

/* ---- scripts (top of file) ---- */

/* The first two arguments of script i's command: EVALSHA and its SHA-1, or EVAL and its text.
 * Returns 2. */
static int script_args(const struct redis_store *rs, enum script i, const char **argv, size_t *lens)
{
    if (rs->use_eval) {
        argv[0] = "EVAL";
        argv[1] = script_body[i];
        lens[0] = 4;
        lens[1] = strlen(script_body[i]);
    } else {
        argv[0] = "EVALSHA";
        argv[1] = rs->sha[i];
        lens[0] = 7;
        lens[1] = 40;
    }
    return 2;
}

static void on_script_loaded(void *arg, int err, const struct gw_store_reply *r)
{
    struct script_load *l = arg;
    struct redis_store *rs = l->rs;
    if (rs->use_eval || (err && err != GW_EINVAL))
        return; /* the connection went, or was full: the next NOSCRIPT loads them again */
    if (err == 0 && r->n == 1 && r->items[0].len == 40 &&
        memcmp(r->items[0].ptr, rs->sha[l->i], 40) == 0)
        return;
    GW_WARN("store.scripts_eval", "backend=redis addr=%s:%d reason=\"%s\"", rs->host, rs->port,
            err ? "SCRIPT LOAD refused" : "SCRIPT LOAD answered another SHA-1");
    rs->use_eval = true;
}

static void load_scripts(struct conn *c)
{
    struct redis_store *rs = c->rs;
    if (rs->use_eval)
        return;
    c->loaded = c->sent;
    for (unsigned i = 0; i < SCRIPT_COUNT; i++) {
        const char *argv[] = {"SCRIPT", "LOAD", script_body[i]};
        size_t lens[] = {6, 4, strlen(script_body[i])};
        send_argv(c, 3, argv, lens, on_script_loaded, &rs->loads[i], false, false);
    }
}

/* ---- connecting ---- */

static void on_connected(const redisAsyncContext *ac, int status)
{
    struct conn *c = ac->data;
    if (!c)
        return;
    if (status != REDIS_OK) {
        GW_WARN("store.connect_failed", "backend=redis addr=%s:%d err=\"%s\"", c->rs->host,
                c->rs->port, ac->errstr);
        c->ac = NULL; /* hiredis frees it after this callback */
        schedule_reconnect(c);
        return;
    }
    c->up = true;
    c->backoff = 0;
    uv_timer_stop(&c->timer);
    GW_INFO("store.connected", "backend=redis addr=%s:%d conn=%s", c->rs->host, c->rs->port,
            c->is_sub ? "pubsub" : "commands");
    if (c->rs->db != 0) {
        char db[16];
        snprintf(db, sizeof db, "%d", c->rs->db);
        const char *argv[] = {"SELECT", db};
        size_t lens[] = {6, strlen(db)};
        if (c->is_sub)
            redisAsyncCommandArgv(c->ac, NULL, NULL, 2, argv, lens);
        else
            send_argv(c, 2, argv, lens, NULL, NULL, false, false);
    }
    if (c->is_sub)
        subscribe_all(c);
    else
        load_scripts(c); /* ahead of every command on this connection (top of file) */
}

static void on_disconnected(const redisAsyncContext *ac, int status)
{
    struct conn *c = ac->data;
    (void)status;
    if (!c)
        return;
    /* hiredis has already called every pending reply callback with NULL. */
    c->ac = NULL;
    bool was_up = c->up;
    c->up = false;
    if (was_up)
        GW_WARN("store.disconnected", "backend=redis addr=%s:%d conn=%s", c->rs->host, c->rs->port,
                c->is_sub ? "pubsub" : "commands");
    schedule_reconnect(c);
}

static void connect_conn(struct conn *c)
{
    struct redis_store *rs = c->rs;
    redisAsyncContext *ac = redisAsyncConnect(rs->host, rs->port);
    if (!ac || ac->err || attach(rs, ac) != 0) {
        GW_WARN("store.connect_failed", "backend=redis addr=%s:%d err=\"%s\"", rs->host, rs->port,
                ac ? ac->errstr : "out of memory");
        if (ac)
            redisAsyncFree(ac);
        schedule_reconnect(c);
        return;
    }
    ac->data = c;
    ac->c.reader->maxbuf = 16 * 1024;
    redisAsyncSetConnectCallback(ac, on_connected);
    redisAsyncSetDisconnectCallback(ac, on_disconnected);
    c->ac = ac;
    uv_timer_start(&c->timer, on_timer, rs->base.timeout_ms, 0);
}

/* ---- pub/sub ---- */

static void on_message(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)privdata;
    struct conn *c = ac->data;
    const redisReply *r = reply;
    if (!c || !r || r->type != REDIS_REPLY_ARRAY || r->elements != 3)
        return;
    const redisReply *kind = r->element[0], *ch = r->element[1], *msg = r->element[2];
    if (kind->type != REDIS_REPLY_STRING || strcmp(kind->str, "message") != 0 ||
        ch->type != REDIS_REPLY_STRING || msg->type != REDIS_REPLY_STRING)
        return;
    store_publish_local(&c->rs->base, ch->str, (struct gw_store_str){msg->str, msg->len});
}

static void send_subscribe(struct conn *c, const char *verb, const char *channel)
{
    const char *argv[] = {verb, channel};
    size_t lens[] = {strlen(verb), strlen(channel)};
    redisAsyncCommandArgv(c->ac, on_message, NULL, 2, argv, lens);
}

static void subscribe_all(struct conn *c)
{
    for (struct store_sub *s = c->rs->base.subs; s; s = s->next)
        send_subscribe(c, "SUBSCRIBE", s->channel);
}

static void redis_subscribe(struct gw_store *st, const char *channel)
{
    struct redis_store *rs = (struct redis_store *)st;
    if (!rs->sub.ac && !uv_is_active((uv_handle_t *)&rs->sub.timer))
        connect_conn(&rs->sub); /* subscribes to every channel once up */
    else if (rs->sub.up)
        send_subscribe(&rs->sub, "SUBSCRIBE", channel);
}

static void redis_unsubscribe(struct gw_store *st, const char *channel)
{
    struct redis_store *rs = (struct redis_store *)st;
    if (rs->sub.up)
        send_subscribe(&rs->sub, "UNSUBSCRIBE", channel);
}

/* ---- commands ---- */

/* The guarded commands: one script each, the guard's key first. */
static int redis_submit_guarded(struct redis_store *rs, const struct store_cmd *cmd, gw_store_cb cb,
                                void *arg)
{
    const char *argv[MAX_ARGS];
    size_t lens[MAX_ARGS];
    int n = 0;
    char nkeys[GW_U64_DEC_MAX], num1[GW_U64_DEC_MAX], num2[GW_U64_DEC_MAX];
    const struct gw_store_guard *g = cmd->guard;
#define ARG(s, l) (argv[n] = (s), lens[n] = (l), n++)
#define ARGS(s)   ARG((s), strlen(s))
#define ARGV(v)   ARG((v).ptr, (v).len)
#define SCRIPT(i) (n += script_args(rs, (i), argv + n, lens + n))
    switch (cmd->op) {
    case OP_HSET:
        if (cmd->n == 0 || cmd->n > (MAX_ARGS - 9) / 2)
            return GW_EINVAL;
        SCRIPT(S_HSET_IF);
        ARGS("2");
        ARGS(g->key);
        ARGS(cmd->key);
        ARGS(g->field);
        ARGS(g->expect);
        gw_u64_dec(num1, cmd->ttl_ms);
        ARGS(num1);
        for (size_t i = 0; i < cmd->n; i++) {
            ARGV(cmd->fields[i]);
            ARGV(cmd->values[i]);
        }
        break;
    case OP_RPUSH_CAPPED:
        SCRIPT(S_RPUSH_IF);
        ARGS("2");
        ARGS(g->key);
        ARGS(cmd->key);
        ARGS(g->field);
        ARGS(g->expect);
        ARGV(cmd->values[0]);
        gw_u64_dec(num1, cmd->count);
        ARGS(num1);
        gw_u64_dec(num2, cmd->ttl_ms);
        ARGS(num2);
        break;
    case OP_LPOP_N:
        SCRIPT(S_LPOP_N_IF);
        ARGS("2");
        ARGS(g->key);
        ARGS(cmd->key);
        ARGS(g->field);
        ARGS(g->expect);
        gw_u64_dec(num1, cmd->count);
        ARGS(num1);
        break;
    case OP_DEL:
        SCRIPT(S_DEL_IF);
        gw_u64_dec(nkeys, cmd->nkeys + 1);
        ARGS(nkeys);
        ARGS(g->key);
        for (size_t i = 0; i < cmd->nkeys; i++)
            ARGS(cmd->keys[i]);
        ARGS(g->field);
        ARGS(g->expect);
        break;
    default:
        return GW_EINVAL;
    }
#undef SCRIPT
#undef ARG
#undef ARGS
#undef ARGV
    return send_argv(&rs->cmd, n, argv, lens, cb, arg, cmd->op == OP_RPUSH_CAPPED, true);
}

static int redis_submit(struct gw_store *st, const struct store_cmd *cmd, gw_store_cb cb, void *arg)
{
    struct redis_store *rs = (struct redis_store *)st;
    if (cmd->guard)
        return redis_submit_guarded(rs, cmd, cb, arg);
    const char *argv[MAX_ARGS];
    size_t lens[MAX_ARGS];
    int n = 0;
    char num1[24], num2[24];
#define ARG(s, l) (argv[n] = (s), lens[n] = (l), n++)
#define ARGS(s)   ARG((s), strlen(s))
#define ARGV(v)   ARG((v).ptr, (v).len)
#define SCRIPT(i) (n += script_args(rs, (i), argv + n, lens + n))
    bool capped = false;
    switch (cmd->op) {
    case OP_HSET:
        if (cmd->n == 0 || cmd->n > (MAX_ARGS - 6) / 2)
            return GW_EINVAL;
        SCRIPT(S_HSET_TTL);
        ARGS("1");
        ARGS(cmd->key);
        gw_u64_dec(num1, cmd->ttl_ms);
        ARGS(num1);
        for (size_t i = 0; i < cmd->n; i++) {
            ARGV(cmd->fields[i]);
            ARGV(cmd->values[i]);
        }
        break;
    case OP_HGETALL:
        ARGS("HGETALL");
        ARGS(cmd->key);
        break;
    case OP_DEL:
        ARGS("DEL");
        ARGS(cmd->key);
        break;
    case OP_EXPIRE:
        ARGS("PEXPIRE");
        ARGS(cmd->key);
        gw_u64_dec(num1, cmd->ttl_ms);
        ARGS(num1);
        break;
    case OP_SET:
        ARGS("SET");
        ARGS(cmd->key);
        ARGV(cmd->values[0]);
        if (cmd->ttl_ms) {
            ARGS("PX");
            gw_u64_dec(num1, cmd->ttl_ms);
            ARGS(num1);
        }
        break;
    case OP_GET:
        ARGS("GET");
        ARGS(cmd->key);
        break;
    case OP_SADD:
        SCRIPT(S_SADD_TTL);
        ARGS("1");
        ARGS(cmd->key);
        gw_u64_dec(num1, cmd->ttl_ms);
        ARGS(num1);
        ARGV(cmd->values[0]);
        break;
    case OP_SREM:
        ARGS("SREM");
        ARGS(cmd->key);
        ARGV(cmd->values[0]);
        break;
    case OP_SMEMBERS:
        ARGS("SMEMBERS");
        ARGS(cmd->key);
        break;
    case OP_RPUSH_CAPPED:
        SCRIPT(S_RPUSH_CAPPED);
        ARGS("1");
        ARGS(cmd->key);
        ARGV(cmd->values[0]);
        gw_u64_dec(num1, cmd->count);
        ARGS(num1);
        gw_u64_dec(num2, cmd->ttl_ms);
        ARGS(num2);
        capped = true;
        break;
    case OP_LRANGE:
        ARGS("LRANGE");
        ARGS(cmd->key);
        snprintf(num1, sizeof num1, "%ld", cmd->start);
        snprintf(num2, sizeof num2, "%ld", cmd->stop);
        ARGS(num1);
        ARGS(num2);
        break;
    case OP_LPOP_N:
        SCRIPT(S_LPOP_N);
        ARGS("1");
        ARGS(cmd->key);
        gw_u64_dec(num1, cmd->count);
        ARGS(num1);
        break;
    case OP_INCR:
        SCRIPT(S_INCR_TTL);
        ARGS("1");
        ARGS(cmd->key);
        gw_u64_dec(num1, cmd->ttl_ms);
        ARGS(num1);
        break;
    case OP_PUBLISH:
        ARGS("PUBLISH");
        ARGS(cmd->key);
        ARGV(cmd->values[0]);
        break;
    default: /* OP_ZADD and later */
        return redis_submit_ext(rs, cmd, cb, arg);
    }
#undef SCRIPT
#undef ARG
#undef ARGS
#undef ARGV
    return send_argv(&rs->cmd, n, argv, lens, cb, arg, capped, false);
}

static bool redis_available(const struct gw_store *st)
{
    const struct redis_store *rs = (const struct redis_store *)st;
    return rs->cmd.up;
}

static void handle_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    struct redis_store *rs = c->rs;
    rs->handles--;
    if (rs->handles == 0)
        store_base_close(&rs->base);
}

static void close_conn(struct conn *c)
{
    fail_pending(c, GW_ECLOSED);
    c->head = c->tail = NULL;
    c->npending = 0;
    if (c->ac) {
        redisAsyncContext *ac = c->ac;
        ac->data = NULL;
        c->ac = NULL;
        c->up = false;
        redisAsyncFree(ac);
    }
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, handle_closed);
}

static void redis_close(struct gw_store *st)
{
    struct redis_store *rs = (struct redis_store *)st;
    rs->handles++; /* hold the count while closing both */
    close_conn(&rs->cmd);
    close_conn(&rs->sub);
    if (--rs->handles == 0)
        store_base_close(&rs->base);
}

static const struct store_backend redis_backend = {
    "redis", redis_submit, redis_subscribe, redis_unsubscribe, redis_available, redis_close};

static void init_conn(struct redis_store *rs, struct conn *c, bool is_sub)
{
    c->rs = rs;
    c->is_sub = is_sub;
    uv_timer_init(rs->base.loop, &c->timer);
    c->timer.data = c;
    rs->handles++;
}

int store_redis_open(uv_loop_t *loop, const char *host, int port, int db, uint64_t timeout_ms,
                     struct gw_store **out)
{
    struct redis_store *rs = gw_calloc(1, sizeof *rs);
    store_base_init(&rs->base, &redis_backend, loop, timeout_ms);
    snprintf(rs->host, sizeof rs->host, "%s", host);
    rs->port = port;
    rs->db = db;
    for (unsigned i = 0; i < SCRIPT_COUNT; i++) {
        unsigned char digest[20];
        mbedtls_sha1_ret((const unsigned char *)script_body[i], strlen(script_body[i]), digest);
        for (unsigned k = 0; k < 20; k++)
            snprintf(rs->sha[i] + 2 * k, 3, "%02x", digest[k]);
        rs->loads[i] = (struct script_load){rs, (enum script)i};
    }
    init_conn(rs, &rs->cmd, false);
    init_conn(rs, &rs->sub, true);
    connect_conn(&rs->cmd);
    *out = &rs->base;
    return 0;
}

/* ---- Sorted sets, hash counters and capped sets (store.h's last block) ----
 *
 * Each operation is one Lua script, so it is atomic against every other node's commands.
 * Scores travel as decimal integers; Lua numbers are doubles, exact below 2^53. Two replies
 * carry a number in front of an array (the next score of zclaim, the new value of hincrby):
 * an adapter moves it into reply.integer before the caller sees the reply. */

struct lead {
    gw_store_cb cb;
    void *arg;
};

/* The first item of the reply is a number: it becomes reply.integer. */
static void on_lead_reply(void *arg, int err, const struct gw_store_reply *r)
{
    struct lead *l = arg;
    gw_store_cb cb = l->cb;
    void *cb_arg = l->arg;
    free(l);
    if (!cb)
        return;
    if (err || !r || r->n == 0) {
        struct gw_store_reply empty = {0, 0, NULL};
        cb(cb_arg, err ? err : GW_EPROTO, &empty);
        return;
    }
    char num[32];
    snprintf(num, sizeof num, "%.*s", (int)(r->items[0].len < 31 ? r->items[0].len : 31),
             r->items[0].ptr);
    struct gw_store_reply out = {(long long)strtod(num, NULL), r->n - 1, r->items + 1};
    cb(cb_arg, 0, &out);
}

static int redis_submit_ext(struct redis_store *rs, const struct store_cmd *cmd, gw_store_cb cb,
                            void *arg)
{
    const char *argv[MAX_ARGS];
    size_t lens[MAX_ARGS];
    int n = 0;
    char num1[24], num2[24], num3[24];
    bool capped = false, lead = false;
#define ARG(s, l) (argv[n] = (s), lens[n] = (l), n++)
#define ARGS(s)   ARG((s), strlen(s))
#define ARGV(v)   ARG((v).ptr, (v).len)
#define SCRIPT(i) (n += script_args(rs, (i), argv + n, lens + n), ARGS("1"), ARGS(cmd->key))
    switch (cmd->op) {
    case OP_ZADD: {
        static const char *const modes[] = {"set", "nx", "lt"};
        if (cmd->mode < 0 || cmd->mode > 2)
            return GW_EINVAL;
        SCRIPT(S_ZADD_CAPPED);
        ARGV(cmd->values[0]);
        snprintf(num1, sizeof num1, "%lld", cmd->score);
        ARGS(num1);
        ARGS(modes[cmd->mode]);
        gw_u64_dec(num2, cmd->count);
        ARGS(num2);
        capped = true;
        break;
    }
    case OP_ZREM:
        ARGS("ZREM");
        ARGS(cmd->key);
        ARGV(cmd->values[0]);
        break;
    case OP_ZREM_IF:
        SCRIPT(S_ZREM_IF);
        ARGV(cmd->values[0]);
        snprintf(num1, sizeof num1, "%lld", cmd->score);
        ARGS(num1);
        break;
    case OP_ZCLAIM:
        SCRIPT(S_ZCLAIM);
        snprintf(num1, sizeof num1, "%lld", cmd->score);
        gw_u64_dec(num2, cmd->count);
        snprintf(num3, sizeof num3, "%lld", cmd->score2);
        ARGS(num1);
        ARGS(num2);
        ARGS(num3);
        lead = true;
        break;
    case OP_HINCRBY:
        if (cmd->n == 0 || cmd->n > (MAX_ARGS - 8) / 2)
            return GW_EINVAL;
        SCRIPT(S_HINCRBY_SET);
        gw_u64_dec(num1, cmd->ttl_ms);
        snprintf(num2, sizeof num2, "%lld", cmd->score);
        ARGS(num1);
        ARGS(num2);
        ARGV(cmd->fields[0]);
        for (size_t i = 1; i < cmd->n; i++) {
            ARGV(cmd->fields[i]);
            ARGV(cmd->values[i]);
        }
        lead = true;
        break;
    case OP_HTAKE:
        if (cmd->n == 0 || cmd->n > (MAX_ARGS - 4) / 2)
            return GW_EINVAL;
        SCRIPT(S_HTAKE);
        for (size_t i = 0; i < cmd->n; i++) {
            ARGV(cmd->fields[i]);
            ARGV(cmd->values[i]);
        }
        break;
    case OP_SADD_CAPPED:
        SCRIPT(S_SADD_CAPPED);
        ARGV(cmd->values[0]);
        gw_u64_dec(num1, cmd->count);
        gw_u64_dec(num2, cmd->ttl_ms);
        ARGS(num1);
        ARGS(num2);
        capped = true;
        break;
    default:
        return GW_EINVAL;
    }
#undef SCRIPT
#undef ARG
#undef ARGS
#undef ARGV
    if (!lead)
        return send_argv(&rs->cmd, n, argv, lens, cb, arg, capped, false);
    struct lead *l = gw_malloc(sizeof *l);
    l->cb = cb;
    l->arg = arg;
    return send_argv(&rs->cmd, n, argv, lens, on_lead_reply, l, false, false);
}
