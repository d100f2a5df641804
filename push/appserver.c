/* The XEP-0357 app server: publish requests that the user's server sends to mxgw's component JID
 * when something arrives for a user with no mxgw session (Prosody's mod_cloud_notify: an offline
 * message, a hibernated stream).
 *
 * The node is the registration id. A publish is accepted only from the account's own server and,
 * when the registration was enabled with a secret, with that secret in its publish-options.
 * Answers follow what servers do with them: a result when accepted (even if it leads to no push:
 * what to push is our policy), item-not-found (type cancel) for a node we do not know, so the
 * server counts errors and disables a dead registration (mod_cloud_notify after push_max_errors),
 * not-authorized for a bad secret, and internal-server-error of type wait while the store is
 * unavailable, which servers do not count against the registration. */
#include "push/push_impl.h"

#include "gateway/err.h"
#include "gateway/log.h"
#include "gateway/mem.h"
#include "xmpp/component.h"
#include "xmpp/jid.h"

#include <mbedtls/sha256.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NS_PUBSUB "http://jabber.org/protocol/pubsub"

struct pub_job {
    struct gw_push *p;
    struct gw_xml *iq; /* just the attributes an answer needs */
    struct gw_push_publish pub;
    uint64_t t_us;
};

static void answer(struct pub_job *j, const char *type, const char *cond)
{
    if (!j->p->comp)
        return;
    if (cond)
        gw_component_reply_error(j->p->comp, j->iq, type, cond);
    else
        gw_component_reply_result(j->p->comp, j->iq, NULL);
}

static void job_free(struct pub_job *j)
{
    struct gw_push *p = j->p;
    gw_xml_free(j->iq);
    gw_push_publish_clear(&j->pub);
    free(j);
    push_job_end(p);
}

static bool from_account_server(const char *from, const char *account)
{
    struct gw_jid a, f;
    if (!from || gw_jid_parse(account, &a) != 0)
        return false;
    bool ok = false;
    if (gw_jid_parse(from, &f) == 0) {
        ok = !f.local && !f.resource && strcmp(f.domain, a.domain) == 0;
        gw_jid_free(&f);
    }
    gw_jid_free(&a);
    return ok;
}

static bool secret_ok(const struct reg *r, const char *given)
{
    if (!r->secret)
        return true; /* registered without one */
    if (!given || strlen(r->secret) != 64)
        return false;
    unsigned char hash[32];
    char hex[65];
    mbedtls_sha256_ret((const unsigned char *)given, strlen(given), hash, 0);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", hash[i]);
    return gw_memeq_ct(hex, r->secret, 64) == 0;
}

static char *bare_of(const char *jid)
{
    struct gw_jid j;
    if (!jid || gw_jid_parse(jid, &j) != 0)
        return NULL;
    char *b = gw_jid_bare(&j);
    gw_jid_free(&j);
    return b;
}

static void on_reg(void *arg, int err, const struct gw_store_reply *r)
{
    struct pub_job *j = arg;
    struct gw_push *p = j->p;
    struct reg reg = {0};
    if (err) {
        answer(j, "wait", "internal-server-error");
        job_free(j);
        return;
    }
    const char *from = gw_xml_attr(j->iq, "from");
    if (push_reg_parse(r, j->pub.node, &reg) != 0 || !from_account_server(from, reg.account)) {
        if (reg.account)
            push_reg_clear(&reg);
        GW_INFO("push.publish_unknown", "node=%.8s", j->pub.node);
        answer(j, "cancel", "item-not-found");
        job_free(j);
        return;
    }
    if (!secret_ok(&reg, j->pub.secret)) {
        GW_WARN("push.publish_refused", "reg=%.8s reason=\"bad secret\"", reg.id);
        answer(j, "auth", "not-authorized");
        push_reg_clear(&reg);
        job_free(j);
        return;
    }
    answer(j, NULL, NULL);
    if (!j->pub.important || !p->policy.on_body || p->closing) {
        GW_DEBUG("push.publish_ignored", "reg=%.8s important=%s", reg.id,
                 j->pub.important ? "yes" : "no");
    } else {
        struct gw_push_event ev = {.kind = GW_PUSH_BODY};
        ev.sender = bare_of(j->pub.sender);
        ev.body = j->pub.body ? gw_strdup(j->pub.body) : NULL;
        push_enqueue(p, &reg, &ev, j->t_us);
        gw_push_event_clear(&ev);
    }
    push_reg_clear(&reg);
    job_free(j);
}

static bool on_publish(void *arg, const struct gw_xml *iq)
{
    struct gw_push *p = arg;
    const char *type = gw_xml_attr(iq, "type");
    const struct gw_xml *ps = gw_xml_child(iq, NS_PUBSUB, "pubsub");
    if (!type || strcmp(type, "set") != 0 || !ps || !gw_xml_child(ps, NS_PUBSUB, "publish"))
        return false; /* not ours: the link answers service-unavailable */
    uint64_t t_us = push_now_us();
    struct pub_job *j = gw_calloc(1, sizeof *j);
    j->p = p;
    j->t_us = t_us;
    /* The answer is built later from the request's id, from and to: keep only those. */
    j->iq = gw_xml_new(GW_NS_CLIENT, "iq");
    gw_xml_set_attr(j->iq, "id", gw_xml_attr(iq, "id") ? gw_xml_attr(iq, "id") : "");
    gw_xml_set_attr(j->iq, "from", gw_xml_attr(iq, "from"));
    gw_xml_set_attr(j->iq, "to", gw_xml_attr(iq, "to"));
    push_job_begin(p);
    const char *why = NULL;
    if (gw_push_parse_publish(iq, p->cfg->push_body_max, &j->pub, &why) != 0) {
        GW_INFO("push.publish_bad", "reason=\"%s\"", why);
        gw_component_reply_error(p->comp, j->iq, "modify", "bad-request");
        job_free(j);
        return true;
    }
    if (!push_valid_id(j->pub.node) || p->closing) {
        gw_component_reply_error(p->comp, j->iq, "cancel", "item-not-found");
        job_free(j);
        return true;
    }
    char *k = push_key("reg", j->pub.node);
    if (gw_store_hgetall(p->core->store, k, on_reg, j) != 0) {
        gw_component_reply_error(p->comp, j->iq, "wait", "internal-server-error");
        job_free(j);
    }
    free(k);
    return true;
}

void push_appserver_start(struct gw_push *p)
{
    if (!p->comp)
        return;
    gw_component_on(p->comp, "iq", NS_PUBSUB, on_publish, p);
    gw_component_add_identity(p->comp, "pubsub", "push", "mxgw push notifications");
    gw_component_add_feature(p->comp, "urn:xmpp:push:0");
    gw_component_add_feature(p->comp, NS_PUBSUB);
}

void push_appserver_stop(struct gw_push *p)
{
    if (p->comp)
        gw_component_off(p->comp, on_publish, p);
}
