/* Tests for push/policy.c: a table of stanzas (messages with bodies, encrypted payloads, invites
 * both ways, call proposals, groupchat with and without mentions, carbons received, sent and
 * forged, and everything that must never push: presence, chat states, receipts, markers,
 * errors, headlines, subjects, our own reflected groupchat messages) classified for one account,
 * the policy switches, what each registration's groupchat choice wants, and XEP-0357 publish
 * requests as Prosody's mod_cloud_notify sends them. */
#include "tests/unit/check.h"
#include "gateway/err.h"
#include "push/policy.h"
#include "xmpp/stream.h"

#include <stdlib.h>
#include <string.h>

#define ME  "romeo@montague.example"
#define C   "xmlns='jabber:client'"
#define MSG "<message " C " to='" ME "/phone' from='juliet@capulet.example/balcony' "

static const struct gw_xml_limits lim = {65536, 32, 32};

static struct gw_xml *parse(const char *text)
{
    struct gw_xml *el = NULL;
    const char *cond;
    int rc = gw_xml_parse_document(text, strlen(text), &lim, &el, &cond);
    CHECK(rc == 0, "bad test stanza (%s): %.80s", rc ? cond : "", text);
    return el;
}

struct case_ {
    const char *name;
    const char *xml;
    const char *nick;
    enum gw_push_kind kind;
    bool urgent;
    const char *sender, *body, *room;
};

static const struct case_ cases[] = {
    {"chat with a body", MSG "type='chat'><body>Wherefore art thou?</body></message>", NULL,
     GW_PUSH_BODY, false, "juliet@capulet.example", "Wherefore art thou?", NULL},
    {"normal, no type", MSG "><body>hi</body></message>", NULL, GW_PUSH_BODY, false,
     "juliet@capulet.example", "hi", NULL},
    {"body and chat state",
     MSG "type='chat'><body>x</body><active "
         "xmlns='http://jabber.org/protocol/chatstates'/></message>",
     NULL, GW_PUSH_BODY, false, "juliet@capulet.example", "x", NULL},
    {"whitespace body", MSG "type='chat'><body>  \n </body></message>", NULL, GW_PUSH_NONE, false,
     NULL, NULL, NULL},
    {"chat state",
     MSG "type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/>"
         "</message>",
     NULL, GW_PUSH_NONE, false, NULL, NULL, NULL},
    {"receipt", MSG "type='chat'><received xmlns='urn:xmpp:receipts' id='m1'/></message>", NULL,
     GW_PUSH_NONE, false, NULL, NULL, NULL},
    {"marker", MSG "type='chat'><displayed xmlns='urn:xmpp:chat-markers:0' id='m1'/></message>",
     NULL, GW_PUSH_NONE, false, NULL, NULL, NULL},
    {"error", MSG "type='error'><body>bounced</body><error type='cancel'/></message>", NULL,
     GW_PUSH_NONE, false, NULL, NULL, NULL},
    {"headline", MSG "type='headline'><body>news</body></message>", NULL, GW_PUSH_NONE, false, NULL,
     NULL, NULL},
    {"presence", "<presence " C " from='juliet@capulet.example/balcony'/>", NULL, GW_PUSH_NONE,
     false, NULL, NULL, NULL},
    {"subscription request", "<presence " C " from='juliet@capulet.example' type='subscribe'/>",
     NULL, GW_PUSH_NONE, false, NULL, NULL, NULL},
    {"iq", "<iq " C " type='get' id='1' from='capulet.example'><ping xmlns='urn:xmpp:ping'/></iq>",
     NULL, GW_PUSH_NONE, false, NULL, NULL, NULL},
    {"OMEMO",
     MSG "type='chat'><encrypted xmlns='eu.siacs.conversations.axolotl'/>"
         "<body>I sent you an OMEMO encrypted message</body></message>",
     NULL, GW_PUSH_ENCRYPTED, false, "juliet@capulet.example", NULL, NULL},
    {"OMEMO 2", MSG "type='chat'><encrypted xmlns='urn:xmpp:omemo:2'/></message>", NULL,
     GW_PUSH_ENCRYPTED, false, "juliet@capulet.example", NULL, NULL},
    {"OpenPGP", MSG "type='chat'><openpgp xmlns='urn:xmpp:openpgp:0'>b64</openpgp></message>", NULL,
     GW_PUSH_ENCRYPTED, false, NULL, NULL, NULL},
    {"legacy PGP", MSG "type='chat'><x xmlns='jabber:x:encrypted'>b64</x></message>", NULL,
     GW_PUSH_ENCRYPTED, false, NULL, NULL, NULL},
    {"call proposal",
     MSG "><propose xmlns='urn:xmpp:jingle-message:0' id='c1'><description "
         "xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/></propose></message>",
     NULL, GW_PUSH_CALL, true, "juliet@capulet.example", NULL, NULL},
    {"call retracted", MSG "><retract xmlns='urn:xmpp:jingle-message:0' id='c1'/></message>", NULL,
     GW_PUSH_NONE, false, NULL, NULL, NULL},
    {"mediated invite",
     "<message " C " to='" ME "' from='garden@chat.example'><x "
     "xmlns='http://jabber.org/protocol/muc#user'><invite from='juliet@capulet.example/b'>"
     "<reason>Hey</reason></invite></x><body>juliet invites you</body></message>",
     NULL, GW_PUSH_INVITE, false, "juliet@capulet.example", "juliet invites you",
     "garden@chat.example"},
    {"direct invite", MSG "><x xmlns='jabber:x:conference' jid='garden@chat.example'/></message>",
     NULL, GW_PUSH_INVITE, false, "juliet@capulet.example", NULL, "garden@chat.example"},
    {"groupchat",
     "<message " C " type='groupchat' from='garden@chat.example/nurse' to='" ME
     "/phone'><body>lunch?</body></message>",
     "romeo", GW_PUSH_GROUPCHAT, false, "garden@chat.example/nurse", "lunch?",
     "garden@chat.example"},
    {"groupchat naming the nick",
     "<message " C " type='groupchat' from='garden@chat.example/nurse'><body>RoMeO, lunch?</body>"
     "</message>",
     "romeo", GW_PUSH_MENTION, false, "garden@chat.example/nurse", "RoMeO, lunch?",
     "garden@chat.example"},
    {"nick inside a word is no mention",
     "<message " C " type='groupchat' from='garden@chat.example/nurse'><body>romeos all</body>"
     "</message>",
     "romeo", GW_PUSH_GROUPCHAT, false, NULL, NULL, NULL},
    {"localpart when the nick is unknown",
     "<message " C " type='groupchat' from='garden@chat.example/nurse'><body>ask romeo</body>"
     "</message>",
     NULL, GW_PUSH_MENTION, false, NULL, NULL, NULL},
    {"XEP-0372 reference",
     "<message " C " type='groupchat' from='garden@chat.example/nurse'><body>hey you</body>"
     "<reference xmlns='urn:xmpp:reference:0' type='mention' uri='xmpp:" ME "'/></message>",
     "rom", GW_PUSH_MENTION, false, NULL, NULL, NULL},
    {"our own reflection",
     "<message " C " type='groupchat' from='garden@chat.example/romeo'><body>romeo here</body>"
     "</message>",
     "romeo", GW_PUSH_NONE, false, NULL, NULL, NULL},
    {"room subject",
     "<message " C " type='groupchat' from='garden@chat.example/nurse'><subject>"
     "Lunch</subject><body>Lunch</body></message>",
     "romeo", GW_PUSH_NONE, false, NULL, NULL, NULL},
    {"room itself",
     "<message " C " type='groupchat' from='garden@chat.example'><body>room is "
     "now logged</body></message>",
     "romeo", GW_PUSH_NONE, false, NULL, NULL, NULL},
    {"groupchat chat state",
     "<message " C " type='groupchat' from='garden@chat.example/nurse'>"
     "<composing xmlns='http://jabber.org/protocol/chatstates'/></message>",
     "romeo", GW_PUSH_NONE, false, NULL, NULL, NULL},
    {"carbon received",
     "<message " C " from='" ME "' to='" ME "/phone'><received xmlns='urn:xmpp:carbons:2'>"
     "<forwarded xmlns='urn:xmpp:forward:0'><message " C " type='chat' from='juliet@capulet."
     "example/balcony' to='" ME "/laptop'><body>to the laptop</body></message></forwarded>"
     "</received></message>",
     NULL, GW_PUSH_BODY, false, "juliet@capulet.example", "to the laptop", NULL},
    {"carbon sent",
     "<message " C " from='" ME "' to='" ME "/phone'><sent xmlns='urn:xmpp:carbons:2'>"
     "<forwarded xmlns='urn:xmpp:forward:0'><message " C " type='chat' to='juliet@capulet."
     "example' from='" ME "/laptop'><body>from the laptop</body></message></forwarded></sent>"
     "</message>",
     NULL, GW_PUSH_NONE, false, NULL, NULL, NULL},
    {"forged carbon",
     "<message " C " from='mallory@evil.example' to='" ME "/phone'><received "
     "xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'><message " C
     " type='chat' from='juliet@capulet.example/b'><body>trust me</body></message></forwarded>"
     "</received></message>",
     NULL, GW_PUSH_NONE, false, NULL, NULL, NULL},
};

static bool same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static const struct gw_push_policy all = {true, true, true, true, true, true, 256};

static void test_classify(void)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct case_ *c = &cases[i];
        struct gw_xml *el = parse(c->xml);
        if (!el)
            continue;
        struct gw_push_event ev;
        gw_push_classify(&all, ME, c->nick, el, &ev);
        CHECK(ev.kind == c->kind, "%s: expected %s, got %s", c->name, gw_push_kind_name(c->kind),
              gw_push_kind_name(ev.kind));
        if (c->kind != GW_PUSH_NONE && c->sender) {
            CHECK(ev.urgent == c->urgent, "%s: expected urgent=%d", c->name, c->urgent);
            CHECK(same(ev.sender, c->sender), "%s: expected sender %s, got %s", c->name, c->sender,
                  ev.sender ? ev.sender : "(none)");
            CHECK(same(ev.body, c->body), "%s: expected body %s, got %s", c->name,
                  c->body ? c->body : "(none)", ev.body ? ev.body : "(none)");
            CHECK(same(ev.room, c->room), "%s: expected room %s, got %s", c->name,
                  c->room ? c->room : "(none)", ev.room ? ev.room : "(none)");
        }
        if (c->kind == GW_PUSH_NONE)
            CHECK(!ev.sender && !ev.body && !ev.room, "%s: expected nothing kept", c->name);
        gw_push_event_clear(&ev);
        gw_xml_free(el);
    }
}

static void test_switches(void)
{
    /* Each switch turns its kind off; the others stay. */
    struct {
        const char *xml;
        size_t field; /* offset of the switch in struct gw_push_policy */
    } cases2[] = {
        {MSG "type='chat'><body>x</body></message>", offsetof(struct gw_push_policy, on_body)},
        {MSG "type='chat'><encrypted xmlns='urn:xmpp:omemo:2'/></message>",
         offsetof(struct gw_push_policy, on_encrypted)},
        {MSG "><x xmlns='jabber:x:conference' jid='g@chat.example'/></message>",
         offsetof(struct gw_push_policy, on_invite)},
        {MSG "><propose xmlns='urn:xmpp:jingle-message:0' id='c'/></message>",
         offsetof(struct gw_push_policy, on_call)},
        {"<message " C " type='groupchat' from='g@chat.example/n'><body>romeo!</body></message>",
         offsetof(struct gw_push_policy, on_mention)},
        {"<message " C " type='groupchat' from='g@chat.example/n'><body>hi</body></message>",
         offsetof(struct gw_push_policy, on_groupchat)},
    };
    for (size_t i = 0; i < sizeof cases2 / sizeof cases2[0]; i++) {
        struct gw_xml *el = parse(cases2[i].xml);
        struct gw_push_policy p = all;
        struct gw_push_event ev;
        gw_push_classify(&p, ME, NULL, el, &ev);
        CHECK(ev.kind != GW_PUSH_NONE, "switch %zu on: expected important", i);
        gw_push_event_clear(&ev);
        *(bool *)((char *)&p + cases2[i].field) = false;
        gw_push_classify(&p, ME, NULL, el, &ev);
        CHECK(ev.kind == GW_PUSH_NONE && !ev.body, "switch %zu off: expected not important", i);
        gw_push_event_clear(&ev);
        gw_xml_free(el);
    }
    /* The body cap cuts at a character boundary (é is two bytes). */
    struct gw_push_policy p = all;
    p.body_max = 4;
    struct gw_xml *el = parse(MSG "><body>abcé</body></message>");
    struct gw_push_event ev;
    gw_push_classify(&p, ME, NULL, el, &ev);
    CHECK(ev.body && strcmp(ev.body, "abc") == 0, "body cap: expected 'abc', got '%s'",
          ev.body ? ev.body : "(none)");
    gw_push_event_clear(&ev);
    gw_xml_free(el);
}

static void test_wants(void)
{
    struct gw_push_event body = {.kind = GW_PUSH_BODY};
    struct gw_push_event mention = {.kind = GW_PUSH_MENTION, .room = "g@chat.example"};
    struct gw_push_event gc = {.kind = GW_PUSH_GROUPCHAT, .room = "g@chat.example"};
    struct gw_push_event none = {.kind = GW_PUSH_NONE};
    struct {
        const struct gw_push_event *ev;
        enum gw_push_groupchat mode;
        const char *rooms;
        bool want;
    } t[] = {
        {&body, GW_GC_NONE, NULL, true},
        {&none, GW_GC_ALL, NULL, false},
        {&mention, GW_GC_MENTIONS, NULL, true},
        {&mention, GW_GC_NONE, NULL, false},
        {&mention, GW_GC_NONE, "g@chat.example", true},
        {&gc, GW_GC_MENTIONS, NULL, false},
        {&gc, GW_GC_ALL, NULL, true},
        {&gc, GW_GC_MENTIONS, "a@chat.example g@chat.example", true},
        {&gc, GW_GC_MENTIONS, "g@chat.example.evil", false},
        {&gc, GW_GC_MENTIONS, "xg@chat.example", false},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        CHECK(gw_push_wants(t[i].ev, t[i].mode, t[i].rooms) == t[i].want,
              "wants %zu (%s, %s, rooms %s): expected %d", i, gw_push_kind_name(t[i].ev->kind),
              gw_push_groupchat_name(t[i].mode), t[i].rooms ? t[i].rooms : "-", t[i].want);
    enum gw_push_groupchat m;
    CHECK(gw_push_groupchat_parse("all", &m) && m == GW_GC_ALL, "parse all");
    CHECK(!gw_push_groupchat_parse("some", &m), "parse some: expected refused");
}

#define PUB_HEAD                                                                                   \
    "<iq " C " type='set' from='montague.example' to='push.example' id='p1'><pubsub "              \
    "xmlns='http://jabber.org/protocol/pubsub'><publish node='yxs32uqsflafdk3iuqo'><item>"         \
    "<notification xmlns='urn:xmpp:push:0'><x xmlns='jabber:x:data'><field var='FORM_TYPE'>"       \
    "<value>urn:xmpp:push:summary</value></field>"
#define PUB_TAIL "</x></notification></item></publish>"

static void test_publish(void)
{
    /* XEP-0357 Example 9, with publish-options. */
    struct gw_xml *el = parse(
        PUB_HEAD "<field var='message-count'><value>1</value></field>"
                 "<field var='last-message-sender'><value>juliet@capulet.example/balcony</value>"
                 "</field><field var='last-message-body'><value>Wherefore art thou, Romeo?</value>"
                 "</field>" PUB_TAIL
                 "<publish-options><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' "
                 "type='hidden'><value>http://jabber.org/protocol/pubsub#publish-options</value>"
                 "</field><field var='secret'><value>eruio234vzxc2kla-91</value></field></x>"
                 "</publish-options></pubsub></iq>");
    struct gw_push_publish p;
    const char *why = NULL;
    CHECK(gw_push_parse_publish(el, 256, &p, &why) == 0, "publish: %s", why ? why : "");
    CHECK(p.node && strcmp(p.node, "yxs32uqsflafdk3iuqo") == 0 && p.count == 1 && p.important &&
              same(p.sender, "juliet@capulet.example/balcony") &&
              same(p.body, "Wherefore art thou, Romeo?") && same(p.secret, "eruio234vzxc2kla-91"),
          "publish: fields not as sent");
    gw_push_publish_clear(&p);
    gw_xml_free(el);

    /* Prosody's unimportant push: no body field at all. */
    el = parse(PUB_HEAD "<field var='message-count'><value>1</value></field>" PUB_TAIL
                        "</pubsub></iq>");
    CHECK(gw_push_parse_publish(el, 256, &p, &why) == 0 && !p.important && !p.body && !p.secret,
          "unimportant: expected no body and not important");
    gw_push_publish_clear(&p);
    gw_xml_free(el);

    /* Prosody with push_notification_with_body lists the field without a value for a message
     * that has no body (a chat state): not important. */
    el = parse(PUB_HEAD "<field var='message-count'><value>1</value></field><field "
                        "var='last-message-sender'><value>j@c.example/b</value></field><field "
                        "var='last-message-body'/>" PUB_TAIL "</pubsub></iq>");
    CHECK(gw_push_parse_publish(el, 256, &p, &why) == 0 && !p.important && !p.body &&
              same(p.sender, "j@c.example/b"),
          "a field without a value: expected not important");
    gw_push_publish_clear(&p);
    gw_xml_free(el);

    /* Prosody's important push without the body: the placeholder marks it important. */
    el = parse(PUB_HEAD "<field var='last-message-body'><value>New Message!</value></field>"
                        "<field var='message-count'><value>x7</value></field>" PUB_TAIL
                        "</pubsub></iq>");
    CHECK(gw_push_parse_publish(el, 256, &p, &why) == 0 && p.important && p.count == 1,
          "placeholder: expected important, a bad count read as 1");
    gw_push_publish_clear(&p);
    gw_xml_free(el);

    const char *bad[] = {
        "<iq " C " type='set'><pubsub xmlns='http://jabber.org/protocol/pubsub'/></iq>",
        "<iq " C " type='set'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node=''/>"
        "</pubsub></iq>",
        "<iq " C " type='set'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='n'>"
        "<item><notification xmlns='urn:xmpp:push:0'><x xmlns='jabber:x:data'><field "
        "var='FORM_TYPE'><value>urn:other</value></field></x></notification></item></publish>"
        "</pubsub></iq>",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        el = parse(bad[i]);
        why = NULL;
        CHECK(gw_push_parse_publish(el, 256, &p, &why) == GW_EINVAL && why && !p.node,
              "bad publish %zu: expected GW_EINVAL with a reason", i);
        gw_push_publish_clear(&p);
        gw_xml_free(el);
    }
}

int main(void)
{
    test_classify();
    test_switches();
    test_wants();
    test_publish();
    return CHECK_DONE();
}
