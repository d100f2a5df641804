/* RFC 7395 front end: each WebSocket message is one element. <open/> and <close/> framing is
 * translated to and from the upstream stream header; everything else is relayed as is, after
 * being parsed under the same limits as the upstream stream and re-serialized, so nothing
 * malformed or restricted reaches the server. SASL and stream restarts are the client's own:
 * mxgw relays them and only watches for the bound JID to record it. */
#include "web/ws_xmpp.h"

#include "gateway/err.h"
#include "gateway/log.h"
#include "gateway/mem.h"
#include "gateway/session.h"
#include "web/relay.h"
#include "xmpp/jid.h"
#include "xmpp/stream.h"
#include "xmpp/upstream.h"
#include "xmpp/xml.h"

#include <stdlib.h>
#include <string.h>

/* What all connections share: one document parser for every client message (they are parsed
 * one at a time), kept between messages instead of made and freed for each. */
struct xws_mod {
    struct gw_core *core;
    struct gw_xml_doc *doc;
};

struct xws {
    struct xws_mod *mod;
    struct gw_core *core;
    struct gw_ws_conn *conn; /* NULL once the socket is gone */
    struct gw_session *sess;
    struct gw_upstream *up; /* NULL once the upstream stream has ended */
    bool opened;            /* the client sent <open/> */
    bool ended;             /* the XMPP stream is over: input is ignored */
    bool up_paused;
    bool ws_paused;
};

static const char *sid(const struct xws *x)
{
    return x->sess ? gw_session_id(x->sess) : "-";
}

/* Sends one message made of n pieces. Returns 0, or GW_ELIMIT when the client's queue is full
 * (the caller ends the session: a stanza is never dropped silently). */
static int send_pieces(struct xws *x, const struct iovec *v, size_t n)
{
    int rc = x->conn ? gw_ws_sendv(x->conn, v, n) : 0;
    if (rc == GW_ELIMIT) {
        size_t len = 0;
        for (size_t i = 0; i < n; i++)
            len += v[i].iov_len;
        GW_WARN("ws.queue_full", "session=%s bytes=%zu", sid(x), len);
    }
    return rc == GW_ELIMIT ? rc : 0;
}

/* send_pieces() of el serialized. */
static int send_element(struct xws *x, const struct gw_xml *el)
{
    struct gw_buf out;
    gw_buf_init(&out, 0);
    int rc = 0;
    if (gw_xml_serialize(&out, el, NULL) == 0)
        rc = send_pieces(x, &(struct iovec){out.data, out.len}, 1);
    gw_buf_free(&out);
    return rc;
}

static void end_upstream(struct xws *x)
{
    if (x->up) {
        gw_upstream_close(x->up);
        x->up = NULL;
    }
}

/* Ends the stream towards the client: optional stream error, then <close/>, then the close
 * frame. error_el, when given, is the upstream's own <stream:error> relayed whole. */
static void end_stream(struct xws *x, const char *condition, const struct gw_xml *error_el,
                       uint16_t ws_code)
{
    if (x->ended)
        return;
    x->ended = true;
    end_upstream(x);
    if (!x->conn)
        return;
    if (error_el) {
        send_element(x, error_el);
    } else if (condition) {
        struct gw_xml *err = gw_xml_new(GW_NS_STREAM, "error");
        gw_xml_set_prefix(err, "stream");
        gw_xml_add_child(err, GW_NS_STREAMS, condition);
        send_element(x, err);
        gw_xml_free(err);
    }
    struct gw_xml *close = gw_xml_new(GW_NS_FRAMING, "close");
    send_element(x, close);
    gw_xml_free(close);
    gw_ws_close(x->conn, ws_code, condition ? condition : "");
    if (condition)
        GW_INFO("ws.stream_error", "session=%s condition=%s", sid(x), condition);
}

static void up_open(void *arg, const struct gw_xml *header)
{
    struct xws *x = arg;
    struct gw_xml *open = gw_xml_new(GW_NS_FRAMING, "open");
    static const char *const copy[] = {"from", "id", "version"};
    for (size_t i = 0; i < sizeof copy / sizeof copy[0]; i++) {
        const char *v = gw_xml_attr(header, copy[i]);
        if (v)
            gw_xml_set_attr(open, copy[i], v);
    }
    const char *lang = gw_xml_attr_ns(header, GW_NS_XML, "lang");
    if (lang)
        gw_xml_set_attr_ns(open, GW_NS_XML, "xml", "lang", lang);
    send_element(x, open);
    gw_xml_free(open);
}

/* A message or presence (what neither watch_bind nor strip_channel_binding touches) goes to
 * the client as the server wrote it when its bytes can stand alone. Returns whether it went
 * that way, with send_pieces()'s result in *rc. */
static bool send_as_written(struct xws *x, const struct gw_xml *el, int *rc)
{
    struct iovec v[3];
    if (strcmp(el->name, "message") != 0 && strcmp(el->name, "presence") != 0)
        return false;
    size_t n = gw_upstream_stanza_doc(x->up, el, v);
    if (n == 0)
        return false;
    *rc = send_pieces(x, v, n);
    return true;
}

static void up_stanza(void *arg, struct gw_xml *el)
{
    struct xws *x = arg;
    int rc;
    if (!send_as_written(x, el, &rc)) {
        gw_relay_watch_bind(x->sess, el);
        gw_relay_strip_channel_binding(el);
        rc = send_element(x, el);
    }
    gw_xml_free(el);
    if (rc == GW_ELIMIT) {
        end_stream(x, "policy-violation", NULL, GW_WS_CLOSE_POLICY);
        return;
    }
    /* Backpressure: stop reading the server while the client is slow to take what we have. */
    if (x->conn && x->up && !x->up_paused &&
        gw_ws_queued(x->conn) > x->core->cfg->limit_queue_bytes / 2) {
        x->up_paused = true;
        gw_upstream_pause(x->up, true);
    }
}

static void up_closed(void *arg, int err, const char *condition, const struct gw_xml *error_el)
{
    struct xws *x = arg;
    struct gw_upstream *up = x->up;
    x->up = NULL; /* the stream is over: nothing to end */
    if (err == 0)
        end_stream(x, NULL, NULL, GW_WS_CLOSE_NORMAL);
    else
        end_stream(x, condition ? condition : "undefined-condition", error_el, GW_WS_CLOSE_NORMAL);
    gw_upstream_free(up);
}

/* The server caught up: read the client again. */
static void up_drained(void *arg)
{
    struct xws *x = arg;
    if (x->conn && x->ws_paused) {
        x->ws_paused = false;
        gw_ws_pause(x->conn, false);
    }
}

static const struct gw_upstream_handlers up_handlers = {up_open, up_stanza, up_closed, up_drained};

static void handle_open(struct xws *x, const struct gw_xml *el)
{
    const char *to = gw_xml_attr(el, "to");
    const char *version = gw_xml_attr(el, "version");
    if (!version || strcmp(version, "1.0") != 0) {
        end_stream(x, "unsupported-version", NULL, GW_WS_CLOSE_NORMAL);
        return;
    }
    struct gw_jid jid;
    if (!to || gw_jid_parse(to, &jid) != 0) {
        end_stream(x, "host-unknown", NULL, GW_WS_CLOSE_NORMAL);
        return;
    }
    bool domain_only = !jid.local && !jid.resource;
    gw_jid_free(&jid);
    if (!domain_only) {
        end_stream(x, "host-unknown", NULL, GW_WS_CLOSE_NORMAL);
        return;
    }
    if (!x->opened)
        gw_session_set_state(x->sess, GW_SESSION_AUTHENTICATING);
    x->opened = true;
    int rc = gw_upstream_open(x->up, to, gw_xml_attr_ns(el, GW_NS_XML, "lang"));
    if (rc != 0)
        end_stream(x, "remote-connection-failed", NULL, GW_WS_CLOSE_NORMAL);
}

static void on_message(void *state, const char *data, size_t len)
{
    struct xws *x = state;
    if (x->ended)
        return;
    gw_session_touch(x->sess);
    /* RFC 7395 §3.3.3: a message is exactly one element; no whitespace keepalives. */
    if (len == 0 || data[0] != '<') {
        end_stream(x, "not-well-formed", NULL, GW_WS_CLOSE_NORMAL);
        return;
    }
    const struct gw_config *cfg = x->core->cfg;
    struct gw_xml_limits limits = {cfg->limit_stanza_bytes, cfg->limit_xml_depth,
                                   cfg->limit_xml_attrs};
    struct gw_xml *el = NULL;
    const char *condition = NULL;
    if (gw_xml_doc_parse(x->mod->doc, data, len, &limits, &el, &condition) != 0) {
        end_stream(x, condition ? condition : "not-well-formed", NULL,
                   strcmp(condition ? condition : "", "policy-violation") == 0
                       ? GW_WS_CLOSE_TOO_BIG
                       : GW_WS_CLOSE_NORMAL);
        return;
    }
    if (gw_xml_is(el, GW_NS_FRAMING, "open")) {
        handle_open(x, el);
    } else if (gw_xml_is(el, GW_NS_FRAMING, "close")) {
        end_stream(x, NULL, NULL, GW_WS_CLOSE_NORMAL);
    } else if ((el->ns && strcmp(el->ns, GW_NS_FRAMING) == 0) ||
               (el->ns && strcmp(el->ns, GW_NS_STREAM) == 0 && strcmp(el->name, "stream") == 0)) {
        end_stream(x, "invalid-namespace", NULL, GW_WS_CLOSE_NORMAL);
    } else if (!x->opened || !x->up) {
        end_stream(x, "not-authorized", NULL, GW_WS_CLOSE_NORMAL);
    } else {
        int rc;
        if (gw_xml_doc_embeddable(el, data, len, GW_NS_CLIENT)) {
            /* As the client wrote it: serializing the tree would only say the same again. The
             * tree may be the root alone (gw_xml_doc_shallow); any other comes back whole. */
            rc = gw_upstream_send_text(x->up, el, data, len);
        } else {
            /* RFC 7395 stanzas carry xmlns='jabber:client'; leaving it out means the same. */
            gw_relay_client_ns(el, NULL);
            rc = gw_upstream_send(x->up, el);
        }
        if (rc == GW_ELIMIT)
            end_stream(x, "policy-violation", NULL, GW_WS_CLOSE_NORMAL);
        else if (rc == GW_EINVAL)
            end_stream(x, "invalid-xml", NULL, GW_WS_CLOSE_NORMAL);
        else if (rc == GW_EAGAIN) /* sent before the stream was open */
            end_stream(x, "not-authorized", NULL, GW_WS_CLOSE_NORMAL);
        else if (rc == 0 && !x->ws_paused &&
                 gw_upstream_queued(x->up) > x->core->cfg->limit_queue_bytes / 2) {
            /* Backpressure: the server is slow to take what the client sends. */
            x->ws_paused = true;
            gw_ws_pause(x->conn, true);
        }
    }
    gw_xml_free(el);
}

static void on_drained(void *state)
{
    struct xws *x = state;
    if (x->up && x->up_paused) {
        x->up_paused = false;
        gw_upstream_pause(x->up, false);
    }
}

static void on_closed(void *state)
{
    struct xws *x = state;
    x->conn = NULL;
    end_upstream(x);
    gw_session_close(x->sess);
    free(x);
}

static void on_shutdown(void *owner, enum gw_close_reason why)
{
    struct xws *x = owner;
    switch (why) {
    case GW_CLOSE_SHUTDOWN:
        end_stream(x, "system-shutdown", NULL, GW_WS_CLOSE_GOING_AWAY);
        break;
    case GW_CLOSE_PREAUTH:
        end_stream(x, "connection-timeout", NULL, GW_WS_CLOSE_NORMAL);
        break;
    case GW_CLOSE_KICKED:
        end_stream(x, "policy-violation", NULL, GW_WS_CLOSE_NORMAL);
        break;
    }
}

static const struct gw_session_ops session_ops = {on_shutdown};

static void *on_open(void *arg, struct gw_ws_conn *conn)
{
    struct xws_mod *mod = arg;
    struct gw_core *core = mod->core;
    struct xws *x = gw_calloc(1, sizeof *x);
    x->mod = mod;
    x->core = core;
    x->conn = conn;
    int rc =
        gw_session_open(core, GW_TRANSPORT_WS_XMPP, gw_ws_peer(conn), &session_ops, x, &x->sess);
    if (rc != 0) {
        /* Over a limit or draining: say so in XMPP terms (RFC 6120 §4.9.3.14 and .19), then
         * close; the connection holds no session. */
        GW_INFO("ws.session_refused", "peer=%s reason=\"%s\"", gw_ws_peer(conn), gw_strerror(rc));
        end_stream(x, rc == GW_EUNAVAIL ? "system-shutdown" : "policy-violation", NULL,
                   GW_WS_CLOSE_POLICY);
        return x;
    }
    x->up = gw_upstream_new(core, &up_handlers, x);
    gw_upstream_set_transport(x->up, GW_TRANSPORT_WS_XMPP); /* metrics label */
    return x;
}

void gw_ws_xmpp_proto(struct gw_core *core, struct gw_ws_proto *proto)
{
    memset(proto, 0, sizeof *proto);
    proto->name = "xmpp";
    proto->open = on_open;
    proto->message = on_message;
    proto->drained = on_drained;
    proto->closed = on_closed;
    struct xws_mod *mod = gw_calloc(1, sizeof *mod);
    mod->core = core;
    mod->doc = gw_xml_doc_new();
    /* A stanza that goes upstream as the client wrote it is read only at its root (on_message). */
    gw_xml_doc_shallow(mod->doc, GW_NS_CLIENT);
    proto->arg = mod;
}

void gw_ws_xmpp_proto_free(struct gw_ws_proto *proto)
{
    struct xws_mod *mod = proto->arg;
    if (!mod)
        return;
    gw_xml_doc_free(mod->doc);
    free(mod);
    proto->arg = NULL;
}
