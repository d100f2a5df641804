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
#include "web/json_session.h"

#include "gateway/err.h"
#include "gateway/log.h"
#include "gateway/map.h"
#include "gateway/mem.h"
#include "gateway/metrics.h"
#include "gateway/token.h"
#include "web/ws.h"
#include "xmpp/csi.h"
#include "xmpp/jid.h"
#include "xmpp/login.h"
#include "xmpp/sasl.h"
#include "xmpp/stream.h"
#include "xmpp/upstream.h"
#include "xmpp/xlate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ACK_REQUEST_EVERY 10    /* stanzas to the client between mxgw's {"op":"r"} */
#define UP_R_EVERY        8     /* client stanzas upstream between mxgw's <r/> */
#define UP_PENDING_PAUSE  128   /* client stanzas unacked upstream before the client is paused */
#define UP_PENDING_MAX    512   /* … and past which the session ends */
#define WINDOW_MAX        65536 /* server stanzas between h and the newest */

enum phase { P_LOGIN, P_LIVE, P_ENDED };
enum { UP_WS = 1, UP_WINDOW = 2, UP_PEND = 4, UP_RELEASE = 8 }; /* why upstream reading stops */

/* A stanza numbered for the client and not yet acked by it. */
struct jitem {
    struct jitem *next;
    uint32_t seq, u;
    bool counted;  /* u is a window number still to be made safe (live items) */
    bool in_store; /* its copy is in the store queue */
    size_t len;    /* bytes of its queue item */
    char *xml;     /* live: the stanza, for the queue if the client drops; attach: to send */
    size_t xml_len;
};

/* A stanza from the server not yet numbered for the client (waiting, or held while inactive). */
struct jheld {
    struct jheld *next;
    uint32_t u;
    bool counted;
    struct gw_xml *el;
    char *key; /* CSI coalescing key */
};

struct gw_jsess {
    struct gw_jmod *mod;
    struct gw_core *core;
    struct gw_session *sess;
    char sid[GW_TOKEN_SID_MAX + 1];
    char key[GW_JSTORE_KEY_MAX], qkey[GW_JSTORE_KEY_MAX];
    struct gw_store_guard guard;
    struct gw_jconn *conn;
    enum phase phase;
    bool detached, attaching, releasing, fresh, adopting;
    bool resumable;  /* the store holds the session and writing it works */
    bool records;    /* the store may hold records of this session, to delete at the end */
    bool token_prev; /* the token before the last resume is still valid */
    struct gw_upstream *up;
    struct gw_login *login;
    char *jid, *bare, *lang, *sm_id, *mention;
    bool sm, sm_resume;
    unsigned up_pause;
    /* server → client */
    struct gw_sm_window win;
    uint32_t h_persisted, h_told;
    bool r_owed;
    uint32_t cl_out, cl_acked, cl_max;
    bool ceiling_blocked;
    struct jitem *items, *items_tail;
    size_t q_count, q_bytes;
    unsigned q_inflight;
    struct jheld *pend, *pend_tail;
    size_t npend;
    struct jheld *held, *held_tail;
    size_t nheld;
    bool inactive;
    /* client → server */
    struct gw_sm_queue upq;
    uint32_t cl_in, cl_in_acked;
    bool client_ack_requested, up_r_pending;
    /* store writes */
    bool persist_inflight, persist_dirty;
    /* resume */
    struct gw_jresume_args *args;
    uint32_t rec_up_in_h, rec_cl_in, rec_cl_in_acked;
    char *rec_fifo;
    /* release */
    void (*release_done)(void *arg, bool ok);
    void *release_arg;
    enum gw_jrelease release_why;
    bool release_failed;
    uv_timer_t timer;
    unsigned refs;
};

static void end(struct gw_jsess *s, const char *cond, const char *text, uint16_t code);
static void lost(struct gw_jsess *s);
static void persist(struct gw_jsess *s);
static void drain_pending(struct gw_jsess *s);
static void deliver(struct gw_jsess *s, struct gw_xml *el, uint32_t u, bool counted);
static void detach(struct gw_jsess *s);
static void release_persist(struct gw_jsess *s);
static void start_timer(struct gw_jsess *s);

static const struct gw_session_ops session_ops;

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static const struct gw_config *cfg(const struct gw_jsess *s)
{
    return s->core->cfg;
}

/* ---- lifetime ---- */

static void ref(struct gw_jsess *s)
{
    s->refs++;
}

static void freed(uv_handle_t *h)
{
    struct gw_jsess *s = h->data;
    free(s);
}

static void unref(struct gw_jsess *s)
{
    if (--s->refs == 0)
        uv_close((uv_handle_t *)&s->timer, freed);
}

static void free_items(struct gw_jsess *s)
{
    while (s->items) {
        struct jitem *it = s->items;
        s->items = it->next;
        free(it->xml);
        free(it);
    }
    s->items_tail = NULL;
}

static void free_held_list(struct jheld **head, struct jheld **tail, size_t *n)
{
    while (*head) {
        struct jheld *h = *head;
        *head = h->next;
        gw_xml_free(h->el);
        free(h->key);
        free(h);
    }
    *tail = NULL;
    *n = 0;
}

static struct gw_jsess *jsess_new(struct gw_jmod *m, const char *sid)
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
    gw_sm_window_init(&s->win, WINDOW_MAX, 0);
    gw_sm_init(&s->upq, UP_PENDING_MAX, SIZE_MAX);
    return s;
}

/* The last step of every ending: nothing of the session stays but what callbacks still hold. */
static void finish(struct gw_jsess *s)
{
    s->phase = P_ENDED;
    uv_timer_stop(&s->timer);
    gw_login_free(s->login);
    s->login = NULL;
    if (gw_map_get(s->mod->sessions, s->sid) == s)
        gw_map_del(s->mod->sessions, s->sid);
    free_items(s);
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
    unref(s);
}

/* ---- small helpers ---- */

static int to_client(struct gw_jsess *s, struct gw_json_out *w)
{
    if (!s->conn) {
        gw_json_out_free(w);
        return GW_ECLOSED;
    }
    return gw_jconn_send(s->conn, w);
}

static void send_count(struct gw_jsess *s, const char *op, uint32_t h)
{
    struct gw_json_out *w = gw_json_out_new();
    gw_json_open(w);
    gw_json_kv(w, "op", op);
    if (h != UINT32_MAX || strcmp(op, "a") == 0) {
        gw_json_key(w, "h");
        gw_json_integer(w, h);
    }
    gw_json_close(w);
    to_client(s, w);
}

static void send_request(struct gw_jsess *s)
{
    struct gw_json_out *w = gw_json_out_new();
    gw_json_open(w);
    gw_json_kv(w, "op", "r");
    gw_json_close(w);
    to_client(s, w);
}

static void up_pause(struct gw_jsess *s, unsigned why, bool on)
{
    unsigned before = s->up_pause;
    s->up_pause = on ? s->up_pause | why : s->up_pause & ~why;
    if (s->up && (before != 0) != (s->up_pause != 0))
        gw_upstream_pause(s->up, s->up_pause != 0);
}

static void xml_sm(struct gw_jsess *s, const char *name, const uint32_t *h)
{
    if (!s->up)
        return;
    struct gw_xml *el = gw_xml_new(GW_NS_SM, name);
    if (h) {
        char num[16];
        snprintf(num, sizeof num, "%u", *h);
        gw_xml_set_attr(el, "h", num);
    }
    gw_upstream_send(s->up, el);
    gw_xml_free(el);
}

static char *serialize(const struct gw_xml *el, size_t *len)
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

static bool after(uint32_t a, uint32_t b) /* a > b, with XEP-0198 wrap-around */
{
    return a != b && (uint32_t)(a - b) < UINT32_MAX / 2;
}

/* ---- upstream acks ---- */

/* Tells the server how far it may forget its stanzas, when that changed or it asked. */
static void ack_upstream(struct gw_jsess *s)
{
    if (!s->sm || !s->up || s->login || s->releasing || s->phase == P_ENDED)
        return;
    uint32_t h = s->resumable ? s->h_persisted : s->win.h;
    if (s->r_owed || h != s->h_told) {
        xml_sm(s, "a", &h);
        s->h_told = h;
        s->r_owed = false;
    }
}

static void mark_safe(struct gw_jsess *s, uint32_t u)
{
    uint32_t before = s->win.h;
    if (gw_sm_window_done(&s->win, u) == before)
        return;
    if (s->resumable)
        persist(s);
    else
        ack_upstream(s);
}

/* The store can no longer be trusted with this session: it goes on, without resumption. */
static void lose_resumability(struct gw_jsess *s, int err)
{
    if (!s->resumable)
        return;
    s->resumable = false;
    GW_WARN("json.not_resumable", "session=%s reason=\"%s\"", s->sid, gw_strerror(err));
    if (s->ceiling_blocked) {
        s->ceiling_blocked = false;
        drain_pending(s);
    }
    if (s->conn) {
        struct gw_json_out *w = gw_json_out_new();
        gw_json_open(w);
        gw_json_kv(w, "op", "status");
        gw_json_key(w, "resumable");
        gw_json_bool(w, false);
        gw_json_kv(w, "text", "the session store is unavailable: this session cannot be resumed");
        gw_json_close(w);
        to_client(s, w);
    }
    ack_upstream(s);
    if (s->detached && !s->attaching && !s->releasing)
        end(s, NULL, NULL, 0);
}

/* Noticed on traffic, so that a session learns of a store outage without waiting to write. */
static void check_store(struct gw_jsess *s)
{
    if (s->resumable && !gw_store_available(s->core->store))
        lose_resumability(s, GW_EUNAVAIL);
}

/* ---- writing the records ---- */

struct snap {
    struct gw_jsess *s;
    uint32_t h, cl_max;
    char *token; /* attach and login: the new token, sent once it is stored */
};

static void counters(struct gw_jsess *s, struct gw_jstore_fields *w, struct snap *sn, char **fifo)
{
    sn->h = s->win.h;
    sn->cl_max = s->cl_out + 2 * (uint32_t)cfg(s)->json_unacked_stanzas;
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
                      s->detached ? wall_ms() + cfg(s)->json_detach_timeout_ms : (uint64_t)0);
}

static void persisted(void *arg, int err, const struct gw_store_reply *r)
{
    (void)r;
    struct snap *sn = arg;
    struct gw_jsess *s = sn->s;
    uint32_t h = sn->h, cl_max = sn->cl_max;
    free(sn);
    s->persist_inflight = false;
    if (s->phase != P_ENDED) {
        if (err == 0) {
            if (after(h, s->h_persisted))
                s->h_persisted = h;
            s->cl_max = cl_max;
            ack_upstream(s);
            if (s->ceiling_blocked) {
                s->ceiling_blocked = false;
                drain_pending(s);
            }
        } else if (err == GW_ESTALE) {
            lost(s);
        } else {
            lose_resumability(s, err);
        }
        if (s->phase != P_ENDED && s->persist_dirty) {
            s->persist_dirty = false;
            persist(s);
        }
    }
    unref(s);
}

/* Writes the counters (one write in flight per session; a later request is merged). */
static void persist(struct gw_jsess *s)
{
    if (!s->resumable || s->phase == P_ENDED || s->releasing || s->attaching)
        return;
    if (s->persist_inflight) {
        s->persist_dirty = true;
        return;
    }
    struct gw_jstore_fields w = {0};
    struct snap *sn = gw_calloc(1, sizeof *sn);
    char *fifo;
    sn->s = s;
    counters(s, &w, sn, &fifo);
    s->persist_inflight = true;
    ref(s);
    uint64_t ttl = cfg(s)->json_detach_timeout_ms;
    gw_store_hset_if(s->core->store, &s->guard, s->key, w.n, w.f, w.v, ttl, persisted, sn);
    gw_store_expire(s->core->store, s->qkey, ttl, NULL, NULL);
    free(fifo);
}

static void ignore_reply(void *arg, int err, const struct gw_store_reply *r)
{
    (void)r;
    struct gw_jsess *s = arg;
    if (s->phase != P_ENDED && err == GW_ESTALE)
        lost(s);
    else if (s->phase != P_ENDED && err)
        lose_resumability(s, err);
    unref(s);
}

static void delete_records(struct gw_jsess *s)
{
    if (!s->records)
        return;
    s->records = false;
    const char *keys[] = {s->qkey};
    gw_store_del_if(s->core->store, &s->guard, 1, keys, NULL, NULL);
}

/* ---- the store queue ---- */

struct append {
    struct gw_jsess *s;
    uint32_t u;
    bool counted;
};

static void appended(void *arg, int err, const struct gw_store_reply *r)
{
    (void)r;
    struct append *a = arg;
    struct gw_jsess *s = a->s;
    s->q_inflight--;
    if (s->phase != P_ENDED) {
        if (err == 0) {
            if (a->counted)
                mark_safe(s, a->u);
        } else if (err == GW_ESTALE) {
            lost(s);
        } else if (s->releasing) {
            s->release_failed = true;
        } else {
            if (err == GW_ELIMIT)
                (*s->mod->m_overflow)++;
            GW_WARN("json.queue_failed", "session=%s err=\"%s\"", s->sid, gw_strerror(err));
            end(s, "resource-constraint", "the session's queue could not take more", 1000);
        }
        if (s->phase != P_ENDED && s->releasing && s->q_inflight == 0)
            release_persist(s);
    }
    free(a);
    unref(s);
}

/* Appends one stanza, already numbered seq, to the store queue. */
static void append_raw(struct gw_jsess *s, uint32_t seq, const char *xml, size_t len, uint32_t u,
                       bool counted)
{
    size_t ilen;
    char *item = gw_jstore_item(seq, xml, len, &ilen);
    const struct gw_config *c = cfg(s);
    if (s->q_count + 1 > c->json_queue_stanzas || s->q_bytes + ilen > c->json_queue_bytes) {
        free(item);
        (*s->mod->m_overflow)++;
        GW_INFO("json.queue_full", "session=%s stanzas=%zu bytes=%zu", s->sid, s->q_count,
                s->q_bytes);
        if (s->releasing)
            s->release_failed = true;
        else
            end(s, "resource-constraint", "too many stanzas waiting for the client", 1000);
        return;
    }
    s->q_count++;
    s->q_bytes += ilen;
    s->q_inflight++;
    struct append *a = gw_malloc(sizeof *a);
    *a = (struct append){s, u, counted};
    ref(s);
    gw_store_rpush_if(s->core->store, &s->guard, s->qkey, (struct gw_store_str){item, ilen},
                      c->json_queue_stanzas, c->json_detach_timeout_ms, appended, a);
    free(item);
}

static void append_el(struct gw_jsess *s, struct gw_xml *el, uint32_t u, bool counted)
{
    size_t len;
    char *xml = serialize(el, &len);
    gw_xml_free(el);
    if (!xml) { /* cannot happen for a parsed stanza; never block the window on it */
        if (counted)
            mark_safe(s, u);
        return;
    }
    append_raw(s, ++s->cl_out, xml, len, u, counted);
    free(xml);
}

/* Moves everything not yet safe into the store queue, in the order the client would get it:
 * stanzas sent and unacked (keeping their numbers), then held ones, then waiting ones. */
static void spill(struct gw_jsess *s)
{
    s->detached = true;
    struct jitem *it = s->items;
    s->items = s->items_tail = NULL;
    while (it && s->phase != P_ENDED) {
        struct jitem *next = it->next;
        if (!it->in_store)
            append_raw(s, it->seq, it->xml, it->xml_len, it->u, it->counted);
        free(it->xml);
        free(it);
        it = next;
    }
    while (it) {
        struct jitem *next = it->next;
        free(it->xml);
        free(it);
        it = next;
    }
    struct jheld *lists[2] = {s->held, s->pend};
    s->held = s->held_tail = s->pend = s->pend_tail = NULL;
    s->nheld = s->npend = 0;
    for (int i = 0; i < 2; i++) {
        for (struct jheld *h = lists[i], *next; h; h = next) {
            next = h->next;
            if (s->phase != P_ENDED)
                append_el(s, h->el, h->u, h->counted);
            else
                gw_xml_free(h->el);
            free(h->key);
            free(h);
        }
    }
    if (s->phase != P_ENDED)
        up_pause(s, UP_PEND | UP_WINDOW | UP_WS, false);
}

/* ---- delivery to the client ---- */

static void drop_conn(struct gw_jsess *s, const char *cond, const char *text, uint16_t code)
{
    struct gw_jconn *c = s->conn;
    s->conn = NULL;
    gw_jconn_close(c, cond, text, code, -1);
    detach(s);
}

static void pend_push(struct gw_jsess *s, struct gw_xml *el, uint32_t u, bool counted, bool front)
{
    struct jheld *h = gw_calloc(1, sizeof *h);
    h->el = el;
    h->u = u;
    h->counted = counted;
    if (front) {
        h->next = s->pend;
        s->pend = h;
        if (!s->pend_tail)
            s->pend_tail = h;
    } else {
        if (s->pend_tail)
            s->pend_tail->next = h;
        else
            s->pend = h;
        s->pend_tail = h;
    }
    s->npend++;
    up_pause(s, UP_PEND, true); /* the server keeps the rest until these are through */
}

static bool blocked(const struct gw_jsess *s)
{
    return s->phase != P_LIVE || s->attaching || s->releasing || s->ceiling_blocked;
}

/* Sends one stanza to the attached client and keeps it until acked. */
static void send_live(struct gw_jsess *s, struct gw_xml *el, uint32_t u, bool counted)
{
    if (s->resumable && after(s->cl_out + 1, s->cl_max)) {
        /* Past the confirmed ceiling: wait for the store to raise it. */
        s->ceiling_blocked = true;
        pend_push(s, el, u, counted, true);
        persist(s);
        return;
    }
    struct gw_json_out *w = gw_json_out_new();
    size_t len = 0;
    char *xml = serialize(el, &len);
    int rc = xml ? gw_xlate_to_json(el, s->jid, s->lang, w) : GW_EINVAL;
    gw_xml_free(el);
    if (rc) { /* nothing JSON can carry: it never reaches the client, so it is handled */
        GW_WARN("json.untranslatable", "session=%s", s->sid);
        gw_json_out_free(w);
        free(xml);
        if (counted)
            mark_safe(s, u);
        return;
    }
    struct jitem *it = gw_calloc(1, sizeof *it);
    it->seq = ++s->cl_out;
    it->u = u;
    it->counted = counted;
    it->xml = xml;
    it->xml_len = len;
    if (s->items_tail)
        s->items_tail->next = it;
    else
        s->items = it;
    s->items_tail = it;
    if (to_client(s, w) == GW_ELIMIT) {
        drop_conn(s, "policy-violation", "the client is not reading", GW_WS_CLOSE_POLICY);
        return;
    }
    uint32_t unacked = s->cl_out - s->cl_acked;
    size_t window = cfg(s)->json_unacked_stanzas;
    if (unacked % ACK_REQUEST_EVERY == 0)
        send_request(s);
    if (unacked >= 2 * window) {
        drop_conn(s, "policy-violation", "too many stanzas unacknowledged", GW_WS_CLOSE_POLICY);
        return;
    }
    if (unacked >= window)
        up_pause(s, UP_WINDOW, true);
    if (s->conn && gw_jconn_queued(s->conn) > cfg(s)->limit_queue_bytes / 2)
        up_pause(s, UP_WS, true);
}

static void push_hook(struct gw_jsess *s, const struct gw_xml *el)
{
    if (!s->core->push.important)
        return;
    size_t len;
    char *xml = serialize(el, &len);
    if (xml)
        s->core->push.important(s->core->push.arg, s->sid, s->bare, xml, len, s->detached);
    free(xml);
}

static void flush_held(struct gw_jsess *s)
{
    struct jheld *h = s->held;
    s->held = s->held_tail = NULL;
    s->nheld = 0;
    while (h) {
        struct jheld *next = h->next;
        if (s->phase == P_LIVE && !s->detached && !s->releasing)
            send_live(s, h->el, h->u, h->counted);
        else if (s->phase != P_ENDED)
            append_el(s, h->el, h->u, h->counted);
        else
            gw_xml_free(h->el);
        free(h->key);
        free(h);
        h = next;
    }
}

static void hold(struct gw_jsess *s, struct gw_xml *el, uint32_t u, bool counted, char *key)
{
    if (key) { /* a newer presence or chat state supersedes the one held */
        for (struct jheld **p = &s->held, *prev = NULL; *p; prev = *p, p = &(*p)->next) {
            struct jheld *h = *p;
            if (h->key && strcmp(h->key, key) == 0) {
                *p = h->next;
                if (s->held_tail == h)
                    s->held_tail = prev;
                s->nheld--;
                if (h->counted)
                    mark_safe(s, h->u);
                gw_xml_free(h->el);
                free(h->key);
                free(h);
                break;
            }
        }
    }
    struct jheld *h = gw_calloc(1, sizeof *h);
    h->el = el;
    h->u = u;
    h->counted = counted;
    h->key = key;
    if (s->held_tail)
        s->held_tail->next = h;
    else
        s->held = h;
    s->held_tail = h;
    if (++s->nheld > cfg(s)->json_csi_max_held)
        flush_held(s);
}

static void deliver(struct gw_jsess *s, struct gw_xml *el, uint32_t u, bool counted)
{
    bool away = s->detached || s->inactive;
    char *key = NULL;
    enum gw_csi_class cls = away ? gw_csi_classify(el, s->mention, &key) : GW_CSI_URGENT;
    if (away && cls == GW_CSI_URGENT)
        push_hook(s, el); /* the hook point for push/: the client is away and this matters */
    if (s->detached) {
        free(key);
        append_el(s, el, u, counted);
    } else if (s->inactive && cls != GW_CSI_URGENT) {
        hold(s, el, u, counted, key);
    } else {
        free(key);
        send_live(s, el, u, counted);
    }
}

static void drain_pending(struct gw_jsess *s)
{
    while (s->pend && !blocked(s)) {
        struct jheld *h = s->pend;
        s->pend = h->next;
        if (!s->pend)
            s->pend_tail = NULL;
        s->npend--;
        deliver(s, h->el, h->u, h->counted);
        free(h->key);
        free(h);
    }
    if (s->phase != P_ENDED && !s->pend)
        up_pause(s, UP_PEND, false);
}

/* ---- upstream ---- */

static void on_server_ack(void *arg, struct gw_sm_item *it)
{
    struct gw_jsess *s = arg;
    s->cl_in_acked = (uint32_t)(uintptr_t)it->tag;
}

static void on_sm(struct gw_jsess *s, const struct gw_xml *el)
{
    if (strcmp(el->name, "r") == 0) {
        s->r_owed = true;
        if (!s->resumable || s->h_persisted == s->win.h)
            ack_upstream(s);
        else
            persist(s); /* the store first, then the answer */
    } else if (strcmp(el->name, "a") == 0) {
        const char *hv = gw_xml_attr(el, "h");
        char *e = NULL;
        unsigned long h = hv ? strtoul(hv, &e, 10) : 0;
        s->up_r_pending = false;
        if (!hv || *e || h > UINT32_MAX || gw_sm_ack(&s->upq, (uint32_t)h, on_server_ack, s) < 0) {
            GW_WARN("json.bad_server_ack", "session=%s", s->sid);
            return;
        }
        if (s->upq.count == 0)
            s->cl_in_acked = s->cl_in;
        if (s->client_ack_requested) {
            s->client_ack_requested = false;
            send_count(s, "a", s->cl_in_acked);
        }
        if (s->conn && s->upq.count < UP_PENDING_PAUSE / 2 &&
            gw_upstream_queued(s->up) <= cfg(s)->limit_queue_bytes / 2)
            gw_jconn_pause(s->conn, GW_JPAUSE_UPSTREAM, false);
        persist(s);
    }
}

static void up_open(void *arg, const struct gw_xml *header)
{
    struct gw_jsess *s = arg;
    const char *lang = gw_xml_attr_ns(header, GW_NS_XML, "lang");
    free(s->lang);
    s->lang = lang ? gw_strdup(lang) : NULL;
    if (s->login)
        gw_login_open(s->login, header);
}

static void up_stanza(void *arg, struct gw_xml *el)
{
    struct gw_jsess *s = arg;
    if (s->login && gw_login_stanza(s->login, el))
        return;
    if (s->phase == P_ENDED) {
        gw_xml_free(el);
        return;
    }
    if (el->ns && strcmp(el->ns, GW_NS_SM) == 0) {
        on_sm(s, el);
        gw_xml_free(el);
        return;
    }
    if (!el->ns || strcmp(el->ns, GW_NS_CLIENT) != 0) {
        GW_DEBUG("json.ignored", "session=%s element=%s", s->sid, el->name);
        gw_xml_free(el);
        return;
    }
    check_store(s);
    if (s->phase == P_ENDED) {
        gw_xml_free(el);
        return;
    }
    uint32_t u = 0;
    bool counted = s->sm;
    if (counted && gw_sm_window_add(&s->win, &u) != 0) {
        gw_xml_free(el);
        end(s, "resource-constraint", "too many stanzas in flight", 1000);
        return;
    }
    if (s->releasing) { /* never made safe here: the server gives it to the next node */
        gw_xml_free(el);
        return;
    }
    if (s->pend || blocked(s))
        pend_push(s, el, u, counted, false);
    else
        deliver(s, el, u, counted);
}

static void login_failed(struct gw_jsess *s, const char *cond);

static void up_closed(void *arg, int err, const char *condition, const struct gw_xml *error_el)
{
    struct gw_jsess *s = arg;
    (void)error_el;
    struct gw_upstream *up = s->up;
    s->up = NULL;
    gw_upstream_free(up);
    if (s->phase == P_ENDED)
        return;
    if (s->login) {
        login_failed(s, err ? "remote-connection-failed" : "remote-server-error");
        return;
    }
    if (s->releasing) {
        s->release_failed = true;
        return;
    }
    end(s, err ? (condition ? condition : "undefined-condition") : "remote-stream-end",
        "the server ended the stream", GW_WS_CLOSE_NORMAL);
}

static void up_drained(void *arg)
{
    struct gw_jsess *s = arg;
    if (s->conn && s->upq.count < UP_PENDING_PAUSE)
        gw_jconn_pause(s->conn, GW_JPAUSE_UPSTREAM, false);
}

static const struct gw_upstream_handlers up_handlers = {up_open, up_stanza, up_closed, up_drained};

static bool plain_allowed(const struct gw_jsess *s)
{
    const char *host = cfg(s)->upstream.host;
    return cfg(s)->upstream_tls == GW_TLS_REQUIRED || strncmp(host, "127.", 4) == 0 ||
           strcmp(host, "::1") == 0 || strcmp(host, "localhost") == 0;
}

/* ---- ending ---- */

static void end(struct gw_jsess *s, const char *cond, const char *text, uint16_t code)
{
    if (s->phase == P_ENDED)
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
    delete_records(s);
    struct gw_session *gs = s->sess;
    s->sess = NULL;
    void (*done)(void *, bool) = s->release_done;
    void *darg = s->release_arg;
    s->release_done = NULL;
    finish(s);
    gw_session_close(gs);
    if (done)
        done(darg, false);
}

/* Another node has taken the session: step back without touching its records. */
static void lost(struct gw_jsess *s)
{
    if (s->phase == P_ENDED)
        return;
    GW_INFO("json.lost", "session=%s detail=\"taken over by another node\"", s->sid);
    struct gw_jconn *c = s->conn;
    s->conn = NULL;
    if (c)
        gw_jconn_close(c, "conflict", "the session was resumed elsewhere", GW_WS_CLOSE_NORMAL, -1);
    gw_upstream_free(s->up); /* no </stream:stream>: the stream is the other node's now */
    s->up = NULL;
    s->records = false;
    struct gw_session *gs = s->sess;
    s->sess = NULL;
    void (*done)(void *, bool) = s->release_done;
    void *darg = s->release_arg;
    s->release_done = NULL;
    finish(s);
    gw_session_release(gs);
    if (done)
        done(darg, false);
}

static void detach(struct gw_jsess *s)
{
    if (s->phase == P_ENDED)
        return;
    if (!s->resumable || !s->sm_resume || s->phase != P_LIVE) {
        end(s, NULL, NULL, 0);
        return;
    }
    GW_INFO("json.detach", "session=%s unacked=%u", s->sid, s->cl_out - s->cl_acked);
    gw_session_set_state(s->sess, GW_SESSION_DETACHED);
    spill(s);
    if (s->phase == P_ENDED)
        return;
    persist(s);
    start_timer(s);
}

/* ---- release (handover, shutdown) ---- */

static void release_written(void *arg, int err, const struct gw_store_reply *r)
{
    (void)r;
    struct gw_jsess *s = arg;
    if (s->phase != P_ENDED) {
        if (err == GW_ESTALE) {
            lost(s);
        } else if (err || s->release_failed) {
            s->releasing = false;
            end(s, NULL, NULL, 0);
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
            gw_session_set_state(gs, GW_SESSION_DETACHED);
            finish(s);
            gw_session_release(gs);
            if (done)
                done(darg, true);
        }
    }
    unref(s);
}

static void release_persist(struct gw_jsess *s)
{
    if (s->release_failed) {
        s->releasing = false;
        end(s, NULL, NULL, 0);
        return;
    }
    struct gw_jstore_fields w = {0};
    struct snap sn = {0};
    char *fifo;
    bool was = s->detached;
    s->detached = true; /* expires counts from now for whoever resumes it */
    counters(s, &w, &sn, &fifo);
    s->detached = was;
    w.v[w.n - 2] = gw_store_cstr("released");
    gw_jstore_add(&w, "owner", "");
    ref(s);
    gw_store_hset_if(s->core->store, &s->guard, s->key, w.n, w.f, w.v,
                     cfg(s)->json_detach_timeout_ms, release_written, s);
    free(fifo);
}

bool gw_jsess_can_attach(const struct gw_jsess *s)
{
    return s->phase == P_LIVE && !s->attaching && !s->releasing;
}

void gw_jsess_release(struct gw_jsess *s, enum gw_jrelease why, void (*done)(void *arg, bool ok),
                      void *arg)
{
    s->release_done = done;
    s->release_arg = arg;
    s->release_why = why;
    if (!gw_jsess_can_attach(s) || !s->resumable || !s->sm_resume) {
        end(s, why == GW_JRELEASE_SHUTDOWN ? "system-shutdown" : "conflict",
            why == GW_JRELEASE_SHUTDOWN ? "the gateway is restarting" : "taken over elsewhere",
            why == GW_JRELEASE_SHUTDOWN ? GW_WS_CLOSE_GOING_AWAY : GW_WS_CLOSE_NORMAL);
        return;
    }
    s->releasing = true;
    uv_timer_stop(&s->timer);
    up_pause(s, UP_RELEASE, true);
    struct gw_jconn *c = s->conn;
    s->conn = NULL;
    if (c && why == GW_JRELEASE_SHUTDOWN)
        gw_jconn_close(c, "system-shutdown", "the gateway is restarting: resume on another node",
                       GW_WS_CLOSE_GOING_AWAY, 1);
    else if (c)
        gw_jconn_close(c, "conflict", "the session was resumed on another connection",
                       GW_WS_CLOSE_NORMAL, -1);
    spill(s);
    if (s->phase != P_ENDED && s->q_inflight == 0)
        release_persist(s);
}

/* ---- timers ---- */

static void on_timer(uv_timer_t *t)
{
    struct gw_jsess *s = t->data;
    if (s->phase != P_LIVE)
        return;
    if (s->detached && !s->attaching) {
        GW_INFO("json.expired", "session=%s", s->sid);
        end(s, NULL, NULL, 0);
        return;
    }
    if (!s->resumable && s->records && gw_store_available(s->core->store))
        delete_records(s); /* left behind when the store failed */
    persist(s);            /* refreshes the records' TTL */
}

static void start_timer(struct gw_jsess *s)
{
    uint64_t ttl = cfg(s)->json_detach_timeout_ms;
    if (s->detached)
        uv_timer_start(&s->timer, on_timer, ttl, 0);
    else
        uv_timer_start(&s->timer, on_timer, ttl / 3, ttl / 3);
}

/* ---- login ---- */

static void answer_session(struct gw_jsess *s, const char *token)
{
    if (!s->conn) {
        end(s, NULL, NULL, 0);
        return;
    }
    struct gw_json_out *w = gw_json_out_new();
    gw_json_open(w);
    gw_json_kv(w, "op", "session");
    gw_json_kv(w, "jid", s->jid);
    gw_json_kv(w, "id", s->sid);
    gw_json_kv(w, "token", token);
    gw_json_key(w, "resumable");
    gw_json_bool(w, token != NULL);
    gw_json_close(w);
    to_client(s, w);
    s->phase = P_LIVE;
    start_timer(s);
    GW_INFO("json.login", "session=%s sm=%s resumable=%s", s->sid, s->sm ? "yes" : "no",
            s->resumable ? "yes" : "no");
    drain_pending(s);
}

static void first_written(void *arg, int err, const struct gw_store_reply *r)
{
    (void)r;
    struct snap *sn = arg;
    struct gw_jsess *s = sn->s;
    if (s->phase != P_ENDED) {
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
    unref(s);
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
    struct snap *sn = gw_calloc(1, sizeof *sn);
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
    counters(s, &w, sn, &fifo);
    s->records = true;
    ref(s);
    gw_store_hset(s->core->store, s->key, w.n, w.f, w.v, cfg(s)->json_detach_timeout_ms,
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
        gw_login_free(lg);
        end(s, r->condition, "login failed", GW_WS_CLOSE_NORMAL);
        return;
    }
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

static void adopt_failed(struct gw_jsess *s, const char *cond);

/* The upstream failed while logging in (the login itself never answers then). */
static void login_failed(struct gw_jsess *s, const char *cond)
{
    gw_login_free(s->login);
    s->login = NULL;
    if (s->adopting)
        adopt_failed(s, cond);
    else
        end(s, cond, "login failed", GW_WS_CLOSE_NORMAL);
}

void gw_jsess_login(struct gw_jmod *m, struct gw_jconn *conn, const char *jid, const char *password,
                    const char *resource)
{
    struct gw_session *pre = gw_jconn_take_pre(conn);
    struct gw_jsess *s = jsess_new(m, gw_session_id(pre));
    s->sess = pre;
    gw_session_set_owner(pre, &session_ops, s);
    gw_map_put(m->sessions, s->sid, s);
    s->conn = conn;
    gw_jconn_set_session(conn, s);
    s->up = gw_upstream_new(s->core, &up_handlers, s);
    int err = 0;
    s->login = gw_login_start(s->core, s->up, jid, password, resource, plain_allowed(s), login_done,
                              s, &err);
    if (!s->login) {
        end(s, err == GW_EINVAL ? "jid-malformed" : "remote-connection-failed", "cannot log in",
            GW_WS_CLOSE_NORMAL);
        return;
    }
    gw_session_set_state(pre, GW_SESSION_AUTHENTICATING);
}

/* ---- client ops ---- */

bool gw_jsess_ready(const struct gw_jsess *s)
{
    return s->phase == P_LIVE && !s->attaching && !s->releasing;
}

/* Client stanza c was handled without reaching the server (refused): it is acked with the
 * stanzas before it. */
static void handled_here(struct gw_jsess *s, uint32_t c)
{
    if (s->upq.count == 0)
        s->cl_in_acked = c;
    else
        s->upq.tail->tag = (void *)(uintptr_t)c;
}

void gw_jsess_stanza(struct gw_jsess *s, const struct gw_json *obj)
{
    check_store(s);
    uint32_t c = ++s->cl_in;
    const char *id = gw_json_str(obj, "id");
    struct gw_xml *el = NULL;
    const char *cond = NULL;
    char why[160];
    if (gw_xlate_to_xml(obj, &el, &cond, why, sizeof why) != 0) {
        gw_jconn_error(s->conn, cond, why, id);
        handled_here(s, c);
        return;
    }
    int rc = s->up ? gw_upstream_send(s->up, el) : GW_ECLOSED;
    gw_xml_free(el);
    if (rc == GW_ELIMIT) {
        end(s, "policy-violation", "the server is not reading", GW_WS_CLOSE_POLICY);
        return;
    }
    if (rc != 0) {
        gw_jconn_error(s->conn, "remote-server-error", "could not send", id);
        handled_here(s, c);
        return;
    }
    if (!s->sm) {
        s->cl_in_acked = c; /* written: the best we know without stream management */
        return;
    }
    uint32_t u;
    if (gw_sm_push(&s->upq, "", 0, (void *)(uintptr_t)c, &u) != 0) {
        end(s, "policy-violation", "too many stanzas unacknowledged by the server",
            GW_WS_CLOSE_POLICY);
        return;
    }
    if (!s->up_r_pending && s->upq.count % UP_R_EVERY == 0) {
        s->up_r_pending = true;
        xml_sm(s, "r", NULL);
    }
    if (s->upq.count >= UP_PENDING_PAUSE ||
        gw_upstream_queued(s->up) > cfg(s)->limit_queue_bytes / 2)
        gw_jconn_pause(s->conn, GW_JPAUSE_UPSTREAM, true);
}

void gw_jsess_ack(struct gw_jsess *s, const struct gw_json *obj)
{
    long long hv;
    if (!gw_json_int(obj, "h", &hv) || hv < 0 || hv > UINT32_MAX) {
        gw_jconn_error(s->conn, "bad-request", "\"a\" needs \"h\", a count", NULL);
        return;
    }
    uint32_t h = (uint32_t)hv, ahead = h - s->cl_acked, sent = s->cl_out - s->cl_acked;
    if (ahead > sent) {
        if (ahead <= UINT32_MAX / 2) /* acknowledges more than was sent: XEP-0198 §4 */
            end(s, "undefined-condition", "handled-count-too-high", GW_WS_CLOSE_POLICY);
        return; /* an old count */
    }
    size_t from_store = 0, store_bytes = 0;
    for (uint32_t i = 0; i < ahead && s->items; i++) {
        struct jitem *it = s->items;
        s->items = it->next;
        if (!s->items)
            s->items_tail = NULL;
        if (it->in_store) {
            from_store++;
            store_bytes += it->len;
        } else if (it->counted) {
            gw_sm_window_done(&s->win, it->u);
        }
        free(it->xml);
        free(it);
    }
    s->cl_acked = h;
    if (from_store) {
        s->q_count -= from_store;
        s->q_bytes -= store_bytes;
        ref(s);
        gw_store_lpop_n_if(s->core->store, &s->guard, s->qkey, from_store, ignore_reply, s);
    }
    if (s->resumable)
        persist(s);
    else
        ack_upstream(s);
    if (s->cl_out - s->cl_acked < cfg(s)->json_unacked_stanzas / 2)
        up_pause(s, UP_WINDOW, false);
}

void gw_jsess_request_ack(struct gw_jsess *s)
{
    if (s->sm && s->up && s->upq.count > 0) {
        s->client_ack_requested = true;
        if (!s->up_r_pending) {
            s->up_r_pending = true;
            xml_sm(s, "r", NULL);
        }
    } else {
        send_count(s, "a", s->cl_in_acked);
    }
}

void gw_jsess_logout(struct gw_jsess *s)
{
    end(s, NULL, NULL, GW_WS_CLOSE_NORMAL);
}

void gw_jsess_set_inactive(struct gw_jsess *s, bool inactive)
{
    s->inactive = inactive;
    if (!inactive)
        flush_held(s);
}

void gw_jsess_client_seen(struct gw_jsess *s)
{
    if (!s->token_prev || !s->resumable)
        return;
    s->token_prev = false;
    struct gw_jstore_fields w = {0};
    gw_jstore_add(&w, "token_prev", "");
    gw_jstore_add(&w, "reauth_prev", "");
    ref(s);
    gw_store_hset_if(s->core->store, &s->guard, s->key, w.n, w.f, w.v, 0, ignore_reply, s);
}

void gw_jsess_drained(struct gw_jsess *s)
{
    up_pause(s, UP_WS, false);
}

void gw_jsess_conn_lost(struct gw_jsess *s)
{
    s->conn = NULL;
    if (s->phase == P_ENDED || s->releasing)
        return;
    if (s->attaching) /* the attach notices and leaves the session detached */
        return;
    detach(s);
}

struct gw_jsess *gw_jsess_find(struct gw_jmod *m, const char *sid)
{
    return gw_map_get(m->sessions, sid);
}

uint32_t gw_jsess_cl_out(const struct gw_jsess *s)
{
    return s->cl_out;
}

uint32_t gw_jsess_cl_acked(const struct gw_jsess *s)
{
    return s->cl_acked;
}

void gw_jresume_args_free(struct gw_jresume_args *a)
{
    if (!a)
        return;
    if (a->secret) {
        gw_memzero(a->secret, a->secret_len);
        free(a->secret);
    }
    free(a->verifier);
    free(a->blob);
    free(a);
}

/* ---- attaching a client (resume) ---- */

/* The client went away during the attach: stay detached, the old token still valid. */
static void attach_abort(struct gw_jsess *s)
{
    s->attaching = false;
    free_items(s);
    gw_jresume_args_free(s->args);
    s->args = NULL;
    GW_INFO("json.attach_abandoned", "session=%s", s->sid);
    if (!s->resumable) {
        end(s, NULL, NULL, 0);
        return;
    }
    gw_session_set_state(s->sess, GW_SESSION_DETACHED);
    persist(s);
    start_timer(s);
    drain_pending(s);
}

static void flush_item(struct gw_jsess *s, struct jitem *it)
{
    struct gw_xml_limits lim = {cfg(s)->limit_stanza_bytes * 2, cfg(s)->limit_xml_depth,
                                cfg(s)->limit_xml_attrs};
    struct gw_xml *el = NULL;
    const char *cond;
    struct gw_json_out *w = gw_json_out_new();
    if (gw_xml_parse_document(it->xml, it->xml_len, &lim, &el, &cond) != 0 ||
        gw_xlate_to_json(el, s->jid, s->lang, w) != 0) {
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
    to_client(s, w);
}

static void attach_finish(struct gw_jsess *s, const char *token)
{
    if (!s->conn) {
        attach_abort(s);
        return;
    }
    struct gw_json_out *w = gw_json_out_new();
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
    to_client(s, w);
    size_t n = 0;
    for (struct jitem *it = s->items; it && s->conn; it = it->next, n++)
        flush_item(s, it);
    struct gw_jconn *c = s->conn;
    s->attaching = false;
    s->detached = false;
    gw_jresume_args_free(s->args);
    s->args = NULL;
    (*(s->fresh ? s->mod->m_fresh : s->mod->m_resumed))++;
    GW_INFO("json.resumed", "session=%s queued=%zu fresh=%s resumable=%s", s->sid, n,
            s->fresh ? "yes" : "no", s->resumable ? "yes" : "no");
    s->fresh = false;
    gw_session_set_state(s->sess, GW_SESSION_BOUND);
    start_timer(s);
    gw_jconn_resume_done(c, true);
    if (s->cl_out != s->cl_acked)
        send_request(s);
    drain_pending(s);
}

static void attach_written(void *arg, int err, const struct gw_store_reply *r)
{
    (void)r;
    struct snap *sn = arg;
    struct gw_jsess *s = sn->s;
    if (s->phase != P_ENDED) {
        if (err == 0) {
            s->cl_max = sn->cl_max;
            s->token_prev = true;
            attach_finish(s, sn->token);
        } else if (err == GW_ESTALE) {
            lost(s);
        } else {
            lose_resumability(s, err);
            attach_finish(s, NULL);
        }
    }
    if (sn->token) {
        gw_memzero(sn->token, strlen(sn->token));
        free(sn->token);
    }
    free(sn);
    unref(s);
}

/* The queue as read from the store: drop what the client has, number the rest from its h. */
static void attach_items(void *arg, int err, const struct gw_store_reply *r)
{
    struct gw_jsess *s = arg;
    if (s->phase == P_ENDED)
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
        end(s, NULL, NULL, 0);
        goto out;
    }
    if (!s->conn) {
        attach_abort(s);
        goto out;
    }
    uint32_t h = s->args->h;
    size_t drop = 0, keep = 0, bytes = 0;
    free_items(s);
    for (size_t i = 0; i < r->n; i++) {
        uint32_t seq;
        const char *xml;
        size_t xml_len;
        bool ok = gw_jstore_item_parse(r->items[i].ptr, r->items[i].len, &seq, &xml, &xml_len) == 0;
        if (keep == 0 && (!ok || !after(seq, h))) {
            drop++; /* the client has it (or it is unreadable) */
            continue;
        }
        struct jitem *it = gw_calloc(1, sizeof *it);
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
        ref(s);
        gw_store_lpop_n_if(s->core->store, &s->guard, s->qkey, drop, ignore_reply, s);
    }
    s->q_count = keep;
    s->q_bytes = bytes;
    s->cl_acked = h;
    s->cl_out = h + (uint32_t)keep;
    if (!s->resumable || !s->sm_resume) {
        delete_records(s);
        s->resumable = false;
        attach_finish(s, NULL);
        goto out;
    }
    /* A new token; the one used stays valid until the client shows it got this one. */
    char verifier[GW_TOKEN_VERIFIER_HEX], *blob = NULL;
    char *token = new_token(s, s->args->secret, s->args->secret_len, verifier, &blob);
    struct gw_jstore_fields w = {0};
    struct snap *sn = gw_calloc(1, sizeof *sn);
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
    counters(s, &w, sn, &fifo);
    s->detached = true;
    ref(s);
    gw_store_hset_if(s->core->store, &s->guard, s->key, w.n, w.f, w.v,
                     cfg(s)->json_detach_timeout_ms, attach_written, sn);
    free(fifo);
    free(blob);
out:
    unref(s);
}

static void attach_read(struct gw_jsess *s)
{
    ref(s);
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
        spill(s); /* the old connection's unacked stanzas go to the queue first */
    if (s->phase == P_ENDED) {
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

static void adopt_failed(struct gw_jsess *s, const char *cond)
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
        end(s, NULL, NULL, 0);
        return;
    }
    /* Give it back untouched: a later resume, here or elsewhere, may succeed. */
    struct gw_jstore_fields w = {0};
    gw_jstore_add(&w, "owner", "");
    gw_store_hset_if(s->core->store, &s->guard, s->key, w.n, w.f, w.v, 0, NULL, NULL);
    s->records = false;
    struct gw_session *gs = s->sess;
    s->sess = NULL;
    finish(s);
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
        adopt_failed(s, r->condition);
        return;
    }
    s->fresh = !r->resumed;
    gw_sm_window_free(&s->win);
    if (r->resumed) {
        /* The server goes on from where the store says: it resends what came after. */
        gw_sm_window_init(&s->win, WINDOW_MAX, s->rec_up_in_h);
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
        gw_sm_window_init(&s->win, WINDOW_MAX, 0);
        s->h_persisted = s->h_told = 0;
        s->cl_in = s->cl_in_acked = s->rec_cl_in_acked;
    }
    gw_login_free(lg);
    s->phase = P_LIVE;
    gw_session_set_state(s->sess, GW_SESSION_BOUND);
    attach_read(s);
}

void gw_jsess_adopt(struct gw_jmod *m, struct gw_jconn *conn, const char *sid,
                    const struct gw_jstore_rec *rec, struct gw_jresume_args *args)
{
    struct gw_jsess *s = jsess_new(m, sid);
    int rc = gw_session_open_as(m->core, GW_TRANSPORT_WS_JSON, gw_jconn_peer(conn), sid,
                                &session_ops, s, &s->sess);
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
        finish(s);
        if (gs)
            gw_session_release(gs);
        return;
    }
    gw_map_put(m->sessions, s->sid, s);
    s->conn = conn;
    s->args = args;
    s->attaching = s->adopting = s->detached = true;
    s->resumable = s->records = true;
    s->sm = true;
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
    s->up = gw_upstream_new(s->core, &up_handlers, s);
    int err = 0;
    s->login = gw_login_resume(s->core, s->up, rec->jid, &secret,
                               rec->sm_resume && *rec->sm_id ? rec->sm_id : NULL, rec->up_in_h,
                               plain_allowed(s), adopt_login_done, s, &err);
    gw_sasl_secret_wipe(&secret);
    if (!s->login)
        adopt_failed(s, "remote-connection-failed");
}

/* ---- the registry's requests ---- */

static void on_shutdown(void *owner, enum gw_close_reason why)
{
    struct gw_jsess *s = owner;
    if (s->releasing || s->phase == P_ENDED)
        return;
    switch (why) {
    case GW_CLOSE_SHUTDOWN:
        gw_jsess_release(s, GW_JRELEASE_SHUTDOWN, NULL, NULL);
        break;
    case GW_CLOSE_PREAUTH:
        end(s, "connection-timeout", "log in sooner", GW_WS_CLOSE_NORMAL);
        break;
    case GW_CLOSE_KICKED:
        end(s, "policy-violation", "ended by the operator", GW_WS_CLOSE_NORMAL);
        break;
    }
}

static const struct gw_session_ops session_ops = {on_shutdown};

/* ---- the module ---- */

struct gw_jmod *gw_jmod_new(struct gw_core *core)
{
    struct gw_jmod *m = gw_calloc(1, sizeof *m);
    m->core = core;
    m->sessions = gw_map_new();
    gw_jstore_channel(core->node_id, m->channel, sizeof m->channel);
    if (core->store)
        gw_store_subscribe(core->store, m->channel, gw_jresume_on_message, m);
    struct gw_metrics *mx = core->metrics;
    if (mx) {
        static const char resumes[] = "JSON session resumes by outcome";
        m->m_resumed =
            gw_metrics_counter(mx, "mxgw_json_resumes_total", resumes, "result=\"resumed\"");
        m->m_fresh = gw_metrics_counter(mx, "mxgw_json_resumes_total", resumes, "result=\"fresh\"");
        m->m_resume_failed =
            gw_metrics_counter(mx, "mxgw_json_resumes_total", resumes, "result=\"failed\"");
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

void gw_jmod_free(struct gw_jmod *m)
{
    if (!m)
        return;
    gw_jresume_abort_all(m);
    gw_map_free(m->sessions);
    free(m);
}
