/* WebSocket sessions of the driver on libwebsockets' client API, on the driver's libuv loop:
 * RFC 7395 (subprotocol "xmpp": open, SASL PLAIN, restart, bind) and the JSON protocol
 * (subprotocol mxgw.json.v1: one login op; with --json-aliases, JID aliases turned on after it
 * and the peer addressed by its number once the server has given one). One message is written
 * per writeable callback: login steps first, then a JSON ack the server asked for, then queued
 * chat messages. */
#include "bench/bench.h"

#include <libwebsockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSON_SUBPROTOCOL "mxgw.json.v1"
#define MAX_MSG          65536

struct wsc {
    struct lws *wsi;
    char ctl[512]; /* the next login step, written before anything else */
    size_t ctl_len;
    char *rx;
    size_t rx_len, rx_cap;
};

static unsigned char wbuf[LWS_PRE + MAX_MSG];

static void queue_ctl(struct bench_sess *s, size_t len)
{
    struct wsc *w = s->t;
    w->ctl_len = len;
    lws_callback_on_writable(w->wsi);
}

static void count(struct bench *b, size_t len, bool masked, bool chat)
{
    if (!b->measuring)
        return;
    size_t n = len + msg_ws_header(len, masked);
    if (chat)
        b->st.msg_bytes += n;
    else
        b->st.ctl_bytes += n;
}

static void on_xmpp(struct bench_sess *s, const char *m, size_t len)
{
    struct wsc *w = s->t;
    struct bench *b = s->b;
    char user[128];
    switch (s->step) {
    case 1: /* <open/> sent: wait for the mechanisms */
        if (msg_find(m, len, "<mechanisms")) {
            snprintf(user, sizeof user, "%s%u", b->user_prefix, s->idx);
            queue_ctl(s, msg_xml_auth_plain(w->ctl, sizeof w->ctl, user, b->password));
            s->step = 2;
        }
        return;
    case 2:
        if (msg_find(m, len, "<success")) {
            queue_ctl(s, msg_xml_open(w->ctl, sizeof w->ctl, b->domain));
            s->step = 3;
        } else if (msg_find(m, len, "<failure")) {
            bench_failed(s, "SASL failure");
        }
        return;
    case 3:
        if (msg_find(m, len, "<bind")) {
            queue_ctl(s, msg_xml_bind(w->ctl, sizeof w->ctl));
            s->step = 4;
        }
        return;
    case 4: {
        char jid[128];
        if (msg_find_jid(m, len, false, jid, sizeof jid)) {
            s->step = 5;
            bench_logged_in(s, jid);
        } else if (msg_find(m, len, "type='error'") || msg_find(m, len, "type=\"error\"")) {
            bench_failed(s, "bind failed");
        }
        return;
    }
    default:
        count(b, len, false, msg_scan_xml(s, m, len) > 0);
        return;
    }
}

static void on_json(struct bench_sess *s, const char *m, size_t len)
{
    struct wsc *w = s->t;
    struct bench *b = s->b;
    if (s->step == 1) {
        char jid[128];
        if (msg_find(m, len, "\"op\":\"session\"") && msg_find_jid(m, len, true, jid, sizeof jid)) {
            s->step = 5;
            bench_logged_in(s, jid);
            if (b->json_aliases) /* received stanzas name their sender by number from now on */
                queue_ctl(s, msg_json_alias(w->ctl, sizeof w->ctl, NULL));
        } else if (msg_find(m, len, "\"op\":\"error\"")) {
            bench_failed(s, "login refused");
        }
        return;
    }
    if (msg_find(m, len, "\"op\":")) {
        if (msg_find(m, len, "\"op\":\"r\"")) {
            s->ack_due = true;
            lws_callback_on_writable(w->wsi);
        } else if (msg_find(m, len, "\"op\":\"alias\"")) {
            int n = msg_json_alias_n(m, len);
            if (n >= 0) {
                s->peer_alias = n;
                s->peer_aliased = true;
            }
        }
        count(b, len, false, false);
        return;
    }
    s->rx_stanzas++;
    count(b, len, false, msg_scan_json(s, m, len) > 0);
}

static int on_writeable(struct bench_sess *s)
{
    struct wsc *w = s->t;
    struct bench *b = s->b;
    unsigned char *p = wbuf + LWS_PRE;
    size_t len;
    bool chat = false;
    if (w->ctl_len) {
        len = w->ctl_len;
        memcpy(p, w->ctl, len);
        w->ctl_len = 0;
    } else if (s->ack_due) {
        len = msg_json_ack((char *)p, MAX_MSG, s->rx_stanzas);
        s->ack_due = false;
    } else if (s->ring_len && s->logged_in && s->proto == PROTO_JSON && b->json_aliases &&
               !s->alias_asked) {
        len =
            msg_json_alias((char *)p, MAX_MSG, s->peer->jid); /* the chat waits for the next turn */
        s->alias_asked = true;
    } else if (s->ring_len && s->logged_in) {
        struct pending *q = &s->ring[s->ring_head];
        s->ring_head = (s->ring_head + 1) % RING_CAP;
        s->ring_len--;
        char body[1024];
        msg_body(body, sizeof body, b->body_len, q->due_ns, q->seq);
        if (s->proto != PROTO_JSON)
            len = msg_xml_chat((char *)p, MAX_MSG, s->peer->jid, q->seq, body);
        else if (s->peer_aliased)
            len = msg_json_chat_alias((char *)p, MAX_MSG, s->peer_alias, q->seq, body);
        else
            len = msg_json_chat((char *)p, MAX_MSG, s->peer->jid, q->seq, body);
        chat = true;
        b->st.sent++;
    } else {
        return 0;
    }
    if (len == 0)
        return -1;
    count(b, len, true, chat);
    if (lws_write(w->wsi, p, len, LWS_WRITE_TEXT) < (int)len)
        return -1;
    if (s->ring_len || s->ack_due)
        lws_callback_on_writable(w->wsi);
    return 0;
}

static void on_receive(struct bench_sess *s, const char *in, size_t len)
{
    struct wsc *w = s->t;
    bool whole = lws_is_final_fragment(w->wsi) && lws_remaining_packet_payload(w->wsi) == 0;
    if (whole && w->rx_len == 0) { /* the common case: no copy */
        (s->proto == PROTO_JSON ? on_json : on_xmpp)(s, in, len);
        return;
    }
    if (w->rx_len + len > MAX_MSG) {
        bench_failed(s, "message too big");
        return;
    }
    if (w->rx_len + len > w->rx_cap) {
        w->rx_cap = w->rx_len + len + 1024;
        w->rx = realloc(w->rx, w->rx_cap);
        if (!w->rx)
            abort();
    }
    memcpy(w->rx + w->rx_len, in, len);
    w->rx_len += len;
    if (whole) {
        size_t n = w->rx_len;
        w->rx_len = 0;
        (s->proto == PROTO_JSON ? on_json : on_xmpp)(s, w->rx, n);
    }
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    struct bench_sess *s = user;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_ESTABLISHED: {
        struct wsc *w = s->t;
        w->wsi = wsi;
        s->step = 1;
        if (s->proto == PROTO_JSON) {
            char jid[160];
            snprintf(jid, sizeof jid, "%s%u@%s", s->b->user_prefix, s->idx, s->b->domain);
            queue_ctl(s, msg_json_login(w->ctl, sizeof w->ctl, jid, s->b->password));
        } else {
            queue_ctl(s, msg_xml_open(w->ctl, sizeof w->ctl, s->b->domain));
        }
        return 0;
    }
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (s) {
            ((struct wsc *)s->t)->wsi = NULL;
            bench_failed(s, in ? (const char *)in : "connection error");
        }
        return 0;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        if (s && !s->failed)
            on_receive(s, in, len);
        return 0;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        return s && !s->failed ? on_writeable(s) : -1;
    case LWS_CALLBACK_CLIENT_CLOSED:
        if (s) {
            ((struct wsc *)s->t)->wsi = NULL;
            bench_failed(s, "closed by the server");
        }
        return 0;
    default:
        return 0;
    }
}

static const struct lws_protocols protocols[] = {
    {"bench", callback, 0, 4096, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

void bench_ws_init(struct bench *b)
{
    lws_set_log_level(LLL_ERR, NULL);
    void *loops[] = {b->loop};
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_UV_NO_SIGSEGV_SIGFPE_SPIN;
    info.foreign_loops = loops;
    info.timeout_secs = 120;
    b->ws_ctx = lws_create_context(&info);
    if (!b->ws_ctx) {
        fprintf(stderr, "bench: cannot create the libwebsockets context\n");
        exit(2);
    }
}

void bench_ws_start(struct bench_sess *s)
{
    struct bench *b = s->b;
    struct wsc *w = calloc(1, sizeof *w);
    if (!w)
        abort();
    s->t = w;
    char host[96];
    snprintf(host, sizeof host, "%s:%d", b->host, b->port);
    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof ci);
    ci.context = b->ws_ctx;
    ci.address = b->host;
    ci.port = b->port;
    ci.path = b->path;
    ci.host = host;
    ci.origin = host;
    ci.protocol = s->proto == PROTO_JSON ? JSON_SUBPROTOCOL : "xmpp";
    ci.local_protocol_name = "bench";
    ci.ietf_version_or_minus_one = -1;
    ci.userdata = s;
    ci.iface = bench_source(b, s->idx);
    ci.pwsi = &w->wsi;
    if (!lws_client_connect_via_info(&ci))
        bench_failed(s, "connect failed");
}

void bench_ws_kick(struct bench_sess *s)
{
    struct wsc *w = s->t;
    if (w && w->wsi)
        lws_callback_on_writable(w->wsi);
}

uint64_t bench_ws_tcp_bytes(struct bench_sess *s)
{
    struct wsc *w = s->t;
    if (!w || !w->wsi)
        return 0;
    return bench_tcp_bytes(lws_get_socket_fd(w->wsi));
}

void bench_ws_free(struct bench *b)
{
    (void)b; /* the process exits right after; the kernel closes the sockets */
}
