/* Requests within one BOSH session (XEP-0124 §8-§15, XEP-0206 §5): the rid window and in-order
 * processing, holding and answering, acknowledgements, pause, key sequencing, the rules on
 * overactivity and polling, and the end of a session.
 *
 * Every request that is not answered at once is deferred in the HTTP layer and is a slot of the
 * window. Answers go out through one function (answer_slot), lowest rid first: a held request is
 * answered when a newer one pushes the count past 'hold', when payloads are queued for the
 * client (at the end of the loop iteration, so that everything that arrived in it leaves in one
 * response), or when 'wait' runs out. An ended session answers every pending request with its
 * terminal wrapper, and keeps that wrapper for a while to give it to the next request if none
 * was pending. */
#include "web/bosh_impl.h"

#include "gateway/err.h"
#include "gateway/log.h"
#include "gateway/mem.h"
#include "gateway/metrics.h"

#include <ctype.h>
#include <mbedtls/sha1.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REPORT_MIN_MS 2000 /* a missing response younger than this may still be in flight */

enum answer_mode {
    ANSWER_DATA,        /* queued payloads, kept for replay */
    ANSWER_QUIET,       /* no payloads, not kept (the answer to a pause request) */
    ANSWER_RECOVERABLE, /* type='error': the client resends (an out-of-order request expired) */
    ANSWER_GONE,        /* no payloads, kept: its connection closed, nothing can be sent */
};

uint64_t bosh_now_ms(const struct gw_bosh *b)
{
    return uv_now(b->core->loop);
}

const char *bosh_content_type(const struct bsess *s)
{
    return s && s->content_type ? s->content_type : "text/xml; charset=utf-8";
}

unsigned bosh_status(const struct bsess *s, const char *condition)
{
    return s && s->legacy ? gw_bosh_legacy_status(condition) : 200;
}

static void respond(struct bsess *s, struct gw_http_req *req, unsigned status, const char *data,
                    size_t len)
{
    gw_http_respond(req, status, bosh_content_type(s), data, len);
}

/* ---- timers ---- */

static void on_timer(uv_timer_t *t);

/* The inactivity clock runs while no request is pending (XEP-0124 §10). */
static void update_timer(struct bsess *s)
{
    if (s->ended)
        return;
    bool idle = gw_bosh_window_count(&s->win, GW_BOSH_HELD) == 0 &&
                gw_bosh_window_count(&s->win, GW_BOSH_AHEAD) == 0;
    if (!idle) {
        uv_timer_stop(&s->timer);
        return;
    }
    if (uv_is_active((uv_handle_t *)&s->timer))
        return; /* counting from the last answer already */
    uint64_t ms = s->pause_ms ? s->pause_ms : (uint64_t)s->inactivity_s * 1000;
    uv_timer_start(&s->timer, on_timer, ms, 0);
}

static void on_timer(uv_timer_t *t)
{
    struct bsess *s = t->data;
    s->busy++;
    if (s->ended) {
        /* Linger over: nobody came for the terminal wrapper. */
        s->lingering = false;
        s->keep_session = false;
        bosh_session_release(s);
    } else {
        GW_INFO("bosh.inactive", "session=%s after_ms=%llu", s->sess ? gw_session_id(s->sess) : "-",
                (unsigned long long)(s->pause_ms ? s->pause_ms : (uint64_t)s->inactivity_s * 1000));
        /* §10: terminate without telling the client; a later request finds no session. */
        bosh_end(s, NULL, NULL, 0);
        bosh_session_release(s);
    }
    s->busy--;
    if (s->freeing && s->busy == 0)
        bosh_session_release(s);
}

/* ---- answering ---- */

static void creation_attrs(struct bsess *s, struct gw_buf *a)
{
    gw_bosh_attr(a, "sid", s->sid);
    gw_bosh_attr_u64(a, "wait", s->wait_s);
    gw_bosh_attr_u64(a, "requests", s->requests);
    gw_bosh_attr_u64(a, "hold", s->hold);
    if (s->polling_s)
        gw_bosh_attr_u64(a, "polling", s->polling_s);
    gw_bosh_attr_u64(a, "inactivity", s->inactivity_s);
    if (s->maxpause_s)
        gw_bosh_attr_u64(a, "maxpause", s->maxpause_s);
    if (s->ver[0])
        gw_bosh_attr(a, "ver", s->ver);
    if (s->authid)
        gw_bosh_attr(a, "authid", s->authid);
    if (s->xbosh) {
        gw_buf_puts(a, " xmlns:xmpp='" GW_NS_XBOSH "' xmpp:version='1.0' xmpp:restartlogic='true'");
    }
    gw_buf_puts(a, " xmlns:stream='" GW_NS_STREAM "'");
}

/* Moves queued payloads (at least one, then up to cap bytes) into out. Returns how many. */
static size_t take_payloads(struct bsess *s, struct gw_buf *out, size_t cap)
{
    size_t n = 0, bytes = 0;
    while (s->qhead && (n == 0 || bytes + s->qhead->len <= cap)) {
        struct bosh_item *it = s->qhead;
        gw_buf_append(out, it->data, it->len);
        bytes += it->len;
        s->qhead = it->next;
        if (!s->qhead)
            s->qtail = NULL;
        s->qbytes -= it->len;
        free(it);
        n++;
    }
    size_t limit = s->b->core->cfg->limit_queue_bytes;
    if (s->up_paused && s->up && s->qbytes < limit / 2) {
        s->up_paused = false;
        gw_upstream_pause(s->up, false);
    }
    return n;
}

static void answer_slot(struct bsess *s, struct gw_bosh_slot *slot, enum answer_mode mode)
{
    struct gw_bosh *b = s->b;
    struct gw_buf attrs, out;
    gw_buf_init(&attrs, 0);
    gw_buf_init(&out, 0);
    if (mode == ANSWER_RECOVERABLE) {
        gw_buf_puts(&attrs, " type='error'");
    } else {
        bool creation = !s->created && slot->rid == s->creation_rid;
        if (creation) {
            creation_attrs(s, &attrs);
            s->created = true;
        }
        if (!s->told_from && s->from) {
            gw_bosh_attr(&attrs, "from", s->from);
            if (s->up && gw_upstream_secure(s->up))
                gw_bosh_attr(&attrs, "secure", "true");
            s->told_from = true;
        }
        if (s->acks) {
            uint64_t highest = s->win.next - 1; /* every rid up to it was received */
            if (creation)
                gw_bosh_attr_u64(&attrs, "ack", slot->rid);
            else if (highest != slot->rid)
                gw_bosh_attr_u64(&attrs, "ack", highest);
        }
        if (s->report_rid && mode != ANSWER_GONE) {
            gw_bosh_attr_u64(&attrs, "report", s->report_rid);
            gw_bosh_attr_u64(&attrs, "time", s->report_age);
            s->report_rid = 0;
        }
    }
    gw_bosh_wrapper_begin(&out, attrs.data);
    size_t n = 0;
    if (mode == ANSWER_DATA)
        n = take_payloads(s, &out, b->core->cfg->limit_queue_bytes / 2);
    gw_bosh_wrapper_end(&out);
    struct gw_http_req *req = slot->req;
    if (req)
        respond(s, req, 200, out.data, out.len);
    if (mode == ANSWER_RECOVERABLE)
        (*b->res_recoverable)++;
    else if (n)
        (*b->res_payload)++;
    else
        (*b->res_empty)++;
    if (mode == ANSWER_RECOVERABLE) {
        if (slot->state == GW_BOSH_AHEAD && slot->data) {
            gw_bosh_body_free(slot->data);
            free(slot->data);
        }
        gw_bosh_window_remove(&s->win, slot);
    } else
        gw_bosh_window_answered(&s->win, slot, out.data, out.len,
                                mode == ANSWER_DATA || mode == ANSWER_GONE, bosh_now_ms(b));
    if (mode != ANSWER_RECOVERABLE && mode != ANSWER_GONE)
        s->last_empty_answer = n == 0;
    gw_buf_free(&attrs);
    gw_buf_free(&out);
}

/* Answers every held request up to and including rid, oldest first. */
static void answer_held_upto(struct bsess *s, uint64_t rid, enum answer_mode last_mode)
{
    struct gw_bosh_slot *h;
    while ((h = gw_bosh_window_oldest_held(&s->win)) && h->rid <= rid)
        answer_slot(s, h, h->rid == rid ? last_mode : ANSWER_DATA);
}

void bosh_pump(struct bsess *s)
{
    if (s->ended)
        return;
    struct gw_bosh_slot *h;
    /* More held than 'hold': the oldest go, so that the client can always send. */
    while (gw_bosh_window_count(&s->win, GW_BOSH_HELD) > s->hold &&
           (h = gw_bosh_window_oldest_held(&s->win)))
        answer_slot(s, h, ANSWER_DATA);
    /* Payloads for the client leave as soon as a request can carry them. */
    while (s->qhead && (h = gw_bosh_window_oldest_held(&s->win)))
        answer_slot(s, h, ANSWER_DATA);
    /* A polling session (wait or hold 0) gets every answer at once. */
    if (s->wait_s == 0)
        while ((h = gw_bosh_window_oldest_held(&s->win)))
            answer_slot(s, h, ANSWER_DATA);
    update_timer(s);
}

static void on_check(uv_check_t *c)
{
    struct gw_bosh *b = c->data;
    struct bsess *list = b->dirty;
    b->dirty = NULL;
    uv_check_stop(c);
    while (list) {
        struct bsess *s = list;
        list = s->dirty_next;
        s->dirty = false;
        s->dirty_next = NULL;
        s->busy++;
        bosh_pump(s);
        s->busy--;
        if (s->freeing && s->busy == 0)
            bosh_session_release(s);
    }
}

void bosh_mark_dirty(struct bsess *s)
{
    if (s->dirty || s->freeing)
        return;
    s->dirty = true;
    s->dirty_next = s->b->dirty;
    s->b->dirty = s;
    s->b->check.data = s->b;
    uv_check_start(&s->b->check, on_check);
}

/* ---- deferral ---- */

static void on_expired(void *arg, struct gw_http_req *req)
{
    struct bsess *s = arg;
    struct gw_bosh_slot *slot = gw_bosh_window_find_req(&s->win, req);
    if (!slot)
        return; /* the layer answers 503: it cannot happen but must not hang */
    s->busy++;
    if (s->ended)
        respond(s, req, bosh_status(s, s->terminal_condition), s->terminal, s->terminal_len);
    else if (slot->state == GW_BOSH_AHEAD)
        answer_slot(s, slot, ANSWER_RECOVERABLE); /* the request before it never came */
    else
        answer_held_upto(s, slot->rid, ANSWER_DATA);
    bosh_pump(s);
    s->busy--;
    if (s->freeing && s->busy == 0)
        bosh_session_release(s);
}

static void on_gone(void *arg, struct gw_http_req *req)
{
    struct bsess *s = arg;
    struct gw_bosh_slot *slot = gw_bosh_window_find_req(&s->win, req);
    if (!slot)
        return;
    slot->req = NULL;
    if (slot->state != GW_BOSH_HELD || s->ended)
        return;
    /* §14.3: the client went away while we held its request (a page reload, a dropped
     * connection). It is answered now, empty, so that it no longer counts as outstanding (a
     * client that comes back at once is not overactive, §11) and what the server sends next
     * waits for a request that can carry it; the empty answer is kept in case the client
     * resends this rid. */
    s->busy++;
    answer_slot(s, slot, ANSWER_GONE);
    bosh_pump(s);
    s->busy--;
    if (s->freeing && s->busy == 0)
        bosh_session_release(s);
}

static const struct gw_http_defer_ops defer_ops = {on_expired, on_gone};

void bosh_defer(struct bsess *s, struct gw_http_req *req)
{
    uint64_t wait = s->wait_s ? (uint64_t)s->wait_s * 1000 : 1000;
    gw_http_defer(req, wait, &defer_ops, s);
}

/* ---- the end ---- */

/* XEP-0124 §17.2: the terminal binding conditions, the only label values of the counter. */
static const char *const known[] = {
    "bad-request",
    "host-gone",
    "host-unknown",
    "improper-addressing",
    "internal-server-error",
    "item-not-found",
    "other-request",
    "policy-violation",
    "remote-connection-failed",
    "remote-stream-error",
    "see-other-uri",
    "system-shutdown",
    "undefined-condition",
};

static uint64_t *terminal_counter(struct gw_bosh *b, const char *condition)
{
    char labels[64];
    snprintf(labels, sizeof labels, "condition=\"%s\"", condition);
    return gw_metrics_counter(b->core->metrics, "mxgw_bosh_terminal_total",
                              "BOSH terminal binding conditions sent, by condition", labels);
}

void bosh_register_terminal(struct gw_bosh *b)
{
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        terminal_counter(b, known[i]);
}

void bosh_count_terminal(struct gw_bosh *b, const char *condition)
{
    if (!condition)
        return;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(known[i], condition) == 0) {
            (*terminal_counter(b, known[i]))++;
            return;
        }
}

static void free_queue(struct bsess *s)
{
    while (s->qhead) {
        struct bosh_item *it = s->qhead;
        s->qhead = it->next;
        free(it);
    }
    s->qtail = NULL;
    s->qbytes = 0;
    while (s->parked) {
        struct bosh_parked *p = s->parked;
        s->parked = p->next;
        gw_xml_free(p->el);
        free(p);
    }
    s->parked_tail = NULL;
}

static void close_session(struct bsess *s)
{
    if (s->up) {
        gw_upstream_close(s->up);
        s->up = NULL;
    }
    if (s->sess) {
        struct gw_session *sess = s->sess;
        s->sess = NULL;
        gw_session_close(sess);
    }
}

void bosh_end(struct bsess *s, const char *condition, const char *extra, size_t extra_len)
{
    if (s->ended)
        return;
    struct gw_bosh *b = s->b;
    s->ended = true;
    s->terminal_condition = condition;
    struct gw_buf payload, out;
    gw_buf_init(&payload, 0);
    gw_buf_init(&out, 0);
    /* What the server sent and the client has not had yet goes with the end (§17.2). */
    take_payloads(s, &payload, SIZE_MAX);
    if (extra_len)
        gw_buf_append(&payload, extra, extra_len);
    gw_bosh_terminal(&out, condition, payload.data, payload.len);
    s->terminal = out.data;
    s->terminal_len = out.len;
    gw_buf_free(&payload);
    free_queue(s);
    bosh_count_terminal(b, condition);
    if (condition)
        GW_INFO("bosh.terminate", "session=%s condition=%s", s->sess ? gw_session_id(s->sess) : "-",
                condition);
    if (s->up) {
        gw_upstream_close(s->up);
        s->up = NULL;
    }
    bool told = false;
    for (unsigned i = 0; i < s->win.n;) {
        struct gw_bosh_slot *slot = &s->win.slots[i];
        if (slot->state == GW_BOSH_ANSWERED) {
            i++;
            continue;
        }
        if (slot->req) {
            respond(s, slot->req, bosh_status(s, condition), s->terminal, s->terminal_len);
            (*b->res_terminal)++;
            told = true;
        }
        if (slot->state == GW_BOSH_AHEAD)
            gw_bosh_body_free(slot->data), free(slot->data);
        gw_bosh_window_remove(&s->win, slot);
    }
    gw_bosh_window_clear(&s->win);
    uv_timer_stop(&s->timer);
    if (told || !condition || b->stopping) {
        /* Told, a normal end, inactivity: nothing to linger for. */
        s->freeing = true;
        return;
    }
    /* Nobody to tell now: keep the wrapper for the client's next request. On SIGTERM the
     * session stays registered meanwhile, so that the drain waits for it (briefly). */
    s->keep_session = strcmp(condition, "system-shutdown") == 0;
    if (!s->keep_session)
        close_session(s);
    s->lingering = true;
    uint64_t linger = s->keep_session ? BOSH_SHUTDOWN_MS : BOSH_LINGER_MS;
    uv_timer_start(&s->timer, on_timer, linger, 0);
}

static void on_timer_closed(uv_handle_t *h)
{
    struct bsess *s = h->data;
    free(s->terminal);
    free(s->domain);
    free(s->lang);
    free(s->content_type);
    free(s->from);
    free(s->authid);
    free(s);
}

void bosh_session_release(struct bsess *s)
{
    if (s->lingering) /* freed by the linger timer or by the next request */
        return;
    s->freeing = true;
    if (s->busy > 0 || uv_is_closing((uv_handle_t *)&s->timer))
        return;
    struct gw_bosh *b = s->b;
    if (s->dirty) {
        for (struct bsess **p = &b->dirty; *p; p = &(*p)->dirty_next)
            if (*p == s) {
                *p = s->dirty_next;
                break;
            }
        s->dirty = false;
    }
    if (gw_map_get(b->sessions, s->sid) == s) {
        gw_map_del(b->sessions, s->sid);
        b->count--;
        (*b->closed)++;
    }
    close_session(s);
    for (unsigned i = 0; i < s->win.n; i++)
        if (s->win.slots[i].state == GW_BOSH_AHEAD) {
            gw_bosh_body_free(s->win.slots[i].data);
            free(s->win.slots[i].data);
        }
    gw_bosh_window_clear(&s->win);
    free_queue(s);
    uv_close((uv_handle_t *)&s->timer, on_timer_closed);
}

/* Ends the session and gives req the terminal wrapper too (req is not one of its slots). */
static void end_and_answer(struct bsess *s, struct gw_http_req *req, const char *condition)
{
    bosh_end(s, condition, NULL, 0);
    respond(s, req, bosh_status(s, condition), s->terminal, s->terminal_len);
    (*s->b->res_terminal)++;
    s->lingering = false;
    uv_timer_stop(&s->timer);
    s->freeing = true;
}

/* ---- processing, in rid order ---- */

static void lower(char *s)
{
    for (; *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

/* XEP-0124 §15: each key hashes (SHA-1, hex) to the previous request's key or newkey. */
static bool check_key(struct bsess *s, const struct gw_bosh_body *body)
{
    if (s->key[0]) {
        if (!body->key)
            return false;
        unsigned char digest[20];
        char hex[41];
        if (mbedtls_sha1_ret((const unsigned char *)body->key, strlen(body->key), digest) != 0)
            return false;
        for (int i = 0; i < 20; i++)
            snprintf(hex + 2 * i, 3, "%02x", digest[i]);
        if (strlen(s->key) != 40 || gw_memeq_ct(hex, s->key, 40) != 0)
            return false;
        snprintf(s->key, sizeof s->key, "%s", body->newkey ? body->newkey : body->key);
    } else if (body->newkey) {
        snprintf(s->key, sizeof s->key, "%s", body->newkey);
    }
    lower(s->key);
    return true;
}

/* Processes a request whose slot is HELD (the rid is the next in order). body stays the
 * caller's. */
static void process(struct bsess *s, const struct gw_bosh_body *body)
{
    uint64_t rid = body->rid;
    if (!check_key(s, body)) {
        GW_INFO("bosh.bad_key", "session=%s", s->sess ? gw_session_id(s->sess) : "-");
        bosh_end(s, "item-not-found", NULL, 0);
        return;
    }
    s->pause_ms = 0; /* a request after a pause brings the normal inactivity back */
    if (body->restart) {
        /* XEP-0206 §5: a restart request's payloads are ignored. */
        if (body->npayloads)
            GW_DEBUG("bosh.restart_payload_ignored", "count=%zu", body->npayloads);
        const char *c = bosh_restart(s);
        if (c)
            bosh_end(s, c, NULL, 0);
        return;
    }
    for (struct gw_xml *el = body->root->children; el && !s->ended; el = el->next) {
        if (el->kind != GW_XML_ELEMENT)
            continue;
        const char *c = bosh_forward(s, el);
        if (c)
            bosh_end(s, c, NULL, 0);
    }
    if (s->ended)
        return;
    if (body->terminate) {
        /* §13: older held requests get what is queued, this one the end. */
        answer_held_upto(s, rid - 1, ANSWER_DATA);
        bosh_end(s, NULL, NULL, 0);
        return;
    }
    if (body->has_pause) {
        if (s->maxpause_s == 0 || body->pause > s->maxpause_s) {
            bosh_end(s, "policy-violation", NULL, 0);
            return;
        }
        /* §10: answer everything now, the pause itself without payloads. */
        answer_held_upto(s, rid, ANSWER_QUIET);
        s->pause_ms = body->pause * 1000;
        GW_DEBUG("bosh.pause", "seconds=%llu", (unsigned long long)body->pause);
    }
}

static struct gw_bosh_body *move_body(struct gw_bosh_body *body)
{
    struct gw_bosh_body *copy = gw_malloc(sizeof *copy);
    *copy = *body;
    memset(body, 0, sizeof *body);
    return copy;
}

void bosh_session_request(struct bsess *s, struct gw_http_req *req, struct gw_bosh_body *body)
{
    struct gw_bosh *b = s->b;
    s->busy++;
    if (s->ended) {
        respond(s, req, bosh_status(s, s->terminal_condition), s->terminal, s->terminal_len);
        (*b->res_terminal)++;
        s->lingering = false;
        s->keep_session = false;
        uv_timer_stop(&s->timer);
        s->freeing = true;
        goto out;
    }
    if (s->sess)
        gw_session_touch(s->sess);
    uv_timer_stop(&s->timer); /* a request: the inactivity clock restarts after the answers */
    struct gw_bosh_slot *slot;
    enum gw_bosh_rid_class cls = gw_bosh_window_classify(&s->win, body->rid, &slot);
    if (cls == GW_BOSH_RID_REPLAY || cls == GW_BOSH_RID_PENDING) {
        /* §14.3: a repeated request. A flood of them is refused (CHECKLIST C3). */
        if (++s->repeats > BOSH_MAX_REPEATS) {
            end_and_answer(s, req, "policy-violation");
            goto out;
        }
        if (cls == GW_BOSH_RID_REPLAY) {
            respond(s, req, 200, slot->response, slot->len);
            (*b->res_replayed)++;
            goto out;
        }
        /* Sent again while we still hold it: the new connection takes its place, and the old
         * one (most likely dead) gets a recoverable error. */
        struct gw_http_req *old = slot->req;
        slot->req = req;
        bosh_defer(s, req);
        if (old) {
            static const char err[] = "<body xmlns='" GW_NS_HTTPBIND "' type='error'/>";
            respond(s, old, 200, err, sizeof err - 1);
            (*b->res_recoverable)++;
        }
        goto out;
    }
    /* §11: more simultaneous requests than 'requests' (one more for pause or terminate). */
    unsigned outstanding =
        gw_bosh_window_count(&s->win, GW_BOSH_HELD) + gw_bosh_window_count(&s->win, GW_BOSH_AHEAD);
    unsigned limit = s->requests + (body->has_pause || body->terminate ? 1 : 0);
    if (outstanding + 1 > limit) {
        GW_INFO("bosh.overactive", "session=%s outstanding=%u",
                s->sess ? gw_session_id(s->sess) : "-", outstanding);
        end_and_answer(s, req, "policy-violation");
        goto out;
    }
    /* §14.2: above the window, or below what is kept. */
    if (cls == GW_BOSH_RID_OUTSIDE) {
        end_and_answer(s, req, "item-not-found");
        goto out;
    }
    /* §11 and §12: empty requests faster than 'polling'. Only the requests held from before
     * this one count: a later one that overtook it on another connection (waiting, ahead) was
     * sent after it, when the client did not need to poll. */
    uint64_t now = bosh_now_ms(b);
    bool empty = body->npayloads == 0 && !body->has_pause && !body->terminate && !body->restart;
    if (empty && s->polling_s && now - s->last_new_ms < (uint64_t)s->polling_s * 1000) {
        bool polling_session = s->wait_s == 0 || s->hold == 0;
        unsigned before = gw_bosh_window_count(&s->win, GW_BOSH_HELD);
        if (polling_session ? s->last_empty_answer : before + 1 >= s->requests) {
            GW_INFO("bosh.too_fast", "session=%s", s->sess ? gw_session_id(s->sess) : "-");
            end_and_answer(s, req, "policy-violation");
            goto out;
        }
    }
    s->last_new_ms = now;
    s->repeats = 0;
    /* §9.2: what the client has received; absent, everything before this request. */
    if (s->acks) {
        uint64_t ack = body->has_ack ? body->ack : body->rid - 1;
        uint64_t rrid, age;
        if (body->has_ack && gw_bosh_window_report(&s->win, ack, now, REPORT_MIN_MS, &rrid, &age)) {
            s->report_rid = rrid;
            s->report_age = age;
        }
        gw_bosh_window_ack(&s->win, ack);
    }
    bosh_defer(s, req);
    if (cls == GW_BOSH_RID_AHEAD) {
        /* §14.2: it waits for the one before it. */
        GW_DEBUG("bosh.ahead", "rid=%llu session=%s", (unsigned long long)body->rid,
                 s->sess ? gw_session_id(s->sess) : "-");
        uint64_t rid = body->rid; /* read before the move: argument order is unspecified */
        if (!gw_bosh_window_add(&s->win, rid, GW_BOSH_AHEAD, req, move_body(body)))
            end_and_answer(s, req, "internal-server-error");
        goto out;
    }
    if (!gw_bosh_window_add(&s->win, body->rid, GW_BOSH_HELD, req, NULL)) {
        end_and_answer(s, req, "internal-server-error");
        goto out;
    }
    GW_DEBUG("bosh.request", "rid=%llu session=%s payloads=%zu", (unsigned long long)body->rid,
             s->sess ? gw_session_id(s->sess) : "-", body->npayloads);
    process(s, body);
    while (!s->ended && (slot = gw_bosh_window_take_next(&s->win))) {
        struct gw_bosh_body *later = slot->data;
        slot->data = NULL;
        process(s, later);
        gw_bosh_body_free(later);
        free(later);
    }
    if (s->report_rid) { /* §9.2: tell the client now, not at the end of 'wait' */
        struct gw_bosh_slot *h = gw_bosh_window_oldest_held(&s->win);
        if (h)
            answer_slot(s, h, ANSWER_DATA);
    }
    bosh_pump(s);
out:
    gw_bosh_body_free(body);
    s->busy--;
    if (s->freeing && s->busy == 0)
        bosh_session_release(s);
}
