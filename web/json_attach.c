/* JSON sessions: logging in, and attaching a client that resumes, whether the session is held
 * here or taken over from another node (the upstream stream resumed with XEP-0198). */
#include "web/json_session_impl.h"

#include "gateway/err.h"
#include "gateway/log.h"
#include "gateway/map.h"
#include "gateway/mem.h"
#include "gateway/metrics.h"
#include "web/ws.h"
#include "xmpp/csi.h"
#include "xmpp/jid.h"
#include "xmpp/sasl.h"
#include "xmpp/stream.h"
#include "xmpp/xlate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- login ---- */

static void answer_session(struct gw_jsess *s, const char *token)
{
    if (!s->conn) {
        gw_js_end(s, NULL, NULL, 0);
        return;
    }
    struct gw_json_out *w = gw_json_out_new(s->core->json_writers);
    gw_json_open(w);
    gw_json_kv(w, "op", "session");
    gw_json_kv(w, "jid", s->jid);
    gw_json_kv(w, "id", s->sid);
    gw_json_kv(w, "token", token);
    gw_json_key(w, "resumable");
    gw_json_bool(w, token != NULL);
    gw_json_close(w);
    gw_js_to_client(s, w);
    s->phase = GW_JS_LIVE;
    gw_js_start_timer(s);
    GW_INFO("json.login", "session=%s sm=%s resumable=%s", s->sid, s->sm ? "yes" : "no",
            s->resumable ? "yes" : "no");
    gw_js_drain_pending(s);
}

static void first_written(void *arg, int err, const struct gw_store_reply *r)
{
    (void)r;
    struct gw_js_snap *sn = arg;
    struct gw_jsess *s = sn->s;
    if (s->phase != GW_JS_ENDED) {
        if (err == 0) {
            s->resumable = true;
            s->cl_max = sn->cl_max;
            s->h_persisted = sn->h;
        } else {
            GW_WARN("json.not_resumable", "session=%s reason=\"%s\"", s->sid, gw_strerror(err));
        }
        answer_session(s, err == 0 ? sn->token : NULL);
    }
    if (sn->token) {
        gw_memzero(sn->token, strlen(sn->token));
        free(sn->token);
    }
    free(sn);
    gw_js_unref(s);
}

/* Seals secret_text under a new token; returns the owned token (NULL on failure). */
static char *new_token(struct gw_jsess *s, const char *secret_text, size_t len, char *verifier,
                       char **blob)
{
    unsigned char secret[GW_TOKEN_SECRET_BYTES];
    char *token = gw_malloc(GW_TOKEN_MAX);
    if (gw_token_new(s->core->rand, s->sid, secret, token, GW_TOKEN_MAX) != 0 ||
        gw_token_seal(s->core->rand, secret, s->sid, secret_text, len, blob) != 0) {
        gw_memzero(secret, sizeof secret);
        free(token);
        return NULL;
    }
    gw_token_verifier(secret, s->sid, verifier);
    gw_memzero(secret, sizeof secret);
    return token;
}

/* Writes the whole record of a new session and issues its first token. */
static void first_persist(struct gw_jsess *s, const struct gw_sasl_secret *secret)
{
    char *text = gw_sasl_secret_encode(secret);
    char verifier[GW_TOKEN_VERIFIER_HEX], *blob = NULL;
    char *token = new_token(s, text, strlen(text), verifier, &blob);
    gw_memzero(text, strlen(text));
    free(text);
    if (!token) {
        answer_session(s, NULL);
        return;
    }
    struct gw_jstore_fields w = {0};
    struct gw_js_snap *sn = gw_calloc(1, sizeof *sn);
    char *fifo;
    sn->s = s;
    sn->token = token;
    gw_jstore_add(&w, "v", "1");
    gw_jstore_add(&w, "owner", s->core->node_id);
    gw_jstore_add(&w, "jid", s->jid);
    gw_jstore_add(&w, "bare", s->bare);
    gw_jstore_add(&w, "lang", s->lang ? s->lang : "");
    gw_jstore_add(&w, "sm_id", s->sm_id);
    gw_jstore_add(&w, "sm_resume", s->sm_resume ? "1" : "0");
    gw_jstore_add(&w, "token", verifier);
    gw_jstore_add(&w, "reauth", blob);
    gw_jstore_add(&w, "token_prev", "");
    gw_jstore_add(&w, "reauth_prev", "");
    gw_js_counters(s, &w, sn, &fifo);
    s->records = true;
    gw_js_ref(s);
    gw_store_hset(s->core->store, s->key, w.n, w.f, w.v, gw_js_cfg(s)->json_detach_timeout_ms,
                  first_written, sn);
    free(fifo);
    free(blob);
}

static void set_identity(struct gw_jsess *s, const char *full_jid)
{
    free(s->jid);
    free(s->bare);
    free(s->mention);
    s->jid = gw_strdup(full_jid);
    s->bare = NULL;
    s->mention = NULL;
    struct gw_jid parsed;
    if (gw_jid_parse(full_jid, &parsed) == 0) {
        s->bare = gw_jid_bare(&parsed);
        s->mention = parsed.local ? gw_strdup(parsed.local) : NULL;
        gw_jid_free(&parsed);
    }
    if (!s->bare)
        s->bare = gw_strdup(full_jid);
    gw_session_set_jid(s->sess, s->bare);
}

static void login_done(void *arg, const struct gw_login_result *r)
{
    struct gw_jsess *s = arg;
    struct gw_login *lg = s->login;
    s->login = NULL;
    if (r->err) {
        GW_INFO("json.login_failed", "session=%s condition=%s", s->sid, r->condition);
        bool creds = r->condition && strcmp(r->condition, "not-authorized") == 0;
        bool mech = r->condition && (strcmp(r->condition, "invalid-mechanism") == 0 ||
                                     strcmp(r->condition, "bad-auth") == 0);
        gw_session_count_login(s->sess, false,
                               creds  ? GW_LOGIN_CREDENTIALS
                               : mech ? GW_LOGIN_MECHANISM
                                      : GW_LOGIN_SERVER);
        gw_login_free(lg);
        gw_js_end(s, r->condition, "login failed", GW_WS_CLOSE_NORMAL);
        return;
    }
    gw_session_count_login(s->sess, true, 0);
    set_identity(s, r->full_jid);
    s->sm = r->sm_id != NULL;
    s->sm_resume = s->sm && r->sm_resume;
    s->sm_id = gw_strdup(r->sm_id ? r->sm_id : "");
    gw_session_set_state(s->sess, GW_SESSION_BOUND);
    if (s->sm_resume && r->secret && gw_store_available(s->core->store))
        first_persist(s, r->secret);
    else
        answer_session(s, NULL);
    gw_login_free(lg); /* wipes the secret */
}

void gw_js_adopt_failed(struct gw_jsess *s, const char *cond);

/* The upstream failed while logging in (the login itself never answers then). */
void gw_js_login_failed(struct gw_jsess *s, const char *cond)
{
    gw_login_free(s->login);
    s->login = NULL;
    if (s->adopting)
        gw_js_adopt_failed(s, cond);
    else
        gw_js_end(s, cond, "login failed", GW_WS_CLOSE_NORMAL);
}

void gw_jsess_login(struct gw_jmod *m, struct gw_jconn *conn, const char *jid, const char *password,
                    const char *resource)
{
    struct gw_session *pre = gw_jconn_take_pre(conn);
    struct gw_jsess *s = gw_js_new(m, gw_session_id(pre));
    s->sess = pre;
    gw_session_set_owner(pre, &gw_js_session_ops, s);
    gw_map_put(m->sessions, s->sid, s);
    s->conn = conn;
    gw_jconn_set_session(conn, s);
    s->up = gw_upstream_new(s->core, &gw_js_up_handlers, s);
    gw_upstream_set_transport(s->up, GW_TRANSPORT_WS_JSON); /* metrics label */
    int err = 0;
    s->login = gw_login_start(s->core, s->up, jid, password, resource, gw_js_plain_allowed(s),
                              login_done, s, &err);
    if (!s->login) {
        gw_js_end(s, err == GW_EINVAL ? "jid-malformed" : "remote-connection-failed",
                  "cannot log in", GW_WS_CLOSE_NORMAL);
        return;
    }
    gw_session_set_state(pre, GW_SESSION_AUTHENTICATING);
}

/* ---- attaching a client (resume) ---- */

/* The client went away during the attach: stay detached, the old token still valid. */
static void attach_abort(struct gw_jsess *s)
{
    s->attaching = false;
    gw_js_free_items(s);
    gw_jresume_args_free(s->args);
    s->args = NULL;
    GW_INFO("json.attach_abandoned", "session=%s", s->sid);
    if (!s->resumable) {
        gw_js_end(s, NULL, NULL, 0);
        return;
    }
    gw_session_set_state(s->sess, GW_SESSION_DETACHED);
    gw_js_persist(s);
    gw_js_start_timer(s);
    gw_js_drain_pending(s);
}

static int flush_item(struct gw_jsess *s, struct gw_js_item *it)
{
    struct gw_xml_limits lim = {gw_js_cfg(s)->limit_stanza_bytes * 2, gw_js_cfg(s)->limit_xml_depth,
                                gw_js_cfg(s)->limit_xml_attrs};
    struct gw_xml *el = NULL;
    const char *cond;
    struct gw_json_out *w = gw_json_out_new(s->core->json_writers);
    struct gw_xlate_ctx ctx = gw_js_xlate_ctx(s);
    if (gw_xml_parse_document(it->xml, it->xml_len, &lim, &el, &cond) != 0 ||
        gw_xlate_stanza_json(el, &ctx, w) != 0) {
        /* Never expected (we wrote it): a placeholder keeps the client's count right. */
        GW_WARN("json.bad_queue_item", "session=%s seq=%u", s->sid, it->seq);
        gw_json_reset(w);
        gw_json_open(w);
        gw_json_kv(w, "t", "x");
        gw_json_key(w, "xml");
        gw_json_open(w);
        gw_json_kv(w, "n", "message");
        gw_json_close(w);
        gw_json_close(w);
    }
    gw_xml_free(el);
    free(it->xml);
    it->xml = NULL;
    return gw_js_to_client(s, w);
}

/* The store queue goes out as fast as the socket takes it (never past half the send cap), then
 * what waited meanwhile, then live traffic. A stanza the socket refuses would break the client's
 * count, so a client that does not read is disconnected instead (the queue stays in the store). */
void gw_js_flush_more(struct gw_jsess *s)
{
    size_t cap = gw_js_cfg(s)->limit_queue_bytes / 2;
    while (s->flush_next && s->conn && gw_jconn_queued(s->conn) < cap) {
        struct gw_js_item *it = s->flush_next;
        s->flush_next = it->next;
        if (flush_item(s, it) != 0) {
            s->flushing = false;
            s->flush_next = NULL;
            gw_js_drop_conn(s, "policy-violation", "the client is not reading", GW_WS_CLOSE_POLICY);
            return;
        }
    }
    if (s->flush_next || !s->conn)
        return;
    s->flushing = false;
    if (s->cl_out != s->cl_acked)
        gw_js_send_request(s);
    gw_js_drain_pending(s);
}

static void attach_finish(struct gw_jsess *s, const char *token)
{
    if (!s->conn) {
        attach_abort(s);
        return;
    }
    struct gw_json_out *w = gw_json_out_new(s->core->json_writers);
    gw_json_open(w);
    gw_json_kv(w, "op", "resumed");
    gw_json_kv(w, "jid", s->jid);
    gw_json_kv(w, "id", s->sid);
    gw_json_kv(w, "token", token);
    gw_json_key(w, "h");
    gw_json_integer(w, s->cl_in_acked);
    gw_json_key(w, "resumable");
    gw_json_bool(w, token != NULL);
    if (s->fresh) {
        gw_json_key(w, "fresh");
        gw_json_bool(w, true);
    }
    gw_json_close(w);
    gw_js_to_client(s, w);
    size_t n = 0;
    for (struct gw_js_item *it = s->items; it; it = it->next)
        n++;
    struct gw_jconn *c = s->conn;
    s->attaching = false;
    s->detached = false;
    s->inactive = false;
    gw_jresume_args_free(s->args);
    s->args = NULL;
    (*(s->fresh ? s->mod->m_fresh : s->mod->m_resumed))++;
    GW_INFO("json.resumed", "session=%s queued=%zu fresh=%s resumable=%s", s->sid, n,
            s->fresh ? "yes" : "no", s->resumable ? "yes" : "no");
    s->fresh = false;
    gw_session_set_state(s->sess, GW_SESSION_BOUND);
    gw_js_start_timer(s);
    gw_jconn_resume_done(c, true);
    s->flushing = true;
    s->flush_next = s->items;
    gw_js_flush_more(s);
}

static void attach_written(void *arg, int err, const struct gw_store_reply *r)
{
    (void)r;
    struct gw_js_snap *sn = arg;
    struct gw_jsess *s = sn->s;
    if (s->phase != GW_JS_ENDED) {
        if (err == 0) {
            s->cl_max = sn->cl_max;
            s->token_prev = true;
            attach_finish(s, sn->token);
        } else if (err == GW_ESTALE) {
            gw_js_lost(s);
        } else {
            gw_js_lose_resumability(s, err);
            attach_finish(s, NULL);
        }
    }
    if (sn->token) {
        gw_memzero(sn->token, strlen(sn->token));
        free(sn->token);
    }
    free(sn);
    gw_js_unref(s);
}

/* The queue as read from the store: drop what the client has, number the rest from its h. */
static void attach_items(void *arg, int err, const struct gw_store_reply *r)
{
    struct gw_jsess *s = arg;
    if (s->phase == GW_JS_ENDED)
        goto out;
    if (err) {
        struct gw_jconn *c = s->conn;
        s->conn = NULL;
        s->attaching = false;
        if (c) {
            gw_jconn_error(c, "item-not-found", "the session store is unavailable: log in again",
                           NULL);
            gw_jconn_resume_done(c, false);
        }
        gw_js_end(s, NULL, NULL, 0);
        goto out;
    }
    if (!s->conn) {
        attach_abort(s);
        goto out;
    }
    uint32_t h = s->args->h;
    size_t drop = 0, keep = 0, bytes = 0;
    gw_js_free_items(s);
    for (size_t i = 0; i < r->n; i++) {
        uint32_t seq;
        const char *xml;
        size_t xml_len;
        bool ok = gw_jstore_item_parse(r->items[i].ptr, r->items[i].len, &seq, &xml, &xml_len) == 0;
        if (keep == 0 && (!ok || !gw_js_after(seq, h))) {
            drop++; /* the client has it (or it is unreadable) */
            continue;
        }
        struct gw_js_item *it = gw_calloc(1, sizeof *it);
        it->seq = h + 1 + (uint32_t)keep++;
        it->in_store = true;
        it->len = r->items[i].len;
        it->xml = ok ? gw_strndup(xml, xml_len) : gw_strdup("");
        it->xml_len = ok ? xml_len : 0;
        bytes += it->len;
        if (s->items_tail)
            s->items_tail->next = it;
        else
            s->items = it;
        s->items_tail = it;
    }
    if (drop) {
        gw_js_ref(s);
        gw_store_lpop_n_if(s->core->store, &s->guard, s->qkey, drop, gw_js_ignore_reply, s);
    }
    s->q_count = keep;
    s->q_bytes = bytes;
    s->cl_acked = h;
    s->cl_out = h + (uint32_t)keep;
    if (!s->resumable || !s->sm_resume) {
        gw_js_delete_records(s);
        s->resumable = false;
        attach_finish(s, NULL);
        goto out;
    }
    /* A new token; the one used stays valid until the client shows it got this one. */
    char verifier[GW_TOKEN_VERIFIER_HEX], *blob = NULL;
    char *token = new_token(s, s->args->secret, s->args->secret_len, verifier, &blob);
    struct gw_jstore_fields w = {0};
    struct gw_js_snap *sn = gw_calloc(1, sizeof *sn);
    char *fifo;
    sn->s = s;
    sn->token = token;
    s->detached = false; /* the counters say bound */
    if (token) {
        gw_jstore_add(&w, "token", verifier);
        gw_jstore_add(&w, "reauth", blob);
        gw_jstore_add(&w, "token_prev", s->args->verifier);
        gw_jstore_add(&w, "reauth_prev", s->args->blob);
    }
    gw_jstore_add(&w, "jid", s->jid);
    gw_jstore_add(&w, "sm_id", s->sm_id);
    gw_jstore_add(&w, "sm_resume", s->sm_resume ? "1" : "0");
    gw_js_counters(s, &w, sn, &fifo);
    s->detached = true;
    gw_js_ref(s);
    gw_store_hset_if(s->core->store, &s->guard, s->key, w.n, w.f, w.v,
                     gw_js_cfg(s)->json_detach_timeout_ms, attach_written, sn);
    free(fifo);
    free(blob);
out:
    gw_js_unref(s);
}

static void attach_read(struct gw_jsess *s)
{
    gw_js_ref(s);
    gw_store_lrange(s->core->store, s->qkey, 0, -1, attach_items, s);
}

void gw_jsess_reattach(struct gw_jsess *s, struct gw_jconn *conn, struct gw_jresume_args *args)
{
    struct gw_jconn *old = s->conn;
    s->conn = NULL;
    if (old)
        gw_jconn_close(old, "conflict", "the session was resumed on another connection",
                       GW_WS_CLOSE_NORMAL, -1);
    uv_timer_stop(&s->timer);
    if (!s->detached)
        gw_js_spill(s); /* the old connection's unacked stanzas go to the queue first */
    if (s->phase == GW_JS_ENDED) {
        gw_jconn_error(conn, "item-not-found", "the session ended", NULL);
        gw_jconn_resume_done(conn, false);
        gw_jresume_args_free(args);
        return;
    }
    s->conn = conn;
    s->args = args;
    s->attaching = true;
    s->fresh = false;
    gw_jconn_set_session(conn, s);
    attach_read(s); /* after the appends: the store keeps their order */
}

/* ---- carrying on a session taken over from another node ---- */

void gw_js_adopt_failed(struct gw_jsess *s, const char *cond)
{
    struct gw_jconn *c = s->conn;
    s->conn = NULL;
    s->attaching = false;
    bool password_changed = cond && strcmp(cond, "not-authorized") == 0;
    GW_INFO("json.adopt_failed", "session=%s condition=%s", s->sid, cond ? cond : "-");
    (*s->mod->m_resume_failed)++;
    if (c) {
        gw_jconn_error(c, password_changed ? "item-not-found" : "remote-connection-failed",
                       password_changed
                           ? "the server refused the session's credentials: log in again"
                           : "the server could not be reached: try resuming again later",
                       NULL);
        gw_jconn_resume_done(c, false);
    }
    if (password_changed) {
        gw_js_end(s, NULL, NULL, 0);
        return;
    }
    /* Give it back untouched: a later resume, here or elsewhere, may succeed. */
    struct gw_jstore_fields w = {0};
    gw_jstore_add(&w, "owner", "");
    gw_store_hset_if(s->core->store, &s->guard, s->key, w.n, w.f, w.v, 0, NULL, NULL);
    s->records = false;
    struct gw_session *gs = s->sess;
    s->sess = NULL;
    gw_js_finish(s);
    gw_session_release(gs);
}

static void adopt_login_done(void *arg, const struct gw_login_result *r)
{
    struct gw_jsess *s = arg;
    struct gw_login *lg = s->login;
    s->login = NULL;
    s->adopting = false;
    if (r->err) {
        gw_login_free(lg);
        s->adopting = true;
        gw_js_adopt_failed(s, r->condition);
        return;
    }
    s->fresh = !r->resumed;
    gw_sm_window_free(&s->win);
    if (r->resumed) {
        /* The server goes on from where the store says: it resends what came after. */
        s->sm = true;
        gw_sm_window_init(&s->win, GW_JS_WINDOW_MAX, s->rec_up_in_h);
        s->h_persisted = s->h_told = s->rec_up_in_h;
        s->upq.sent = s->upq.acked = r->resumed_h;
        struct gw_jstore_rec rec = {0};
        rec.up_fifo = s->rec_fifo;
        rec.cl_in = s->rec_cl_in;
        rec.cl_in_acked = s->rec_cl_in_acked;
        s->cl_in = s->cl_in_acked = gw_jstore_client_h(&rec, r->resumed_h);
    } else {
        /* A new stream: the server forgot the old one (presence, unacked stanzas). */
        set_identity(s, r->full_jid);
        free(s->sm_id);
        s->sm_id = gw_strdup(r->sm_id ? r->sm_id : "");
        s->sm = r->sm_id != NULL;
        s->sm_resume = s->sm && r->sm_resume;
        gw_sm_window_init(&s->win, GW_JS_WINDOW_MAX, 0);
        s->h_persisted = s->h_told = 0;
        s->cl_in = s->cl_in_acked = s->rec_cl_in_acked;
    }
    gw_login_free(lg);
    s->phase = GW_JS_LIVE;
    gw_session_set_state(s->sess, GW_SESSION_BOUND);
    attach_read(s);
}

void gw_jsess_adopt(struct gw_jmod *m, struct gw_jconn *conn, const char *sid,
                    const struct gw_jstore_rec *rec, struct gw_jresume_args *args)
{
    struct gw_jsess *s = gw_js_new(m, sid);
    int rc = gw_session_open_as(m->core, GW_TRANSPORT_WS_JSON, gw_jconn_peer(conn), sid,
                                &gw_js_session_ops, s, &s->sess);
    struct gw_sasl_secret secret;
    if (rc == 0)
        rc = gw_sasl_secret_decode(args->secret, args->secret_len, &secret);
    if (rc != 0) {
        gw_jconn_error(conn, "resource-constraint", "cannot take the session here now", NULL);
        gw_jconn_resume_done(conn, false);
        gw_jresume_args_free(args);
        struct gw_jstore_fields w = {0};
        gw_jstore_add(&w, "owner", "");
        gw_store_hset_if(m->core->store, &s->guard, s->key, w.n, w.f, w.v, 0, NULL, NULL);
        struct gw_session *gs = s->sess;
        s->sess = NULL;
        gw_js_finish(s);
        if (gs)
            gw_session_release(gs);
        return;
    }
    gw_map_put(m->sessions, s->sid, s);
    s->conn = conn;
    s->args = args;
    s->attaching = s->adopting = s->detached = true;
    s->resumable = s->records = true;
    s->sm = false; /* nothing is counted until the stream is resumed */
    s->sm_resume = rec->sm_resume;
    s->sm_id = gw_strdup(rec->sm_id);
    s->lang = *rec->lang ? gw_strdup(rec->lang) : NULL;
    s->rec_up_in_h = rec->up_in_h;
    s->rec_cl_in = rec->cl_in;
    s->rec_cl_in_acked = rec->cl_in_acked;
    s->rec_fifo = gw_strdup(rec->up_fifo);
    set_identity(s, rec->jid);
    gw_session_set_state(s->sess, GW_SESSION_AUTHENTICATING);
    gw_jconn_set_session(conn, s);
    s->up = gw_upstream_new(s->core, &gw_js_up_handlers, s);
    gw_upstream_set_transport(s->up, GW_TRANSPORT_WS_JSON); /* metrics label */
    int err = 0;
    s->login = gw_login_resume(s->core, s->up, rec->jid, &secret,
                               rec->sm_resume && *rec->sm_id ? rec->sm_id : NULL, rec->up_in_h,
                               gw_js_plain_allowed(s), adopt_login_done, s, &err);
    gw_sasl_secret_wipe(&secret);
    if (!s->login)
        gw_js_adopt_failed(s, "remote-connection-failed");
}
