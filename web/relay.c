/* Shared by the XML relays: namespace defaulting of client payloads and bind watching. */
#include "web/relay.h"

#include "gateway/mem.h"
#include "xmpp/jid.h"

#include <stdlib.h>
#include <string.h>

static bool same_ns(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

void gw_relay_client_ns(struct gw_xml *el, const char *inherited)
{
    if (el->kind != GW_XML_ELEMENT || !same_ns(el->ns, inherited))
        return;
    free(el->ns);
    el->ns = gw_strdup(GW_NS_CLIENT);
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
