/* Tests for web/bosh_body.c: request wrappers with the answer each must get (XEP-0124 §6-§7,
 * CHECKLIST 1C), and the parsed attributes of full requests. */
#include "tests/unit/check.h"
#include "gateway/err.h"
#include "web/bosh_body.h"

#include <string.h>

struct body_case {
    const char *xml;
    int ok; /* 1: parses; 0: refused */
    const char *condition;
};

#define B "<body xmlns='http://jabber.org/protocol/httpbind' "

static const struct body_case body_cases[] = {
    {B "rid='1' to='localhost' wait='60' hold='1' ver='1.6'/>", 1, NULL},
    {B "rid='9007199254740991' sid='s'/>", 1, NULL},
    {B "rid='9007199254740992' sid='s'/>", 0, "bad-request"},
    {B "rid='99999999999999999999999999' sid='s'/>", 0, "bad-request"},
    {B "rid='0' sid='s'/>", 0, "bad-request"},
    {B "rid='-5' sid='s'/>", 0, "bad-request"},
    {B "rid='1e3' sid='s'/>", 0, "bad-request"},
    {B "rid=' 12' sid='s'/>", 0, "bad-request"},
    {B "rid='' sid='s'/>", 0, "bad-request"},
    {B "sid='s'/>", 0, "bad-request"},
    {B "rid='5' sid=''/>", 0, "bad-request"},
    {B "rid='5' to='localhost' wait='1.5'/>", 0, "bad-request"},
    {B "rid='5' to='localhost' wait='-1'/>", 0, "bad-request"},
    {B "rid='5' to='localhost' wait='99999999999999999999'/>", 1, NULL},
    {B "rid='5' to='localhost' wait='60' hold='x'/>", 0, "bad-request"},
    {B "rid='5' to='localhost' wait='60' ver='one'/>", 0, "bad-request"},
    {B "rid='5' sid='s' pause='1.5'/>", 0, "bad-request"},
    {B "rid='5' sid='s' type='error'/>", 0, "bad-request"},
    {B "rid='5' sid='s' type='terminate'/>", 1, NULL},
    {B "rid='5' sid='s' key='zz'/>", 0, "bad-request"},
    {B "rid='5' sid='s' key='0123456789abcdef0123456789abcdef01234567'/>", 1, NULL},
    {B "rid='5' sid='s' content='text/xml&#13;&#10;X-Injected: 1'/>", 0, "bad-request"},
    {B "rid='5' sid='s'>stray text</body>", 0, "bad-request"},
    {B "rid='5' sid='s'>\n  <message xmlns='jabber:client'/>\n</body>", 1, NULL},
    {"<body xmlns='urn:other' rid='5' sid='s'/>", 0, "bad-request"},
    {"<notbody xmlns='http://jabber.org/protocol/httpbind' rid='5' sid='s'/>", 0, "bad-request"},
    {B "rid='5' sid='s'>", 0, "bad-request"},
    {"<?xml version='1.0'?><!DOCTYPE body [<!ENTITY x 'y'>]>" B "rid='5' sid='s'/>", 0,
     "bad-request"},
    {B "rid='5' sid='s'><!-- hi --></body>", 0, "bad-request"},
    {B "rid='5' sid='s'><?pi x?></body>", 0, "bad-request"},
    {B "rid='5' sid='s'/><body/>", 0, "bad-request"},
    {"", 0, "bad-request"},
    {B "rid='5' sid='s'><a><b><c><d><e><f><g><h/></g></f></e></d></c></b></a></body>", 0,
     "policy-violation"},
};

static void test_bodies(void)
{
    struct gw_xml_limits lim = {4096, 6, 32};
    struct gw_xml_doc *doc = gw_xml_doc_new(); /* every other case through a kept parser */
    for (size_t i = 0; i < sizeof body_cases / sizeof body_cases[0]; i++) {
        const struct body_case *c = &body_cases[i];
        struct gw_bosh_body b;
        const char *cond = NULL;
        int rc = gw_bosh_body_parse(i % 2 ? doc : NULL, c->xml, strlen(c->xml), &lim, &b, &cond);
        CHECK((rc == 0) == (c->ok == 1), "body %zu (%s): expected %s, got %d", i, c->xml,
              c->ok ? "ok" : "refused", rc);
        if (rc != 0 && c->condition)
            CHECK(cond && strcmp(cond, c->condition) == 0, "body %zu: expected %s, got %s", i,
                  c->condition, cond ? cond : "(null)");
        if (rc == 0)
            gw_bosh_body_free(&b);
    }
    /* The parsed fields of a full creation request. */
    const char *create = B "xmlns:xmpp='urn:xmpp:xbosh' rid='1573741820' to='jabber.org' "
                           "wait='600' hold='3' ver='1.11' ack='1' xml:lang='en' "
                           "xmpp:version='1.0' route='xmpp:jabber.org:9999' "
                           "newkey='ca393b51b682f61f98e7877d61146407f3d0a770' "
                           "content='text/xml; charset=utf-8'/>";
    struct gw_bosh_body b;
    const char *cond;
    CHECK(gw_bosh_body_parse(doc, create, strlen(create), &lim, &b, &cond) == 0,
          "expected the creation request to parse");
    CHECK(b.rid == 1573741820ULL && !b.sid && strcmp(b.to, "jabber.org") == 0 && b.wait == 600 &&
              b.hold == 3 && b.ver_major == 1 && b.ver_minor == 11 && b.ack_requested &&
              strcmp(b.lang, "en") == 0 && strcmp(b.xmpp_version, "1.0") == 0 &&
              strcmp(b.route, "xmpp:jabber.org:9999") == 0 && b.newkey &&
              strcmp(b.content, "text/xml; charset=utf-8") == 0,
          "expected every creation attribute parsed");
    gw_bosh_body_free(&b);
    const char *restart = B "xmlns:xmpp='urn:xmpp:xbosh' rid='7' sid='abc' xmpp:restart='true' "
                            "pause='30' ack='6'><presence xmlns='jabber:client'/></body>";
    CHECK(gw_bosh_body_parse(doc, restart, strlen(restart), &lim, &b, &cond) == 0 && b.restart &&
              b.has_pause && b.pause == 30 && b.has_ack && b.ack == 6 && !b.ack_requested &&
              b.npayloads == 1 && strcmp(b.sid, "abc") == 0,
          "expected restart, pause, ack and one payload");
    gw_bosh_body_free(&b);
    gw_xml_doc_free(doc);

    uint64_t v;
    CHECK(gw_bosh_parse_uint("18446744073709551616", 60, &v) == 0 && v == 60,
          "expected saturation at the maximum");
    CHECK(gw_bosh_legacy_status("item-not-found") == 404 &&
              gw_bosh_legacy_status("policy-violation") == 403 &&
              gw_bosh_legacy_status("bad-request") == 400 &&
              gw_bosh_legacy_status("host-unknown") == 200,
          "expected the legacy HTTP statuses of XEP-0124 §17.1");
}

int main(void)
{
    test_bodies();
    return CHECK_DONE();
}
