/* XEP-0352 client state: the rules that decide what an inactive client gets at once.
 *
 * Close to Prosody's mod_csi_simple: presence and chat states are the chatter a sleeping
 * phone does not need (each superseded by the next from the same sender), and what a person
 * would want to be woken for goes through at once. Unknown elements are never held, so
 * nothing that might matter waits behind the rules. */
#include "xmpp/csi.h"

#include "gateway/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define NS_CHATSTATES "http://jabber.org/protocol/chatstates"
#define NS_CARBONS    "urn:xmpp:carbons:2"
#define NS_FORWARD    "urn:xmpp:forward:0"
#define NS_MUC_USER   "http://jabber.org/protocol/muc#user"
#define NS_CONFERENCE "jabber:x:conference"
#define NS_JMI        "urn:xmpp:jingle-message:0"

/* Elements that make a message worth delivering at once. */
static const struct {
    const char *ns, *name; /* name NULL: any element of ns */
} urgent_children[] = {
    {"eu.siacs.conversations.axolotl", "encrypted"}, /* OMEMO (legacy) */
    {"urn:xmpp:omemo:2", "encrypted"},
    {"urn:xmpp:openpgp:0", "openpgp"},
    {"jabber:x:encrypted", "x"},
    {NS_CONFERENCE, "x"},
    {NS_JMI, NULL}, /* propose, retract, accept, proceed, reject: a call is ringing or ends */
};

static bool has_muc_invite(const struct gw_xml *msg)
{
    const struct gw_xml *x = gw_xml_child(msg, NS_MUC_USER, "x");
    return x && gw_xml_child(x, NS_MUC_USER, "invite");
}

static bool mentions(const char *body, const char *nick)
{
    size_t n = nick ? strlen(nick) : 0;
    if (n == 0)
        return false;
    for (const char *p = body; *p; p++)
        if (strncasecmp(p, nick, n) == 0)
            return true;
    return false;
}

static char *make_key(const char *prefix, const struct gw_xml *el)
{
    const char *from = gw_xml_attr(el, "from");
    size_t n = strlen(prefix) + (from ? strlen(from) : 0) + 2;
    char *key = gw_malloc(n);
    snprintf(key, n, "%s %s", prefix, from ? from : "");
    return key;
}

static enum gw_csi_class classify_message(const struct gw_xml *msg, const char *mention, char **key,
                                          int depth)
{
    const char *type = gw_xml_attr(msg, "type");
    struct gw_xml *body = gw_xml_child(msg, GW_NS_CLIENT, "body");
    if (body) {
        if (type && strcmp(type, "groupchat") == 0) {
            char *text = gw_xml_text(body);
            bool hit = mentions(text, mention);
            free(text);
            return hit ? GW_CSI_URGENT : GW_CSI_HOLD;
        }
        return GW_CSI_URGENT;
    }
    for (size_t i = 0; i < sizeof urgent_children / sizeof urgent_children[0]; i++) {
        for (const struct gw_xml *c = gw_xml_next_element(msg, NULL); c;
             c = gw_xml_next_element(msg, c))
            if (c->ns && strcmp(c->ns, urgent_children[i].ns) == 0 &&
                (!urgent_children[i].name || strcmp(c->name, urgent_children[i].name) == 0))
                return GW_CSI_URGENT;
    }
    if (has_muc_invite(msg))
        return GW_CSI_URGENT;
    const struct gw_xml *carbon = gw_xml_child(msg, NS_CARBONS, "received");
    if (carbon && depth == 0) {
        const struct gw_xml *fwd = gw_xml_child(carbon, NS_FORWARD, "forwarded");
        const struct gw_xml *inner = fwd ? gw_xml_child(fwd, GW_NS_CLIENT, "message") : NULL;
        if (inner) {
            enum gw_csi_class c = classify_message(inner, mention, key, depth + 1);
            if (c != GW_CSI_COALESCE)
                return c;
            free(*key);
            *key = NULL;
            return GW_CSI_HOLD; /* a carried chat state: held, never coalesced */
        }
    }
    if (gw_xml_child(msg, NS_CARBONS, "sent"))
        return GW_CSI_HOLD;
    bool only_state = false;
    for (const struct gw_xml *c = gw_xml_next_element(msg, NULL); c;
         c = gw_xml_next_element(msg, c)) {
        if (c->ns && strcmp(c->ns, NS_CHATSTATES) == 0)
            only_state = true;
        else if (!gw_xml_is(c, GW_NS_CLIENT, "thread"))
            return GW_CSI_HOLD; /* a receipt, a marker or anything else alongside */
    }
    if (only_state) {
        *key = make_key("cs", msg);
        return GW_CSI_COALESCE;
    }
    return GW_CSI_HOLD;
}

enum gw_csi_class gw_csi_classify(const struct gw_xml *el, const char *mention, char **key)
{
    *key = NULL;
    if (el->kind != GW_XML_ELEMENT || !el->ns || strcmp(el->ns, GW_NS_CLIENT) != 0)
        return GW_CSI_URGENT;
    const char *type = gw_xml_attr(el, "type");
    if (type && strcmp(type, "error") == 0)
        return GW_CSI_URGENT;
    if (strcmp(el->name, "presence") == 0) {
        static const char *const subscription[] = {"subscribe", "subscribed", "unsubscribe",
                                                   "unsubscribed"};
        for (size_t i = 0; type && i < 4; i++)
            if (strcmp(type, subscription[i]) == 0)
                return GW_CSI_URGENT;
        *key = make_key("p", el);
        return GW_CSI_COALESCE;
    }
    if (strcmp(el->name, "message") == 0)
        return classify_message(el, mention, key, 0);
    return GW_CSI_URGENT; /* iq and anything unknown */
}
