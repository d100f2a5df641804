/* HTTP front end on libmicrohttpd, driven by the gateway's libuv loop.
 *
 * We own the listening socket: one uv_poll_t accepts, applies http_max_connections (at the
 * limit we stop accepting, and new connections wait in the backlog until one closes) and
 * http_max_connections_per_ip (over it a connection is closed at once), and hands each
 * connection to a daemon with MHD_add_connection(). The daemons ("shards") hold at most
 * http_connections_per_daemon connections each and are created as needed. They run with
 * MHD_USE_EPOLL, no listening socket and no thread: each daemon's epoll fd is watched by a
 * uv_poll_t, and MHD_run() is called when that fd is readable and when MHD_get_timeout() says
 * (a uv_timer_t per daemon). MHD_ALLOW_SUSPEND_RESUME gives each daemon an eventfd inside its
 * epoll set, so a request resumed from any callback wakes the poll by itself; we also run the
 * daemon on the next loop iteration after every answer ("kick"), never re-entrantly from inside
 * one of its callbacks.
 *
 * Why several daemons: MHD_run() walks the daemon's whole list of suspended connections after
 * any resume, following one pointer per connection (a cache miss each, when there are
 * thousands). BOSH holds one suspended request per session and resumes one or two per message,
 * so with one daemon the cost of a message grew with the number of sessions: bench/run measured
 * 572 µs of mxgw's CPU per BOSH message at 3,000 sessions in one daemon, and 256 µs with 128
 * connections per daemon (312 and 238 µs at 1,000 sessions).
 *
 * A request is one struct gw_http_req, created by the URI-log callback (which is the only place
 * that sees the raw request target, before MHD decodes it), carried as MHD's con_cls, and freed
 * when MHD reports the request complete. Its life: headers (route, method and size checks) →
 * body (copied under the route's cap) → handler → answered now, or deferred: the connection is
 * suspended after the handler returns and resumed when the owner answers or the deadline timer
 * fires; MHD then calls the access handler once more, which queues the prepared answer.
 *
 * MHD does not watch a suspended connection, so it would not see a client that went away while
 * its request was held (a page reload, a dropped network): we watch the socket for the hang-up
 * ourselves while it is suspended, tell the owner that the request is gone, and resume the
 * connection only to close it. The watch is one epoll set of our own for all daemons
 * (EPOLLRDHUP, edge-triggered), itself watched by one uv_poll_t. Every connection's socket is in
 * it from start to close, so a held request costs no system call. (A uv_poll_t per request cost
 * an ioctl and six epoll_ctl calls: libuv checks the fd with an ADD and a DEL, and stops a poll
 * with two DELs. Adding and removing the socket per held request cost two; BOSH holds one or
 * two requests per message.) */
#include "web/http.h"

#include "gateway/err.h"
#include "gateway/log.h"
#include "gateway/map.h"
#include "gateway/mem.h"
#include "gateway/metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_ROUTES     32
#define MAX_HEADERS    16
#define MAX_ORIGINS    16
#define STOP_GRACE_MS  1000
#define ACCEPT_BATCH   64  /* connections accepted per wake-up of the listening socket */
#define RELISTEN_MS    100 /* pause after accept() failed for want of descriptors or memory */
#define PREFLIGHT_AGE  "86400"
#define STATUS_CLASSES 5 /* 1xx..5xx */

struct route_entry {
    struct gw_http_route r; /* path and name point into the copies below */
    char *path, *name;
    size_t len;
    uint64_t *count[STATUS_CLASSES];
    uint64_t *bytes[2]; /* request bodies in, response bodies out */
};

enum req_state {
    RQ_HEADERS, /* first access callback not seen yet */
    RQ_BODY,    /* reading the body */
    RQ_HANDLED, /* the handler ran (answered, deferred or suspended) */
};

struct owned_str {
    struct owned_str *next;
    char s[];
};

struct gw_http_req {
    struct gw_http *h;
    struct shard *sh; /* the daemon that has its connection */
    struct MHD_Connection *conn;
    struct gw_http_req *prev, *next; /* live requests, for stop */
    enum req_state state;
    enum gw_http_method method;
    char method_name[16];
    char *target; /* raw request target, as sent */
    char *path;   /* canonical */
    const char *query;
    struct owned_str *strings; /* decoded query values handed out */
    struct route_entry *route;
    char ip[INET6_ADDRSTRLEN];
    char *body;
    size_t body_len, body_cap;
    bool too_big;
    /* CORS: the request's Origin, when allowed for this route */
    bool cors_allowed;
    char origin[256];
    /* the answer */
    bool answered; /* gw_http_respond() was called */
    bool queued;   /* handed to MHD */
    unsigned status;
    char *content_type;
    char *resp;
    size_t resp_len;
    char *hname[MAX_HEADERS], *hvalue[MAX_HEADERS];
    unsigned nheaders;
    /* deferral */
    bool in_handler;
    bool deferred;
    bool suspended;
    const struct gw_http_defer_ops *ops;
    void *ops_arg;
    uv_timer_t timer;
    bool timer_init;
    struct conn_rec *watched; /* while suspended: its connection, watching for a hang-up */
    bool abandoned;           /* the client hung up: close without an answer */
};

/* One connection, from MHD's STARTED report to its CLOSED one (its socket context). Its socket
 * stays in h->hup_fd's epoll set for its whole life, edge-triggered on EPOLLRDHUP. */
struct conn_rec {
    char ip[INET6_ADDRSTRLEN]; /* for the per-address count */
    int fd;                    /* in h->hup_fd's set; -1 if it could not be added */
    struct gw_http_req *held;  /* its suspended request, if any */
    bool hung_up;              /* EPOLLRDHUP came while no request was held */
};

/* One libmicrohttpd daemon and what drives it. */
struct shard {
    struct gw_http *h;
    struct MHD_Daemon *d;
    uv_poll_t poll;   /* the daemon's epoll fd */
    uv_timer_t timer; /* its timeouts and kicks */
    unsigned conns;   /* connections it holds (NOTIFY_CONNECTION) */
    bool in_run, kicked;
};

struct gw_http {
    struct gw_core *core;
    int listen_fd;
    uv_poll_t listen_poll;
    bool accepting;      /* listen_poll started */
    uv_timer_t relisten; /* accepting again after accept() ran out of descriptors */
    struct shard **shards;
    size_t nshards, max_shards;
    unsigned conns;        /* connections in all daemons */
    struct gw_map *per_ip; /* ip -> connections (gw_map_tally) */
    uint64_t *refused_per_ip;
    int hup_fd;         /* epoll set of every connection's socket (EPOLLRDHUP | EPOLLET) */
    uv_poll_t hup_poll; /* readable when one of them hung up */
    uv_timer_t grace;   /* stop: time allowed for queued answers to leave */
    unsigned handles;
    bool stopping, finished;
    unsigned answering; /* answered and not yet completed */
    struct gw_http_req *reqs;
    struct route_entry routes[MAX_ROUTES];
    size_t nroutes;
    char origins[MAX_ORIGINS][256];
    int norigins;
    bool any_origin;
    uint64_t *unrouted[STATUS_CLASSES];
};

static void kick(struct shard *sh);

static bool origin_allowed(const struct gw_http *h, const char *origin)
{
    if (h->any_origin)
        return true;
    for (int i = 0; i < h->norigins; i++)
        if (strcasecmp(h->origins[i], origin) == 0)
            return true;
    return false;
}

/* ---- routes ---- */

static struct route_entry *route_find(struct gw_http *h, const char *path)
{
    struct route_entry *best = NULL;
    size_t plen = strlen(path);
    for (size_t i = 0; i < h->nroutes; i++) {
        struct route_entry *e = &h->routes[i];
        if (!e->r.prefix) {
            if (strcmp(e->r.path, path) == 0)
                return e;
            continue;
        }
        bool match = plen >= e->len && memcmp(path, e->r.path, e->len) == 0 &&
                     (plen == e->len || path[e->len] == '/' || e->len == 1);
        if (match && (!best || e->len > best->len))
            best = e;
    }
    return best;
}

static void register_counts(struct gw_http *h, const char *name, uint64_t **slots)
{
    static const char *const classes[STATUS_CLASSES] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
    for (int i = 0; i < STATUS_CLASSES; i++) {
        char labels[96];
        snprintf(labels, sizeof labels, "route=\"%s\",code=\"%s\"", name, classes[i]);
        slots[i] = gw_metrics_counter(h->core->metrics, "mxgw_http_requests_total",
                                      "HTTP requests answered, by route and status class", labels);
    }
}

int gw_http_route_add(struct gw_http *h, const struct gw_http_route *route)
{
    char canon[512];
    if (!route->path || !route->handler || !route->name ||
        gw_http_canon_path(route->path, strlen(route->path), canon, sizeof canon) != 0 ||
        strcmp(canon, route->path) != 0)
        return GW_EINVAL;
    if (h->nroutes >= MAX_ROUTES)
        return GW_ELIMIT;
    for (size_t i = 0; i < h->nroutes; i++)
        if (h->routes[i].r.prefix == route->prefix && strcmp(h->routes[i].r.path, route->path) == 0)
            return GW_EEXIST;
    struct route_entry *e = &h->routes[h->nroutes++];
    memset(e, 0, sizeof *e);
    e->r = *route;
    e->path = gw_strdup(route->path);
    e->name = gw_strdup(route->name);
    e->r.path = e->path;
    e->r.name = e->name;
    e->len = strlen(route->path);
    register_counts(h, route->name, e->count);
    for (int d = 0; d < 2; d++) {
        char labels[96];
        snprintf(labels, sizeof labels, "route=\"%s\",direction=\"%s\"", route->name,
                 d ? "out" : "in");
        e->bytes[d] = gw_metrics_counter(h->core->metrics, "mxgw_http_bytes_total",
                                         "HTTP body bytes, requests (in) and responses (out), "
                                         "by route",
                                         labels);
    }
    return 0;
}

/* ---- requests ---- */

static const struct {
    const char *name;
    enum gw_http_method m;
} methods[] = {
    {"GET", GW_HTTP_GET},         {"HEAD", GW_HTTP_HEAD},     {"POST", GW_HTTP_POST},
    {"PUT", GW_HTTP_PUT},         {"DELETE", GW_HTTP_DELETE}, {"PATCH", GW_HTTP_PATCH},
    {"OPTIONS", GW_HTTP_OPTIONS},
};

static void allow_list(unsigned set, char *buf, size_t n)
{
    buf[0] = '\0';
    if (set & GW_HTTP_GET)
        set |= GW_HTTP_HEAD;
    set |= GW_HTTP_OPTIONS;
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        if (!(set & methods[i].m))
            continue;
        size_t len = strlen(buf);
        snprintf(buf + len, n - len, "%s%s", len ? ", " : "", methods[i].name);
    }
}

enum gw_http_method gw_http_req_method(const struct gw_http_req *req)
{
    return req->method;
}

const char *gw_http_req_method_name(const struct gw_http_req *req)
{
    return req->method_name;
}

const char *gw_http_req_path(const struct gw_http_req *req)
{
    return req->path;
}

const char *gw_http_req_header(const struct gw_http_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *gw_http_req_body(const struct gw_http_req *req, size_t *len)
{
    *len = req->body_len;
    return req->body ? req->body : "";
}

const char *gw_http_req_ip(const struct gw_http_req *req)
{
    return req->ip;
}

const struct gw_http_route *gw_http_req_route(const struct gw_http_req *req)
{
    return req->route ? &req->route->r : NULL;
}

const char *gw_http_req_query(struct gw_http_req *req, const char *name)
{
    if (!req->query)
        return NULL;
    size_t want = strlen(name);
    for (const char *p = req->query; *p;) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        size_t klen = eq ? (size_t)(eq - p) : len;
        struct owned_str *key = gw_malloc(sizeof *key + klen + 1);
        bool match = gw_http_query_decode(p, klen, key->s) == 0 && strlen(key->s) == want &&
                     memcmp(key->s, name, want) == 0;
        free(key);
        if (match) {
            const char *v = eq ? eq + 1 : p + len;
            size_t vlen = (size_t)(p + len - v);
            struct owned_str *val = gw_malloc(sizeof *val + vlen + 1);
            if (gw_http_query_decode(v, vlen, val->s) != 0) {
                free(val);
                return NULL;
            }
            val->next = req->strings;
            req->strings = val;
            return val->s;
        }
        if (!amp)
            break;
        p = amp + 1;
    }
    return NULL;
}

/* ---- answering ---- */

static bool header_text_ok(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return false;
    return true;
}

int gw_http_add_header(struct gw_http_req *req, const char *name, const char *value)
{
    if (req->answered)
        return GW_EINVAL;
    if (!*name || !header_text_ok(name) || !header_text_ok(value) || strchr(name, ':'))
        return GW_EINVAL;
    if (req->nheaders >= MAX_HEADERS)
        return GW_ELIMIT;
    req->hname[req->nheaders] = gw_strdup(name);
    req->hvalue[req->nheaders] = gw_strdup(value);
    req->nheaders++;
    return 0;
}

static bool has_header(const struct gw_http_req *req, const char *name)
{
    for (unsigned i = 0; i < req->nheaders; i++)
        if (strcasecmp(req->hname[i], name) == 0)
            return true;
    return false;
}

/* Hands the prepared answer to MHD; only from inside an access callback of this request. */
static enum MHD_Result queue_answer(struct gw_http_req *req)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(req->resp_len, req->resp, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    if (req->content_type)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, req->content_type);
    for (unsigned i = 0; i < req->nheaders; i++)
        MHD_add_response_header(r, req->hname[i], req->hvalue[i]);
    if (!has_header(req, "Cache-Control"))
        MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    if (req->cors_allowed) {
        MHD_add_response_header(r, MHD_HTTP_HEADER_ACCESS_CONTROL_ALLOW_ORIGIN,
                                req->h->any_origin ? "*" : req->origin);
        MHD_add_response_header(r, MHD_HTTP_HEADER_VARY, "Origin");
    }
    enum MHD_Result rc = MHD_queue_response(req->conn, req->status, r);
    MHD_destroy_response(r);
    req->queued = true;
    unsigned cls = req->status / 100;
    uint64_t **slots = req->route ? req->route->count : req->h->unrouted;
    if (cls >= 1 && cls <= STATUS_CLASSES)
        (*slots[cls - 1])++;
    if (req->route)
        *req->route->bytes[1] += req->resp_len;
    GW_DEBUG("http.answer", "ip=%s method=%s route=%s status=%u bytes=%zu", req->ip,
             req->method_name, req->route ? req->route->r.name : "-", req->status, req->resp_len);
    return rc;
}

static void stop_timer(struct gw_http_req *req)
{
    if (req->timer_init)
        uv_timer_stop(&req->timer);
}

static void stop_hangup_watch(struct gw_http_req *req)
{
    if (!req->watched)
        return;
    req->watched->held = NULL;
    req->watched = NULL;
}

/* The client closed the connection of a suspended request: the owner drops it, and MHD gets
 * the connection back to close it (on_access refuses an abandoned request). */
static void on_hangup(struct gw_http_req *req)
{
    stop_hangup_watch(req);
    if (req->answered || !req->suspended)
        return;
    GW_DEBUG("http.hangup", "ip=%s route=%s", req->ip, req->route ? req->route->r.name : "-");
    const struct gw_http_defer_ops *ops = req->ops;
    req->ops = NULL;
    req->abandoned = true;
    stop_timer(req);
    if (ops && ops->gone)
        ops->gone(req->ops_arg, req);
    req->suspended = false;
    MHD_resume_connection(req->conn);
    kick(req->sh);
}

/* The socket is already in the hang-up set (on_connection), so holding a request costs no
 * system call. An edge-triggered EPOLLRDHUP comes once: if it came while nothing was held, the
 * registration is modified, which reports a hang-up still in effect again. */
static void start_hangup_watch(struct gw_http_req *req)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    struct conn_rec *rec = ci ? ci->socket_context : NULL;
    if (!rec || rec->fd < 0)
        return;
    rec->held = req;
    req->watched = rec;
    if (rec->hung_up) {
        GW_DEBUG("http.hangup_before_hold", "ip=%s", rec->ip);
        rec->hung_up = false;
        struct epoll_event ev = {.events = EPOLLRDHUP | EPOLLET, .data.ptr = rec};
        epoll_ctl(req->h->hup_fd, EPOLL_CTL_MOD, rec->fd, &ev);
    }
}

/* Records are freed only when MHD closes their connection, and requests when MHD completes them,
 * both inside MHD_run(), which never runs from here: every record named by this batch of events
 * is still alive (on_connection takes a closing socket out of the set first). */
static void on_hup_poll(uv_poll_t *p, int status, int events)
{
    struct gw_http *h = p->data;
    (void)status;
    (void)events;
    struct epoll_event ev[64];
    int n = epoll_wait(h->hup_fd, ev, 64, 0);
    for (int i = 0; i < n; i++) {
        struct conn_rec *rec = ev[i].data.ptr;
        if (rec->held)
            on_hangup(rec->held);
        else
            rec->hung_up = true;
    }
}

void gw_http_respond(struct gw_http_req *req, unsigned status, const char *content_type,
                     const void *body, size_t len)
{
    if (req->answered)
        return;
    req->answered = true;
    req->h->answering++;
    req->status = status;
    req->content_type = content_type ? gw_strdup(content_type) : NULL;
    if (len) {
        req->resp = gw_malloc(len);
        memcpy(req->resp, body, len);
    }
    req->resp_len = len;
    stop_timer(req);
    stop_hangup_watch(req);
    if (req->suspended) {
        req->suspended = false;
        MHD_resume_connection(req->conn);
        kick(req->sh);
    }
}

void gw_http_respond_text(struct gw_http_req *req, unsigned status, const char *text)
{
    char line[256];
    int n = snprintf(line, sizeof line, "%s\n", text);
    gw_http_respond(req, status, "text/plain; charset=utf-8", line,
                    n > 0 && (size_t)n < sizeof line ? (size_t)n : strlen(line));
}

static void on_deadline(uv_timer_t *t)
{
    struct gw_http_req *req = t->data;
    if (req->answered)
        return;
    if (req->ops && req->ops->expired)
        req->ops->expired(req->ops_arg, req);
    if (!req->answered)
        gw_http_respond_text(req, MHD_HTTP_SERVICE_UNAVAILABLE, "no answer in time");
}

void gw_http_defer(struct gw_http_req *req, uint64_t timeout_ms,
                   const struct gw_http_defer_ops *ops, void *arg)
{
    if (!req->in_handler || req->answered || req->deferred)
        return;
    req->deferred = true;
    req->ops = ops;
    req->ops_arg = arg;
    uv_timer_init(req->h->core->loop, &req->timer);
    req->timer.data = req;
    req->timer_init = true;
    uv_timer_start(&req->timer, on_deadline, timeout_ms, 0);
}

/* ---- MHD callbacks ---- */

static void ip_text(const struct sockaddr *sa, char *out, size_t n)
{
    if (sa && sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)n);
    else if (sa && sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, (socklen_t)n);
    else
        snprintf(out, n, "unknown");
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    struct shard *sh = cls;
    struct gw_http *h = sh->h;
    struct gw_http_req *req = gw_calloc(1, sizeof *req);
    req->h = h;
    req->sh = sh;
    req->conn = conn;
    req->target = gw_strdup(uri ? uri : "");
    req->next = h->reqs;
    if (h->reqs)
        h->reqs->prev = req;
    h->reqs = req;
    /* the connection's address, formatted once when it started (on_connection) */
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    const struct conn_rec *rec = ci ? ci->socket_context : NULL;
    snprintf(req->ip, sizeof req->ip, "%s", rec ? rec->ip : "unknown");
    return req;
}

static void free_req_mem(struct gw_http_req *req)
{
    while (req->strings) {
        struct owned_str *s = req->strings;
        req->strings = s->next;
        free(s);
    }
    for (unsigned i = 0; i < req->nheaders; i++) {
        free(req->hname[i]);
        free(req->hvalue[i]);
    }
    free(req->target);
    free(req->path);
    free(req->body);
    free(req->content_type);
    free(req->resp);
    free(req);
}

static void on_req_timer_closed(uv_handle_t *hd)
{
    free_req_mem(hd->data);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct shard *sh = cls;
    struct gw_http *h = sh->h;
    (void)conn;
    struct gw_http_req *req = *con_cls;
    *con_cls = NULL;
    if (!req)
        return;
    stop_hangup_watch(req);
    if (req->deferred && !req->answered && req->ops && req->ops->gone)
        req->ops->gone(req->ops_arg, req);
    if (req->answered)
        h->answering--;
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
        GW_DEBUG("http.incomplete", "ip=%s code=%d", req->ip, (int)toe);
    if (req->prev)
        req->prev->next = req->next;
    else
        h->reqs = req->next;
    if (req->next)
        req->next->prev = req->prev;
    if (req->timer_init) {
        uv_timer_stop(&req->timer);
        uv_close((uv_handle_t *)&req->timer, on_req_timer_closed);
    } else {
        free_req_mem(req);
    }
    if (h->stopping && h->answering == 0)
        kick(sh);
}

/* Prepares a layer-made answer (errors, preflights) in the same form as a handler's. */
static void answer_now(struct gw_http_req *req, unsigned status, const char *text)
{
    if (req->route && req->route->r.refuse && !req->h->stopping) /* its owner may be gone */
        req->route->r.refuse(req->route->r.arg, req, status, text);
    if (!req->answered)
        gw_http_respond_text(req, status, text);
}

/* The prefix route whose path the raw target starts with, segment-wise (for refusing a
 * malformed path in that route's own format). */
static struct route_entry *route_raw_prefix(struct gw_http *h, const char *target)
{
    struct route_entry *best = NULL;
    for (size_t i = 0; i < h->nroutes; i++) {
        struct route_entry *e = &h->routes[i];
        if (e->r.prefix && e->len > 1 && strncmp(target, e->r.path, e->len) == 0 &&
            (target[e->len] == '/' || target[e->len] == '?' || target[e->len] == '\0') &&
            (!best || e->len > best->len))
            best = e;
    }
    return best;
}

static bool media_type_ok(const struct gw_http_req *req)
{
    const char *const *types = req->route->r.media_types;
    if (!types)
        return true;
    const char *ct = gw_http_req_header(req, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (!ct)
        return false;
    while (*ct == ' ')
        ct++;
    size_t n = strcspn(ct, "; \t");
    for (; *types; types++)
        if (strlen(*types) == n && strncasecmp(*types, ct, n) == 0)
            return true;
    return false;
}

static void preflight(struct gw_http_req *req)
{
    const struct gw_http_route *r = &req->route->r;
    char allow[96];
    allow_list(r->methods, allow, sizeof allow);
    const char *origin = gw_http_req_header(req, "Origin");
    if (origin && r->cors) {
        if (!req->cors_allowed) {
            answer_now(req, MHD_HTTP_FORBIDDEN, "origin not allowed");
            return;
        }
        gw_http_add_header(req, MHD_HTTP_HEADER_ACCESS_CONTROL_ALLOW_METHODS, allow);
        gw_http_add_header(req, "Access-Control-Allow-Headers",
                           r->cors_headers ? r->cors_headers : "Content-Type");
        gw_http_add_header(req, "Access-Control-Max-Age", PREFLIGHT_AGE);
    }
    gw_http_add_header(req, MHD_HTTP_HEADER_ALLOW, allow);
    gw_http_respond(req, MHD_HTTP_NO_CONTENT, NULL, NULL, 0);
}

/* First callback: the headers are in. Routes and checks what can be checked before the body. */
static void begin(struct gw_http_req *req, const char *method)
{
    struct gw_http *h = req->h;
    snprintf(req->method_name, sizeof req->method_name, "%s", method);
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (strcmp(method, methods[i].name) == 0)
            req->method = methods[i].m;
    size_t n = strlen(req->target);
    req->path = gw_malloc(n + 1);
    if (gw_http_canon_path(req->target, n, req->path, n + 1) != 0) {
        GW_INFO("http.bad_path", "ip=%s", req->ip);
        req->path[0] = '\0';
        req->route = route_raw_prefix(h, req->target);
        answer_now(req, MHD_HTTP_BAD_REQUEST, "malformed path");
        return;
    }
    const char *q = strchr(req->target, '?');
    req->query = q ? q + 1 : NULL;
    req->route = route_find(h, req->path);
    if (!req->route) {
        answer_now(req, MHD_HTTP_NOT_FOUND, "not found");
        return;
    }
    const struct gw_http_route *r = &req->route->r;
    const char *origin = gw_http_req_header(req, "Origin");
    if (r->cors && origin && strlen(origin) < sizeof req->origin && origin_allowed(h, origin)) {
        req->cors_allowed = true;
        snprintf(req->origin, sizeof req->origin, "%s", origin);
    }
    if (req->method == GW_HTTP_OPTIONS) {
        preflight(req);
        return;
    }
    unsigned allowed = r->methods | ((r->methods & GW_HTTP_GET) ? GW_HTTP_HEAD : 0);
    if (!(req->method & allowed)) {
        char allow[96];
        allow_list(r->methods, allow, sizeof allow);
        gw_http_add_header(req, MHD_HTTP_HEADER_ALLOW, allow);
        answer_now(req, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed");
        return;
    }
    size_t cap = r->max_body ? r->max_body : h->core->cfg->http_body_bytes;
    const char *cl = gw_http_req_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl) {
        char *end;
        unsigned long long v = strtoull(cl, &end, 10);
        if (*end == '\0' && v > cap) {
            GW_INFO("http.too_big", "ip=%s route=%s length=%llu cap=%zu", req->ip, r->name, v, cap);
            answer_now(req, MHD_HTTP_CONTENT_TOO_LARGE, "request body too large");
            return;
        }
    }
    req->state = RQ_BODY;
}

static void take_body(struct gw_http_req *req, const char *data, size_t n)
{
    const struct gw_http_route *r = &req->route->r;
    size_t cap = r->max_body ? r->max_body : req->h->core->cfg->http_body_bytes;
    if (req->too_big || req->body_len + n > cap) {
        req->too_big = true;
        return;
    }
    if (req->body_len + n > req->body_cap) {
        size_t c = req->body_cap ? req->body_cap : 1024;
        while (c < req->body_len + n)
            c *= 2;
        if (c > cap)
            c = cap;
        req->body = gw_realloc(req->body, c);
        req->body_cap = c;
    }
    memcpy(req->body + req->body_len, data, n);
    req->body_len += n;
}

static void dispatch(struct gw_http_req *req)
{
    if (req->too_big) {
        GW_INFO("http.too_big", "ip=%s route=%s", req->ip, req->route->r.name);
        answer_now(req, MHD_HTTP_CONTENT_TOO_LARGE, "request body too large");
        return;
    }
    if (req->body_len > 0 && !media_type_ok(req)) {
        answer_now(req, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "unsupported media type");
        return;
    }
    if (req->h->stopping) {
        answer_now(req, MHD_HTTP_SERVICE_UNAVAILABLE, "shutting down");
        return;
    }
    *req->route->bytes[0] += req->body_len;
    req->in_handler = true;
    req->route->r.handler(req->route->r.arg, req);
    req->in_handler = false;
    if (!req->answered && !req->deferred) {
        GW_ERROR("http.no_answer", "route=%s", req->route->r.name);
        answer_now(req, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal error");
    }
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
    (void)url;
    (void)version;
    struct gw_http_req *req = *con_cls;
    if (!req) /* MHD always calls the URI logger first; this is only a guard */
        req = *con_cls = on_uri(cls, "", conn);
    if (req->state == RQ_HEADERS) {
        begin(req, method);
        return req->answered ? queue_answer(req) : MHD_YES;
    }
    if (req->state == RQ_BODY && *upload_data_size > 0) {
        take_body(req, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    *upload_data_size = 0;
    if (req->state == RQ_BODY) {
        req->state = RQ_HANDLED;
        dispatch(req);
    }
    if (req->queued)
        return MHD_YES;
    if (req->abandoned)
        return MHD_NO; /* nobody to answer: MHD closes the connection */
    if (req->answered)
        return queue_answer(req);
    /* Deferred: nothing to say yet. MHD calls us again once the owner resumes us. */
    req->suspended = true;
    MHD_suspend_connection(conn);
    start_hangup_watch(req);
    return MHD_YES;
}

static void start_accepting(struct gw_http *h);

/* Counts a daemon's connections and each address's, and puts the socket in the hang-up set.
 * MHD_add_connection() reports STARTED before it returns, so the per-address count is current
 * when the next connection is accepted. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    struct shard *sh = cls;
    struct gw_http *h = sh->h;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        struct conn_rec *rec = gw_calloc(1, sizeof *rec);
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        ip_text(ci ? ci->client_addr : NULL, rec->ip, sizeof rec->ip);
        ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        rec->fd = ci ? ci->connect_fd : -1;
        struct epoll_event ev = {.events = EPOLLRDHUP | EPOLLET, .data.ptr = rec};
        if (rec->fd >= 0 && epoll_ctl(h->hup_fd, EPOLL_CTL_ADD, rec->fd, &ev) != 0)
            rec->fd = -1; /* its held requests are not watched; their deadline still ends them */
        *socket_context = rec;
        gw_map_tally_add(h->per_ip, rec->ip, 1);
        sh->conns++;
        h->conns++;
    } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context) {
        struct conn_rec *rec = *socket_context;
        *socket_context = NULL;
        if (rec->fd >= 0) /* MHD closes the socket after this report */
            epoll_ctl(h->hup_fd, EPOLL_CTL_DEL, rec->fd, NULL);
        if (rec->held)
            rec->held->watched = NULL;
        gw_map_tally_add(h->per_ip, rec->ip, -1);
        free(rec);
        sh->conns--;
        h->conns--;
        start_accepting(h); /* below the limit again: take what waits in the backlog */
    }
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char line[256];
    vsnprintf(line, sizeof line, fmt, ap);
    line[strcspn(line, "\r\n")] = '\0';
    char q[300];
    GW_DEBUG("http.mhd", "detail=%s", gw_log_quote(q, sizeof q, line));
}

/* ---- driving the daemons from the loop ---- */

static void run_shard(struct shard *sh);

static void on_timer(uv_timer_t *t)
{
    run_shard(t->data);
}

static void arm(struct shard *sh)
{
    MHD_UNSIGNED_LONG_LONG ms;
    if (sh->kicked) {
        sh->kicked = false;
        uv_timer_start(&sh->timer, on_timer, 0, 0);
    } else if (MHD_get_timeout(sh->d, &ms) == MHD_YES) {
        uv_timer_start(&sh->timer, on_timer, ms, 0);
    } else {
        uv_timer_stop(&sh->timer);
    }
}

static void finish_stop(struct gw_http *h);

static void run_shard(struct shard *sh)
{
    struct gw_http *h = sh->h;
    if (h->finished)
        return;
    if (h->stopping && h->answering == 0) {
        finish_stop(h);
        return;
    }
    sh->in_run = true;
    MHD_run(sh->d);
    sh->in_run = false;
    if (h->stopping && h->answering == 0) {
        finish_stop(h);
        return;
    }
    arm(sh);
}

/* Runs the daemon on the next loop iteration: never from inside one of its own callbacks. */
static void kick(struct shard *sh)
{
    if (sh->h->finished)
        return;
    if (sh->in_run)
        sh->kicked = true;
    else
        uv_timer_start(&sh->timer, on_timer, 0, 0);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    (void)status;
    (void)events;
    run_shard(p->data);
}

static struct shard *shard_new(struct gw_http *h)
{
    const struct gw_config *cfg = h->core->cfg;
    struct shard *sh = gw_calloc(1, sizeof *sh);
    sh->h = h;
    unsigned flags =
        MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ERROR_LOG;
    unsigned timeout_s = (unsigned)((cfg->http_connection_timeout_ms + 999) / 1000);
    sh->d =
        MHD_start_daemon(flags, 0, NULL, NULL, on_access, sh,
                         /* first, so that MHD logs every later complaint through us */
                         MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h, MHD_OPTION_CONNECTION_LIMIT,
                         cfg->http_connections_per_daemon, MHD_OPTION_CONNECTION_TIMEOUT, timeout_s,
                         MHD_OPTION_CONNECTION_MEMORY_LIMIT, cfg->http_connection_memory,
                         MHD_OPTION_NOTIFY_COMPLETED, on_completed, sh, MHD_OPTION_URI_LOG_CALLBACK,
                         on_uri, sh, MHD_OPTION_NOTIFY_CONNECTION, on_connection, sh,
                         MHD_OPTION_STRICT_FOR_CLIENT, 1, MHD_OPTION_END);
    const union MHD_DaemonInfo *info =
        sh->d ? MHD_get_daemon_info(sh->d, MHD_DAEMON_INFO_EPOLL_FD) : NULL;
    if (!info) {
        GW_ERROR("http.daemon_failed", "daemons=%zu", h->nshards);
        if (sh->d)
            MHD_stop_daemon(sh->d);
        free(sh);
        return NULL;
    }
    uv_poll_init(h->core->loop, &sh->poll, info->epoll_fd);
    sh->poll.data = sh;
    uv_poll_start(&sh->poll, UV_READABLE, on_poll);
    uv_timer_init(h->core->loop, &sh->timer);
    sh->timer.data = sh;
    h->handles += 2;
    h->shards[h->nshards++] = sh;
    arm(sh);
    return sh;
}

/* The first daemon with room, or a new one. Filling the first ones keeps the daemons few. */
static struct shard *shard_with_room(struct gw_http *h)
{
    for (size_t i = 0; i < h->nshards; i++)
        if (h->shards[i]->conns < h->core->cfg->http_connections_per_daemon)
            return h->shards[i];
    return h->nshards < h->max_shards ? shard_new(h) : NULL;
}

static void stop_accepting(struct gw_http *h)
{
    if (h->accepting)
        uv_poll_stop(&h->listen_poll);
    h->accepting = false;
}

static void on_relisten(uv_timer_t *t)
{
    start_accepting(t->data);
}

static void on_listen(uv_poll_t *p, int status, int events)
{
    struct gw_http *h = p->data;
    const struct gw_config *cfg = h->core->cfg;
    (void)status;
    (void)events;
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        if (h->conns >= cfg->http_max_connections) {
            stop_accepting(h); /* on_connection starts again when one closes */
            return;
        }
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        int fd = accept4(h->listen_fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                /* EMFILE, ENFILE, ENOBUFS: the connection stays in the backlog; try again soon
                 * rather than spin on a socket that stays readable */
                GW_WARN("http.accept_failed", "error=\"%s\" retry_ms=%d", strerror(errno),
                        RELISTEN_MS);
                stop_accepting(h);
                uv_timer_start(&h->relisten, on_relisten, RELISTEN_MS, 0);
            }
            return;
        }
        char ip[INET6_ADDRSTRLEN];
        ip_text((struct sockaddr *)&ss, ip, sizeof ip);
        if (gw_map_tally(h->per_ip, ip) >= cfg->http_max_connections_per_ip) {
            /* a counter, and a debug line only: a flood of them must not flood the log */
            (*h->refused_per_ip)++;
            GW_DEBUG("http.limit", "what=per_ip limit=%u ip=%s", cfg->http_max_connections_per_ip,
                     ip);
            close(fd);
            continue;
        }
        struct shard *sh = shard_with_room(h);
        if (!sh) {
            close(fd);
            continue;
        }
        /* MHD closes the socket itself if it cannot take it */
        if (MHD_add_connection(sh->d, fd, (struct sockaddr *)&ss, len) != MHD_YES) {
            GW_WARN("http.add_failed", "ip=%s error=\"%s\"", ip, strerror(errno));
            continue;
        }
        kick(sh);
    }
}

static void start_accepting(struct gw_http *h)
{
    if (h->accepting || h->stopping || h->finished ||
        h->conns >= h->core->cfg->http_max_connections)
        return;
    uv_timer_stop(&h->relisten);
    uv_poll_start(&h->listen_poll, UV_READABLE, on_listen);
    h->accepting = true;
}

static double connections_metric(void *arg)
{
    return (double)gw_http_connections(arg);
}

static double daemons_metric(void *arg)
{
    const struct gw_http *h = arg;
    return (double)h->nshards;
}

/* Runs before the loop starts: a blocking lookup is acceptable here and only here. */
static int open_listener(const struct gw_hostport *hp)
{
    char port[8];
    snprintf(port, sizeof port, "%u", hp->port);
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    if (getaddrinfo(hp->host, port, &hints, &res) != 0 || !res) {
        GW_ERROR("http.listen_failed", "addr=%s:%u detail=\"cannot resolve\"", hp->host, hp->port);
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (res->ai_family == AF_INET6)
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    }
    if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, SOMAXCONN) != 0) {
        GW_ERROR("http.listen_failed", "addr=%s:%u error=\"%s\"", hp->host, hp->port,
                 strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

int gw_http_start(struct gw_core *core, struct gw_http **out)
{
    const struct gw_config *cfg = core->cfg;
    struct gw_http *h = gw_calloc(1, sizeof *h);
    h->core = core;
    h->listen_fd = -1;
    h->hup_fd = -1;
    h->norigins = gw_http_parse_origins(cfg->http_cors_origins, h->origins, MAX_ORIGINS);
    if (h->norigins < 0) {
        GW_ERROR("http.bad_config", "key=http_cors_origins detail=\"expected origins such as "
                                    "https://app.example or *\"");
        free(h);
        return GW_ECONFIG;
    }
    for (int i = 0; i < h->norigins; i++)
        if (strcmp(h->origins[i], "*") == 0)
            h->any_origin = true;
    h->listen_fd = open_listener(&cfg->http_listen);
    if (h->listen_fd < 0) {
        free(h);
        return GW_EIO;
    }
    h->hup_fd = epoll_create1(EPOLL_CLOEXEC);
    if (h->hup_fd < 0) {
        GW_ERROR("http.hangup_watch", "error=\"%s\"", strerror(errno));
        close(h->listen_fd);
        free(h);
        return GW_EIO;
    }
    h->per_ip = gw_map_new();
    h->max_shards = (cfg->http_max_connections + cfg->http_connections_per_daemon - 1) /
                    cfg->http_connections_per_daemon;
    h->shards = gw_calloc(h->max_shards, sizeof *h->shards);
    uv_poll_init(core->loop, &h->listen_poll, h->listen_fd);
    h->listen_poll.data = h;
    uv_timer_init(core->loop, &h->relisten);
    h->relisten.data = h;
    uv_timer_init(core->loop, &h->grace);
    h->grace.data = h;
    uv_poll_init(core->loop, &h->hup_poll, h->hup_fd);
    h->hup_poll.data = h;
    uv_poll_start(&h->hup_poll, UV_READABLE, on_hup_poll);
    h->handles = 4;
    /* One daemon now, so that a libmicrohttpd that cannot start fails the start. */
    if (!shard_new(h)) {
        finish_stop(h); /* frees h once its handles have closed */
        return GW_EIO;
    }
    start_accepting(h);
    register_counts(h, "none", h->unrouted);
    gw_metrics_gauge_fn(core->metrics, "mxgw_http_connections", "HTTP connections open", NULL,
                        connections_metric, h);
    h->refused_per_ip =
        gw_metrics_counter(core->metrics, "mxgw_http_refused_total",
                           "HTTP connections closed at once, by reason", "reason=\"per_ip\"");
    gw_metrics_gauge_fn(core->metrics, "mxgw_http_daemons",
                        "libmicrohttpd daemons (each holds up to http_connections_per_daemon)",
                        NULL, daemons_metric, h);
    GW_INFO("http.listen", "addr=%s:%u timeout=%ums max_connections=%u per_ip=%u per_daemon=%u",
            cfg->http_listen.host, cfg->http_listen.port, (unsigned)cfg->http_connection_timeout_ms,
            cfg->http_max_connections, cfg->http_max_connections_per_ip,
            cfg->http_connections_per_daemon);
    *out = h;
    return 0;
}

unsigned gw_http_connections(const struct gw_http *h)
{
    return h && !h->finished ? h->conns : 0;
}

/* ---- stopping ---- */

static void on_handle_closed(uv_handle_t *hd)
{
    struct gw_http *h = hd->data;
    if (--h->handles > 0)
        return;
    for (size_t i = 0; i < h->nroutes; i++) {
        free(h->routes[i].path);
        free(h->routes[i].name);
    }
    for (size_t i = 0; i < h->nshards; i++)
        free(h->shards[i]);
    free(h->shards);
    gw_map_free(h->per_ip);
    free(h);
}

static void on_shard_handle_closed(uv_handle_t *hd)
{
    struct shard *sh = hd->data;
    hd->data = sh->h;
    on_handle_closed(hd);
}

static void on_grace(uv_timer_t *t)
{
    struct gw_http *h = t->data;
    GW_INFO("http.stop_grace", "answering=%u", h->answering);
    finish_stop(h);
}

static void finish_stop(struct gw_http *h)
{
    if (h->finished)
        return;
    h->finished = true;
    stop_accepting(h);
    uv_poll_stop(&h->hup_poll);
    uv_timer_stop(&h->relisten);
    uv_timer_stop(&h->grace);
    for (size_t i = 0; i < h->nshards; i++) {
        struct shard *sh = h->shards[i];
        uv_poll_stop(&sh->poll);
        uv_timer_stop(&sh->timer);
        MHD_stop_daemon(sh->d); /* completes every remaining request (on_completed) */
        sh->d = NULL;
        uv_close((uv_handle_t *)&sh->poll, on_shard_handle_closed);
        uv_close((uv_handle_t *)&sh->timer, on_shard_handle_closed);
    }
    close(h->listen_fd); /* connections still in the backlog are refused */
    uv_close((uv_handle_t *)&h->listen_poll, on_handle_closed);
    uv_close((uv_handle_t *)&h->relisten, on_handle_closed);
    uv_close((uv_handle_t *)&h->hup_poll, on_handle_closed);
    close(h->hup_fd); /* uv_poll_stop() has already taken it out of libuv's epoll set */
    uv_close((uv_handle_t *)&h->grace, on_handle_closed);
    GW_INFO("http.stopped", "%s", "");
}

void gw_http_stop(struct gw_http *h)
{
    if (!h || h->stopping)
        return;
    h->stopping = true;
    stop_accepting(h); /* new connections wait in the backlog until the listener closes */
    for (struct gw_http_req *req = h->reqs; req; req = req->next) {
        if (!req->deferred || req->answered)
            continue;
        if (req->ops && req->ops->gone)
            req->ops->gone(req->ops_arg, req);
        req->ops = NULL;
        gw_http_respond_text(req, MHD_HTTP_SERVICE_UNAVAILABLE, "shutting down");
    }
    uv_timer_start(&h->grace, on_grace, STOP_GRACE_MS, 0);
    for (size_t i = 0; i < h->nshards; i++)
        kick(h->shards[i]);
}
