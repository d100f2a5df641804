/* WebSocket server on libwebsockets, driven by the gateway's libuv loop (foreign-loop mode).
 *
 * Debian's libwebsockets is built without external-poll support but with libuv, so lws runs on
 * our uv_loop_t directly. protocols[0] is a guard that owns plain HTTP and upgrades that name
 * none of our subprotocols: it refuses them. A connection reassembles one message at a time
 * into a buffer capped at the stanza limit (refusing with 1009 as soon as a frame header
 * announces more), and queues outbound messages up to the queue cap, writing one message per
 * writable callback. Closing after the queue drains is how a stream error reaches the client
 * before the close frame. */
#include "web/ws.h"

#include "gateway/err.h"
#include "gateway/log.h"
#include "gateway/mem.h"

#include <libwebsockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FRAGMENTS 16

struct out_msg {
    struct out_msg *next;
    size_t len;
    unsigned char data[]; /* LWS_PRE bytes of headroom, then the payload */
};

struct gw_ws_conn {
    struct lws *wsi;
    struct gw_ws *ws;
    const struct gw_ws_proto *proto;
    void *state;
    char *rx;
    size_t rx_len, rx_cap;
    unsigned fragments;
    bool skipping; /* inside an oversized message the handler chose to skip */
    struct out_msg *head, *tail;
    size_t queued;
    bool high; /* queue was above half its cap */
    bool closing;
    uint16_t close_code;
    char close_reason[64];
    char peer[48];
};

struct gw_ws {
    struct gw_core *core;
    struct lws_context *ctx;
    const struct gw_ws_proto *protos;
    size_t nprotos;
    struct lws_protocols *lws_protos;
};

static struct gw_ws *server_of(struct lws *wsi)
{
    return lws_context_user(lws_get_context(wsi));
}

static const struct gw_ws_proto *proto_of(struct gw_ws *ws, struct lws *wsi)
{
    const struct lws_protocols *p = lws_get_protocol(wsi);
    for (size_t i = 0; i < ws->nprotos; i++)
        if (p && p->name && strcmp(p->name, ws->protos[i].name) == 0)
            return &ws->protos[i];
    return NULL;
}

/* The upgrade must target our path; lws already matched the subprotocol to this entry. */
static bool path_ok(struct gw_ws *ws, struct lws *wsi)
{
    char uri[256];
    int n = lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI);
    return n > 0 && strcmp(uri, ws->core->cfg->ws_path) == 0;
}

static void free_queue(struct gw_ws_conn *c)
{
    while (c->head) {
        struct out_msg *m = c->head;
        c->head = m->next;
        free(m);
    }
    c->tail = NULL;
    c->queued = 0;
    free(c->rx);
    c->rx = NULL;
    c->rx_len = c->rx_cap = 0;
}

static int abort_conn(struct gw_ws_conn *c, uint16_t code, const char *reason)
{
    GW_INFO("ws.refuse", "peer=%s code=%u reason=\"%s\"", c->peer, code, reason);
    c->closing = true;
    lws_close_reason(c->wsi, (enum lws_close_status)code, (unsigned char *)reason, strlen(reason));
    return -1;
}

static int on_receive(struct gw_ws_conn *c, const char *in, size_t len)
{
    if (c->closing)
        return 0;
    if (lws_frame_is_binary(c->wsi))
        return abort_conn(c, GW_WS_CLOSE_UNSUPPORTED, "binary frames are not supported");
    size_t max = c->ws->core->cfg->limit_stanza_bytes;
    size_t remaining = lws_remaining_packet_payload(c->wsi);
    bool last = remaining == 0 && lws_is_final_fragment(c->wsi);
    if (c->skipping) { /* the rest of an oversized message: dropped as it arrives */
        if (last) {
            c->skipping = false;
            c->proto->oversized(c->state);
        }
        return 0;
    }
    if (c->rx_len + len + remaining > max) {
        if (!c->proto->oversized)
            return abort_conn(c, GW_WS_CLOSE_TOO_BIG, "message too big");
        free(c->rx);
        c->rx = NULL;
        c->rx_len = c->rx_cap = 0;
        c->fragments = 0;
        c->skipping = !last;
        if (last)
            c->proto->oversized(c->state);
        return 0;
    }
    if (c->rx_len + len > c->rx_cap) {
        size_t cap = c->rx_len + len + remaining;
        c->rx = gw_realloc(c->rx, cap);
        c->rx_cap = cap;
    }
    memcpy(c->rx + c->rx_len, in, len);
    c->rx_len += len;
    if (remaining > 0)
        return 0;
    if (!lws_is_final_fragment(c->wsi)) {
        if (++c->fragments > MAX_FRAGMENTS)
            return abort_conn(c, GW_WS_CLOSE_TOO_BIG, "too many fragments");
        return 0;
    }
    c->fragments = 0;
    size_t n = c->rx_len;
    c->rx_len = 0;
    c->proto->message(c->state, c->rx, n);
    /* Release the reassembly buffer of big messages so idle connections stay small. */
    if (c->rx_cap > 4096) {
        free(c->rx);
        c->rx = NULL;
        c->rx_cap = 0;
    }
    return 0;
}

/* Sends the close frame and ends the connection. With the libuv event loop, libwebsockets
 * 4.1 drops the reason set by lws_close_reason() when the close starts from a writeable
 * callback, so the frame is written here (opcode 4 is what lws-write.h reserves for close). */
static int send_close(struct gw_ws_conn *c)
{
    unsigned char frame[LWS_PRE + 2 + sizeof c->close_reason];
    size_t len = strlen(c->close_reason);
    frame[LWS_PRE] = (unsigned char)(c->close_code >> 8);
    frame[LWS_PRE + 1] = (unsigned char)(c->close_code & 0xff);
    memcpy(frame + LWS_PRE + 2, c->close_reason, len);
    lws_write(c->wsi, frame + LWS_PRE, 2 + len, (enum lws_write_protocol)4);
    return -1;
}

static int on_writeable(struct gw_ws_conn *c)
{
    struct out_msg *m = c->head;
    if (m) {
        c->head = m->next;
        if (!c->head)
            c->tail = NULL;
        c->queued -= m->len;
        int n = lws_write(c->wsi, m->data + LWS_PRE, m->len, LWS_WRITE_TEXT);
        bool ok = n >= 0 && (size_t)n >= m->len;
        free(m);
        if (!ok)
            return -1;
        if (c->head || c->closing)
            lws_callback_on_writable(c->wsi);
        size_t cap = c->ws->core->cfg->limit_queue_bytes;
        if (c->high && c->queued < cap / 2) {
            c->high = false;
            if (c->proto->drained && !c->closing)
                c->proto->drained(c->state);
        }
        return 0;
    }
    if (c->closing)
        return send_close(c);
    return 0;
}

static int guard_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    switch (reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        /* An upgrade that named none of our subprotocols (RFC 7395 §3.2 requires "xmpp"). */
        GW_INFO("ws.refuse", "reason=\"no supported subprotocol\"");
        lws_return_http_status(wsi, HTTP_STATUS_BAD_REQUEST,
                               "Sec-WebSocket-Protocol must name a supported subprotocol (xmpp)");
        return 1;
    case LWS_CALLBACK_HTTP:
        if (lws_return_http_status(wsi, 426, "WebSocket endpoint: use subprotocol xmpp"))
            return -1;
        return lws_http_transaction_completed(wsi);
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

static int proto_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    struct gw_ws_conn *c = user;
    struct gw_ws *ws;
    switch (reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        ws = server_of(wsi);
        if (!path_ok(ws, wsi)) {
            lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, "no WebSocket endpoint here");
            return 1;
        }
        if (ws->core->draining) {
            lws_return_http_status(wsi, HTTP_STATUS_SERVICE_UNAVAILABLE, "shutting down");
            return 1;
        }
        return 0;
    case LWS_CALLBACK_ESTABLISHED:
        ws = server_of(wsi);
        memset(c, 0, sizeof *c);
        c->wsi = wsi;
        c->ws = ws;
        c->proto = proto_of(ws, wsi);
        lws_get_peer_simple(wsi, c->peer, sizeof c->peer);
        c->state = c->proto ? c->proto->open(c->proto->arg, c) : NULL;
        if (!c->state) {
            GW_INFO("ws.refuse", "peer=%s code=%u reason=\"connection refused\"", c->peer,
                    GW_WS_CLOSE_POLICY);
            c->closing = true;
            c->close_code = GW_WS_CLOSE_POLICY;
            snprintf(c->close_reason, sizeof c->close_reason, "connection refused");
            lws_callback_on_writable(wsi);
        }
        return 0;
    case LWS_CALLBACK_RECEIVE:
        return c && c->state ? on_receive(c, in, len) : -1;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        if (c && c->state)
            return on_writeable(c);
        return c && c->closing ? send_close(c) : -1;
    case LWS_CALLBACK_CLOSED:
        if (c && c->state) {
            void *state = c->state;
            c->state = NULL;
            c->closing = true;
            free_queue(c);
            c->proto->closed(state);
        }
        return 0;
    default:
        return 0;
    }
}

int gw_ws_start(struct gw_core *core, const struct gw_ws_proto *protos, size_t nprotos,
                struct gw_ws **out)
{
    struct gw_ws *ws = gw_calloc(1, sizeof *ws);
    ws->core = core;
    ws->protos = protos;
    ws->nprotos = nprotos;
    ws->lws_protos = gw_calloc(nprotos + 2, sizeof *ws->lws_protos);
    ws->lws_protos[0].name = "mxgw-guard";
    ws->lws_protos[0].callback = guard_cb;
    for (size_t i = 0; i < nprotos; i++) {
        struct lws_protocols *p = &ws->lws_protos[i + 1];
        p->name = protos[i].name;
        p->callback = proto_cb;
        p->per_session_data_size = sizeof(struct gw_ws_conn);
        p->rx_buffer_size = 2048;
    }

    lws_set_log_level(LLL_ERR, NULL);
    void *loops[] = {core->loop};
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = core->cfg->ws_listen.port;
    info.iface = core->cfg->ws_listen.host;
    info.protocols = ws->lws_protos;
    info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_VALIDATE_UTF8 |
                   LWS_SERVER_OPTION_UV_NO_SIGSEGV_SIGFPE_SPIN | LWS_SERVER_OPTION_DISABLE_IPV6;
    if (strchr(core->cfg->ws_listen.host, ':'))
        info.options &= ~(uint64_t)LWS_SERVER_OPTION_DISABLE_IPV6;
    info.foreign_loops = loops;
    info.user = ws;
    info.timeout_secs = 10; /* handshake and HTTP header deadline (slowloris) */
    info.max_http_header_data = 2048;
    info.ka_time = 60;
    info.ka_probes = 3;
    info.ka_interval = 10;
    ws->ctx = lws_create_context(&info);
    if (!ws->ctx) {
        GW_ERROR("ws.listen_failed", "addr=%s:%u", core->cfg->ws_listen.host,
                 core->cfg->ws_listen.port);
        free(ws->lws_protos);
        free(ws);
        return GW_EIO;
    }
    GW_INFO("ws.listen", "addr=%s:%u path=%s", core->cfg->ws_listen.host, core->cfg->ws_listen.port,
            core->cfg->ws_path);
    *out = ws;
    return 0;
}

void gw_ws_stop(struct gw_ws *ws)
{
    if (!ws)
        return;
    lws_context_destroy(ws->ctx);
}

void gw_ws_free(struct gw_ws *ws)
{
    if (!ws)
        return;
    /* On a foreign loop the first lws_context_destroy() only starts closing; once its handles
     * are closed (the loop has run dry) the second call frees the context. */
    lws_context_destroy(ws->ctx);
    free(ws->lws_protos);
    free(ws);
}

int gw_ws_send(struct gw_ws_conn *c, const char *data, size_t len)
{
    if (c->closing)
        return GW_ECLOSED;
    size_t cap = c->ws->core->cfg->limit_queue_bytes;
    if (c->queued + len > cap)
        return GW_ELIMIT;
    struct out_msg *m = gw_malloc(sizeof *m + LWS_PRE + len);
    m->next = NULL;
    m->len = len;
    memcpy(m->data + LWS_PRE, data, len);
    if (c->tail)
        c->tail->next = m;
    else
        c->head = m;
    c->tail = m;
    c->queued += len;
    if (c->queued > cap / 2)
        c->high = true;
    lws_callback_on_writable(c->wsi);
    return 0;
}

size_t gw_ws_queued(const struct gw_ws_conn *c)
{
    return c->queued;
}

void gw_ws_close(struct gw_ws_conn *c, uint16_t code, const char *reason)
{
    if (c->closing)
        return;
    c->closing = true;
    c->close_code = code;
    snprintf(c->close_reason, sizeof c->close_reason, "%s", reason ? reason : "");
    lws_callback_on_writable(c->wsi);
}

void gw_ws_pause(struct gw_ws_conn *c, bool paused)
{
    lws_rx_flow_control(c->wsi, paused ? 0 : 1);
}

const char *gw_ws_peer(const struct gw_ws_conn *c)
{
    return c->peer;
}
