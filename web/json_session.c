/* A JSON session: one user logged in upstream by mxgw, outliving the client's connection.
 *
 * Lifecycle: login → live (attached) ─ socket drops → detached ─ resume → live; logout, limits,
 * expiry or a dead upstream end it; a handover or a shutdown releases it to another node.
 *
 * Server → client. Every stanza from the server gets a number u (gw_sm_window) and becomes
 * safe once the client has acked it, or once it sits in the session's queue in the store, or
 * when it is superseded (CSI coalescing). The h acked upstream is the longest safe prefix, and
 * for a resumable session never more than what the store holds as up_in_h (the store is written
 * first, then <a/> goes out): a node that dies never leaves the server believing a stanza was
 * handled that no node can deliver. Stanzas sent to the client are numbered seq (the client's
 * count) and kept until acked; when the socket drops they are appended, in order, to the store
 * queue as "<seq> <xml>", and so is every later arrival. On resume the queue is read, items the
 * client already has (seq ≤ its h) are dropped, the rest are sent first (renumbered from h+1,
 * which is the client's own count), then whatever waited meanwhile, then live traffic. No stanza
 * is ever given a seq above cl_max as last confirmed in the store, so a node that takes over can
 * tell a count that is merely ahead of the store (accepted) from an impossible one (refused).
 *
 * Client → server. Client stanzas are counted (cl_in); each one sent upstream is kept in a
 * gw_sm_queue with its client count, and the client's acks advance only as the server acks
 * (refused ones count as handled at once). Those pairs go to the store too, so that a node that
 * resumes the upstream stream can turn the server's <resumed h/> into the client's count.
 *
 * Every write to the session's records is guarded by owner = this node: a node that has lost
 * the session to another one learns it from GW_ESTALE and steps back without touching them. */
#include "web/json_session_impl.h"

#include "gateway/err.h"
#include "gateway/log.h"
#include "gateway/map.h"
#include "gateway/mem.h"
#include "gateway/metrics.h"
#include "gateway/num.h"
#include "web/json_push.h"
#include "web/node_bus.h"
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

uint64_t gw_js_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- lifetime ---- */

static void owed_unlist(struct gw_jsess *s);

void gw_js_ref(struct gw_jsess *s)
{
    s->refs++;
}

static void freed(uv_handle_t *h)
{
    struct gw_jsess *s = h->data;
    free(s);
}

void gw_js_unref(struct gw_jsess *s)
{
    if (--s->refs == 0)
        uv_close((uv_handle_t *)&s->timer, freed);
}

void gw_js_free_items(struct gw_jsess *s)
{
    while (s->items) {
        struct gw_js_item *it = s->items;
        s->items = it->next;
        free(it->xml);
        free(it);
    }
    s->items_tail = NULL;
}

static void free_held_list(struct gw_js_held **head, struct gw_js_held **tail, size_t *n)
{
    while (*head) {
        struct gw_js_held *h = *head;
        *head = h->next;
        gw_xml_free(h->el);
        free(h->key);
        free(h);
    }
    *tail = NULL;
    *n = 0;
}

struct gw_jsess *gw_js_new(struct gw_jmod *m, const char *sid)
{
    struct gw_jsess *s = gw_calloc(1, sizeof *s);
    s->mod = m;
    s->core = m->core;
    snprintf(s->sid, sizeof s->sid, "%s", sid);
    gw_jstore_key(sid, s->key, sizeof s->key);
    gw_jstore_qkey(sid, s->qkey, sizeof s->qkey);
    s->guard = (struct gw_store_guard){s->key, "owner", s->core->node_id};
    s->refs = 1; /* dropped when the session ends */
    uv_timer_init(s->core->loop, &s->timer);
    s->timer.data = s;
    gw_sm_window_init(&s->win, GW_JS_WINDOW_MAX, 0);
    gw_sm_init(&s->upq, GW_JS_UP_PENDING_MAX, SIZE_MAX);
    return s;
}

/* The last step of every ending: nothing of the session stays but what callbacks still hold. */
void gw_js_finish(struct gw_jsess *s)
{
    s->phase = GW_JS_ENDED;
    owed_unlist(s);
    uv_timer_stop(&s->timer);
    gw_login_free(s->login);
    s->login = NULL;
    gw_json_push_end(s->push);
    s->push = NULL;
    if (gw_map_get(s->mod->sessions, s->sid) == s)
        gw_map_del(s->mod->sessions, s->sid);
    gw_js_free_items(s);
    free_held_list(&s->pend, &s->pend_tail, &s->npend);
    free_held_list(&s->held, &s->held_tail, &s->nheld);
    gw_sm_window_free(&s->win);
    gw_sm_clear(&s->upq);
    gw_jresume_args_free(s->args);
    s->args = NULL;
    free(s->jid);
    free(s->bare);
    free(s->lang);
    free(s->sm_id);
    free(s->mention);
    free(s->rec_fifo);
    s->jid = s->bare = s->lang = s->sm_id = s->mention = s->rec_fifo = NULL;
    gw_js_unref(s);
}

/* ---- small helpers ---- */

int gw_js_to_client(struct gw_jsess *s, struct gw_json_out *w)
{
    if (!s->conn) {
        gw_json_out_free(w);
        return GW_ECLOSED;
    }
    return gw_jconn_send(s->conn, w);
}

void gw_js_send_count(struct gw_jsess *s, const char *op, uint32_t h)
{
    struct gw_json_out *w = gw_json_out_new(s->core->json_writers);
    gw_json_open(w);
    gw_json_kv(w, "op", op);
    if (h != UINT32_MAX || strcmp(op, "a") == 0) {
        gw_json_key(w, "h");
        gw_json_integer(w, h);
    }
    gw_json_close(w);
    gw_js_to_client(s, w);
}

void gw_js_send_request(struct gw_jsess *s)
{
    struct gw_json_out *w = gw_json_out_new(s->core->json_writers);
    gw_json_open(w);
    gw_json_kv(w, "op", "r");
    gw_json_close(w);
    gw_js_to_client(s, w);
}

void gw_js_up_pause(struct gw_jsess *s, unsigned why, bool on)
{
    unsigned before = s->up_pause;
    s->up_pause = on ? s->up_pause | why : s->up_pause & ~why;
    if (s->up && (before != 0) != (s->up_pause != 0))
        gw_upstream_pause(s->up, s->up_pause != 0);
}

void gw_js_xml_sm(struct gw_jsess *s, const char *name, const uint32_t *h)
{
    if (!s->up)
        return;
    /* Written out: <r/> and <a/> go with most messages, and are not stanzas (no element
     * needed for the upstream's stanza count). */
    static const char ns[] = " xmlns='" GW_NS_SM "'";
    char text[64 + GW_U64_DEC_MAX];
    text[0] = '<';
    text[1] = name[0]; /* "r" or "a" */
    memcpy(text + 2, ns, sizeof ns - 1);
    size_t n = 2 + sizeof ns - 1;
    if (h) {
        memcpy(text + n, " h='", 4);
        n += 4;
        n += gw_u64_dec(text + n, *h);
        text[n++] = '\'';
    }
    memcpy(text + n, "/>", 2);
    gw_upstream_send_text(s->up, NULL, text, n + 2);
}

char *gw_js_serialize(const struct gw_xml *el, size_t *len)
{
    struct gw_buf b;
    gw_buf_init(&b, 0);
    if (gw_xml_serialize(&b, el, NULL) != 0) {
        gw_buf_free(&b);
        return NULL;
    }
    gw_buf_append(&b, "", 1);
    *len = b.len - 1;
    return b.data;
}

bool gw_js_after(uint32_t a, uint32_t b) /* a > b, with XEP-0198 wrap-around */
{
    return a != b && (uint32_t)(a - b) < UINT32_MAX / 2;
}

/* ---- upstream acks ----
 *
 * The server's <r/> asks how far its stanzas are handled; mxgw's h moves only as the client
 * acks (or the store takes stanzas), typically every few stanzas, while Prosody by default
 * asks after every stanza it sends (smacks_max_unacked_stanzas = 0) and asks no more until it
 * is answered. Answering each <r/> at once with an unchanged h costs the server (and mxgw) an
 * <r/>, an <a/> and their handling per stanza and tells it nothing. So when there is nothing new
 * to report, the answer waits for the next progress, or for GW_JS_UP_ACK_DELAY_MS, whichever
 * comes first: XEP-0198 §4 lets an answer wait for a timeout ("a client with a slow connection
 * might want to collect many stanzas over a period of time before acking"), and the server
 * then asks once per client ack (or per delay) rather than once per stanza. Sessions that owe
 * an answer wait on one list per module, oldest first, under one timer. */

static void owed_unlist(struct gw_jsess *s)
{
    if (!s->owed_listed)
        return;
    struct gw_jmod *m = s->mod;
    if (s->owed_prev)
        s->owed_prev->owed_next = s->owed_next;
    else
        m->owed_head = s->owed_next;
    if (s->owed_next)
        s->owed_next->owed_prev = s->owed_prev;
    else
        m->owed_tail = s->owed_prev;
    s->owed_prev = s->owed_next = NULL;
    s->owed_listed = false;
}

static void on_owed_timer(uv_timer_t *t)
{
    struct gw_jmod *m = t->data;
    uint64_t now = uv_now(t->loop);
    while (m->owed_head && now - m->owed_head->owed_at >= GW_JS_UP_ACK_DELAY_MS) {
        struct gw_jsess *s = m->owed_head;
        owed_unlist(s);
        gw_js_ack_upstream(s); /* r_owed: the answer goes out even with the same h */
    }
    if (m->owed_head) {
        uint64_t wait = GW_JS_UP_ACK_DELAY_MS - (now - m->owed_head->owed_at);
        uv_timer_start(t, on_owed_timer, wait > 50 ? wait : 50, 0);
    }
}

/* Tells the server how far it may forget its stanzas, when that changed or it asked. */
void gw_js_ack_upstream(struct gw_jsess *s)
{
    if (!s->sm || !s->up || s->login || s->releasing || s->phase == GW_JS_ENDED)
        return;
    uint32_t h = s->resumable ? s->h_persisted : s->win.h;
    if (s->r_owed || h != s->h_told) {
        gw_js_xml_sm(s, "a", &h);
        s->h_told = h;
        s->r_owed = false;
        owed_unlist(s);
    }
}

void gw_js_answer_request(struct gw_jsess *s)
{
    s->r_owed = true;
    if (s->resumable && s->h_persisted != s->win.h) {
        gw_js_persist(s); /* the store first, then the answer (persisted() gives it) */
        return;
    }
    if ((s->resumable ? s->h_persisted : s->win.h) != s->h_told) {
        gw_js_ack_upstream(s);
        return;
    }
    if (s->owed_listed)
        return;
    struct gw_jmod *m = s->mod;
    s->owed_listed = true;
    s->owed_at = uv_now(s->core->loop);
    s->owed_prev = m->owed_tail;
    s->owed_next = NULL;
    if (m->owed_tail)
        m->owed_tail->owed_next = s;
    else
        m->owed_head = s;
    m->owed_tail = s;
    if (!uv_is_active((uv_handle_t *)&m->owed_timer))
        uv_timer_start(&m->owed_timer, on_owed_timer, GW_JS_UP_ACK_DELAY_MS, 0);
}

void gw_js_mark_safe(struct gw_jsess *s, uint32_t u)
{
    uint32_t before = s->win.h;
    if (gw_sm_window_done(&s->win, u) == before)
        return;
    if (s->resumable)
        gw_js_persist(s);
    else
        gw_js_ack_upstream(s);
}

/* The store can no longer be trusted with this session: it goes on, without resumption. */
void gw_js_lose_resumability(struct gw_jsess *s, int err)
{
    if (!s->resumable)
        return;
    s->resumable = false;
    GW_WARN("json.not_resumable", "session=%s reason=\"%s\"", s->sid, gw_strerror(err));
    if (s->ceiling_blocked) {
        s->ceiling_blocked = false;
        gw_js_drain_pending(s);
    }
    if (s->conn) {
        struct gw_json_out *w = gw_json_out_new(s->core->json_writers);
        gw_json_open(w);
        gw_json_kv(w, "op", "status");
        gw_json_key(w, "resumable");
        gw_json_bool(w, false);
        gw_json_kv(w, "text", "the session store is unavailable: this session cannot be resumed");
        gw_json_close(w);
        gw_js_to_client(s, w);
    }
    gw_js_ack_upstream(s);
    if (s->detached && !s->attaching && !s->releasing)
        gw_js_end(s, NULL, NULL, 0);
}

/* Noticed on traffic, so that a session learns of a store outage without waiting to write. */
void gw_js_check_store(struct gw_jsess *s)
{
    if (s->resumable && !gw_store_available(s->core->store))
        gw_js_lose_resumability(s, GW_EUNAVAIL);
}

/* ---- writing the records ---- */

void gw_js_counters(struct gw_jsess *s, struct gw_jstore_fields *w, struct gw_js_snap *sn,
                    char **fifo)
{
    sn->h = s->win.h;
    sn->cl_max = s->cl_out + 2 * (uint32_t)gw_js_cfg(s)->json_unacked_stanzas;
    *fifo = gw_jstore_pairs_encode(&s->upq);
    gw_jstore_add_u64(w, "up_in_h", sn->h);
    gw_jstore_add_u64(w, "up_out", s->upq.sent);
    gw_jstore_add_u64(w, "up_out_acked", s->upq.acked);
    gw_jstore_add(w, "up_fifo", *fifo);
    gw_jstore_add_u64(w, "cl_in", s->cl_in);
    gw_jstore_add_u64(w, "cl_in_acked", s->cl_in_acked);
    gw_jstore_add_u64(w, "cl_out", s->cl_out);
    gw_jstore_add_u64(w, "cl_acked", s->cl_acked);
    gw_jstore_add_u64(w, "cl_max", sn->cl_max);
    gw_jstore_add(w, "state", s->detached ? "detached" : "bound");
    gw_jstore_add_u64(w, "expires",
                      s->detached ? gw_js_wall_ms() + gw_js_cfg(s)->json_detach_timeout_ms
                                  : (uint64_t)0);
}

static void persisted(void *arg, int err, const struct gw_store_reply *r)
{
    (void)r;
    struct gw_js_snap *sn = arg;
    struct gw_jsess *s = sn->s;
    uint32_t h = sn->h, cl_max = sn->cl_max;
    free(sn);
    s->persist_inflight = false;
    if (s->phase != GW_JS_ENDED) {
        if (err == 0) {
            if (gw_js_after(h, s->h_persisted))
                s->h_persisted = h;
            s->cl_max = cl_max;
            gw_js_ack_upstream(s);
            if (s->ceiling_blocked) {
                s->ceiling_blocked = false;
                gw_js_drain_pending(s);
            }
        } else if (err == GW_ESTALE) {
            gw_js_lost(s);
        } else {
            gw_js_lose_resumability(s, err);
        }
        if (s->phase != GW_JS_ENDED && s->persist_dirty) {
            s->persist_dirty = false;
            gw_js_persist(s);
        }
    }
    gw_js_unref(s);
}

/* Writes the counters (one write in flight per session; a later request is merged). */
void gw_js_persist(struct gw_jsess *s)
{
    if (!s->resumable || s->phase == GW_JS_ENDED || s->releasing || s->attaching)
        return;
    if (s->persist_inflight) {
        s->persist_dirty = true;
        return;
    }
    struct gw_jstore_fields w = {0};
    struct gw_js_snap *sn = gw_calloc(1, sizeof *sn);
    char *fifo;
    sn->s = s;
    gw_js_counters(s, &w, sn, &fifo);
    s->persist_inflight = true;
    gw_js_ref(s);
    uint64_t ttl = gw_js_cfg(s)->json_detach_timeout_ms;
    gw_store_hset_if(s->core->store, &s->guard, s->key, w.n, w.f, w.v, ttl, persisted, sn);
    /* q_count counts every item pushed and not yet popped, in the order the store runs them:
     * at 0 the queue does not exist once these commands have run, and has no TTL to renew. */
    if (s->q_count)
        gw_store_expire(s->core->store, s->qkey, ttl, NULL, NULL);
    free(fifo);
}

void gw_js_ignore_reply(void *arg, int err, const struct gw_store_reply *r)
{
    (void)r;
    struct gw_jsess *s = arg;
    if (s->phase != GW_JS_ENDED && err == GW_ESTALE)
        gw_js_lost(s);
    else if (s->phase != GW_JS_ENDED && err)
        gw_js_lose_resumability(s, err);
    gw_js_unref(s);
}

void gw_js_delete_records(struct gw_jsess *s)
{
    if (!s->records)
        return;
    s->records = false;
    const char *keys[] = {s->qkey};
    gw_store_del_if(s->core->store, &s->guard, 1, keys, NULL, NULL);
}

/* ---- ending ---- */

/* The last steps of ending or losing a session: it is finished here; its registry entry stays
 * with the connection c until the close frame is out (or goes now when there is none), kept
 * for another node (keep_record) or closed; a release waiting on it is told it did not happen.
 * s must not be used afterwards. */
static void let_go(struct gw_jsess *s, struct gw_jconn *c, bool keep_record)
{
    struct gw_session *gs = s->sess;
    s->sess = NULL;
    void (*done)(void *, bool) = s->release_done;
    void *darg = s->release_arg;
    s->release_done = NULL;
    gw_js_finish(s);
    if (c)
        gw_jconn_hold_session(c, gs, keep_record);
    else if (keep_record)
        gw_session_release(gs);
    else
        gw_session_close(gs);
    if (done)
        done(darg, false);
}

void gw_js_end(struct gw_jsess *s, const char *cond, const char *text, uint16_t code)
{
    if (s->phase == GW_JS_ENDED)
        return;
    GW_INFO("json.end", "session=%s condition=%s", s->sid, cond ? cond : "-");
    struct gw_jconn *c = s->conn;
    s->conn = NULL;
    if (c && s->attaching)
        gw_jconn_resume_done(c, false);
    if (c)
        gw_jconn_close(c, cond, text, code ? code : GW_WS_CLOSE_NORMAL, -1);
    if (s->up) {
        gw_upstream_close(s->up); /* </stream:stream>: the server ends its session too */
        s->up = NULL;
    }
    gw_js_delete_records(s);
    let_go(s, c, false);
}

/* Another node has taken the session: step back without touching its records. */
void gw_js_lost(struct gw_jsess *s)
{
    if (s->phase == GW_JS_ENDED)
        return;
    GW_INFO("json.lost", "session=%s detail=\"taken over by another node\"", s->sid);
    struct gw_jconn *c = s->conn;
    s->conn = NULL;
    if (c)
        gw_jconn_close(c, "conflict", "the session was resumed elsewhere", GW_WS_CLOSE_NORMAL, -1);
    gw_upstream_free(s->up); /* no </stream:stream>: the stream is the other node's now */
    s->up = NULL;
    s->records = false;
    let_go(s, c, true);
}

void gw_js_detach(struct gw_jsess *s)
{
    if (s->phase == GW_JS_ENDED)
        return;
    if (!s->resumable || !s->sm_resume || s->phase != GW_JS_LIVE) {
        gw_js_end(s, NULL, NULL, 0);
        return;
    }
    GW_INFO("json.detach", "session=%s unacked=%u", s->sid, s->cl_out - s->cl_acked);
    gw_session_set_state(s->sess, GW_SESSION_DETACHED);
    gw_js_spill(s);
    if (s->phase == GW_JS_ENDED)
        return;
    gw_js_persist(s);
    gw_js_start_timer(s);
}

/* ---- release (handover, shutdown) ---- */

static void release_written(void *arg, int err, const struct gw_store_reply *r)
{
    (void)r;
    struct gw_jsess *s = arg;
    if (s->phase != GW_JS_ENDED) {
        if (err == GW_ESTALE) {
            gw_js_lost(s);
        } else if (err || s->release_failed) {
            s->releasing = false;
            gw_js_end(s, s->release_why == GW_JRELEASE_SHUTDOWN ? "system-shutdown" : "conflict",
                      "the session could not be handed over", GW_WS_CLOSE_GOING_AWAY);
        } else {
            GW_INFO("json.released", "session=%s why=%s h=%u", s->sid,
                    s->release_why == GW_JRELEASE_HANDOVER ? "handover" : "shutdown", s->win.h);
            (*s->mod->m_handover_given)++;
            gw_upstream_free(s->up); /* the socket only: the server keeps the stream */
            s->up = NULL;
            s->records = false;
            struct gw_session *gs = s->sess;
            s->sess = NULL;
            void (*done)(void *, bool) = s->release_done;
            void *darg = s->release_arg;
            s->release_done = NULL;
            struct gw_jconn *c = s->conn;
            s->conn = NULL;
            gw_session_set_state(gs, GW_SESSION_DETACHED);
            gw_js_finish(s);
            if (c) {
                if (s->release_why == GW_JRELEASE_SHUTDOWN)
                    gw_jconn_close(c, "system-shutdown",
                                   "the gateway is restarting: resume on another node",
                                   GW_WS_CLOSE_GOING_AWAY, 1);
                else
                    gw_jconn_close(c, "conflict", "the session was resumed on another connection",
                                   GW_WS_CLOSE_NORMAL, -1);
                gw_jconn_hold_session(c, gs, true);
            } else {
                gw_session_release(gs);
            }
            if (done)
                done(darg, true);
        }
    }
    gw_js_unref(s);
}

void gw_js_release_persist(struct gw_jsess *s)
{
    if (s->release_failed) {
        s->releasing = false;
        gw_js_end(s, s->release_why == GW_JRELEASE_SHUTDOWN ? "system-shutdown" : "conflict",
                  "the session could not be handed over", GW_WS_CLOSE_GOING_AWAY);
        return;
    }
    struct gw_jstore_fields w = {0};
    struct gw_js_snap sn = {0};
    char *fifo;
    bool was = s->detached;
    s->detached = true; /* expires counts from now for whoever resumes it */
    gw_js_counters(s, &w, &sn, &fifo);
    s->detached = was;
    w.v[w.n - 2] = gw_store_cstr("released");
    gw_jstore_add(&w, "owner", "");
    gw_js_ref(s);
    gw_store_hset_if(s->core->store, &s->guard, s->key, w.n, w.f, w.v,
                     gw_js_cfg(s)->json_detach_timeout_ms, release_written, s);
    free(fifo);
}

bool gw_jsess_can_attach(const struct gw_jsess *s)
{
    return s->phase == GW_JS_LIVE && !s->attaching && !s->releasing;
}

void gw_jsess_release(struct gw_jsess *s, enum gw_jrelease why, void (*done)(void *arg, bool ok),
                      void *arg)
{
    s->release_done = done;
    s->release_arg = arg;
    s->release_why = why;
    if (!gw_jsess_can_attach(s) || !s->resumable || !s->sm_resume) {
        gw_js_end(s, why == GW_JRELEASE_SHUTDOWN ? "system-shutdown" : "conflict",
                  why == GW_JRELEASE_SHUTDOWN ? "the gateway is restarting"
                                              : "taken over elsewhere",
                  why == GW_JRELEASE_SHUTDOWN ? GW_WS_CLOSE_GOING_AWAY : GW_WS_CLOSE_NORMAL);
        return;
    }
    s->releasing = true;
    uv_timer_stop(&s->timer);
    gw_js_up_pause(s, GW_JS_UP_RELEASE, true);
    /* The client is told once the store holds it all (so that its resume finds it there);
     * until then it is not read. */
    if (s->conn)
        gw_jconn_pause(s->conn, GW_JPAUSE_RESUME, true);
    gw_js_spill(s);
    if (s->phase != GW_JS_ENDED && s->q_inflight == 0)
        gw_js_release_persist(s);
}

/* ---- timers ---- */

static void on_timer(uv_timer_t *t)
{
    struct gw_jsess *s = t->data;
    if (s->phase != GW_JS_LIVE)
        return;
    if (s->detached && !s->attaching) {
        GW_INFO("json.expired", "session=%s", s->sid);
        gw_js_end(s, NULL, NULL, 0);
        return;
    }
    if (!s->resumable && s->records && gw_store_available(s->core->store))
        gw_js_delete_records(s); /* left behind when the store failed */
    gw_js_persist(s);            /* refreshes the records' TTL */
}

void gw_js_start_timer(struct gw_jsess *s)
{
    uint64_t ttl = gw_js_cfg(s)->json_detach_timeout_ms;
    if (s->detached)
        uv_timer_start(&s->timer, on_timer, ttl, 0);
    else
        uv_timer_start(&s->timer, on_timer, ttl / 3, ttl / 3);
}

/* ---- the registry's requests ---- */

static void on_shutdown(void *owner, enum gw_close_reason why)
{
    struct gw_jsess *s = owner;
    if (s->releasing || s->phase == GW_JS_ENDED)
        return;
    switch (why) {
    case GW_CLOSE_SHUTDOWN:
        /* The in-process store dies with this process: nothing could resume the session. */
        if (strcmp(gw_store_backend(s->core->store), "memory") == 0)
            gw_js_end(s, "system-shutdown", "the gateway is restarting", GW_WS_CLOSE_GOING_AWAY);
        else
            gw_jsess_release(s, GW_JRELEASE_SHUTDOWN, NULL, NULL);
        break;
    case GW_CLOSE_PREAUTH:
        gw_js_end(s, "connection-timeout", "log in sooner", GW_WS_CLOSE_NORMAL);
        break;
    case GW_CLOSE_KICKED:
        gw_js_end(s, "policy-violation", "ended by the operator", GW_WS_CLOSE_NORMAL);
        break;
    }
}

const struct gw_session_ops gw_js_session_ops = {on_shutdown};

/* ---- the module ---- */

struct gw_jmod *gw_jmod_new(struct gw_core *core)
{
    struct gw_jmod *m = gw_calloc(1, sizeof *m);
    m->core = core;
    m->sessions = gw_map_new();
    uv_timer_init(core->loop, &m->owed_timer);
    m->owed_timer.data = m;
    uv_unref((uv_handle_t *)&m->owed_timer); /* never what keeps the loop running */
    if (core->bus) {
        gw_node_bus_on(core->bus, "handover", gw_jresume_on_handover, m);
        gw_node_bus_on(core->bus, "released", gw_jresume_on_released, m);
    }
    struct gw_metrics *mx = core->metrics;
    if (mx) {
        static const char resumes[] = "Session resumes (JSON protocol), by outcome";
        m->m_resumed = gw_metrics_counter(mx, "mxgw_resumes_total", resumes, "result=\"resumed\"");
        m->m_fresh = gw_metrics_counter(mx, "mxgw_resumes_total", resumes, "result=\"fresh\"");
        m->m_resume_failed =
            gw_metrics_counter(mx, "mxgw_resumes_total", resumes, "result=\"failed\"");
        static const char handovers[] = "JSON sessions handed between nodes";
        m->m_handover_given =
            gw_metrics_counter(mx, "mxgw_json_handovers_total", handovers, "role=\"given\"");
        m->m_handover_taken =
            gw_metrics_counter(mx, "mxgw_json_handovers_total", handovers, "role=\"taken\"");
        m->m_overflow = gw_metrics_counter(mx, "mxgw_json_queue_overflows_total",
                                           "detached JSON sessions ended by a full queue", NULL);
        m->m_rate_paused =
            gw_metrics_counter(mx, "mxgw_json_rate_pauses_total",
                               "times a JSON client was paused by its rate limit", NULL);
    } else {
        static uint64_t sink[7];
        m->m_resumed = &sink[0];
        m->m_fresh = &sink[1];
        m->m_resume_failed = &sink[2];
        m->m_handover_given = &sink[3];
        m->m_handover_taken = &sink[4];
        m->m_overflow = &sink[5];
        m->m_rate_paused = &sink[6];
    }
    return m;
}

static void owed_timer_closed(uv_handle_t *h)
{
    free(h->data);
}

void gw_jmod_free(struct gw_jmod *m)
{
    if (!m)
        return;
    gw_jresume_abort_all(m);
    gw_map_free(m->sessions);
    /* The loop has run dry: one more turn runs the close callback, which frees m. */
    uv_close((uv_handle_t *)&m->owed_timer, owed_timer_closed);
    uv_run(m->core->loop, UV_RUN_NOWAIT);
}
