/* Tests for xmpp/xml.c: escaping, namespace declarations, refusal of what XML cannot hold, the
 * buffer cap, and the property parse(serialize(tree)) == tree over generated trees. */
#include "tests/unit/check.h"
#include "gateway/err.h"
#include "xmpp/stream.h"
#include "xmpp/xml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *ser(const struct gw_xml *el, const char *default_ns, int *rc)
{
    struct gw_buf b;
    gw_buf_init(&b, 0);
    *rc = gw_xml_serialize(&b, el, default_ns);
    char *s = strdup(b.data ? b.data : "");
    gw_buf_free(&b);
    return s;
}

static bool same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Structural equality: names, namespaces, attributes (any order), coalesced text. */
static bool equal(const struct gw_xml *a, const struct gw_xml *b)
{
    if (a->kind != b->kind)
        return false;
    if (a->kind == GW_XML_TEXT)
        return a->text_len == b->text_len && memcmp(a->text, b->text, a->text_len) == 0;
    if (strcmp(a->name, b->name) != 0 || !same_str(a->ns, b->ns) || a->nattrs != b->nattrs)
        return false;
    for (size_t i = 0; i < a->nattrs; i++) {
        const char *v = gw_xml_attr_ns(b, a->attrs[i].ns, a->attrs[i].name);
        if (!v || strcmp(v, a->attrs[i].value) != 0)
            return false;
    }
    const struct gw_xml *x = a->children, *y = b->children;
    for (; x && y; x = x->next, y = y->next)
        if (!equal(x, y))
            return false;
    return !x && !y;
}

static unsigned long long rng = 88172645463325252ull;
static unsigned rnd(unsigned n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % n);
}

static const char *const texts[] = {"hi",           "</message><iq type='set'>",
                                    "a & b",        "\"quoted\"",
                                    "it's",         "]]>",
                                    "é ü 漢字 😀",   "<![CDATA[x]]>",
                                    "tab\tnl\ncr\r"};
static const char *const names[] = {"message", "body", "x", "item", "query", "data"};
static const char *const nss[] = {NULL, "jabber:client", "urn:example:a", "urn:example:b"};
static const char *const prefixes[] = {NULL, "p", "q"};

static struct gw_xml *gen(int depth)
{
    const char *ns = nss[1 + rnd(3)];
    struct gw_xml *el = gw_xml_new(ns, names[rnd(6)]);
    if (rnd(3) == 0) {
        gw_xml_set_prefix(el, prefixes[1 + rnd(2)]);
    }
    int nattrs = (int)rnd(4);
    for (int i = 0; i < nattrs; i++) {
        char an[16];
        snprintf(an, sizeof an, "a%d", i);
        const char *ans = nss[rnd(4)];
        gw_xml_set_attr_ns(el, ans, ans ? prefixes[rnd(3)] : NULL, an, texts[rnd(9)]);
    }
    if (rnd(4) == 0)
        gw_xml_set_attr_ns(el, GW_NS_XML, "xml", "lang", "en");
    int nkids = depth > 3 ? 0 : (int)rnd(4);
    for (int i = 0; i < nkids; i++) {
        const char *t = texts[rnd(9)];
        if (rnd(2))
            gw_xml_add_text(el, t, strlen(t));
        else
            gw_xml_append(el, gen(depth + 1));
    }
    return el;
}

int main(void)
{
    int rc;
    /* Escaping in text and attributes. */
    struct gw_xml *m = gw_xml_new(GW_NS_CLIENT, "message");
    gw_xml_set_attr(m, "to", "a'b\"c<d>&e");
    struct gw_xml *body = gw_xml_add_child(m, NULL, "body");
    gw_xml_add_text(body, "</body><iq>&", 12);
    char *s = ser(m, GW_NS_CLIENT, &rc);
    CHECK(rc == 0 && strcmp(s, "<message to='a&apos;b&quot;c&lt;d&gt;&amp;e'><body>&lt;/body&gt;"
                               "&lt;iq&gt;&amp;</body></message>") == 0,
          "expected escaped message, got %s", s);
    free(s);
    s = ser(m, NULL, &rc);
    CHECK(rc == 0 && strncmp(s, "<message xmlns='jabber:client' ", 31) == 0,
          "expected xmlns declared standalone, got %s", s);
    free(s);

    /* Characters XML 1.0 cannot hold are refused, and nothing half-written stays. */
    const char *bad[] = {"nul\0x", "\x01", "\xed\xa0\x80", "\xef\xbf\xbe", "\xc0\xaf", "\xff"};
    size_t badlen[] = {5, 1, 3, 3, 2, 1};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct gw_xml *t = gw_xml_new(GW_NS_CLIENT, "body");
        gw_xml_add_text(t, bad[i], badlen[i]);
        struct gw_buf b;
        gw_buf_init(&b, 0);
        gw_buf_puts(&b, "keep");
        rc = gw_xml_serialize(&b, t, GW_NS_CLIENT);
        CHECK(rc == GW_EINVAL && b.len == 4,
              "bad text %zu: expected GW_EINVAL and no output, "
              "got %d len %zu",
              i, rc, b.len);
        gw_buf_free(&b);
        gw_xml_free(t);
    }

    /* The same after a run of plain ASCII, and next to characters XML does allow: tab, LF, DEL,
     * two-, three- and four-byte characters pass; CR is written as a reference. */
    {
        struct gw_xml *t = gw_xml_new(GW_NS_CLIENT, "body");
        gw_xml_add_text(t, "plain ascii run\x01", 16);
        struct gw_buf b;
        gw_buf_init(&b, 0);
        rc = gw_xml_serialize(&b, t, GW_NS_CLIENT);
        CHECK(rc == GW_EINVAL, "a control after ASCII: expected GW_EINVAL, got %d", rc);
        gw_buf_free(&b);
        gw_xml_free(t);
        const char ok[] = "a\tb\nc\x7f d\xc3\xa9 \xe2\x82\xac \xf0\x9d\x84\x9e\r";
        t = gw_xml_new(GW_NS_CLIENT, "body");
        gw_xml_add_text(t, ok, sizeof ok - 1);
        s = ser(t, GW_NS_CLIENT, &rc);
        CHECK(rc == 0 && strcmp(s, "<body>a\tb\nc\x7f d\xc3\xa9 \xe2\x82\xac \xf0\x9d\x84\x9e&#13;"
                                   "</body>") == 0,
              "allowed characters kept, got %d %s", rc, s);
        free(s);
        gw_xml_free(t);
    }

    /* Unqualified child inside a default namespace gets xmlns=''. */
    struct gw_xml *q = gw_xml_new(GW_NS_CLIENT, "iq");
    gw_xml_append(q, gw_xml_new(NULL, "bare"));
    s = ser(q, GW_NS_CLIENT, &rc);
    CHECK(rc == 0 && strcmp(s, "<iq><bare xmlns=''/></iq>") == 0, "expected xmlns='', got %s", s);
    free(s);
    gw_xml_free(q);

    /* The buffer cap. */
    struct gw_buf capped;
    gw_buf_init(&capped, 20);
    rc = gw_xml_serialize(&capped, m, GW_NS_CLIENT);
    CHECK(rc == GW_ELIMIT && capped.len == 0, "expected GW_ELIMIT, got %d", rc);
    gw_buf_free(&capped);
    gw_xml_free(m);

    /* Property: parse(serialize(x)) == x. */
    struct gw_xml_limits lim = {1 << 20, 64, 64};
    int ok = 0;
    for (int i = 0; i < 2000; i++) {
        struct gw_xml *x = gen(0);
        char *out = ser(x, NULL, &rc);
        struct gw_xml *back = NULL;
        const char *cond = NULL;
        int prc = rc ? rc : gw_xml_parse_document(out, strlen(out), &lim, &back, &cond);
        if (rc == 0 && prc == 0 && equal(x, back))
            ok++;
        else if (failed < 20)
            CHECK(0, "round trip %d: rc=%d parse=%d (%s) for %s", i, rc, prc, cond ? cond : "-",
                  out);
        free(out);
        gw_xml_free(x);
        gw_xml_free(back);
    }
    CHECK(ok == 2000, "expected 2000 round trips, got %d", ok);

    /* A parsed element holds its strings and attributes in its own allocation: every change
     * to one (ASan would report a bad free or a leak) gives the tree a builder would. */
    static const char parsed_doc[] =
        "<p:message xmlns:p='jabber:client' xmlns:x='urn:x' to='a@b' x:k='1' id='m1' "
        "type='chat' a5='5' a6='6' a7='7' a8='8' a9='9'><body>one &amp; two</body></p:message>";
    for (int variant = 0; variant < 2; variant++) {
        struct gw_xml *el = NULL;
        const char *pc = NULL;
        rc = gw_xml_parse_document(parsed_doc, strlen(parsed_doc), &lim, &el, &pc);
        CHECK(rc == 0 && el->nattrs == 9, "parsed element: rc=%d", rc);
        if (rc)
            continue;
        struct gw_xml *copy = variant ? gw_xml_copy(el) : NULL;
        struct gw_xml *t = variant ? copy : el;
        gw_xml_set_attr(t, "to", "c@d");   /* replaces an in-block value */
        gw_xml_set_attr(t, "id", NULL);    /* removes one */
        gw_xml_set_attr(t, "from", "e@f"); /* copies the array out of the block */
        gw_xml_set_attr(t, "lang", "en");  /* grows the copied-out array */
        gw_xml_set_attr_ns(t, "urn:x", NULL, "k", "2");
        gw_xml_set_ns(t, "urn:other");
        gw_xml_set_prefix(t, NULL);
        gw_xml_add_text(gw_xml_child(t, NULL, "body"), " three", 6); /* extends in-block text */
        char *out = ser(t, NULL, &rc);
        CHECK(rc == 0 &&
                  strcmp(out, "<message xmlns='urn:other' to='c@d' xmlns:ns0='urn:x' ns0:k='2' "
                              "type='chat' a5='5' a6='6' a7='7' a8='8' a9='9' from='e@f' "
                              "lang='en'><body xmlns=''>one &amp; two three</body></message>") == 0,
              "changed parsed element (%s): got %s", variant ? "copy" : "original", out);
        free(out);
        gw_xml_free(el);
        gw_xml_free(copy);
    }

    /* gw_xml_new_attrs: the attributes in order, NULL values left out, more than fit in one
     * block set one by one; then changed like any element (ASan checks the frees). */
    {
        const char *const pairs[] = {"to", "a@b", "id",  NULL, "type", "chat", "a4", "4",
                                     "a5", "5",   "a6",  "6",  "a7",   "7",    "a8", "8",
                                     "a9", "9",   "a10", NULL, "a11",  "&'<"};
        struct gw_xml *el = gw_xml_new_attrs("jabber:client", "message", pairs, 11);
        char *out = ser(el, "jabber:client", &rc);
        CHECK(rc == 0 && el->nattrs == 9 &&
                  strcmp(out, "<message to='a@b' type='chat' a4='4' a5='5' a6='6' a7='7' a8='8' "
                              "a9='9' a11='&amp;&apos;&lt;'/>") == 0,
              "gw_xml_new_attrs: got %s", out);
        free(out);
        gw_xml_set_attr(el, "to", "c@d");  /* replaces an in-block value */
        gw_xml_set_attr(el, "type", NULL); /* removes one */
        gw_xml_set_attr_ns(el, GW_NS_XML, "xml", "lang", "en");
        gw_xml_add_text(gw_xml_add_child(el, NULL, "body"), "b", 1);
        out = ser(el, "jabber:client", &rc);
        CHECK(rc == 0 &&
                  strcmp(out, "<message to='c@d' a4='4' a5='5' a6='6' a7='7' a8='8' a9='9' "
                              "a11='&amp;&apos;&lt;' xml:lang='en'><body>b</body></message>") == 0,
              "changed gw_xml_new_attrs element: got %s", out);
        free(out);
        gw_xml_free(el);
    }

    /* Error conditions: the first child in the namespace that is not <text/>, or none. */
    static const struct {
        const char *doc, *ns, *want;
    } conds[] = {
        {"<error xmlns='http://etherx.jabber.org/streams'>"
         "<text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>x</text>"
         "<host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></error>",
         GW_NS_STREAMS, "host-unknown"},
        {"<error type='cancel'><other xmlns='urn:x'/>"
         "<item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>",
         GW_NS_STANZAS, "item-not-found"},
        {"<error><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>only text</text></error>",
         GW_NS_STANZAS, NULL},
        {"<error>plain</error>", GW_NS_STREAMS, NULL},
    };
    for (size_t i = 0; i < sizeof conds / sizeof conds[0]; i++) {
        struct gw_xml *e = NULL;
        const char *pc = NULL;
        int prc = gw_xml_parse_document(conds[i].doc, strlen(conds[i].doc), &lim, &e, &pc);
        const char *got = prc == 0 ? gw_xml_error_condition(e, conds[i].ns) : "(parse error)";
        CHECK(conds[i].want ? got && strcmp(got, conds[i].want) == 0 : got == NULL,
              "condition %zu: expected %s, got %s", i, conds[i].want ? conds[i].want : "none",
              got ? got : "none");
        gw_xml_free(e);
    }

    return CHECK_DONE();
}
