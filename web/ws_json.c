/* The JSON front end (docs/json-protocol.md).
 *
 * One WebSocket connection, one session, one upstream stream that mxgw logs in itself
 * (xmpp/login.c). Each text message is one JSON object: an "op" (login, logout, r, a, …) or a
 * stanza. Bad input gets {"op":"error"} and the connection stays; only a failed login, a broken
 * upstream or an impossible ack count end it. Acks follow XEP-0198's counting: the client acks
 * what it received with {"op":"a","h":N}, and mxgw acks the client's stanzas once the server
 * has (stream management upstream) or once they are written (without it). mxgw acks upstream
 * stanzas to the server only as far as the client acked them. */
#include "web/ws_json.h"

#include "gateway/err.h"
#include "gateway/log.h"
#include "gateway/mem.h"
#include "gateway/session.h"
#include "web/json_push.h"
#include "xmpp/jid.h"
#include "xmpp/json.h"
#include "xmpp/login.h"
#include "xmpp/upstream.h"
#include "xmpp/xlate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ACK_REQUEST_EVERY 10 /* unacked stanzas to the client before mxgw asks for an ack */

struct jws {
    struct gw_core *core;
    struct gw_ws_conn *conn; /* NULL once the socket is gone */
    struct gw_session *sess;
    struct gw_upstream *up;
    struct gw_login *login; /* while logging in */
    char *jid;              /* full JID once bound */
    char *lang;             /* the upstream stream's xml:lang */
    bool logged_in, ended, sm, up_acks_pending, client_ack_requested;
    bool up_paused;
    uint32_t to_client;    /* stanzas sent to the client */
    uint32_t client_acked; /* of those, acknowledged by the client */
    uint32_t from_client;  /* client stanzas sent upstream */
    uint32_t server_acked; /* of those, acknowledged by the server */

    struct gw_json_push *push; /* push ops (web/json_push.c), NULL until the first */
};

static const char *sid(const struct jws *x)
{
    return x->sess ? gw_session_id(x->sess) : "-";
}

static int send_out(struct jws *x, struct gw_json_out *w)
{
    size_t len;
    const char *text = gw_json_text(w, &len);
    int rc = x->conn ? gw_ws_send(x->conn, text, len) : GW_ECLOSED;
    gw_json_out_free(w);
    if (rc == GW_ELIMIT)
        GW_WARN("json.queue_full", "session=%s", sid(x));
    return rc;
}

static void send_op(struct jws *x, const char *op, const char *k1, const char *v1)
{
    struct gw_json_out *w = gw_json_out_new();
    gw_json_open(w);
    gw_json_kv(w, "op", op);
    gw_json_kv(w, k1, v1);
    gw_json_close(w);
    send_out(x, w);
}

static void send_ack(struct jws *x, const char *op, uint32_t h)
{
    struct gw_json_out *w = gw_json_out_new();
    gw_json_open(w);
    gw_json_kv(w, "op", op);
    gw_json_key(w, "h");
    gw_json_integer(w, h);
    gw_json_close(w);
    send_out(x, w);
}

static void send_error(struct jws *x, const char *cond, const char *text, const char *id,
                       bool fatal)
{
    struct gw_json_out *w = gw_json_out_new();
    gw_json_open(w);
    gw_json_kv(w, "op", "error");
    gw_json_kv(w, "cond", cond);
    gw_json_kv(w, "text", text);
    gw_json_kv(w, "id", id);
    if (fatal) {
        gw_json_key(w, "fatal");
        gw_json_bool(w, true);
    }
    gw_json_close(w);
    send_out(x, w);
}

static void end_upstream(struct jws *x)
{
    gw_login_free(x->login);
    x->login = NULL;
    if (x->up) {
        gw_upstream_close(x->up);
        x->up = NULL;
    }
}

/* Ends the session: an optional fatal error (or "bye"), then the close frame. */
static void end_session(struct jws *x, const char *cond, const char *text, uint16_t code)
{
    if (x->ended)
        return;
    x->ended = true;
    end_upstream(x);
    if (!x->conn)
        return;
    if (cond)
        send_error(x, cond, text, NULL, true);
    else
        send_op(x, "bye", NULL, NULL);
    gw_ws_close(x->conn, code, cond ? cond : "");
    GW_INFO("json.end", "session=%s condition=%s", sid(x), cond ? cond : "-");
}

/* ---- upstream ---- */

static void up_open(void *arg, const struct gw_xml *header)
{
    struct jws *x = arg;
    const char *lang = gw_xml_attr_ns(header, GW_NS_XML, "lang");
    free(x->lang);
    x->lang = lang ? gw_strdup(lang) : NULL;
    if (x->login)
        gw_login_open(x->login, header);
}

static void xml_ack(struct jws *x, const char *name, uint32_t h)
{
    struct gw_xml *el = gw_xml_new(GW_NS_SM, name);
    if (h != UINT32_MAX) {
        char num[16];
        snprintf(num, sizeof num, "%u", h);
        gw_xml_set_attr(el, "h", num);
    }
    gw_upstream_send(x->up, el);
    gw_xml_free(el);
}

static void on_sm(struct jws *x, const struct gw_xml *el)
{
    if (strcmp(el->name, "r") == 0) {
        xml_ack(x, "a", x->client_acked); /* only what the client has acknowledged */
    } else if (strcmp(el->name, "a") == 0) {
        const char *h = gw_xml_attr(el, "h");
        x->server_acked = h ? (uint32_t)strtoul(h, NULL, 10) : x->server_acked;
        x->up_acks_pending = false;
        if (x->client_ack_requested) {
            x->client_ack_requested = false;
            send_ack(x, "a", x->server_acked);
        }
    }
}

static void up_stanza(void *arg, struct gw_xml *el)
{
    struct jws *x = arg;
    if (x->login && gw_login_stanza(x->login, el))
        return;
    if (gw_json_push_upstream(x->push, el))
        return;
    if (x->ended) {
        gw_xml_free(el);
        return;
    }
    if (el->ns && strcmp(el->ns, GW_NS_SM) == 0) {
        on_sm(x, el);
        gw_xml_free(el);
        return;
    }
    struct gw_json_out *w = gw_json_out_new();
    int rc = gw_xlate_to_json(el, x->jid, x->lang, w);
    gw_xml_free(el);
    if (rc) {
        gw_json_out_free(w);
        return;
    }
    if (send_out(x, w) == GW_ELIMIT) {
        end_session(x, "policy-violation", "the client is not reading", GW_WS_CLOSE_POLICY);
        return;
    }
    x->to_client++;
    if (x->to_client - x->client_acked == ACK_REQUEST_EVERY)
        send_op(x, "r", NULL, NULL);
    if (x->conn && x->up && !x->up_paused &&
        gw_ws_queued(x->conn) > x->core->cfg->limit_queue_bytes / 2) {
        x->up_paused = true;
        gw_upstream_pause(x->up, true);
    }
}

static void up_closed(void *arg, int err, const char *condition, const struct gw_xml *error_el)
{
    struct jws *x = arg;
    (void)error_el;
    struct gw_upstream *up = x->up;
    x->up = NULL;
    gw_login_free(x->login);
    x->login = NULL;
    end_session(x, err ? (condition ? condition : "undefined-condition") : "remote-stream-end",
                "the server ended the stream", GW_WS_CLOSE_NORMAL);
    gw_upstream_free(up);
}

static void up_drained(void *arg)
{
    (void)arg;
}

static const struct gw_upstream_handlers up_handlers = {up_open, up_stanza, up_closed, up_drained};

/* ---- login ---- */

static void login_done(void *arg, const struct gw_login_result *r)
{
    struct jws *x = arg;
    struct gw_login *lg = x->login;
    x->login = NULL;
    if (r->err) {
        GW_INFO("json.login_failed", "session=%s condition=%s", sid(x), r->condition);
        gw_login_free(lg);
        end_session(x, r->condition, "login failed", GW_WS_CLOSE_NORMAL);
        return;
    }
    x->jid = gw_strdup(r->full_jid);
    x->sm = r->sm_id != NULL;
    x->logged_in = true;
    struct gw_jid parsed;
    if (gw_jid_parse(x->jid, &parsed) == 0) {
        char *bare = gw_jid_bare(&parsed);
        gw_session_set_jid(x->sess, bare);
        free(bare);
        gw_jid_free(&parsed);
    }
    gw_session_set_state(x->sess, GW_SESSION_BOUND);
    gw_login_free(lg);
    struct gw_json_out *w = gw_json_out_new();
    gw_json_open(w);
    gw_json_kv(w, "op", "session");
    gw_json_kv(w, "jid", x->jid);
    gw_json_kv(w, "id", sid(x));
    gw_json_close(w);
    send_out(x, w);
    GW_INFO("json.login", "session=%s sm=%s", sid(x), x->sm ? "yes" : "no");
}

static bool loopback(const char *host)
{
    return strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0 ||
           strcmp(host, "localhost") == 0;
}

static void op_login(struct jws *x, struct gw_json *obj)
{
    const char *jid = gw_json_str(obj, "jid");
    const struct gw_json *pw = gw_json_get(obj, "password");
    if (x->logged_in || x->login) {
        send_error(x, "bad-request", "already logged in", NULL, false);
        return;
    }
    if (!jid || !pw || pw->type != GW_JSON_STRING) {
        send_error(x, "bad-request", "login needs \"jid\" and \"password\"", NULL, false);
        return;
    }
    const struct gw_config *cfg = x->core->cfg;
    bool plain_ok = cfg->upstream_tls == GW_TLS_REQUIRED || loopback(cfg->upstream.host);
    x->up = gw_upstream_new(x->core, &up_handlers, x);
    int err = 0;
    x->login = gw_login_start(x->core, x->up, jid, pw->s, gw_json_str(obj, "resource"), plain_ok,
                              login_done, x, &err);
    gw_memzero(pw->s, pw->slen); /* the copy in login.c is wiped after SASL too */
    if (!x->login) {
        gw_upstream_free(x->up);
        x->up = NULL;
        send_error(x, err == GW_EINVAL ? "jid-malformed" : "remote-connection-failed",
                   "cannot log in", NULL, false);
        return;
    }
    gw_session_set_state(x->sess, GW_SESSION_AUTHENTICATING);
}

static void op_client_ack(struct jws *x, const struct gw_json *obj)
{
    long long h;
    if (!gw_json_int(obj, "h", &h) || h < 0 || h > UINT32_MAX) {
        send_error(x, "bad-request", "\"a\" needs \"h\", a count", NULL, false);
        return;
    }
    uint32_t ahead = (uint32_t)h - x->client_acked, sent = x->to_client - x->client_acked;
    if (ahead > sent) {
        if (ahead <= UINT32_MAX / 2) /* acknowledges more than was sent: XEP-0198 §4 */
            end_session(x, "undefined-condition", "handled-count-too-high", GW_WS_CLOSE_POLICY);
        return;
    }
    x->client_acked = (uint32_t)h;
}

static void op_stanza(struct jws *x, const struct gw_json *obj)
{
    const char *id = gw_json_str(obj, "id");
    if (!x->logged_in) {
        send_error(x, "not-authorized", "log in first", id, false);
        return;
    }
    struct gw_xml *el = NULL;
    const char *cond = NULL;
    char why[160];
    if (gw_xlate_to_xml(obj, &el, &cond, why, sizeof why) != 0) {
        send_error(x, cond, why, id, false);
        return;
    }
    int rc = gw_upstream_send(x->up, el);
    gw_xml_free(el);
    if (rc == GW_ELIMIT) {
        end_session(x, "policy-violation", "the server is not reading", GW_WS_CLOSE_POLICY);
        return;
    }
    if (rc != 0) {
        send_error(x, "remote-server-error", "could not send", id, false);
        return;
    }
    x->from_client++;
    if (!x->sm)
        x->server_acked = x->from_client; /* written: the best we know without SM */
}

static void on_message(void *state, const char *data, size_t len)
{
    struct jws *x = state;
    if (x->ended)
        return;
    gw_session_touch(x->sess);
    struct gw_json *obj = NULL;
    char why[160];
    int rc = gw_json_parse(data, len, x->core->cfg->limit_stanza_bytes, &obj, why, sizeof why);
    if (rc) {
        send_error(x, rc == GW_ELIMIT ? "policy-violation" : "bad-request", why, NULL, false);
        return;
    }
    const char *op = gw_json_str(obj, "op");
    if (!op) {
        op_stanza(x, obj);
    } else if (strcmp(op, "login") == 0) {
        op_login(x, obj);
    } else if (strcmp(op, "logout") == 0) {
        end_session(x, NULL, NULL, GW_WS_CLOSE_NORMAL);
    } else if (strcmp(op, "a") == 0) {
        op_client_ack(x, obj);
    } else if (strcmp(op, "r") == 0) {
        if (x->sm && x->up && x->server_acked != x->from_client) {
            x->client_ack_requested = true;
            if (!x->up_acks_pending) {
                x->up_acks_pending = true;
                xml_ack(x, "r", UINT32_MAX);
            }
        } else {
            send_ack(x, "a", x->server_acked);
        }
    } else if (strncmp(op, "push.", 5) == 0) {
        struct gw_json_push_io io = {x->core, &x->conn, &x->up,
                                     x->logged_in ? gw_session_jid(x->sess) : NULL};
        gw_json_push_op(&x->push, &io, op, obj);
    } else if (strcmp(op, "resume") == 0 || strcmp(op, "active") == 0 ||
               strcmp(op, "inactive") == 0) {
        send_error(x, "feature-not-implemented", "reserved in this version", NULL, false);
    } else {
        send_error(x, "bad-request", "unknown op", NULL, false);
    }
    gw_json_free(obj);
}

static void on_oversized(void *state)
{
    struct jws *x = state;
    if (!x->ended)
        send_error(x, "policy-violation", "message larger than the limit", NULL, false);
}

static void on_drained(void *state)
{
    struct jws *x = state;
    if (x->up && x->up_paused) {
        x->up_paused = false;
        gw_upstream_pause(x->up, false);
    }
}

static void on_closed(void *state)
{
    struct jws *x = state;
    x->conn = NULL;
    end_upstream(x);
    gw_json_push_end(x->push);
    gw_session_close(x->sess);
    free(x->jid);
    free(x->lang);
    free(x);
}

static void on_shutdown(void *owner, enum gw_close_reason why)
{
    struct jws *x = owner;
    switch (why) {
    case GW_CLOSE_SHUTDOWN:
        end_session(x, "system-shutdown", NULL, GW_WS_CLOSE_GOING_AWAY);
        break;
    case GW_CLOSE_PREAUTH:
        end_session(x, "connection-timeout", "log in sooner", GW_WS_CLOSE_NORMAL);
        break;
    case GW_CLOSE_KICKED:
        end_session(x, "policy-violation", "ended by the operator", GW_WS_CLOSE_NORMAL);
        break;
    }
}

static const struct gw_session_ops session_ops = {on_shutdown};

static void *on_open(void *arg, struct gw_ws_conn *conn)
{
    struct gw_core *core = arg;
    struct jws *x = gw_calloc(1, sizeof *x);
    x->core = core;
    x->conn = conn;
    int rc =
        gw_session_open(core, GW_TRANSPORT_WS_JSON, gw_ws_peer(conn), &session_ops, x, &x->sess);
    if (rc != 0)
        end_session(x, rc == GW_EUNAVAIL ? "system-shutdown" : "policy-violation",
                    "session refused", GW_WS_CLOSE_POLICY);
    return x;
}

void gw_ws_json_proto(struct gw_core *core, struct gw_ws_proto *proto)
{
    memset(proto, 0, sizeof *proto);
    proto->name = GW_JSON_SUBPROTOCOL;
    proto->open = on_open;
    proto->message = on_message;
    proto->oversized = on_oversized;
    proto->drained = on_drained;
    proto->closed = on_closed;
    proto->arg = core;
}
