/* The in-process store: the same operations as Redis on a hash map, for one node.
 *
 * Keys with a TTL are also pushed on a min-heap of deadlines. A key is expired lazily when it
 * is touched, and a sweep timer pops the heap's due entries (a bounded number per tick); an
 * entry whose key has since been refreshed or deleted is simply dropped. Completions are
 * delivered from the loop, never inside the call, exactly like the Redis backend's. */
#include "gateway/store_impl.h"

#include "gateway/err.h"
#include "gateway/map.h"
#include "gateway/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SWEEP_MS  1000
#define SWEEP_MAX 1000

enum vtype { V_STR, V_HASH, V_SET, V_LIST };

struct blob {
    size_t len;
    char data[];
};

struct mval {
    enum vtype type;
    uint64_t expire_at; /* loop ms; 0: none */
    struct blob *s;     /* V_STR */
    struct gw_map *map; /* V_HASH: field -> blob; V_SET: member -> non-NULL */
    struct blob **items;
    size_t nitems, cap; /* V_LIST */
};

struct deadline {
    uint64_t due;
    char *key;
};

struct mem_store {
    struct gw_store base;
    struct gw_map *keys;
    struct deadline *heap;
    size_t nheap, heapcap;
    uv_timer_t sweep;
};

static struct blob *blob_new(const void *p, size_t n)
{
    struct blob *b = gw_malloc(sizeof *b + n + 1);
    b->len = n;
    memcpy(b->data, p, n);
    b->data[n] = '\0';
    return b;
}

static void free_hash_value(void *arg, const char *key, void *value)
{
    (void)arg;
    (void)key;
    free(value);
}

static void mval_free(struct mval *v)
{
    if (!v)
        return;
    free(v->s);
    if (v->map) {
        if (v->type == V_HASH)
            gw_map_each(v->map, free_hash_value, NULL);
        gw_map_free(v->map);
    }
    for (size_t i = 0; i < v->nitems; i++)
        free(v->items[i]);
    free(v->items);
    free(v);
}

/* ---- deadlines ---- */

static void heap_push(struct mem_store *m, uint64_t due, const char *key)
{
    if (m->nheap == m->heapcap) {
        m->heapcap = m->heapcap ? m->heapcap * 2 : 64;
        m->heap = gw_realloc(m->heap, m->heapcap * sizeof *m->heap);
    }
    size_t i = m->nheap++;
    while (i > 0 && m->heap[(i - 1) / 2].due > due) {
        m->heap[i] = m->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    m->heap[i].due = due;
    m->heap[i].key = gw_strdup(key);
}

static struct deadline heap_pop(struct mem_store *m)
{
    struct deadline top = m->heap[0], last = m->heap[--m->nheap];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= m->nheap)
            break;
        if (c + 1 < m->nheap && m->heap[c + 1].due < m->heap[c].due)
            c++;
        if (m->heap[c].due >= last.due)
            break;
        m->heap[i] = m->heap[c];
        i = c;
    }
    if (m->nheap)
        m->heap[i] = last;
    return top;
}

static void drop(struct mem_store *m, const char *key)
{
    mval_free(gw_map_del(m->keys, key));
}

static void on_sweep(uv_timer_t *t)
{
    struct mem_store *m = t->data;
    uint64_t now = uv_now(m->base.loop);
    for (int n = 0; n < SWEEP_MAX && m->nheap && m->heap[0].due <= now; n++) {
        struct deadline d = heap_pop(m);
        struct mval *v = gw_map_get(m->keys, d.key);
        if (v && v->expire_at && v->expire_at <= now)
            drop(m, d.key);
        free(d.key);
    }
    if (m->nheap == 0)
        uv_timer_stop(&m->sweep);
}

static void set_ttl(struct mem_store *m, const char *key, struct mval *v, uint64_t ttl_ms)
{
    v->expire_at = uv_now(m->base.loop) + ttl_ms;
    heap_push(m, v->expire_at, key);
    if (!uv_is_active((uv_handle_t *)&m->sweep))
        uv_timer_start(&m->sweep, on_sweep, SWEEP_MS, SWEEP_MS);
}

/* ---- values ---- */

static struct mval *lookup(struct mem_store *m, const char *key)
{
    struct mval *v = gw_map_get(m->keys, key);
    if (v && v->expire_at && v->expire_at <= uv_now(m->base.loop)) {
        drop(m, key);
        return NULL;
    }
    return v;
}

/* The value at key of type t, created if absent; NULL if the key holds another type. */
static struct mval *obtain(struct mem_store *m, const char *key, enum vtype t)
{
    struct mval *v = lookup(m, key);
    if (v)
        return v->type == t ? v : NULL;
    v = gw_calloc(1, sizeof *v);
    v->type = t;
    if (t == V_HASH || t == V_SET)
        v->map = gw_map_new();
    gw_map_put(m->keys, key, v);
    return v;
}

/* Drops containers that became empty, as Redis does. */
static void tidy(struct mem_store *m, const char *key, struct mval *v)
{
    bool empty = (v->map && gw_map_count(v->map) == 0) || (v->type == V_LIST && v->nitems == 0);
    if (empty)
        drop(m, key);
}

struct collect {
    struct gw_store_str *items;
    size_t n;
    bool with_values;
};

static void collect_entry(void *arg, const char *key, void *value)
{
    struct collect *c = arg;
    c->items[c->n].ptr = key;
    c->items[c->n++].len = strlen(key);
    if (c->with_values) {
        struct blob *b = value;
        c->items[c->n].ptr = b->data;
        c->items[c->n++].len = b->len;
    }
}

static void reply_map(struct mem_store *m, struct mval *v, bool with_values, gw_store_cb cb,
                      void *arg)
{
    size_t n = v ? gw_map_count(v->map) * (with_values ? 2 : 1) : 0;
    struct collect c = {gw_calloc(n ? n : 1, sizeof(struct gw_store_str)), 0, with_values};
    if (v)
        gw_map_each(v->map, collect_entry, &c);
    struct gw_store_reply r = {(long long)c.n, c.n, c.items};
    store_complete(&m->base, cb, arg, 0, &r);
    free(c.items);
}

static void reply_int(struct mem_store *m, gw_store_cb cb, void *arg, int err, long long i)
{
    struct gw_store_reply r = {i, 0, NULL};
    store_complete(&m->base, cb, arg, err, &r);
}

static long clamp_index(long i, size_t n)
{
    if (i < 0)
        i += (long)n;
    return i;
}

/* A guard holds while its key is a hash whose field equals expect (missing field: ""). */
static bool guard_holds(struct mem_store *m, const struct gw_store_guard *g)
{
    struct mval *v = lookup(m, g->key);
    if (!v || v->type != V_HASH)
        return false;
    const struct blob *b = gw_map_get(v->map, g->field);
    size_t n = strlen(g->expect);
    return b ? b->len == n && memcmp(b->data, g->expect, n) == 0 : n == 0;
}

static int mem_submit(struct gw_store *st, const struct store_cmd *c, gw_store_cb cb, void *arg)
{
    struct mem_store *m = (struct mem_store *)st;
    struct mval *v;
    if (c->guard && !guard_holds(m, c->guard)) {
        reply_int(m, cb, arg, GW_ESTALE, 0);
        return 0;
    }
    switch (c->op) {
    case OP_HSET:
        if (!(v = obtain(m, c->key, V_HASH)))
            goto wrongtype;
        for (size_t i = 0; i < c->n; i++) {
            char *field = gw_strndup(c->fields[i].ptr, c->fields[i].len);
            free(gw_map_get(v->map, field));
            gw_map_put(v->map, field, blob_new(c->values[i].ptr, c->values[i].len));
            free(field);
        }
        if (c->ttl_ms)
            set_ttl(m, c->key, v, c->ttl_ms);
        reply_int(m, cb, arg, 0, (long long)c->n);
        return 0;
    case OP_HGETALL:
        v = lookup(m, c->key);
        if (v && v->type != V_HASH)
            goto wrongtype;
        reply_map(m, v, true, cb, arg);
        return 0;
    case OP_DEL: {
        v = lookup(m, c->key);
        drop(m, c->key);
        long long removed = v ? 1 : 0;
        for (size_t i = 0; i < c->nkeys; i++) {
            if (lookup(m, c->keys[i])) {
                drop(m, c->keys[i]);
                removed++;
            }
        }
        reply_int(m, cb, arg, 0, removed);
        return 0;
    }
    case OP_EXPIRE:
        v = lookup(m, c->key);
        if (v)
            set_ttl(m, c->key, v, c->ttl_ms);
        reply_int(m, cb, arg, 0, v ? 1 : 0);
        return 0;
    case OP_SET:
        drop(m, c->key);
        v = obtain(m, c->key, V_STR);
        v->s = blob_new(c->values[0].ptr, c->values[0].len);
        if (c->ttl_ms)
            set_ttl(m, c->key, v, c->ttl_ms);
        reply_int(m, cb, arg, 0, 1);
        return 0;
    case OP_GET: {
        v = lookup(m, c->key);
        if (v && v->type != V_STR)
            goto wrongtype;
        struct gw_store_str item = {v ? v->s->data : NULL, v ? v->s->len : 0};
        struct gw_store_reply r = {0, v ? 1 : 0, &item};
        store_complete(st, cb, arg, 0, &r);
        return 0;
    }
    case OP_SADD: {
        if (!(v = obtain(m, c->key, V_SET)))
            goto wrongtype;
        char *member = gw_strndup(c->values[0].ptr, c->values[0].len);
        bool added = gw_map_get(v->map, member) == NULL;
        gw_map_put(v->map, member, v);
        free(member);
        if (c->ttl_ms)
            set_ttl(m, c->key, v, c->ttl_ms);
        reply_int(m, cb, arg, 0, added);
        return 0;
    }
    case OP_SREM: {
        v = lookup(m, c->key);
        if (v && v->type != V_SET)
            goto wrongtype;
        long long removed = 0;
        if (v) {
            char *member = gw_strndup(c->values[0].ptr, c->values[0].len);
            removed = gw_map_del(v->map, member) != NULL;
            free(member);
            tidy(m, c->key, v);
        }
        reply_int(m, cb, arg, 0, removed);
        return 0;
    }
    case OP_SMEMBERS:
        v = lookup(m, c->key);
        if (v && v->type != V_SET)
            goto wrongtype;
        reply_map(m, v, false, cb, arg);
        return 0;
    case OP_RPUSH_CAPPED:
        if (!(v = obtain(m, c->key, V_LIST)))
            goto wrongtype;
        if (v->nitems >= c->count) {
            tidy(m, c->key, v);
            reply_int(m, cb, arg, GW_ELIMIT, (long long)v->nitems);
            return 0;
        }
        if (v->nitems == v->cap) {
            v->cap = v->cap ? v->cap * 2 : 8;
            v->items = gw_realloc(v->items, v->cap * sizeof *v->items);
        }
        v->items[v->nitems++] = blob_new(c->values[0].ptr, c->values[0].len);
        if (c->ttl_ms)
            set_ttl(m, c->key, v, c->ttl_ms);
        reply_int(m, cb, arg, 0, (long long)v->nitems);
        return 0;
    case OP_LRANGE: {
        v = lookup(m, c->key);
        if (v && v->type != V_LIST)
            goto wrongtype;
        size_t n = v ? v->nitems : 0;
        long a = clamp_index(c->start, n), b = clamp_index(c->stop, n);
        if (a < 0)
            a = 0;
        if (b >= (long)n)
            b = (long)n - 1;
        size_t count = b >= a ? (size_t)(b - a + 1) : 0;
        struct gw_store_str *items = gw_calloc(count ? count : 1, sizeof *items);
        for (size_t i = 0; i < count; i++) {
            items[i].ptr = v->items[(size_t)a + i]->data;
            items[i].len = v->items[(size_t)a + i]->len;
        }
        struct gw_store_reply r = {(long long)count, count, items};
        store_complete(st, cb, arg, 0, &r);
        free(items);
        return 0;
    }
    case OP_LPOP_N: {
        v = lookup(m, c->key);
        if (v && v->type != V_LIST)
            goto wrongtype;
        size_t k = v ? (c->count < v->nitems ? c->count : v->nitems) : 0;
        if (v) {
            for (size_t i = 0; i < k; i++)
                free(v->items[i]);
            memmove(v->items, v->items + k, (v->nitems - k) * sizeof *v->items);
            v->nitems -= k;
            tidy(m, c->key, v);
        }
        reply_int(m, cb, arg, 0, (long long)k);
        return 0;
    }
    case OP_INCR: {
        v = lookup(m, c->key);
        if (v && v->type != V_STR)
            goto wrongtype;
        bool created = !v;
        long long n = v ? strtoll(v->s->data, NULL, 10) + 1 : 1;
        char num[24];
        int len = snprintf(num, sizeof num, "%lld", n);
        if (!v)
            v = obtain(m, c->key, V_STR);
        free(v->s);
        v->s = blob_new(num, (size_t)len);
        if (created && c->ttl_ms)
            set_ttl(m, c->key, v, c->ttl_ms);
        reply_int(m, cb, arg, 0, n);
        return 0;
    }
    case OP_PUBLISH: {
        long long receivers = 0;
        for (struct store_sub *sub = st->subs; sub; sub = sub->next)
            receivers += strcmp(sub->channel, c->key) == 0;
        store_publish_local(st, c->key, c->values[0]);
        reply_int(m, cb, arg, 0, receivers);
        return 0;
    }
    }
    return GW_EINVAL;
wrongtype:
    reply_int(m, cb, arg, GW_EINVAL, 0);
    return 0;
}

static bool mem_available(const struct gw_store *st)
{
    (void)st;
    return true;
}

static void free_value(void *arg, const char *key, void *value)
{
    (void)arg;
    (void)key;
    mval_free(value);
}

static void sweep_closed(uv_handle_t *h)
{
    struct mem_store *m = h->data;
    store_base_close(&m->base);
}

static void mem_close(struct gw_store *st)
{
    struct mem_store *m = (struct mem_store *)st;
    gw_map_each(m->keys, free_value, NULL);
    gw_map_free(m->keys);
    m->keys = NULL;
    for (size_t i = 0; i < m->nheap; i++)
        free(m->heap[i].key);
    free(m->heap);
    uv_close((uv_handle_t *)&m->sweep, sweep_closed);
}

static const struct store_backend mem_backend = {"memory", mem_submit,    NULL,
                                                 NULL,     mem_available, mem_close};

int store_mem_open(uv_loop_t *loop, uint64_t timeout_ms, struct gw_store **out)
{
    struct mem_store *m = gw_calloc(1, sizeof *m);
    store_base_init(&m->base, &mem_backend, loop, timeout_ms);
    m->keys = gw_map_new();
    uv_timer_init(loop, &m->sweep);
    m->sweep.data = m;
    *out = &m->base;
    return 0;
}
