/* Resuming a JSON session on any node, and handing sessions over between nodes.
 *
 * A resume reads the session's record, checks the token against the stored verifier (the
 * current one, or the previous one while the client has not yet used the one issued at its last
 * resume), and opens the sealed re-login secret with it. A session this node holds is attached
 * at once. Otherwise, if another node owns it, that node is asked over pub/sub (its channel
 * mxgw:node:<node>) to release it; it answers once the store holds everything, or not at all
 * if it is dead (a request nobody receives, or the deadline, counts as that). This node then
 * takes ownership with a compare-and-set of the owner field (so two nodes racing for one
 * session cannot both win), resumes the upstream stream with the secret, and attaches.
 * Every failure leaves the session as it was and tells the client why; when the store cannot
 * answer, a resume fails closed. */
#include "web/json_session.h"

#include "gateway/err.h"
#include "gateway/log.h"
#include "gateway/mem.h"
#include "gateway/rand.h"
#include "gateway/token.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum rstep { R_READ, R_WAIT, R_REREAD, R_CAS };

struct gw_jresume {
    struct gw_jresume *next; /* in the module's list while waiting for a handover reply */
    struct gw_jmod *mod;
    struct gw_jconn *conn; /* NULL once the connection is gone */
    enum rstep step;
    unsigned pending; /* store commands out: the op lives until their callbacks ran */
    bool waiting;
    char sid[GW_TOKEN_SID_MAX + 1];
    char key[GW_JSTORE_KEY_MAX];
    unsigned char secret[GW_TOKEN_SECRET_BYTES];
    uint32_t h;
    char req[33];
    char expect_owner[64];
    struct gw_jstore_rec rec;
    uv_timer_t timer;
};

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void op_freed(uv_handle_t *h)
{
    struct gw_jresume *r = h->data;
    gw_memzero(r->secret, sizeof r->secret);
    gw_jstore_rec_free(&r->rec);
    free(r);
}

static void unwait(struct gw_jresume *r)
{
    if (!r->waiting)
        return;
    r->waiting = false;
    uv_timer_stop(&r->timer);
    for (struct gw_jresume **p = &r->mod->waiting; *p; p = &(*p)->next)
        if (*p == r) {
            *p = r->next;
            break;
        }
}

/* The op is done: it goes once no store callback can still come back to it. */
static void op_done(struct gw_jresume *r)
{
    r->conn = NULL;
    unwait(r);
    if (r->pending == 0 && !uv_is_closing((uv_handle_t *)&r->timer))
        uv_close((uv_handle_t *)&r->timer, op_freed);
}

static void fail(struct gw_jresume *r, const char *cond, const char *text)
{
    (*r->mod->m_resume_failed)++;
    GW_INFO("json.resume_failed", "session=%s condition=%s", r->sid[0] ? r->sid : "-", cond);
    struct gw_jconn *c = r->conn;
    r->conn = NULL;
    if (c) {
        gw_jconn_error(c, cond, text, NULL);
        gw_jconn_resume_done(c, false);
    }
    op_done(r);
}

/* A store callback came back: true when the op has nothing more to do. */
static bool returned(struct gw_jresume *r)
{
    r->pending--;
    if (r->conn)
        return false;
    op_done(r);
    return true;
}

/* Checks the token against the record; on success fills args (the secret opened). */
static bool unlock(struct gw_jresume *r, struct gw_jresume_args *args)
{
    const struct gw_jstore_rec *rec = &r->rec;
    const char *verifier = NULL, *blob = NULL;
    if (*rec->token && gw_token_check(r->secret, r->sid, rec->token) == 0) {
        verifier = rec->token;
        blob = rec->reauth;
    } else if (*rec->token_prev && gw_token_check(r->secret, r->sid, rec->token_prev) == 0) {
        verifier = rec->token_prev;
        blob = rec->reauth_prev;
    } else {
        return false;
    }
    unsigned char *text = NULL;
    size_t len = 0;
    if (gw_token_open(r->secret, r->sid, blob, &text, &len) != 0)
        return false;
    args->secret = (char *)text;
    args->secret_len = len;
    args->verifier = gw_strdup(verifier);
    args->blob = gw_strdup(blob);
    args->h = r->h;
    return true;
}

static void read_record(struct gw_jresume *r);

static void cas_done(void *arg, int err, const struct gw_store_reply *reply)
{
    (void)reply;
    struct gw_jresume *r = arg;
    r->pending--;
    if (err == GW_ESTALE) {
        fail(r, "item-not-found", "the session was taken by another connection: log in again");
        return;
    }
    if (err) {
        fail(r, "item-not-found", "the session store is unavailable: log in again");
        return;
    }
    struct gw_jresume_args *args = gw_calloc(1, sizeof *args);
    if (!r->conn || !unlock(r, args)) {
        /* Ours now, but nobody to give it to: give it back for the next attempt. */
        struct gw_store_guard g = {r->key, "owner", r->mod->core->node_id};
        struct gw_store_str f = gw_store_cstr("owner"), v = gw_store_cstr("");
        gw_store_hset_if(r->mod->core->store, &g, r->key, 1, &f, &v, 0, NULL, NULL);
        gw_jresume_args_free(args);
        if (r->conn)
            fail(r, "item-not-found", "unknown session or wrong token: log in again");
        else
            op_done(r);
        return;
    }
    (*r->mod->m_handover_taken)++;
    GW_INFO("json.takeover", "session=%s from=%s", r->sid,
            r->expect_owner[0] ? r->expect_owner : "-");
    struct gw_jconn *c = r->conn;
    gw_jconn_resume_handed(c);
    op_done(r);
    gw_jsess_adopt(r->mod, c, r->sid, &r->rec, args);
}

static void take(struct gw_jresume *r)
{
    r->step = R_CAS;
    snprintf(r->expect_owner, sizeof r->expect_owner, "%s", r->rec.owner);
    struct gw_store_guard g = {r->key, "owner", r->expect_owner};
    struct gw_store_str f = gw_store_cstr("owner"), v = gw_store_cstr(r->mod->core->node_id);
    r->pending++;
    gw_store_hset_if(r->mod->core->store, &g, r->key, 1, &f, &v, 0, cas_done, r);
}

static void on_wait_timeout(uv_timer_t *t)
{
    struct gw_jresume *r = t->data;
    unwait(r);
    GW_INFO("json.handover_timeout", "session=%s owner=%s", r->sid, r->rec.owner);
    /* The owner is presumed dead: its last record is the last word. */
    r->step = R_REREAD;
    read_record(r);
}

static void published(void *arg, int err, const struct gw_store_reply *reply)
{
    struct gw_jresume *r = arg;
    if (returned(r) || r->step != R_WAIT) /* an answer may have come first */
        return;
    if (err) {
        fail(r, "item-not-found", "the session store is unavailable: log in again");
        return;
    }
    if (reply->integer == 0) { /* nobody listens on the owner's channel */
        unwait(r);
        take(r);
    }
}

static void ask_owner(struct gw_jresume *r)
{
    struct gw_core *core = r->mod->core;
    char channel[GW_JSTORE_KEY_MAX];
    gw_jstore_channel(r->rec.owner, channel, sizeof channel);
    snprintf(r->expect_owner, sizeof r->expect_owner, "%s", r->rec.owner);
    gw_rand_hex(core->rand, 16, r->req, sizeof r->req);
    struct gw_json_out *w = gw_json_out_new(core->json_writers);
    gw_json_open(w);
    gw_json_kv(w, "t", "handover");
    gw_json_kv(w, "sid", r->sid);
    gw_json_kv(w, "from", core->node_id);
    gw_json_kv(w, "req", r->req);
    gw_json_close(w);
    size_t len;
    const char *text = gw_json_text(w, &len);
    /* Waiting starts now: the answer may come on the subscriber connection before the
     * publish's own reply comes back on the command connection. */
    r->step = R_WAIT;
    r->waiting = true;
    r->next = r->mod->waiting;
    r->mod->waiting = r;
    uv_timer_start(&r->timer, on_wait_timeout, core->cfg->json_handover_timeout_ms, 0);
    r->pending++;
    GW_INFO("json.handover_request", "session=%s owner=%s", r->sid, r->rec.owner);
    gw_store_publish(core->store, channel, (struct gw_store_str){text, len}, published, r);
    gw_json_out_free(w);
}

static void got_record(void *arg, int err, const struct gw_store_reply *reply)
{
    struct gw_jresume *r = arg;
    if (returned(r))
        return;
    gw_jstore_rec_free(&r->rec);
    if (err) {
        fail(r, "item-not-found", "the session store is unavailable: log in again");
        return;
    }
    if (gw_jstore_parse(reply, &r->rec) != 0 || !r->rec.found) {
        fail(r, "item-not-found", "unknown or expired session: log in again");
        return;
    }
    struct gw_jresume_args probe = {0};
    if (!unlock(r, &probe)) {
        fail(r, "item-not-found", "unknown session or wrong token: log in again");
        return;
    }
    gw_memzero(probe.secret, probe.secret_len);
    free(probe.secret);
    free(probe.verifier);
    free(probe.blob);
    if (r->rec.expires && wall_ms() > r->rec.expires) {
        fail(r, "item-not-found", "the session expired: log in again");
        return;
    }
    const char *self = r->mod->core->node_id;
    struct gw_jsess *local = gw_jsess_find(r->mod, r->sid);
    if (local && strcmp(r->rec.owner, self) == 0) {
        uint32_t acked = gw_jsess_cl_acked(local);
        if (!gw_jsess_can_attach(local)) {
            fail(r, "resource-constraint", "the session is busy: resume again in a moment");
            return;
        }
        if ((uint32_t)(r->h - acked) > (uint32_t)(gw_jsess_cl_out(local) - acked) &&
            (uint32_t)(r->h - acked) <= UINT32_MAX / 2) {
            fail(r, "handled-count-too-high", "h is more than was ever sent");
            return;
        }
        struct gw_jresume_args *args = gw_calloc(1, sizeof *args);
        unlock(r, args);
        struct gw_jconn *c = r->conn;
        gw_jconn_resume_handed(c);
        op_done(r);
        gw_jsess_reattach(local, c, args);
        return;
    }
    uint32_t ahead = r->h - r->rec.cl_acked;
    if (ahead > (uint32_t)(r->rec.cl_max - r->rec.cl_acked) && ahead <= UINT32_MAX / 2) {
        fail(r, "handled-count-too-high", "h is more than was ever sent");
        return;
    }
    if (r->step == R_READ && r->rec.owner[0] && strcmp(r->rec.owner, self) != 0) {
        ask_owner(r);
        return;
    }
    if (r->step == R_REREAD && r->rec.owner[0] && strcmp(r->rec.owner, self) != 0 &&
        strcmp(r->rec.owner, r->expect_owner) != 0) {
        fail(r, "item-not-found", "the session moved to another node: log in again");
        return;
    }
    take(r);
}

static void read_record(struct gw_jresume *r)
{
    r->pending++;
    gw_store_hgetall(r->mod->core->store, r->key, got_record, r);
}

struct gw_jresume *gw_jresume_start(struct gw_jmod *m, struct gw_jconn *conn, const char *token,
                                    uint32_t h)
{
    struct gw_jresume *r = gw_calloc(1, sizeof *r);
    r->mod = m;
    r->conn = conn;
    r->h = h;
    uv_timer_init(m->core->loop, &r->timer);
    r->timer.data = r;
    gw_jconn_pause(conn, GW_JPAUSE_RESUME, true);
    if (gw_token_parse(token, r->sid, sizeof r->sid, r->secret) != 0) {
        r->sid[0] = '\0';
        fail(r, "item-not-found", "not a resume token: log in again");
        return NULL;
    }
    if (!gw_store_available(m->core->store)) {
        fail(r, "item-not-found", "the session store is unavailable: log in again");
        return NULL;
    }
    gw_jstore_key(r->sid, r->key, sizeof r->key);
    r->step = R_READ;
    read_record(r);
    return r;
}

void gw_jresume_conn_gone(struct gw_jresume *r)
{
    op_done(r);
}

void gw_jresume_abort_all(struct gw_jmod *m)
{
    while (m->waiting)
        gw_jresume_conn_gone(m->waiting);
}

/* ---- the owner's side ---- */

struct reply_to {
    struct gw_jmod *mod;
    char channel[GW_JSTORE_KEY_MAX];
    char req[33];
    char sid[GW_TOKEN_SID_MAX + 1];
};

static void send_reply(struct gw_jmod *m, const char *channel, const char *req, const char *sid,
                       bool ok)
{
    struct gw_json_out *w = gw_json_out_new(m->core->json_writers);
    gw_json_open(w);
    gw_json_kv(w, "t", "released");
    gw_json_kv(w, "sid", sid);
    gw_json_kv(w, "req", req);
    gw_json_key(w, "ok");
    gw_json_bool(w, ok);
    gw_json_close(w);
    size_t len;
    const char *text = gw_json_text(w, &len);
    gw_store_publish(m->core->store, channel, (struct gw_store_str){text, len}, NULL, NULL);
    gw_json_out_free(w);
}

static void released(void *arg, bool ok)
{
    struct reply_to *t = arg;
    send_reply(t->mod, t->channel, t->req, t->sid, ok);
    free(t);
}

static bool plain_token(const char *s, size_t max)
{
    size_t n = strlen(s);
    return n > 0 && n < max && strspn(s, "0123456789abcdefABCDEF-_.:") == n;
}

static void on_request(struct gw_jmod *m, const struct gw_json *obj)
{
    const char *sid = gw_json_str(obj, "sid"), *from = gw_json_str(obj, "from");
    const char *req = gw_json_str(obj, "req");
    if (!sid || !from || !req || !plain_token(req, 33) || strlen(sid) > GW_TOKEN_SID_MAX ||
        strlen(from) >= 64 || strlen(from) == 0)
        return;
    struct reply_to *t = gw_calloc(1, sizeof *t);
    t->mod = m;
    gw_jstore_channel(from, t->channel, sizeof t->channel);
    snprintf(t->req, sizeof t->req, "%s", req);
    snprintf(t->sid, sizeof t->sid, "%s", sid);
    struct gw_jsess *s = gw_jsess_find(m, sid);
    GW_INFO("json.handover_asked", "session=%s by=%s here=%s", sid, from, s ? "yes" : "no");
    if (!s) {
        released(t, true); /* nothing here: the record is the last word */
        return;
    }
    if (!gw_jsess_can_attach(s)) {
        released(t, false);
        return;
    }
    gw_jsess_release(s, GW_JRELEASE_HANDOVER, released, t);
}

static void on_reply(struct gw_jmod *m, const struct gw_json *obj)
{
    const char *req = gw_json_str(obj, "req");
    const struct gw_json *ok = gw_json_get(obj, "ok");
    if (!req)
        return;
    for (struct gw_jresume *r = m->waiting; r; r = r->next) {
        if (strcmp(r->req, req) != 0)
            continue;
        unwait(r);
        if (!ok || ok->type != GW_JSON_BOOL || !ok->b) {
            fail(r, "resource-constraint",
                 "the node holding the session could not release it: resume again in a moment");
            return;
        }
        r->step = R_REREAD;
        read_record(r); /* what the owner wrote before answering */
        return;
    }
}

void gw_jresume_on_handover(void *arg, const struct gw_json *obj)
{
    on_request(arg, obj);
}

void gw_jresume_on_released(void *arg, const struct gw_json *obj)
{
    on_reply(arg, obj);
}
