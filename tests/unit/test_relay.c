/* Tests for web/relay.c: the stream features a relayed (RFC 7395 or BOSH) client is shown keep
 * no channel binding to the TLS channel between mxgw and the server (RFC 5802 §6, XEP-0440),
 * and everything else is relayed unchanged. */
#include "tests/unit/check.h"
#include "web/relay.h"
#include "xmpp/stream.h"

#include <string.h>

struct strip_case {
    const char *in;
    const char *out; /* the element as serialized after stripping */
};

#define F  "<stream:features xmlns:stream='http://etherx.jabber.org/streams'>"
#define FC "</stream:features>"
#define M  "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"

static const struct strip_case strip_cases[] = {
    /* Prosody's offer on a TLS stream: the -PLUS variants go, the order of the rest stays. */
    {F M "<mechanism>SCRAM-SHA-256</mechanism><mechanism>SCRAM-SHA-256-PLUS</mechanism>"
         "<mechanism>SCRAM-SHA-1</mechanism><mechanism>SCRAM-SHA-1-PLUS</mechanism>"
         "<mechanism>PLAIN</mechanism></mechanisms>" FC,
     F M "<mechanism>SCRAM-SHA-256</mechanism><mechanism>SCRAM-SHA-1</mechanism>"
         "<mechanism>PLAIN</mechanism></mechanisms>" FC},
    /* The last mechanism removed: the list's tail must follow, so an append lands right. */
    {F M "<mechanism>PLAIN</mechanism><mechanism>SCRAM-SHA-1-PLUS</mechanism></mechanisms>" FC,
     F M "<mechanism>PLAIN</mechanism></mechanisms>" FC},
    /* Whitespace around a name and lower case are still -PLUS. */
    {F M "<mechanism> scram-sha-1-plus\n</mechanism><mechanism>SCRAM-SHA-1</mechanism>"
         "</mechanisms>" FC,
     F M "<mechanism>SCRAM-SHA-1</mechanism></mechanisms>" FC},
    /* Only -PLUS offered: nothing usable is left, and the client says so itself. */
    {F M "<mechanism>SCRAM-SHA-1-PLUS</mechanism></mechanisms>" FC,
     F "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>" FC},
    /* XEP-0440's channel-binding types and XEP-0388's -PLUS mechanisms go too. */
    {F "<sasl-channel-binding xmlns='urn:xmpp:sasl-cb:0'><channel-binding type='tls-exporter'/>"
       "</sasl-channel-binding><authentication xmlns='urn:xmpp:sasl:2'>"
       "<mechanism>SCRAM-SHA-256-PLUS</mechanism><mechanism>SCRAM-SHA-256</mechanism>"
       "</authentication>" FC,
     F "<authentication xmlns='urn:xmpp:sasl:2'><mechanism>SCRAM-SHA-256</mechanism>"
       "</authentication>" FC},
    /* Post-authentication features and names merely containing PLUS are left alone. */
    {F "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><required/></bind>"
       "<sm xmlns='urn:xmpp:sm:3'><optional/></sm>" FC,
     F "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><required/></bind>"
       "<sm xmlns='urn:xmpp:sm:3'><optional/></sm>" FC},
    {F M "<mechanism>X-PLUSSED</mechanism><mechanism>PLUS</mechanism></mechanisms>" FC,
     F M "<mechanism>X-PLUSSED</mechanism><mechanism>PLUS</mechanism></mechanisms>" FC},
    /* A <mechanisms/> in another namespace, and anything that is not features, pass as is. */
    {F "<mechanisms xmlns='urn:other'><mechanism>A-PLUS</mechanism></mechanisms>" FC,
     F "<mechanisms xmlns='urn:other'><mechanism>A-PLUS</mechanism></mechanisms>" FC},
    {"<message xmlns='jabber:client'><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
     "<mechanism>SCRAM-SHA-1-PLUS</mechanism></mechanisms></message>",
     "<message xmlns='jabber:client'><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
     "<mechanism>SCRAM-SHA-1-PLUS</mechanism></mechanisms></message>"},
};

static void test_strip(void)
{
    struct gw_xml_limits lim = {65536, 16, 16};
    for (size_t i = 0; i < sizeof strip_cases / sizeof strip_cases[0]; i++) {
        const struct strip_case *c = &strip_cases[i];
        struct gw_xml *el = NULL;
        const char *cond = NULL;
        int rc = gw_xml_parse_document(c->in, strlen(c->in), &lim, &el, &cond);
        CHECK(rc == 0, "case %zu: parse: expected 0, got %d (%s)", i, rc, cond ? cond : "-");
        if (rc != 0)
            continue;
        gw_relay_strip_channel_binding(el);
        /* The tail pointer is right if appending after the strip lands last. */
        struct gw_xml *last = el->last_child;
        struct gw_xml *walk = el->children;
        while (walk && walk->next)
            walk = walk->next;
        CHECK(last == walk, "case %zu: last_child does not point at the last child", i);
        for (struct gw_xml *ch = el->children; ch; ch = ch->next) {
            if (ch->kind != GW_XML_ELEMENT)
                continue;
            struct gw_xml *t = ch->children;
            while (t && t->next)
                t = t->next;
            CHECK(ch->last_child == t, "case %zu: <%s/> last_child is stale", i, ch->name);
        }
        struct gw_buf out;
        gw_buf_init(&out, 0);
        rc = gw_xml_serialize(&out, el, NULL);
        CHECK(rc == 0, "case %zu: serialize: expected 0, got %d", i, rc);
        if (rc == 0)
            CHECK(out.len == strlen(c->out) && memcmp(out.data, c->out, out.len) == 0,
                  "case %zu:\n  expected %s\n  got      %.*s", i, c->out, (int)out.len, out.data);
        gw_buf_free(&out);
        gw_xml_free(el);
    }
}

int main(void)
{
    test_strip();
    return CHECK_DONE();
}
