/* REST sessions and push: GET /api/v1/sessions?jid= reads a user's session records from the
 * store (every node writes its own), DELETE /api/v1/sessions/{id} ends one on this node or asks
 * its node over the node bus ({"t":"kick"} answered by {"t":"kicked"}), and
 * /api/v1/users/{jid}/push hands over to the push module (web/rest_push.c) when it is on. */
#include "web/rest_impl.h"

#include "gateway/err.h"
#include "gateway/log.h"
#include "gateway/mem.h"
#include "gateway/rand.h"
#include "gateway/session.h"
#include "gateway/store.h"
#include "xmpp/jid.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LISTED  100 /* sessions listed for one JID */
#define KICK_WAIT   5000
#define SESSION_HEX 32

static bool session_id_ok(const char *s)
{
    return strlen(s) == SESSION_HEX && strspn(s, "0123456789abcdef") == SESSION_HEX;
}

/* The bare JID of s, normalised as the session records write it (lower-case ASCII). */
static char *bare_of(const char *s)
{
    struct gw_jid j;
    if (gw_jid_parse(s, &j) != 0 || !j.local) {
        gw_jid_free(&j);
        return NULL;
    }
    for (char *p = j.local; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    char *bare = gw_jid_bare(&j);
    gw_jid_free(&j);
    return bare;
}

/* ---- GET /sessions ---- */

static void finish_list(struct rest_call *c)
{
    gw_json_close_array(c->out);
    gw_json_close(c->out);
    rest_answer_json(c, 200, c->out);
}

static void got_record(void *arg, int err, const struct gw_store_reply *reply)
{
    struct rest_call *c = arg;
    c->pending--;
    if (c->req && err) {
        rest_problem(c, 503, "store-unavailable", "the session store is unavailable",
                     rest_retry_after_s(c->r));
    } else if (c->req && reply->n > 0 && gw_store_reply_field(reply, "id")) {
        /* A record that expired between the index and now is simply not there. */
        static const char *const names[] = {"id", "jid", "node", "transport", "state"};
        gw_json_open(c->out);
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
            gw_json_kv(c->out, names[i], gw_store_reply_field(reply, names[i]));
        static const char *const times[] = {"since", "last"};
        for (size_t i = 0; i < 2; i++) {
            const char *v = gw_store_reply_field(reply, times[i]);
            if (v) {
                gw_json_key(c->out, i ? "last_activity" : "since");
                gw_json_integer(c->out, strtoll(v, NULL, 10));
            }
        }
        gw_json_close(c->out);
        c->found++;
    }
    if (c->req && c->pending == 0)
        finish_list(c);
    rest_call_unref(c);
}

static void got_index(void *arg, int err, const struct gw_store_reply *reply)
{
    struct rest_call *c = arg;
    if (c->req && err) {
        rest_problem(c, 503, "store-unavailable", "the session store is unavailable",
                     rest_retry_after_s(c->r));
    } else if (c->req) {
        c->out = gw_json_out_new(c->r->core->json_writers);
        gw_json_open(c->out);
        gw_json_kv(c->out, "jid", c->arg2);
        gw_json_key(c->out, "sessions");
        gw_json_open_array(c->out);
        size_t n = reply->n < MAX_LISTED ? reply->n : MAX_LISTED;
        for (size_t i = 0; i < n; i++) {
            if (!session_id_ok(reply->items[i].ptr))
                continue;
            char key[64];
            snprintf(key, sizeof key, "mxgw:session:%s", reply->items[i].ptr);
            rest_call_ref(c);
            c->pending++;
            if (gw_store_hgetall(c->r->core->store, key, got_record, c) != 0) {
                c->pending--;
                rest_call_unref(c);
            }
        }
        if (c->pending == 0)
            finish_list(c);
    }
    rest_call_unref(c);
}

void rest_sessions_list(struct rest_call *c)
{
    const char *jid = gw_http_req_query(c->req, "jid");
    char *bare = jid ? bare_of(jid) : NULL;
    if (!bare) {
        rest_problem(c, 400, "bad-jid", "give ?jid= with a user's JID (local@domain)", 0);
        return;
    }
    c->arg2 = bare;
    char key[2200];
    snprintf(key, sizeof key, "mxgw:jid:%s", bare);
    rest_call_ref(c);
    if (gw_store_smembers(c->r->core->store, key, got_index, c) != 0)
        got_index(c, GW_EUNAVAIL, NULL);
}

/* ---- DELETE /sessions/{id} ---- */

/* Ends a session of this node. Returns true when it was here. */
static bool kick_here(struct gw_core *core, const char *sid)
{
    struct gw_session *s = gw_registry_find(core->reg, sid);
    if (!s)
        return false;
    GW_INFO("session.kick", "session=%s", sid);
    gw_session_shutdown(s, GW_CLOSE_KICKED);
    return true;
}

static void kick_published(void *arg, int err, const struct gw_store_reply *reply)
{
    struct rest_call *c = arg;
    if (c->req && c->kick_waiting && (err || reply->integer == 0)) {
        if (err)
            rest_problem(c, 503, "store-unavailable", "the other node cannot be reached",
                         rest_retry_after_s(c->r));
        else
            rest_problem(c, 404, "session-not-found", "the node holding the session is not running",
                         0);
    }
    rest_call_unref(c);
}

static void got_session(void *arg, int err, const struct gw_store_reply *reply)
{
    struct rest_call *c = arg;
    struct gw_rest *r = c->r;
    const char *node = err ? NULL : gw_store_reply_field(reply, "node");
    if (!c->req) {
        /* gone */
    } else if (err) {
        rest_problem(c, 503, "store-unavailable", "the session store is unavailable",
                     rest_retry_after_s(r));
    } else if (!node) {
        rest_problem(c, 404, "session-not-found", "no such session", 0);
    } else if (strcmp(node, r->core->node_id) == 0) {
        if (kick_here(r->core, c->arg))
            rest_answer(c, 204, NULL, NULL, 0);
        else
            rest_problem(c, 404, "session-not-found", "no such session", 0);
    } else if (!r->bus) {
        rest_problem(c, 503, "unavailable", "no node bus", rest_retry_after_s(r));
    } else {
        gw_rand_hex(r->core->rand, 16, c->kick_req, sizeof c->kick_req);
        struct gw_json_out *w = gw_json_out_new(r->core->json_writers);
        gw_json_open(w);
        gw_json_kv(w, "t", "kick");
        gw_json_kv(w, "sid", c->arg);
        gw_json_kv(w, "from", r->core->node_id);
        gw_json_kv(w, "req", c->kick_req);
        gw_json_close(w);
        size_t len;
        const char *text = gw_json_text(w, &len);
        c->kick_waiting = true;
        rest_call_ref(c); /* for the answer */
        gw_map_put(r->kicks, c->kick_req, c);
        rest_call_ref(c); /* for the publish */
        GW_INFO("rest.kick_remote", "rid=%s session=%s node=%s", c->rid, c->arg, node);
        if (gw_node_bus_send(r->bus, node, text, len, kick_published, c) != 0)
            kick_published(c, GW_EUNAVAIL, NULL);
        gw_json_out_free(w);
    }
    rest_call_unref(c);
}

void rest_sessions_kick(struct rest_call *c)
{
    if (!session_id_ok(c->arg)) {
        rest_problem(c, 404, "session-not-found", "no such session", 0);
        return;
    }
    char key[64];
    snprintf(key, sizeof key, "mxgw:session:%s", c->arg);
    rest_call_ref(c);
    if (gw_store_hgetall(c->r->core->store, key, got_session, c) != 0)
        got_session(c, GW_EUNAVAIL, NULL);
}

/* Another node asks us to end one of our sessions. */
static void on_kick(void *arg, const struct gw_json *obj)
{
    struct gw_rest *r = arg;
    const char *sid = gw_json_str(obj, "sid"), *from = gw_json_str(obj, "from");
    const char *req = gw_json_str(obj, "req");
    if (r->stopping || !sid || !from || !req || !session_id_ok(sid) || strlen(from) >= 64 ||
        strlen(req) > 32)
        return;
    bool ok = kick_here(r->core, sid);
    struct gw_json_out *w = gw_json_out_new(r->core->json_writers);
    gw_json_open(w);
    gw_json_kv(w, "t", "kicked");
    gw_json_kv(w, "req", req);
    gw_json_key(w, "ok");
    gw_json_bool(w, ok);
    gw_json_close(w);
    size_t len;
    const char *text = gw_json_text(w, &len);
    gw_node_bus_send(r->bus, from, text, len, NULL, NULL);
    gw_json_out_free(w);
}

/* The answer to one of our kicks. */
static void on_kicked(void *arg, const struct gw_json *obj)
{
    struct gw_rest *r = arg;
    const char *req = gw_json_str(obj, "req");
    const struct gw_json *ok = gw_json_get(obj, "ok");
    struct rest_call *c = req ? gw_map_get(r->kicks, req) : NULL;
    if (!c)
        return;
    gw_map_del(r->kicks, req);
    c->kick_waiting = false;
    if (ok && ok->type == GW_JSON_BOOL && ok->b)
        rest_answer(c, 204, NULL, NULL, 0);
    else
        rest_problem(c, 404, "session-not-found", "no such session", 0);
    rest_call_unref(c);
}

void rest_sessions_init(struct gw_rest *r)
{
    if (!r->bus)
        return;
    gw_node_bus_on(r->bus, "kick", on_kick, r);
    gw_node_bus_on(r->bus, "kicked", on_kicked, r);
}

/* ---- /users/{jid}/push ---- */

static void push_done(void *ctx, unsigned status, const char *body, size_t len)
{
    struct rest_call *c = ctx;
    if (c->req) {
        if (status == 200 || status == 201) {
            rest_answer(c, status, "application/json", body, len);
        } else if (status == 204) {
            rest_answer(c, 204, NULL, NULL, 0);
        } else {
            char detail[256];
            snprintf(detail, sizeof detail, "%.*s", (int)(len < 255 ? len : 255), body ? body : "");
            const char *slug = status == 400   ? "bad-registration"
                               : status == 404 ? "registration-not-found"
                               : status == 409 ? "too-many-registrations"
                               : status == 503 ? "push-unavailable"
                                               : "push-refused";
            rest_problem(c, status, slug, detail, status == 503 ? rest_retry_after_s(c->r) : 0);
        }
    }
    rest_call_unref(c);
}

void rest_push(struct rest_call *c)
{
    struct gw_rest *r = c->r;
    char *bare = bare_of(c->arg);
    if (!bare) {
        rest_problem(c, 400, "bad-jid", "the path names no user JID (local@domain)", 0);
        return;
    }
    free(c->arg2);
    c->arg2 = bare;
    if (!r->push) {
        rest_problem(c, 501, "not-implemented",
                     "push is off on this gateway (push = no): it keeps no registrations", 0);
        return;
    }
    enum gw_http_method m = gw_http_req_method(c->req);
    rest_call_ref(c);
    if (m == GW_HTTP_PUT) {
        size_t len;
        const char *body = gw_http_req_body(c->req, &len);
        struct gw_json *obj = NULL;
        char why[160];
        if (gw_json_parse(body, len, r->core->cfg->rest_body_bytes, &obj, why, sizeof why) != 0) {
            rest_problem(c, 400, "bad-registration", why, 0);
            rest_call_unref(c);
            return;
        }
        r->push->put(r->push_arg, bare, obj, push_done, c);
        gw_json_free(obj);
    } else if (m == GW_HTTP_DELETE) {
        r->push->del(r->push_arg, bare, gw_http_req_query(c->req, "id"), push_done, c);
    } else {
        r->push->list(r->push_arg, bare, push_done, c);
    }
}
