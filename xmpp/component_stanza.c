/* The component link's stanza side: handlers for inbound stanzas, the link's own answers
 * (disco#info, ping, service-unavailable for what nobody handles), sends checked for their
 * addresses, and iqs waiting for their answers (matched by id and by the answering JID, each
 * with a timer of its own). */
#include "xmpp/component_impl.h"

#include "gateway/err.h"
#include "gateway/log.h"
#include "gateway/mem.h"
#include "gateway/metrics.h"
#include "gateway/rand.h"
#include "xmpp/jid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- pending iqs ---- */

static void pending_closed(uv_handle_t *h)
{
    struct pending *p = h->data;
    struct gw_component *c = p->comp;
    free(p->to);
    free(p);
    c->handles--;
    component_maybe_finish(c);
}

/* Unlinks p and releases it; the callback is not called. */
static void pending_drop(struct gw_component *c, struct pending *p)
{
    gw_map_del(c->pending, p->id);
    if (p->prev)
        p->prev->next = p->next;
    else
        c->plist = p->next;
    if (p->next)
        p->next->prev = p->prev;
    uv_timer_stop(&p->timer);
    uv_close((uv_handle_t *)&p->timer, pending_closed);
}

static void pending_finish(struct gw_component *c, struct pending *p, int err,
                           const struct gw_xml *reply)
{
    gw_component_iq_cb cb = p->cb;
    void *arg = p->arg;
    pending_drop(c, p);
    cb(arg, err, reply);
}

static void on_iq_timeout(uv_timer_t *t)
{
    struct pending *p = t->data;
    pending_finish(p->comp, p, GW_ETIMEDOUT, NULL);
}

void component_fail_pending(struct gw_component *c, int err)
{
    while (c->plist)
        pending_finish(c, c->plist, err, NULL);
}

void component_free_lists(struct gw_component *c)
{
    while (c->handlers) {
        struct handler *h = c->handlers;
        c->handlers = h->next;
        free(h->name);
        free(h->ns);
        free(h);
    }
    while (c->watchers) {
        struct watcher *w = c->watchers;
        c->watchers = w->next;
        free(w);
    }
    struct strnode **lists[] = {&c->features, &c->identities};
    for (int i = 0; i < 2; i++)
        while (*lists[i]) {
            struct strnode *n = *lists[i];
            *lists[i] = n->next;
            free(n->a);
            free(n->b);
            free(n->c);
            free(n);
        }
}

/* ---- inbound dispatch ---- */

static bool handler_matches(const struct handler *h, const struct gw_xml *el)
{
    if (strcmp(h->name, el->name) != 0)
        return false;
    if (!h->ns)
        return true;
    for (const struct gw_xml *k = gw_xml_next_element(el, NULL); k; k = gw_xml_next_element(el, k))
        if (k->ns && strcmp(k->ns, h->ns) == 0)
            return true;
    return false;
}

static void answer_disco(struct gw_component *c, const struct gw_xml *iq, const struct gw_xml *q)
{
    if (gw_xml_attr(q, "node")) {
        gw_component_reply_error(c, iq, "cancel", "item-not-found");
        return;
    }
    struct gw_xml *res = gw_xml_new(NS_DISCO_INFO, "query");
    for (const struct strnode *n = c->identities; n; n = n->next) {
        struct gw_xml *id = gw_xml_add_child(res, NULL, "identity");
        gw_xml_set_attr(id, "category", n->a);
        gw_xml_set_attr(id, "type", n->b);
        if (n->c)
            gw_xml_set_attr(id, "name", n->c);
    }
    const char *builtin[] = {NS_DISCO_INFO, NS_PING};
    for (int i = 0; i < 2; i++)
        gw_xml_set_attr(gw_xml_add_child(res, NULL, "feature"), "var", builtin[i]);
    for (const struct strnode *n = c->features; n; n = n->next)
        gw_xml_set_attr(gw_xml_add_child(res, NULL, "feature"), "var", n->a);
    gw_component_reply_result(c, iq, res);
    gw_xml_free(res);
}

static void on_iq_answer(struct gw_component *c, const struct gw_xml *el, bool error)
{
    const char *id = gw_xml_attr(el, "id");
    struct pending *p = id ? gw_map_get(c->pending, id) : NULL;
    const char *from = gw_xml_attr(el, "from");
    if (!p || !from || strcmp(from, p->to) != 0) {
        GW_DEBUG("component.iq_unmatched", "domain=%s", c->domain);
        return;
    }
    pending_finish(c, p, error ? GW_EPROTO : 0, el);
}

void component_dispatch(struct gw_component *c, struct gw_xml *el)
{
    bool is_iq = strcmp(el->name, "iq") == 0;
    const char *type = gw_xml_attr(el, "type");
    if (is_iq && type && (strcmp(type, "result") == 0 || strcmp(type, "error") == 0)) {
        on_iq_answer(c, el, strcmp(type, "error") == 0);
        return;
    }
    if (is_iq && (!type || (strcmp(type, "get") != 0 && strcmp(type, "set") != 0))) {
        gw_component_reply_error(c, el, "modify", "bad-request");
        return;
    }
    for (struct handler *h = c->handlers; h; h = h->next)
        if (handler_matches(h, el) && h->fn(h->arg, el))
            return;
    if (!is_iq)
        return; /* messages and presence nobody wants are dropped, as a server would */
    const struct gw_xml *q = gw_xml_next_element(el, NULL);
    if (q && strcmp(type, "get") == 0 && gw_xml_is(q, NS_DISCO_INFO, "query"))
        answer_disco(c, el, q);
    else if (q && strcmp(type, "get") == 0 && gw_xml_is(q, NS_PING, "ping"))
        gw_component_reply_result(c, el, NULL);
    else
        gw_component_reply_error(c, el, "cancel", "service-unavailable");
}

void gw_component_on(struct gw_component *c, const char *name, const char *child_ns,
                     gw_component_handler fn, void *arg)
{
    struct handler *h = gw_calloc(1, sizeof *h);
    h->name = gw_strdup(name);
    h->ns = child_ns ? gw_strdup(child_ns) : NULL;
    h->fn = fn;
    h->arg = arg;
    struct handler **tail = &c->handlers;
    while (*tail)
        tail = &(*tail)->next;
    *tail = h;
}

void gw_component_off(struct gw_component *c, gw_component_handler fn, void *arg)
{
    for (struct handler **ph = &c->handlers; *ph;) {
        struct handler *h = *ph;
        if (h->fn == fn && h->arg == arg) {
            *ph = h->next;
            free(h->name);
            free(h->ns);
            free(h);
        } else {
            ph = &h->next;
        }
    }
}

static void add_str(struct strnode **list, const char *a, const char *b, const char *cc)
{
    struct strnode *n = gw_calloc(1, sizeof *n);
    n->a = gw_strdup(a);
    n->b = b ? gw_strdup(b) : NULL;
    n->c = cc ? gw_strdup(cc) : NULL;
    while (*list)
        list = &(*list)->next;
    *list = n;
}

void gw_component_add_feature(struct gw_component *c, const char *var)
{
    add_str(&c->features, var, NULL, NULL);
}

void gw_component_add_identity(struct gw_component *c, const char *category, const char *type,
                               const char *name)
{
    add_str(&c->identities, category, type, name);
}

/* True if from is the component domain or a JID on it. */
static bool own_jid(const struct gw_component *c, const char *from)
{
    struct gw_jid j;
    if (gw_jid_parse(from, &j) != 0)
        return false;
    bool ok = strcmp(j.domain, c->domain) == 0;
    gw_jid_free(&j);
    return ok;
}

/* Serializes el (with from defaulted to our domain, to checked) onto the queue. */
static int send_el(struct gw_component *c, const struct gw_xml *el)
{
    if (!gw_component_up(c))
        return GW_EUNAVAIL;
    const char *to = gw_xml_attr(el, "to");
    const char *from = gw_xml_attr(el, "from");
    if (!to || !gw_jid_valid(to) || (from && !own_jid(c, from)))
        return GW_EINVAL;
    if (component_queue_full(c))
        return GW_ELIMIT;
    struct gw_xml *copy = NULL;
    if (!from) {
        copy = gw_xml_copy(el);
        gw_xml_set_attr(copy, "from", c->domain);
        el = copy;
    }
    /* Serialized as if jabber:client were in scope: the stanza and the children that inherit
     * its namespace are written unprefixed and so read as jabber:component:accept under our
     * stream header, while an explicitly nested jabber:client element (a forwarded message)
     * keeps its own declaration. */
    int rc = gw_xml_serialize(&c->out, el, GW_NS_CLIENT);
    gw_xml_free(copy);
    if (rc)
        return rc;
    (*c->m_out)++;
    component_flush_soon(c);
    return 0;
}

int gw_component_send(struct gw_component *c, const struct gw_xml *stanza)
{
    return send_el(c, stanza);
}

static struct gw_xml *reply_to(struct gw_component *c, const struct gw_xml *iq, const char *type)
{
    struct gw_xml *r = gw_xml_new(GW_NS_CLIENT, "iq");
    gw_xml_set_attr(r, "type", type);
    const char *id = gw_xml_attr(iq, "id");
    gw_xml_set_attr(r, "id", id ? id : "");
    const char *from = gw_xml_attr(iq, "from");
    const char *to = gw_xml_attr(iq, "to");
    gw_xml_set_attr(r, "to", from ? from : "");
    gw_xml_set_attr(r, "from", to && own_jid(c, to) ? to : c->domain);
    return r;
}

int gw_component_reply_error(struct gw_component *c, const struct gw_xml *iq, const char *type,
                             const char *condition)
{
    struct gw_xml *r = reply_to(c, iq, "error");
    struct gw_xml *e = gw_xml_add_child(r, NULL, "error");
    gw_xml_set_attr(e, "type", type);
    gw_xml_add_child(e, GW_NS_STANZAS, condition);
    int rc = send_el(c, r);
    gw_xml_free(r);
    return rc;
}

int gw_component_reply_result(struct gw_component *c, const struct gw_xml *iq,
                              const struct gw_xml *payload)
{
    struct gw_xml *r = reply_to(c, iq, "result");
    if (payload)
        gw_xml_append(r, gw_xml_copy(payload));
    int rc = send_el(c, r);
    gw_xml_free(r);
    return rc;
}

int gw_component_iq(struct gw_component *c, const struct gw_xml *iq, uint64_t timeout_ms,
                    gw_component_iq_cb cb, void *arg, uint64_t *handle)
{
    const char *type = gw_xml_attr(iq, "type");
    const char *to = gw_xml_attr(iq, "to");
    if (strcmp(iq->name, "iq") != 0 || !type ||
        (strcmp(type, "get") != 0 && strcmp(type, "set") != 0) || !to || !cb)
        return GW_EINVAL;
    if (!gw_component_up(c))
        return GW_EUNAVAIL;
    if (gw_map_count(c->pending) >= MAX_PENDING)
        return GW_ELIMIT;
    struct pending *p = gw_calloc(1, sizeof *p);
    if (gw_rand_hex(c->core->rand, 16, p->id, sizeof p->id) != 0) {
        free(p);
        return GW_EIO;
    }
    struct gw_xml *copy = gw_xml_copy(iq);
    gw_xml_set_attr(copy, "id", p->id);
    int rc = send_el(c, copy);
    gw_xml_free(copy);
    if (rc) {
        free(p);
        return rc;
    }
    p->comp = c;
    p->handle = ++c->next_handle;
    p->to = gw_strdup(to);
    p->cb = cb;
    p->arg = arg;
    uv_timer_init(c->core->loop, &p->timer);
    p->timer.data = p;
    c->handles++;
    uv_timer_start(&p->timer, on_iq_timeout, timeout_ms, 0);
    gw_map_put(c->pending, p->id, p);
    p->next = c->plist;
    if (c->plist)
        c->plist->prev = p;
    c->plist = p;
    if (handle)
        *handle = p->handle;
    return 0;
}

void gw_component_iq_cancel(struct gw_component *c, uint64_t handle)
{
    for (struct pending *p = c->plist; p; p = p->next)
        if (p->handle == handle) {
            pending_drop(c, p);
            return;
        }
}
