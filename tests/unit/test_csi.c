/* Tests for xmpp/csi.c: a table of stanzas and what an inactive client gets: at once, later,
 * or only the newest per key. */
#include "tests/unit/check.h"
#include "xmpp/csi.h"
#include "xmpp/stream.h"

#include <stdlib.h>
#include <string.h>

#define C "xmlns='jabber:client' "

struct row {
    const char *xml;
    enum gw_csi_class want;
    const char *key;
};

static const struct row rows[] = {
    {"<iq " C "type='get' id='1' from='a@x/r'><ping xmlns='urn:xmpp:ping'/></iq>", GW_CSI_URGENT,
     NULL},
    {"<message " C "from='b@x/r' type='chat'><body>hi</body></message>", GW_CSI_URGENT, NULL},
    {"<message " C "from='b@x/r'><body>no type</body></message>", GW_CSI_URGENT, NULL},
    {"<message " C "from='b@x/r' type='chat'><composing "
     "xmlns='http://jabber.org/protocol/chatstates'/></message>",
     GW_CSI_COALESCE, "cs b@x/r"},
    {"<message " C "from='b@x/r' type='chat'><paused "
     "xmlns='http://jabber.org/protocol/chatstates'/><thread>t</thread></message>",
     GW_CSI_COALESCE, "cs b@x/r"},
    {"<message " C "from='b@x/r' type='chat'><active "
     "xmlns='http://jabber.org/protocol/chatstates'/><body>with body</body></message>",
     GW_CSI_URGENT, NULL},
    {"<message " C "from='b@x/r'><received xmlns='urn:xmpp:receipts' id='m1'/></message>",
     GW_CSI_HOLD, NULL},
    {"<message " C "from='b@x/r'><displayed xmlns='urn:xmpp:chat-markers:0' id='m1'/></message>",
     GW_CSI_HOLD, NULL},
    {"<message " C "from='b@x/r' type='error'><error type='cancel'/></message>", GW_CSI_URGENT,
     NULL},
    {"<message " C "from='b@x/r'><encrypted xmlns='eu.siacs.conversations.axolotl'/></message>",
     GW_CSI_URGENT, NULL},
    {"<message " C "from='b@x/r'><openpgp xmlns='urn:xmpp:openpgp:0'>x</openpgp></message>",
     GW_CSI_URGENT, NULL},
    {"<message " C "from='room@muc'><x xmlns='http://jabber.org/protocol/muc#user'><invite "
     "from='b@x'/></x></message>",
     GW_CSI_URGENT, NULL},
    {"<message " C "from='b@x'><x xmlns='jabber:x:conference' jid='room@muc'/></message>",
     GW_CSI_URGENT, NULL},
    {"<message " C "from='b@x/r'><propose xmlns='urn:xmpp:jingle-message:0' id='c1'><description "
     "xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/></propose></message>",
     GW_CSI_URGENT, NULL},
    {"<message " C "from='room@muc/bob' type='groupchat'><body>lunch?</body></message>",
     GW_CSI_HOLD, NULL},
    {"<message " C "from='room@muc/bob' type='groupchat'><body>hey ALICE, lunch?</body></message>",
     GW_CSI_URGENT, NULL},
    {"<message " C "from='room@muc' type='groupchat'><subject>topic</subject></message>",
     GW_CSI_HOLD, NULL},
    {"<message " C "from='a@x'><received xmlns='urn:xmpp:carbons:2'><forwarded "
     "xmlns='urn:xmpp:forward:0'><message " C "from='b@x/r' type='chat'><body>carried</body>"
     "</message></forwarded></received></message>",
     GW_CSI_URGENT, NULL},
    {"<message " C "from='a@x'><received xmlns='urn:xmpp:carbons:2'><forwarded "
     "xmlns='urn:xmpp:forward:0'><message " C "from='b@x/r' type='chat'><composing "
     "xmlns='http://jabber.org/protocol/chatstates'/></message></forwarded></received></message>",
     GW_CSI_HOLD, NULL},
    {"<message " C "from='a@x'><sent xmlns='urn:xmpp:carbons:2'><forwarded "
     "xmlns='urn:xmpp:forward:0'><message " C "to='b@x/r' type='chat'><body>mine</body>"
     "</message></forwarded></sent></message>",
     GW_CSI_HOLD, NULL},
    {"<presence " C "from='b@x/r'><show>away</show></presence>", GW_CSI_COALESCE, "p b@x/r"},
    {"<presence " C "from='b@x/r' type='unavailable'/>", GW_CSI_COALESCE, "p b@x/r"},
    {"<presence " C "from='b@x' type='subscribe'/>", GW_CSI_URGENT, NULL},
    {"<presence " C "from='b@x/r' type='error'/>", GW_CSI_URGENT, NULL},
    {"<other xmlns='urn:example'/>", GW_CSI_URGENT, NULL},
};

int main(void)
{
    struct gw_xml_limits lim = {65536, 32, 32};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct gw_xml *el = NULL;
        const char *cond = NULL;
        int rc = gw_xml_parse_document(rows[i].xml, strlen(rows[i].xml), &lim, &el, &cond);
        CHECK(rc == 0, "row %zu: expected the XML to parse (%s)", i, cond ? cond : "");
        if (rc)
            continue;
        char *key = NULL;
        enum gw_csi_class got = gw_csi_classify(el, "alice", &key);
        CHECK(got == rows[i].want, "row %zu (%.60s): expected class %d, got %d", i, rows[i].xml,
              rows[i].want, got);
        CHECK((!key && !rows[i].key) || (key && rows[i].key && strcmp(key, rows[i].key) == 0),
              "row %zu: expected key %s, got %s", i, rows[i].key ? rows[i].key : "(none)",
              key ? key : "(none)");
        free(key);
        gw_xml_free(el);
    }
    /* Without a nickname, a groupchat body never counts as a mention. */
    const char *gc =
        "<message " C "from='room@muc/bob' type='groupchat'><body>alice</body></message>";
    struct gw_xml *el = NULL;
    const char *cond;
    gw_xml_parse_document(gc, strlen(gc), &lim, &el, &cond);
    char *key;
    CHECK(gw_csi_classify(el, NULL, &key) == GW_CSI_HOLD, "expected no mention without a nick");
    gw_xml_free(el);
    return CHECK_DONE();
}
