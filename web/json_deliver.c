/* JSON sessions: stanzas both ways. Server stanzas go to the attached client (numbered, kept until
 * acked), wait (while a resume runs or the ceiling is raised), are held (CSI), or go to the store
 * queue (detached); client stanzas go upstream and are acked as the server acks them. */
#include "web/json_session_impl.h"

#include "push/push.h"
#include "web/json_push.h"

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
    if (s->phase != GW_JS_ENDED) {
        if (err == 0) {
            if (a->counted)
                gw_js_mark_safe(s, a->u);
        } else if (err == GW_ESTALE) {
            gw_js_lost(s);
        } else if (s->releasing) {
            s->release_failed = true;
        } else {
            if (err == GW_ELIMIT)
                (*s->mod->m_overflow)++;
            GW_WARN("json.queue_failed", "session=%s err=\"%s\"", s->sid, gw_strerror(err));
            gw_js_end(s, "resource-constraint", "the session's queue could not take more", 1000);
        }
        if (s->phase != GW_JS_ENDED && s->releasing && s->q_inflight == 0)
            gw_js_release_persist(s);
    }
    free(a);
    gw_js_unref(s);
}

/* Appends one stanza, already numbered seq, to the store queue. */
static void append_raw(struct gw_jsess *s, uint32_t seq, const char *xml, size_t len, uint32_t u,
                       bool counted)
{
    size_t ilen;
    char *item = gw_jstore_item(seq, xml, len, &ilen);
    const struct gw_config *c = gw_js_cfg(s);
    if (s->q_count + 1 > c->json_queue_stanzas || s->q_bytes + ilen > c->json_queue_bytes) {
        free(item);
        (*s->mod->m_overflow)++;
        GW_INFO("json.queue_full", "session=%s stanzas=%zu bytes=%zu", s->sid, s->q_count,
                s->q_bytes);
        if (s->releasing)
            s->release_failed = true;
        else
            gw_js_end(s, "resource-constraint", "too many stanzas waiting for the client", 1000);
        return;
    }
    s->q_count++;
    s->q_bytes += ilen;
    s->q_inflight++;
    struct append *a = gw_malloc(sizeof *a);
    *a = (struct append){s, u, counted};
    gw_js_ref(s);
    gw_store_rpush_if(s->core->store, &s->guard, s->qkey, (struct gw_store_str){item, ilen},
                      c->json_queue_stanzas, c->json_detach_timeout_ms, appended, a);
    free(item);
}

/* The stanza as a document for the store (owned, NUL-terminated): the server's own bytes of it
 * when up_stanza() is delivering it and they stand alone, else its serialization. */
static char *stanza_text(struct gw_jsess *s, const struct gw_xml *el, size_t *len)
{
    struct iovec v[3];
    size_t n = el == s->as_written && s->up ? gw_upstream_stanza_doc(s->up, el, v) : 0;
    if (n == 0)
        return gw_js_serialize(el, len);
    *len = 0;
    for (size_t i = 0; i < n; i++)
        *len += v[i].iov_len;
    char *text = gw_malloc(*len + 1), *at = text;
    for (size_t i = 0; i < n; i++) {
        memcpy(at, v[i].iov_base, v[i].iov_len);
        at += v[i].iov_len;
    }
    *at = '\0';
    return text;
}

static void append_el(struct gw_jsess *s, struct gw_xml *el, uint32_t u, bool counted)
{
    size_t len;
    char *xml = stanza_text(s, el, &len);
    gw_xml_free(el);
    if (!xml) { /* cannot happen for a parsed stanza; never block the window on it */
        if (counted)
            gw_js_mark_safe(s, u);
        return;
    }
    append_raw(s, ++s->cl_out, xml, len, u, counted);
    free(xml);
}

/* Moves everything not yet safe into the store queue, in the order the client would get it:
 * stanzas sent and unacked (keeping their numbers), then held ones, then waiting ones. */
void gw_js_spill(struct gw_jsess *s)
{
    s->detached = true;
    s->inactive = false; /* a client that comes back starts active (XEP-0352) */
    s->flushing = false;
    s->flush_next = NULL;
    struct gw_js_item *it = s->items;
    s->items = s->items_tail = NULL;
    s->live_bytes = 0;
    while (it && s->phase != GW_JS_ENDED) {
        struct gw_js_item *next = it->next;
        if (!it->in_store)
            append_raw(s, it->seq, it->xml, it->xml_len, it->u, it->counted);
        free(it->xml);
        free(it);
        it = next;
    }
    while (it) {
        struct gw_js_item *next = it->next;
        free(it->xml);
        free(it);
        it = next;
    }
    struct gw_js_held *lists[2] = {s->held, s->pend};
    s->held = s->held_tail = s->pend = s->pend_tail = NULL;
    s->nheld = s->npend = 0;
    for (int i = 0; i < 2; i++) {
        for (struct gw_js_held *h = lists[i], *next; h; h = next) {
            next = h->next;
            if (s->phase != GW_JS_ENDED)
                append_el(s, h->el, h->u, h->counted);
            else
                gw_xml_free(h->el);
            free(h->key);
            free(h);
        }
    }
    if (s->phase != GW_JS_ENDED)
        gw_js_up_pause(s, GW_JS_UP_PEND | GW_JS_UP_WINDOW | GW_JS_UP_WS, false);
}

/* ---- delivery to the client ---- */

void gw_js_drop_conn(struct gw_jsess *s, const char *cond, const char *text, uint16_t code)
{
    struct gw_jconn *c = s->conn;
    s->conn = NULL;
    gw_jconn_close(c, cond, text, code, -1);
    gw_js_detach(s);
}

static void pend_push(struct gw_jsess *s, struct gw_xml *el, uint32_t u, bool counted, bool front)
{
    struct gw_js_held *h = gw_calloc(1, sizeof *h);
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
    gw_js_up_pause(s, GW_JS_UP_PEND, true); /* the server keeps the rest until these are through */
}

static bool blocked(const struct gw_jsess *s)
{
    return s->phase != GW_JS_LIVE || s->attaching || s->flushing || s->releasing ||
           s->ceiling_blocked;
}

/* Sends one stanza to the attached client and keeps it until acked. */
static void send_live(struct gw_jsess *s, struct gw_xml *el, uint32_t u, bool counted)
{
    if (s->resumable && gw_js_after(s->cl_out + 1, s->cl_max)) {
        /* Past the confirmed ceiling: wait for the store to raise it. */
        s->ceiling_blocked = true;
        pend_push(s, el, u, counted, true);
        gw_js_persist(s);
        return;
    }
    struct gw_json_out *w = gw_json_out_new(s->core->json_writers);
    size_t len = 0;
    char *xml = stanza_text(s, el, &len);
    struct gw_xlate_ctx ctx = gw_js_xlate_ctx(s);
    int rc = xml ? gw_xlate_stanza_json(el, &ctx, w) : GW_EINVAL;
    gw_xml_free(el);
    if (rc) { /* nothing JSON can carry: it never reaches the client, so it is handled */
        GW_WARN("json.untranslatable", "session=%s", s->sid);
        gw_json_out_free(w);
        free(xml);
        if (counted)
            gw_js_mark_safe(s, u);
        return;
    }
    struct gw_js_item *it = gw_calloc(1, sizeof *it);
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
    if (gw_js_to_client(s, w) == GW_ELIMIT) {
        gw_js_drop_conn(s, "policy-violation", "the client is not reading", GW_WS_CLOSE_POLICY);
        return;
    }
    s->live_bytes += len;
    uint32_t unacked = s->cl_out - s->cl_acked;
    size_t window = gw_js_cfg(s)->json_unacked_stanzas;
    size_t bytes = gw_js_cfg(s)->json_queue_bytes; /* all of it must fit the queue on a drop */
    if (unacked % GW_JS_ACK_REQUEST_EVERY == 0)
        gw_js_send_request(s);
    if (unacked >= 2 * window || s->live_bytes > bytes) {
        gw_js_drop_conn(s, "policy-violation", "too many stanzas unacknowledged",
                        GW_WS_CLOSE_POLICY);
        return;
    }
    if (unacked >= window || s->live_bytes >= bytes / 2) {
        if (!(s->up_pause & GW_JS_UP_WINDOW))
            gw_js_send_request(s); /* the server waits: ask the client to ack */
        gw_js_up_pause(s, GW_JS_UP_WINDOW, true);
    }
    if (s->conn && gw_jconn_queued(s->conn) > gw_js_cfg(s)->limit_queue_bytes / 2)
        gw_js_up_pause(s, GW_JS_UP_WS, true);
}

/* Held stanzas go out in the order they came, before whatever waits behind them. */
void gw_js_flush_held(struct gw_jsess *s)
{
    struct gw_js_held *h = s->held, *last = s->held_tail;
    if (!h)
        return;
    for (struct gw_js_held *x = h; x; x = x->next)
        x->flushed = true; /* sent even if the client is still inactive (a full hold) */
    last->next = s->pend;
    if (!s->pend)
        s->pend_tail = last;
    s->pend = h;
    s->npend += s->nheld;
    s->held = s->held_tail = NULL;
    s->nheld = 0;
    gw_js_up_pause(s, GW_JS_UP_PEND, true);
    gw_js_drain_pending(s);
}

static void hold(struct gw_jsess *s, struct gw_xml *el, uint32_t u, bool counted, char *key)
{
    if (key) { /* a newer presence or chat state supersedes the one held */
        for (struct gw_js_held **p = &s->held, *prev = NULL; *p; prev = *p, p = &(*p)->next) {
            struct gw_js_held *h = *p;
            if (h->key && strcmp(h->key, key) == 0) {
                *p = h->next;
                if (s->held_tail == h)
                    s->held_tail = prev;
                s->nheld--;
                if (h->counted)
                    gw_js_mark_safe(s, h->u);
                gw_xml_free(h->el);
                free(h->key);
                free(h);
                break;
            }
        }
    }
    struct gw_js_held *h = gw_calloc(1, sizeof *h);
    h->el = el;
    h->u = u;
    h->counted = counted;
    h->key = key;
    if (s->held_tail)
        s->held_tail->next = h;
    else
        s->held = h;
    s->held_tail = h;
    if (++s->nheld > gw_js_cfg(s)->json_csi_max_held)
        gw_js_flush_held(s);
}

void gw_js_deliver(struct gw_jsess *s, struct gw_xml *el, uint32_t u, bool counted)
{
    bool away = s->detached || s->inactive;
    char *key = NULL;
    enum gw_csi_class cls = away ? gw_csi_classify(el, s->mention, &key) : GW_CSI_URGENT;
    /* The client is away: push/ decides whether this stanza is worth waking the phone for
     * (its policy, the user's opt-ins), and never delays this path. */
    if (s->detached && s->core->push)
        gw_push_stanza(s->core->push, s->bare, el, s->mention);
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

void gw_js_drain_pending(struct gw_jsess *s)
{
    while (s->pend && !blocked(s)) {
        struct gw_js_held *h = s->pend;
        s->pend = h->next;
        if (!s->pend)
            s->pend_tail = NULL;
        s->npend--;
        if (h->flushed && !s->detached)
            send_live(s, h->el, h->u, h->counted);
        else
            gw_js_deliver(s, h->el, h->u, h->counted);
        free(h->key);
        free(h);
    }
    if (s->phase != GW_JS_ENDED && !s->pend)
        gw_js_up_pause(s, GW_JS_UP_PEND, false);
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
        gw_js_answer_request(s);
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
        /* Stanzas sent while the request was out were not asked about: ask now, or a client
         * paused at GW_JS_UP_PENDING_PAUSE would wait for an ack the server has no reason to
         * send (it answers requests). */
        if (s->upq.count >= GW_JS_UP_R_EVERY) {
            s->up_r_pending = true;
            gw_js_xml_sm(s, "r", NULL);
        }
        if (s->client_ack_requested) {
            s->client_ack_requested = false;
            gw_js_send_count(s, "a", s->cl_in_acked);
        }
        if (s->conn && s->upq.count < GW_JS_UP_PENDING_PAUSE / 2 &&
            gw_upstream_queued(s->up) <= gw_js_cfg(s)->limit_queue_bytes / 2)
            gw_jconn_pause(s->conn, GW_JPAUSE_UPSTREAM, false);
        gw_js_persist(s);
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
    if (s->phase == GW_JS_ENDED) {
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
    gw_js_check_store(s);
    if (s->phase == GW_JS_ENDED) {
        gw_xml_free(el);
        return;
    }
    uint32_t u = 0;
    bool counted = s->sm;
    if (counted && gw_sm_window_add(&s->win, &u) != 0) {
        gw_xml_free(el);
        gw_js_end(s, "resource-constraint", "too many stanzas in flight", 1000);
        return;
    }
    if (s->releasing) { /* never made safe here: the server gives it to the next node */
        gw_xml_free(el);
        return;
    }
    if (gw_json_push_upstream(s->push, el)) { /* the answer to mxgw's own XEP-0357 request */
        if (counted)
            gw_js_mark_safe(s, u);
        return;
    }
    if (s->pend || blocked(s)) {
        pend_push(s, el, u, counted, false);
    } else {
        s->as_written = el;
        gw_js_deliver(s, el, u, counted);
        s->as_written = NULL;
    }
}

void gw_js_login_failed(struct gw_jsess *s, const char *cond);

static void up_closed(void *arg, int err, const char *condition, const struct gw_xml *error_el)
{
    struct gw_jsess *s = arg;
    (void)error_el;
    struct gw_upstream *up = s->up;
    s->up = NULL;
    gw_upstream_free(up);
    if (s->phase == GW_JS_ENDED)
        return;
    if (s->login) {
        gw_js_login_failed(s, err ? "remote-connection-failed" : "remote-server-error");
        return;
    }
    if (s->releasing) {
        s->release_failed = true;
        return;
    }
    gw_js_end(s, err ? (condition ? condition : "undefined-condition") : "remote-stream-end",
              "the server ended the stream", GW_WS_CLOSE_NORMAL);
}

static void up_drained(void *arg)
{
    struct gw_jsess *s = arg;
    if (s->conn && s->upq.count < GW_JS_UP_PENDING_PAUSE)
        gw_jconn_pause(s->conn, GW_JPAUSE_UPSTREAM, false);
}

const struct gw_upstream_handlers gw_js_up_handlers = {up_open, up_stanza, up_closed, up_drained};

bool gw_js_plain_allowed(const struct gw_jsess *s)
{
    const char *host = gw_js_cfg(s)->upstream.host;
    return gw_js_cfg(s)->upstream_tls == GW_TLS_REQUIRED || strncmp(host, "127.", 4) == 0 ||
           strcmp(host, "::1") == 0 || strcmp(host, "localhost") == 0;
}

/* ---- client ops ---- */

bool gw_jsess_ready(const struct gw_jsess *s)
{
    return s->phase == GW_JS_LIVE && !s->attaching && !s->releasing;
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
    gw_session_touch(s->sess);
    gw_js_check_store(s);
    uint32_t c = ++s->cl_in;
    const char *id = gw_json_str(obj, "id");
    struct gw_xml *el = NULL;
    const char *cond = NULL;
    char why[160];
    struct gw_xlate_ctx ctx = gw_js_xlate_ctx(s);
    struct gw_buf xml = {0};
    ctx.xml = &xml;
    if (gw_xlate_json_stanza(obj, &ctx, &el, &cond, why, sizeof why) != 0) {
        gw_jconn_error(s->conn, cond, why, id);
        handled_here(s, c);
        return;
    }
    /* The size check's serialization is what goes upstream (with no size limit there is none,
     * and gw_upstream_send() serializes). */
    int rc = !s->up    ? GW_ECLOSED
             : xml.len ? gw_upstream_send_text(s->up, el, xml.data, xml.len)
                       : gw_upstream_send(s->up, el);
    gw_buf_free(&xml);
    gw_xml_free(el);
    if (rc == GW_ELIMIT) {
        gw_js_end(s, "policy-violation", "the server is not reading", GW_WS_CLOSE_POLICY);
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
        gw_js_end(s, "policy-violation", "too many stanzas unacknowledged by the server",
                  GW_WS_CLOSE_POLICY);
        return;
    }
    if (!s->up_r_pending && s->upq.count % GW_JS_UP_R_EVERY == 0) {
        s->up_r_pending = true;
        gw_js_xml_sm(s, "r", NULL);
    }
    if (s->upq.count >= GW_JS_UP_PENDING_PAUSE ||
        gw_upstream_queued(s->up) > gw_js_cfg(s)->limit_queue_bytes / 2)
        gw_jconn_pause(s->conn, GW_JPAUSE_UPSTREAM, true);
}

/* A stanza of mxgw's own on the user's stream (push's XEP-0357 enable): the server counts it
 * like the client's, so it takes a place in the server-ack queue, one that acks no client
 * stanza beyond those before it. */
static int send_own(void *ctx, const struct gw_xml *el)
{
    struct gw_jsess *s = ctx;
    if (!s->up || s->phase != GW_JS_LIVE)
        return GW_ECLOSED;
    int rc = gw_upstream_send(s->up, el);
    if (rc != 0 || !s->sm)
        return rc;
    uint32_t u;
    if (gw_sm_push(&s->upq, "", 0, (void *)(uintptr_t)s->cl_in, &u) != 0) {
        gw_js_end(s, "policy-violation", "too many stanzas unacknowledged by the server",
                  GW_WS_CLOSE_POLICY);
        return GW_ELIMIT;
    }
    return 0;
}

static void push_to_client(void *ctx, struct gw_json_out *w)
{
    gw_js_to_client(ctx, w);
}

void gw_jsess_push_op(struct gw_jsess *s, const char *op, const struct gw_json *obj)
{
    gw_session_touch(s->sess);
    struct gw_json_push_io io = {s->core, push_to_client, send_own, s, s->bare};
    gw_json_push_op(&s->push, &io, op, obj);
}

void gw_jsess_ack(struct gw_jsess *s, const struct gw_json *obj)
{
    gw_session_touch(s->sess);
    long long hv;
    if (!gw_json_int(obj, "h", &hv) || hv < 0 || hv > UINT32_MAX) {
        gw_jconn_error(s->conn, "bad-request", "\"a\" needs \"h\", a count", NULL);
        return;
    }
    uint32_t h = (uint32_t)hv, ahead = h - s->cl_acked, sent = s->cl_out - s->cl_acked;
    if (ahead > sent) {
        if (ahead <= UINT32_MAX / 2) /* acknowledges more than was sent: XEP-0198 §4 */
            gw_js_end(s, "undefined-condition", "handled-count-too-high", GW_WS_CLOSE_POLICY);
        return; /* an old count */
    }
    size_t from_store = 0, store_bytes = 0;
    for (uint32_t i = 0; i < ahead && s->items; i++) {
        struct gw_js_item *it = s->items;
        s->items = it->next;
        if (!s->items)
            s->items_tail = NULL;
        if (it->in_store) {
            from_store++;
            store_bytes += it->len;
        } else {
            s->live_bytes -= it->xml_len;
            if (it->counted)
                gw_sm_window_done(&s->win, it->u);
        }
        free(it->xml);
        free(it);
    }
    s->cl_acked = h;
    if (from_store) {
        s->q_count -= from_store;
        s->q_bytes -= store_bytes;
        gw_js_ref(s);
        gw_store_lpop_n_if(s->core->store, &s->guard, s->qkey, from_store, gw_js_ignore_reply, s);
    }
    if (s->resumable)
        gw_js_persist(s);
    else
        gw_js_ack_upstream(s);
    if (s->cl_out - s->cl_acked < gw_js_cfg(s)->json_unacked_stanzas / 2 &&
        s->live_bytes < gw_js_cfg(s)->json_queue_bytes / 4)
        gw_js_up_pause(s, GW_JS_UP_WINDOW, false);
}

void gw_jsess_request_ack(struct gw_jsess *s)
{
    if (s->sm && s->up && s->upq.count > 0) {
        s->client_ack_requested = true;
        if (!s->up_r_pending) {
            s->up_r_pending = true;
            gw_js_xml_sm(s, "r", NULL);
        }
    } else {
        gw_js_send_count(s, "a", s->cl_in_acked);
    }
}

void gw_jsess_logout(struct gw_jsess *s)
{
    gw_js_end(s, NULL, NULL, GW_WS_CLOSE_NORMAL);
}

void gw_jsess_set_inactive(struct gw_jsess *s, bool inactive)
{
    s->inactive = inactive;
    if (!inactive)
        gw_js_flush_held(s);
}

void gw_jsess_client_seen(struct gw_jsess *s)
{
    if (!s->token_prev || !s->resumable)
        return;
    s->token_prev = false;
    struct gw_jstore_fields w = {0};
    gw_jstore_add(&w, "token_prev", "");
    gw_jstore_add(&w, "reauth_prev", "");
    gw_js_ref(s);
    gw_store_hset_if(s->core->store, &s->guard, s->key, w.n, w.f, w.v, 0, gw_js_ignore_reply, s);
}

void gw_jsess_drained(struct gw_jsess *s)
{
    if (s->flushing)
        gw_js_flush_more(s);
    gw_js_up_pause(s, GW_JS_UP_WS, false);
}

void gw_jsess_conn_lost(struct gw_jsess *s)
{
    s->conn = NULL;
    if (s->phase == GW_JS_ENDED || s->releasing)
        return;
    if (s->attaching) /* the attach notices and leaves the session detached */
        return;
    gw_js_detach(s);
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
