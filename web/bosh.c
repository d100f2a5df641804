/* BOSH connection manager: the HTTP endpoint, session creation (XEP-0124 §7, XEP-0206 §3), the
 * upstream stream of each session, and the gateway-session hooks (SIGTERM, pre-auth timeout).
 * What happens to requests inside a session is in bosh_session.c.
 *
 * Each session has one upstream c2s stream opened at creation; mxgw does STARTTLS itself and the
 * client sees the stream after it, exactly as over RFC 7395. Upstream elements are serialized
 * once into the session's queue (bounded by limit_queue_bytes; reading the server pauses at
 * half of it) and leave in the next response. Client payloads are parsed with the stream
 * parser's limits, put in jabber:client if they inherited the wrapper's namespace, and
 * re-serialized upstream. */
#include "web/bosh.h"

#include "gateway/err.h"
#include "gateway/log.h"
#include "gateway/mem.h"
#include "gateway/metrics.h"
#include "gateway/rand.h"
#include "web/bosh_impl.h"
#include "web/relay.h"
#include "xmpp/jid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VER_MAJOR 1
#define VER_MINOR 11

static const char info_page[] =
    "<!DOCTYPE html><html><head><meta charset='utf-8'><title>mxgw BOSH</title></head><body>"
    "<h1>mxgw BOSH connection manager</h1><p>This is an XMPP over BOSH endpoint (XEP-0124, "
    "XEP-0206). Point a BOSH client such as Strophe.js at this URL.</p></body></html>\n";

/* ---- the upstream stream ---- */

static void up_open(void *arg, const struct gw_xml *header)
{
    struct bsess *s = arg;
    const char *from = gw_xml_attr(header, "from");
    const char *id = gw_xml_attr(header, "id");
    if (from && !s->from)
        s->from = gw_strdup(from);
    if (id && !s->authid)
        s->authid = gw_strdup(id);
    s->up_ready = true;
    /* Elements the client sent before the stream (after TLS) was open go now, in order. */
    s->busy++;
    while (s->parked && !s->ended) {
        struct bosh_parked *p = s->parked;
        s->parked = p->next;
        if (!s->parked)
            s->parked_tail = NULL;
        const char *c = bosh_forward(s, p->el);
        gw_xml_free(p->el);
        free(p);
        if (c)
            bosh_end(s, c, NULL, 0);
    }
    s->busy--;
    if (s->freeing && s->busy == 0)
        bosh_session_release(s);
}

static void up_stanza(void *arg, struct gw_xml *el)
{
    struct bsess *s = arg;
    if (s->ended) {
        gw_xml_free(el);
        return;
    }
    if (s->sess)
        gw_relay_watch_bind(s->sess, el);
    gw_relay_strip_channel_binding(el);
    struct gw_buf out;
    gw_buf_init(&out, 0);
    int rc = gw_xml_serialize(&out, el, NULL);
    gw_xml_free(el);
    size_t limit = s->b->core->cfg->limit_queue_bytes;
    if (rc == 0 && s->qbytes + out.len > limit) {
        GW_WARN("bosh.queue_full", "session=%s bytes=%zu", s->sess ? gw_session_id(s->sess) : "-",
                s->qbytes);
        rc = GW_ELIMIT;
    }
    if (rc != 0) {
        gw_buf_free(&out);
        s->busy++;
        bosh_end(s, rc == GW_ELIMIT ? "policy-violation" : "undefined-condition", NULL, 0);
        s->busy--;
        if (s->freeing && s->busy == 0)
            bosh_session_release(s);
        return;
    }
    struct bosh_item *it = gw_malloc(sizeof *it + out.len);
    it->next = NULL;
    it->len = out.len;
    memcpy(it->data, out.data, out.len);
    gw_buf_free(&out);
    if (s->qtail)
        s->qtail->next = it;
    else
        s->qhead = it;
    s->qtail = it;
    s->qbytes += it->len;
    /* Backpressure: stop reading the server while the client is slow to collect. */
    if (!s->up_paused && s->up && s->qbytes > limit / 2) {
        s->up_paused = true;
        gw_upstream_pause(s->up, true);
    }
    bosh_mark_dirty(s);
}

/* A <stream:error> with condition, serialized, for remote-stream-error. */
static void stream_error(struct gw_buf *out, const char *condition)
{
    struct gw_xml *err = gw_xml_new(GW_NS_STREAM, "error");
    gw_xml_set_prefix(err, "stream");
    gw_xml_add_child(err, GW_NS_STREAMS, condition);
    gw_xml_serialize(out, err, NULL);
    gw_xml_free(err);
}

static void up_closed(void *arg, int err, const char *condition, const struct gw_xml *error_el)
{
    struct bsess *s = arg;
    struct gw_upstream *up = s->up;
    s->up = NULL; /* the stream is over: nothing to close */
    s->busy++;
    struct gw_buf extra;
    gw_buf_init(&extra, 0);
    if (err == 0) {
        bosh_end(s, NULL, NULL, 0);
    } else if (condition && strcmp(condition, "host-unknown") == 0 && !s->created) {
        /* The server does not serve the domain asked for in 'to'. */
        bosh_end(s, "host-unknown", NULL, 0);
    } else if (condition && strcmp(condition, "remote-connection-failed") == 0 && !error_el) {
        bosh_end(s, "remote-connection-failed", NULL, 0);
    } else {
        /* XEP-0124 §17.2: the upstream stream error travels inside remote-stream-error. */
        if (error_el)
            gw_xml_serialize(&extra, error_el, NULL);
        else
            stream_error(&extra, condition ? condition : "undefined-condition");
        bosh_end(s, "remote-stream-error", extra.data, extra.len);
    }
    gw_buf_free(&extra);
    gw_upstream_free(up);
    s->busy--;
    if (s->freeing && s->busy == 0)
        bosh_session_release(s);
}

static const struct gw_upstream_handlers up_handlers = {up_open, up_stanza, up_closed, NULL};

const char *bosh_forward(struct bsess *s, struct gw_xml *el)
{
    if (!s->up)
        return "remote-connection-failed";
    /* STARTTLS and stream-level elements are mxgw's business, not the client's. */
    if (el->ns && (strcmp(el->ns, GW_NS_STREAM) == 0 || strcmp(el->ns, GW_NS_TLS) == 0))
        return "bad-request";
    /* Payloads written without xmlns inherited the wrapper's namespace: they are stanzas. */
    gw_relay_client_ns(el, GW_NS_HTTPBIND);
    const struct gw_config *cfg = s->b->core->cfg;
    struct gw_buf probe;
    gw_buf_init(&probe, cfg->limit_stanza_bytes);
    int rc = gw_xml_serialize(&probe, el, GW_NS_CLIENT);
    gw_buf_free(&probe);
    if (rc == GW_ELIMIT)
        return "policy-violation"; /* the same stanza bound as on a stream (CHECKLIST A2) */
    if (rc != 0)
        return "bad-request";
    if (s->up_ready)
        rc = gw_upstream_send(s->up, el);
    else
        rc = GW_EAGAIN;
    if (rc == GW_EAGAIN) {
        size_t parked = 0;
        for (struct bosh_parked *p = s->parked; p; p = p->next)
            parked++;
        if (parked >= 64)
            return "policy-violation";
        struct bosh_parked *p = gw_calloc(1, sizeof *p);
        p->el = gw_xml_copy(el);
        if (s->parked_tail)
            s->parked_tail->next = p;
        else
            s->parked = p;
        s->parked_tail = p;
        return NULL;
    }
    if (rc == GW_ELIMIT)
        return "policy-violation";
    if (rc == GW_EINVAL)
        return "bad-request";
    if (rc != 0)
        return s->ended ? NULL : "remote-connection-failed";
    return NULL;
}

const char *bosh_restart(struct bsess *s)
{
    if (!s->up)
        return "remote-connection-failed";
    if (!s->up_ready)
        return "bad-request"; /* a restart before the stream was even open */
    int rc = gw_upstream_open(s->up, s->domain, s->lang);
    return rc == 0 ? NULL : "remote-connection-failed";
}

/* ---- gateway session hooks ---- */

static void on_shutdown(void *owner, enum gw_close_reason why)
{
    struct bsess *s = owner;
    struct gw_buf extra;
    gw_buf_init(&extra, 0);
    s->busy++;
    switch (why) {
    case GW_CLOSE_SHUTDOWN:
        bosh_end(s, "system-shutdown", NULL, 0);
        break;
    case GW_CLOSE_PREAUTH:
        stream_error(&extra, "connection-timeout");
        bosh_end(s, "remote-stream-error", extra.data, extra.len);
        break;
    case GW_CLOSE_KICKED:
        stream_error(&extra, "policy-violation");
        bosh_end(s, "remote-stream-error", extra.data, extra.len);
        break;
    }
    gw_buf_free(&extra);
    s->busy--;
    if (s->freeing && s->busy == 0)
        bosh_session_release(s);
}

static const struct gw_session_ops session_ops = {on_shutdown};

/* ---- session creation ---- */

/* Answers a request that belongs to no session with a terminal wrapper. */
static void refuse(struct gw_bosh *b, struct gw_http_req *req, const char *condition, bool legacy)
{
    struct gw_buf out;
    gw_buf_init(&out, 0);
    gw_bosh_terminal(&out, condition, NULL, 0);
    gw_http_respond(req, legacy ? gw_bosh_legacy_status(condition) : 200, bosh_content_type(NULL),
                    out.data, out.len);
    gw_buf_free(&out);
    (*b->res_terminal)++;
    bosh_count_terminal(b, condition);
}

/* 'route' is honoured only when it is listed in bosh_route_allowlist (else it would let any
 * client make mxgw connect anywhere). Returns true with host and port when listed. */
static bool route_allowed(const struct gw_config *cfg, const char *route, struct gw_hostport *hp)
{
    size_t n = strlen(route);
    const char *p = cfg->bosh_route_allowlist;
    bool listed = false;
    while (*p && !listed) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t len = strcspn(p, " ,");
        listed = len == n && len > 0 && memcmp(p, route, n) == 0;
        p += len;
    }
    if (!listed || strncmp(route, "xmpp:", 5) != 0)
        return false;
    const char *host = route + 5, *colon = strrchr(host, ':');
    uint64_t port;
    if (!colon || colon == host || gw_bosh_parse_uint(colon + 1, 65536, &port) != 0 || port == 0 ||
        port > 65535 || (size_t)(colon - host) >= sizeof hp->host)
        return false;
    memcpy(hp->host, host, (size_t)(colon - host));
    hp->host[colon - host] = '\0';
    if (hp->host[0] == '[') { /* [v6] */
        size_t l = strlen(hp->host);
        if (l < 3 || hp->host[l - 1] != ']')
            return false;
        memmove(hp->host, hp->host + 1, l - 2);
        hp->host[l - 2] = '\0';
    }
    hp->port = (uint16_t)port;
    return true;
}

static void create(struct gw_bosh *b, struct gw_http_req *req, struct gw_bosh_body *body)
{
    const struct gw_config *cfg = b->core->cfg;
    bool legacy = !body->has_ver;
    if (b->core->draining || b->stopping) {
        refuse(b, req, "system-shutdown", legacy);
        return;
    }
    if (!body->to || !*body->to) {
        refuse(b, req, "improper-addressing", legacy);
        return;
    }
    struct gw_jid jid;
    if (gw_jid_parse(body->to, &jid) != 0) {
        refuse(b, req, "host-unknown", legacy);
        return;
    }
    bool domain_only = !jid.local && !jid.resource;
    gw_jid_free(&jid);
    if (!domain_only) {
        refuse(b, req, "host-unknown", legacy);
        return;
    }
    if (!body->has_wait) {
        refuse(b, req, "bad-request", legacy);
        return;
    }
    struct bsess *s = gw_calloc(1, sizeof *s);
    s->b = b;
    s->legacy = legacy;
    s->domain = gw_strdup(body->to);
    s->lang = body->lang ? gw_strdup(body->lang) : NULL;
    s->content_type = body->content ? gw_strdup(body->content) : NULL;
    unsigned max_wait = (unsigned)(cfg->bosh_max_wait_ms / 1000);
    s->wait_s = body->wait < max_wait ? (unsigned)body->wait : max_wait;
    uint64_t hold = body->has_hold ? body->hold : 1;
    s->hold = hold < cfg->bosh_hold ? (unsigned)hold : cfg->bosh_hold;
    s->requests = cfg->bosh_requests;
    s->polling_s = (unsigned)(cfg->bosh_polling_ms / 1000);
    s->inactivity_s = (unsigned)(cfg->bosh_inactivity_ms / 1000);
    if (s->wait_s == 0 || s->hold == 0) /* §12: a polling session gets more room */
        s->inactivity_s += s->polling_s;
    s->maxpause_s = (unsigned)(cfg->bosh_max_pause_ms / 1000);
    if (body->has_ver) {
        bool newer = body->ver_major > VER_MAJOR ||
                     (body->ver_major == VER_MAJOR && body->ver_minor > VER_MINOR);
        snprintf(s->ver, sizeof s->ver, "%u.%u", newer ? VER_MAJOR : body->ver_major,
                 newer ? VER_MINOR : body->ver_minor);
    }
    s->xbosh = body->xmpp_version != NULL;
    s->acks = body->ack_requested;
    s->creation_rid = body->rid;
    s->last_new_ms = bosh_now_ms(b);
    if (body->newkey)
        snprintf(s->key, sizeof s->key, "%s", body->newkey);
    for (char *k = s->key; *k; k++)
        if (*k >= 'A' && *k <= 'F')
            *k = (char)(*k - 'A' + 'a');
    uv_timer_init(b->core->loop, &s->timer);
    s->timer.data = s;
    if (gw_rand_hex(b->core->rand, BOSH_SID_BYTES, s->sid, sizeof s->sid) != 0) {
        refuse(b, req, "internal-server-error", legacy);
        s->freeing = true;
        bosh_session_release(s);
        return;
    }
    int rc =
        gw_session_open(b->core, GW_TRANSPORT_BOSH, gw_http_req_ip(req), &session_ops, s, &s->sess);
    if (rc != 0) {
        GW_INFO("bosh.session_refused", "ip=%s reason=\"%s\"", gw_http_req_ip(req),
                gw_strerror(rc));
        refuse(b, req, rc == GW_EUNAVAIL ? "system-shutdown" : "policy-violation", legacy);
        s->freeing = true;
        bosh_session_release(s);
        return;
    }
    gw_session_set_state(s->sess, GW_SESSION_AUTHENTICATING);
    gw_map_put(b->sessions, s->sid, s);
    b->count++;
    (*b->opened)++;
    gw_bosh_window_init(&s->win, body->rid, s->requests, s->acks ? BOSH_KEEP_ACKED : s->requests);
    gw_bosh_window_add(&s->win, body->rid, GW_BOSH_HELD, req, NULL);
    bosh_defer(s, req);
    s->busy++;
    if (body->npayloads) /* nothing can go before the stream is open */
        GW_DEBUG("bosh.creation_payload_ignored", "count=%zu", body->npayloads);
    s->up = gw_upstream_new(b->core, &up_handlers, s);
    gw_upstream_set_transport(s->up, GW_TRANSPORT_BOSH); /* metrics label */
    struct gw_hostport target;
    if (body->route && route_allowed(cfg, body->route, &target))
        gw_upstream_set_target(s->up, target.host, target.port);
    else if (body->route)
        GW_DEBUG("bosh.route_ignored", "session=%s", gw_session_id(s->sess));
    if (gw_upstream_open(s->up, s->domain, s->lang) != 0)
        bosh_end(s, "remote-connection-failed", NULL, 0);
    GW_INFO("bosh.session", "session=%s ip=%s wait=%u hold=%u ver=%s", gw_session_id(s->sess),
            gw_http_req_ip(req), s->wait_s, s->hold, s->ver[0] ? s->ver : "-");
    bosh_pump(s);
    s->busy--;
    if (s->freeing && s->busy == 0)
        bosh_session_release(s);
}

/* ---- the endpoint ---- */

static bool blank(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strchr(" \t\r\n", p[i]))
            return false;
    return true;
}

static void on_request(void *arg, struct gw_http_req *req)
{
    struct gw_bosh *b = arg;
    const struct gw_config *cfg = b->core->cfg;
    if (gw_http_req_method(req) & (GW_HTTP_GET | GW_HTTP_HEAD)) {
        gw_http_add_header(req, "Cache-Control", "no-cache");
        gw_http_respond(req, 200, "text/html; charset=utf-8", info_page, sizeof info_page - 1);
        return;
    }
    size_t len;
    const char *data = gw_http_req_body(req, &len);
    if (blank(data, len)) {
        /* Not BOSH at all: the old HTTP answer (XEP-0124 §17.1) with a readable wrapper. */
        struct gw_buf out;
        gw_buf_init(&out, 0);
        gw_bosh_terminal(&out, "bad-request", NULL, 0);
        gw_http_respond(req, 400, bosh_content_type(NULL), out.data, out.len);
        gw_buf_free(&out);
        (*b->res_http_error)++;
        return;
    }
    /* The same bounds as a stream; the wrapper adds one level and its own attributes. */
    struct gw_xml_limits lim = {cfg->http_body_bytes, cfg->limit_xml_depth + 1,
                                cfg->limit_xml_attrs < 32 ? 32 : cfg->limit_xml_attrs};
    struct gw_bosh_body body;
    const char *condition = NULL;
    if (gw_bosh_body_parse(b->doc, data, len, &lim, &body, &condition) != 0) {
        GW_INFO("bosh.bad_body", "ip=%s condition=%s", gw_http_req_ip(req), condition);
        refuse(b, req, condition, false);
        return;
    }
    if (!body.sid) {
        create(b, req, &body);
        gw_bosh_body_free(&body);
        return;
    }
    struct bsess *s = gw_map_get(b->sessions, body.sid);
    if (!s || s->freeing) {
        refuse(b, req, "item-not-found", false);
        gw_bosh_body_free(&body);
        return;
    }
    bosh_session_request(s, req, &body);
}

static double sessions_metric(void *arg)
{
    return (double)gw_bosh_sessions(arg);
}

static uint64_t *result_counter(struct gw_bosh *b, const char *result)
{
    char labels[48];
    snprintf(labels, sizeof labels, "result=\"%s\"", result);
    return gw_metrics_counter(b->core->metrics, "mxgw_bosh_requests_total",
                              "BOSH requests answered, by result", labels);
}

static void on_check_closed(uv_handle_t *h)
{
    struct gw_bosh *b = h->data;
    gw_map_free(b->sessions);
    gw_xml_doc_free(b->doc);
    free(b);
}

int gw_bosh_start(struct gw_core *core, struct gw_http *http, struct gw_bosh **out)
{
    const struct gw_config *cfg = core->cfg;
    if (cfg->bosh_requests <= cfg->bosh_hold) {
        GW_ERROR("bosh.bad_config",
                 "detail=\"bosh_requests (%u) must be more than bosh_hold (%u)\"",
                 cfg->bosh_requests, cfg->bosh_hold);
        return GW_ECONFIG;
    }
    if (cfg->http_body_bytes < cfg->limit_stanza_bytes) {
        GW_ERROR("bosh.bad_config",
                 "detail=\"http_body_bytes (%zu) must be at least limit_stanza_bytes (%zu)\"",
                 cfg->http_body_bytes, cfg->limit_stanza_bytes);
        return GW_ECONFIG;
    }
    struct gw_bosh *b = gw_calloc(1, sizeof *b);
    b->core = core;
    b->http = http;
    b->sessions = gw_map_new();
    b->doc = gw_xml_doc_new();
    snprintf(b->path, sizeof b->path, "%s", cfg->bosh_path);
    uv_check_init(core->loop, &b->check);
    b->check.data = b;
    struct gw_http_route route = {
        .path = b->path,
        .name = "bosh",
        .methods = GW_HTTP_GET | GW_HTTP_POST,
        .cors = true,
        .handler = on_request,
        .arg = b,
    };
    int rc = gw_http_route_add(http, &route);
    if (rc != 0) {
        GW_ERROR("bosh.bad_config", "key=bosh_path detail=\"%s\"", gw_strerror(rc));
        uv_close((uv_handle_t *)&b->check, on_check_closed);
        return GW_ECONFIG;
    }
    struct gw_metrics *m = core->metrics;
    b->opened =
        gw_metrics_counter(m, "mxgw_bosh_sessions_opened_total", "BOSH sessions opened", "");
    b->closed =
        gw_metrics_counter(m, "mxgw_bosh_sessions_closed_total", "BOSH sessions closed", "");
    gw_metrics_gauge_fn(m, "mxgw_bosh_sessions", "BOSH sessions open", NULL, sessions_metric, b);
    b->res_payload = result_counter(b, "payload");
    b->res_empty = result_counter(b, "empty");
    b->res_replayed = result_counter(b, "replayed");
    b->res_recoverable = result_counter(b, "recoverable");
    b->res_terminal = result_counter(b, "terminal");
    b->res_http_error = result_counter(b, "http_error");
    bosh_register_terminal(b);
    GW_INFO("bosh.start", "path=%s max_wait=%llus inactivity=%llus hold=%u requests=%u", b->path,
            (unsigned long long)(cfg->bosh_max_wait_ms / 1000),
            (unsigned long long)(cfg->bosh_inactivity_ms / 1000), cfg->bosh_hold,
            cfg->bosh_requests);
    *out = b;
    return 0;
}

size_t gw_bosh_sessions(const struct gw_bosh *b)
{
    return b ? b->count : 0;
}

static void collect(void *arg, const char *key, void *value)
{
    (void)key;
    struct bsess ***cursor = arg;
    *(*cursor)++ = value;
}

void gw_bosh_stop(struct gw_bosh *b)
{
    if (!b)
        return;
    b->stopping = true;
    size_t n = gw_map_count(b->sessions);
    struct bsess **all = gw_calloc(n ? n : 1, sizeof *all), **cursor = all;
    gw_map_each(b->sessions, collect, &cursor);
    for (size_t i = 0; i < n; i++) {
        struct bsess *s = all[i];
        bosh_end(s, "system-shutdown", NULL, 0);
        s->lingering = false;
        s->keep_session = false;
        bosh_session_release(s);
    }
    free(all);
    uv_check_stop(&b->check);
    b->check.data = b;
    uv_close((uv_handle_t *)&b->check, on_check_closed);
}
