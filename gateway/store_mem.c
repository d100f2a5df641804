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

enum vtype { V_STR, V_HASH, V_SET, V_LIST, V_ZSET };

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
    size_t nitems, cap;    /* V_LIST */
    struct mem_zset *zset; /* V_ZSET (the block at the end of the file) */
};

struct deadline {
    uint64_t due;
    char *key;
};

struct mem_store;
static void zset_free(struct mem_zset *z);
static int mem_submit_ext(struct mem_store *m, const struct store_cmd *c, gw_store_cb cb,
                          void *arg);

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
    zset_free(v->zset);
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
    if (c->op >= OP_ZADD)
        return mem_submit_ext(m, c, cb, arg);
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
    default: /* OP_ZADD and later: mem_submit_ext() */
        break;
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

/* ---- Sorted sets, hash counters and capped sets (store.h's last block) ----
 *
 * A sorted set is a map from member to its current score plus a min-heap of (score, member)
 * entries. Changing a score pushes a new heap entry and bumps the member's generation, so older
 * entries become stale and are skipped (and freed) when they reach the top; the heap is rebuilt
 * from the map when stale entries outnumber live ones. Claims pop from the top, so they cost
 * O(k log n) for k claimed members. */

struct zmember {
    long long score;
    uint64_t gen;
};

struct zentry {
    long long score;
    uint64_t gen;
    char *member;
};

struct mem_zset {
    struct gw_map *members; /* member -> struct zmember */
    struct zentry *heap;
    size_t nheap, cap;
    uint64_t gen;
};

static void free_zmember(void *arg, const char *key, void *value)
{
    (void)arg;
    (void)key;
    free(value);
}

static void zset_free(struct mem_zset *z)
{
    if (!z)
        return;
    gw_map_each(z->members, free_zmember, NULL);
    gw_map_free(z->members);
    for (size_t i = 0; i < z->nheap; i++)
        free(z->heap[i].member);
    free(z->heap);
    free(z);
}

static bool zless(const struct zentry *a, const struct zentry *b)
{
    return a->score < b->score || (a->score == b->score && a->gen < b->gen);
}

static void zheap_push(struct mem_zset *z, struct zentry e)
{
    if (z->nheap == z->cap) {
        z->cap = z->cap ? z->cap * 2 : 16;
        z->heap = gw_realloc(z->heap, z->cap * sizeof *z->heap);
    }
    size_t i = z->nheap++;
    while (i > 0 && zless(&e, &z->heap[(i - 1) / 2])) {
        z->heap[i] = z->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    z->heap[i] = e;
}

/* Removes the top entry and returns it (the caller frees its member). */
static struct zentry zheap_pop(struct mem_zset *z)
{
    struct zentry top = z->heap[0], last = z->heap[--z->nheap];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= z->nheap)
            break;
        if (c + 1 < z->nheap && zless(&z->heap[c + 1], &z->heap[c]))
            c++;
        if (!zless(&z->heap[c], &last))
            break;
        z->heap[i] = z->heap[c];
        i = c;
    }
    if (z->nheap)
        z->heap[i] = last;
    return top;
}

static bool zlive(const struct mem_zset *z, const struct zentry *e)
{
    const struct zmember *m = gw_map_get(z->members, e->member);
    return m && m->gen == e->gen;
}

/* Drops stale entries from the top; afterwards the top (if any) is the lowest live score. */
static void zclean_top(struct mem_zset *z)
{
    while (z->nheap && !zlive(z, &z->heap[0]))
        free(zheap_pop(z).member);
}

static void zrebuild_entry(void *arg, const char *key, void *value)
{
    struct mem_zset *z = arg;
    const struct zmember *m = value;
    zheap_push(z, (struct zentry){m->score, m->gen, gw_strdup(key)});
}

static void zset_set(struct mem_zset *z, const char *member, long long score)
{
    struct zmember *m = gw_map_get(z->members, member);
    if (m && m->score == score)
        return;
    if (!m) {
        m = gw_calloc(1, sizeof *m);
        gw_map_put(z->members, member, m);
    }
    m->score = score;
    m->gen = ++z->gen;
    zheap_push(z, (struct zentry){score, m->gen, gw_strdup(member)});
    if (z->nheap > 2 * gw_map_count(z->members) + 64) {
        for (size_t i = 0; i < z->nheap; i++)
            free(z->heap[i].member);
        z->nheap = 0;
        gw_map_each(z->members, zrebuild_entry, z);
    }
}

static bool zset_del(struct mem_zset *z, const char *member)
{
    struct zmember *m = gw_map_del(z->members, member);
    free(m);
    return m != NULL;
}

static struct mem_zset *obtain_zset(struct mem_store *m, const char *key, struct mval **vp)
{
    struct mval *v = obtain(m, key, V_ZSET);
    if (!v)
        return NULL;
    if (!v->zset) {
        v->zset = gw_calloc(1, sizeof *v->zset);
        v->zset->members = gw_map_new();
    }
    *vp = v;
    return v->zset;
}

static void tidy_zset(struct mem_store *m, const char *key, struct mval *v)
{
    if (!v->zset || gw_map_count(v->zset->members) == 0)
        drop(m, key);
}

static int op_zadd(struct mem_store *m, const struct store_cmd *c, gw_store_cb cb, void *arg)
{
    struct mval *v;
    struct mem_zset *z = obtain_zset(m, c->key, &v);
    if (!z)
        return GW_EINVAL;
    char *member = gw_strndup(c->values[0].ptr, c->values[0].len);
    const struct zmember *cur = gw_map_get(z->members, member);
    int err = 0, written = 0;
    if (!cur && c->count && gw_map_count(z->members) >= c->count)
        err = GW_ELIMIT;
    else if (!cur || (c->mode == GW_ZADD_SET || (c->mode == GW_ZADD_LT && c->score < cur->score))) {
        zset_set(z, member, c->score);
        written = 1;
    }
    free(member);
    tidy_zset(m, c->key, v);
    reply_int(m, cb, arg, err, written);
    return 0;
}

static int op_zrem(struct mem_store *m, const struct store_cmd *c, gw_store_cb cb, void *arg)
{
    struct mval *v = lookup(m, c->key);
    if (v && v->type != V_ZSET)
        return GW_EINVAL;
    long long removed = 0;
    if (v && v->zset) {
        char *member = gw_strndup(c->values[0].ptr, c->values[0].len);
        const struct zmember *cur = gw_map_get(v->zset->members, member);
        if (cur && (c->op == OP_ZREM || cur->score == c->score))
            removed = zset_del(v->zset, member);
        free(member);
        tidy_zset(m, c->key, v);
    }
    reply_int(m, cb, arg, 0, removed);
    return 0;
}

static int op_zclaim(struct mem_store *m, const struct store_cmd *c, gw_store_cb cb, void *arg)
{
    struct mval *v = lookup(m, c->key);
    if (v && v->type != V_ZSET)
        return GW_EINVAL;
    struct mem_zset *z = v ? v->zset : NULL;
    size_t n = 0, cap = c->count < 64 ? c->count : 64;
    char **claimed = gw_calloc(cap, sizeof *claimed);
    while (z && n < c->count) {
        zclean_top(z);
        if (!z->nheap || z->heap[0].score > c->score)
            break;
        struct zentry top = zheap_pop(z);
        if (n == cap) {
            cap *= 2;
            claimed = gw_realloc(claimed, cap * sizeof *claimed);
        }
        claimed[n++] = top.member;
    }
    /* Leases are written after the loop so a lease at or below max_score is never reclaimed
     * by the same call. */
    for (size_t i = 0; i < n; i++)
        zset_set(z, claimed[i], c->score2);
    long long next = -1;
    if (z) {
        zclean_top(z);
        if (z->nheap)
            next = z->heap[0].score;
    }
    struct gw_store_str *items = gw_calloc(n ? n : 1, sizeof *items);
    for (size_t i = 0; i < n; i++)
        items[i] = gw_store_cstr(claimed[i]);
    struct gw_store_reply r = {next, n, items};
    store_complete(&m->base, cb, arg, 0, &r);
    for (size_t i = 0; i < n; i++)
        free(claimed[i]);
    free(claimed);
    free(items);
    return 0;
}

static void set_field(struct mval *v, struct gw_store_str f, struct gw_store_str val)
{
    char *field = gw_strndup(f.ptr, f.len);
    free(gw_map_get(v->map, field));
    gw_map_put(v->map, field, blob_new(val.ptr, val.len));
    free(field);
}

static void reply_hash(struct mem_store *m, struct mval *v, long long integer, gw_store_cb cb,
                       void *arg)
{
    size_t n = v ? gw_map_count(v->map) * 2 : 0;
    struct collect col = {gw_calloc(n ? n : 1, sizeof(struct gw_store_str)), 0, true};
    if (v)
        gw_map_each(v->map, collect_entry, &col);
    struct gw_store_reply r = {integer, col.n, col.items};
    store_complete(&m->base, cb, arg, 0, &r);
    free(col.items);
}

static int op_hincrby(struct mem_store *m, const struct store_cmd *c, gw_store_cb cb, void *arg)
{
    struct mval *v = lookup(m, c->key);
    if (v && v->type != V_HASH)
        return GW_EINVAL;
    long long cur = 0;
    if (v) {
        char *field = gw_strndup(c->fields[0].ptr, c->fields[0].len);
        const struct blob *b = gw_map_get(v->map, field);
        free(field);
        if (b) {
            char *end;
            cur = strtoll(b->data, &end, 10);
            if (end == b->data || *end)
                return GW_EINVAL; /* not an integer: Redis refuses it too */
        }
    }
    v = obtain(m, c->key, V_HASH);
    char num[24];
    int len = snprintf(num, sizeof num, "%lld", cur + c->score);
    set_field(v, c->fields[0], (struct gw_store_str){num, (size_t)len});
    for (size_t i = 1; i < c->n; i++)
        set_field(v, c->fields[i], c->values[i]);
    if (c->ttl_ms)
        set_ttl(m, c->key, v, c->ttl_ms);
    reply_hash(m, v, cur + c->score, cb, arg);
    return 0;
}

static int op_htake(struct mem_store *m, const struct store_cmd *c, gw_store_cb cb, void *arg)
{
    struct mval *v = lookup(m, c->key);
    if (v && v->type != V_HASH)
        return GW_EINVAL;
    reply_hash(m, v, 0, cb, arg); /* copied now, so the update below does not show */
    for (size_t i = 0; v && i < c->n; i++)
        set_field(v, c->fields[i], c->values[i]);
    return 0;
}

static int op_sadd_capped(struct mem_store *m, const struct store_cmd *c, gw_store_cb cb, void *arg)
{
    struct mval *v = obtain(m, c->key, V_SET);
    if (!v)
        return GW_EINVAL;
    char *member = gw_strndup(c->values[0].ptr, c->values[0].len);
    int err = 0;
    long long added = 0;
    if (gw_map_get(v->map, member) == NULL) {
        if (c->count && gw_map_count(v->map) >= c->count)
            err = GW_ELIMIT;
        else {
            gw_map_put(v->map, member, v);
            added = 1;
        }
    }
    free(member);
    if (!err && c->ttl_ms)
        set_ttl(m, c->key, v, c->ttl_ms);
    tidy(m, c->key, v);
    reply_int(m, cb, arg, err, added);
    return 0;
}

static int mem_submit_ext(struct mem_store *m, const struct store_cmd *c, gw_store_cb cb, void *arg)
{
    int rc = GW_EINVAL;
    switch (c->op) {
    case OP_ZADD:
        rc = op_zadd(m, c, cb, arg);
        break;
    case OP_ZREM:
    case OP_ZREM_IF:
        rc = op_zrem(m, c, cb, arg);
        break;
    case OP_ZCLAIM:
        rc = op_zclaim(m, c, cb, arg);
        break;
    case OP_HINCRBY:
        rc = op_hincrby(m, c, cb, arg);
        break;
    case OP_HTAKE:
        rc = op_htake(m, c, cb, arg);
        break;
    case OP_SADD_CAPPED:
        rc = op_sadd_capped(m, c, cb, arg);
        break;
    default:
        break;
    }
    if (rc == GW_EINVAL) /* wrong type or bad value: reported like the other ops */
        reply_int(m, cb, arg, GW_EINVAL, 0);
    return 0;
}
