/* Sends from any node: a node whose component link is down (a standby: the XMPP server lets
 * one connection hold a component) forwards a prepared send to the node that holds the link,
 * over the node bus, and answers the REST call with that node's answer.
 *
 * Who holds the link: the holder says so in the store, mxgw:component:<domain> = {node, since},
 * written when its link comes up and again every ADVERTISE_MS with a TTL of HOLDER_TTL_MS, and
 * deleted (only while it still names this node) when the link goes down or the node stops. The
 * record is a pointer, not a lock: the XMPP server decides who holds the component, and any
 * node whose link is up may claim the record (two nodes linked to two servers of a cluster may
 * both serve). A stale record, left by a holder that was killed, is found out by the first
 * forward: a publish to a node that is not running reaches no subscriber; that node then
 * deletes the record (guarded by the dead node's id).
 *
 * One forward: the asking node reads the record and publishes {"t":"rest.send", "req", "from",
 * "rid", "route", "sender", "id", "xml"} to the holder's channel, then waits at most the
 * longest operation wait (rest_iq_timeout, rest_muc_join_timeout) + FORWARD_SLACK_MS. The
 * holder runs the call as its own (rest_send_local: rooms are joined and iqs wait there) with
 * a deadline REMOTE_SLACK_MS past the same wait, and publishes {"t":"rest.sent", "req",
 * "status", "ctype", "retry", "body"} to the asker's channel, which relays status, Retry-After
 * and body unchanged. Outcomes the asker decides itself: no holder, or a holder that is gone:
 * 503 component-unavailable + Retry-After (nothing was sent: safe to retry), and a hint to its
 * own link to try now rather than at the end of its backoff, so that a standby takes over
 * within about a second of being needed; no answer in time: 504 holder-timeout (the send may
 * or may not have happened). Both messages are capped at GW_NODE_BUS_MAX bytes: a stanza that
 * does not fit gets 413, an answer that does not fit 502. */
#include "web/rest_impl.h"

#include "gateway/err.h"
#include "gateway/log.h"
#include "gateway/mem.h"
#include "gateway/metrics.h"
#include "gateway/rand.h"
#include "gateway/store.h"
#include "xmpp/jid.h"
#include "xmpp/stream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ADVERTISE_MS     5000
#define HOLDER_TTL_MS    15000
#define FORWARD_SLACK_MS 3000
#define REMOTE_SLACK_MS  1000
#define MAX_REMOTE       1024 /* calls served for other nodes at once */

enum { F_ANSWERED, F_NO_HOLDER, F_UNREACHABLE, F_TIMEOUT, F_FAILED };

static const char *route_name(enum rest_route route)
{
    return route == RR_MESSAGES ? "messages" : "stanzas";
}

static uint64_t op_wait(const struct gw_rest *r)
{
    const struct gw_config *cfg = r->core->cfg;
    return cfg->rest_iq_timeout_ms > cfg->rest_muc_join_timeout_ms ? cfg->rest_iq_timeout_ms
                                                                   : cfg->rest_muc_join_timeout_ms;
}

/* ---- deadlines ---- */

static void on_deadline(uv_timer_t *t);

void rest_forward_arm(struct gw_rest *r)
{
    if (!r->timers_open)
        return;
    uint64_t first = 0;
    for (struct rest_call *c = r->calls; c; c = c->next)
        if (c->deadline_ms && (!first || c->deadline_ms < first))
            first = c->deadline_ms;
    if (!first) {
        uv_timer_stop(&r->deadlines);
        return;
    }
    uint64_t now = uv_now(r->core->loop);
    uv_timer_start(&r->deadlines, on_deadline, first > now ? first - now : 0, 0);
}

static void on_deadline(uv_timer_t *t)
{
    struct gw_rest *r = t->data;
    uint64_t now = uv_now(r->core->loop);
    for (struct rest_call *c = r->calls, *next; c; c = next) {
        next = c->next; /* answering c frees c only */
        if (!c->deadline_ms || c->deadline_ms > now)
            continue;
        c->deadline_ms = 0;
        if (c->fwd_waiting) {
            (*r->m_forwards[F_TIMEOUT])++;
            GW_WARN("rest.forward_timeout", "rid=%s node=%s", c->rid, c->fwd_node);
            rest_problem(c, 504, "holder-timeout",
                         "the node holding the component link did not answer in time (the "
                         "stanza may or may not have been sent)",
                         0);
        } else if (c->remote_node) {
            rest_problem(c, 504, "timeout", "the operation did not complete in time", 0);
        }
    }
    rest_forward_arm(r);
}

/* ---- the holder record ---- */

static void advertise(struct gw_rest *r)
{
    if (!r->holder_key || !r->comp || !gw_component_up(r->comp))
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char since[24];
    snprintf(since, sizeof since, "%lld", (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
    struct gw_store_str f[2] = {gw_store_cstr("node"), gw_store_cstr("since")};
    struct gw_store_str v[2] = {gw_store_cstr(r->core->node_id), gw_store_cstr(since)};
    gw_store_hset(r->core->store, r->holder_key, 2, f, v, HOLDER_TTL_MS, NULL, NULL);
}

static void on_advertise(uv_timer_t *t)
{
    advertise(t->data);
}

/* Deletes the record while it names node. */
static void withdraw(struct gw_rest *r, const char *node)
{
    struct gw_store_guard g = {r->holder_key, "node", node};
    gw_store_del_if(r->core->store, &g, 0, NULL, NULL, NULL);
}

static void on_link(void *arg, bool up)
{
    struct gw_rest *r = arg;
    if (up) {
        GW_INFO("rest.holder", "domain=%s node=%s", gw_component_domain(r->comp), r->core->node_id);
        advertise(r);
        uv_timer_start(&r->advertise, on_advertise, ADVERTISE_MS, ADVERTISE_MS);
    } else {
        uv_timer_stop(&r->advertise);
        withdraw(r, r->core->node_id);
    }
}

/* ---- the asking node ---- */

void rest_forward_forget(struct rest_call *c)
{
    if (!c->fwd_waiting)
        return;
    c->fwd_waiting = false;
    gw_map_del(c->r->forwards, c->fwd_req);
    rest_call_unref(c);
}

static void unavailable(struct rest_call *c, int result, const char *detail)
{
    (*c->r->m_forwards[result])++;
    rest_problem(c, 503, "component-unavailable", detail, rest_retry_after_s(c->r));
}

static void no_holder(struct rest_call *c)
{
    if (c->r->comp)
        gw_component_retry_soon(c->r->comp);
    unavailable(c, F_NO_HOLDER, "no gateway node holds the component link to the XMPP server");
}

static void forward_published(void *arg, int err, const struct gw_store_reply *reply)
{
    struct rest_call *c = arg;
    struct gw_rest *r = c->r;
    if (c->fwd_waiting && err) {
        unavailable(c, F_FAILED,
                    "the node holding the component link cannot be reached (the store is "
                    "unavailable)");
    } else if (c->fwd_waiting && reply->integer == 0) {
        /* Nobody listens on that node's channel: it is gone, and its record with it. */
        GW_INFO("rest.holder_gone", "node=%s", c->fwd_node);
        if (!r->stopping)
            withdraw(r, c->fwd_node);
        if (r->comp)
            gw_component_retry_soon(r->comp);
        unavailable(c, F_UNREACHABLE,
                    "the node that held the component link is gone; another node takes the "
                    "link over");
    }
    rest_call_unref(c);
}

static void publish_forward(struct rest_call *c, const char *node)
{
    struct gw_rest *r = c->r;
    struct gw_buf xml;
    gw_buf_init(&xml, GW_NODE_BUS_MAX);
    int rc = gw_xml_serialize(&xml, c->st.el, NULL);
    if (rc) {
        gw_buf_free(&xml);
        if (rc == GW_ELIMIT)
            rest_problem(c, 413, "stanza-too-large",
                         "the stanza is too large to hand to the node holding the component link",
                         0);
        else
            rest_problem(c, 400, "bad-stanza", "the stanza cannot be serialized", 0);
        return;
    }
    if (gw_rand_hex(r->core->rand, 16, c->fwd_req, sizeof c->fwd_req) != 0) {
        gw_buf_free(&xml);
        unavailable(c, F_FAILED, "no randomness");
        return;
    }
    struct gw_json_out *w = gw_json_out_new(r->core->json_writers);
    gw_json_open(w);
    gw_json_kv(w, "t", "rest.send");
    gw_json_kv(w, "req", c->fwd_req);
    gw_json_kv(w, "from", r->core->node_id);
    gw_json_kv(w, "rid", c->rid);
    gw_json_kv(w, "route", route_name(c->route));
    gw_json_kv(w, "sender", c->sender);
    gw_json_kv(w, "id", c->orig_id);
    gw_json_key(w, "xml");
    gw_json_string(w, xml.data, xml.len);
    gw_json_close(w);
    gw_buf_free(&xml);
    size_t len;
    const char *text = gw_json_text(w, &len);
    if (len > GW_NODE_BUS_MAX) {
        gw_json_out_free(w);
        rest_problem(c, 413, "stanza-too-large",
                     "the stanza is too large to hand to the node holding the component link", 0);
        return;
    }
    snprintf(c->fwd_node, sizeof c->fwd_node, "%s", node);
    c->fwd_waiting = true;
    rest_call_ref(c); /* for the answer (or the deadline) */
    gw_map_put(r->forwards, c->fwd_req, c);
    c->deadline_ms = uv_now(r->core->loop) + op_wait(r) + FORWARD_SLACK_MS;
    rest_forward_arm(r);
    GW_INFO("rest.forward", "rid=%s route=%s node=%s", c->rid, route_name(c->route), node);
    rest_call_ref(c); /* for the publish */
    if (gw_node_bus_send(r->bus, node, text, len, forward_published, c) != 0)
        forward_published(c, GW_EUNAVAIL, NULL);
    gw_json_out_free(w);
}

static void got_holder(void *arg, int err, const struct gw_store_reply *reply)
{
    struct rest_call *c = arg;
    struct gw_rest *r = c->r;
    const char *node = err ? NULL : gw_store_reply_field(reply, "node");
    if (!c->req) {
        /* gone */
    } else if (err) {
        unavailable(c, F_FAILED,
                    "the component link is down on this node, and the store, which says which "
                    "node holds it, is unavailable");
    } else if (!node || strcmp(node, r->core->node_id) == 0 || strlen(node) >= 64) {
        no_holder(c);
    } else {
        publish_forward(c, node);
    }
    rest_call_unref(c);
}

void rest_forward_send(struct rest_call *c)
{
    struct gw_rest *r = c->r;
    if (!r->bus || !r->holder_key || r->stopping) {
        rest_problem(c, 503, "component-unavailable",
                     "the component link to the XMPP server is down", rest_retry_after_s(r));
        return;
    }
    rest_call_ref(c);
    if (gw_store_hgetall(r->core->store, r->holder_key, got_holder, c) != 0)
        got_holder(c, GW_EUNAVAIL, NULL);
}

/* The holder's answer to one of our forwards. */
static void on_sent(void *arg, const struct gw_json *obj)
{
    struct gw_rest *r = arg;
    const char *req = gw_json_str(obj, "req");
    struct rest_call *c = req ? gw_map_get(r->forwards, req) : NULL;
    if (!c || !c->req)
        return;
    long long status = 0, retry = 0;
    const char *ctype = gw_json_str(obj, "ctype");
    const struct gw_json *body = gw_json_get(obj, "body");
    bool json = ctype && strcmp(ctype, "application/json") == 0;
    bool problem = ctype && strcmp(ctype, GW_REST_PROBLEM_TYPE) == 0;
    if (!gw_json_int(obj, "status", &status) || status < 200 || status > 599 ||
        !(json || problem) || !body || body->type != GW_JSON_STRING) {
        GW_WARN("rest.forward_bad_answer", "rid=%s node=%s", c->rid, c->fwd_node);
        rest_problem(c, 502, "holder-failed",
                     "the node holding the component link gave an answer that cannot be used", 0);
        return;
    }
    (*r->m_forwards[F_ANSWERED])++;
    if (gw_json_int(obj, "retry", &retry) && retry > 0 && retry <= 86400) {
        char v[16];
        snprintf(v, sizeof v, "%lld", retry);
        gw_http_add_header(c->req, "Retry-After", v);
    }
    rest_answer(c, (unsigned)status, ctype, body->s, body->slen);
}

/* ---- the holding node ---- */

/* Publishes one answer to node's channel (through the store itself, which outlives the node
 * bus when the module stops). */
static void reply_to(struct gw_rest *r, const char *node, const char *req, unsigned status,
                     const char *ctype, const void *body, size_t len, unsigned retry)
{
    struct gw_json_out *w = gw_json_out_new(r->core->json_writers);
    gw_json_open(w);
    gw_json_kv(w, "t", "rest.sent");
    gw_json_kv(w, "req", req);
    gw_json_key(w, "status");
    gw_json_integer(w, status);
    gw_json_kv(w, "ctype", ctype ? ctype : "application/json");
    gw_json_key(w, "retry");
    gw_json_integer(w, retry);
    gw_json_key(w, "body");
    gw_json_string(w, body ? body : "", body ? len : 0);
    gw_json_close(w);
    size_t n;
    const char *text = gw_json_text(w, &n);
    if (n > GW_NODE_BUS_MAX) {
        struct gw_json_out *p = gw_json_out_new(r->core->json_writers);
        size_t plen;
        const char *ptext = gw_rest_problem(p, 502, "answer-too-large",
                                            "the answer is too large to hand back from the node "
                                            "holding the component link",
                                            NULL, &plen);
        reply_to(r, node, req, 502, GW_REST_PROBLEM_TYPE, ptext, plen, 0);
        gw_json_out_free(p);
        gw_json_out_free(w);
        return;
    }
    char channel[128];
    gw_node_bus_channel(node, channel, sizeof channel);
    gw_store_publish(r->core->store, channel, (struct gw_store_str){text, n}, NULL, NULL);
    gw_json_out_free(w);
}

void rest_forward_reply(struct rest_call *c, unsigned status, const char *ctype, const void *body,
                        size_t len)
{
    double ms = (double)(uv_hrtime() - c->start_ns) / 1e6;
    GW_INFO("rest.forward_served", "rid=%s node=%s route=%s status=%u ms=%.1f", c->rid,
            c->remote_node, route_name(c->route), status, ms);
    reply_to(c->r, c->remote_node, c->remote_req, status, ctype, body, len, c->retry_after_s);
}

/* A refusal before a call exists. */
static void refuse(struct gw_rest *r, const char *node, const char *req, const char *rid,
                   unsigned status, const char *slug, const char *detail, unsigned retry)
{
    struct gw_json_out *w = gw_json_out_new(r->core->json_writers);
    size_t len;
    const char *text = gw_rest_problem(w, status, slug, detail, rid, &len);
    reply_to(r, node, req, status, GW_REST_PROBLEM_TYPE, text, len, retry);
    gw_json_out_free(w);
}

static bool req_ok(const char *s)
{
    return s && strlen(s) == 32 && strspn(s, "0123456789abcdef") == 32;
}

static bool node_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n >= 64)
        return false;
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || *s == 0x7f)
            return false;
    return true;
}

/* Another node asks us to send. */
static void on_send(void *arg, const struct gw_json *obj)
{
    struct gw_rest *r = arg;
    const char *req = gw_json_str(obj, "req"), *from = gw_json_str(obj, "from");
    if (!req_ok(req) || !node_ok(from) || strcmp(from, r->core->node_id) == 0)
        return; /* nobody to answer */
    const char *rid = gw_json_str(obj, "rid"), *route = gw_json_str(obj, "route");
    const char *sender = gw_json_str(obj, "sender"), *id = gw_json_str(obj, "id");
    const struct gw_json *xml = gw_json_get(obj, "xml");
    bool messages = route && strcmp(route, "messages") == 0;
    if (!rid || !gw_rest_request_id_ok(rid) || !route ||
        (!messages && strcmp(route, "stanzas") != 0) || !sender || !*sender || !id || !*id ||
        !xml || xml->type != GW_JSON_STRING) {
        refuse(r, from, req, rid && gw_rest_request_id_ok(rid) ? rid : NULL, 502, "holder-failed",
               "the forwarded call is malformed", 0);
        return;
    }
    unsigned retry = rest_retry_after_s(r);
    if (r->stopping) {
        refuse(r, from, req, rid, 503, "unavailable", "the node holding the link is shutting down",
               1);
        return;
    }
    if (r->nremote >= MAX_REMOTE) {
        refuse(r, from, req, rid, 503, "component-unavailable",
               "the node holding the component link has too many calls in progress", retry);
        return;
    }
    const struct gw_config *cfg = r->core->cfg;
    struct gw_xml_limits lim = {GW_NODE_BUS_MAX, cfg->limit_xml_depth, cfg->limit_xml_attrs};
    struct gw_xml *el = NULL;
    const char *cond = NULL;
    if (gw_xml_parse_document(xml->s, xml->slen, &lim, &el, &cond) != 0 || !el->ns ||
        strcmp(el->ns, GW_NS_CLIENT) != 0 ||
        (strcmp(el->name, "message") != 0 && strcmp(el->name, "presence") != 0 &&
         strcmp(el->name, "iq") != 0) ||
        (messages && strcmp(el->name, "message") != 0)) {
        gw_xml_free(el);
        refuse(r, from, req, rid, 502, "holder-failed", "the forwarded stanza is malformed", 0);
        return;
    }
    struct rest_call *c =
        rest_call_new_remote(r, from, req, rid, messages ? RR_MESSAGES : RR_STANZAS);
    c->st.el = el;
    c->sender = gw_strdup(sender);
    c->orig_id = gw_strdup(id);
    c->deadline_ms = uv_now(r->core->loop) + op_wait(r) + REMOTE_SLACK_MS;
    rest_forward_arm(r);
    (*r->m_served)++;
    GW_INFO("rest.forward_run", "rid=%s node=%s route=%s", c->rid, from, route);
    if (!r->comp || !gw_component_up(r->comp))
        rest_problem(c, 503, "component-unavailable",
                     "the node asked does not hold the component link any more", retry);
    else
        rest_send_local(c);
}

/* ---- module ---- */

void rest_forward_init(struct gw_rest *r)
{
    r->forwards = gw_map_new();
    static const char *const results[] = {"result=\"answered\"", "result=\"no_holder\"",
                                          "result=\"unreachable\"", "result=\"timeout\"",
                                          "result=\"failed\""};
    for (int i = 0; i < 5; i++)
        r->m_forwards[i] = gw_metrics_counter(
            r->core->metrics, "mxgw_rest_forwards_total",
            "REST sends this node handed to the node holding the component link, by outcome",
            results[i]);
    r->m_served = gw_metrics_counter(r->core->metrics, "mxgw_rest_forwards_served_total",
                                     "REST sends this node ran for other nodes", NULL);
    uv_timer_init(r->core->loop, &r->deadlines);
    r->deadlines.data = r;
    uv_timer_init(r->core->loop, &r->advertise);
    r->advertise.data = r;
    r->timers_open = true;
    if (r->bus) {
        gw_node_bus_on(r->bus, "rest.send", on_send, r);
        gw_node_bus_on(r->bus, "rest.sent", on_sent, r);
    }
    /* A node with component_domain but no link of its own (component = off) forwards every
     * send; the domain is normalised as the link does it. */
    struct gw_jid j;
    const char *domain = r->comp ? gw_component_domain(r->comp) : NULL;
    bool parsed = !domain && r->core->cfg->component_domain[0] &&
                  gw_jid_parse(r->core->cfg->component_domain, &j) == 0;
    if (parsed && !j.local && !j.resource)
        domain = j.domain;
    if (domain) {
        size_t n = strlen("mxgw:component:") + strlen(domain) + 1;
        r->holder_key = gw_malloc(n);
        snprintf(r->holder_key, n, "mxgw:component:%s", domain);
    }
    if (parsed)
        gw_jid_free(&j);
    if (r->comp) {
        gw_component_watch(r->comp, on_link, r);
        if (gw_component_up(r->comp))
            on_link(r, true);
    }
}

static void timer_closed(uv_handle_t *h)
{
    struct gw_rest *r = h->data;
    r->timers_closing--;
    rest_maybe_free(r);
}

void rest_forward_stop(struct gw_rest *r)
{
    if (r->comp) {
        gw_component_unwatch(r->comp, on_link, r);
        withdraw(r, r->core->node_id);
    }
    if (!r->timers_open)
        return;
    r->timers_open = false;
    r->timers_closing = 2;
    uv_close((uv_handle_t *)&r->deadlines, timer_closed);
    uv_close((uv_handle_t *)&r->advertise, timer_closed);
}
