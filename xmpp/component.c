/* The component link (XEP-0114).
 *
 * States: idle (waiting for the next attempt) → resolving → connecting → opening (our stream
 * header sent, waiting for the server's, which carries the stream id) → handshake (SHA-1 of
 * id + secret sent) → up. Any failure on the way, or later, closes the connection and schedules
 * the next attempt after an exponential backoff (0.5 s doubling to 30 s) with jitter, so a
 * restarted server is not hit by every gateway at once and a standby node (a second gateway
 * configured as the same component, refused with <conflict/> while the first holds the link)
 * takes over within 30 s of the first one going away.
 *
 * Each connection is its own heap object (uv_tcp_t, read buffer, the write in flight), closed
 * asynchronously and freed in its close callback, so nothing is freed inside its own callback
 * and callbacks of a dead connection are recognised and ignored. Outbound bytes are appended to
 * one bounded buffer and written by a uv_prepare_t just before the loop sleeps, so the stanzas
 * of one loop iteration leave in one write.
 *
 * This duplicates the connect/resolve/read skeleton of xmpp/upstream.c, which has to run its
 * bytes through mbedTLS on a raw fd; XEP-0114 has no TLS, so libuv's own TCP stream does the I/O
 * here. A common socket layer for both is left for when upstream.c is next reworked. */
#include "xmpp/component.h"

#include "gateway/err.h"
#include "gateway/log.h"
#include "gateway/map.h"
#include "gateway/mem.h"
#include "gateway/metrics.h"
#include "gateway/rand.h"
#include "xmpp/jid.h"
#include "xmpp/stream.h"

#include <ctype.h>
#include <errno.h>
#include <mbedtls/sha1.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BACKOFF_MIN_MS 500
#define BACKOFF_MAX_MS 30000
#define MAX_PENDING    10000
#define READ_CHUNK     4096

#define NS_DISCO_INFO "http://jabber.org/protocol/disco#info"
#define NS_PING       "urn:xmpp:ping"

enum state { ST_IDLE, ST_RESOLVING, ST_CONNECTING, ST_OPENING, ST_HANDSHAKE, ST_UP };

struct conn {
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_write_t wreq;
    struct gw_component *c;
    bool dead;
    bool writing;
    struct gw_buf inflight; /* the bytes of the uv_write in flight */
    char rbuf[READ_CHUNK];
};

struct handler {
    struct handler *next;
    char *name;
    char *ns;
    gw_component_handler fn;
    void *arg;
};

struct watcher {
    struct watcher *next;
    gw_component_watch_fn fn;
    void *arg;
};

struct strnode {
    struct strnode *next;
    char *a, *b, *c;
};

struct pending {
    struct pending *prev, *next;
    struct gw_component *comp;
    uint64_t handle;
    char id[33];
    char *to;
    gw_component_iq_cb cb;
    void *arg;
    uv_timer_t timer;
};

struct gw_component {
    struct gw_core *core;
    char *domain;
    char *secret;
    enum state state;
    struct conn *conn;
    uv_timer_t timer;     /* negotiation deadline, or the wait before the next attempt */
    uv_prepare_t flusher; /* writes what was queued during this iteration */
    struct gw_stream *parser;
    struct gw_buf out;
    uint64_t backoff_ms;
    unsigned attempt; /* distinguishes the current resolve from stale ones */
    unsigned handles; /* open handles and requests, while closing */
    bool closing;
    bool started;
    void (*closed)(void *arg);
    void *closed_arg;
    struct handler *handlers;
    struct watcher *watchers;
    struct strnode *features, *identities;
    struct gw_map *pending; /* iq id -> struct pending */
    struct pending *plist;  /* the same, for cancel by handle */
    uint64_t next_handle;
    int64_t *m_up;
    uint64_t *m_reconnects, *m_in, *m_out;
};

static void connect_now(struct gw_component *c);
static void fail(struct gw_component *c, const char *why, enum gw_log_level level);

void gw_component_digest(const char *stream_id, const char *secret, char out[41])
{
    unsigned char md[20];
    mbedtls_sha1_context ctx;
    mbedtls_sha1_init(&ctx);
    mbedtls_sha1_starts_ret(&ctx);
    mbedtls_sha1_update_ret(&ctx, (const unsigned char *)stream_id, strlen(stream_id));
    mbedtls_sha1_update_ret(&ctx, (const unsigned char *)secret, strlen(secret));
    mbedtls_sha1_finish_ret(&ctx, md);
    mbedtls_sha1_free(&ctx);
    for (int i = 0; i < 20; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* ---- handles and lifetime ---- */

static void maybe_finish(struct gw_component *c);

static void handle_closed(uv_handle_t *h)
{
    struct gw_component *c = h->data;
    c->handles--;
    maybe_finish(c);
}

static void free_lists(struct gw_component *c)
{
    while (c->handlers) {
        struct handler *h = c->handlers;
        c->handlers = h->next;
        free(h->name);
        free(h->ns);
        free(h);
    }
    while (c->watchers) {
        struct watcher *w = c->watchers;
        c->watchers = w->next;
        free(w);
    }
    struct strnode **lists[] = {&c->features, &c->identities};
    for (int i = 0; i < 2; i++)
        while (*lists[i]) {
            struct strnode *n = *lists[i];
            *lists[i] = n->next;
            free(n->a);
            free(n->b);
            free(n->c);
            free(n);
        }
}

static void maybe_finish(struct gw_component *c)
{
    if (!c->closing || c->handles > 0)
        return;
    gw_stream_free(c->parser);
    gw_buf_free(&c->out);
    gw_map_free(c->pending);
    free_lists(c);
    if (c->secret) {
        gw_memzero(c->secret, strlen(c->secret));
        free(c->secret);
    }
    free(c->domain);
    void (*done)(void *) = c->closed;
    void *arg = c->closed_arg;
    free(c);
    if (done)
        done(arg);
}

static void conn_closed(uv_handle_t *h)
{
    struct conn *k = h->data;
    struct gw_component *c = k->c;
    gw_buf_free(&k->inflight);
    free(k);
    c->handles--;
    maybe_finish(c);
}

/* Closes the current connection (if any); its callbacks from now on are ignored. */
static void drop_conn(struct gw_component *c)
{
    struct conn *k = c->conn;
    if (!k)
        return;
    c->conn = NULL;
    k->dead = true;
    uv_close((uv_handle_t *)&k->tcp, conn_closed);
    gw_buf_reset(&c->out);
    uv_prepare_stop(&c->flusher);
}

/* ---- pending iqs ---- */

static void pending_closed(uv_handle_t *h)
{
    struct pending *p = h->data;
    struct gw_component *c = p->comp;
    free(p->to);
    free(p);
    c->handles--;
    maybe_finish(c);
}

/* Unlinks p and releases it; the callback is not called. */
static void pending_drop(struct gw_component *c, struct pending *p)
{
    gw_map_del(c->pending, p->id);
    if (p->prev)
        p->prev->next = p->next;
    else
        c->plist = p->next;
    if (p->next)
        p->next->prev = p->prev;
    uv_timer_stop(&p->timer);
    uv_close((uv_handle_t *)&p->timer, pending_closed);
}

static void pending_finish(struct gw_component *c, struct pending *p, int err,
                           const struct gw_xml *reply)
{
    gw_component_iq_cb cb = p->cb;
    void *arg = p->arg;
    pending_drop(c, p);
    cb(arg, err, reply);
}

static void on_iq_timeout(uv_timer_t *t)
{
    struct pending *p = t->data;
    pending_finish(p->comp, p, GW_ETIMEDOUT, NULL);
}

static void fail_pending(struct gw_component *c, int err)
{
    while (c->plist)
        pending_finish(c, c->plist, err, NULL);
}

/* ---- state ---- */

static void set_up(struct gw_component *c, bool up)
{
    *c->m_up = up;
    for (struct watcher *w = c->watchers; w; w = w->next)
        w->fn(w->arg, up);
}

static void on_timer(uv_timer_t *t)
{
    struct gw_component *c = t->data;
    if (c->state == ST_IDLE) {
        (*c->m_reconnects)++;
        connect_now(c);
        return;
    }
    if (c->state != ST_UP)
        fail(c, "negotiation timed out", GW_LOG_WARN);
}

static uint64_t jitter(struct gw_component *c, uint64_t ms)
{
    uint32_t r = 0;
    gw_rand_bytes(c->core->rand, &r, sizeof r);
    return ms / 2 + r % (ms / 2 + 1);
}

/* The connection failed or ended: close it, tell watchers and waiters, try again later. */
static void fail(struct gw_component *c, const char *why, enum gw_log_level level)
{
    bool was_up = c->state == ST_UP;
    drop_conn(c);
    if (c->state == ST_IDLE)
        return; /* already down (a later callback of the same connection): once is enough */
    c->state = ST_IDLE;
    c->attempt++;
    if (c->closing)
        return;
    c->backoff_ms = c->backoff_ms ? c->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (c->backoff_ms > BACKOFF_MAX_MS)
        c->backoff_ms = BACKOFF_MAX_MS;
    uint64_t delay = jitter(c, c->backoff_ms);
    char q[160];
    gw_log(level, was_up ? "component.down" : "component.failed",
           "domain=%s reason=%s retry_ms=%llu", c->domain, gw_log_quote(q, sizeof q, why),
           (unsigned long long)delay);
    uv_timer_start(&c->timer, on_timer, delay, 0);
    if (was_up) {
        fail_pending(c, GW_ECLOSED);
        set_up(c, false);
    }
}

/* ---- writing ---- */

static void on_written(uv_write_t *req, int status);

static void flush(struct gw_component *c)
{
    struct conn *k = c->conn;
    if (!k || k->writing || c->out.len == 0)
        return;
    uv_buf_t b = uv_buf_init(c->out.data, (unsigned)c->out.len);
    int n = uv_try_write((uv_stream_t *)&k->tcp, &b, 1);
    if (n == UV_EAGAIN)
        n = 0;
    if (n < 0) {
        fail(c, uv_strerror(n), GW_LOG_WARN);
        return;
    }
    gw_buf_consume(&c->out, (size_t)n);
    if (c->out.len == 0)
        return;
    /* The rest goes out as one uv_write of its own copy; new stanzas queue behind it. */
    struct gw_buf tmp = k->inflight;
    k->inflight = c->out;
    c->out = tmp;
    gw_buf_reset(&c->out);
    c->out.max = k->inflight.max;
    b = uv_buf_init(k->inflight.data, (unsigned)k->inflight.len);
    k->writing = true;
    int rc = uv_write(&k->wreq, (uv_stream_t *)&k->tcp, &b, 1, on_written);
    if (rc < 0) {
        k->writing = false;
        fail(c, uv_strerror(rc), GW_LOG_WARN);
    }
}

static void on_written(uv_write_t *req, int status)
{
    struct conn *k = req->data;
    k->writing = false;
    gw_buf_reset(&k->inflight);
    if (k->dead)
        return;
    if (status < 0) {
        fail(k->c, uv_strerror(status), GW_LOG_WARN);
        return;
    }
    flush(k->c);
}

static void on_prepare(uv_prepare_t *h)
{
    struct gw_component *c = h->data;
    uv_prepare_stop(h);
    flush(c);
}

/* Appends raw bytes; the flusher writes them before the loop sleeps. */
static int queue(struct gw_component *c, const char *s, size_t n)
{
    int rc = gw_buf_append(&c->out, s, n);
    if (rc == 0)
        uv_prepare_start(&c->flusher, on_prepare);
    return rc;
}

/* The bytes queued or in flight count against limit_queue_bytes. */
static bool queue_full(const struct gw_component *c)
{
    size_t inflight = c->conn ? c->conn->inflight.len : 0;
    return c->out.len + inflight >= c->core->cfg->limit_queue_bytes;
}

/* ---- reading and the stream ---- */

/* Inbound stanzas arrive in jabber:component:accept; the rest of mxgw speaks jabber:client. */
static void to_client_ns(struct gw_xml *el)
{
    for (; el; el = el->next) {
        if (el->kind != GW_XML_ELEMENT)
            continue;
        if (el->ns && strcmp(el->ns, GW_NS_COMPONENT) == 0) {
            free(el->ns);
            el->ns = gw_strdup(GW_NS_CLIENT);
        }
        to_client_ns(el->children);
    }
}

static void send_handshake(struct gw_component *c, const char *id)
{
    char digest[41], buf[64];
    gw_component_digest(id, c->secret, digest);
    int n = snprintf(buf, sizeof buf, "<handshake>%s</handshake>", digest);
    gw_memzero(digest, sizeof digest);
    queue(c, buf, (size_t)n);
    gw_memzero(buf, sizeof buf);
    c->state = ST_HANDSHAKE;
}

static void p_open(void *arg, const struct gw_xml *root)
{
    struct gw_component *c = arg;
    const char *id = gw_xml_attr(root, "id");
    if (c->state != ST_OPENING)
        return;
    if (!gw_xml_is(root, GW_NS_STREAM, "stream") || !id || !*id || strlen(id) > 256) {
        fail(c, "the server's stream header has no id", GW_LOG_WARN);
        return;
    }
    send_handshake(c, id);
}

static const char *error_condition(const struct gw_xml *err)
{
    for (const struct gw_xml *k = err->children; k; k = k->next)
        if (k->kind == GW_XML_ELEMENT && k->ns && strcmp(k->ns, GW_NS_STREAMS) == 0 &&
            strcmp(k->name, "text") != 0)
            return k->name;
    return "undefined-condition";
}

static void dispatch(struct gw_component *c, struct gw_xml *el);

static void p_stanza(void *arg, struct gw_xml *el)
{
    struct gw_component *c = arg;
    if (gw_xml_is(el, GW_NS_STREAM, "error")) {
        char cond[64], why[96];
        snprintf(cond, sizeof cond, "%s", error_condition(el));
        gw_xml_free(el);
        snprintf(why, sizeof why, "stream error %s", cond);
        bool conflict = strcmp(cond, "conflict") == 0;
        if (conflict)
            GW_INFO("component.standby",
                    "domain=%s detail=\"another connection holds the component\"", c->domain);
        else if (strcmp(cond, "not-authorized") == 0)
            GW_ERROR("component.auth_failed", "domain=%s detail=\"the server refused the secret\"",
                     c->domain);
        fail(c, why, conflict ? GW_LOG_INFO : GW_LOG_WARN);
        return;
    }
    if (c->state == ST_HANDSHAKE) {
        bool ok = gw_xml_is(el, GW_NS_COMPONENT, "handshake");
        gw_xml_free(el);
        if (!ok) {
            fail(c, "unexpected element during the handshake", GW_LOG_WARN);
            return;
        }
        c->state = ST_UP;
        c->backoff_ms = 0;
        uv_timer_stop(&c->timer);
        GW_INFO("component.up", "domain=%s addr=%s:%u", c->domain, c->core->cfg->component.host,
                c->core->cfg->component.port);
        set_up(c, true);
        return;
    }
    if (c->state != ST_UP) {
        gw_xml_free(el);
        return;
    }
    (*c->m_in)++;
    to_client_ns(el);
    dispatch(c, el);
    gw_xml_free(el);
}

static void p_close(void *arg)
{
    fail(arg, "the server closed the stream", GW_LOG_WARN);
}

static void p_error(void *arg, const char *condition, const char *text)
{
    (void)text;
    char why[96];
    snprintf(why, sizeof why, "bad XML from the server (%s)", condition);
    fail(arg, why, GW_LOG_WARN);
}

static const struct gw_stream_handlers parser_handlers = {p_open, p_stanza, p_close, p_error};

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct conn *k = h->data;
    *buf = uv_buf_init(k->rbuf, sizeof k->rbuf);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct conn *k = s->data;
    if (k->dead || n == 0)
        return;
    if (n < 0) {
        fail(k->c, n == UV_EOF ? "the server closed the connection" : uv_strerror((int)n),
             GW_LOG_WARN);
        return;
    }
    gw_stream_feed(k->c->parser, buf->base, (size_t)n);
}

/* ---- connecting ---- */

static void on_connect(uv_connect_t *req, int status)
{
    struct conn *k = req->data;
    if (k->dead)
        return;
    struct gw_component *c = k->c;
    if (status < 0) {
        fail(c, uv_strerror(status), GW_LOG_WARN);
        return;
    }
    uv_tcp_nodelay(&k->tcp, 1);
    uv_tcp_keepalive(&k->tcp, 1, 60);
    gw_stream_free(c->parser);
    const struct gw_config *cfg = c->core->cfg;
    struct gw_xml_limits lim = {cfg->limit_stanza_bytes, cfg->limit_xml_depth,
                                cfg->limit_xml_attrs};
    c->parser = gw_stream_new(&lim, &parser_handlers, c);
    c->state = ST_OPENING;
    int rc = uv_read_start((uv_stream_t *)&k->tcp, on_alloc, on_read);
    if (rc < 0) {
        fail(c, uv_strerror(rc), GW_LOG_WARN);
        return;
    }
    gw_buf_reset(&c->out);
    rc = gw_buf_puts(&c->out, "<?xml version='1.0'?><stream:stream xmlns='" GW_NS_COMPONENT
                              "' xmlns:stream='" GW_NS_STREAM "' to='");
    if (!rc)
        rc = gw_xml_escape(&c->out, c->domain, strlen(c->domain));
    if (!rc)
        rc = queue(c, "'>", 2);
    if (rc)
        fail(c, "cannot write the stream header", GW_LOG_WARN);
}

static void start_tcp(struct gw_component *c, const struct sockaddr *sa)
{
    struct conn *k = gw_calloc(1, sizeof *k);
    k->c = c;
    gw_buf_init(&k->inflight, 0);
    uv_tcp_init(c->core->loop, &k->tcp);
    k->tcp.data = k;
    k->creq.data = k;
    k->wreq.data = k;
    c->handles++;
    c->conn = k;
    c->state = ST_CONNECTING;
    int rc = uv_tcp_connect(&k->creq, &k->tcp, sa, on_connect);
    if (rc < 0)
        fail(c, uv_strerror(rc), GW_LOG_WARN);
}

struct resolve {
    uv_getaddrinfo_t req;
    struct gw_component *c;
    unsigned attempt;
};

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct resolve *r = req->data;
    struct gw_component *c = r->c;
    bool stale = r->attempt != c->attempt || c->closing;
    free(r);
    c->handles--;
    if (stale) {
        uv_freeaddrinfo(res);
        maybe_finish(c);
        return;
    }
    if (status < 0 || !res) {
        uv_freeaddrinfo(res);
        fail(c, status < 0 ? uv_strerror(status) : "no address", GW_LOG_WARN);
        return;
    }
    start_tcp(c, res->ai_addr);
    uv_freeaddrinfo(res);
}

static void connect_now(struct gw_component *c)
{
    const struct gw_hostport *hp = &c->core->cfg->component;
    uv_timer_start(&c->timer, on_timer, c->core->cfg->component_timeout_ms, 0);
    struct sockaddr_storage ss;
    if (uv_ip4_addr(hp->host, hp->port, (struct sockaddr_in *)&ss) == 0 ||
        uv_ip6_addr(hp->host, hp->port, (struct sockaddr_in6 *)&ss) == 0) {
        start_tcp(c, (struct sockaddr *)&ss);
        return;
    }
    char port[8];
    snprintf(port, sizeof port, "%u", hp->port);
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    struct resolve *r = gw_calloc(1, sizeof *r);
    r->req.data = r;
    r->c = c;
    r->attempt = c->attempt;
    c->state = ST_RESOLVING;
    c->handles++;
    int rc = uv_getaddrinfo(c->core->loop, &r->req, on_resolved, hp->host, port, &hints);
    if (rc < 0) {
        free(r);
        c->handles--;
        fail(c, uv_strerror(rc), GW_LOG_WARN);
    }
}

/* ---- inbound dispatch ---- */

static bool handler_matches(const struct handler *h, const struct gw_xml *el)
{
    if (strcmp(h->name, el->name) != 0)
        return false;
    if (!h->ns)
        return true;
    for (const struct gw_xml *k = gw_xml_next_element(el, NULL); k; k = gw_xml_next_element(el, k))
        if (k->ns && strcmp(k->ns, h->ns) == 0)
            return true;
    return false;
}

static void answer_disco(struct gw_component *c, const struct gw_xml *iq, const struct gw_xml *q)
{
    if (gw_xml_attr(q, "node")) {
        gw_component_reply_error(c, iq, "cancel", "item-not-found");
        return;
    }
    struct gw_xml *res = gw_xml_new(NS_DISCO_INFO, "query");
    for (const struct strnode *n = c->identities; n; n = n->next) {
        struct gw_xml *id = gw_xml_add_child(res, NULL, "identity");
        gw_xml_set_attr(id, "category", n->a);
        gw_xml_set_attr(id, "type", n->b);
        if (n->c)
            gw_xml_set_attr(id, "name", n->c);
    }
    const char *builtin[] = {NS_DISCO_INFO, NS_PING};
    for (int i = 0; i < 2; i++)
        gw_xml_set_attr(gw_xml_add_child(res, NULL, "feature"), "var", builtin[i]);
    for (const struct strnode *n = c->features; n; n = n->next)
        gw_xml_set_attr(gw_xml_add_child(res, NULL, "feature"), "var", n->a);
    gw_component_reply_result(c, iq, res);
    gw_xml_free(res);
}

static void on_iq_answer(struct gw_component *c, const struct gw_xml *el, bool error)
{
    const char *id = gw_xml_attr(el, "id");
    struct pending *p = id ? gw_map_get(c->pending, id) : NULL;
    const char *from = gw_xml_attr(el, "from");
    if (!p || !from || strcmp(from, p->to) != 0) {
        GW_DEBUG("component.iq_unmatched", "domain=%s", c->domain);
        return;
    }
    pending_finish(c, p, error ? GW_EPROTO : 0, el);
}

static void dispatch(struct gw_component *c, struct gw_xml *el)
{
    bool is_iq = strcmp(el->name, "iq") == 0;
    const char *type = gw_xml_attr(el, "type");
    if (is_iq && type && (strcmp(type, "result") == 0 || strcmp(type, "error") == 0)) {
        on_iq_answer(c, el, strcmp(type, "error") == 0);
        return;
    }
    if (is_iq && (!type || (strcmp(type, "get") != 0 && strcmp(type, "set") != 0))) {
        gw_component_reply_error(c, el, "modify", "bad-request");
        return;
    }
    for (struct handler *h = c->handlers; h; h = h->next)
        if (handler_matches(h, el) && h->fn(h->arg, el))
            return;
    if (!is_iq)
        return; /* messages and presence nobody wants are dropped, as a server would */
    const struct gw_xml *q = gw_xml_next_element(el, NULL);
    if (q && strcmp(type, "get") == 0 && gw_xml_is(q, NS_DISCO_INFO, "query"))
        answer_disco(c, el, q);
    else if (q && strcmp(type, "get") == 0 && gw_xml_is(q, NS_PING, "ping"))
        gw_component_reply_result(c, el, NULL);
    else
        gw_component_reply_error(c, el, "cancel", "service-unavailable");
}

/* ---- public ---- */

static int read_secret_file(const char *path, char *out, size_t outlen, char *err, size_t errlen)
{
    FILE *fp = fopen(path, "r");
    if (!fp) {
        snprintf(err, errlen, "component_secret_file %s: %s", path, strerror(errno));
        return GW_ECONFIG;
    }
    char *got = fgets(out, (int)outlen, fp);
    fclose(fp);
    if (!got) {
        snprintf(err, errlen, "component_secret_file %s: empty", path);
        return GW_ECONFIG;
    }
    size_t n = strlen(out);
    while (n > 0 && isspace((unsigned char)out[n - 1]))
        out[--n] = '\0';
    return 0;
}

int gw_component_new(struct gw_core *core, struct gw_component **out, char *err, size_t errlen)
{
    const struct gw_config *cfg = core->cfg;
    *out = NULL;
    if (!cfg->component.host[0] || !cfg->component_domain[0])
        return GW_ENOTFOUND;
    char secret[256];
    if (cfg->component_secret[0]) {
        snprintf(secret, sizeof secret, "%s", cfg->component_secret);
    } else if (cfg->component_secret_file[0]) {
        int rc = read_secret_file(cfg->component_secret_file, secret, sizeof secret, err, errlen);
        if (rc)
            return rc;
    } else {
        snprintf(err, errlen,
                 "component_domain is set but neither component_secret nor "
                 "component_secret_file");
        return GW_ECONFIG;
    }
    if (!secret[0]) {
        snprintf(err, errlen, "the component secret is empty");
        return GW_ECONFIG;
    }
    struct gw_jid j;
    if (gw_jid_parse(cfg->component_domain, &j) != 0 || j.local || j.resource) {
        gw_jid_free(&j);
        snprintf(err, errlen, "component_domain is not a domain");
        return GW_ECONFIG;
    }
    struct gw_component *c = gw_calloc(1, sizeof *c);
    c->core = core;
    c->domain = gw_strdup(j.domain);
    gw_jid_free(&j);
    c->secret = gw_strdup(secret);
    gw_memzero(secret, sizeof secret);
    gw_buf_init(&c->out, cfg->limit_queue_bytes);
    c->pending = gw_map_new();
    uv_timer_init(core->loop, &c->timer);
    c->timer.data = c;
    uv_prepare_init(core->loop, &c->flusher);
    c->flusher.data = c;
    c->handles = 2;
    c->m_up = gw_metrics_gauge(core->metrics, "mxgw_component_up",
                               "1 while the XEP-0114 component link is authenticated", NULL);
    c->m_reconnects =
        gw_metrics_counter(core->metrics, "mxgw_component_reconnects_total",
                           "Connection attempts of the component link after a failure", NULL);
    c->m_in = gw_metrics_counter(core->metrics, "mxgw_component_stanzas_total",
                                 "Stanzas through the component link", "direction=\"in\"");
    c->m_out = gw_metrics_counter(core->metrics, "mxgw_component_stanzas_total",
                                  "Stanzas through the component link", "direction=\"out\"");
    *out = c;
    return 0;
}

void gw_component_start(struct gw_component *c)
{
    if (c->started || c->closing)
        return;
    c->started = true;
    connect_now(c);
}

void gw_component_close(struct gw_component *c, void (*done)(void *arg), void *arg)
{
    if (c->closing)
        return;
    bool was_up = c->state == ST_UP;
    c->closing = true;
    c->closed = done;
    c->closed_arg = arg;
    if (was_up && c->conn && !c->conn->writing) {
        /* Best effort: a clean end of stream if the socket takes it now. */
        queue(c, "</stream:stream>", 16);
        uv_buf_t b = uv_buf_init(c->out.data, (unsigned)c->out.len);
        uv_try_write((uv_stream_t *)&c->conn->tcp, &b, 1);
    }
    fail_pending(c, GW_ECLOSED);
    fail(c, "closing", GW_LOG_DEBUG);
    if (was_up)
        GW_INFO("component.closed", "domain=%s", c->domain);
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, handle_closed);
    uv_close((uv_handle_t *)&c->flusher, handle_closed);
}

bool gw_component_up(const struct gw_component *c)
{
    return c->state == ST_UP && !c->closing;
}

const char *gw_component_domain(const struct gw_component *c)
{
    return c->domain;
}

void gw_component_watch(struct gw_component *c, gw_component_watch_fn fn, void *arg)
{
    struct watcher *w = gw_calloc(1, sizeof *w);
    w->fn = fn;
    w->arg = arg;
    struct watcher **tail = &c->watchers;
    while (*tail)
        tail = &(*tail)->next;
    *tail = w;
}

void gw_component_on(struct gw_component *c, const char *name, const char *child_ns,
                     gw_component_handler fn, void *arg)
{
    struct handler *h = gw_calloc(1, sizeof *h);
    h->name = gw_strdup(name);
    h->ns = child_ns ? gw_strdup(child_ns) : NULL;
    h->fn = fn;
    h->arg = arg;
    struct handler **tail = &c->handlers;
    while (*tail)
        tail = &(*tail)->next;
    *tail = h;
}

void gw_component_off(struct gw_component *c, gw_component_handler fn, void *arg)
{
    for (struct handler **ph = &c->handlers; *ph;) {
        struct handler *h = *ph;
        if (h->fn == fn && h->arg == arg) {
            *ph = h->next;
            free(h->name);
            free(h->ns);
            free(h);
        } else {
            ph = &h->next;
        }
    }
}

static void add_str(struct strnode **list, const char *a, const char *b, const char *cc)
{
    struct strnode *n = gw_calloc(1, sizeof *n);
    n->a = gw_strdup(a);
    n->b = b ? gw_strdup(b) : NULL;
    n->c = cc ? gw_strdup(cc) : NULL;
    while (*list)
        list = &(*list)->next;
    *list = n;
}

void gw_component_add_feature(struct gw_component *c, const char *var)
{
    add_str(&c->features, var, NULL, NULL);
}

void gw_component_add_identity(struct gw_component *c, const char *category, const char *type,
                               const char *name)
{
    add_str(&c->identities, category, type, name);
}

/* True if from is the component domain or a JID on it. */
static bool own_jid(const struct gw_component *c, const char *from)
{
    struct gw_jid j;
    if (gw_jid_parse(from, &j) != 0)
        return false;
    bool ok = strcmp(j.domain, c->domain) == 0;
    gw_jid_free(&j);
    return ok;
}

/* Serializes el (with from defaulted to our domain, to checked) onto the queue. */
static int send_el(struct gw_component *c, const struct gw_xml *el)
{
    if (!gw_component_up(c))
        return GW_EUNAVAIL;
    const char *to = gw_xml_attr(el, "to");
    const char *from = gw_xml_attr(el, "from");
    if (!to || !gw_jid_valid(to) || (from && !own_jid(c, from)))
        return GW_EINVAL;
    if (queue_full(c))
        return GW_ELIMIT;
    struct gw_xml *copy = NULL;
    if (!from) {
        copy = gw_xml_copy(el);
        gw_xml_set_attr(copy, "from", c->domain);
        el = copy;
    }
    /* Serialized as if jabber:client were in scope: the stanza and the children that inherit
     * its namespace are written unprefixed and so read as jabber:component:accept under our
     * stream header, while an explicitly nested jabber:client element (a forwarded message)
     * keeps its own declaration. */
    int rc = gw_xml_serialize(&c->out, el, GW_NS_CLIENT);
    gw_xml_free(copy);
    if (rc)
        return rc;
    (*c->m_out)++;
    uv_prepare_start(&c->flusher, on_prepare);
    return 0;
}

int gw_component_send(struct gw_component *c, const struct gw_xml *stanza)
{
    return send_el(c, stanza);
}

static struct gw_xml *reply_to(struct gw_component *c, const struct gw_xml *iq, const char *type)
{
    struct gw_xml *r = gw_xml_new(GW_NS_CLIENT, "iq");
    gw_xml_set_attr(r, "type", type);
    const char *id = gw_xml_attr(iq, "id");
    gw_xml_set_attr(r, "id", id ? id : "");
    const char *from = gw_xml_attr(iq, "from");
    const char *to = gw_xml_attr(iq, "to");
    gw_xml_set_attr(r, "to", from ? from : "");
    gw_xml_set_attr(r, "from", to && own_jid(c, to) ? to : c->domain);
    return r;
}

int gw_component_reply_error(struct gw_component *c, const struct gw_xml *iq, const char *type,
                             const char *condition)
{
    struct gw_xml *r = reply_to(c, iq, "error");
    struct gw_xml *e = gw_xml_add_child(r, NULL, "error");
    gw_xml_set_attr(e, "type", type);
    gw_xml_add_child(e, GW_NS_STANZAS, condition);
    int rc = send_el(c, r);
    gw_xml_free(r);
    return rc;
}

int gw_component_reply_result(struct gw_component *c, const struct gw_xml *iq,
                              const struct gw_xml *payload)
{
    struct gw_xml *r = reply_to(c, iq, "result");
    if (payload)
        gw_xml_append(r, gw_xml_copy(payload));
    int rc = send_el(c, r);
    gw_xml_free(r);
    return rc;
}

int gw_component_iq(struct gw_component *c, const struct gw_xml *iq, uint64_t timeout_ms,
                    gw_component_iq_cb cb, void *arg, uint64_t *handle)
{
    const char *type = gw_xml_attr(iq, "type");
    const char *to = gw_xml_attr(iq, "to");
    if (strcmp(iq->name, "iq") != 0 || !type ||
        (strcmp(type, "get") != 0 && strcmp(type, "set") != 0) || !to || !cb)
        return GW_EINVAL;
    if (!gw_component_up(c))
        return GW_EUNAVAIL;
    if (gw_map_count(c->pending) >= MAX_PENDING)
        return GW_ELIMIT;
    struct pending *p = gw_calloc(1, sizeof *p);
    if (gw_rand_hex(c->core->rand, 16, p->id, sizeof p->id) != 0) {
        free(p);
        return GW_EIO;
    }
    struct gw_xml *copy = gw_xml_copy(iq);
    gw_xml_set_attr(copy, "id", p->id);
    int rc = send_el(c, copy);
    gw_xml_free(copy);
    if (rc) {
        free(p);
        return rc;
    }
    p->comp = c;
    p->handle = ++c->next_handle;
    p->to = gw_strdup(to);
    p->cb = cb;
    p->arg = arg;
    uv_timer_init(c->core->loop, &p->timer);
    p->timer.data = p;
    c->handles++;
    uv_timer_start(&p->timer, on_iq_timeout, timeout_ms, 0);
    gw_map_put(c->pending, p->id, p);
    p->next = c->plist;
    if (c->plist)
        c->plist->prev = p;
    c->plist = p;
    if (handle)
        *handle = p->handle;
    return 0;
}

void gw_component_iq_cancel(struct gw_component *c, uint64_t handle)
{
    for (struct pending *p = c->plist; p; p = p->next)
        if (p->handle == handle) {
            pending_drop(c, p);
            return;
        }
}
