/* JSON values for the mobile protocol: a bounded, strict parser on yajl's streaming callbacks
 * (never yajl_tree), and a writer on yajl_gen. */
#ifndef GW_JSON_H
#define GW_JSON_H

#include <stdbool.h>
#include <stddef.h>

#define GW_JSON_MAX_DEPTH 32
#define GW_JSON_MAX_INT   9007199254740991LL /* 2^53 - 1 (RFC 7493 §2.2) */

enum gw_json_type {
    GW_JSON_NULL,
    GW_JSON_BOOL,
    GW_JSON_INT,
    GW_JSON_STRING,
    GW_JSON_ARRAY,
    GW_JSON_OBJECT
};

/* A value. Arrays and objects keep their members as a list (object members carry key). */
struct gw_json {
    enum gw_json_type type;
    struct gw_json *next;
    char *key;
    bool b;
    long long i;
    char *s; /* NUL-terminated; never holds NUL (refused) */
    size_t slen;
    struct gw_json *child, *last;
    size_t n;
};

/* Parses text (len bytes, at most max_bytes) into an owned value. The top level must be an
 * object. Refused, with GW_EINVAL and a reason in err: malformed JSON, depth beyond
 * GW_JSON_MAX_DEPTH, duplicate keys, numbers that are not integers within ±(2^53-1), strings
 * holding NUL or other C0 controls (but tab, LF, CR), lone surrogates or U+FFFE/U+FFFF, and
 * input over max_bytes (GW_ELIMIT). */
int gw_json_parse(const char *text, size_t len, size_t max_bytes, struct gw_json **out, char *err,
                  size_t errlen);
/* Frees a value gw_json_parse() returned, whole (NULL is fine; never a part of one). */
void gw_json_free(struct gw_json *v);
/* Member lookups on an object (borrowed; NULL when absent or of another type). */
const struct gw_json *gw_json_get(const struct gw_json *obj, const char *key);
const char *gw_json_str(const struct gw_json *obj, const char *key);
/* 1 and *out set when key holds an integer, 0 otherwise. */
int gw_json_int(const struct gw_json *obj, const char *key, long long *out);

/* A writer: compact JSON into a growing buffer. */
struct gw_json_out;
/* Spare writers, emptied, kept with their buffers for the next message: one per process, held
 * in the core (gateway/core.h). */
struct gw_json_writers;
struct gw_json_writers *gw_json_writers_new(void);
/* Frees the spares; every writer taken from pool must have been freed before. */
void gw_json_writers_free(struct gw_json_writers *pool);
/* A writer from pool's spares, or a new one (pool NULL: always new, freed whole). */
struct gw_json_out *gw_json_out_new(struct gw_json_writers *pool);
/* Frees w, or keeps it emptied in the pool it came from. */
void gw_json_out_free(struct gw_json_out *w);
void gw_json_open(struct gw_json_out *w);  /* { */
void gw_json_close(struct gw_json_out *w); /* } */
void gw_json_open_array(struct gw_json_out *w);
void gw_json_close_array(struct gw_json_out *w);
void gw_json_key(struct gw_json_out *w, const char *key);
void gw_json_string(struct gw_json_out *w, const char *s, size_t len);
void gw_json_cstr(struct gw_json_out *w, const char *s);
void gw_json_integer(struct gw_json_out *w, long long i);
void gw_json_bool(struct gw_json_out *w, bool b);
void gw_json_kv(struct gw_json_out *w, const char *key, const char *value); /* skips NULL */
/* The text written so far (borrowed until the next call). */
const char *gw_json_text(struct gw_json_out *w, size_t *len);
/* Starts over with an empty writer. */
void gw_json_reset(struct gw_json_out *w);

#endif
