/* JSON for the mobile protocol.
 *
 * Parsing runs on yajl's callback interface and builds our own small tree, so that every bound
 * is ours: depth, size, duplicate keys, integer range, and what a string may hold. yajl turns a
 * lone surrogate escape into '?', so escapes are checked on the raw text first; decoded strings
 * are then checked for characters XML cannot carry, since every string may end up in a stanza. */
#include "xmpp/json.h"

#include "gateway/err.h"
#include "gateway/mem.h"
#include "gateway/num.h"
#include "gateway/utf8.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_parse.h>

/* A parsed document's nodes and strings are carved from a few chunks (three allocations per
 * value before: node, key, string; a message and an ack are some 20). The root is the first
 * node of the first chunk, so gw_json_free() finds the chunks from it. The first chunk is
 * sized from the text, so that most messages take one; later ones double, each at least what
 * is asked. The whole is bounded by the text, which is bounded by max_bytes. */
struct chunk {
    struct chunk *next;
    size_t used, cap;
    max_align_t data[]; /* cap bytes */
};

#define CHUNK_FIRST_MAX 8192
#define CHUNK_MAX       65536

struct builder {
    struct gw_json *root;
    struct gw_json *stack[GW_JSON_MAX_DEPTH + 1];
    unsigned depth;
    char *pending_key;
    const char *error;
    struct chunk *first, *cur;
};

static void *carve(struct builder *b, size_t n)
{
    n = (n + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
    struct chunk *c = b->cur;
    if (c->cap - c->used < n) {
        size_t cap = c->cap * 2 < CHUNK_MAX ? c->cap * 2 : CHUNK_MAX;
        if (cap < n)
            cap = n;
        struct chunk *next = gw_malloc(sizeof *next + cap);
        next->next = NULL;
        next->used = 0;
        next->cap = cap;
        c->next = next;
        b->cur = c = next;
    }
    void *p = (char *)c->data + c->used;
    c->used += n;
    return p;
}

static char *carve_str(struct builder *b, const unsigned char *s, size_t len)
{
    char *p = carve(b, len + 1);
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

static void free_chunks(struct chunk *c)
{
    while (c) {
        struct chunk *next = c->next;
        free(c);
        c = next;
    }
}

static void set_error(struct builder *b, const char *why)
{
    if (!b->error)
        b->error = why;
}

static struct gw_json *add(struct builder *b, enum gw_json_type type)
{
    if (b->depth == 0 && (b->root || type != GW_JSON_OBJECT)) {
        set_error(b, "the top level must be one object");
        return NULL;
    }
    struct gw_json *v = carve(b, sizeof *v);
    memset(v, 0, sizeof *v);
    v->type = type;
    if (b->depth == 0) {
        if ((void *)v != (void *)b->first->data)
            abort(); /* cannot happen: nothing is carved before the root */
        b->root = v;
        return v;
    }
    struct gw_json *parent = b->stack[b->depth - 1];
    if (parent->type == GW_JSON_OBJECT) {
        v->key = b->pending_key;
        b->pending_key = NULL;
    }
    if (parent->last)
        parent->last->next = v;
    else
        parent->child = v;
    parent->last = v;
    parent->n++;
    return v;
}

static int push(struct builder *b, struct gw_json *v)
{
    if (!v)
        return 0;
    if (b->depth >= GW_JSON_MAX_DEPTH) {
        set_error(b, "nested too deep");
        return 0;
    }
    b->stack[b->depth++] = v;
    return 1;
}

static int cb_null(void *ctx)
{
    return add(ctx, GW_JSON_NULL) != NULL;
}

static int cb_bool(void *ctx, int val)
{
    struct gw_json *v = add(ctx, GW_JSON_BOOL);
    if (v)
        v->b = val != 0;
    return v != NULL;
}

static int cb_integer(void *ctx, long long val)
{
    if (val > GW_JSON_MAX_INT || val < -GW_JSON_MAX_INT) {
        set_error(ctx, "integer outside ±(2^53-1)");
        return 0;
    }
    struct gw_json *v = add(ctx, GW_JSON_INT);
    if (v)
        v->i = val;
    return v != NULL;
}

static int cb_double(void *ctx, double val)
{
    (void)val;
    set_error(ctx, "only integers are allowed");
    return 0;
}

static int cb_string(void *ctx, const unsigned char *s, size_t len)
{
    /* Characters XML cannot carry are refused in every string: it may become stanza text. */
    if (!gw_utf8_xml_valid(s, len)) {
        set_error(ctx, "a string holds a character XML cannot carry");
        return 0;
    }
    struct gw_json *v = add(ctx, GW_JSON_STRING);
    if (v) {
        v->s = carve_str(ctx, s, len);
        v->slen = len;
    }
    return v != NULL;
}

static int cb_start_map(void *ctx)
{
    return push(ctx, add(ctx, GW_JSON_OBJECT));
}

static int cb_map_key(void *ctx, const unsigned char *key, size_t len)
{
    struct builder *b = ctx;
    if (!gw_utf8_xml_valid(key, len)) {
        set_error(b, "a key holds a character XML cannot carry");
        return 0;
    }
    struct gw_json *obj = b->stack[b->depth - 1];
    for (struct gw_json *m = obj->child; m; m = m->next)
        if (strlen(m->key) == len && memcmp(m->key, key, len) == 0) {
            set_error(b, "duplicate key");
            return 0;
        }
    b->pending_key = carve_str(b, key, len); /* an unused one stays in the chunk */
    return 1;
}

static int cb_end(void *ctx)
{
    struct builder *b = ctx;
    b->depth--;
    return 1;
}

static int cb_start_array(void *ctx)
{
    return push(ctx, add(ctx, GW_JSON_ARRAY));
}

static const yajl_callbacks callbacks = {cb_null, cb_bool,        cb_integer,   cb_double,
                                         NULL,    cb_string,      cb_start_map, cb_map_key,
                                         cb_end,  cb_start_array, cb_end};

static int hexval(const char *p)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= c - '0';
        else if (c >= 'a' && c <= 'f')
            v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            v |= c - 'A' + 10;
        else
            return -1;
    }
    return v;
}

/* Checks every \uXXXX escape in the raw text: a high surrogate must be followed by a low one,
 * and a low one must follow a high one. (yajl would quietly turn either into '?'.) */
static bool surrogates_paired(const char *t, size_t len)
{
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        if (t[i] == '"') {
            in_string = !in_string;
        } else if (in_string && t[i] == '\\' && i + 1 < len) {
            if (t[i + 1] == 'u' && i + 5 < len) {
                int v = hexval(t + i + 2);
                if (v >= 0xdc00 && v <= 0xdfff)
                    return false;
                if (v >= 0xd800 && v <= 0xdbff) {
                    int w = i + 11 < len && t[i + 6] == '\\' && t[i + 7] == 'u' ? hexval(t + i + 8)
                                                                                : -1;
                    if (w < 0xdc00 || w > 0xdfff)
                        return false;
                    i += 6;
                }
                i += 5;
            } else {
                i++; /* skip the escaped character */
            }
        }
    }
    return true;
}

/* yajl's own allocations for a parse (its handle, lexer, state stack, the buffer that decodes
 * escapes: some six per message) come from a block on the parse's stack, and from malloc only
 * past it. Each carries its size before it, for realloc. */
#define YAJL_BLOCK 4096
#define YAJL_HDR   16 /* keeps what follows aligned as malloc's */

struct yajl_block {
    max_align_t data[YAJL_BLOCK / sizeof(max_align_t)];
    size_t used;
};

static bool in_block(const struct yajl_block *k, const void *p)
{
    const unsigned char *b = (const unsigned char *)k->data;
    return (const unsigned char *)p >= b && (const unsigned char *)p < b + YAJL_BLOCK;
}

static void *ya_malloc(void *ctx, size_t n)
{
    struct yajl_block *k = ctx;
    size_t need = YAJL_HDR + ((n + 15) & ~(size_t)15);
    unsigned char *h;
    if (need <= YAJL_BLOCK - k->used) {
        h = (unsigned char *)k->data + k->used;
        k->used += need;
    } else {
        h = gw_malloc(YAJL_HDR + n);
    }
    memcpy(h, &n, sizeof n);
    return h + YAJL_HDR;
}

static void ya_free(void *ctx, void *p)
{
    if (p && !in_block(ctx, p))
        free((unsigned char *)p - YAJL_HDR);
}

static void *ya_realloc(void *ctx, void *p, size_t n)
{
    if (!p)
        return ya_malloc(ctx, n);
    size_t old;
    memcpy(&old, (unsigned char *)p - YAJL_HDR, sizeof old);
    void *q = ya_malloc(ctx, n);
    memcpy(q, p, old < n ? old : n);
    ya_free(ctx, p);
    return q;
}

int gw_json_parse(const char *text, size_t len, size_t max_bytes, struct gw_json **out, char *err,
                  size_t errlen)
{
    *out = NULL;
    if (len > max_bytes) {
        snprintf(err, errlen, "message larger than %zu bytes", max_bytes);
        return GW_ELIMIT;
    }
    if (!surrogates_paired(text, len)) {
        snprintf(err, errlen, "a lone surrogate cannot be carried");
        return GW_EINVAL;
    }
    struct builder b;
    memset(&b, 0, sizeof b);
    /* the root first, at the start of the first chunk: room for it, the text's strings and a
     * node per few bytes */
    size_t cap = sizeof(struct gw_json) * 4 + 2 * len;
    if (cap > CHUNK_FIRST_MAX)
        cap = CHUNK_FIRST_MAX;
    b.first = b.cur = gw_malloc(sizeof *b.first + cap);
    b.first->next = NULL;
    b.first->used = 0;
    b.first->cap = cap;
    struct yajl_block block;
    block.used = 0;
    yajl_alloc_funcs funcs = {ya_malloc, ya_realloc, ya_free, &block};
    yajl_handle h = yajl_alloc(&callbacks, &funcs, &b);
    yajl_status st = yajl_parse(h, (const unsigned char *)text, len);
    if (st == yajl_status_ok)
        st = yajl_complete_parse(h);
    if (st != yajl_status_ok && !b.error)
        b.error = "malformed JSON";
    yajl_free(h);
    if (b.error || !b.root) {
        snprintf(err, errlen, "%s", b.error ? b.error : "empty message");
        free_chunks(b.first);
        return GW_EINVAL;
    }
    *out = b.root;
    return 0;
}

void gw_json_free(struct gw_json *v)
{
    if (v) /* a root: the first node of its first chunk */
        free_chunks((struct chunk *)((char *)v - offsetof(struct chunk, data)));
}

const struct gw_json *gw_json_get(const struct gw_json *obj, const char *key)
{
    if (!obj || obj->type != GW_JSON_OBJECT)
        return NULL;
    /* Keys are mostly one or two letters: the first one decides without a call. */
    for (const struct gw_json *m = obj->child; m; m = m->next)
        if (m->key[0] == key[0] && strcmp(m->key, key) == 0)
            return m;
    return NULL;
}

const char *gw_json_str(const struct gw_json *obj, const char *key)
{
    const struct gw_json *v = gw_json_get(obj, key);
    return v && v->type == GW_JSON_STRING ? v->s : NULL;
}

int gw_json_int(const struct gw_json *obj, const char *key, long long *outp)
{
    const struct gw_json *v = gw_json_get(obj, key);
    if (!v || v->type != GW_JSON_INT)
        return 0;
    *outp = v->i;
    return 1;
}

/* ---- writer ---- */

struct gw_json_out {
    yajl_gen g;
    struct gw_json_writers *pool; /* where it goes back when freed, or NULL */
    struct gw_json_out *next;     /* in the pool's spare list */
};

/* Writers are made and dropped for every message sent. A few spare ones are kept, emptied,
 * with their buffers: yajl allocates a 2 KB buffer and its state for every generator, and those
 * allocations were a tenth of a JSON message's instructions in the allocator. A writer whose
 * text grew past SPARE_MAX_TEXT gets a new generator when it is emptied (gw_json_reset), so the
 * spares never hold more than a few small buffers. */
#define SPARE_WRITERS  8
#define SPARE_MAX_TEXT 4096

struct gw_json_writers {
    struct gw_json_out *spare;
    unsigned nspare;
};

static void writer_init(struct gw_json_out *w)
{
    w->g = yajl_gen_alloc(NULL);
    yajl_gen_config(w->g, yajl_gen_validate_utf8, 1);
}

static void writer_destroy(struct gw_json_out *w)
{
    yajl_gen_free(w->g);
    free(w);
}

struct gw_json_writers *gw_json_writers_new(void)
{
    return gw_calloc(1, sizeof(struct gw_json_writers));
}

void gw_json_writers_free(struct gw_json_writers *pool)
{
    if (!pool)
        return;
    while (pool->spare) {
        struct gw_json_out *w = pool->spare;
        pool->spare = w->next;
        writer_destroy(w);
    }
    free(pool);
}

struct gw_json_out *gw_json_out_new(struct gw_json_writers *pool)
{
    struct gw_json_out *w = pool ? pool->spare : NULL;
    if (w) {
        pool->spare = w->next;
        pool->nspare--;
        w->next = NULL;
        return w;
    }
    w = gw_malloc(sizeof *w);
    writer_init(w);
    w->pool = pool;
    w->next = NULL;
    return w;
}

void gw_json_out_free(struct gw_json_out *w)
{
    if (!w)
        return;
    struct gw_json_writers *pool = w->pool;
    if (pool && pool->nspare < SPARE_WRITERS) {
        gw_json_reset(w); /* empties it, with a new generator if its buffer grew large */
        w->next = pool->spare;
        pool->spare = w;
        pool->nspare++;
        return;
    }
    writer_destroy(w);
}

void gw_json_open(struct gw_json_out *w)
{
    yajl_gen_map_open(w->g);
}

void gw_json_close(struct gw_json_out *w)
{
    yajl_gen_map_close(w->g);
}

void gw_json_open_array(struct gw_json_out *w)
{
    yajl_gen_array_open(w->g);
}

void gw_json_close_array(struct gw_json_out *w)
{
    yajl_gen_array_close(w->g);
}

void gw_json_key(struct gw_json_out *w, const char *key)
{
    yajl_gen_string(w->g, (const unsigned char *)key, strlen(key));
}

void gw_json_string(struct gw_json_out *w, const char *s, size_t len)
{
    yajl_gen_string(w->g, (const unsigned char *)s, len);
}

void gw_json_cstr(struct gw_json_out *w, const char *s)
{
    gw_json_string(w, s, strlen(s));
}

void gw_json_integer(struct gw_json_out *w, long long i)
{
    /* yajl_gen_integer() formats with sprintf (some 400 instructions); the digits are the same */
    char d[GW_U64_DEC_MAX + 1];
    size_t n = 0;
    if (i < 0)
        d[n++] = '-';
    n += gw_u64_dec(d + n, i < 0 ? 0 - (unsigned long long)i : (unsigned long long)i);
    yajl_gen_number(w->g, d, n);
}

void gw_json_bool(struct gw_json_out *w, bool b)
{
    yajl_gen_bool(w->g, b);
}

void gw_json_kv(struct gw_json_out *w, const char *key, const char *value)
{
    if (!value)
        return;
    gw_json_key(w, key);
    gw_json_cstr(w, value);
}

const char *gw_json_text(struct gw_json_out *w, size_t *len)
{
    const unsigned char *buf;
    yajl_gen_get_buf(w->g, &buf, len);
    return (const char *)buf;
}

void gw_json_reset(struct gw_json_out *w)
{
    size_t len;
    gw_json_text(w, &len);
    if (len > SPARE_MAX_TEXT) { /* do not keep a large buffer */
        yajl_gen_free(w->g);
        writer_init(w);
        return;
    }
    yajl_gen_reset(w->g, NULL);
    yajl_gen_clear(w->g);
}
