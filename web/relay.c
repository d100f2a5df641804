/* Shared by the XML relays: namespace defaulting of client payloads, bind watching, and the
 * stream features a relayed client can use. */
#include "web/relay.h"

#include "gateway/mem.h"
#include "xmpp/jid.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define NS_SASL2   "urn:xmpp:sasl:2"
#define NS_SASL_CB "urn:xmpp:sasl-cb:0"

static bool same_ns(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

void gw_relay_client_ns(struct gw_xml *el, const char *inherited)
{
    if (el->kind != GW_XML_ELEMENT || !same_ns(el->ns, inherited))
        return;
    gw_xml_set_ns(el, GW_NS_CLIENT);
    for (struct gw_xml *c = el->children; c; c = c->next)
        gw_relay_client_ns(c, inherited);
}

void gw_relay_watch_bind(struct gw_session *sess, const struct gw_xml *el)
{
    if (gw_xml_is(el, GW_NS_SASL, "failure")) {
        gw_session_count_login(sess, false,
                               gw_xml_child(el, GW_NS_SASL, "invalid-mechanism")
                                   ? GW_LOGIN_MECHANISM
                                   : GW_LOGIN_CREDENTIALS);
        return;
    }
    if (!gw_xml_is(el, GW_NS_CLIENT, "iq"))
        return;
    const char *type = gw_xml_attr(el, "type");
    struct gw_xml *bind = gw_xml_child(el, GW_NS_BIND, "bind");
    struct gw_xml *jid = bind ? gw_xml_child(bind, GW_NS_BIND, "jid") : NULL;
    if (!type || strcmp(type, "result") != 0 || !jid)
        return;
    char *text = gw_xml_text(jid);
    struct gw_jid parsed;
    if (gw_jid_parse(text, &parsed) == 0) {
        char *bare = gw_jid_bare(&parsed);
        if (gw_session_state(sess) != GW_SESSION_BOUND)
            gw_session_count_login(sess, true, 0);
        gw_session_set_jid(sess, bare);
        gw_session_set_state(sess, GW_SESSION_BOUND);
        free(bare);
        gw_jid_free(&parsed);
    }
    free(text);
}

/* A <mechanism/> whose name ends in -PLUS (RFC 5802 §4: the channel-binding variant). */
static bool plus_mechanism(const struct gw_xml *el, const char *ns)
{
    if (!gw_xml_is(el, ns, "mechanism"))
        return false;
    char *name = gw_xml_text(el);
    size_t n = strlen(name);
    while (n > 0 && strchr(" \t\r\n", name[n - 1]))
        n--;
    bool plus = n >= 5 && strncasecmp(name + n - 5, "-PLUS", 5) == 0;
    free(name);
    return plus;
}

/* Frees the children of parent for which drop(child, ns) holds, keeping the list's tail. */
static void drop_children(struct gw_xml *parent, bool (*drop)(const struct gw_xml *, const char *),
                          const char *ns)
{
    struct gw_xml **link = &parent->children;
    parent->last_child = NULL;
    while (*link) {
        struct gw_xml *c = *link;
        if (drop(c, ns)) {
            *link = c->next;
            gw_xml_free(c);
        } else {
            parent->last_child = c;
            link = &c->next;
        }
    }
}

static bool cb_list(const struct gw_xml *el, const char *ns)
{
    return gw_xml_is(el, ns, "sasl-channel-binding");
}

void gw_relay_strip_channel_binding(struct gw_xml *el)
{
    if (!gw_xml_is(el, GW_NS_STREAM, "features"))
        return;
    drop_children(el, cb_list, NS_SASL_CB);
    for (struct gw_xml *c = el->children; c; c = c->next) {
        if (gw_xml_is(c, GW_NS_SASL, "mechanisms"))
            drop_children(c, plus_mechanism, GW_NS_SASL);
        else if (gw_xml_is(c, NS_SASL2, "authentication"))
            drop_children(c, plus_mechanism, NS_SASL2);
    }
}
