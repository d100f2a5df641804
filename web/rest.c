/* The REST API: routing under /api/v1, the request checks, API-key authentication and per-key
 * rate limits; the operations themselves live in rest_send.c, rest_forward.c (sends through
 * another node's component link), rest_sessions.c and rest_push.c.
 *
 * A call runs as a chain of store round trips on one deferred HTTP request: read the key's
 * record (mxgw:apikey:<id>), check the hash in constant time and the operation against the
 * key's scope, count the request in this window (mxgw:rate:<id>:<window>), then run the
 * operation. Each callback owed to a call holds a reference; the call (and, once stopping,
 * the module) is freed when the last one comes back, so nothing is freed under a callback.
 *
 * Store down (CHECKLIST 1L): a key verified within rest_key_cache is accepted from the cache
 * and anything else gets 503 with Retry-After (never fail open); rate limits fall back to a
 * stricter count in this process. Every authentication failure gets the same 401 body. */
#include "web/rest_impl.h"

#include "gateway/err.h"
#include "gateway/log.h"
#include "gateway/mem.h"
#include "gateway/metrics.h"
#include "gateway/rand.h"
#include "gateway/store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define PREFIX        "/api/v1"
#define MAX_CACHED    1024
#define CALL_DEADLINE 5000 /* ms added to the longest wait of an operation */

static const char *const route_names[RR_COUNT] = {"messages", "stanzas", "sessions",
                                                  "session",  "push",    "other"};
static const unsigned codes[] = {200, 201, 202, 204, 400, 401, 403, 404, 405, 406,
                                 409, 413, 415, 429, 500, 501, 502, 503, 504};
#define NCODES (sizeof codes / sizeof codes[0])

static const char *const media_types[] = {"application/json", "application/xml", "text/xml", NULL};

static void free_entry(void *arg, const char *key, void *value)
{
    (void)arg;
    (void)key;
    free(value);
}

/* Empties a map whose values are plain allocations. */
static void clear_map(struct gw_map **m)
{
    gw_map_each(*m, free_entry, NULL);
    gw_map_free(*m);
    *m = gw_map_new();
}

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

unsigned rest_retry_after_s(const struct gw_rest *r)
{
    return (unsigned)((r->core->cfg->rest_retry_after_ms + 999) / 1000);
}

/* ---- calls ---- */

void rest_call_ref(struct rest_call *c)
{
    c->refs++;
}

void rest_call_unref(struct rest_call *c)
{
    if (--c->refs > 0)
        return;
    struct gw_rest *r = c->r;
    if (c->prev)
        c->prev->next = c->next;
    else
        r->calls = c->next;
    if (c->next)
        c->next->prev = c->prev;
    gw_memzero(c->token, sizeof c->token);
    gw_key_scope_free(&c->scope);
    gw_rest_stanza_free(&c->st);
    gw_json_out_free(c->out);
    free(c->arg);
    free(c->arg2);
    free(c->sender);
    free(c->orig_id);
    free(c->remote_node);
    free(c);
    rest_maybe_free(r);
}

bool rest_call_live(const struct rest_call *c)
{
    return c->req || c->remote_node;
}

/* The request is over (answered or gone): what waits for it lets go. */
static void call_done(struct rest_call *c)
{
    struct gw_rest *r = c->r;
    c->req = NULL;
    if (c->remote_node) {
        free(c->remote_node);
        c->remote_node = NULL;
        r->nremote--;
    }
    c->deadline_ms = 0;
    rest_send_forget(c);
    rest_forward_forget(c);
    if (c->kick_waiting) {
        c->kick_waiting = false;
        gw_map_del(r->kicks, c->kick_req);
        rest_call_unref(c);
    }
    if (c->iq_pending) {
        c->iq_pending = false;
        if (r->comp) /* (once stopping, the link has failed every iq already) */
            gw_component_iq_cancel(r->comp, c->iq_handle);
        rest_call_unref(c);
    }
    rest_call_unref(c); /* the request's own reference */
}

static size_t code_index(unsigned status)
{
    for (size_t i = 0; i < NCODES; i++)
        if (codes[i] == status)
            return i;
    return code_index(500); /* a status outside the documented set is our bug */
}

static uint64_t *request_counter(struct gw_rest *r, enum rest_route route, unsigned status)
{
    size_t i = code_index(status);
    if (!r->m_requests[route][i]) {
        char labels[64];
        snprintf(labels, sizeof labels, "route=\"%s\",code=\"%u\"", route_names[route], codes[i]);
        r->m_requests[route][i] =
            gw_metrics_counter(r->core->metrics, "mxgw_rest_requests_total",
                               "REST API requests answered, by route and status", labels);
    }
    return r->m_requests[route][i];
}

void rest_answer(struct rest_call *c, unsigned status, const char *ctype, const void *body,
                 size_t len)
{
    if (c->remote_node) {
        rest_forward_reply(c, status, ctype, body, len);
        call_done(c);
        return;
    }
    if (!c->req)
        return;
    struct gw_rest *r = c->r;
    gw_http_add_header(c->req, "X-Request-Id", c->rid);
    double secs = (double)(uv_hrtime() - c->start_ns) / 1e9;
    (*request_counter(r, c->route, status))++;
    gw_histogram_observe(r->m_seconds, secs);
    GW_INFO("rest.request", "rid=%s method=%s route=%s status=%u key=%s ms=%.1f", c->rid,
            gw_http_req_method_name(c->req), route_names[c->route], status,
            c->key_id[0] ? c->key_id : "-", secs * 1000);
    gw_http_respond(c->req, status, ctype, body, len);
    call_done(c);
}

void rest_answer_json(struct rest_call *c, unsigned status, struct gw_json_out *w)
{
    size_t len;
    const char *text = gw_json_text(w, &len);
    rest_answer(c, status, "application/json", text, len);
}

void rest_problem(struct rest_call *c, unsigned status, const char *slug, const char *detail,
                  unsigned retry_after_s)
{
    if (!rest_call_live(c))
        return;
    c->retry_after_s = retry_after_s;
    if (retry_after_s && c->req) {
        char v[16];
        snprintf(v, sizeof v, "%u", retry_after_s);
        gw_http_add_header(c->req, "Retry-After", v);
    }
    if (status == 401 && c->req)
        gw_http_add_header(c->req, "WWW-Authenticate", "Bearer realm=\"mxgw\"");
    struct gw_json_out *w = gw_json_out_new(c->r->core->json_writers);
    size_t len;
    const char *text = gw_rest_problem(w, status, slug, detail, c->rid, &len);
    rest_answer(c, status, GW_REST_PROBLEM_TYPE, text, len);
    gw_json_out_free(w);
}

static void on_expired(void *arg, struct gw_http_req *req)
{
    (void)req;
    rest_problem(arg, 504, "timeout", "the operation did not complete in time", 0);
}

static void on_gone(void *arg, struct gw_http_req *req)
{
    (void)req;
    struct rest_call *c = arg;
    if (c->req)
        call_done(c);
}

static const struct gw_http_defer_ops defer_ops = {on_expired, on_gone};

static struct rest_call *call_alloc(struct gw_rest *r, const char *rid)
{
    struct rest_call *c = gw_calloc(1, sizeof *c);
    c->r = r;
    c->refs = 1;
    c->start_ns = uv_hrtime();
    c->route = RR_OTHER;
    if (rid && gw_rest_request_id_ok(rid))
        snprintf(c->rid, sizeof c->rid, "%s", rid);
    else if (gw_rand_hex(r->core->rand, 16, c->rid, sizeof c->rid) != 0)
        snprintf(c->rid, sizeof c->rid, "unknown");
    c->next = r->calls;
    if (r->calls)
        r->calls->prev = c;
    r->calls = c;
    return c;
}

static struct rest_call *call_new(struct gw_rest *r, struct gw_http_req *req)
{
    struct rest_call *c = call_alloc(r, gw_http_req_header(req, "X-Request-Id"));
    c->req = req;
    return c;
}

struct rest_call *rest_call_new_remote(struct gw_rest *r, const char *node, const char *req,
                                       const char *rid, enum rest_route route)
{
    struct rest_call *c = call_alloc(r, rid);
    c->remote_node = gw_strdup(node);
    snprintf(c->remote_req, sizeof c->remote_req, "%s", req);
    c->route = route;
    r->nremote++;
    return c;
}

/* ---- the layer's refusals, as problems ---- */

static void on_refuse(void *arg, struct gw_http_req *req, unsigned status, const char *text)
{
    struct rest_call *c = call_new(arg, req);
    const char *slug = status == 400   ? "malformed-path"
                       : status == 405 ? "method-not-allowed"
                       : status == 413 ? "body-too-large"
                       : status == 415 ? "unsupported-media-type"
                       : status == 503 ? "unavailable"
                                       : "refused";
    char detail[160];
    snprintf(detail, sizeof detail, "%s", text);
    if (status == 400)
        snprintf(detail, sizeof detail,
                 "the path is not canonical (encoded or empty segments, dot segments, encoded "
                 "slashes or invalid UTF-8)");
    rest_problem(c, status, slug, detail, status == 503 ? 1 : 0);
}

/* ---- authentication and rate limits ---- */

static void run_op(struct rest_call *c);

static void rate_counted(void *arg, int err, const struct gw_store_reply *reply)
{
    struct rest_call *c = arg;
    struct gw_rest *r = c->r;
    const struct gw_config *cfg = r->core->cfg;
    uint64_t now = wall_ms(), window = now / cfg->rest_rate_window_ms;
    unsigned retry = (unsigned)(((window + 1) * cfg->rest_rate_window_ms - now + 999) / 1000);
    long long count;
    unsigned limit;
    if (err) {
        /* The nodes cannot count together: each counts on its own, to a lower limit. */
        struct local_rate *lr = gw_map_get(r->local, c->key_id);
        if (!lr) {
            if (gw_map_count(r->local) >= MAX_CACHED)
                clear_map(&r->local);
            lr = gw_calloc(1, sizeof *lr);
            gw_map_put(r->local, c->key_id, lr);
        }
        if (lr->window != window) {
            lr->window = window;
            lr->count = 0;
        }
        count = ++lr->count;
        limit = cfg->rest_rate_limit_fallback;
    } else {
        count = reply->integer;
        limit = cfg->rest_rate_limit;
    }
    if (c->req && count > (long long)limit) {
        (*r->m_rate_limited)++;
        rest_problem(c, 429, "rate-limited", "this API key made too many requests: retry later",
                     retry ? retry : 1);
    } else if (c->req) {
        run_op(c);
    }
    rest_call_unref(c);
}

static void count_request(struct rest_call *c)
{
    struct gw_rest *r = c->r;
    uint64_t window = wall_ms() / r->core->cfg->rest_rate_window_ms;
    char key[96];
    snprintf(key, sizeof key, "mxgw:rate:%s:%" PRIu64, c->key_id, window);
    rest_call_ref(c);
    if (gw_store_incr(r->core->store, key, r->core->cfg->rest_rate_window_ms + 1000, rate_counted,
                      c) != 0)
        rate_counted(c, GW_EUNAVAIL, NULL);
}

static void auth_failed(struct rest_call *c)
{
    (*c->r->m_auth_failed)++;
    rest_problem(c, 401, "unauthorized", "a valid API key is required (Authorization: Bearer …)",
                 0);
}

/* The key is known good with these scope strings: check the operation, then count. */
static void authorized(struct rest_call *c, const char *jids, unsigned ops)
{
    struct gw_rest *r = c->r;
    char why[160];
    const char *domain = r->comp ? gw_component_domain(r->comp) : r->core->cfg->component_domain;
    gw_key_scope_free(&c->scope);
    if (gw_key_scope_parse(&c->scope, jids, domain[0] ? domain : "-", why, sizeof why) != 0)
        gw_key_scope_free(&c->scope); /* a key for another domain can still read sessions */
    c->scope.ops = ops;
    if (!(ops & c->op)) {
        rest_problem(c, 403, "operation-not-allowed", "this API key is not allowed this operation",
                     0);
        return;
    }
    count_request(c);
}

static void key_read(void *arg, int err, const struct gw_store_reply *reply)
{
    struct rest_call *c = arg;
    struct gw_rest *r = c->r;
    if (!c->req) {
        rest_call_unref(c);
        return;
    }
    struct cached_key *ck = gw_map_get(r->cache, c->key_id);
    if (err) {
        bool fresh =
            ck && uv_now(r->core->loop) - ck->verified_ms <= r->core->cfg->rest_key_cache_ms;
        if (fresh && gw_key_check(c->token, ck->hash, strlen(ck->hash))) {
            gw_memzero(c->token, sizeof c->token);
            GW_INFO("rest.key_cached", "rid=%s key=%s", c->rid, c->key_id);
            authorized(c, ck->jids, ck->ops);
        } else {
            gw_memzero(c->token, sizeof c->token);
            rest_problem(c, 503, "store-unavailable",
                         "API keys cannot be checked right now: retry later",
                         rest_retry_after_s(r));
        }
        rest_call_unref(c);
        return;
    }
    const char *hash = NULL, *jids = "", *ops_s = "";
    size_t hash_len = 0;
    for (size_t i = 0; i + 1 < reply->n; i += 2) {
        const char *f = reply->items[i].ptr;
        if (strcmp(f, "hash") == 0) {
            hash = reply->items[i + 1].ptr;
            hash_len = reply->items[i + 1].len;
        } else if (strcmp(f, "jids") == 0) {
            jids = reply->items[i + 1].ptr;
        } else if (strcmp(f, "ops") == 0) {
            ops_s = reply->items[i + 1].ptr;
        }
    }
    /* Unknown id and wrong secret take the same path and give the same answer. */
    bool ok = gw_key_check(c->token, hash ? hash : "", hash ? hash_len : 0);
    gw_memzero(c->token, sizeof c->token);
    unsigned ops = 0;
    if (ok && gw_key_ops_parse(ops_s, &ops) != 0)
        ok = false;
    if (!ok) {
        if (ck)
            free(gw_map_del(r->cache, c->key_id)); /* revoked or replaced */
        GW_INFO("rest.auth_failed", "rid=%s key=%s ip=%s", c->rid, c->key_id,
                gw_http_req_ip(c->req));
        auth_failed(c);
        rest_call_unref(c);
        return;
    }
    if (!ck && gw_map_count(r->cache) < MAX_CACHED) {
        ck = gw_calloc(1, sizeof *ck);
        gw_map_put(r->cache, c->key_id, ck);
    }
    if (ck) {
        snprintf(ck->hash, sizeof ck->hash, "%.*s", (int)hash_len, hash);
        snprintf(ck->jids, sizeof ck->jids, "%s", jids);
        ck->ops = ops;
        ck->verified_ms = uv_now(r->core->loop);
    }
    authorized(c, jids, ops);
    rest_call_unref(c);
}

static void authenticate(struct rest_call *c)
{
    struct gw_rest *r = c->r;
    char key[64];
    snprintf(key, sizeof key, "mxgw:apikey:%s", c->key_id);
    rest_call_ref(c);
    if (gw_store_hgetall(r->core->store, key, key_read, c) != 0)
        key_read(c, GW_EUNAVAIL, NULL);
}

/* ---- routing ---- */

static void run_op(struct rest_call *c)
{
    switch (c->route) {
    case RR_MESSAGES:
        rest_send_message(c);
        break;
    case RR_STANZAS:
        rest_send_stanza(c);
        break;
    case RR_SESSIONS:
        rest_sessions_list(c);
        break;
    case RR_SESSION:
        rest_sessions_kick(c);
        break;
    case RR_PUSH:
        rest_push(c);
        break;
    default:
        rest_problem(c, 404, "not-found", "no such resource", 0);
    }
}

/* Names that carry credentials in a query string (OWASP: keys never in URLs), and any value
 * of the known parameters that has the form of one of our keys. */
static bool query_has_credentials(struct gw_http_req *req)
{
    static const char *const names[] = {"api_key",       "apikey",       "key",
                                        "token",         "access_token", "auth",
                                        "authorization", "bearer",       NULL};
    for (const char *const *n = names; *n; n++)
        if (gw_http_req_query(req, *n))
            return true;
    const char *jid = gw_http_req_query(req, "jid");
    return jid && strncmp(jid, "mxgw_", 5) == 0;
}

struct resource {
    enum rest_route route;
    unsigned methods;
    unsigned op_get, op_post, op_put, op_delete;
};

/* Splits the path below /api/v1 into the resource and its parameter. */
static bool match(const char *path, struct resource *res, char **arg)
{
    *arg = NULL;
    memset(res, 0, sizeof *res);
    if (strncmp(path, PREFIX, strlen(PREFIX)) != 0)
        return false;
    const char *p = path + strlen(PREFIX);
    if (strcmp(p, "/messages") == 0) {
        *res = (struct resource){RR_MESSAGES, GW_HTTP_POST, 0, GW_OP_MESSAGES, 0, 0};
        return true;
    }
    if (strcmp(p, "/stanzas") == 0) {
        *res = (struct resource){RR_STANZAS, GW_HTTP_POST, 0, GW_OP_STANZAS, 0, 0};
        return true;
    }
    if (strcmp(p, "/sessions") == 0) {
        *res = (struct resource){RR_SESSIONS, GW_HTTP_GET, GW_OP_SESSIONS_READ, 0, 0, 0};
        return true;
    }
    if (strncmp(p, "/sessions/", 10) == 0 && p[10] && !strchr(p + 10, '/')) {
        *res = (struct resource){RR_SESSION, GW_HTTP_DELETE, 0, 0, 0, GW_OP_SESSIONS_KICK};
        *arg = gw_strdup(p + 10);
        return true;
    }
    size_t n = strlen(p);
    if (strncmp(p, "/users/", 7) == 0 && n > 12 && strcmp(p + n - 5, "/push") == 0) {
        size_t jl = n - 12;
        char *jid = gw_strndup(p + 7, jl);
        if (!strchr(jid, '/')) {
            *res = (struct resource){RR_PUSH,          GW_HTTP_GET | GW_HTTP_PUT | GW_HTTP_DELETE,
                                     GW_OP_PUSH_READ,  0,
                                     GW_OP_PUSH_WRITE, GW_OP_PUSH_WRITE};
            *arg = jid;
            return true;
        }
        free(jid);
    }
    return false;
}

static void allow_header(struct gw_http_req *req, unsigned methods)
{
    char allow[64] = "";
    if (methods & GW_HTTP_GET)
        strcat(allow, "GET, HEAD, ");
    if (methods & GW_HTTP_POST)
        strcat(allow, "POST, ");
    if (methods & GW_HTTP_PUT)
        strcat(allow, "PUT, ");
    if (methods & GW_HTTP_DELETE)
        strcat(allow, "DELETE, ");
    strcat(allow, "OPTIONS");
    gw_http_add_header(req, "Allow", allow);
}

static void on_request(void *arg, struct gw_http_req *req)
{
    struct gw_rest *r = arg;
    struct rest_call *c = call_new(r, req);
    struct resource res;
    char *param = NULL;
    bool found = match(gw_http_req_path(req), &res, &param);
    c->arg = param;
    if (found)
        c->route = res.route;
    if (r->stopping) {
        rest_problem(c, 503, "unavailable", "shutting down", 1);
        return;
    }
    if (!found) {
        rest_problem(c, 404, "not-found", "no such resource", 0);
        return;
    }
    enum gw_http_method m = gw_http_req_method(req);
    unsigned allowed = res.methods | ((res.methods & GW_HTTP_GET) ? GW_HTTP_HEAD : 0);
    if (!(m & allowed)) {
        allow_header(req, res.methods);
        rest_problem(c, 405, "method-not-allowed", "this resource does not take that method", 0);
        return;
    }
    c->op = m == GW_HTTP_POST     ? res.op_post
            : m == GW_HTTP_PUT    ? res.op_put
            : m == GW_HTTP_DELETE ? res.op_delete
                                  : res.op_get;
    if (query_has_credentials(req)) {
        rest_problem(c, 400, "credentials-in-url",
                     "API keys are accepted in the Authorization header only; a key sent in a "
                     "URL must be considered leaked and revoked",
                     0);
        return;
    }
    if (!gw_rest_accepts_json(gw_http_req_header(req, "Accept"))) {
        rest_problem(c, 406, "not-acceptable",
                     "responses are application/json (errors application/problem+json)", 0);
        return;
    }
    size_t blen;
    gw_http_req_body(req, &blen);
    if (m == GW_HTTP_POST || m == GW_HTTP_PUT) {
        int mt = gw_rest_media_type(gw_http_req_header(req, "Content-Type"));
        bool ok = mt == 1 || (mt == 2 && res.route == RR_STANZAS);
        if (!ok) {
            rest_problem(c, 415, "unsupported-media-type",
                         res.route == RR_STANZAS
                             ? "send application/json or application/xml (charset utf-8)"
                             : "send application/json (charset utf-8)",
                         0);
            return;
        }
        if (blen == 0) {
            rest_problem(c, 400, "bad-request", "the request needs a body", 0);
            return;
        }
    }
    const char *auth = gw_http_req_header(req, "Authorization");
    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0 ||
        gw_key_parse(auth + 7 + strspn(auth + 7, " "), c->key_id) != 0) {
        c->key_id[0] = '\0';
        auth_failed(c);
        return;
    }
    snprintf(c->token, sizeof c->token, "%s", auth + 7 + strspn(auth + 7, " "));
    const struct gw_config *cfg = r->core->cfg;
    uint64_t wait = cfg->rest_iq_timeout_ms > cfg->rest_muc_join_timeout_ms
                        ? cfg->rest_iq_timeout_ms
                        : cfg->rest_muc_join_timeout_ms;
    gw_http_defer(req, wait + CALL_DEADLINE + cfg->redis_timeout_ms * 3, &defer_ops, c);
    authenticate(c);
}

/* ---- module ---- */

void rest_maybe_free(struct gw_rest *r)
{
    if (!r->stopping || r->holding || r->calls || r->timers_closing)
        return;
    rest_send_stop(r);
    gw_map_each(r->cache, free_entry, NULL);
    gw_map_free(r->cache);
    gw_map_each(r->local, free_entry, NULL);
    gw_map_free(r->local);
    gw_map_free(r->kicks);
    gw_map_free(r->forwards);
    free(r->holder_key);
    free(r);
}

int gw_rest_start(struct gw_core *core, struct gw_http *http, struct gw_component *comp,
                  struct gw_node_bus *bus, struct gw_rest **out)
{
    struct gw_rest *r = gw_calloc(1, sizeof *r);
    r->core = core;
    r->comp = comp;
    r->bus = bus;
    r->cache = gw_map_new();
    r->local = gw_map_new();
    r->kicks = gw_map_new();
    struct gw_metrics *m = core->metrics;
    static const double bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                    0.1,   0.25,   0.5,   1,    2.5,   10};
    r->m_seconds = gw_metrics_histogram(m, "mxgw_rest_request_seconds",
                                        "Time from a REST request's arrival to its answer", NULL,
                                        bounds, sizeof bounds / sizeof bounds[0]);
    r->m_auth_failed =
        gw_metrics_counter(m, "mxgw_rest_auth_failures_total",
                           "REST requests refused for a missing or invalid API key", NULL);
    r->m_rate_limited = gw_metrics_counter(m, "mxgw_rest_rate_limited_total",
                                           "REST requests refused by the per-key rate limit", NULL);
    static const char *const kinds[] = {"kind=\"message\"", "kind=\"stanza\"", "kind=\"iq\""};
    for (int i = 0; i < 3; i++)
        r->m_sent[i] =
            gw_metrics_counter(m, "mxgw_rest_stanzas_total",
                               "Stanzas sent through the component link for REST calls", kinds[i]);
    /* Every route and the common answers exist from the start, so rates can be computed. */
    for (int rt = 0; rt < RR_COUNT; rt++) {
        request_counter(r, (enum rest_route)rt, rt == RR_MESSAGES ? 202 : 200);
        request_counter(r, (enum rest_route)rt, 401);
    }
    struct gw_http_route route = {
        .path = PREFIX,
        .prefix = true,
        .name = "rest",
        .methods = GW_HTTP_GET | GW_HTTP_POST | GW_HTTP_PUT | GW_HTTP_DELETE | GW_HTTP_PATCH,
        .max_body = core->cfg->rest_body_bytes,
        .media_types = media_types,
        .cors = false, /* API keys are no browser credentials: no cross-site calls */
        .handler = on_request,
        .arg = r,
        .refuse = on_refuse,
    };
    int rc = gw_http_route_add(http, &route);
    if (rc) {
        GW_ERROR("rest.start_failed", "err=\"%s\"", gw_strerror(rc));
        gw_map_free(r->cache);
        gw_map_free(r->local);
        gw_map_free(r->kicks);
        free(r);
        return rc;
    }
    rest_send_init(r);
    rest_sessions_init(r);
    rest_forward_init(r);
    GW_INFO("rest.start", "path=%s component=%s", PREFIX,
            comp ? gw_component_domain(comp) : "none");
    *out = r;
    return 0;
}

void gw_rest_set_push(struct gw_rest *r, const struct gw_rest_push_ops *ops, void *arg)
{
    r->push = ops;
    r->push_arg = arg;
}

void gw_rest_stop(struct gw_rest *r)
{
    if (!r || r->stopping)
        return;
    r->stopping = true;
    r->holding = true; /* answering frees calls: the module must outlive this loop */
    for (;;) {
        struct rest_call *c = r->calls;
        while (c && !rest_call_live(c))
            c = c->next;
        if (!c)
            break;
        rest_problem(c, 503, "unavailable", "shutting down", 1);
    }
    rest_forward_stop(r);
    rest_send_detach(r);
    r->comp = NULL; /* nothing more goes through it (it closes after this module) */
    r->holding = false;
    rest_maybe_free(r);
}
