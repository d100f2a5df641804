/* Tests for xmpp/stream.c: events for a whole stream, delivery at the last byte whatever the
 * chunking, every refusal RFC 6120 §11 asks for, limits, and reset/free from inside handlers. */
#include "tests/unit/check.h"
#include "gateway/err.h"
#include "xmpp/stream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Everything a stream reported, as text: "O(name)" "S(xml)" "C" "E(cond)". */
struct log {
    char text[16384];
    int stanzas;
    struct gw_stream *st;
    enum { NONE, RESET_ON_SUCCESS, FREE_ON_STANZA } action;
};

static void add(struct log *l, const char *s)
{
    strncat(l->text, s, sizeof l->text - strlen(l->text) - 1);
}

static void on_open(void *arg, const struct gw_xml *root)
{
    struct log *l = arg;
    add(l, "O(");
    add(l, root->name);
    add(l, ")");
}

static void on_stanza(void *arg, struct gw_xml *el)
{
    struct log *l = arg;
    struct gw_buf b;
    gw_buf_init(&b, 0);
    gw_xml_serialize(&b, el, GW_NS_CLIENT);
    add(l, "S(");
    add(l, b.data ? b.data : "");
    add(l, ")");
    gw_buf_free(&b);
    l->stanzas++;
    bool success = gw_xml_is(el, GW_NS_SASL, "success");
    gw_xml_free(el);
    if (l->action == RESET_ON_SUCCESS && success)
        gw_stream_reset(l->st);
    if (l->action == FREE_ON_STANZA) {
        gw_stream_free(l->st);
        l->st = NULL;
    }
}

static void on_close(void *arg)
{
    add(arg, "C");
}

static void on_error(void *arg, const char *cond, const char *text)
{
    (void)text;
    struct log *l = arg;
    add(l, "E(");
    add(l, cond);
    add(l, ")");
}

static const struct gw_stream_handlers handlers = {on_open, on_stanza, on_close, on_error};
static const struct gw_xml_limits limits = {10000, 8, 8};

#define HEADER                                                                                     \
    "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "                                   \
    "xmlns:stream='http://etherx.jabber.org/streams' from='localhost' id='s1' version='1.0'>"

static void run(struct log *l, const char *input, size_t chunk)
{
    memset(l, 0, sizeof *l);
    l->st = gw_stream_new(&limits, &handlers, l);
    size_t len = strlen(input);
    for (size_t i = 0; i < len && l->st; i += chunk) {
        size_t n = len - i < chunk ? len - i : chunk;
        if (gw_stream_feed(l->st, input + i, n) != 0)
            break;
    }
    gw_stream_free(l->st);
}

struct stream_case {
    const char *name;
    const char *input;
    const char *expect;
};

static const struct stream_case cases[] = {
    {"stanzas and close",
     HEADER "<message to='a@b'><body>hi &amp; bye</body></message> \n"
            "<presence/></stream:stream>",
     "O(stream)S(<message to='a@b'><body>hi &amp; bye</body></message>)S(<presence/>)C"},
    {"features keep the stream prefix",
     HEADER "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>",
     "O(stream)S(<stream:features xmlns:stream='http://etherx.jabber.org/streams'><bind "
     "xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>)"},
    {"DOCTYPE", "<!DOCTYPE stream [<!ENTITY x 'y'>]>" HEADER, "E(restricted-xml)"},
    {"comment", HEADER "<!-- hi -->", "O(stream)E(restricted-xml)"},
    {"processing instruction", HEADER "<?pi x?>", "O(stream)E(restricted-xml)"},
    {"entity reference", HEADER "<message>&ent;</message>", "O(stream)E(restricted-xml)"},
    {"undeclared prefix", HEADER "<p:message/>", "O(stream)E(not-well-formed)"},
    {"text at stream level", HEADER "junk", "O(stream)E(not-well-formed)"},
    {"overlong UTF-8", HEADER "<message><body>\xc0\xaf</body></message>",
     "O(stream)E(not-well-formed)"},
    {"encoded surrogate", HEADER "<message><body>\xed\xa0\x80</body></message>",
     "O(stream)E(not-well-formed)"},
    {"C0 control", HEADER "<message><body>\x01</body></message>", "O(stream)E(not-well-formed)"},
    {"U+FFFE", HEADER "<message><body>\xef\xbf\xbe</body></message>",
     "O(stream)E(not-well-formed)"},
    {"ISO-8859-1 declaration", "<?xml version='1.0' encoding='ISO-8859-1'?><stream/>",
     "E(unsupported-encoding)"},
    {"XML 1.1", "<?xml version='1.1'?><stream/>", "E(unsupported-version)"},
    {"too deep", HEADER "<a><b><c><d><e><f><g><h><i/></h></g></f></e></d></c></b></a>",
     "O(stream)E(policy-violation)"},
    {"too many attributes", HEADER "<a a1='' a2='' a3='' a4='' a5='' a6='' a7='' a8='' a9=''/>",
     "O(stream)E(policy-violation)"},
    {"too many namespace declarations",
     HEADER "<a xmlns:a='1' xmlns:b='2' xmlns:c='3' xmlns:d='4' xmlns:e='5' xmlns:f='6' "
            "xmlns:g='7' xmlns:h='8' xmlns:i='9'/>",
     "O(stream)E(policy-violation)"},
};

/* Serialized tree, or the condition, of one document parse: what reuse must not change. */
static void doc_result(int rc, struct gw_xml *el, const char *cond, char *out, size_t cap)
{
    if (rc != 0) {
        snprintf(out, cap, "%d %s", rc, cond ? cond : "(null)");
        return;
    }
    struct gw_buf b;
    gw_buf_init(&b, 0);
    gw_xml_serialize(&b, el, NULL);
    snprintf(out, cap, "0 %.*s", (int)b.len, b.data);
    gw_buf_free(&b);
}

/* A kept document parser (gw_xml_doc) gives what a fresh one gives, whatever came before it:
 * nothing of a document (namespace bindings, a refusal, a partial tree, a large buffer) leaks
 * into the next. Every document is parsed after every other one. */
static void test_doc_reuse(void)
{
    static char big[20000];
    memset(big, ' ', sizeof big - 1);
    memcpy(big, "<big xmlns='urn:b'>", 19);
    memcpy(big + sizeof big - 7, "</big>", 6);
    const char *docs[] = {
        "<p:a xmlns:p='urn:p' xmlns='urn:d'><p:b x='1'/><c>t&amp;</c></p:a>",
        "<p:a/>", /* p is not bound here, whatever the last document said */
        "<a xmlns='urn:q'><b/></a>",
        "<b/>", /* no default namespace left over either */
        "<!DOCTYPE a [<!ENTITY e 'x'>]><a>&e;</a>",
        "<a>&e;</a>", /* nor an entity */
        "<a><b><c><d><e><f><g><h><i/></h></g></f></e></d></c></b></a>",
        "<a><b>", /* a partial tree */
        "<a/><b/>",
        "<a/>text",
        big,
        "<?xml version='1.0'?><a xml:lang='en'>\xc3\xa9</a>",
        "<a x='1' x='2'/>",
        "",
        /* what could confuse the kept parser's synthetic <d> root (see gw_xml_doc_parse) */
        "</d>",
        "<a/></d>",
        "<a/></d><d>",
        "<d/>",
        "<d><a/></d>",
        " <a/> \n",
        "<a/>\r",
        "<a/>\r\n",
        "\xef\xbb\xbf<a/>",
        "<a/>&amp;",
        "<a>\xc3",
        "<a/",
        "   ",
        "<?xml version='1.1'?><a/>",
        " <?xml version='1.0'?><a/>",
    };
    struct gw_xml_limits lim = {65536, 8, 16};
    struct gw_xml_doc *doc = gw_xml_doc_new();
    size_t n = sizeof docs / sizeof docs[0];
    for (size_t before = 0; before < n; before++)
        for (size_t i = 0; i < n; i++) {
            struct gw_xml *el = NULL;
            const char *cond = NULL;
            char want[512], got[512];
            int rc = gw_xml_parse_document(docs[i], strlen(docs[i]), &lim, &el, &cond);
            doc_result(rc, el, cond, want, sizeof want);
            gw_xml_free(el);
            el = NULL;
            cond = NULL;
            rc = gw_xml_doc_parse(doc, docs[before], strlen(docs[before]), &lim, &el, &cond);
            gw_xml_free(el);
            el = NULL;
            cond = NULL;
            rc = gw_xml_doc_parse(doc, docs[i], strlen(docs[i]), &lim, &el, &cond);
            doc_result(rc, el, cond, got, sizeof got);
            gw_xml_free(el);
            CHECK(strcmp(want, got) == 0, "document %zu after %zu: expected %.80s got %.80s", i,
                  before, want, got);
        }
    gw_xml_doc_free(doc);
}

/* A shallow kept parser (gw_xml_doc_shallow) gives a document that goes on as written as its
 * root alone, every other one whole, and refuses exactly what a full parse refuses: a bad
 * child, too deep, too many attributes below the root. */
static void test_doc_shallow(void)
{
    static const struct {
        const char *doc;
        const char *root; /* the root alone; NULL: what a full parse gives */
        bool refused;
    } docs[] = {
        {"<message xmlns='jabber:client' to='a@b' id='1'><body>hi &amp; bye</body><x "
         "xmlns='urn:x'><y/></x></message>",
         "0 <message xmlns='jabber:client' to='a@b' id='1'/>", false},
        {"<message xmlns='jabber:client'>text only</message>", "0 <message xmlns='jabber:client'/>",
         false},
        /* not embeddable: whole */
        {"<c:message xmlns:c='jabber:client'><c:body>b</c:body></c:message>", NULL, false},
        {" <message xmlns='jabber:client'><body>b</body></message>", NULL, false},
        {"<?xml version='1.0'?><message xmlns='jabber:client'><body>b</body></message>", NULL,
         false},
        {"<message xmlns='urn:other'><body>b</body></message>", NULL, false},
        /* refused as a full parse refuses them */
        {"<message xmlns='jabber:client'><body>b</bod></message>", NULL, true},
        {"<message xmlns='jabber:client'><a><b><c><d><e><f><g><h/></g></f></e></d></c></b></a>"
         "</message>",
         NULL, true},
        {"<message xmlns='jabber:client'><a b='1' c='2' d='3' e='4' f='5'/></message>", NULL, true},
        {"<message xmlns='jabber:client'><a>\xc3</a></message>", NULL, true},
        {"<message xmlns='jabber:client'><p:a/></message>", NULL, true},
    };
    struct gw_xml_limits lim = {65536, 8, 4};
    struct gw_xml_doc *doc = gw_xml_doc_new();
    gw_xml_doc_shallow(doc, "jabber:client");
    for (int round = 0; round < 2; round++) /* the kept parser, fresh and after every case */
        for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
            struct gw_xml *el = NULL;
            const char *cond = NULL;
            char want[512], got[512];
            const char *d = docs[i].doc;
            int rc = gw_xml_parse_document(d, strlen(d), &lim, &el, &cond);
            CHECK((rc != 0) == docs[i].refused, "document %zu: full parse rc=%d", i, rc);
            doc_result(rc, el, cond, want, sizeof want);
            gw_xml_free(el);
            el = NULL;
            cond = NULL;
            if (docs[i].root)
                snprintf(want, sizeof want, "%s", docs[i].root);
            rc = gw_xml_doc_parse(doc, d, strlen(d), &lim, &el, &cond);
            doc_result(rc, el, cond, got, sizeof got);
            gw_xml_free(el);
            CHECK(strcmp(want, got) == 0,
                  "shallow document %zu (round %d): expected %.100s got %.100s", i, round, want,
                  got);
        }
    gw_xml_doc_free(doc);
}

/* ---- gw_stream_stanza_bytes(): a stanza's own bytes, when they can stand alone ---- */

struct raw_log {
    struct gw_stream *st;
    char text[2048]; /* "[bytes]" or "[bytes|decl]" per stanza, "-" where NULL */
    bool reset_after_first;
};

static void raw_stanza(void *arg, struct gw_xml *el)
{
    struct raw_log *l = arg;
    size_t len = 0;
    bool decl = false;
    const char *raw = gw_stream_stanza_bytes(l->st, &len, &decl);
    size_t at = strlen(l->text);
    if (raw)
        snprintf(l->text + at, sizeof l->text - at, "[%.*s%s]", (int)len, raw, decl ? "|decl" : "");
    else
        snprintf(l->text + at, sizeof l->text - at, "-");
    gw_xml_free(el);
    if (l->reset_after_first) {
        l->reset_after_first = false;
        gw_stream_reset(l->st);
    }
}

static void test_stanza_bytes(void)
{
    static const struct gw_stream_handlers rh = {NULL, raw_stanza, NULL, NULL};
    static const char hdr[] = "<stream:stream xmlns='jabber:client' "
                              "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>";
    static const struct {
        const char *name, *body; /* after the header */
        size_t split;            /* feed body in two at this byte (0: in one feed) */
        const char *expect;
    } raw_cases[] = {
        {"whole", "<message to='a@b'><body>x &amp; y</body></message>", 0,
         "[<message to='a@b'><body>x &amp; y</body></message>]"},
        {"two and space", " <a/>\n<b x='1'>t</b> ", 0, "[<a/>][<b x='1'>t</b>]"},
        {"declares", "<message xmlns='jabber:client'/><iq xmlns='x'><q/></iq>", 0,
         "[<message xmlns='jabber:client'/>|decl][<iq xmlns='x'><q/></iq>|decl]"},
        {"child declares", "<m><x xmlns='jabber:x:data'/></m>", 0,
         "[<m><x xmlns='jabber:x:data'/></m>]"},
        {"xml:lang", "<m xml:lang='en'><body xml:lang='de'>x</body></m>", 0,
         "[<m xml:lang='en'><body xml:lang='de'>x</body></m>]"},
        {"prefixed child", "<m><stream:x/></m><n/>", 0, "-[<n/>]"},
        {"own prefix", "<m xmlns:p='urn:p'><p:x/></m>", 0, "-"},
        {"prefixed attribute", "<m xmlns:p='urn:p' p:a='1'/>", 0, "-"},
        {"prefixed root", "<stream:features/><m/>", 0, "-[<m/>]"},
        {"across feeds", "<m><body>x</body></m><n/>", 8, "-[<n/>]"},
        {"second in next feed", "<m/><n>x</n>", 4, "[<m/>][<n>x</n>]"},
        {"split in a tag", "<m/><n>x</n>", 5, "[<m/>]-"},
    };
    struct gw_xml_limits lim = {10000, 8, 8};
    for (size_t i = 0; i < sizeof raw_cases / sizeof raw_cases[0]; i++) {
        struct raw_log l = {0};
        l.st = gw_stream_new(&lim, &rh, &l);
        gw_stream_feed(l.st, hdr, sizeof hdr - 1);
        const char *b = raw_cases[i].body;
        size_t n = strlen(b), split = raw_cases[i].split;
        if (split) {
            gw_stream_feed(l.st, b, split);
            gw_stream_feed(l.st, b + split, n - split);
        } else {
            gw_stream_feed(l.st, b, n);
        }
        CHECK(strcmp(l.text, raw_cases[i].expect) == 0, "stanza bytes, %s: expected %s got %s",
              raw_cases[i].name, raw_cases[i].expect, l.text);
        size_t len;
        bool decl;
        CHECK(gw_stream_stanza_bytes(l.st, &len, &decl) == NULL,
              "stanza bytes, %s: expected NULL outside the handler", raw_cases[i].name);
        gw_stream_free(l.st);
    }

    /* A stream released between two feeds (a replayed root tag before the next bytes), and a
     * reset from inside a handler, with the rest of the feed going to a new stream. */
    struct raw_log l = {0};
    l.st = gw_stream_new(&lim, &rh, &l);
    gw_stream_feed(l.st, hdr, sizeof hdr - 1);
    CHECK(gw_stream_idle(l.st), "expected the parser released after the header");
    gw_stream_feed(l.st, "<m>1</m>", 8);
    CHECK(strcmp(l.text, "[<m>1</m>]") == 0, "after a rebuild: expected [<m>1</m>] got %s", l.text);
    l.text[0] = '\0';
    l.reset_after_first = true;
    char again[512];
    snprintf(again, sizeof again, "<m>2</m>%s<n>3</n>", hdr);
    gw_stream_feed(l.st, again, strlen(again));
    CHECK(strcmp(l.text, "[<m>2</m>][<n>3</n>]") == 0,
          "across a reset: expected [<m>2</m>][<n>3</n>] got %s", l.text);
    gw_stream_free(l.st);
}

int main(void)
{
    struct log l, one;
    test_doc_reuse();
    test_doc_shallow();
    test_stanza_bytes();
    /* Every case gives the same events whatever the chunking. */
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        run(&l, cases[i].input, 1 << 20);
        CHECK(strcmp(l.text, cases[i].expect) == 0, "%s: expected %s got %s", cases[i].name,
              cases[i].expect, l.text);
        run(&one, cases[i].input, 1);
        CHECK(strcmp(one.text, l.text) == 0, "%s byte by byte: expected %s got %s", cases[i].name,
              l.text, one.text);
    }

    /* A stanza is delivered when its last byte arrives, not later. */
    const char *input = HEADER "<message><body>x</body></message>";
    memset(&l, 0, sizeof l);
    l.st = gw_stream_new(&limits, &handlers, &l);
    size_t len = strlen(input);
    for (size_t i = 0; i + 1 < len; i++)
        gw_stream_feed(l.st, input + i, 1);
    CHECK(l.stanzas == 0, "expected no stanza before the last byte, got %d", l.stanzas);
    gw_stream_feed(l.st, input + len - 1, 1);
    CHECK(l.stanzas == 1, "expected the stanza at its last byte, got %d", l.stanzas);
    gw_stream_free(l.st);

    /* Stanza size: a stanza over the limit is refused, even when it is one huge text node or a
     * start tag that never ends; a big stream of small stanzas is fine. */
    static char big[40000];
    snprintf(big, sizeof big, HEADER "<message><body>");
    memset(big + strlen(big), 'x', 20000);
    run(&l, big, 1000);
    CHECK(strstr(l.text, "E(policy-violation)") != NULL, "expected policy-violation, got %s",
          l.text);
    snprintf(big, sizeof big, HEADER "<message a='");
    memset(big + strlen(big), 'x', 30000);
    run(&l, big, 4096);
    CHECK(strstr(l.text, "E(policy-violation)") != NULL,
          "expected policy-violation for an endless start tag, got %s", l.text);
    snprintf(big, sizeof big, HEADER);
    for (int i = 0; i < 2000; i++)
        strcat(big, "<r/>");
    run(&l, big, 3000);
    CHECK(l.stanzas == 2000 && !strstr(l.text, "E("), "expected 2000 small stanzas, got %d",
          l.stanzas);

    /* Reset from inside a handler: the rest of the same buffer goes to the new stream. */
    memset(&l, 0, sizeof l);
    l.action = RESET_ON_SUCCESS;
    l.st = gw_stream_new(&limits, &handlers, &l);
    const char *restart =
        HEADER "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>" HEADER "<stream:features/>";
    int rc = gw_stream_feed(l.st, restart, strlen(restart));
    CHECK(rc == 0, "expected the restart to parse, got %d", rc);
    CHECK(strcmp(l.text,
                 "O(stream)S(<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>)O(stream)"
                 "S(<stream:features xmlns:stream='http://etherx.jabber.org/streams'/>)") == 0,
          "expected two streams, got %s", l.text);
    gw_stream_free(l.st);

    /* Free from inside a handler: nothing after it is delivered, nothing leaks. */
    memset(&l, 0, sizeof l);
    l.action = FREE_ON_STANZA;
    l.st = gw_stream_new(&limits, &handlers, &l);
    const char *two = HEADER "<a/><b/>";
    rc = gw_stream_feed(l.st, two, strlen(two));
    CHECK(rc == GW_ECLOSED && l.stanzas == 1, "expected one stanza then closed, got %d/%d", rc,
          l.stanzas);

    /* Idle streams release their parser between stanzas and rebuild it on the next feed: the
     * events are those of the same stream fed in one piece, namespaces declared on the root
     * (escaped characters included) still apply, the close still matches the root, and the
     * stanza limit still counts from the stanza's first byte. */
    {
        const char *root = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
                           "xmlns:stream='http://etherx.jabber.org/streams' "
                           "xmlns:x='urn:a&amp;b&apos;c&lt;' version='1.0'>";
        const char *pieces[] = {root,
                                "<x:y/>",
                                "<message to='a@b'><body>1</body>",
                                "</message>",
                                " \n ",
                                "<presence/>",
                                "<x:z>t</x:z>",
                                "</stream:stream>"};
        const bool idle_after[] = {true, true, false, true, true, true, true, false};
        char whole[1024] = "";
        for (size_t i = 0; i < sizeof pieces / sizeof pieces[0]; i++)
            strcat(whole, pieces[i]);
        run(&one, whole, 1 << 20);
        memset(&l, 0, sizeof l);
        l.st = gw_stream_new(&limits, &handlers, &l);
        for (size_t i = 0; i < sizeof pieces / sizeof pieces[0]; i++) {
            rc = gw_stream_feed(l.st, pieces[i], strlen(pieces[i]));
            CHECK(rc == 0, "piece %zu: expected 0 got %d", i, rc);
            CHECK(gw_stream_idle(l.st) == idle_after[i], "piece %zu: expected idle=%d", i,
                  idle_after[i]);
        }
        CHECK(strcmp(l.text, one.text) == 0 && strstr(l.text, "urn:a&amp;b&apos;c&lt;"),
              "fed in pieces: expected %s got %s", one.text, l.text);
        gw_stream_free(l.st);

        /* The limit after a rebuild. */
        memset(&l, 0, sizeof l);
        l.st = gw_stream_new(&limits, &handlers, &l);
        gw_stream_feed(l.st, root, strlen(root));
        gw_stream_feed(l.st, "<a/>", 4);
        CHECK(gw_stream_idle(l.st), "expected a released parser after <a/>");
        static char chunk[1000];
        memset(chunk, 'x', sizeof chunk);
        gw_stream_feed(l.st, "<message><body>", 15);
        rc = 0;
        for (int i = 0; i < 12 && rc == 0; i++)
            rc = gw_stream_feed(l.st, chunk, sizeof chunk);
        CHECK(rc == GW_ELIMIT && strstr(l.text, "E(policy-violation)"),
              "expected policy-violation after a rebuild, got %d %s", rc, l.text);
        gw_stream_free(l.st);

        /* gw_stream_keep_parser: nothing is released until gw_stream_release(). */
        memset(&l, 0, sizeof l);
        l.st = gw_stream_new(&limits, &handlers, &l);
        gw_stream_keep_parser(l.st, true);
        gw_stream_feed(l.st, root, strlen(root));
        gw_stream_feed(l.st, "<a/>", 4);
        CHECK(!gw_stream_idle(l.st), "expected the parser kept with keep_parser");
        gw_stream_feed(l.st, "<b>", 3);
        gw_stream_release(l.st);
        CHECK(!gw_stream_idle(l.st), "expected no release inside a stanza");
        gw_stream_feed(l.st, "</b>", 4);
        gw_stream_release(l.st);
        CHECK(gw_stream_idle(l.st), "expected a release between stanzas");
        gw_stream_feed(l.st, "<c/>", 4);
        CHECK(strcmp(l.text, "O(stream)S(<a/>)S(<b/>)S(<c/>)") == 0, "expected a b c, got %s",
              l.text);
        gw_stream_free(l.st);

        /* A kept parser is still renewed between stanzas once it has parsed 256 KiB (expat's
         * name tables would otherwise grow with every new name for as long as the stream is
         * busy), and the stream goes on as if nothing happened. */
        memset(&l, 0, sizeof l);
        l.st = gw_stream_new(&limits, &handlers, &l);
        gw_stream_keep_parser(l.st, true);
        gw_stream_feed(l.st, root, strlen(root));
        static char names[8200];
        bool renewed = false;
        int fed = 0;
        for (int i = 0; i < 100 && !renewed; i++) {
            size_t n = 0;
            for (int k = 0; k < 500; k++)
                n += (size_t)snprintf(names + n, sizeof names - n, "<n%d/>", i * 500 + k);
            gw_stream_feed(l.st, names, n);
            fed += (int)n;
            renewed = gw_stream_idle(l.st);
        }
        CHECK(renewed && fed > 256 * 1024 && fed < 300 * 1024,
              "expected a kept parser renewed after 256 KiB, got %s after %d bytes",
              renewed ? "renewed" : "kept", fed);
        l.text[0] = '\0';
        gw_stream_feed(l.st, "<after/>", 8);
        CHECK(strcmp(l.text, "S(<after/>)") == 0 && !gw_stream_idle(l.st),
              "expected the stream to go on (parser kept again), got %s", l.text);
        gw_stream_free(l.st);

        /* A reset while released starts a fresh stream. */
        memset(&l, 0, sizeof l);
        l.st = gw_stream_new(&limits, &handlers, &l);
        gw_stream_feed(l.st, root, strlen(root));
        gw_stream_feed(l.st, "<a/>", 4);
        gw_stream_reset(l.st);
        const char *again = HEADER "<b/>";
        rc = gw_stream_feed(l.st, again, strlen(again));
        CHECK(rc == 0 && strcmp(l.text, "O(stream)S(<a/>)O(stream)S(<b/>)") == 0,
              "expected a fresh stream after a reset while released, got %d %s", rc, l.text);
        gw_stream_free(l.st);
    }

    /* Documents (WebSocket frames, BOSH bodies). */
    struct {
        const char *in;
        int rc;
        const char *cond;
    } docs[] = {
        {"<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='x' version='1.0'/>", 0, NULL},
        {" \n<a/>\n ", 0, NULL},
        {"<?xml version='1.0'?><a/>", 0, NULL},
        {"<a/><b/>", GW_EPROTO, "not-well-formed"},
        {"<a/>text", GW_EPROTO, "not-well-formed"},
        {"<a>", GW_EPROTO, "not-well-formed"},
        {"", GW_EPROTO, "not-well-formed"},
        {"<!DOCTYPE a><a/>", GW_EPROTO, "restricted-xml"},
        {"<a><!--c--></a>", GW_EPROTO, "restricted-xml"},
        {"<a/><?pi?>", GW_EPROTO, "restricted-xml"},
        {"<a><b><c><d><e><f><g><h><i/></h></g></f></e></d></c></b></a>", GW_ELIMIT,
         "policy-violation"},
    };
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        struct gw_xml *el = NULL;
        const char *cond = NULL;
        rc = gw_xml_parse_document(docs[i].in, strlen(docs[i].in), &limits, &el, &cond);
        CHECK(rc == docs[i].rc, "document %zu: expected %d got %d (%s)", i, docs[i].rc, rc,
              cond ? cond : "-");
        CHECK(docs[i].cond ? (cond && strcmp(cond, docs[i].cond) == 0) : (el != NULL),
              "document %zu: expected %s got %s", i, docs[i].cond ? docs[i].cond : "a tree",
              cond ? cond : "-");
        gw_xml_free(el);
    }
    char *huge = malloc(20000);
    memset(huge, ' ', 20000);
    memcpy(huge, "<a>", 3);
    memcpy(huge + 19996, "</a>", 4);
    struct gw_xml *el = NULL;
    const char *cond = NULL;
    rc = gw_xml_parse_document(huge, 20000, &limits, &el, &cond);
    CHECK(rc == GW_ELIMIT && cond && strcmp(cond, "policy-violation") == 0,
          "expected a document over the limit refused, got %d", rc);
    free(huge);

    return CHECK_DONE();
}
