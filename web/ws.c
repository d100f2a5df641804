/* WebSocket server on libwebsockets, driven by the gateway's libuv loop (foreign-loop mode).
 *
 * Debian's libwebsockets is built without external-poll support but with libuv, so lws runs on
 * our uv_loop_t directly. protocols[0] is a guard that owns plain HTTP and upgrades that name
 * none of our subprotocols: it refuses them. A connection reassembles one message at a time
 * into a buffer capped at the stanza limit (refusing with 1009 as soon as a frame header
 * announces more). Closing after the queue drains is how a stream error reaches the client
 * before the close frame.
 *
 * Sending. lws's rule is to write from the writable callback, and asking for one costs, with
 * libuv 1.44 underneath, an epoll_ctl DEL and ADD to arm POLLOUT, a wakeup, and DEL and ADD
 * again to disarm it: four system calls and a wakeup per message on top of the write. So a
 * message is written without waiting for one when nothing can be out of order or collide with
 * a partial write: the connection has been serviced by lws at least once (it is established),
 * nothing is queued before it, lws holds no partly sent data (lws_partial_buffered), the peer
 * has not started the closing handshake, and permessage-deflate is off (its deflater may need
 * several writable callbacks for one message). Such messages are framed here (RFC 6455 §5.2:
 * a final, unmasked text frame) into the connection's batch, and the connection goes on a list;
 * a uv_check (after the I/O callbacks of a loop iteration) and a uv_prepare (right before the
 * loop polls) write each listed batch with one lws_write(LWS_WRITE_RAW), which hands the bytes
 * to lws's raw send with its partial-write buffering. So the messages one iteration produces
 * for a client (several stanzas from one read of the server, say) leave in one send() instead of
 * one each, as the upstream streams do (xmpp/upstream.c), and nothing waits while the loop
 * sleeps. A batch is written at once before it would pass BATCH_MAX. Nor does a batch wait out
 * a long iteration: one that reads a burst from the server (the stanzas Prosody sends all at
 * once after a stall of its own, say) would hold the first of them until it ended, milliseconds
 * later. So once the oldest batch on the list has waited GW_BATCH_WAIT_NS since the read that
 * began it, the next message written writes the list first (flush_early; the clock is the
 * current read's, core->read_ns, so this costs no clock call), and so does the next read of
 * either side (gw_core_read_begin). When the socket takes only
 * part of a write, lws keeps the rest and sends it on the next writable event before any
 * callback of ours, as it does for a partial write from the callback; so at most BATCH_MAX
 * beyond the queue cap sits in lws. Otherwise messages queue up to the cap and each writable
 * callback writes as many as the socket takes (until lws holds a partial write); with deflate
 * one per callback, as lws requires.
 *
 * permessage-deflate (RFC 7692), when the config allows it and the client offers it, is lws's
 * own extension with its memory bounded: zlib's memory level is set per connection, and the
 * server's compression window is narrowed around each write. lws 4.1 reads one window setting
 * for both directions and sets each zlib stream up lazily, the deflater on the first write and
 * the inflater on the first compressed message received; the inflater must keep the full
 * window because lws cannot answer client_max_window_bits, so the client may compress with 32
 * KiB of history, while our own deflater may use any smaller window, which every inflater
 * reads. lws 4.1 also strands inflated output when its output buffer fills just as the input
 * runs out (the message then completes only when more bytes arrive), so its buffer is made as
 * large as the largest inflated message accepted (ws_deflate_message_bits) and a chunk that
 * would fill it ends the connection. The reassembly cap applies to inflated bytes, and a
 * message over it closes the connection (1009) rather than being skipped, since skipping would
 * still mean inflating all of it. Compression is negotiated at the upgrade, before the client has
 * logged in (lws cannot defer it): the caps, not authentication, are what bound a hostile client.
 */
#include "web/ws.h"

#include "gateway/err.h"
#include "gateway/log.h"
#include "gateway/mem.h"
#include "gateway/metrics.h"

#include <libwebsockets.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FRAGMENTS 16

struct out_msg {
    struct out_msg *next;
    size_t len;
    uint64_t read_ns;     /* when the input it answers was read (0: none), for m_forward */
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
    bool skipping;     /* inside an oversized message the handler chose to skip */
    bool deflate;      /* permessage-deflate was negotiated */
    bool serviced;     /* lws called us back for it after ESTABLISHED: writing at once is allowed */
    bool peer_closed;  /* the client started the closing handshake */
    bool write_failed; /* a write made at once failed: the next writable callback closes */
    struct out_msg *head, *tail;
    struct out_msg *inflight; /* written last; permessage-deflate may still be reading it */
    unsigned char *batch;     /* whole frames, to be written as one */
    size_t batch_len, batch_cap;
    uint64_t batch_read_ns; /* the oldest read time of the batch's timed frames */
    unsigned batch_timed;   /* frames in the batch caused by a read (core->read_ns) */
    /* on the server's list of batches to write exactly while batch_len is not 0 */
    struct gw_ws_conn *dirty_prev, *dirty_next;
    size_t queued; /* bytes not yet handed to lws: the batch's frames and the queue's payloads */
    bool high;     /* queue was above half its cap */
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
    uint64_t *deflated; /* connections that negotiated permessage-deflate */
    /* per subprotocol (index in protos), direction 0 from the client, 1 to the client */
    uint64_t *(*m_messages)[2];
    uint64_t *(*m_bytes)[2];
    struct gw_histogram **m_forward;            /* per subprotocol: read to kernel, to the client */
    int64_t *m_queued;                          /* bytes queued towards clients, all connections */
    struct gw_ws_conn *dirty_head, *dirty_tail; /* oldest first: written in that order */
    struct gw_batch_list batch;                 /* the list as the core sees it (gateway/core.h) */
    uv_check_t flush_check;                     /* after the I/O callbacks of an iteration */
    uv_prepare_t flush_prepare;                 /* right before the loop polls */
    unsigned char *spare[8]; /* emptied batch buffers of BATCH_FIRST bytes, for reuse */
    size_t nspare;
};

/* A batch is written before it would grow past this (top of file). */
#define BATCH_MAX 16384
/* A batch buffer starts this large (within glibc's per-thread cache); one that grew is given
 * back after its write. */
#define BATCH_FIRST 1024

/* The transport a subprotocol serves, for metrics labels (a fixed set: our own names). */
static const char *transport_label(const char *proto)
{
    if (strcmp(proto, "xmpp") == 0)
        return "ws-xmpp";
    if (strncmp(proto, "mxgw.json", 9) == 0)
        return "ws-json";
    return proto;
}

static size_t proto_index(const struct gw_ws_conn *c)
{
    return (size_t)(c->proto - c->ws->protos);
}

#define PMD "permessage-deflate"

/* The extensions offered when ws_deflate is on. The offer string is only used by lws clients. */
static const struct lws_extension extensions[] = {
    {PMD, lws_extension_callback_pm_deflate, PMD "; client_max_window_bits"},
    {NULL, NULL, NULL},
};

static int deflate_option(struct gw_ws_conn *c, const char *name, unsigned value)
{
    char v[12];
    snprintf(v, sizeof v, "%u", value);
    return lws_set_extension_option(c->wsi, PMD, name, v);
}

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

static void dirty_unlink(struct gw_ws_conn *c)
{
    if (!c->batch_len)
        return;
    if (c->dirty_prev)
        c->dirty_prev->dirty_next = c->dirty_next;
    else
        c->ws->dirty_head = c->dirty_next;
    if (c->dirty_next)
        c->dirty_next->dirty_prev = c->dirty_prev;
    else
        c->ws->dirty_tail = c->dirty_prev;
    c->dirty_prev = c->dirty_next = NULL;
}

/* Gives the batch buffer back: to the spares when it kept its first size, else to malloc. */
static void batch_release(struct gw_ws_conn *c)
{
    struct gw_ws *ws = c->ws;
    if (c->batch_cap == BATCH_FIRST && ws->nspare < sizeof ws->spare / sizeof ws->spare[0])
        ws->spare[ws->nspare++] = c->batch;
    else
        free(c->batch);
    c->batch = NULL;
    c->batch_len = c->batch_cap = 0;
    c->batch_timed = 0;
}

/* Frames handed to lws: their time since the read that caused them goes to m_forward. */
static void observe_forward(struct gw_ws_conn *c, uint64_t read_ns, unsigned n)
{
    if (n)
        gw_histogram_observe_since(c->ws->m_forward[proto_index(c)], read_ns, n);
}

static void free_queue(struct gw_ws_conn *c)
{
    dirty_unlink(c);
    batch_release(c); /* its bytes are in queued, given back below */
    free(c->inflight);
    c->inflight = NULL;
    while (c->head) {
        struct out_msg *m = c->head;
        c->head = m->next;
        free(m);
    }
    c->tail = NULL;
    *c->ws->m_queued -= (int64_t)c->queued;
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
    if (c->deflate) {
        /* A chunk that fills lws's inflate buffer could leave output stranded (top of file). */
        size_t inflate_max = ((size_t)1 << c->ws->core->cfg->ws_deflate_message_bits) - 1;
        max = max < inflate_max ? max : inflate_max;
        if (c->rx_len + len > max || remaining > 2 * max)
            return abort_conn(c, GW_WS_CLOSE_TOO_BIG, "message too big");
    }
    if (c->skipping) { /* the rest of an oversized message: dropped as it arrives */
        if (last) {
            c->skipping = false;
            c->proto->oversized(c->state);
        }
        return 0;
    }
    if (!c->deflate && c->rx_len + len + remaining > max) {
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
        size_t cap = c->rx_len + len + (c->deflate ? 0 : remaining);
        c->rx = gw_realloc(c->rx, cap);
        c->rx_cap = cap;
    }
    if (len) { /* an inflated message can end with an empty chunk (in is NULL then) */
        memcpy(c->rx + c->rx_len, in, len);
        c->rx_len += len;
    }
    if (remaining > 0)
        return 0;
    if (!lws_is_final_fragment(c->wsi)) {
        /* With permessage-deflate lws also calls back here for each inflated chunk of one
         * frame and the public API cannot tell those from frame ends: the inflated-size cap
         * bounds such a message instead. */
        if (!c->deflate && ++c->fragments > MAX_FRAGMENTS)
            return abort_conn(c, GW_WS_CLOSE_TOO_BIG, "too many fragments");
        return 0;
    }
    c->fragments = 0;
    size_t n = c->rx_len;
    c->rx_len = 0;
    (*c->ws->m_messages[proto_index(c)][0])++;
    *c->ws->m_bytes[proto_index(c)][0] += n;
    c->proto->message(c->state, c->rx ? c->rx : "", n);
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

static void count_out(struct gw_ws_conn *c, size_t len)
{
    (*c->ws->m_messages[proto_index(c)][1])++;
    *c->ws->m_bytes[proto_index(c)][1] += len;
}

/* Writes the head of the queue; returns false when the connection must close. */
static bool write_head(struct gw_ws_conn *c)
{
    struct out_msg *m = c->head;
    c->head = m->next;
    if (!c->head)
        c->tail = NULL;
    c->queued -= m->len;
    *c->ws->m_queued -= (int64_t)m->len;
    count_out(c, m->len);
    const struct gw_config *cfg = c->ws->core->cfg;
    if (c->deflate) /* for the deflater only: see the top of this file */
        deflate_option(c, "server_max_window_bits", cfg->ws_deflate_window_bits);
    int n = lws_write(c->wsi, m->data + LWS_PRE, m->len, LWS_WRITE_TEXT);
    if (c->deflate)
        deflate_option(c, "server_max_window_bits", 15);
    bool ok = n >= 0 && (size_t)n >= m->len;
    if (ok && m->read_ns)
        observe_forward(c, m->read_ns, 1);
    if (c->deflate)
        c->inflight = m;
    else
        free(m);
    return ok;
}

/* The queue fell below half its cap after having been above it: the handler may send again. */
static void check_drained(struct gw_ws_conn *c)
{
    size_t cap = c->ws->core->cfg->limit_queue_bytes;
    if (c->high && c->queued < cap / 2) {
        c->high = false;
        if (c->proto->drained && !c->closing)
            c->proto->drained(c->state);
    }
}

/* Writes the batch with one send (top of file); false when the connection must close, which
 * the next writable callback does (outside lws's callbacks returning -1 cannot). */
static bool write_batch(struct gw_ws_conn *c)
{
    dirty_unlink(c);
    size_t len = c->batch_len;
    c->batch_len = 0;
    c->queued -= len;
    *c->ws->m_queued -= (int64_t)len;
    int w = lws_write(c->wsi, c->batch, len, LWS_WRITE_RAW); /* raw: no headroom needed */
    if (w >= 0 && (size_t)w >= len)
        observe_forward(c, c->batch_read_ns, c->batch_timed);
    batch_release(c);
    if (w < 0 || (size_t)w < len) {
        c->write_failed = c->closing = true;
        lws_callback_on_writable(c->wsi);
        return false;
    }
    return true;
}

static int on_writeable(struct gw_ws_conn *c)
{
    if (c->batch_len && !write_batch(c))
        return -1;
    if (c->write_failed)
        return -1;
    /* lws's deflater keeps reading a written message after lws_write returns when the socket
     * cannot take all of it, and finishes before it calls us writable again. */
    free(c->inflight);
    c->inflight = NULL;
    if (c->head) {
        /* As many as the socket takes; lws keeps what it could not send of the last one. */
        do {
            if (!write_head(c))
                return -1;
        } while (c->head && !c->deflate && !lws_partial_buffered(c->wsi));
        if (c->head || c->closing)
            lws_callback_on_writable(c->wsi);
        check_drained(c);
        return 0;
    }
    if (c->closing)
        return send_close(c);
    return 0;
}

static void flush_dirty(struct gw_ws *ws)
{
    struct gw_ws_conn *c;
    while ((c = ws->dirty_head) != NULL) {
        if (write_batch(c))
            check_drained(c); /* may send again, and so list c once more */
    }
    ws->batch.since = 0;
}

/* Writes the listed batches of a long iteration before more are added (top of file). Those
 * whose queue passed half its cap stay listed: their drained() callback is due, and it must not
 * run inside a read or a send. */
static void flush_early(struct gw_batch_list *l)
{
    struct gw_ws *ws = (struct gw_ws *)((char *)l - offsetof(struct gw_ws, batch));
    struct gw_ws_conn *c = ws->dirty_head, *next;
    for (; c; c = next) {
        next = c->dirty_next;
        if (!c->high)
            write_batch(c); /* a failure closes c from its writable callback */
    }
    l->since = ws->dirty_head ? ws->core->read_ns : 0;
}

static void on_flush_check(uv_check_t *h)
{
    flush_dirty(h->data);
}

static void on_flush_prepare(uv_prepare_t *h)
{
    flush_dirty(h->data);
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
        /* Setting an option fails when the extension is not active on this connection. */
        c->deflate = ws->core->cfg->ws_deflate &&
                     deflate_option(c, "mem_level", ws->core->cfg->ws_deflate_mem_level) == 0 &&
                     deflate_option(c, "rx_buf_size", ws->core->cfg->ws_deflate_message_bits) == 0;
        if (c->deflate) {
            (*ws->deflated)++;
            GW_DEBUG("ws.deflate", "peer=%s", c->peer);
        }
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
    case LWS_CALLBACK_RECEIVE: {
        if (!c || !c->state)
            return -1;
        c->serviced = true;
        struct gw_core *core = c->ws->core;
        uint64_t outer = gw_core_read_begin(core);
        int rc = on_receive(c, in, len);
        gw_core_read_end(core, outer);
        return rc;
    }
    case LWS_CALLBACK_SERVER_WRITEABLE:
        if (c)
            c->serviced = true;
        if (c && c->state)
            return on_writeable(c);
        return c && c->closing ? send_close(c) : -1;
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if (c) {
            /* Before lws queues its answer: no data frame may follow a close frame. */
            if (c->batch_len)
                write_batch(c);
            c->peer_closed = true; /* lws answers it; nothing more is written at once */
        }
        return 0;
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
        /* lws caps its inflate buffer at this size; with compression on it must hold a whole
         * inflated message (top of file). */
        p->rx_buffer_size =
            core->cfg->ws_deflate ? (size_t)1 << core->cfg->ws_deflate_message_bits : 2048;
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
    if (core->cfg->ws_deflate)
        info.extensions = extensions;
    ws->deflated =
        gw_metrics_counter(core->metrics, "mxgw_ws_deflate_total",
                           "WebSocket connections that negotiated permessage-deflate", NULL);
    ws->m_messages = gw_calloc(nprotos, sizeof *ws->m_messages);
    ws->m_bytes = gw_calloc(nprotos, sizeof *ws->m_bytes);
    for (size_t i = 0; i < nprotos; i++)
        for (int d = 0; d < 2; d++) {
            char labels[96];
            snprintf(labels, sizeof labels, "transport=\"%s\",direction=\"%s\"",
                     transport_label(protos[i].name), d ? "out" : "in");
            ws->m_messages[i][d] = gw_metrics_counter(
                core->metrics, "mxgw_client_messages_total",
                "WebSocket messages from (in) and to (out) clients, by transport", labels);
            ws->m_bytes[i][d] = gw_metrics_counter(
                core->metrics, "mxgw_client_bytes_total",
                "Message bytes from (in) and to (out) clients, by transport", labels);
        }
    ws->m_forward = gw_calloc(nprotos, sizeof *ws->m_forward);
    for (size_t i = 0; i < nprotos; i++)
        ws->m_forward[i] =
            gw_metrics_forward(core->metrics, transport_label(protos[i].name), "to_client");
    ws->m_queued = gw_metrics_gauge(core->metrics, "mxgw_queue_bytes",
                                    "Bytes queued for writing, by queue", "queue=\"ws\"");
    ws->ctx = lws_create_context(&info);
    if (!ws->ctx) {
        GW_ERROR("ws.listen_failed", "addr=%s:%u", core->cfg->ws_listen.host,
                 core->cfg->ws_listen.port);
        free(ws->m_messages);
        free(ws->m_bytes);
        free(ws->m_forward);
        free(ws->lws_protos);
        free(ws);
        return GW_EIO;
    }
    ws->batch.write_early = flush_early;
    gw_core_batch_list_add(core, &ws->batch);
    uv_check_init(core->loop, &ws->flush_check);
    uv_prepare_init(core->loop, &ws->flush_prepare);
    ws->flush_check.data = ws->flush_prepare.data = ws;
    uv_check_start(&ws->flush_check, on_flush_check);
    uv_prepare_start(&ws->flush_prepare, on_flush_prepare);
    /* They run while anything else keeps the loop alive, and do not keep it alive themselves. */
    uv_unref((uv_handle_t *)&ws->flush_check);
    uv_unref((uv_handle_t *)&ws->flush_prepare);
    GW_INFO("ws.listen", "addr=%s:%u path=%s", core->cfg->ws_listen.host, core->cfg->ws_listen.port,
            core->cfg->ws_path);
    *out = ws;
    return 0;
}

void gw_ws_stop(struct gw_ws *ws)
{
    if (!ws)
        return;
    flush_dirty(ws); /* what this iteration produced goes out before the connections close */
    gw_core_batch_list_remove(ws->core, &ws->batch);
    lws_context_destroy(ws->ctx);
    uv_close((uv_handle_t *)&ws->flush_check, NULL);
    uv_close((uv_handle_t *)&ws->flush_prepare, NULL);
}

void gw_ws_free(struct gw_ws *ws)
{
    if (!ws)
        return;
    /* On a foreign loop the first lws_context_destroy() only starts closing; once its handles
     * are closed (the loop has run dry) the second call frees the context. */
    lws_context_destroy(ws->ctx);
    free(ws->m_messages);
    free(ws->m_bytes);
    free(ws->m_forward);
    free(ws->lws_protos);
    while (ws->nspare)
        free(ws->spare[--ws->nspare]);
    free(ws);
}

static void gather(unsigned char *to, const struct iovec *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (v[i].iov_len)
            memcpy(to, v[i].iov_base, v[i].iov_len);
        to += v[i].iov_len;
    }
}

/* RFC 6455 §5.2: the header of a final, unmasked text frame of len bytes; returns its size. */
static size_t text_frame_header(unsigned char *h, size_t len)
{
    h[0] = 0x81; /* FIN, opcode 1 */
    if (len < 126) {
        h[1] = (unsigned char)len;
        return 2;
    }
    if (len <= 0xffff) {
        h[1] = 126;
        h[2] = (unsigned char)(len >> 8);
        h[3] = (unsigned char)len;
        return 4;
    }
    h[1] = 127;
    for (int i = 0; i < 8; i++)
        h[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
    return 10;
}

/* Appends a message to the batch as one frame and lists the connection (top of file). */
static void batch_append(struct gw_ws_conn *c, const struct iovec *v, size_t n, size_t len)
{
    struct gw_ws *ws = c->ws;
    bool listed = c->batch_len != 0;
    size_t need = c->batch_len + 10 + len;
    if (need > c->batch_cap) {
        if (!c->batch && need <= BATCH_FIRST && ws->nspare) {
            c->batch = ws->spare[--ws->nspare];
            c->batch_cap = BATCH_FIRST;
        } else {
            size_t cap = c->batch_cap ? c->batch_cap : BATCH_FIRST;
            while (cap < need)
                cap *= 2;
            c->batch = gw_realloc(c->batch, cap);
            c->batch_cap = cap;
        }
    }
    unsigned char *p = c->batch + c->batch_len;
    size_t h = text_frame_header(p, len);
    gather(p + h, v, n);
    c->batch_len += h + len;
    c->queued += h + len;
    *ws->m_queued += (int64_t)(h + len);
    count_out(c, len);
    if (ws->core->read_ns && c->batch_timed++ == 0)
        c->batch_read_ns = ws->core->read_ns;
    if (!listed) {
        if (!ws->dirty_head)
            ws->batch.since = ws->core->read_ns;
        c->dirty_next = NULL;
        c->dirty_prev = ws->dirty_tail;
        if (ws->dirty_tail)
            ws->dirty_tail->dirty_next = c;
        else
            ws->dirty_head = c;
        ws->dirty_tail = c;
    }
}

/* Appends a message to the queue, for the writable callback (top of file). */
static void queue_append(struct gw_ws_conn *c, const struct iovec *v, size_t n, size_t len)
{
    struct out_msg *m = gw_malloc(sizeof *m + LWS_PRE + len);
    m->next = NULL;
    m->len = len;
    m->read_ns = c->ws->core->read_ns;
    gather(m->data + LWS_PRE, v, n);
    if (c->tail)
        c->tail->next = m;
    else
        c->head = m;
    c->tail = m;
    c->queued += len;
    *c->ws->m_queued += (int64_t)len;
    lws_callback_on_writable(c->wsi);
}

static bool may_batch(struct gw_ws_conn *c)
{
    return c->serviced && !c->head && !c->deflate && !c->peer_closed &&
           !lws_partial_buffered(c->wsi);
}

int gw_ws_sendv(struct gw_ws_conn *c, const struct iovec *v, size_t n)
{
    if (c->closing)
        return GW_ECLOSED;
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += v[i].iov_len;
    size_t cap = c->ws->core->cfg->limit_queue_bytes;
    if (c->queued + len > cap)
        return GW_ELIMIT;
    if (c->batch_len && c->batch_len + 10 + len > BATCH_MAX && !write_batch(c))
        return GW_ECLOSED;
    gw_core_batch_check(c->ws->core, &c->ws->batch);
    if (c->closing) /* its early write failed */
        return GW_ECLOSED;
    if (may_batch(c))
        batch_append(c, v, n, len);
    else
        queue_append(c, v, n, len);
    if (c->queued > cap / 2)
        c->high = true;
    return 0;
}

int gw_ws_send(struct gw_ws_conn *c, const char *data, size_t len)
{
    struct iovec v = {(void *)data, len};
    return gw_ws_sendv(c, &v, 1);
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
