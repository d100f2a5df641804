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
#include "xmpp/component_impl.h"

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

static void handle_closed(uv_handle_t *h)
{
    struct gw_component *c = h->data;
    c->handles--;
    component_maybe_finish(c);
}

void component_maybe_finish(struct gw_component *c)
{
    if (!c->closing || c->handles > 0)
        return;
    gw_stream_free(c->parser);
    gw_buf_free(&c->out);
    gw_map_free(c->pending);
    component_free_lists(c);
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
    component_maybe_finish(c);
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
        component_fail_pending(c, GW_ECLOSED);
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

void component_flush_soon(struct gw_component *c)
{
    uv_prepare_start(&c->flusher, on_prepare);
}

/* Appends raw bytes; the flusher writes them before the loop sleeps. */
static int queue(struct gw_component *c, const char *s, size_t n)
{
    int rc = gw_buf_append(&c->out, s, n);
    if (rc == 0)
        uv_prepare_start(&c->flusher, on_prepare);
    return rc;
}

bool component_queue_full(const struct gw_component *c)
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
            gw_xml_set_ns(el, GW_NS_CLIENT);
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

static void p_stanza(void *arg, struct gw_xml *el)
{
    struct gw_component *c = arg;
    if (gw_xml_is(el, GW_NS_STREAM, "error")) {
        char cond[64], why[96];
        const char *name = gw_xml_error_condition(el, GW_NS_STREAMS);
        snprintf(cond, sizeof cond, "%s", name ? name : "undefined-condition");
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
    component_dispatch(c, el);
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
        component_maybe_finish(c);
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
    c->attempt_ms = uv_now(c->core->loop);
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
    component_fail_pending(c, GW_ECLOSED);
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

void gw_component_retry_soon(struct gw_component *c)
{
    if (!c->started || c->closing || c->state != ST_IDLE)
        return;
    uint64_t now = uv_now(c->core->loop), at = c->attempt_ms + RETRY_SOON_MS;
    uint64_t in = at > now ? at - now : 0;
    if (in >= uv_timer_get_due_in(&c->timer))
        return;
    GW_DEBUG("component.retry_soon", "domain=%s in_ms=%llu", c->domain, (unsigned long long)in);
    uv_timer_start(&c->timer, on_timer, in, 0);
}

void gw_component_unwatch(struct gw_component *c, gw_component_watch_fn fn, void *arg)
{
    for (struct watcher **p = &c->watchers; *p; p = &(*p)->next)
        if ((*p)->fn == fn && (*p)->arg == arg) {
            struct watcher *w = *p;
            *p = w->next;
            free(w);
            return;
        }
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
