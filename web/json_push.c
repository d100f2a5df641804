/* The JSON protocol's push ops. Each op checks its JSON strictly (unknown keys, wrong types:
 * bad-request), asks push/ to do the work, and answers once push/ (and, for registrations, the
 * user's server) has. XEP-0357 enable/disable requests go out on the session's upstream stream
 * with ids of our own; their answers are taken out of the stream before they reach the client,
 * and a server that does not answer within ANSWER_MS counts as not supporting XEP-0357. */
#include "web/json_push.h"

#include "gateway/err.h"
#include "gateway/log.h"
#include "gateway/mem.h"
#include "gateway/rand.h"
#include "push/push.h"
#include "xmpp/xlate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ANSWER_MS   10000
#define MAX_PENDING 16
#define NS_PUSH     "urn:xmpp:push:0"
#define NS_DATA     "jabber:x:data"

enum pkind { P_ENABLE, P_DISABLE };

/* A request waiting for its answer: the push layer's, then possibly the server's. */
struct req {
    struct req *next;
    struct gw_json_push *s;
    enum pkind kind;
    char iq_id[40]; /* our XEP-0357 iq, once sent */
    char reg[GW_PUSH_ID_LEN + 1];
    char *client_id; /* the client's "id", echoed */
    int64_t expires;
    bool renewed;
    uint64_t deadline; /* loop ms */
};

struct gw_json_push {
    struct gw_core *core;
    void (*to_client)(void *ctx, struct gw_json_out *w);
    int (*to_server)(void *ctx, const struct gw_xml *el);
    void *ctx;
    unsigned inflight;   /* push-layer operations whose callback is still to come */
    struct req *waiting; /* sent to the server, waiting for its answer */
    size_t nreqs;        /* all requests, either stage */
    uv_timer_t timer;
    bool timer_open;
    bool ended;
};

/* ---- plumbing ---- */

static void maybe_free(struct gw_json_push *s);

static void timer_closed(uv_handle_t *h)
{
    struct gw_json_push *s = h->data;
    s->timer_open = false;
    maybe_free(s);
}

static void maybe_free(struct gw_json_push *s)
{
    if (s->ended && s->inflight == 0 && !s->timer_open && !s->waiting)
        free(s);
}

static void req_free(struct req *r)
{
    r->s->nreqs--;
    free(r->client_id);
    free(r);
}

static void send_json(struct gw_json_push *s, struct gw_json_out *w)
{
    if (s->ended)
        gw_json_out_free(w);
    else
        s->to_client(s->ctx, w);
}

static void send_error(struct gw_json_push *s, const char *cond, const char *text, const char *id)
{
    struct gw_json_out *w = gw_json_out_new(s->core->json_writers);
    gw_json_open(w);
    gw_xlate_error_fields(w, cond, text, id);
    gw_json_close(w);
    send_json(s, w);
}

/* The final answer of a request; server: whether the user's server confirmed XEP-0357. */
static void answer(struct req *r, bool server, const char *server_error)
{
    struct gw_json_out *w = gw_json_out_new(r->s->core->json_writers);
    gw_json_open(w);
    gw_json_kv(w, "op", r->kind == P_ENABLE ? "push.registered" : "push.unregistered");
    gw_json_kv(w, "reg", r->reg);
    if (r->kind == P_ENABLE) {
        gw_json_key(w, "expires");
        gw_json_integer(w, r->expires);
        gw_json_key(w, "renewed");
        gw_json_bool(w, r->renewed);
    }
    gw_json_key(w, "server");
    gw_json_bool(w, server);
    gw_json_kv(w, "server_error", server_error);
    gw_json_kv(w, "id", r->client_id);
    gw_json_close(w);
    send_json(r->s, w);
}

static void on_timer(uv_timer_t *t);

static void arm(struct gw_json_push *s)
{
    uint64_t first = 0;
    for (struct req *r = s->waiting; r; r = r->next)
        if (!first || r->deadline < first)
            first = r->deadline;
    if (!first) {
        uv_timer_stop(&s->timer);
        return;
    }
    uint64_t now = uv_now(s->core->loop);
    uv_timer_start(&s->timer, on_timer, first > now ? first - now : 0, 0);
}

static void on_timer(uv_timer_t *t)
{
    struct gw_json_push *s = t->data;
    uint64_t now = uv_now(s->core->loop);
    for (struct req **pr = &s->waiting; *pr;) {
        struct req *r = *pr;
        if (r->deadline <= now) {
            *pr = r->next;
            answer(r, false, "remote-server-timeout");
            req_free(r);
        } else {
            pr = &r->next;
        }
    }
    arm(s);
}

/* Sends the XEP-0357 enable or disable for r on the session's stream. Returns true if it went
 * out (the answer then waits for the server). */
static bool send_iq(struct req *r, const char *secret)
{
    struct gw_json_push *s = r->s;
    struct gw_push *p = s->core->push;
    const char *jid = p ? gw_push_jid(p) : NULL;
    if (!jid || s->ended)
        return false;
    snprintf(r->iq_id, sizeof r->iq_id, "mxgw-push-");
    if (gw_rand_hex(s->core->rand, 8, r->iq_id + 10, sizeof r->iq_id - 10) != 0)
        return false;
    struct gw_xml *iq = gw_xml_new(GW_NS_CLIENT, "iq");
    gw_xml_set_attr(iq, "type", "set");
    gw_xml_set_attr(iq, "id", r->iq_id);
    struct gw_xml *el = gw_xml_add_child(iq, NS_PUSH, r->kind == P_ENABLE ? "enable" : "disable");
    gw_xml_set_attr(el, "jid", jid);
    gw_xml_set_attr(el, "node", r->reg);
    if (secret) {
        /* XEP-0357 §5 publish options: the server sends the secret back with every publish,
         * which proves to us the publish comes from where we enabled it. */
        struct gw_xml *x = gw_xml_add_child(el, NS_DATA, "x");
        gw_xml_set_attr(x, "type", "submit");
        const char *vars[] = {"FORM_TYPE", "secret"};
        const char *vals[] = {"http://jabber.org/protocol/pubsub#publish-options", secret};
        for (int i = 0; i < 2; i++) {
            struct gw_xml *f = gw_xml_add_child(x, NULL, "field");
            gw_xml_set_attr(f, "var", vars[i]);
            gw_xml_add_text(gw_xml_add_child(f, NULL, "value"), vals[i], strlen(vals[i]));
        }
    }
    int rc = s->to_server(s->ctx, iq);
    gw_xml_free(iq);
    if (rc != 0)
        return false;
    r->deadline = uv_now(s->core->loop) + ANSWER_MS;
    r->next = s->waiting;
    s->waiting = r;
    arm(s);
    return true;
}

/* ---- push.register ---- */

static void on_registered(void *arg, const struct gw_push_registered *res)
{
    struct req *r = arg;
    struct gw_json_push *s = r->s;
    s->inflight--;
    if (s->ended) {
        req_free(r);
        maybe_free(s);
        return;
    }
    if (res->err) {
        send_error(s, res->err == GW_ELIMIT ? "policy-violation" : "service-unavailable", res->why,
                   r->client_id);
        req_free(r);
        return;
    }
    snprintf(r->reg, sizeof r->reg, "%s", res->id);
    r->expires = res->expires;
    r->renewed = res->replaced;
    if (!send_iq(r, res->secret)) {
        answer(r, false, NULL);
        req_free(r);
    }
}

static bool only_keys(const struct gw_json *obj, const char *const *keys, size_t n)
{
    for (const struct gw_json *m = obj->child; m; m = m->next) {
        bool known = false;
        for (size_t i = 0; i < n && !known; i++)
            known = strcmp(m->key, keys[i]) == 0;
        if (!known)
            return false;
    }
    return true;
}

static const struct gw_json *string_member(const struct gw_json *obj, const char *key, bool *bad)
{
    const struct gw_json *v = gw_json_get(obj, key);
    if (v && v->type != GW_JSON_STRING) {
        *bad = true;
        return NULL;
    }
    return v;
}

static void op_register(struct gw_json_push *s, const char *account, const struct gw_json *obj,
                        const char *id)
{
    static const char *const own[] = {"op", "id"};
    struct gw_push_spec spec;
    const char *room_list[GW_PUSH_ROOMS_MAX];
    char why[160];
    if (gw_push_spec_from_json(obj, own, 2, &spec, room_list, why, sizeof why) != 0) {
        send_error(s, "bad-request", why, id);
        return;
    }
    struct req *r = gw_calloc(1, sizeof *r);
    r->s = s;
    r->kind = P_ENABLE;
    r->client_id = id ? gw_strdup(id) : NULL;
    s->nreqs++;
    if (gw_push_register(s->core->push, account, &spec, on_registered, r, why, sizeof why) != 0) {
        send_error(s, "not-acceptable", why, id);
        req_free(r);
        return;
    }
    s->inflight++;
}

/* ---- push.unregister ---- */

static void on_unregistered(void *arg, int err)
{
    struct req *r = arg;
    struct gw_json_push *s = r->s;
    s->inflight--;
    if (s->ended) {
        req_free(r);
        maybe_free(s);
        return;
    }
    if (err) {
        send_error(s, err == GW_ENOTFOUND ? "item-not-found" : "service-unavailable",
                   err == GW_ENOTFOUND ? "no such registration" : "the store is unavailable",
                   r->client_id);
        req_free(r);
        return;
    }
    if (!send_iq(r, NULL)) {
        answer(r, false, NULL);
        req_free(r);
    }
}

static void op_unregister(struct gw_json_push *s, const char *account, const struct gw_json *obj,
                          const char *id)
{
    static const char *const keys[] = {"op", "id", "reg"};
    bool bad = !only_keys(obj, keys, 3);
    const struct gw_json *reg = string_member(obj, "reg", &bad);
    if (bad || !reg) {
        send_error(s, "bad-request", "push.unregister takes reg", id);
        return;
    }
    struct req *r = gw_calloc(1, sizeof *r);
    r->s = s;
    r->kind = P_DISABLE;
    r->client_id = id ? gw_strdup(id) : NULL;
    snprintf(r->reg, sizeof r->reg, "%.32s", reg->s);
    s->nreqs++;
    if (strlen(reg->s) != GW_PUSH_ID_LEN ||
        gw_push_unregister(s->core->push, account, r->reg, on_unregistered, r) != 0) {
        send_error(s, "item-not-found", "no such registration", id);
        req_free(r);
        return;
    }
    s->inflight++;
}

/* ---- push.info ---- */

static void op_info(struct gw_json_push *s, const char *id)
{
    struct gw_push *p = s->core->push;
    const struct gw_config *cfg = s->core->cfg;
    struct gw_json_out *w = gw_json_out_new(s->core->json_writers);
    gw_json_open(w);
    gw_json_kv(w, "op", "push.info");
    gw_json_key(w, "providers");
    gw_json_open_array(w);
    const char *names[] = {"webhook", "webpush", "unifiedpush"};
    for (int i = 0; i < 3; i++)
        if (gw_push_provider_enabled(p, names[i]))
            gw_json_cstr(w, names[i]);
    gw_json_close_array(w);
    gw_json_kv(w, "vapid", gw_push_vapid_key(p));
    gw_json_kv(w, "jid", gw_push_jid(p));
    gw_json_key(w, "window");
    gw_json_integer(w, (long long)(cfg->push_quiet_window_ms / 1000));
    gw_json_key(w, "max");
    gw_json_integer(w, cfg->push_max_per_account);
    gw_json_key(w, "sender");
    gw_json_bool(w, cfg->push_include_sender);
    gw_json_key(w, "body");
    gw_json_bool(w, cfg->push_include_body);
    gw_json_kv(w, "id", id);
    gw_json_close(w);
    send_json(s, w);
}

/* ---- the interface ---- */

void gw_json_push_op(struct gw_json_push **state, const struct gw_json_push_io *io, const char *op,
                     const struct gw_json *obj)
{
    const char *id = gw_json_str(obj, "id");
    struct gw_json_push *s = *state;
    if (!s) {
        s = gw_calloc(1, sizeof *s);
        s->core = io->core;
        s->to_client = io->to_client;
        s->to_server = io->to_server;
        s->ctx = io->ctx;
        uv_timer_init(io->core->loop, &s->timer);
        s->timer.data = s;
        s->timer_open = true;
        *state = s;
    }
    if (!io->core->push) {
        send_error(s, "feature-not-implemented", "push is off on this server", id);
        return;
    }
    if (strcmp(op, "push.info") == 0) {
        op_info(s, id);
        return;
    }
    bool reg = strcmp(op, "push.register") == 0, unreg = strcmp(op, "push.unregister") == 0;
    if (!reg && !unreg) {
        send_error(s, "bad-request", "unknown op", id);
        return;
    }
    if (!io->account) {
        send_error(s, "not-authorized", "log in first", id);
        return;
    }
    if (s->nreqs >= MAX_PENDING) {
        send_error(s, "policy-violation", "too many push requests in flight", id);
        return;
    }
    if (reg)
        op_register(s, io->account, obj, id);
    else
        op_unregister(s, io->account, obj, id);
}

bool gw_json_push_upstream(struct gw_json_push *s, struct gw_xml *el)
{
    if (!s || !s->waiting || strcmp(el->name, "iq") != 0)
        return false;
    const char *id = gw_xml_attr(el, "id"), *type = gw_xml_attr(el, "type");
    if (!id || !type || (strcmp(type, "result") != 0 && strcmp(type, "error") != 0))
        return false;
    for (struct req **pr = &s->waiting; *pr; pr = &(*pr)->next) {
        struct req *r = *pr;
        if (strcmp(r->iq_id, id) != 0)
            continue;
        *pr = r->next;
        const struct gw_xml *e = gw_xml_child(el, GW_NS_CLIENT, "error");
        const char *cond = e ? gw_xml_error_condition(e, GW_NS_STANZAS) : NULL;
        bool ok = strcmp(type, "result") == 0;
        GW_INFO("json.push_server", "reg=%.8s op=%s result=%s", r->reg,
                r->kind == P_ENABLE ? "enable" : "disable",
                ok     ? "ok"
                : cond ? cond
                       : "error");
        answer(r, ok, ok ? NULL : cond ? cond : "undefined-condition");
        req_free(r);
        arm(s);
        gw_xml_free(el);
        return true;
    }
    return false;
}

void gw_json_push_end(struct gw_json_push *s)
{
    if (!s || s->ended)
        return;
    s->ended = true;
    while (s->waiting) {
        struct req *r = s->waiting;
        s->waiting = r->next;
        req_free(r);
    }
    uv_timer_stop(&s->timer);
    uv_close((uv_handle_t *)&s->timer, timer_closed);
}
