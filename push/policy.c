/* Push policy: what is important. Precedence when a stanza is several things at once: a call,
 * then an invite, then an encrypted payload, then groupchat (a mention before a plain message),
 * then a body. Only messages are ever important; a message with no body and none of these
 * payloads (chat states, receipts, markers, corrections without text) is not. */
#include "push/policy.h"

#include "gateway/err.h"
#include "gateway/mem.h"
#include "gateway/utf8.h"
#include "xmpp/jid.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define NS_CARBONS   "urn:xmpp:carbons:2"
#define NS_FORWARD   "urn:xmpp:forward:0"
#define NS_MUC_USER  "http://jabber.org/protocol/muc#user"
#define NS_CONFERENC "jabber:x:conference"
#define NS_JMI       "urn:xmpp:jingle-message:0"
#define NS_REFERENCE "urn:xmpp:reference:0"
#define NS_PUBSUB    "http://jabber.org/protocol/pubsub"
#define NS_PUSH      "urn:xmpp:push:0"
#define NS_DATA      "jabber:x:data"

struct ns_name {
    const char *ns, *name;
};

static const struct ns_name encrypted[] = {
    {"eu.siacs.conversations.axolotl", "encrypted"}, /* OMEMO 0.3 (legacy) */
    {"urn:xmpp:omemo:2", "encrypted"},               /* OMEMO (XEP-0384) */
    {"urn:xmpp:omemo:0", "encrypted"},
    {"jabber:x:encrypted", "x"},       /* XEP-0027 */
    {"urn:xmpp:openpgp:0", "openpgp"}, /* XEP-0373 */
};

static char *dup_bare(const char *jid)
{
    struct gw_jid j;
    if (!jid || gw_jid_parse(jid, &j) != 0)
        return NULL;
    char *bare = gw_jid_bare(&j);
    gw_jid_free(&j);
    return bare;
}

/* The first len bytes of s or less, cut at a character boundary; owned. */
static char *cut(const char *s, size_t max)
{
    size_t n = strlen(s), i = 0;
    while (i < n) {
        unsigned cp;
        size_t k = gw_utf8_decode((const unsigned char *)s + i, n - i, &cp);
        if (k == 0 || i + k > max)
            break;
        i += k;
    }
    return gw_strndup(s, i);
}

static bool blank(const char *s)
{
    for (; *s; s++)
        if (!isspace((unsigned char)*s))
            return false;
    return true;
}

/* True if text holds word as a whole word, ASCII case-insensitively. */
static bool has_word(const char *text, const char *word)
{
    size_t wl = strlen(word);
    if (wl == 0)
        return false;
    for (const char *p = text; *p; p++) {
        if (strncasecmp(p, word, wl) != 0)
            continue;
        bool start = p == text || !isalnum((unsigned char)p[-1]);
        bool end = !isalnum((unsigned char)p[wl]);
        if (start && end)
            return true;
    }
    return false;
}

/* A groupchat message mentions the user through a XEP-0372 reference to the account or to its
 * occupant JID, or by naming the nick (or, when unknown, the localpart) in the body. */
static bool mentions(const struct gw_xml *msg, const char *account, const char *room,
                     const char *nick, const char *body)
{
    char acc_uri[3200], occ_uri[3200] = "";
    snprintf(acc_uri, sizeof acc_uri, "xmpp:%s", account);
    if (nick && room)
        snprintf(occ_uri, sizeof occ_uri, "xmpp:%s/%s", room, nick);
    for (const struct gw_xml *c = gw_xml_next_element(msg, NULL); c;
         c = gw_xml_next_element(msg, c)) {
        if (!gw_xml_is(c, NS_REFERENCE, "reference"))
            continue;
        const char *type = gw_xml_attr(c, "type"), *uri = gw_xml_attr(c, "uri");
        if (type && uri && strcmp(type, "mention") == 0 &&
            (strcmp(uri, acc_uri) == 0 || (occ_uri[0] && strcmp(uri, occ_uri) == 0)))
            return true;
    }
    if (!body)
        return false;
    if (nick && *nick)
        return has_word(body, nick);
    const char *at = strchr(account, '@');
    if (!at)
        return false;
    char local[1024];
    size_t n =
        (size_t)(at - account) < sizeof local - 1 ? (size_t)(at - account) : sizeof local - 1;
    memcpy(local, account, n);
    local[n] = '\0';
    return has_word(body, local);
}

static bool any_child(const struct gw_xml *el, const struct ns_name *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (gw_xml_child(el, list[i].ns, list[i].name))
            return true;
    return false;
}

static bool kind_enabled(const struct gw_push_policy *p, enum gw_push_kind k)
{
    switch (k) {
    case GW_PUSH_NONE:
        return false;
    case GW_PUSH_BODY:
        return p->on_body;
    case GW_PUSH_ENCRYPTED:
        return p->on_encrypted;
    case GW_PUSH_INVITE:
        return p->on_invite;
    case GW_PUSH_CALL:
        return p->on_call;
    case GW_PUSH_MENTION:
        return p->on_mention;
    case GW_PUSH_GROUPCHAT:
        return p->on_groupchat;
    }
    return false;
}

static void classify_message(const struct gw_push_policy *p, const char *account, const char *nick,
                             const struct gw_xml *m, struct gw_push_event *out)
{
    const char *type = gw_xml_attr(m, "type");
    const char *from = gw_xml_attr(m, "from");
    if (type && (strcmp(type, "error") == 0 || strcmp(type, "headline") == 0))
        return;
    const struct gw_xml *b = gw_xml_child(m, GW_NS_CLIENT, "body");
    char *body = b ? gw_xml_text(b) : NULL;
    bool has_body = body && !blank(body);
    const struct gw_xml *x;
    bool groupchat = type && strcmp(type, "groupchat") == 0;
    if (gw_xml_child(m, NS_JMI, "propose")) {
        out->kind = GW_PUSH_CALL;
        out->urgent = true;
        out->sender = dup_bare(from);
    } else if ((x = gw_xml_child(m, NS_MUC_USER, "x")) && gw_xml_child(x, NS_MUC_USER, "invite")) {
        const struct gw_xml *inv = gw_xml_child(x, NS_MUC_USER, "invite");
        out->kind = GW_PUSH_INVITE;
        out->sender = dup_bare(gw_xml_attr(inv, "from") ? gw_xml_attr(inv, "from") : from);
        out->room = dup_bare(from);
    } else if ((x = gw_xml_child(m, NS_CONFERENC, "x")) && gw_xml_attr(x, "jid")) {
        out->kind = GW_PUSH_INVITE;
        out->sender = dup_bare(from);
        out->room = dup_bare(gw_xml_attr(x, "jid"));
    } else if (!groupchat && any_child(m, encrypted, sizeof encrypted / sizeof encrypted[0])) {
        out->kind = GW_PUSH_ENCRYPTED;
        out->sender = dup_bare(from);
    } else if (groupchat) {
        struct gw_jid j;
        if (!has_body || !from || gw_jid_parse(from, &j) != 0)
            goto done;
        /* The room reflects our own messages back: they are not news. A message without a
         * nick is the room itself speaking (subjects, status), not news either. */
        bool own = !j.resource || (nick && strcmp(j.resource, nick) == 0);
        out->room = gw_jid_bare(&j);
        gw_jid_free(&j);
        if (own || gw_xml_child(m, GW_NS_CLIENT, "subject"))
            goto done;
        out->kind =
            mentions(m, account, out->room, nick, body) ? GW_PUSH_MENTION : GW_PUSH_GROUPCHAT;
        out->sender = gw_strdup(from);
    } else if (has_body) {
        out->kind = GW_PUSH_BODY;
        out->sender = dup_bare(from);
    }
    if (has_body && out->kind != GW_PUSH_ENCRYPTED && out->kind != GW_PUSH_NONE)
        out->body = cut(body, p->body_max);
done:
    free(body);
}

void gw_push_classify(const struct gw_push_policy *p, const char *account, const char *nick,
                      const struct gw_xml *stanza, struct gw_push_event *out)
{
    memset(out, 0, sizeof *out);
    if (stanza->kind != GW_XML_ELEMENT || strcmp(stanza->name, "message") != 0 ||
        (stanza->ns && strcmp(stanza->ns, GW_NS_CLIENT) != 0))
        return;
    const struct gw_xml *m = stanza;
    const struct gw_xml *carbon = gw_xml_child(stanza, NS_CARBONS, "received");
    if (!carbon)
        carbon = gw_xml_child(stanza, NS_CARBONS, "sent");
    if (carbon) {
        /* Only the account itself sends carbons (CVE-2017-5589): anything else is forged. */
        char *from = dup_bare(gw_xml_attr(stanza, "from"));
        bool genuine = from ? strcmp(from, account) == 0 : false;
        free(from);
        const struct gw_xml *fwd = gw_xml_child(carbon, NS_FORWARD, "forwarded");
        m = fwd ? gw_xml_child(fwd, GW_NS_CLIENT, "message") : NULL;
        if (!genuine || strcmp(carbon->name, "received") != 0 || !m)
            return;
    }
    classify_message(p, account, nick, m, out);
    if (!kind_enabled(p, out->kind)) {
        gw_push_event_clear(out);
        memset(out, 0, sizeof *out);
    }
}

void gw_push_event_clear(struct gw_push_event *ev)
{
    free(ev->sender);
    free(ev->body);
    free(ev->room);
    ev->sender = ev->body = ev->room = NULL;
}

static bool room_listed(const char *rooms, const char *room)
{
    size_t rl = strlen(room);
    for (const char *p = rooms; p && *p;) {
        while (*p == ' ')
            p++;
        size_t n = strcspn(p, " ");
        if (n == rl && strncmp(p, room, n) == 0)
            return true;
        p += n;
    }
    return false;
}

bool gw_push_wants(const struct gw_push_event *ev, enum gw_push_groupchat mode, const char *rooms)
{
    switch (ev->kind) {
    case GW_PUSH_NONE:
        return false;
    case GW_PUSH_MENTION:
        return mode != GW_GC_NONE || (ev->room && room_listed(rooms, ev->room));
    case GW_PUSH_GROUPCHAT:
        return mode == GW_GC_ALL || (ev->room && room_listed(rooms, ev->room));
    default:
        return true;
    }
}

bool gw_push_groupchat_parse(const char *s, enum gw_push_groupchat *out)
{
    static const char *const names[] = {"none", "mentions", "all"};
    for (int i = 0; i < 3; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = (enum gw_push_groupchat)i;
            return true;
        }
    return false;
}

const char *gw_push_groupchat_name(enum gw_push_groupchat mode)
{
    return mode == GW_GC_NONE ? "none" : mode == GW_GC_ALL ? "all" : "mentions";
}

const char *gw_push_kind_name(enum gw_push_kind kind)
{
    static const char *const names[] = {"none", "body",    "encrypted", "invite",
                                        "call", "mention", "groupchat"};
    return (unsigned)kind < 7 ? names[kind] : "none";
}

/* ---- XEP-0357 publish ---- */

/* The first <value/> of field var in a data form; owned, or NULL when the field or its value
 * is absent (a form lists every field, and leaves the value out when there is none). present,
 * if given, is set when there is a value. */
static char *form_value(const struct gw_xml *form, const char *var, bool *present)
{
    for (const struct gw_xml *f = gw_xml_next_element(form, NULL); f;
         f = gw_xml_next_element(form, f)) {
        const char *v = gw_xml_attr(f, "var");
        if (!gw_xml_is(f, NS_DATA, "field") || !v || strcmp(v, var) != 0)
            continue;
        const struct gw_xml *val = gw_xml_child(f, NS_DATA, "value");
        if (val && present)
            *present = true;
        return val ? gw_xml_text(val) : NULL;
    }
    return NULL;
}

static bool form_type_is(const struct gw_xml *form, const char *type)
{
    char *t = form_value(form, "FORM_TYPE", NULL);
    bool ok = t && strcmp(t, type) == 0;
    free(t);
    return ok;
}

int gw_push_parse_publish(const struct gw_xml *iq, size_t body_max, struct gw_push_publish *out,
                          const char **why)
{
    memset(out, 0, sizeof *out);
    out->count = 1;
    const struct gw_xml *ps = gw_xml_child(iq, NS_PUBSUB, "pubsub");
    const struct gw_xml *pub = ps ? gw_xml_child(ps, NS_PUBSUB, "publish") : NULL;
    const char *node = pub ? gw_xml_attr(pub, "node") : NULL;
    if (!node || !*node || strlen(node) > 256) {
        *why = "no pubsub publish with a node";
        return GW_EINVAL;
    }
    out->node = gw_strdup(node);
    const struct gw_xml *item = gw_xml_child(pub, NS_PUBSUB, "item");
    const struct gw_xml *note = item ? gw_xml_child(item, NS_PUSH, "notification") : NULL;
    const struct gw_xml *form = note ? gw_xml_child(note, NS_DATA, "x") : NULL;
    if (form) {
        if (!form_type_is(form, "urn:xmpp:push:summary")) {
            gw_push_publish_clear(out);
            *why = "the notification form is not urn:xmpp:push:summary";
            return GW_EINVAL;
        }
        char *count = form_value(form, "message-count", NULL);
        if (count && *count) {
            char *end;
            long c = strtol(count, &end, 10);
            out->count = (*end || c < 0) ? 1 : (c > 1000000 ? 1000000 : c);
        }
        free(count);
        char *sender = form_value(form, "last-message-sender", NULL);
        if (sender && *sender && gw_jid_valid(sender))
            out->sender = sender;
        else
            free(sender);
        char *body = form_value(form, "last-message-body", &out->important);
        if (body && *body)
            out->body = cut(body, body_max);
        free(body);
    }
    const struct gw_xml *opts = gw_xml_child(ps, NS_PUBSUB, "publish-options");
    const struct gw_xml *oform = opts ? gw_xml_child(opts, NS_DATA, "x") : NULL;
    if (oform && form_type_is(oform, "http://jabber.org/protocol/pubsub#publish-options"))
        out->secret = form_value(oform, "secret", NULL);
    return 0;
}

void gw_push_publish_clear(struct gw_push_publish *pub)
{
    free(pub->node);
    free(pub->sender);
    free(pub->body);
    free(pub->secret);
    memset(pub, 0, sizeof *pub);
    pub->count = 1;
}
