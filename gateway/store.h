/* The store: where session state lives (Redis for several nodes, in-process for one).
 *
 * The interface is a small set of asynchronous key operations that both backends implement
 * with the same meaning (hashes, sets, capped lists, counters, TTLs, pub/sub). Every call
 * returns at once; the callback runs later from the loop, exactly once, with err 0 or a
 * negative GW_E* (GW_EUNAVAIL when the backend is down, GW_ETIMEDOUT when a command's deadline
 * passed). A NULL callback means fire-and-forget. Strings passed in are copied. */
#ifndef GW_STORE_H
#define GW_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct gw_store;

/* One string value (binary-safe). */
struct gw_store_str {
    const char *ptr;
    size_t len;
};

/* A reply, borrowed for the duration of the callback.
 * hgetall: items are field, value, field, value…; smembers / lrange: the members;
 * get: one item or none (missing key); incr / rpush / sadd / srem / del: integer. */
struct gw_store_reply {
    long long integer;
    size_t n;
    const struct gw_store_str *items;
};

/* The value of field name in an hgetall reply (borrowed), or NULL; r NULL is fine. */
const char *gw_store_reply_field(const struct gw_store_reply *r, const char *name);

typedef void (*gw_store_cb)(void *arg, int err, const struct gw_store_reply *reply);
/* A pub/sub message, borrowed for the call. */
typedef void (*gw_store_msg_cb)(void *arg, const char *channel, const char *msg, size_t len);

/* Opens a store on loop. url NULL or empty: the in-process store. Otherwise
 * "redis://host:port/db" (the Redis backend connects in the background and reconnects with
 * backoff; commands while it is down fail with GW_EUNAVAIL). timeout_ms bounds every command.
 * Returns 0 and an owned store, or GW_EINVAL for a bad URL. */
int gw_store_open(uv_loop_t *loop, const char *url, uint64_t timeout_ms, struct gw_store **out);
/* Fails every pending command with GW_ECLOSED, closes connections, then calls done(arg) once
 * the loop has released every handle; the store is freed after done returns. */
void gw_store_close(struct gw_store *st, void (*done)(void *arg), void *arg);
/* True when commands can currently succeed. */
bool gw_store_available(const struct gw_store *st);
/* "redis" or "memory". */
const char *gw_store_backend(const struct gw_store *st);
struct gw_metrics;
/* Times every later command from submit to completion (mxgw_store_command_seconds, a
 * histogram) and counts failed ones by kind (mxgw_store_errors_total{error=timeout|unavailable|
 * other}). m is borrowed and must outlive the store. */
void gw_store_set_metrics(struct gw_store *st, struct gw_metrics *m);

/* Hash: sets n fields; if ttl_ms > 0 the key's TTL is (re)set in the same atomic step. */
int gw_store_hset(struct gw_store *st, const char *key, size_t n, const struct gw_store_str *fields,
                  const struct gw_store_str *values, uint64_t ttl_ms, gw_store_cb cb, void *arg);
int gw_store_hgetall(struct gw_store *st, const char *key, gw_store_cb cb, void *arg);
/* Deletes a key of any type; integer = number removed. */
int gw_store_del(struct gw_store *st, const char *key, gw_store_cb cb, void *arg);
int gw_store_expire(struct gw_store *st, const char *key, uint64_t ttl_ms, gw_store_cb cb,
                    void *arg);
/* Plain string values. */
int gw_store_set(struct gw_store *st, const char *key, struct gw_store_str value, uint64_t ttl_ms,
                 gw_store_cb cb, void *arg);
int gw_store_get(struct gw_store *st, const char *key, gw_store_cb cb, void *arg);
/* Sets (ttl_ms > 0 refreshes the key's TTL on add). */
int gw_store_sadd(struct gw_store *st, const char *key, struct gw_store_str member, uint64_t ttl_ms,
                  gw_store_cb cb, void *arg);
int gw_store_srem(struct gw_store *st, const char *key, struct gw_store_str member, gw_store_cb cb,
                  void *arg);
int gw_store_smembers(struct gw_store *st, const char *key, gw_store_cb cb, void *arg);
/* Lists: appends value unless the list already holds max_len items, in which case the callback
 * gets GW_ELIMIT and nothing is appended; integer = new length. */
int gw_store_rpush_capped(struct gw_store *st, const char *key, struct gw_store_str value,
                          size_t max_len, uint64_t ttl_ms, gw_store_cb cb, void *arg);
/* Items start..stop inclusive (negative counts from the end, as in Redis). */
int gw_store_lrange(struct gw_store *st, const char *key, long start, long stop, gw_store_cb cb,
                    void *arg);
/* Removes the first n items. */
int gw_store_lpop_n(struct gw_store *st, const char *key, size_t n, gw_store_cb cb, void *arg);
/* Counter: increments and, when it was created by this call, sets ttl_ms; integer = value. */
int gw_store_incr(struct gw_store *st, const char *key, uint64_t ttl_ms, gw_store_cb cb, void *arg);
/* A guard makes a write conditional: it is applied only while field `field` of the hash at
 * `key` holds `expect` (a missing field reads as ""; a missing key fails the guard), checked and
 * applied in one atomic step. It lets only a record's current owner write it: a node that lost
 * ownership gets GW_ESTALE and nothing changes. The strings are copied like every other. */
struct gw_store_guard {
    const char *key;
    const char *field;
    const char *expect;
};

/* Guarded variants of hset, rpush_capped and lpop_n: the same effect and reply when the guard
 * holds, GW_ESTALE (nothing done) when it does not. A compare-and-set of the guard field itself
 * is hset_if writing that field. */
int gw_store_hset_if(struct gw_store *st, const struct gw_store_guard *g, const char *key, size_t n,
                     const struct gw_store_str *fields, const struct gw_store_str *values,
                     uint64_t ttl_ms, gw_store_cb cb, void *arg);
int gw_store_rpush_if(struct gw_store *st, const struct gw_store_guard *g, const char *key,
                      struct gw_store_str value, size_t max_len, uint64_t ttl_ms, gw_store_cb cb,
                      void *arg);
int gw_store_lpop_n_if(struct gw_store *st, const struct gw_store_guard *g, const char *key,
                       size_t n, gw_store_cb cb, void *arg);
/* Deletes the guard's key and the nkeys other keys (at most 8) if the guard holds; integer =
 * keys removed. */
int gw_store_del_if(struct gw_store *st, const struct gw_store_guard *g, size_t nkeys,
                    const char *const *keys, gw_store_cb cb, void *arg);
/* Pub/sub. subscribe delivers every later message on channel to fn until unsubscribe; the
 * Redis backend re-subscribes after a reconnect. */
int gw_store_publish(struct gw_store *st, const char *channel, struct gw_store_str msg,
                     gw_store_cb cb, void *arg);
int gw_store_subscribe(struct gw_store *st, const char *channel, gw_store_msg_cb fn, void *arg);
int gw_store_unsubscribe(struct gw_store *st, const char *channel);

/* Convenience for C strings. */
static inline struct gw_store_str gw_store_cstr(const char *s)
{
    struct gw_store_str v = {s, 0};
    while (s[v.len])
        v.len++;
    return v;
}

/* ---- Sorted sets, hash counters and capped sets (used by the push delivery queue) ----
 *
 * Scores are integers (both backends keep them exact up to 2^53: epoch milliseconds fit).
 * Every operation below is atomic in both backends, so several nodes can share one queue. */

enum gw_store_zadd_mode {
    GW_ZADD_SET, /* add, or move to the new score */
    GW_ZADD_NX,  /* only add a member that is not there */
    GW_ZADD_LT,  /* add, or move only to a lower score */
};

/* Sets member's score per mode. max_card > 0 bounds the set: adding a new member to a set that
 * already holds max_card fails with GW_ELIMIT and changes nothing. integer = 1 when the score
 * was written, 0 when the mode left it alone. */
int gw_store_zadd(struct gw_store *st, const char *key, struct gw_store_str member, long long score,
                  enum gw_store_zadd_mode mode, size_t max_card, gw_store_cb cb, void *arg);
/* Removes member; integer = number removed. */
int gw_store_zrem(struct gw_store *st, const char *key, struct gw_store_str member, gw_store_cb cb,
                  void *arg);
/* Removes member only while its score is still score (compare-and-delete: a claimer finishing
 * its lease must not remove an entry that someone has rescheduled meanwhile). */
int gw_store_zrem_if(struct gw_store *st, const char *key, struct gw_store_str member,
                     long long score, gw_store_cb cb, void *arg);
/* Claims due entries: the members with score <= max_score, lowest first, at most limit, are
 * moved to lease_score in the same atomic step (so no other claimer sees them until the lease
 * runs out). items = the claimed members; integer = the lowest score left in the set after the
 * claim (leases included), or -1 when the set is empty. */
int gw_store_zclaim(struct gw_store *st, const char *key, long long max_score, size_t limit,
                    long long lease_score, gw_store_cb cb, void *arg);
/* Adds by to the integer in field (a missing field counts as 0) and sets n more fields in the
 * same step; ttl_ms > 0 (re)sets the key's TTL. integer = the new value; items = the whole hash
 * after the update (field, value, …). */
int gw_store_hincrby(struct gw_store *st, const char *key, struct gw_store_str field, long long by,
                     size_t n, const struct gw_store_str *fields, const struct gw_store_str *values,
                     uint64_t ttl_ms, gw_store_cb cb, void *arg);
/* Returns the hash as it was (items as hgetall) and sets n fields in the same atomic step. A
 * missing key stays missing (empty reply): nothing is created. */
int gw_store_htake(struct gw_store *st, const char *key, size_t n,
                   const struct gw_store_str *fields, const struct gw_store_str *values,
                   gw_store_cb cb, void *arg);
/* Adds member unless the set already holds max members (GW_ELIMIT, nothing added; re-adding a
 * member is always fine; max 0: no bound). ttl_ms > 0 refreshes the TTL. integer = 1 if added,
 * 0 if present. */
int gw_store_sadd_capped(struct gw_store *st, const char *key, struct gw_store_str member,
                         size_t max, uint64_t ttl_ms, gw_store_cb cb, void *arg);

#endif
