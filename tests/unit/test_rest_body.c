/* Tests for web/rest_body.c: request bodies into stanzas (JSON and XML forms, the sender, the
 * refusals), the RFC 9457 problem writer, and the Accept, Content-Type and request-id checks. */
#include "web/rest_body.h"

#include "check.h"
#include "gateway/err.h"

#include <stdlib.h>
#include <string.h>

static const struct gw_xml_limits lim = {10000, 16, 16};

static void test_stanzas(void)
{
    static const struct {
        const char *body;
        enum gw_rest_form form;
        bool message_only;
        int rc;
        const char *name, *from, *to, *type;
    } cases[] = {
        {"{\"to\":\"bob@x.example\",\"b\":\"hi\"}", GW_REST_JSON, true, 0, "message", NULL,
         "bob@x.example", "chat"},
        {"{\"f\":\"o@gw.example\",\"to\":\"r@muc.example\",\"type\":\"groupchat\",\"b\":\"hi\"}",
         GW_REST_JSON, true, 0, "message", "o@gw.example", "r@muc.example", "groupchat"},
        {"{\"t\":\"m\",\"to\":\"bob@x.example\",\"s\":\"subj\",\"th\":\"t1\"}", GW_REST_JSON, true,
         0, "message", NULL, "bob@x.example", "chat"},
        {"{\"t\":\"iq\",\"to\":\"x.example\",\"type\":\"get\",\"id\":\"1\",\"x\":[{\"n\":"
         "\"query\",\"ns\":\"jabber:iq:version\"}]}",
         GW_REST_JSON, false, 0, "iq", NULL, "x.example", "get"},
        {"{\"t\":\"iq\",\"to\":\"x.example\",\"type\":\"get\",\"id\":\"1\"}", GW_REST_JSON, true,
         GW_EINVAL, NULL, NULL, NULL, NULL},
        {"{\"t\":\"p\",\"to\":\"r@muc.example/n\"}", GW_REST_JSON, false, 0, "presence", NULL,
         "r@muc.example/n", NULL},
        {"{\"b\":\"no to\"}", GW_REST_JSON, true, GW_EINVAL, NULL, NULL, NULL, NULL},
        {"{\"to\":\"bob@x.example\",\"f\":7}", GW_REST_JSON, true, GW_EINVAL, NULL, NULL, NULL,
         NULL},
        {"{\"to\":\"bob@x.example\",\"zz\":1}", GW_REST_JSON, true, GW_EINVAL, NULL, NULL, NULL,
         NULL},
        {"{\"to\":\"bob@@x.example\",\"b\":\"x\"}", GW_REST_JSON, true, GW_EINVAL, NULL, NULL, NULL,
         NULL},
        {"[1]", GW_REST_JSON, true, GW_EINVAL, NULL, NULL, NULL, NULL},
        {"{\"to\":\"a@b\",\"to\":\"c@d\"}", GW_REST_JSON, true, GW_EINVAL, NULL, NULL, NULL, NULL},
        {"<message to='bob@x.example' from='o@gw.example'><body>hi</body></message>", GW_REST_XML,
         false, 0, "message", "o@gw.example", "bob@x.example", NULL},
        {"<iq xmlns='jabber:client' type='get' to='x.example' id='a'><ping "
         "xmlns='urn:xmpp:ping'/></iq>",
         GW_REST_XML, false, 0, "iq", NULL, "x.example", "get"},
        {"<stream xmlns='jabber:client'/>", GW_REST_XML, false, GW_EINVAL, NULL, NULL, NULL, NULL},
        {"<message xmlns='jabber:server' to='a@b'/>", GW_REST_XML, false, GW_EINVAL, NULL, NULL,
         NULL, NULL},
        {"<message to='a@@b'/>", GW_REST_XML, false, GW_EINVAL, NULL, NULL, NULL, NULL},
        {"<!DOCTYPE m><message to='a@b'/>", GW_REST_XML, false, GW_EINVAL, NULL, NULL, NULL, NULL},
        {"<message to='a@b'><!-- c --></message>", GW_REST_XML, false, GW_EINVAL, NULL, NULL, NULL,
         NULL},
        {"<message to='a@b'/><message to='a@b'/>", GW_REST_XML, false, GW_EINVAL, NULL, NULL, NULL,
         NULL},
        {"<message to='a@b'", GW_REST_XML, false, GW_EINVAL, NULL, NULL, NULL, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct gw_rest_stanza st;
        char err[200] = "";
        int rc = gw_rest_stanza_parse(cases[i].body, strlen(cases[i].body), cases[i].form,
                                      cases[i].message_only, &lim, &st, err, sizeof err);
        CHECK(rc == cases[i].rc, "case %zu: expected rc %d got %d (%s)", i, cases[i].rc, rc, err);
        if (rc != 0 || cases[i].rc != 0) {
            CHECK(rc == 0 || err[0], "case %zu: a refusal says why", i);
            continue;
        }
        CHECK(strcmp(st.el->name, cases[i].name) == 0, "case %zu: name %s", i, st.el->name);
        CHECK(st.el->ns && strcmp(st.el->ns, GW_NS_CLIENT) == 0, "case %zu: jabber:client", i);
        CHECK(!gw_xml_attr(st.el, "from"), "case %zu: from is removed from the stanza", i);
        CHECK((!cases[i].from && !st.from) ||
                  (cases[i].from && st.from && strcmp(st.from, cases[i].from) == 0),
              "case %zu: sender %s", i, st.from ? st.from : "(none)");
        const char *to = gw_xml_attr(st.el, "to"), *type = gw_xml_attr(st.el, "type");
        CHECK(to && strcmp(to, cases[i].to) == 0, "case %zu: to %s", i, to ? to : "(none)");
        CHECK((!cases[i].type && !type) || (cases[i].type && type && !strcmp(type, cases[i].type)),
              "case %zu: type %s", i, type ? type : "(none)");
        gw_rest_stanza_free(&st);
    }
    /* Size: over the cap is GW_ELIMIT, in either form. */
    char big[12000];
    memset(big, 'a', sizeof big);
    memcpy(big, "{\"to\":\"a@b\",\"b\":\"", 17);
    memcpy(big + sizeof big - 3, "\"}", 2);
    big[sizeof big - 1] = '\0';
    struct gw_rest_stanza st;
    char err[200];
    CHECK(gw_rest_stanza_parse(big, strlen(big), GW_REST_JSON, true, &lim, &st, err, sizeof err) ==
              GW_ELIMIT,
          "big JSON");
    CHECK(gw_rest_stanza_parse(big, strlen(big), GW_REST_XML, false, &lim, &st, err, sizeof err) ==
              GW_ELIMIT,
          "big XML");
    /* Escaping grows text: within the JSON cap, over the stanza cap as XML. */
    struct gw_xml_limits small = {400, 16, 16};
    char grow[400];
    strcpy(grow, "{\"to\":\"a@b\",\"b\":\"");
    size_t n = strlen(grow);
    while (n < sizeof grow - 4)
        grow[n++] = '<';
    strcpy(grow + n, "\"}");
    CHECK(gw_rest_stanza_parse(grow, strlen(grow), GW_REST_JSON, true, &small, &st, err,
                               sizeof err) == GW_ELIMIT,
          "escaped XML over the cap: %s", err);
}

static void test_problem(void)
{
    struct gw_json_out *w = gw_json_out_new(NULL);
    size_t len;
    const char *text = gw_rest_problem(w, 401, "unauthorized", "a key \"please\"", "r-1", &len);
    const char *want = "{\"type\":\"urn:mxgw:problem:unauthorized\",\"title\":\"Unauthorized\","
                       "\"status\":401,\"detail\":\"a key \\\"please\\\"\",\"request_id\":\"r-1\"}";
    CHECK(strcmp(text, want) == 0 && len == strlen(want), "problem %s", text);
    text = gw_rest_problem(w, 429, "rate-limited", NULL, NULL, &len);
    CHECK(strcmp(text, "{\"type\":\"urn:mxgw:problem:rate-limited\",\"title\":\"Too Many "
                       "Requests\",\"status\":429}") == 0,
          "problem without detail %s", text);
    CHECK(strcmp(gw_rest_status_phrase(413), "Content Too Large") == 0, "phrase 413");
    CHECK(strcmp(gw_rest_status_phrase(299), "Error") == 0, "phrase unknown");
    gw_json_out_free(w);
}

static void test_headers(void)
{
    static const struct {
        const char *accept;
        bool ok;
    } accepts[] = {
        {NULL, true},
        {"", true},
        {"application/json", true},
        {"application/problem+json", true},
        {"text/html, application/json;q=0.5", true},
        {"*/*", true},
        {"application/*", true},
        {"APPLICATION/JSON", true},
        {"text/html", false},
        {"application/json;q=0", false},
        {"application/json; q=0.0, text/html", false},
        {"application/xml", false},
        {"text/*", false},
        {"application/jsonx", false},
    };
    for (size_t i = 0; i < sizeof accepts / sizeof accepts[0]; i++)
        CHECK(gw_rest_accepts_json(accepts[i].accept) == accepts[i].ok, "Accept '%s'",
              accepts[i].accept ? accepts[i].accept : "(none)");
    static const struct {
        const char *ct;
        int kind;
    } types[] = {
        {"application/json", 1},
        {"application/json; charset=utf-8", 1},
        {"application/json;charset=\"UTF-8\"", 1},
        {"Application/JSON", 1},
        {"application/json; charset=latin1", 0},
        {"application/json; boundary=x", 0},
        {"application/xml", 2},
        {"text/xml; charset=utf-8", 2},
        {"text/plain", 0},
        {"multipart/form-data; boundary=a", 0},
        {"application/x-www-form-urlencoded", 0},
        {"application/jsonp", 0},
        {NULL, 0},
    };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        CHECK(gw_rest_media_type(types[i].ct) == types[i].kind, "Content-Type '%s'",
              types[i].ct ? types[i].ct : "(none)");
    CHECK(gw_rest_request_id_ok("abc-DEF_1.2"), "id ok");
    CHECK(!gw_rest_request_id_ok(""), "empty id");
    CHECK(!gw_rest_request_id_ok("a b"), "space");
    CHECK(!gw_rest_request_id_ok("a\nb"), "newline");
    char long_id[70];
    memset(long_id, 'a', 65);
    long_id[65] = '\0';
    CHECK(!gw_rest_request_id_ok(long_id), "65 chars");
    long_id[64] = '\0';
    CHECK(gw_rest_request_id_ok(long_id), "64 chars");
}

int main(void)
{
    test_stanzas();
    test_problem();
    test_headers();
    return CHECK_DONE();
}
