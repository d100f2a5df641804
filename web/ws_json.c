/* The JSON front end's connections (docs/json-protocol.md).
 *
 * One WebSocket connection carries one client: each text message is one JSON object, an op
 * (login, resume, logout, a, r, active, inactive, …) or a stanza. Until it logs in or resumes,
 * the connection holds a pre-auth session of its own (for the admission limits and the pre-auth
 * deadline); afterwards it talks to a session (web/json_session.c) that outlives it. Bad input
 * gets {"op":"error"} and the connection stays. Reading stops (backpressure, never buffering)
 * while the client is over its rate limit (token buckets in bytes and stanzas), while the server
 * is behind, and while a resume runs; messages already read when a resume starts wait, in
 * order, for it to finish. */
#include "web/ws_json.h"

#include "gateway/err.h"
#include "gateway/log.h"
#include "gateway/mem.h"
#include "gateway/session.h"
#include "web/json_push.h"
#include "web/json_session.h"
#include "xmpp/jid.h"
#include "xmpp/json.h"
#include "xmpp/xlate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEFERRED 64 /* messages read while a resume runs */

struct deferred {
    struct deferred *next;
    size_t len;
    char data[];
};

struct gw_jconn {
    struct gw_jmod *mod;
    struct gw_core *core;
    struct gw_ws_conn *ws; /* NULL once closed */
    struct gw_session *pre;
    struct gw_jsess *sess;
    struct gw_jresume *resume;
    bool resuming, closing, just_resumed;
    bool pre_keep; /* pre is a session left for another node: release, do not close */
    unsigned pause;
    unsigned failures;
    double bytes_left, stanzas_left; /* token buckets */
    uint64_t refilled;
    uv_timer_t rate_timer, replay_timer;
    unsigned handles;
    struct deferred *dq, *dq_tail;
    size_t ndq;
    /* JID aliases, once the client turned them on with the "alias" op (xmpp/xlate.h); they
     * belong to this connection only and start empty on every new one, resumed or not */
    struct gw_alias *aliases;
    struct gw_json_push *push; /* push ops before login (push.info) */
};

static const struct gw_session_ops pre_ops;

/* ---- sending ---- */

int gw_jconn_send(struct gw_jconn *c, struct gw_json_out *w)
{
    size_t len;
    const char *text = gw_json_text(w, &len);
    int rc = c->ws && !c->closing ? gw_ws_send(c->ws, text, len) : GW_ECLOSED;
    gw_json_out_free(w);
    if (rc == GW_ELIMIT)
        GW_WARN("json.queue_full", "peer=%s", gw_jconn_peer(c));
    return rc;
}

size_t gw_jconn_queued(const struct gw_jconn *c)
{
    return c->ws ? gw_ws_queued(c->ws) : 0;
}

struct gw_alias *gw_jconn_aliases(const struct gw_jconn *c)
{
    return c ? c->aliases : NULL;
}

const char *gw_jconn_peer(const struct gw_jconn *c)
{
    return c->ws ? gw_ws_peer(c->ws) : "-";
}

static void send_error(struct gw_jconn *c, const char *cond, const char *text, const char *id,
                       bool fatal, int resumable)
{
    struct gw_json_out *w = gw_json_out_new(c->core->json_writers);
    gw_json_open(w);
    gw_xlate_error_fields(w, cond, text, id);
    if (fatal) {
        gw_json_key(w, "fatal");
        gw_json_bool(w, true);
    }
    if (resumable >= 0) {
        gw_json_key(w, "resumable");
        gw_json_bool(w, resumable > 0);
    }
    gw_json_close(w);
    gw_jconn_send(c, w);
}

void gw_jconn_error(struct gw_jconn *c, const char *cond, const char *text, const char *id)
{
    if (c)
        send_error(c, cond, text, id, false, -1);
}

void gw_jconn_close(struct gw_jconn *c, const char *cond, const char *text, uint16_t code,
                    int resumable)
{
    if (!c || c->closing)
        return;
    c->sess = NULL;
    if (cond) {
        send_error(c, cond, text, NULL, true, resumable);
    } else {
        struct gw_json_out *w = gw_json_out_new(c->core->json_writers);
        gw_json_open(w);
        gw_json_kv(w, "op", "bye");
        gw_json_close(w);
        gw_jconn_send(c, w);
    }
    c->closing = true;
    if (c->ws)
        gw_ws_close(c->ws, code, cond ? cond : "");
    GW_INFO("json.close", "peer=%s condition=%s", gw_jconn_peer(c), cond ? cond : "-");
}

/* ---- reading ---- */

void gw_jconn_pause(struct gw_jconn *c, unsigned reason, bool on)
{
    unsigned before = c->pause;
    c->pause = on ? c->pause | reason : c->pause & ~reason;
    if (c->ws && !c->closing && (before != 0) != (c->pause != 0))
        gw_ws_pause(c->ws, c->pause != 0);
}

static double burst(const struct gw_jconn *c, unsigned rate)
{
    return (double)rate * (double)c->core->cfg->json_rate_burst_ms / 1000.0;
}

static void refill(struct gw_jconn *c)
{
    const struct gw_config *cfg = c->core->cfg;
    uint64_t now = uv_now(c->core->loop);
    double secs = (double)(now - c->refilled) / 1000.0;
    c->refilled = now;
    c->bytes_left += secs * cfg->json_rate_bytes;
    if (c->bytes_left > burst(c, cfg->json_rate_bytes))
        c->bytes_left = burst(c, cfg->json_rate_bytes);
    c->stanzas_left += secs * cfg->json_rate_stanzas;
    if (c->stanzas_left > burst(c, cfg->json_rate_stanzas))
        c->stanzas_left = burst(c, cfg->json_rate_stanzas);
}

static void arm_rate(struct gw_jconn *c);

static void on_rate_timer(uv_timer_t *t)
{
    struct gw_jconn *c = t->data;
    refill(c);
    arm_rate(c);
}

/* Pauses reading until both buckets are out of debt. */
static void arm_rate(struct gw_jconn *c)
{
    const struct gw_config *cfg = c->core->cfg;
    double wait = 0;
    if (cfg->json_rate_bytes && c->bytes_left < 0)
        wait = -c->bytes_left / cfg->json_rate_bytes;
    if (cfg->json_rate_stanzas && c->stanzas_left < 0 &&
        -c->stanzas_left / cfg->json_rate_stanzas > wait)
        wait = -c->stanzas_left / cfg->json_rate_stanzas;
    if (wait <= 0) {
        gw_jconn_pause(c, GW_JPAUSE_RATE, false);
        return;
    }
    if (!(c->pause & GW_JPAUSE_RATE)) {
        (*c->mod->m_rate_paused)++;
        GW_DEBUG("json.rate_paused", "peer=%s wait_ms=%.0f", gw_jconn_peer(c), wait * 1000);
    }
    gw_jconn_pause(c, GW_JPAUSE_RATE, true);
    uv_timer_start(&c->rate_timer, on_rate_timer, (uint64_t)(wait * 1000) + 1, 0);
}

static void account(struct gw_jconn *c, size_t len)
{
    const struct gw_config *cfg = c->core->cfg;
    if (!cfg->json_rate_bytes && !cfg->json_rate_stanzas)
        return;
    refill(c);
    if (cfg->json_rate_bytes)
        c->bytes_left -= (double)len;
    if (cfg->json_rate_stanzas)
        c->stanzas_left -= 1;
    if (!uv_is_active((uv_handle_t *)&c->rate_timer))
        arm_rate(c);
}

/* ---- ops ---- */

static void op_login(struct gw_jconn *c, struct gw_json *obj)
{
    const char *jid = gw_json_str(obj, "jid");
    const struct gw_json *pw = gw_json_get(obj, "password");
    if (c->sess || c->resume || !c->pre) {
        send_error(c, "bad-request", "already logged in", NULL, false, -1);
        return;
    }
    if (!jid || !pw || pw->type != GW_JSON_STRING || pw->slen == 0) {
        send_error(c, "bad-request", "login needs \"jid\" and a non-empty \"password\"", NULL,
                   false, -1);
        return;
    }
    struct gw_jid parsed;
    int rc = gw_jid_parse(jid, &parsed);
    bool ok = rc == 0 && parsed.local && !parsed.resource;
    if (rc == 0)
        gw_jid_free(&parsed);
    if (!ok) {
        send_error(c, "jid-malformed", "\"jid\" must be a bare JID (user@domain)", NULL, false, -1);
        return;
    }
    gw_jsess_login(c->mod, c, jid, pw->s, gw_json_str(obj, "resource"));
    gw_memzero(pw->s, pw->slen); /* the copy in login.c is wiped after SASL too */
}

static void op_resume(struct gw_jconn *c, const struct gw_json *obj)
{
    const char *token = gw_json_str(obj, "token");
    long long h;
    if (c->sess || c->resume || !c->pre) {
        send_error(c, "bad-request", "already in a session", NULL, false, -1);
        return;
    }
    if (!token || !gw_json_int(obj, "h", &h) || h < 0 || h > UINT32_MAX) {
        send_error(c, "bad-request", "resume needs \"token\" and \"h\", a count", NULL, false, -1);
        return;
    }
    c->resuming = true;
    struct gw_jresume *r = gw_jresume_start(c->mod, c, token, (uint32_t)h);
    if (c->resuming)
        c->resume = r;
}

/* The push ops' view of a connection with no session yet. */
static void conn_to_client(void *ctx, struct gw_json_out *w)
{
    gw_jconn_send(ctx, w);
}

static int conn_to_server(void *ctx, const struct gw_xml *el)
{
    (void)ctx;
    (void)el;
    return GW_ECLOSED;
}

static void dispatch(struct gw_jconn *c, const char *data, size_t len)
{
    if (c->pre)
        gw_session_touch(c->pre);
    struct gw_json *obj = NULL;
    char why[160];
    int rc = gw_json_parse(data, len, c->core->cfg->limit_stanza_bytes, &obj, why, sizeof why);
    if (rc) {
        send_error(c, rc == GW_ELIMIT ? "policy-violation" : "bad-request", why, NULL, false, -1);
        return;
    }
    if (c->sess && c->just_resumed) {
        c->just_resumed = false;
        gw_jsess_client_seen(c->sess);
    }
    struct gw_jsess *s = c->sess && gw_jsess_ready(c->sess) ? c->sess : NULL;
    const char *op = gw_json_str(obj, "op");
    if (!op) {
        if (s)
            gw_jsess_stanza(s, obj);
        else
            send_error(c, "not-authorized", "log in first", gw_json_str(obj, "id"), false, -1);
    } else if (strcmp(op, "login") == 0) {
        op_login(c, obj);
    } else if (strcmp(op, "resume") == 0) {
        op_resume(c, obj);
    } else if (strcmp(op, "logout") == 0) {
        if (s)
            gw_jsess_logout(s);
        else
            gw_jconn_close(c, NULL, NULL, GW_WS_CLOSE_NORMAL, -1);
    } else if (strcmp(op, "alias") == 0) {
        struct gw_json_out *w = gw_json_out_new(c->core->json_writers);
        gw_xlate_alias_op(&c->aliases, obj, w);
        gw_jconn_send(c, w);
    } else if (strncmp(op, "push.", 5) == 0) {
        if (s) {
            gw_jsess_push_op(s, op, obj);
        } else { /* push.info needs no login; the others say "not-authorized" */
            struct gw_json_push_io io = {c->core, conn_to_client, conn_to_server, c, NULL};
            gw_json_push_op(&c->push, &io, op, obj);
        }
    } else if (strcmp(op, "a") == 0 || strcmp(op, "r") == 0 || strcmp(op, "active") == 0 ||
               strcmp(op, "inactive") == 0) {
        if (!s)
            send_error(c, "not-authorized", "log in first", NULL, false, -1);
        else if (op[0] == 'a' && op[1] == '\0')
            gw_jsess_ack(s, obj);
        else if (op[0] == 'r')
            gw_jsess_request_ack(s);
        else
            gw_jsess_set_inactive(s, op[0] == 'i');
    } else {
        send_error(c, "bad-request", "unknown op", NULL, false, -1);
    }
    gw_json_free(obj);
}

static void defer(struct gw_jconn *c, const char *data, size_t len)
{
    if (c->ndq >= MAX_DEFERRED) {
        gw_jconn_close(c, "policy-violation", "too many messages while resuming",
                       GW_WS_CLOSE_POLICY, -1);
        return;
    }
    struct deferred *d = gw_malloc(sizeof *d + len);
    d->next = NULL;
    d->len = len;
    memcpy(d->data, data, len);
    if (c->dq_tail)
        c->dq_tail->next = d;
    else
        c->dq = d;
    c->dq_tail = d;
    c->ndq++;
}

static void on_replay(uv_timer_t *t)
{
    struct gw_jconn *c = t->data;
    while (c->dq && !c->resuming && !c->closing && c->ws) {
        struct deferred *d = c->dq;
        c->dq = d->next;
        if (!c->dq)
            c->dq_tail = NULL;
        c->ndq--;
        dispatch(c, d->data, d->len);
        free(d);
    }
}

static void free_deferred(struct gw_jconn *c)
{
    while (c->dq) {
        struct deferred *d = c->dq;
        c->dq = d->next;
        free(d);
    }
    c->dq_tail = NULL;
    c->ndq = 0;
}

void gw_jconn_set_session(struct gw_jconn *c, struct gw_jsess *s)
{
    c->sess = s;
}

static void drop_pre(struct gw_jconn *c)
{
    struct gw_session *pre = c->pre;
    c->pre = NULL;
    if (pre && c->pre_keep)
        gw_session_release(pre);
    else
        gw_session_close(pre);
    c->pre_keep = false;
}

void gw_jconn_hold_session(struct gw_jconn *c, struct gw_session *gs, bool keep_record)
{
    if (!gs)
        return;
    if (c->pre || !c->ws) { /* cannot hold two; a closed connection holds nothing */
        if (keep_record)
            gw_session_release(gs);
        else
            gw_session_close(gs);
        return;
    }
    c->pre = gs;
    c->pre_keep = keep_record;
    gw_session_set_owner(gs, &pre_ops, c);
}

struct gw_session *gw_jconn_take_pre(struct gw_jconn *c)
{
    struct gw_session *pre = c->pre;
    c->pre = NULL;
    return pre;
}

void gw_jconn_resume_handed(struct gw_jconn *c)
{
    c->resume = NULL;
}

void gw_jconn_resume_done(struct gw_jconn *c, bool ok)
{
    c->resume = NULL;
    c->resuming = false;
    if (ok) {
        drop_pre(c); /* the resumed session is the connection's now */
        c->just_resumed = true;
    } else {
        c->sess = NULL;
        if (++c->failures >= c->core->cfg->json_auth_failures) {
            gw_jconn_close(c, "policy-violation", "too many failed attempts", GW_WS_CLOSE_POLICY,
                           -1);
            return;
        }
    }
    gw_jconn_pause(c, GW_JPAUSE_RESUME, false);
    if (c->dq && !c->closing)
        uv_timer_start(&c->replay_timer, on_replay, 0, 0);
}

/* ---- WebSocket handlers ---- */

static void on_message(void *state, const char *data, size_t len)
{
    struct gw_jconn *c = state;
    if (c->closing)
        return;
    account(c, len);
    if (c->resuming || c->dq) {
        defer(c, data, len);
        return;
    }
    dispatch(c, data, len);
}

static void on_oversized(void *state)
{
    struct gw_jconn *c = state;
    if (!c->closing)
        send_error(c, "policy-violation", "message larger than the limit", NULL, false, -1);
}

static void on_drained(void *state)
{
    struct gw_jconn *c = state;
    if (c->sess)
        gw_jsess_drained(c->sess);
}

static void handle_closed(uv_handle_t *h)
{
    struct gw_jconn *c = h->data;
    if (--c->handles == 0)
        free(c);
}

static void on_closed(void *state)
{
    struct gw_jconn *c = state;
    c->ws = NULL;
    c->closing = true;
    struct gw_jsess *s = c->sess;
    c->sess = NULL;
    if (c->resume)
        gw_jresume_conn_gone(c->resume);
    c->resume = NULL;
    if (s)
        gw_jsess_conn_lost(s);
    drop_pre(c);
    free_deferred(c);
    gw_alias_free(c->aliases);
    c->aliases = NULL;
    gw_json_push_end(c->push);
    c->push = NULL;
    uv_close((uv_handle_t *)&c->rate_timer, handle_closed);
    uv_close((uv_handle_t *)&c->replay_timer, handle_closed);
}

static void on_pre_shutdown(void *owner, enum gw_close_reason why)
{
    struct gw_jconn *c = owner;
    switch (why) {
    case GW_CLOSE_SHUTDOWN:
        gw_jconn_close(c, "system-shutdown", NULL, GW_WS_CLOSE_GOING_AWAY, -1);
        break;
    case GW_CLOSE_PREAUTH:
        gw_jconn_close(c, "connection-timeout", "log in sooner", GW_WS_CLOSE_NORMAL, -1);
        break;
    case GW_CLOSE_KICKED:
        gw_jconn_close(c, "policy-violation", "ended by the operator", GW_WS_CLOSE_NORMAL, -1);
        break;
    }
    /* The session itself goes when the connection has closed (on_closed). */
}

static const struct gw_session_ops pre_ops = {on_pre_shutdown};

static void *on_open(void *arg, struct gw_ws_conn *ws)
{
    struct gw_jmod *m = arg;
    struct gw_jconn *c = gw_calloc(1, sizeof *c);
    c->mod = m;
    c->core = m->core;
    c->ws = ws;
    const struct gw_config *cfg = c->core->cfg;
    c->bytes_left = burst(c, cfg->json_rate_bytes);
    c->stanzas_left = burst(c, cfg->json_rate_stanzas);
    c->refilled = uv_now(c->core->loop);
    uv_timer_init(c->core->loop, &c->rate_timer);
    uv_timer_init(c->core->loop, &c->replay_timer);
    c->rate_timer.data = c->replay_timer.data = c;
    c->handles = 2;
    int rc = gw_session_open(c->core, GW_TRANSPORT_WS_JSON, gw_ws_peer(ws), &pre_ops, c, &c->pre);
    if (rc != 0)
        gw_jconn_close(c, rc == GW_EUNAVAIL ? "system-shutdown" : "policy-violation",
                       "session refused", GW_WS_CLOSE_POLICY, -1);
    return c;
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
    proto->arg = gw_jmod_new(core);
}

void gw_ws_json_proto_free(struct gw_ws_proto *proto)
{
    gw_jmod_free(proto->arg);
    proto->arg = NULL;
}
