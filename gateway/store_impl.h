/* Private to the store: the operation record both backends execute, and the backend vtable. */
#ifndef GW_STORE_IMPL_H
#define GW_STORE_IMPL_H

#include "gateway/store.h"

enum store_op {
    OP_HSET,
    OP_HGETALL,
    OP_DEL,
    OP_EXPIRE,
    OP_SET,
    OP_GET,
    OP_SADD,
    OP_SREM,
    OP_SMEMBERS,
    OP_RPUSH_CAPPED,
    OP_LRANGE,
    OP_LPOP_N,
    OP_INCR,
    OP_PUBLISH,
    /* Sorted sets, counters in hashes, capped sets (the push delivery queue; see the end of
     * store.h). Keep these last: both backends route every op from OP_ZADD on to their own
     * block at the end of the file. */
    OP_ZADD,
    OP_ZREM,
    OP_ZREM_IF,
    OP_ZCLAIM,
    OP_HINCRBY,
    OP_HTAKE,
    OP_SADD_CAPPED,
};

/* One command. Strings are borrowed for the duration of the submit call. */
struct store_cmd {
    enum store_op op;
    const char *key; /* or the channel */
    size_t n;        /* hset: number of pairs */
    const struct gw_store_str *fields;
    const struct gw_store_str *values; /* hset: n values; others: values[0] */
    uint64_t ttl_ms;
    long start, stop;                   /* lrange */
    size_t count;                       /* rpush_capped: max length; lpop_n: items */
    const struct gw_store_guard *guard; /* NULL: unconditional */
    const char *const *keys;            /* del with a guard: the other keys to delete */
    size_t nkeys;
    /* zadd: values[0] = member, score, mode, count = max members (0: none); zrem_if: score;
     * zclaim: score = max score, score2 = lease score, count = limit; hincrby: score = the
     * increment, fields[0] = the counted field (values[0] unused), fields[1..n-1] set to
     * values[1..n-1]; htake: n fields/values; sadd_capped: count = max members. */
    long long score, score2;
    int mode;
};

struct store_backend {
    const char *name;
    int (*submit)(struct gw_store *st, const struct store_cmd *cmd, gw_store_cb cb, void *arg);
    /* Tell the server about a channel's first subscriber / last unsubscribe (may be NULL). */
    void (*subscribe)(struct gw_store *st, const char *channel);
    void (*unsubscribe)(struct gw_store *st, const char *channel);
    bool (*available)(const struct gw_store *st);
    void (*close)(struct gw_store *st);
};

/* One subscriber of a channel. */
struct store_sub {
    struct store_sub *next;
    char *channel;
    gw_store_msg_cb fn;
    void *arg;
};

/* The part of a store common to both backends. A backend embeds it first in its own struct. */
struct gw_store {
    const struct store_backend *be;
    uv_loop_t *loop;
    uint64_t timeout_ms;
    void (*closed)(void *arg);
    void *closed_arg;
    /* Completions waiting to be delivered from the loop (never inside a submit call). */
    struct store_done *done_head, *done_tail;
    uv_timer_t done_timer;
    struct store_sub *subs;
    bool closing;
    /* metrics (gw_store_set_metrics); NULL until set */
    struct gw_histogram *m_seconds;
    uint64_t *m_errors[3]; /* timeout, unavailable, other */
};

/* A completed command waiting for delivery; items point into the same allocation. */
struct store_done {
    struct store_done *next;
    gw_store_cb cb;
    gw_store_msg_cb msg_fn; /* set for a pub/sub message: items are channel, body */
    void *arg;
    int err;
    struct gw_store_reply reply;
};

void store_base_init(struct gw_store *st, const struct store_backend *be, uv_loop_t *loop,
                     uint64_t timeout_ms);
/* Queues cb(arg, err, reply) for the next loop iteration; reply (may be NULL) is deep-copied. */
void store_complete(struct gw_store *st, gw_store_cb cb, void *arg, int err,
                    const struct gw_store_reply *reply);
/* Queues fn(arg, channel, msg) for the next loop iteration, in order with completions. */
void store_deliver_msg(struct gw_store *st, gw_store_msg_cb fn, void *arg, const char *channel,
                       struct gw_store_str msg);
/* Queues a message on channel for every subscriber of that channel. */
void store_publish_local(struct gw_store *st, const char *channel, struct gw_store_str msg);
/* Delivers pending completions with GW_ECLOSED, closes the base's handle, then calls
 * st->closed and frees st (the backend has released its own parts). */
void store_base_close(struct gw_store *st);

int store_mem_open(uv_loop_t *loop, uint64_t timeout_ms, struct gw_store **out);
int store_redis_open(uv_loop_t *loop, const char *host, int port, int db, uint64_t timeout_ms,
                     struct gw_store **out);

#endif
