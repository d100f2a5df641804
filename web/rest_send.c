/* REST sends: POST /api/v1/messages and /api/v1/stanzas through the component link, iqs that
 * wait for their answer, and the joins that a groupchat message needs.
 *
 * Rooms: a groupchat message goes from an occupant, so the sender's JID joins the room first
 * (as <sender>/rest, nick = the sender's localpart, no history) and stays joined for later
 * messages. Joined rooms are few and bounded (rest_muc_max_rooms): the least recently used is
 * left when a new one is needed. A join that creates the room (status 201: nobody had made
 * it) is undone at once, so a typo in a room JID never leaves a room behind: the call gets 404.
 * Calls waiting for a join keep their stanza; the join's answer (our own occupant presence, or
 * an error presence) sends or fails them all. When the link goes down every room is forgotten
 * and waiting calls get 503; the next message joins again.
 *
 * A node whose link is down (a standby: the server lets one node hold the component) hands
 * prepared calls to rest_forward.c, which has the holding node run rest_send_local() for it;
 * so rooms are joined, and iqs wait, on the node that holds the link. */
#include "web/rest_impl.h"

#include "gateway/err.h"
#include "gateway/log.h"
#include "gateway/mem.h"
#include "gateway/rand.h"
#include "xmpp/jid.h"
#include "xmpp/xlate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NS_MUC      "http://jabber.org/protocol/muc"
#define NS_MUC_USER "http://jabber.org/protocol/muc#user"
#define MAX_WAITING 256 /* calls waiting for one room's join */

enum room_state { ROOM_JOINING, ROOM_JOINED };

struct rest_room {
    struct rest_room *prev, *next;
    char *key;      /* "occupant|room" */
    char *occupant; /* our full JID */
    char *room;     /* bare room JID */
    char *nick;
    enum room_state state;
    uint64_t used_ms; /* uv_now of the last message, or of the join */
    struct rest_call *waiting;
    size_t nwaiting;
};

/* ---- answers ---- */

static void answer_sent(struct rest_call *c, unsigned kind)
{
    struct gw_json_out *w = gw_json_out_new(c->r->core->json_writers);
    gw_json_open(w);
    gw_json_kv(w, "id", c->orig_id);
    gw_json_kv(w, "from", gw_xml_attr(c->st.el, "from"));
    gw_json_kv(w, "to", gw_xml_attr(c->st.el, "to"));
    gw_json_close(w);
    (*c->r->m_sent[kind])++;
    rest_answer_json(c, 202, w);
    gw_json_out_free(w);
}

/* Maps gw_component_send's result. Returns true when sent. */
static bool send_result(struct rest_call *c, int rc)
{
    if (rc == 0)
        return true;
    if (rc == GW_EUNAVAIL || rc == GW_ELIMIT)
        rest_problem(c, 503, "component-unavailable",
                     rc == GW_EUNAVAIL ? "the component link to the XMPP server is down"
                                       : "the component link's queue is full",
                     rest_retry_after_s(c->r));
    else
        rest_problem(c, 400, "bad-stanza", "the stanza cannot be sent (check to and from)", 0);
    return false;
}

static void send_now(struct rest_call *c, unsigned kind)
{
    if (send_result(c, gw_component_send(c->r->comp, c->st.el)))
        answer_sent(c, kind);
}

/* ---- rooms ---- */

static void room_unlink_waiter(struct rest_room *rm, struct rest_call *c)
{
    for (struct rest_call **p = &rm->waiting; *p; p = &(*p)->room_next)
        if (*p == c) {
            *p = c->room_next;
            c->room_next = NULL;
            c->room = NULL;
            rm->nwaiting--;
            return;
        }
}

/* Fails or sends every waiting call. */
static void room_release(struct rest_room *rm, unsigned status, const char *slug,
                         const char *detail)
{
    while (rm->waiting) {
        struct rest_call *c = rm->waiting;
        rm->waiting = c->room_next;
        c->room_next = NULL;
        c->room = NULL;
        rm->nwaiting--;
        if (status == 0)
            send_now(c, 0);
        else
            rest_problem(c, status, slug, detail, status == 503 ? rest_retry_after_s(c->r) : 0);
        rest_call_unref(c);
    }
}

static void room_free(struct gw_rest *r, struct rest_room *rm)
{
    if (rm->prev)
        rm->prev->next = rm->next;
    else
        r->room_list = rm->next;
    if (rm->next)
        rm->next->prev = rm->prev;
    gw_map_del(r->rooms, rm->key);
    r->nrooms--;
    free(rm->key);
    free(rm->occupant);
    free(rm->room);
    free(rm->nick);
    free(rm);
}

static void send_presence(struct gw_rest *r, struct rest_room *rm, bool join)
{
    if (!r->comp)
        return;
    struct gw_xml *p = gw_xml_new(GW_NS_CLIENT, "presence");
    char to[2200];
    snprintf(to, sizeof to, "%s/%s", rm->room, rm->nick);
    gw_xml_set_attr(p, "to", to);
    gw_xml_set_attr(p, "from", rm->occupant);
    if (join) {
        struct gw_xml *x = gw_xml_add_child(p, NS_MUC, "x");
        gw_xml_set_attr(gw_xml_add_child(x, NULL, "history"), "maxstanzas", "0");
    } else {
        gw_xml_set_attr(p, "type", "unavailable");
    }
    gw_component_send(r->comp, p);
    gw_xml_free(p);
}

/* Makes room for one more: leaves the least recently used room. */
static void evict(struct gw_rest *r)
{
    struct rest_room *old = NULL;
    for (struct rest_room *rm = r->room_list; rm; rm = rm->next)
        if (!old || rm->used_ms < old->used_ms)
            old = rm;
    if (!old)
        return;
    GW_INFO("rest.room_leave", "room=%s reason=lru", old->room);
    if (old->state == ROOM_JOINED)
        send_presence(r, old, false);
    room_release(old, 503, "room-unavailable", "too many rooms are being joined at once");
    room_free(r, old);
}

/* The groupchat path: send now if joined, else join and wait. Takes charge of answering. */
static void send_groupchat(struct rest_call *c)
{
    struct gw_rest *r = c->r;
    struct gw_jid room, from;
    if (gw_jid_parse(gw_xml_attr(c->st.el, "to"), &room) != 0 || !room.local) {
        gw_jid_free(&room);
        rest_problem(c, 400, "bad-stanza", "a groupchat message goes to a room's bare JID", 0);
        return;
    }
    gw_jid_parse(c->sender, &from);
    char *room_bare = gw_jid_bare(&room);
    char occupant[2200];
    if (from.resource)
        snprintf(occupant, sizeof occupant, "%s", c->sender);
    else
        snprintf(occupant, sizeof occupant, "%s/rest", c->sender);
    const char *nick = from.local ? from.local : "mxgw";
    gw_xml_set_attr(c->st.el, "to", room_bare);
    gw_xml_set_attr(c->st.el, "from", occupant);
    char key[4500];
    snprintf(key, sizeof key, "%s|%s", occupant, room_bare);
    struct rest_room *rm = gw_map_get(r->rooms, key);
    uint64_t now = uv_now(r->core->loop);
    if (rm && rm->state == ROOM_JOINED) {
        rm->used_ms = now;
        send_now(c, 0);
    } else {
        if (!rm) {
            if (r->nrooms >= r->core->cfg->rest_muc_max_rooms)
                evict(r);
            rm = gw_calloc(1, sizeof *rm);
            rm->key = gw_strdup(key);
            rm->occupant = gw_strdup(occupant);
            rm->room = gw_strdup(room_bare);
            rm->nick = gw_strdup(nick);
            rm->state = ROOM_JOINING;
            rm->next = r->room_list;
            if (r->room_list)
                r->room_list->prev = rm;
            r->room_list = rm;
            r->nrooms++;
            gw_map_put(r->rooms, rm->key, rm);
        }
        if (rm->nwaiting >= MAX_WAITING) {
            rest_problem(c, 503, "room-unavailable", "too many messages wait for this room",
                         rest_retry_after_s(r));
        } else {
            /* (Re)send the join when it is new or the last one went unanswered too long. */
            if (!rm->waiting || now - rm->used_ms > r->core->cfg->rest_muc_join_timeout_ms) {
                rm->used_ms = now;
                GW_INFO("rest.room_join", "room=%s occupant=%s", rm->room, rm->occupant);
                send_presence(r, rm, true);
            }
            rest_call_ref(c);
            struct rest_call **tail = &rm->waiting; /* in order: sent as they came */
            while (*tail)
                tail = &(*tail)->room_next;
            *tail = c;
            c->room = rm;
            rm->nwaiting++;
        }
    }
    free(room_bare);
    gw_jid_free(&room);
    gw_jid_free(&from);
}

void rest_send_forget(struct rest_call *c)
{
    if (!c->room)
        return;
    room_unlink_waiter(c->room, c);
    rest_call_unref(c);
}

static bool has_status(const struct gw_xml *p, const char *code)
{
    const struct gw_xml *x = gw_xml_child(p, NS_MUC_USER, "x");
    for (const struct gw_xml *k = x ? gw_xml_next_element(x, NULL) : NULL; k;
         k = gw_xml_next_element(x, k)) {
        const char *v = gw_xml_attr(k, "code");
        if (strcmp(k->name, "status") == 0 && v && strcmp(v, code) == 0)
            return true;
    }
    return false;
}

static const char *error_condition(const struct gw_xml *p)
{
    const struct gw_xml *e = gw_xml_child(p, NULL, "error");
    const char *cond = e ? gw_xml_error_condition(e, GW_NS_STANZAS) : NULL;
    return cond ? cond : "undefined-condition";
}

/* Presence from a room to one of our occupants: the join's answer, or we were removed. */
static bool on_presence(void *arg, const struct gw_xml *p)
{
    struct gw_rest *r = arg;
    const char *from = gw_xml_attr(p, "from"), *to = gw_xml_attr(p, "to");
    struct gw_jid j;
    if (!from || !to || gw_jid_parse(from, &j) != 0)
        return false;
    char *bare = gw_jid_bare(&j);
    char key[4500];
    snprintf(key, sizeof key, "%s|%s", to, bare);
    free(bare);
    struct rest_room *rm = gw_map_get(r->rooms, key);
    bool ours = rm && j.resource && strcmp(j.resource, rm->nick) == 0;
    gw_jid_free(&j);
    if (!rm)
        return false;
    if (!ours)
        return true; /* another occupant's presence, sent to ours: nothing to do */
    const char *type = gw_xml_attr(p, "type");
    if (type && strcmp(type, "error") == 0) {
        const char *cond = error_condition(p);
        unsigned status =
            strcmp(cond, "conflict") == 0 ? 409
            : (strcmp(cond, "forbidden") == 0 || strcmp(cond, "not-allowed") == 0 ||
               strcmp(cond, "registration-required") == 0 || strcmp(cond, "not-authorized") == 0)
                ? 403
            : (strcmp(cond, "item-not-found") == 0 || strcmp(cond, "remote-server-not-found") == 0)
                ? 404
                : 502;
        char detail[160];
        snprintf(detail, sizeof detail, "the room refused the join (%s)", cond);
        GW_INFO("rest.room_refused", "room=%s condition=%s", rm->room, cond);
        room_release(rm, status, "room-join-failed", detail);
        room_free(r, rm);
        return true;
    }
    if (type && strcmp(type, "unavailable") == 0) {
        GW_INFO("rest.room_left", "room=%s", rm->room);
        room_release(rm, 502, "room-join-failed", "the room removed the sender");
        room_free(r, rm);
        return true;
    }
    if (type)
        return true;
    if (has_status(p, "201")) { /* we created it: nobody meant this room */
        GW_INFO("rest.room_unknown", "room=%s", rm->room);
        send_presence(r, rm, false);
        room_release(rm, 404, "room-not-found",
                     "no such room (a room must exist before REST "
                     "posts to it)");
        room_free(r, rm);
        return true;
    }
    if (rm->state != ROOM_JOINED)
        GW_INFO("rest.room_joined", "room=%s occupant=%s", rm->room, rm->occupant);
    rm->state = ROOM_JOINED;
    rm->used_ms = uv_now(r->core->loop);
    room_release(rm, 0, NULL, NULL);
    return true;
}

static void on_link(void *arg, bool up)
{
    struct gw_rest *r = arg;
    if (up)
        return;
    while (r->room_list) {
        struct rest_room *rm = r->room_list;
        room_release(rm, 503, "component-unavailable", "the component link went down");
        room_free(r, rm);
    }
}

void rest_send_init(struct gw_rest *r)
{
    r->rooms = gw_map_new();
    if (!r->comp)
        return;
    gw_component_on(r->comp, "presence", NULL, on_presence, r);
    gw_component_watch(r->comp, on_link, r);
}

void rest_send_detach(struct gw_rest *r)
{
    if (!r->comp)
        return;
    gw_component_off(r->comp, on_presence, r);
    gw_component_unwatch(r->comp, on_link, r);
}

void rest_send_stop(struct gw_rest *r)
{
    while (r->room_list) {
        struct rest_room *rm = r->room_list;
        room_release(rm, 503, "unavailable", "shutting down");
        room_free(r, rm);
    }
    gw_map_free(r->rooms);
    r->rooms = NULL;
}

/* ---- the common part of both endpoints ---- */

/* Parses the body, picks and checks the sender, sets from and id. Answers and returns false
 * on any refusal. */
static bool prepare(struct rest_call *c, bool message_only)
{
    struct gw_rest *r = c->r;
    const struct gw_config *cfg = r->core->cfg;
    size_t len;
    const char *body = gw_http_req_body(c->req, &len);
    int mt = gw_rest_media_type(gw_http_req_header(c->req, "Content-Type"));
    struct gw_xml_limits lim = {cfg->limit_stanza_bytes, cfg->limit_xml_depth,
                                cfg->limit_xml_attrs};
    char why[200];
    int rc = gw_rest_stanza_parse(body, len, mt == 2 ? GW_REST_XML : GW_REST_JSON, message_only,
                                  &lim, &c->st, why, sizeof why);
    if (rc) {
        rest_problem(c, rc == GW_ELIMIT ? 413 : 400,
                     rc == GW_ELIMIT ? "stanza-too-large" : "bad-stanza", why, 0);
        return false;
    }
    const char *sender = c->st.from ? c->st.from : gw_key_scope_default(&c->scope);
    if (!sender) {
        rest_problem(c, 400, "sender-required",
                     "this API key may send as several JIDs: name one in \"f\" (XML: from)", 0);
        return false;
    }
    if (!gw_key_scope_allows(&c->scope, sender)) {
        rest_problem(c, 403, "sender-not-allowed", "this API key may not send as that JID", 0);
        return false;
    }
    if (!r->comp && !r->holder_key) {
        rest_problem(c, 503, "component-unavailable",
                     "no component link is configured (component_domain)", rest_retry_after_s(r));
        return false;
    }
    c->sender = gw_strdup(sender);
    gw_xml_set_attr(c->st.el, "from", sender);
    const char *id = gw_xml_attr(c->st.el, "id");
    if (!id || !*id) {
        char fresh[33];
        gw_rand_hex(r->core->rand, 16, fresh, sizeof fresh);
        gw_xml_set_attr(c->st.el, "id", fresh);
    }
    c->orig_id = gw_strdup(gw_xml_attr(c->st.el, "id"));
    return true;
}

static bool is_groupchat(const struct gw_xml *el)
{
    const char *type = gw_xml_attr(el, "type");
    return strcmp(el->name, "message") == 0 && type && strcmp(type, "groupchat") == 0;
}

static bool is_request(const struct gw_xml *el)
{
    const char *type = gw_xml_attr(el, "type");
    return strcmp(el->name, "iq") == 0 && type &&
           (strcmp(type, "get") == 0 || strcmp(type, "set") == 0);
}

/* Here when this node holds the link, else through the node that does. */
static void dispatch(struct rest_call *c)
{
    if (c->r->comp && gw_component_up(c->r->comp))
        rest_send_local(c);
    else
        rest_forward_send(c);
}

void rest_send_message(struct rest_call *c)
{
    if (prepare(c, true))
        dispatch(c);
}

static void iq_answered(void *arg, int err, const struct gw_xml *reply)
{
    struct rest_call *c = arg;
    c->iq_pending = false;
    if (!rest_call_live(c)) {
        rest_call_unref(c);
        return;
    }
    if (err == GW_ETIMEDOUT) {
        rest_problem(c, 504, "iq-timeout", "the iq got no answer in time", 0);
    } else if (err && err != GW_EPROTO) {
        rest_problem(c, 503, "component-unavailable", "the component link went down",
                     rest_retry_after_s(c->r));
    } else {
        struct gw_xml *copy = gw_xml_copy(reply);
        gw_xml_set_attr(copy, "id", c->orig_id); /* the link used an id of its own */
        struct gw_json_out *w = gw_json_out_new(c->r->core->json_writers);
        gw_json_open(w);
        gw_json_kv(w, "id", c->orig_id);
        gw_json_kv(w, "type", gw_xml_attr(copy, "type"));
        gw_json_key(w, "stanza");
        struct gw_xlate_ctx ctx = {.own_jid = c->sender};
        gw_xlate_stanza_json(copy, &ctx, w);
        struct gw_buf b;
        gw_buf_init(&b, 0);
        if (gw_xml_serialize(&b, copy, NULL) == 0) {
            gw_json_key(w, "xml");
            gw_json_string(w, b.data, b.len);
        }
        gw_buf_free(&b);
        gw_json_close(w);
        (*c->r->m_sent[2])++;
        rest_answer_json(c, 200, w);
        gw_json_out_free(w);
        gw_xml_free(copy);
    }
    rest_call_unref(c);
}

void rest_send_stanza(struct rest_call *c)
{
    if (!prepare(c, false))
        return;
    struct gw_xml *el = c->st.el;
    if (is_request(el)) {
        if (!gw_xml_attr(el, "to")) {
            rest_problem(c, 400, "bad-stanza", "an iq needs \"to\"", 0);
            return;
        }
        /* The answer comes from the normalised JID (a lower-case domain): match on that. */
        struct gw_jid j;
        if (gw_jid_parse(gw_xml_attr(el, "to"), &j) == 0) {
            char *full = gw_jid_full(&j);
            gw_xml_set_attr(el, "to", full);
            free(full);
        }
        gw_jid_free(&j);
    }
    dispatch(c);
}

void rest_send_local(struct rest_call *c)
{
    struct gw_xml *el = c->st.el;
    unsigned kind = c->route == RR_MESSAGES ? 0 : 1;
    if (kind == 1 && is_request(el)) {
        rest_call_ref(c);
        c->iq_pending = true;
        int rc = gw_component_iq(c->r->comp, el, c->r->core->cfg->rest_iq_timeout_ms, iq_answered,
                                 c, &c->iq_handle);
        if (rc) {
            c->iq_pending = false;
            rest_call_unref(c);
            send_result(c, rc);
        }
    } else if (is_groupchat(el)) {
        send_groupchat(c);
    } else {
        send_now(c, kind);
    }
}
