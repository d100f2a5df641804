/* Tests for xmpp/json.c and xmpp/xlate.c: the strict JSON rules, the short forms against exact
 * text, stanza errors with legacy codes, "from" never taken from JSON, and the property that
 * XML → JSON → XML gives back an equivalent stanza over generated stanzas. */
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

static char *to_json(const struct gw_xml *el, const char *own)
{
    struct gw_json_out *w = gw_json_out_new();
    gw_xlate_to_json(el, own, "en", w);
    size_t n;
    const char *t = gw_json_text(w, &n);
    char *s = strndup(t, n);
    gw_json_out_free(w);
    return s;
}

static struct gw_xml *from_json(const char *text, const char **cond)
{
    struct gw_json *j = NULL;
    char err[160];
    *cond = NULL;
    if (gw_json_parse(text, strlen(text), 1 << 20, &j, err, sizeof err) != 0) {
        *cond = "parse";
        return NULL;
    }
    struct gw_xml *el = NULL;
    gw_xlate_to_xml(j, &el, cond, err, sizeof err);
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

/* Equivalence: same element, attributes, and the same children in any order (the short form
 * puts known children first). Children are compared by their serialization, so namespaces and
 * text count, prefixes do not (the serializer writes its own). */
/* Prefixes are not part of the data: drop them so the serializer names both sides alike. */
static void strip_prefixes(struct gw_xml *el)
{
    free(el->prefix);
    el->prefix = NULL;
    for (size_t i = 0; i < el->nattrs; i++) {
        free(el->attrs[i].prefix);
        el->attrs[i].prefix = NULL;
    }
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
                                    "tab\tnl\n"};
static const char *const kids[] = {
    "<body>%s</body>",
    "<subject>%s</subject>",
    "<thread>t1</thread>",
    "<request xmlns='urn:xmpp:receipts'/>",
    "<received xmlns='urn:xmpp:receipts' id='r1'/>",
    "<composing xmlns='http://jabber.org/protocol/chatstates'/>",
    "<markable xmlns='urn:xmpp:chat-markers:0'/>",
    "<displayed xmlns='urn:xmpp:chat-markers:0' id='d1'/>",
    "<x xmlns='jabber:x:conference' jid='room@muc.example.com' reason='%s'/>",
    "<x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='member' "
    "role='participant' jid='a@b/c'/><status code='110'/></x>",
    "<show>away</show>",
    "<status>%s</status>",
    "<priority>5</priority>",
    "<query xmlns='jabber:iq:roster'><item jid='a@b' name='%s' subscription='both'/></query>",
    "<error type='modify' code='406'><not-acceptable "
    "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>",
    "<error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text "
    "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>%s</text></error>",
    "<body xml:lang='de'>%s</body>",
    "<foo xmlns='urn:x' xmlns:p='urn:p' p:a='1' b='%s'>text<bar/>more</foo>",
};

int main(void)
{
    /* Strict JSON. */
    struct {
        const char *in;
        int rc;
    } bad[] = {
        {"not json", GW_EINVAL},
        {"[1]", GW_EINVAL},
        {"{\"b\":\"a\\u0000b\"}", GW_EINVAL},
        {"{\"b\":\"a\\u0001b\"}", GW_EINVAL},
        {"{\"b\":\"\\ud800\"}", GW_EINVAL},
        {"{\"b\":\"\\udc00x\"}", GW_EINVAL},
        {"{\"b\":\"\\uffff\"}", GW_EINVAL},
        {"{\"b\":1,\"b\":2}", GW_EINVAL},
        {"{\"h\":9007199254740992}", GW_EINVAL},
        {"{\"h\":1.5}", GW_EINVAL},
        {"{\"b\":\"x\"", GW_EINVAL},
        {"{\"b\":\"\xc0\xaf\"}", GW_EINVAL},
        {"{}{}", GW_EINVAL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct gw_json *j = NULL;
        char err[160];
        int rc = gw_json_parse(bad[i].in, strlen(bad[i].in), 1000, &j, err, sizeof err);
        CHECK(rc == bad[i].rc && !j, "bad json %zu (%s): expected %d got %d", i, bad[i].in,
              bad[i].rc, rc);
    }
    char deep[100] = "{\"x\":";
    for (int i = 0; i < 32; i++)
        strcat(deep, "[");
    for (int i = 0; i < 32; i++)
        strcat(deep, "]");
    strcat(deep, "}");
    struct gw_json *j = NULL;
    char err[160];
    CHECK(gw_json_parse(deep, strlen(deep), 1000, &j, err, sizeof err) == GW_EINVAL,
          "expected depth 33 refused");
    CHECK(gw_json_parse("{\"b\":\"1234567890\"}", 17, 10, &j, err, sizeof err) == GW_ELIMIT,
          "expected the size cap");
    const char *pair = "{\"b\":\"\\ud83d\\ude00 ok\"}";
    CHECK(gw_json_parse(pair, strlen(pair), 100, &j, err, sizeof err) == 0 &&
              strcmp(gw_json_str(j, "b"), "\xf0\x9f\x98\x80 ok") == 0,
          "expected a surrogate pair to decode");
    gw_json_free(j);

    /* Short forms, exact. */
    struct gw_xml *m = xml("<message xmlns='jabber:client' from='alice@example.com/phone' "
                           "to='bob@example.com/tab' type='chat' id='a1' xml:lang='en'>"
                           "<body>See you</body><request xmlns='urn:xmpp:receipts'/></message>");
    char *s = to_json(m, "bob@example.com/tab");
    CHECK(strcmp(s, "{\"f\":\"alice@example.com/phone\",\"id\":\"a1\",\"b\":\"See you\","
                    "\"rq\":true}") == 0,
          "expected the compact message, got %s", s);
    free(s);
    gw_xml_free(m);
    const char *cond;
    m = from_json("{\"to\":\"bob@example.com\",\"id\":\"a1\",\"b\":\"hi\",\"f\":\"mallory@evil\"}",
                  &cond);
    s = m ? ser(m) : strdup("(null)");
    CHECK(
        strcmp(s, "<message to='bob@example.com' id='a1' type='chat'><body>hi</body></message>") ==
            0,
        "expected the message without from, got %s", s);
    free(s);
    gw_xml_free(m);
    m = from_json("{\"to\":\"not a jid@\",\"b\":\"x\"}", &cond);
    CHECK(!m && cond && strcmp(cond, "jid-malformed") == 0, "expected jid-malformed");
    m = from_json("{\"t\":\"x\",\"xml\":{\"n\":\"message\",\"a\":{\"from\":\"mallory@evil\","
                  "\"to\":\"bob@example.com\"}}}",
                  &cond);
    CHECK(m && !gw_xml_attr(m, "from"), "expected from dropped from the escape form too");
    gw_xml_free(m);
    m = from_json("{\"t\":\"x\",\"xml\":{\"n\":\"message to='x'\"}}", &cond);
    CHECK(!m && cond && strcmp(cond, "bad-request") == 0, "expected a bad element name refused");
    m = from_json("{\"x\":[{\"n\":\"x\",\"a\":{\"a b\":\"1\"}}]}", &cond);
    CHECK(!m, "expected a bad attribute name refused");

    /* Stanza errors with legacy codes. */
    m = xml("<message xmlns='jabber:client' from='room@muc' type='error' id='i1'><x "
            "xmlns='http://jabber.org/protocol/muc#user'><invite to='c@d'/></x><error "
            "type='modify' code='406'><not-acceptable "
            "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>");
    s = to_json(m, NULL);
    CHECK(strstr(s, "\"err\":{\"type\":\"modify\",\"cond\":\"not-acceptable\",\"code\":406}") !=
              NULL,
          "expected the mapped error, got %s", s);
    const char *cond2;
    struct gw_xml *back = from_json(s, &cond2);
    CHECK(back && equivalent(m, back), "expected the error stanza to round-trip, got %s", s);
    free(s);
    gw_xml_free(m);
    gw_xml_free(back);

    /* Property: XML → JSON → XML gives back an equivalent stanza. */
    static const char *const heads[] = {"message", "presence", "iq"};
    int ok = 0, total = 3000;
    for (int i = 0; i < total; i++) {
        const char *head = heads[rnd(3)];
        char doc[8192];
        int n = snprintf(doc, sizeof doc, "<%s xmlns='jabber:client' from='a@b/c' id='i%d'%s%s%s>",
                         head, i, rnd(2) ? " to='x@y/z'" : "",
                         strcmp(head, "iq") == 0 ? " type='get'"
                         : rnd(2)                ? " type='groupchat'"
                                                 : "",
                         rnd(4) == 0 ? " xml:lang='fr'" : (rnd(5) == 0 ? " extra='1'" : ""));
        int nk = (int)rnd(5);
        for (int k = 0; k < nk; k++) {
            /* Each template holds at most one %s: split there rather than pass it as a format. */
            const char *tpl = kids[rnd(18)], *at = strstr(tpl, "%s");
            const char *t = at ? texts[rnd(7)] : "";
            n += snprintf(doc + n, sizeof doc - (size_t)n, "%.*s%s%s",
                          (int)(at ? (size_t)(at - tpl) : strlen(tpl)), tpl, t, at ? at + 2 : "");
        }
        snprintf(doc + n, sizeof doc - (size_t)n, "</%s>", head);
        struct gw_xml *orig = xml(doc);
        if (!orig) {
            CHECK(0, "generator produced bad XML: %s", doc);
            continue;
        }
        char *js = to_json(orig, NULL);
        const char *c3;
        struct gw_xml *rt = from_json(js, &c3);
        if (rt && equivalent(orig, rt))
            ok++;
        else if (failed < 10)
            CHECK(0, "round trip: %s → %s → %s", doc, js, rt ? ser(rt) : c3);
        free(js);
        gw_xml_free(orig);
        gw_xml_free(rt);
    }
    CHECK(ok == total, "expected %d round trips, got %d", total, ok);
    return CHECK_DONE();
}
