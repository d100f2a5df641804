/* Tests for xmpp/xlate*.c: every short form against exact text both ways, the element form,
 * "from" never taken from JSON, what a client may not send (bad names, conditions outside RFC
 * 6120, unknown keys, wrong types, unknown aliases, non-stanzas), aliases, and the property
 * that XML → JSON → XML gives back an equivalent stanza over generated stanzas, including
 * ones that are almost a short form and must fall back to the element form. */
#include "tests/unit/check.h"

#include "gateway/err.h"
#include "xmpp/json.h"
#include "xmpp/stream.h"
#include "xmpp/xlate.h"

#include <stdlib.h>
#include <string.h>

static const struct gw_xml_limits lim = {1 << 20, 64, 64};

static struct gw_xml *xml(const char *s)
{
    struct gw_xml *el = NULL;
    const char *cond;
    gw_xml_parse_document(s, strlen(s), &lim, &el, &cond);
    return el;
}

static char *to_json(const struct gw_xml *el, const struct gw_xlate_ctx *ctx)
{
    struct gw_json_out *w = gw_json_out_new(NULL);
    gw_xlate_stanza_json(el, ctx, w);
    size_t n;
    const char *t = gw_json_text(w, &n);
    char *s = strndup(t, n);
    gw_json_out_free(w);
    return s;
}

static struct gw_xml *from_json(const char *text, const struct gw_xlate_ctx *ctx, const char **cond)
{
    struct gw_json *j = NULL;
    char err[160];
    *cond = NULL;
    if (gw_json_parse(text, strlen(text), 1 << 20, &j, err, sizeof err) != 0) {
        *cond = "parse";
        return NULL;
    }
    struct gw_xml *el = NULL;
    gw_xlate_json_stanza(j, ctx, &el, cond, err, sizeof err);
    gw_json_free(j);
    return el;
}

static char *ser(const struct gw_xml *el)
{
    struct gw_buf b;
    gw_buf_init(&b, 0);
    gw_xml_serialize(&b, el, GW_NS_CLIENT);
    char *s = strdup(b.data ? b.data : "");
    gw_buf_free(&b);
    return s;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

#define MUC_USER "http://jabber.org/protocol/muc#user"

/* The children of <x xmlns='…muc#user'> have no order (XEP-0045's schema has a choice): the
 * translator writes them back as item, status…, invite, decline, password, so compare them in
 * that order (a stable sort keeps the status codes' own order). */
static void muc_order(struct gw_xml *x)
{
    static const char *const rank[] = {"item", "status", "invite", "decline", "password"};
    struct gw_xml *sorted = NULL, *last = NULL;
    for (size_t r = 0; r <= 5; r++) {
        struct gw_xml **pp = &x->children;
        while (*pp) {
            struct gw_xml *c = *pp;
            size_t cr = 5;
            for (size_t i = 0; c->kind == GW_XML_ELEMENT && i < 5; i++)
                if (strcmp(c->name, rank[i]) == 0)
                    cr = i;
            if (cr != r) {
                pp = &c->next;
                continue;
            }
            *pp = c->next;
            c->next = NULL;
            if (last)
                last->next = c;
            else
                sorted = c;
            last = c;
        }
    }
    x->children = sorted;
    x->last_child = last;
}

static int cmp_attr(const void *pa, const void *pb)
{
    const struct gw_xml_attr *a = pa, *b = pb;
    int c = strcmp(a->ns ? a->ns : "", b->ns ? b->ns : "");
    return c ? c : strcmp(a->name, b->name);
}

/* Prefixes and attribute order are not part of the data: drop the one and sort the other so
 * the serializer writes both sides alike. */
static void strip_prefixes(struct gw_xml *el)
{
    gw_xml_set_prefix(el, NULL);
    for (size_t i = 0; i < el->nattrs; i++) {
        struct gw_xml_attr *a = &el->attrs[i];
        gw_xml_set_attr_ns(el, a->ns, NULL, a->name, a->value);
    }
    if (el->nattrs > 1)
        qsort(el->attrs, el->nattrs, sizeof el->attrs[0], cmp_attr);
    if (el->ns && strcmp(el->ns, MUC_USER) == 0 && strcmp(el->name, "x") == 0)
        muc_order(el);
    for (struct gw_xml *c = el->children; c; c = c->next)
        if (c->kind == GW_XML_ELEMENT)
            strip_prefixes(c);
}

static void normalize(struct gw_xml *el)
{
    gw_xml_set_attr(el, "from", NULL); /* a client's "from" is always the session's */
    if (strcmp(el->name, "message") == 0 && !gw_xml_attr(el, "type"))
        gw_xml_set_attr(el, "type", "normal"); /* RFC 6121 §5.2.2: absent means normal */
    strip_prefixes(el);
}

/* Equivalence: same element, attributes, and the same children in any order (the short form
 * puts known children first). Children are compared by their serialization, so namespaces,
 * attributes, text and the order inside each child count; prefixes do not. */
static bool equivalent(struct gw_xml *a, struct gw_xml *b)
{
    normalize(a);
    normalize(b);
    if (strcmp(a->name, b->name) != 0 || (a->ns == NULL) != (b->ns == NULL) ||
        (a->ns && strcmp(a->ns, b->ns) != 0) || a->nattrs != b->nattrs)
        return false;
    for (size_t i = 0; i < a->nattrs; i++) {
        const char *v = gw_xml_attr_ns(b, a->attrs[i].ns, a->attrs[i].name);
        if (!v || strcmp(v, a->attrs[i].value) != 0)
            return false;
    }
    char *ca[64], *cb[64];
    size_t na = 0, nb = 0;
    for (const struct gw_xml *c = gw_xml_next_element(a, NULL); c && na < 64;
         c = gw_xml_next_element(a, c))
        ca[na++] = ser(c);
    for (const struct gw_xml *c = gw_xml_next_element(b, NULL); c && nb < 64;
         c = gw_xml_next_element(b, c))
        cb[nb++] = ser(c);
    bool same = na == nb;
    qsort(ca, na, sizeof *ca, cmp_str);
    qsort(cb, nb, sizeof *cb, cmp_str);
    for (size_t i = 0; same && i < na; i++)
        same = strcmp(ca[i], cb[i]) == 0;
    for (size_t i = 0; i < na; i++)
        free(ca[i]);
    for (size_t i = 0; i < nb; i++)
        free(cb[i]);
    return same;
}

static const struct gw_xlate_ctx plain = {NULL, NULL, "en", NULL, 0, NULL};

/* ---- XML → JSON, exact ---- */

static const struct {
    const char *xml;
    const char *json;
} out_cases[] = {
    /* A chat message to us: no "to", no "type", no "t". */
    {"<message xmlns='jabber:client' from='alice@example.com/phone' to='bob@example.com/tab' "
     "type='chat' id='a1' xml:lang='en'><body>See you</body><request "
     "xmlns='urn:xmpp:receipts'/></message>",
     "{\"f\":\"alice@example.com/phone\",\"id\":\"a1\",\"b\":\"See you\",\"rq\":true}"},
    /* Groupchat, with the delay of room history. */
    {"<message xmlns='jabber:client' from='room@conf.example.com/alice' to='bob@example.com/tab' "
     "type='groupchat' id='g1'><body>hi all</body><delay xmlns='urn:xmpp:delay' "
     "from='room@conf.example.com' stamp='2024-01-02T03:04:05Z'/></message>",
     "{\"f\":\"room@conf.example.com/alice\",\"id\":\"g1\",\"type\":\"groupchat\",\"b\":\"hi "
     "all\",\"dl\":{\"stamp\":\"2024-01-02T03:04:05Z\",\"f\":\"room@conf.example.com\"}}"},
    {"<message xmlns='jabber:client' from='room@conf.example.com' type='groupchat'><subject>Plans"
     "</subject></message>",
     "{\"f\":\"room@conf.example.com\",\"type\":\"groupchat\",\"s\":\"Plans\"}"},
    /* No type: normal. */
    {"<message xmlns='jabber:client' from='a@b'><body>x</body></message>",
     "{\"f\":\"a@b\",\"type\":\"normal\",\"b\":\"x\"}"},
    /* Chat state, marker, receipt. */
    {"<message xmlns='jabber:client' from='a@b/c' type='chat'><composing "
     "xmlns='http://jabber.org/protocol/chatstates'/><displayed xmlns='urn:xmpp:chat-markers:0' "
     "id='m9'/><received xmlns='urn:xmpp:receipts' id='m8'/></message>",
     "{\"f\":\"a@b/c\",\"cs\":\"composing\",\"mk\":{\"n\":\"displayed\",\"id\":\"m9\"},\"rcv\":"
     "\"m8\"}"},
    /* MUC presence: affiliation, role, real JID, status codes. */
    {"<presence xmlns='jabber:client' from='room@conf.example.com/alice' to='bob@example.com/tab'>"
     "<x xmlns='" MUC_USER "'><item affiliation='owner' role='moderator' "
     "jid='alice@example.com/phone'/><status code='110'/><status code='201'/></x></presence>",
     "{\"t\":\"p\",\"f\":\"room@conf.example.com/alice\",\"muc\":{\"aff\":\"owner\",\"role\":"
     "\"moderator\",\"jid\":\"alice@example.com/phone\",\"codes\":[110,201]}}"},
    /* A kick: actor and reason, role none, unavailable. */
    {"<presence xmlns='jabber:client' from='room@conf.example.com/carol' type='unavailable'><x "
     "xmlns='" MUC_USER "'><item affiliation='none' role='none'><actor nick='alice'/><reason>"
     "spam</reason></item><status code='307'/></x></presence>",
     "{\"t\":\"p\",\"f\":\"room@conf.example.com/carol\",\"type\":\"unavailable\",\"muc\":{\"aff\":"
     "\"none\",\"role\":\"none\",\"actor\":{\"nick\":\"alice\"},\"reason\":\"spam\",\"codes\":[307]"
     "}}"},
    /* A mediated invite as the room forwards it (Prosody adds a body and jabber:x:conference
     * with the reason as text, which is not XEP-0249's form, so it stays an element). */
    {"<message xmlns='jabber:client' from='room@conf.example.com' to='bob@example.com'><x "
     "xmlns='" MUC_USER "'><invite from='alice@example.com/phone'><reason>join us</reason></invite>"
     "<password>pw</password></x><x xmlns='jabber:x:conference' jid='room@conf.example.com'>join "
     "us</x><body>alice invited you</body></message>",
     "{\"to\":\"bob@example.com\",\"f\":\"room@conf.example.com\",\"muc\":{\"inv\":{\"f\":\"alice@"
     "example.com/phone\",\"reason\":\"join us\"},\"pw\":\"pw\"},\"b\":\"alice invited you\",\"x\":"
     "[{\"n\":\"x\",\"ns\":\"jabber:x:conference\",\"a\":{\"jid\":\"room@conf.example.com\"},\"c\":"
     "[\"join us\"]}]}"},
    /* A decline coming back. */
    {"<message xmlns='jabber:client' from='room@conf.example.com'><x xmlns='" MUC_USER "'><decline "
     "from='carol@example.com'><reason>busy</reason></decline></x></message>",
     "{\"f\":\"room@conf.example.com\",\"muc\":{\"dec\":{\"f\":\"carol@example.com\",\"reason\":"
     "\"busy\"}}}"},
    /* A direct invite. */
    {"<message xmlns='jabber:client' from='alice@example.com/phone'><x xmlns='jabber:x:conference' "
     "jid='room@conf.example.com' password='pw' reason='come' continue='true' thread='t1'/>"
     "</message>",
     "{\"f\":\"alice@example.com/phone\",\"dinv\":{\"jid\":\"room@conf.example.com\",\"pw\":\"pw\","
     "\"reason\":\"come\",\"cont\":true,\"th\":\"t1\"}}"},
    /* A MUC private message: type chat said, as the message has "muc". */
    {"<message xmlns='jabber:client' from='room@conf.example.com/alice' type='chat'><body>psst"
     "</body><x xmlns='" MUC_USER "'/></message>",
     "{\"f\":\"room@conf.example.com/alice\",\"type\":\"chat\",\"b\":\"psst\",\"muc\":{}}"},
    /* A room's error for a refused invite, with a legacy code. */
    {"<message xmlns='jabber:client' from='room@conf.example.com' type='error' id='i1'><error "
     "type='modify' code='406'><not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
     "</error></message>",
     "{\"f\":\"room@conf.example.com\",\"id\":\"i1\",\"type\":\"error\",\"err\":{\"type\":"
     "\"modify\",\"cond\":\"not-acceptable\",\"code\":406}}"},
    /* Prosody's forbidden invite: by and text. */
    {"<message xmlns='jabber:client' from='room@conf.example.com' type='error'><error type='auth' "
     "by='conf.example.com'><forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text "
     "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>no</text></error></message>",
     "{\"f\":\"room@conf.example.com\",\"type\":\"error\",\"err\":{\"type\":\"auth\",\"cond\":"
     "\"forbidden\",\"text\":\"no\",\"by\":\"conf.example.com\"}}"},
    /* Presence with show, status, priority. */
    {"<presence xmlns='jabber:client' from='a@b/c'><show>away</show><status>out</status><priority>"
     "-5</priority></presence>",
     "{\"t\":\"p\",\"f\":\"a@b/c\",\"show\":\"away\",\"st\":\"out\",\"pri\":-5}"},
    /* Roster result and a push from our own bare JID. */
    {"<iq xmlns='jabber:client' to='bob@example.com/tab' type='result' id='r1'><query "
     "xmlns='jabber:iq:roster' ver='v2'><item jid='alice@example.com' name='Alice' "
     "subscription='both'><group>Friends</group><group>Work</group></item><item "
     "jid='carol@example.com' subscription='none' ask='subscribe'/></query></iq>",
     "{\"t\":\"iq\",\"id\":\"r1\",\"type\":\"result\",\"roster\":{\"ver\":\"v2\",\"items\":[{"
     "\"jid\":\"alice@example.com\",\"name\":\"Alice\",\"sub\":\"both\",\"groups\":[\"Friends\","
     "\"Work\"]},{\"jid\":\"carol@example.com\",\"sub\":\"none\",\"ask\":\"subscribe\"}]}}"},
    {"<iq xmlns='jabber:client' from='bob@example.com' to='bob@example.com/tab' type='set' "
     "id='p1'><query xmlns='jabber:iq:roster'><item jid='dave@example.com' "
     "subscription='remove'/></query></iq>",
     "{\"t\":\"iq\",\"f\":\"bob@example.com\",\"id\":\"p1\",\"type\":\"set\",\"roster\":{\"items\":"
     "[{\"jid\":\"dave@example.com\",\"sub\":\"remove\"}]}}"},
    /* A roster push from anyone else is not believed: element form. */
    {"<iq xmlns='jabber:client' from='mallory@evil.example' to='bob@example.com/tab' type='set' "
     "id='p2'><query xmlns='jabber:iq:roster'><item jid='mallory@evil.example' "
     "subscription='both'/></query></iq>",
     "{\"t\":\"iq\",\"f\":\"mallory@evil.example\",\"id\":\"p2\",\"type\":\"set\",\"x\":[{\"n\":"
     "\"query\",\"ns\":\"jabber:iq:roster\",\"c\":[{\"n\":\"item\",\"a\":{\"jid\":\"mallory@evil."
     "example\",\"subscription\":\"both\"}}]}]}"},
    /* muc#admin list. */
    {"<iq xmlns='jabber:client' from='room@conf.example.com' type='result' id='a1'><query "
     "xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='outcast' "
     "jid='mallory@evil.example'><reason>spam</reason></item><item affiliation='outcast' "
     "jid='eve@evil.example'/></query></iq>",
     "{\"t\":\"iq\",\"f\":\"room@conf.example.com\",\"id\":\"a1\",\"type\":\"result\",\"admin\":[{"
     "\"aff\":\"outcast\",\"jid\":\"mallory@evil.example\",\"reason\":\"spam\"},{\"aff\":"
     "\"outcast\",\"jid\":\"eve@evil.example\"}]}"},
    /* An unknown attribute on the stanza: the whole stanza in the element form. */
    {"<message xmlns='jabber:client' from='a@b' extra='1'><body>x</body></message>",
     "{\"t\":\"x\",\"xml\":{\"n\":\"message\",\"ns\":\"jabber:client\",\"a\":{\"from\":\"a@b\","
     "\"extra\":\"1\"},\"c\":[{\"n\":\"body\",\"c\":[\"x\"]}]}}"},
    /* A type outside RFC 6120's set: the element form too. */
    {"<presence xmlns='jabber:client' type='busy'/>",
     "{\"t\":\"x\",\"xml\":{\"n\":\"presence\",\"ns\":\"jabber:client\",\"a\":{\"type\":\"busy\"}}"
     "}"},
    /* Near misses stay elements: a legacy code written "0406", an unknown condition, a show
     * outside the set, item children out of order. */
    {"<message xmlns='jabber:client' type='error'><error type='modify' code='0406'><not-acceptable "
     "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>",
     "{\"type\":\"error\",\"x\":[{\"n\":\"error\",\"a\":{\"type\":\"modify\",\"code\":\"0406\"},"
     "\"c\":[{\"n\":\"not-acceptable\",\"ns\":\"urn:ietf:params:xml:ns:xmpp-stanzas\"}]}]}"},
    {"<presence xmlns='jabber:client'><show>busy</show></presence>",
     "{\"t\":\"p\",\"x\":[{\"n\":\"show\",\"c\":[\"busy\"]}]}"},
    {"<presence xmlns='jabber:client'><x xmlns='" MUC_USER "'><item role='none'><reason>r</reason>"
     "<actor nick='a'/></item></x></presence>",
     "{\"t\":\"p\",\"x\":[{\"n\":\"x\",\"ns\":\"" MUC_USER "\",\"c\":[{\"n\":\"item\",\"a\":{"
     "\"role\":\"none\"},\"c\":[{\"n\":\"reason\",\"c\":[\"r\"]},{\"n\":\"actor\",\"a\":{\"nick\":"
     "\"a\"}}]}]}]}"},
    /* Prosody's order inside muc#user: read in any order, and an occupant id. */
    {"<presence xmlns='jabber:client' from='r@m.example/n'><occupant-id "
     "xmlns='urn:xmpp:occupant-id:0' id='o1'/><x xmlns='" MUC_USER "'><status code='201'/><item "
     "affiliation='owner' role='moderator'/><status code='110'/></x></presence>",
     "{\"t\":\"p\",\"f\":\"r@m.example/n\",\"oid\":\"o1\",\"muc\":{\"aff\":\"owner\",\"role\":"
     "\"moderator\",\"codes\":[201,110]}}"},
    /* A second body (another language) goes to "x". */
    {"<message xmlns='jabber:client' type='chat'><body>hi</body><body xml:lang='de'>hallo</body>"
     "</message>",
     "{\"b\":\"hi\",\"x\":[{\"n\":\"body\",\"a\":{\"xml:lang\":\"de\"},\"c\":[\"hallo\"]}]}"},
};

/* ---- JSON → XML, exact ---- */

static const struct {
    const char *json;
    const char *xml; /* NULL: refused with cond */
    const char *cond;
} in_cases[] = {
    {"{\"to\":\"bob@example.com\",\"id\":\"a1\",\"b\":\"hi\",\"f\":\"mallory@evil\"}",
     "<message to='bob@example.com' id='a1' type='chat'><body>hi</body></message>", NULL},
    {"{\"to\":\"room@conf.example.com\",\"type\":\"groupchat\",\"b\":\"hello room\"}",
     "<message to='room@conf.example.com' type='groupchat'><body>hello room</body></message>",
     NULL},
    /* Join, with password and history. */
    {"{\"t\":\"p\",\"to\":\"room@conf.example.com/bob\",\"join\":{\"pw\":\"s3\",\"hist\":{"
     "\"maxstanzas\":20,\"since\":\"2024-01-01T00:00:00Z\"}}}",
     "<presence to='room@conf.example.com/bob'><x xmlns='http://jabber.org/protocol/muc'>"
     "<password>s3</password><history maxstanzas='20' since='2024-01-01T00:00:00Z'/></x>"
     "</presence>",
     NULL},
    {"{\"t\":\"p\",\"to\":\"room@conf.example.com/bob\",\"join\":{}}",
     "<presence to='room@conf.example.com/bob'><x xmlns='http://jabber.org/protocol/muc'/>"
     "</presence>",
     NULL},
    /* Leave. */
    {"{\"t\":\"p\",\"to\":\"room@conf.example.com/bob\",\"type\":\"unavailable\"}",
     "<presence to='room@conf.example.com/bob' type='unavailable'/>", NULL},
    /* A mediated invite: no type attribute (XEP-0045 §7.8.2; Prosody wants none or normal). */
    {"{\"to\":\"room@conf.example.com\",\"id\":\"i1\",\"muc\":{\"inv\":{\"to\":\"carol@example."
     "com\",\"reason\":\"join us\",\"cont\":\"t1\"}}}",
     "<message to='room@conf.example.com' id='i1'><x xmlns='" MUC_USER "'><invite "
     "to='carol@example.com'><reason>join us</reason><continue thread='t1'/></invite></x>"
     "</message>",
     NULL},
    {"{\"to\":\"room@conf.example.com\",\"muc\":{\"dec\":{\"to\":\"alice@example.com/phone\","
     "\"reason\":\"busy\"}}}",
     "<message to='room@conf.example.com'><x xmlns='" MUC_USER "'><decline "
     "to='alice@example.com/phone'><reason>busy</reason></decline></x></message>",
     NULL},
    {"{\"to\":\"carol@example.com\",\"dinv\":{\"jid\":\"room@conf.example.com\",\"reason\":\"hi\"}"
     "}",
     "<message to='carol@example.com'><x xmlns='jabber:x:conference' jid='room@conf.example.com' "
     "reason='hi'/></message>",
     NULL},
    /* Affiliation and role changes. */
    {"{\"t\":\"iq\",\"to\":\"room@conf.example.com\",\"type\":\"set\",\"id\":\"ad1\",\"admin\":[{"
     "\"aff\":\"member\",\"jid\":\"carol@example.com\",\"reason\":\"welcome\"}]}",
     "<iq to='room@conf.example.com' id='ad1' type='set'><query "
     "xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='member' "
     "jid='carol@example.com'><reason>welcome</reason></item></query></iq>",
     NULL},
    {"{\"t\":\"iq\",\"to\":\"room@conf.example.com\",\"type\":\"set\",\"id\":\"ad2\",\"admin\":[{"
     "\"role\":\"visitor\",\"nick\":\"carol\"}]}",
     "<iq to='room@conf.example.com' id='ad2' type='set'><query "
     "xmlns='http://jabber.org/protocol/muc#admin'><item role='visitor' nick='carol'/></query>"
     "</iq>",
     NULL},
    /* Roster get and set. */
    {"{\"t\":\"iq\",\"type\":\"get\",\"id\":\"r1\",\"roster\":{}}",
     "<iq id='r1' type='get'><query xmlns='jabber:iq:roster'/></iq>", NULL},
    {"{\"t\":\"iq\",\"type\":\"set\",\"id\":\"r2\",\"roster\":{\"items\":[{\"jid\":\"carol@example."
     "com\",\"name\":\"Carol\",\"groups\":[\"Friends\"]}]}}",
     "<iq id='r2' type='set'><query xmlns='jabber:iq:roster'><item jid='carol@example.com' "
     "name='Carol'><group>Friends</group></item></query></iq>",
     NULL},
    /* An error reply from the client. */
    {"{\"t\":\"iq\",\"to\":\"a@b/c\",\"type\":\"error\",\"id\":\"q\",\"err\":{\"type\":\"cancel\","
     "\"cond\":\"service-unavailable\"}}",
     "<iq to='a@b/c' id='q' type='error'><error type='cancel'><service-unavailable "
     "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>",
     NULL},
    /* Received objects can be sent back: "f", "fa" and "ta" are ignored. */
    {"{\"to\":\"a@b\",\"ta\":3,\"f\":7,\"fa\":1,\"b\":\"x\"}",
     "<message to='a@b' type='chat'><body>x</body></message>", NULL},
    /* The element form, from dropped. */
    {"{\"t\":\"x\",\"xml\":{\"n\":\"message\",\"a\":{\"from\":\"mallory@evil\",\"to\":\"bob@"
     "example.com\",\"{urn:p}q\":\"1\",\"xml:lang\":\"en\"},\"c\":[\"t\",{\"n\":\"x\",\"ns\":"
     "\"urn:x\",\"c\":[\"</message>\",\"\"]}]}}",
     "<message to='bob@example.com' xmlns:ns0='urn:p' ns0:q='1' xml:lang='en'>t<x "
     "xmlns='urn:x'>&lt;/message&gt;</x></message>",
     NULL},
    /* Refused. */
    {"{\"to\":\"not a jid@\",\"b\":\"x\"}", NULL, "jid-malformed"},
    {"{\"to\":7,\"b\":\"x\"}", NULL, "item-not-found"},
    {"{\"to\":true,\"b\":\"x\"}", NULL, "bad-request"},
    {"{\"b\":\"x\",\"zzz\":1}", NULL, "bad-request"},
    {"{\"b\":7}", NULL, "bad-request"},
    {"{\"t\":\"p\",\"b\":\"x\"}", NULL, "bad-request"},
    {"{\"t\":\"q\"}", NULL, "bad-request"},
    {"{\"t\":1}", NULL, "bad-request"},
    {"{\"type\":\"rror\",\"b\":\"x\"}", NULL, "bad-request"},
    {"{\"t\":\"iq\",\"type\":\"get\"}", NULL, "bad-request"},
    {"{\"cs\":\"typing\"}", NULL, "bad-request"},
    {"{\"mk\":{\"n\":\"seen\",\"id\":\"1\"}}", NULL, "bad-request"},
    {"{\"mk\":{\"n\":\"displayed\",\"id\":\"1\",\"x\":1}}", NULL, "bad-request"},
    {"{\"t\":\"p\",\"pri\":128}", NULL, "bad-request"},
    {"{\"t\":\"p\",\"show\":\"busy\"}", NULL, "bad-request"},
    /* The fuzzer's crash: an invalid name as an error condition. */
    {"{\"type\":\"error\",\"err\":{\"type\":\"modify\",\"cond\":\"nJJJ\xd8\x8fJot-_cce0tfromable\","
     "\"code\":406,\"text\":\"no\"}}",
     NULL, "bad-request"},
    {"{\"type\":\"error\",\"err\":{\"type\":\"modify\",\"cond\":\"not-acceptable\",\"te-xt\":\"no\""
     "}}",
     NULL, "bad-request"},
    {"{\"type\":\"error\",\"err\":{\"type\":\"sideways\",\"cond\":\"not-acceptable\"}}", NULL,
     "bad-request"},
    {"{\"type\":\"error\",\"err\":{\"type\":\"modify\",\"cond\":\"not-acceptable\",\"code\":4060}}",
     NULL, "bad-request"},
    {"{\"muc\":{\"aff\":\"king\"}}", NULL, "bad-request"},
    {"{\"muc\":{\"codes\":[\"110\"]}}", NULL, "bad-request"},
    {"{\"muc\":{\"inv\":{\"to\":\"not a jid@\"}}}", NULL, "jid-malformed"},
    {"{\"t\":\"iq\",\"type\":\"set\",\"id\":\"1\",\"admin\":{\"aff\":\"member\"}}", NULL,
     "bad-request"},
    {"{\"t\":\"iq\",\"type\":\"set\",\"id\":\"1\",\"roster\":{\"items\":[{\"name\":\"x\"}]}}", NULL,
     "bad-request"},
    {"{\"t\":\"iq\",\"type\":\"set\",\"id\":\"1\",\"roster\":{\"items\":[{\"jid\":\"a@b\","
     "\"sub\":\"all\"}]}}",
     NULL, "bad-request"},
    {"{\"t\":\"p\",\"join\":{\"hist\":{\"maxstanzas\":-1}}}", NULL, "bad-request"},
    {"{\"dinv\":{\"reason\":\"no jid\"}}", NULL, "bad-request"},
    /* Names: element, attribute, namespace declarations in disguise, reserved namespaces. */
    {"{\"t\":\"x\",\"xml\":{\"n\":\"message to='x'\"}}", NULL, "bad-request"},
    {"{\"x\":[{\"n\":\"a\xd8\x8f\"}]}", NULL, "bad-request"},
    {"{\"x\":[{\"n\":\"x\",\"a\":{\"a b\":\"1\"}}]}", NULL, "bad-request"},
    {"{\"x\":[{\"n\":\"body\",\"a\":{\"xmlns\":\"urn:evil\"}}]}", NULL, "bad-request"},
    {"{\"x\":[{\"n\":\"x\",\"a\":{\"{http://www.w3.org/2000/xmlns/}p\":\"urn:evil\"}}]}", NULL,
     "bad-request"},
    {"{\"x\":[{\"n\":\"x\",\"ns\":\"http://www.w3.org/2000/xmlns/\"}]}", NULL, "bad-request"},
    {"{\"x\":[{\"n\":\"x\",\"ns\":\"http://www.w3.org/XML/1998/namespace\"}]}", NULL,
     "bad-request"},
    {"{\"x\":[{\"n\":\"x\",\"a\":{\"xml:lang\":\"en\",\"{http://www.w3.org/XML/1998/namespace}"
     "lang\":\"de\"}}]}",
     NULL, "bad-request"},
    {"{\"x\":[{\"n\":\"x\",\"a\":{\"{}p\":\"1\"}}]}", NULL, "bad-request"},
    {"{\"x\":[{\"n\":\"x\",\"q\":1}]}", NULL, "bad-request"},
    {"{\"x\":[\"text\"]}", NULL, "bad-request"},
    {"{\"x\":{\"n\":\"x\"}}", NULL, "bad-request"},
    /* The element form carries stanzas only. */
    {"{\"t\":\"x\",\"xml\":{\"n\":\"r\",\"ns\":\"urn:xmpp:sm:3\"}}", NULL, "bad-request"},
    {"{\"t\":\"x\",\"xml\":{\"n\":\"message\",\"ns\":\"jabber:server\"}}", NULL, "bad-request"},
    {"{\"t\":\"x\",\"xml\":{\"n\":\"iq\",\"a\":{\"to\":\"bad jid@\"}}}", NULL, "jid-malformed"},
    {"{\"t\":\"x\",\"xml\":{\"n\":\"iq\"},\"b\":\"x\"}", NULL, "bad-request"},
};

/* ---- the round-trip property ---- */

static unsigned long long rng = 0x9e3779b97f4a7c15ull;
static unsigned rnd(unsigned n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % n);
}

/* Inserted into XML templates, so already escaped; they decode to metacharacters. */
static const char *const texts[] = {"hi",        "&lt;/message&gt;&lt;iq&gt;",
                                    "a &amp; b", "&quot;q&quot; &apos;a&apos;",
                                    "]]&gt;",    "é 漢字 😀",
                                    "tab\tnl\n", "&#13;cr"};
#define NTEXTS (sizeof texts / sizeof texts[0])

enum { M = 1, P = 2, I = 4 };

/* A child template: kinds it is a short form in, the key it must become there, and whether it
 * is a near miss (never that key). %s takes a text. */
static const struct kid {
    const char *xml;
    unsigned kinds;
    const char *key;
} kids[] = {
    {"<body>%s</body>", M, "b"},
    {"<subject>%s</subject>", M, "s"},
    {"<thread>t1</thread>", M, "th"},
    {"<request xmlns='urn:xmpp:receipts'/>", M, "rq"},
    {"<received xmlns='urn:xmpp:receipts' id='r1'/>", M, "rcv"},
    {"<composing xmlns='http://jabber.org/protocol/chatstates'/>", M, "cs"},
    {"<markable xmlns='urn:xmpp:chat-markers:0'/>", M, "markable"},
    {"<displayed xmlns='urn:xmpp:chat-markers:0' id='d1'/>", M, "mk"},
    {"<show>away</show>", P, "show"},
    {"<status>%s</status>", P, "st"},
    {"<priority>5</priority>", P, "pri"},
    {"<delay xmlns='urn:xmpp:delay' stamp='2024-01-01T00:00:00Z' from='r@m.example'>%s</delay>",
     M | P, "dl"},
    {"<error type='modify' code='406'><not-acceptable "
     "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>",
     M | P | I, "err"},
    {"<error type='cancel' by='m.example'><item-not-found "
     "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text "
     "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>%s</text></error>",
     M | P | I, "err"},
    {"<x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='member' "
     "role='participant' jid='a@b/c' nick='%s'/><status code='110'/><status code='210'/></x>",
     M | P, "muc"},
    {"<x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='none'><actor "
     "nick='al'/><reason>%s</reason></item><status code='307'/></x>",
     M | P, "muc"},
    {"<x xmlns='http://jabber.org/protocol/muc#user'><invite from='a@b/c'><reason>%s</reason>"
     "<continue/></invite><password>p</password></x>",
     M | P, "muc"},
    {"<x xmlns='http://jabber.org/protocol/muc#user'><decline to='a@b'><reason/></decline></x>",
     M | P, "muc"},
    {"<x xmlns='http://jabber.org/protocol/muc#user'/>", M | P, "muc"},
    /* Prosody's order. */
    {"<x xmlns='http://jabber.org/protocol/muc#user'><status code='201'/><item "
     "affiliation='owner' role='moderator' jid='a@b/c'/><status code='110'/></x>",
     M | P, "muc"},
    {"<x xmlns='http://jabber.org/protocol/muc#user'><password>p</password><item "
     "role='none'/></x>",
     M | P, "muc"},
    {"<occupant-id xmlns='urn:xmpp:occupant-id:0' id='%s'/>", M | P, "oid"},
    {"<x xmlns='http://jabber.org/protocol/muc'><password>%s</password><history maxchars='0' "
     "seconds='60'/></x>",
     P, "join"},
    {"<x xmlns='http://jabber.org/protocol/muc'/>", P, "join"},
    {"<x xmlns='jabber:x:conference' jid='room@m.example' reason='%s' continue='false'/>", M,
     "dinv"},
    {"<query xmlns='jabber:iq:roster' ver='v1'><item jid='a@b' name='%s' subscription='both' "
     "approved='true'><group>G</group><group/></item><item jid='c@d'/></query>",
     I, "roster"},
    {"<query xmlns='jabber:iq:roster'/>", I, "roster"},
    {"<query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='outcast' "
     "jid='m@e.example'><reason>%s</reason></item><item role='visitor' nick='n'/><item/></query>",
     I, "admin"},
    /* Near misses: must travel as elements, unchanged. */
    {"<body xml:lang='de'>%s</body>", 0, "b"},
    {"<body><b>bold</b></body>", 0, "b"},
    {"<thread parent='p'>t</thread>", 0, "th"},
    {"<request xmlns='urn:xmpp:receipts' x='1'/>", 0, "rq"},
    {"<received xmlns='urn:xmpp:receipts'/>", 0, "rcv"},
    {"<typing xmlns='http://jabber.org/protocol/chatstates'/>", 0, "cs"},
    {"<show>busy</show>", 0, "show"},
    {"<priority>+5</priority>", 0, "pri"},
    {"<priority>05</priority>", 0, "pri"},
    {"<priority>200</priority>", 0, "pri"},
    {"<delay xmlns='urn:xmpp:delay'/>", 0, "dl"},
    {"<error type='modify' code='406 '><not-acceptable "
     "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>",
     0, "err"},
    {"<error type='modify'><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>t</text><bad-request "
     "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>",
     0, "err"},
    {"<error type='cancel'><undefined-condition xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><oops "
     "xmlns='urn:app'/></error>",
     0, "err"},
    {"<error type='cancel'><payment-required xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>",
     0, "err"},
    {"<error type='cancel'><gone xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>xmpp:a@b</gone>"
     "</error>",
     0, "err"},
    {"<error><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>", 0, "err"},
    {"<x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='king'/></x>", 0, "muc"},
    {"<x xmlns='http://jabber.org/protocol/muc#user'><item/></x>", 0, "muc"},
    {"<x xmlns='http://jabber.org/protocol/muc#user'><status code='1100'/></x>", 0, "muc"},
    {"<x xmlns='http://jabber.org/protocol/muc#user'><status code='110'>t</status></x>", 0, "muc"},
    {"<x xmlns='http://jabber.org/protocol/muc#user'><invite to='a@b'/><invite to='c@d'/></x>", 0,
     "muc"},
    {"<x xmlns='http://jabber.org/protocol/muc#user'><item role='none'/><item role='none'/></x>", 0,
     "muc"},
    {"<x xmlns='http://jabber.org/protocol/muc#user'><password>p</password><password/></x>", 0,
     "muc"},
    {"<occupant-id xmlns='urn:xmpp:occupant-id:0' id='x' other='y'/>", 0, "oid"},
    {"<x xmlns='http://jabber.org/protocol/muc#user'><destroy jid='r@m.example'/></x>", 0, "muc"},
    {"<x xmlns='http://jabber.org/protocol/muc#user' a='1'/>", 0, "muc"},
    {"<x xmlns='http://jabber.org/protocol/muc#user'><item role='none'><reason/><actor "
     "nick='x'/></item></x>",
     0, "muc"},
    {"<x xmlns='http://jabber.org/protocol/muc'><history/><password>p</password></x>", 0, "join"},
    {"<x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='-1'/></x>", 0, "join"},
    {"<x xmlns='jabber:x:conference' jid='room@m.example' continue='yes'/>", 0, "dinv"},
    {"<x xmlns='jabber:x:conference'/>", 0, "dinv"},
    {"<x xmlns='jabber:x:conference' jid='room@m.example'>%s</x>", 0, "dinv"},
    {"<query xmlns='jabber:iq:roster'><item name='no jid'/></query>", 0, "roster"},
    {"<query xmlns='jabber:iq:roster'><item jid='a@b' subscription='all'/></query>", 0, "roster"},
    {"<query xmlns='jabber:iq:roster'><item jid='a@b'><group><x/></group></item></query>", 0,
     "roster"},
    {"<query xmlns='jabber:iq:roster' other='1'/>", 0, "roster"},
    {"<query xmlns='http://jabber.org/protocol/muc#admin'><item role='boss'/></query>", 0, "admin"},
    {"<query xmlns='http://jabber.org/protocol/muc#admin'><foo/></query>", 0, "admin"},
    /* Other children. */
    {"<x xmlns='jabber:x:oob'><url>%s</url></x>", 0, NULL},
    {"<foo xmlns='urn:x' xmlns:p='urn:p' p:a='1' b='%s'>text<bar/>more</foo>", 0, NULL},
};
#define NKIDS (sizeof kids / sizeof kids[0])

/* Runs one generated stanza through both ways; returns whether everything held. */
static bool round_trip(const char *doc, unsigned kind, const unsigned *used_kids, int nk,
                       bool whole_escape, bool stranger_push, struct gw_xlate_ctx *ctx)
{
    struct gw_xml *orig = xml(doc);
    if (!orig) {
        CHECK(0, "generator produced bad XML: %s", doc);
        return false;
    }
    char *js = to_json(orig, ctx);
    struct gw_json *j = NULL;
    char err[160];
    bool ok = gw_json_parse(js, strlen(js), 1 << 20, &j, err, sizeof err) == 0;
    /* Short keys: present for a template that is a short form in this kind, absent for a near
     * miss when no real form of that key is in the stanza. */
    for (int k = 0; ok && k < nk; k++) {
        const struct kid *kd = &kids[used_kids[k]];
        if (!kd->key)
            continue;
        bool real = false;
        for (int m = 0; m < nk; m++)
            real |= kids[used_kids[m]].key && strcmp(kids[used_kids[m]].key, kd->key) == 0 &&
                    (kids[used_kids[m]].kinds & kind);
        bool has = gw_json_get(j, kd->key) != NULL;
        if (whole_escape || (stranger_push && strcmp(kd->key, "roster") == 0))
            ok = !has;
        else if (kd->kinds & kind)
            ok = has;
        else if (!real)
            ok = !has;
        if (!ok && failed < 10)
            CHECK(0, "key \"%s\" %s in %s → %s", kd->key, has ? "present" : "absent", doc, js);
    }
    if (ok && whole_escape) {
        const char *t = gw_json_str(j, "t");
        ok = t && strcmp(t, "x") == 0;
    }
    gw_json_free(j);
    const char *cond;
    struct gw_xml *rt = ok ? from_json(js, ctx, &cond) : NULL;
    if (ok && !(rt && equivalent(orig, rt))) {
        if (failed < 10) {
            char *s = rt ? ser(rt) : NULL;
            CHECK(0, "round trip: %s → %s → %s", doc, js, s ? s : cond);
            free(s);
        }
        ok = false;
    }
    free(js);
    gw_xml_free(orig);
    gw_xml_free(rt);
    return ok;
}

static void property(void)
{
    static const char *const heads[] = {"message", "presence", "iq"};
    static const char *const mtypes[] = {"",
                                         " type='chat'",
                                         " type='groupchat'",
                                         " type='normal'",
                                         " type='headline'",
                                         " type='error'"};
    static const char *const ptypes[] = {"", " type='unavailable'", " type='subscribe'",
                                         " type='error'"};
    static const char *const itypes[] = {" type='get'", " type='set'", " type='result'",
                                         " type='error'"};
    static const char *const froms[] = {" from='a@b/c'", " from='a@b'", ""};
    struct gw_alias *aliases = gw_alias_new();
    int ok = 0, total = 6000;
    for (int i = 0; i < total; i++) {
        unsigned h = rnd(3), kind = 1u << h;
        const char *head = heads[h];
        const char *type = h == 0 ? mtypes[rnd(6)] : h == 1 ? ptypes[rnd(4)] : itypes[rnd(4)];
        const char *from = froms[rnd(3)];
        /* A roster push is only believed from our own bare JID (or no "from"). */
        bool stranger_push = h == 2 && strstr(type, "set") && strstr(from, "a@b/c");
        unsigned attr = rnd(8);
        bool whole_escape = attr == 0;
        char doc[16384];
        int n = snprintf(doc, sizeof doc, "<%s xmlns='jabber:client'%s id='i%d'%s%s%s>", head, from,
                         i, rnd(2) ? " to='x@y/z'" : "", type,
                         attr == 0   ? " extra='1'"
                         : attr == 1 ? " xml:lang='fr'"
                                     : "");
        unsigned used[6];
        int nk = (int)rnd(6);
        for (int k = 0; k < nk; k++) {
            used[k] = rnd(NKIDS);
            /* Each template holds at most one %s: split there rather than pass it as a format. */
            const char *tpl = kids[used[k]].xml, *at = strstr(tpl, "%s");
            const char *t = at ? texts[rnd(NTEXTS)] : "";
            n += snprintf(doc + n, sizeof doc - (size_t)n, "%.*s%s%s",
                          (int)(at ? (size_t)(at - tpl) : strlen(tpl)), tpl, t, at ? at + 2 : "");
        }
        snprintf(doc + n, sizeof doc - (size_t)n, "</%s>", head);
        /* Half the stanzas go through a connection with aliases on. */
        struct gw_xlate_ctx ctx = {NULL, "a@b", "en", rnd(2) ? aliases : NULL, 1 << 20, NULL};
        if (round_trip(doc, kind, used, nk, whole_escape, stranger_push, &ctx))
            ok++;
    }
    CHECK(ok == total, "expected %d round trips, got %d", total, ok);
    CHECK(gw_alias_count(aliases) > 0, "expected the property test to assign aliases");
    gw_alias_free(aliases);
}

/* ---- aliases through the translator ---- */

static void aliases(void)
{
    struct gw_alias *table = NULL;
    struct gw_json *op = NULL;
    char err[160];
    struct gw_json_out *w = gw_json_out_new(NULL);
    size_t n;
    const char *text;

    /* Turning aliases on. */
    gw_json_parse("{\"op\":\"alias\"}", 14, 100, &op, err, sizeof err);
    gw_xlate_alias_op(&table, op, w);
    gw_json_free(op);
    text = gw_json_text(w, &n);
    CHECK(table && strncmp(text, "{\"op\":\"alias\",\"max\":256}", n) == 0, "got %.*s", (int)n,
          text);
    struct gw_xlate_ctx ctx = {"bob@example.com/tab", NULL, "en", table, 0, NULL};

    /* The first message from alice carries her JID and its number, the next only the number. */
    struct gw_xml *m = xml("<message xmlns='jabber:client' from='alice@example.com/phone' "
                           "to='bob@example.com/tab' type='chat' id='a1'><body>1</body></message>");
    char *s = to_json(m, &ctx);
    CHECK(strcmp(s, "{\"f\":\"alice@example.com/phone\",\"fa\":0,\"id\":\"a1\",\"b\":\"1\"}") == 0,
          "first: got %s", s);
    free(s);
    s = to_json(m, &ctx);
    CHECK(strcmp(s, "{\"f\":0,\"id\":\"a1\",\"b\":\"1\"}") == 0, "second: got %s", s);
    free(s);
    gw_xml_free(m);

    /* Presence uses a known alias but does not make new ones. */
    m = xml("<presence xmlns='jabber:client' from='alice@example.com/phone'/>");
    s = to_json(m, &ctx);
    CHECK(strcmp(s, "{\"t\":\"p\",\"f\":0}") == 0, "presence: got %s", s);
    free(s);
    gw_xml_free(m);
    m = xml("<presence xmlns='jabber:client' from='carol@example.com/x'/>");
    s = to_json(m, &ctx);
    CHECK(strcmp(s, "{\"t\":\"p\",\"f\":\"carol@example.com/x\"}") == 0, "presence: got %s", s);
    free(s);
    gw_xml_free(m);
    /* A delivered "to" that is not ours is aliased as "ta". */
    m = xml("<message xmlns='jabber:client' to='bob@example.com' from='dave@example.com/d' "
            "type='chat'/>");
    s = to_json(m, &ctx);
    CHECK(
        strcmp(s, "{\"to\":\"bob@example.com\",\"ta\":1,\"f\":\"dave@example.com/d\",\"fa\":2}") ==
            0,
        "ta: got %s", s);
    free(s);
    gw_xml_free(m);

    /* The client asks for one, then writes to it by number. */
    gw_json_reset(w);
    gw_json_parse("{\"op\":\"alias\",\"jid\":\"carol@example.com\"}", 40, 100, &op, err,
                  sizeof err);
    gw_xlate_alias_op(&table, op, w);
    gw_json_free(op);
    text = gw_json_text(w, &n);
    CHECK(strncmp(text, "{\"op\":\"alias\",\"jid\":\"carol@example.com\",\"n\":3}", n) == 0,
          "got %.*s", (int)n, text);
    const char *cond;
    m = from_json("{\"to\":3,\"b\":\"hi\"}", &ctx, &cond);
    s = m ? ser(m) : strdup(cond);
    CHECK(strcmp(s, "<message to='carol@example.com' type='chat'><body>hi</body></message>") == 0,
          "to by alias: got %s", s);
    free(s);
    gw_xml_free(m);
    m = from_json("{\"to\":4,\"b\":\"hi\"}", &ctx, &cond);
    CHECK(!m && cond && strcmp(cond, "item-not-found") == 0, "expected an unknown alias refused");

    /* Bad alias ops. */
    const char *bad[][2] = {{"{\"op\":\"alias\",\"jid\":\"not a jid@\"}", "jid-malformed"},
                            {"{\"op\":\"alias\",\"jid\":5}", "jid-malformed"},
                            {"{\"op\":\"alias\",\"n\":5}", "bad-request"}};
    for (size_t i = 0; i < 3; i++) {
        gw_json_reset(w);
        gw_json_parse(bad[i][0], strlen(bad[i][0]), 100, &op, err, sizeof err);
        gw_xlate_alias_op(&table, op, w);
        gw_json_free(op);
        text = gw_json_text(w, &n);
        char want[96];
        snprintf(want, sizeof want, "{\"op\":\"error\",\"cond\":\"%s\"", bad[i][1]);
        CHECK(strncmp(text, want, strlen(want)) == 0, "%s: got %.*s", bad[i][0], (int)n, text);
    }
    gw_json_out_free(w);
    gw_alias_free(table);
}

int main(void)
{
    for (size_t i = 0; i < sizeof out_cases / sizeof out_cases[0]; i++) {
        struct gw_xml *el = xml(out_cases[i].xml);
        if (!el) {
            CHECK(0, "out %zu: bad XML in the test", i);
            continue;
        }
        struct gw_xlate_ctx ctx = {"bob@example.com/tab", NULL, "en", NULL, 0, NULL};
        char *s = to_json(el, &ctx);
        CHECK(strcmp(s, out_cases[i].json) == 0, "out %zu: expected\n  %s\ngot\n  %s", i,
              out_cases[i].json, s);
        /* And back: equivalent (the delivered "to" we left out aside). */
        const char *cond;
        struct gw_xml *back = from_json(s, &plain, &cond);
        if (gw_xml_attr(el, "to") && strcmp(gw_xml_attr(el, "to"), "bob@example.com/tab") == 0)
            gw_xml_set_attr(el, "to", NULL);
        const char *lang = gw_xml_attr_ns(el, GW_NS_XML, "lang");
        if (lang && strcmp(lang, "en") == 0)
            gw_xml_set_attr_ns(el, GW_NS_XML, "xml", "lang", NULL);
        CHECK(back && equivalent(el, back), "out %zu: round trip of %s failed (%s)", i, s,
              back ? "not equivalent" : cond);
        free(s);
        gw_xml_free(el);
        gw_xml_free(back);
    }
    for (size_t i = 0; i < sizeof in_cases / sizeof in_cases[0]; i++) {
        const char *cond = NULL;
        struct gw_xml *el = from_json(in_cases[i].json, &plain, &cond);
        char *s = el ? ser(el) : NULL;
        if (in_cases[i].xml)
            CHECK(s && strcmp(s, in_cases[i].xml) == 0, "in %zu: expected\n  %s\ngot\n  %s (%s)", i,
                  in_cases[i].xml, s ? s : "(refused)", cond ? cond : "");
        else
            CHECK(!el && cond && strcmp(cond, in_cases[i].cond) == 0,
                  "in %zu (%s): expected %s, got %s", i, in_cases[i].json, in_cases[i].cond,
                  s ? s : cond);
        free(s);
        gw_xml_free(el);
    }

    /* The serialized stanza must fit the limit: escaping makes XML longer than its JSON. */
    char big[2200] = "{\"to\":\"a@b\",\"b\":\"";
    for (int i = 0; i < 500; i++)
        strcat(big, "<");
    strcat(big, "\"}");
    struct gw_xlate_ctx small = {NULL, NULL, NULL, NULL, 2000, NULL};
    const char *cond;
    struct gw_xml *el = from_json(big, &small, &cond);
    CHECK(strlen(big) < 2000 && !el && cond && strcmp(cond, "policy-violation") == 0,
          "expected policy-violation for %zu bytes of JSON that escape past 2000", strlen(big));

    /* With ctx.xml, the size check's serialization is left for the caller to send: the stanza
     * in the jabber:client default namespace; nothing when the check fails. */
    struct gw_buf kept = {0};
    small.xml = &kept;
    el = from_json(big, &small, &cond);
    CHECK(!el && kept.len == 0, "expected no bytes kept for a refused stanza, got %zu", kept.len);
    el = from_json("{\"to\":\"a@b\",\"b\":\"x < y\"}", &small, &cond);
    struct gw_buf again;
    gw_buf_init(&again, 0);
    CHECK(el && gw_xml_serialize(&again, el, GW_NS_CLIENT) == 0 && again.len == kept.len &&
              memcmp(again.data, kept.data, kept.len) == 0,
          "expected the kept bytes to be the stanza's serialization: %.*s", (int)kept.len,
          kept.data ? kept.data : "");
    CHECK(kept.len && strncmp(kept.data, "<message to='a@b'", 17) == 0 &&
              !strstr(kept.data, "xmlns"),
          "expected no xmlns on the root (the stream's): %.*s", (int)kept.len,
          kept.data ? kept.data : "");
    gw_buf_free(&again);
    gw_buf_free(&kept);
    gw_xml_free(el);

    /* The first version's calls still work, and leave our own JID out of "to". */
    struct gw_xml *m = xml("<message xmlns='jabber:client' from='a@b/c' to='me@x/y' type='chat'>"
                           "<body>v1</body></message>");
    struct gw_json_out *w = gw_json_out_new(NULL);
    gw_xlate_to_json(m, "me@x/y", "en", w);
    size_t n;
    const char *t = gw_json_text(w, &n);
    CHECK(strncmp(t, "{\"f\":\"a@b/c\",\"b\":\"v1\"}", n) == 0, "v1 call: got %.*s", (int)n, t);
    gw_json_out_free(w);
    gw_xml_free(m);

    aliases();
    property();
    return CHECK_DONE();
}
