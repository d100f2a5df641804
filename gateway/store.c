/* The store's public face: URL parsing, backend choice, command records, and the deferred
 * delivery of completions that both backends share. */
#include "gateway/store_impl.h"

#include "gateway/err.h"
#include "gateway/mem.h"
#include "gateway/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void unsubscribe_all(struct gw_store *st, const char *channel);

static void deliver(uv_timer_t *t)
{
    struct gw_store *st = t->data;
    /* Take the whole list: callbacks may queue more, which then wait for the next turn. */
    struct store_done *d = st->done_head;
    st->done_head = st->done_tail = NULL;
    while (d) {
        struct store_done *next = d->next;
        if (d->msg_fn)
            d->msg_fn(d->arg, d->reply.items[0].ptr, d->reply.items[1].ptr, d->reply.items[1].len);
        else if (d->cb)
            d->cb(d->arg, d->err, &d->reply);
        free(d);
        d = next;
    }
}

void store_base_init(struct gw_store *st, const struct store_backend *be, uv_loop_t *loop,
                     uint64_t timeout_ms)
{
    st->be = be;
    st->loop = loop;
    st->timeout_ms = timeout_ms;
    uv_timer_init(loop, &st->done_timer);
    st->done_timer.data = st;
}

void store_complete(struct gw_store *st, gw_store_cb cb, void *arg, int err,
                    const struct gw_store_reply *reply)
{
    size_t n = reply ? reply->n : 0, bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += reply->items[i].len + 1;
    struct store_done *d = gw_malloc(sizeof *d + n * sizeof(struct gw_store_str) + bytes);
    struct gw_store_str *items = (struct gw_store_str *)(d + 1);
    char *p = (char *)(items + n);
    for (size_t i = 0; i < n; i++) {
        memcpy(p, reply->items[i].ptr, reply->items[i].len);
        p[reply->items[i].len] = '\0';
        items[i].ptr = p;
        items[i].len = reply->items[i].len;
        p += reply->items[i].len + 1;
    }
    d->next = NULL;
    d->msg_fn = NULL;
    d->cb = cb;
    d->arg = arg;
    d->err = err;
    d->reply.integer = reply ? reply->integer : 0;
    d->reply.n = n;
    d->reply.items = items;
    if (st->done_tail)
        st->done_tail->next = d;
    else
        st->done_head = d;
    st->done_tail = d;
    if (!st->closing)
        uv_timer_start(&st->done_timer, deliver, 0, 0);
}

void store_deliver_msg(struct gw_store *st, gw_store_msg_cb fn, void *arg, const char *channel,
                       struct gw_store_str msg)
{
    struct gw_store_str parts[2] = {{channel, strlen(channel)}, msg};
    struct gw_store_reply r = {0, 2, parts};
    store_complete(st, NULL, arg, 0, &r);
    st->done_tail->msg_fn = fn;
}

static void base_closed(uv_handle_t *h)
{
    struct gw_store *st = h->data;
    unsubscribe_all(st, NULL);
    void (*fn)(void *) = st->closed;
    void *arg = st->closed_arg;
    free(st);
    if (fn)
        fn(arg);
}

void store_base_close(struct gw_store *st)
{
    /* Replies already computed are delivered as they are; messages are dropped. */
    for (struct store_done *d = st->done_head; d; d = d->next)
        d->msg_fn = NULL;
    deliver(&st->done_timer);
    uv_close((uv_handle_t *)&st->done_timer, base_closed);
}

/* "redis://host[:port][/db]" */
static int parse_url(const char *url, char *host, size_t hostlen, int *port, int *db)
{
    if (strncmp(url, "redis://", 8) != 0)
        return GW_EINVAL;
    const char *h = url + 8, *end = h + strcspn(h, ":/");
    if (end == h || (size_t)(end - h) >= hostlen)
        return GW_EINVAL;
    memcpy(host, h, (size_t)(end - h));
    host[end - h] = '\0';
    *port = 6379;
    *db = 0;
    char *rest;
    if (*end == ':') {
        long p = strtol(end + 1, &rest, 10);
        if (rest == end + 1 || p <= 0 || p > 65535)
            return GW_EINVAL;
        *port = (int)p;
        end = rest;
    }
    if (*end == '/') {
        long d = strtol(end + 1, &rest, 10);
        if (rest == end + 1 || d < 0 || d > 1000000)
            return GW_EINVAL;
        *db = (int)d;
        end = rest;
    }
    return *end ? GW_EINVAL : 0;
}

int gw_store_open(uv_loop_t *loop, const char *url, uint64_t timeout_ms, struct gw_store **out)
{
    if (!url || !*url)
        return store_mem_open(loop, timeout_ms, out);
    char host[256];
    int port, db;
    if (parse_url(url, host, sizeof host, &port, &db) != 0)
        return GW_EINVAL;
    return store_redis_open(loop, host, port, db, timeout_ms, out);
}

void gw_store_close(struct gw_store *st, void (*done)(void *arg), void *arg)
{
    if (st->closing)
        return;
    st->closing = true;
    st->closed = done;
    st->closed_arg = arg;
    st->be->close(st);
}

const char *gw_store_reply_field(const struct gw_store_reply *r, const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; r && i + 1 < r->n; i += 2)
        if (r->items[i].len == len && memcmp(r->items[i].ptr, name, len) == 0)
            return r->items[i + 1].ptr;
    return NULL;
}

bool gw_store_available(const struct gw_store *st)
{
    return !st->closing && st->be->available(st);
}

const char *gw_store_backend(const struct gw_store *st)
{
    return st->be->name;
}

void gw_store_set_metrics(struct gw_store *st, struct gw_metrics *m)
{
    static const double bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                    0.05,   0.1,   0.25,   0.5,   1,    2.5};
    st->m_seconds = gw_metrics_histogram(m, "mxgw_store_command_seconds",
                                         "Time from sending a store command to its completion",
                                         NULL, bounds, sizeof bounds / sizeof bounds[0]);
    static const char *const kinds[] = {"error=\"timeout\"", "error=\"unavailable\"",
                                        "error=\"other\""};
    for (int i = 0; i < 3; i++)
        st->m_errors[i] = gw_metrics_counter(m, "mxgw_store_errors_total",
                                             "Store commands that failed, by kind", kinds[i]);
}

/* A timed command: the caller's completion, wrapped. */
struct timed {
    struct gw_store *st;
    gw_store_cb cb;
    void *arg;
    uint64_t start_ns;
};

static void timed_done(void *arg, int err, const struct gw_store_reply *reply)
{
    struct timed *t = arg;
    struct gw_store *st = t->st;
    gw_histogram_observe_since(st->m_seconds, t->start_ns, 1);
    if (err && err != GW_ECLOSED)
        (*st->m_errors[err == GW_ETIMEDOUT ? 0 : err == GW_EUNAVAIL ? 1 : 2])++;
    gw_store_cb cb = t->cb;
    void *cb_arg = t->arg;
    free(t);
    if (cb)
        cb(cb_arg, err, reply);
}

static int submit(struct gw_store *st, const struct store_cmd *cmd, gw_store_cb cb, void *arg)
{
    if (st->closing)
        return GW_ECLOSED;
    if (!st->m_seconds)
        return st->be->submit(st, cmd, cb, arg);
    struct timed *t = gw_malloc(sizeof *t);
    *t = (struct timed){st, cb, arg, uv_hrtime()};
    int rc = st->be->submit(st, cmd, timed_done, t);
    if (rc)
        free(t);
    return rc;
}

int gw_store_hset(struct gw_store *st, const char *key, size_t n, const struct gw_store_str *fields,
                  const struct gw_store_str *values, uint64_t ttl_ms, gw_store_cb cb, void *arg)
{
    struct store_cmd c = {
        .op = OP_HSET, .key = key, .n = n, .fields = fields, .values = values, .ttl_ms = ttl_ms};
    return submit(st, &c, cb, arg);
}

int gw_store_hgetall(struct gw_store *st, const char *key, gw_store_cb cb, void *arg)
{
    struct store_cmd c = {.op = OP_HGETALL, .key = key};
    return submit(st, &c, cb, arg);
}

int gw_store_del(struct gw_store *st, const char *key, gw_store_cb cb, void *arg)
{
    struct store_cmd c = {.op = OP_DEL, .key = key};
    return submit(st, &c, cb, arg);
}

int gw_store_expire(struct gw_store *st, const char *key, uint64_t ttl_ms, gw_store_cb cb,
                    void *arg)
{
    struct store_cmd c = {.op = OP_EXPIRE, .key = key, .ttl_ms = ttl_ms};
    return submit(st, &c, cb, arg);
}

int gw_store_set(struct gw_store *st, const char *key, struct gw_store_str value, uint64_t ttl_ms,
                 gw_store_cb cb, void *arg)
{
    struct store_cmd c = {.op = OP_SET, .key = key, .values = &value, .ttl_ms = ttl_ms};
    return submit(st, &c, cb, arg);
}

int gw_store_get(struct gw_store *st, const char *key, gw_store_cb cb, void *arg)
{
    struct store_cmd c = {.op = OP_GET, .key = key};
    return submit(st, &c, cb, arg);
}

int gw_store_sadd(struct gw_store *st, const char *key, struct gw_store_str member, uint64_t ttl_ms,
                  gw_store_cb cb, void *arg)
{
    struct store_cmd c = {.op = OP_SADD, .key = key, .values = &member, .ttl_ms = ttl_ms};
    return submit(st, &c, cb, arg);
}

int gw_store_srem(struct gw_store *st, const char *key, struct gw_store_str member, gw_store_cb cb,
                  void *arg)
{
    struct store_cmd c = {.op = OP_SREM, .key = key, .values = &member};
    return submit(st, &c, cb, arg);
}

int gw_store_smembers(struct gw_store *st, const char *key, gw_store_cb cb, void *arg)
{
    struct store_cmd c = {.op = OP_SMEMBERS, .key = key};
    return submit(st, &c, cb, arg);
}

int gw_store_rpush_capped(struct gw_store *st, const char *key, struct gw_store_str value,
                          size_t max_len, uint64_t ttl_ms, gw_store_cb cb, void *arg)
{
    struct store_cmd c = {
        .op = OP_RPUSH_CAPPED, .key = key, .values = &value, .count = max_len, .ttl_ms = ttl_ms};
    return submit(st, &c, cb, arg);
}

int gw_store_lrange(struct gw_store *st, const char *key, long start, long stop, gw_store_cb cb,
                    void *arg)
{
    struct store_cmd c = {.op = OP_LRANGE, .key = key, .start = start, .stop = stop};
    return submit(st, &c, cb, arg);
}

int gw_store_lpop_n(struct gw_store *st, const char *key, size_t n, gw_store_cb cb, void *arg)
{
    struct store_cmd c = {.op = OP_LPOP_N, .key = key, .count = n};
    return submit(st, &c, cb, arg);
}

int gw_store_incr(struct gw_store *st, const char *key, uint64_t ttl_ms, gw_store_cb cb, void *arg)
{
    struct store_cmd c = {.op = OP_INCR, .key = key, .ttl_ms = ttl_ms};
    return submit(st, &c, cb, arg);
}

int gw_store_hset_if(struct gw_store *st, const struct gw_store_guard *g, const char *key, size_t n,
                     const struct gw_store_str *fields, const struct gw_store_str *values,
                     uint64_t ttl_ms, gw_store_cb cb, void *arg)
{
    struct store_cmd c = {.op = OP_HSET,
                          .key = key,
                          .n = n,
                          .fields = fields,
                          .values = values,
                          .ttl_ms = ttl_ms,
                          .guard = g};
    return submit(st, &c, cb, arg);
}

int gw_store_rpush_if(struct gw_store *st, const struct gw_store_guard *g, const char *key,
                      struct gw_store_str value, size_t max_len, uint64_t ttl_ms, gw_store_cb cb,
                      void *arg)
{
    struct store_cmd c = {.op = OP_RPUSH_CAPPED,
                          .key = key,
                          .values = &value,
                          .count = max_len,
                          .ttl_ms = ttl_ms,
                          .guard = g};
    return submit(st, &c, cb, arg);
}

int gw_store_lpop_n_if(struct gw_store *st, const struct gw_store_guard *g, const char *key,
                       size_t n, gw_store_cb cb, void *arg)
{
    struct store_cmd c = {.op = OP_LPOP_N, .key = key, .count = n, .guard = g};
    return submit(st, &c, cb, arg);
}

int gw_store_del_if(struct gw_store *st, const struct gw_store_guard *g, size_t nkeys,
                    const char *const *keys, gw_store_cb cb, void *arg)
{
    if (nkeys > 8)
        return GW_EINVAL;
    struct store_cmd c = {.op = OP_DEL, .key = g->key, .guard = g, .keys = keys, .nkeys = nkeys};
    return submit(st, &c, cb, arg);
}

int gw_store_publish(struct gw_store *st, const char *channel, struct gw_store_str msg,
                     gw_store_cb cb, void *arg)
{
    struct store_cmd c = {.op = OP_PUBLISH, .key = channel, .values = &msg};
    return submit(st, &c, cb, arg);
}

void store_publish_local(struct gw_store *st, const char *channel, struct gw_store_str msg)
{
    for (struct store_sub *s = st->subs; s; s = s->next)
        if (strcmp(s->channel, channel) == 0)
            store_deliver_msg(st, s->fn, s->arg, s->channel, msg);
}

int gw_store_subscribe(struct gw_store *st, const char *channel, gw_store_msg_cb fn, void *arg)
{
    if (st->closing)
        return GW_ECLOSED;
    bool first = true;
    for (struct store_sub *s = st->subs; s; s = s->next)
        if (strcmp(s->channel, channel) == 0)
            first = false;
    struct store_sub *s = gw_calloc(1, sizeof *s);
    s->channel = gw_strdup(channel);
    s->fn = fn;
    s->arg = arg;
    s->next = st->subs;
    st->subs = s;
    if (first && st->be->subscribe)
        st->be->subscribe(st, channel);
    return 0;
}

static void unsubscribe_all(struct gw_store *st, const char *channel)
{
    for (struct store_sub **ps = &st->subs; *ps;) {
        struct store_sub *s = *ps;
        if (!channel || strcmp(s->channel, channel) == 0) {
            *ps = s->next;
            free(s->channel);
            free(s);
        } else {
            ps = &s->next;
        }
    }
}

int gw_store_unsubscribe(struct gw_store *st, const char *channel)
{
    if (st->closing)
        return GW_ECLOSED;
    unsubscribe_all(st, channel);
    if (st->be->unsubscribe)
        st->be->unsubscribe(st, channel);
    return 0;
}

/* ---- Sorted sets, hash counters and capped sets (store.h's last block) ---- */

int gw_store_zadd(struct gw_store *st, const char *key, struct gw_store_str member, long long score,
                  enum gw_store_zadd_mode mode, size_t max_card, gw_store_cb cb, void *arg)
{
    struct store_cmd c = {.op = OP_ZADD,
                          .key = key,
                          .values = &member,
                          .score = score,
                          .mode = (int)mode,
                          .count = max_card};
    return submit(st, &c, cb, arg);
}

int gw_store_zrem(struct gw_store *st, const char *key, struct gw_store_str member, gw_store_cb cb,
                  void *arg)
{
    struct store_cmd c = {.op = OP_ZREM, .key = key, .values = &member};
    return submit(st, &c, cb, arg);
}

int gw_store_zrem_if(struct gw_store *st, const char *key, struct gw_store_str member,
                     long long score, gw_store_cb cb, void *arg)
{
    struct store_cmd c = {.op = OP_ZREM_IF, .key = key, .values = &member, .score = score};
    return submit(st, &c, cb, arg);
}

int gw_store_zclaim(struct gw_store *st, const char *key, long long max_score, size_t limit,
                    long long lease_score, gw_store_cb cb, void *arg)
{
    if (limit == 0)
        return GW_EINVAL;
    struct store_cmd c = {
        .op = OP_ZCLAIM, .key = key, .score = max_score, .score2 = lease_score, .count = limit};
    return submit(st, &c, cb, arg);
}

int gw_store_hincrby(struct gw_store *st, const char *key, struct gw_store_str field, long long by,
                     size_t n, const struct gw_store_str *fields, const struct gw_store_str *values,
                     uint64_t ttl_ms, gw_store_cb cb, void *arg)
{
    /* One array with the counted field first, as store_impl.h describes. */
    enum { MAX_SET = 16 };
    struct gw_store_str f[MAX_SET + 1], v[MAX_SET + 1];
    if (n > MAX_SET)
        return GW_EINVAL;
    f[0] = field;
    v[0] = field;
    for (size_t i = 0; i < n; i++) {
        f[i + 1] = fields[i];
        v[i + 1] = values[i];
    }
    struct store_cmd c = {.op = OP_HINCRBY,
                          .key = key,
                          .n = n + 1,
                          .fields = f,
                          .values = v,
                          .score = by,
                          .ttl_ms = ttl_ms};
    return submit(st, &c, cb, arg);
}

int gw_store_htake(struct gw_store *st, const char *key, size_t n,
                   const struct gw_store_str *fields, const struct gw_store_str *values,
                   gw_store_cb cb, void *arg)
{
    if (n == 0)
        return GW_EINVAL;
    struct store_cmd c = {.op = OP_HTAKE, .key = key, .n = n, .fields = fields, .values = values};
    return submit(st, &c, cb, arg);
}

int gw_store_sadd_capped(struct gw_store *st, const char *key, struct gw_store_str member,
                         size_t max, uint64_t ttl_ms, gw_store_cb cb, void *arg)
{
    struct store_cmd c = {
        .op = OP_SADD_CAPPED, .key = key, .values = &member, .count = max, .ttl_ms = ttl_ms};
    return submit(st, &c, cb, arg);
}
