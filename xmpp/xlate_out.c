/* Stanza → JSON, for what the server sends the client (docs/json-protocol.md, "Stanzas").
 *
 * A message, presence or iq whose attributes are the usual ones (to, from, id, type, xml:lang)
 * gets the short form: each child that a form describes exactly becomes that form's key (each
 * key once), and every other child travels whole in "x" in the element form. A stanza the
 * short form cannot describe at all (another element, an unknown attribute, stray text, a type
 * outside RFC 6120's set) travels whole as {"t":"x","xml":…}. JIDs in "to" and "f" become
 * aliases when the client turned them on. */
#include "xmpp/xlate_impl.h"

#include "gateway/err.h"
#include "gateway/mem.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *const message_types[] = {"chat",     "error",  "groupchat",
                                            "headline", "normal", NULL};
static const char *const presence_types[] = {"error",        "probe",       "subscribe",
                                             "subscribed",   "unavailable", "unsubscribe",
                                             "unsubscribed", NULL};
static const char *const iq_types[] = {"get", "set", "result", "error", NULL};

static bool blank(const struct gw_xml *t)
{
    for (size_t i = 0; i < t->text_len; i++)
        if (!strchr(" \t\r\n", t->text[i]))
            return false;
    return true;
}

/* The stanza's kind when its attributes and text let the short form describe it; 0 if not. */
static unsigned short_kind(const struct gw_xml *el, const struct gw_xlate_ctx *ctx)
{
    static const char *const attrs[] = {"to", "from", "id", "type", NULL};
    unsigned k = gw_xml_is(el, GW_NS_CLIENT, "message")    ? XL_MESSAGE
                 : gw_xml_is(el, GW_NS_CLIENT, "presence") ? XL_PRESENCE
                 : gw_xml_is(el, GW_NS_CLIENT, "iq")       ? XL_IQ
                                                           : 0;
    if (!k)
        return 0;
    for (size_t i = 0; i < el->nattrs; i++) {
        const struct gw_xml_attr *a = &el->attrs[i];
        bool known = a->ns ? strcmp(a->ns, GW_NS_XML) == 0 && strcmp(a->name, "lang") == 0
                           : xl_one_of(a->name, attrs);
        if (!known)
            return 0;
    }
    const char *type = gw_xml_attr(el, "type");
    const char *const *types = k == XL_MESSAGE    ? message_types
                               : k == XL_PRESENCE ? presence_types
                                                  : iq_types;
    /* The server addresses most stanzas to the session's own JID, which is known to be valid. */
    const char *to = gw_xml_attr(el, "to");
    if ((type && !xl_one_of(type, types)) ||
        (!(to && ctx->own_jid && strcmp(to, ctx->own_jid) == 0) && !xl_jid_ok(to)))
        return 0;
    if (k == XL_IQ && (!type || !gw_xml_attr(el, "id")))
        return 0;
    for (const struct gw_xml *c = el->children; c; c = c->next)
        if (c->kind == GW_XML_TEXT && !blank(c))
            return 0;
    return k;
}

/* "key": the JID, its alias when it has one, or the JID followed by "akey": a new alias
 * (assigned only when assign is set: the JIDs of messages are the ones worth a number). */
static void write_jid(struct gw_json_out *w, const char *key, const char *akey, const char *jid,
                      const struct xl_out *o, bool assign)
{
    struct gw_alias *aliases = o->ctx->aliases;
    int n = aliases ? gw_alias_find(aliases, jid) : -1;
    if (n >= 0) {
        xl_kv_int(w, key, n);
        return;
    }
    gw_json_kv(w, key, jid);
    bool created;
    if (aliases && assign && (n = gw_alias_assign(aliases, jid, &created)) >= 0)
        xl_kv_int(w, akey, n);
}

static void write_escape(struct gw_json_out *w, const struct gw_xml *el)
{
    gw_json_open(w);
    gw_json_kv(w, "t", "x");
    gw_json_key(w, "xml");
    xl_write_tree(w, el, NULL);
    gw_json_close(w);
}

int gw_xlate_stanza_json(const struct gw_xml *el, const struct gw_xlate_ctx *ctx,
                         struct gw_json_out *w)
{
    unsigned kind = short_kind(el, ctx);
    if (!kind) {
        write_escape(w, el);
        return 0;
    }
    struct xl_out o = {ctx, el, (enum xl_kind)kind};

    /* Which form each child element takes (-1: the element form), each form at most once. */
    size_t n = 0;
    for (const struct gw_xml *c = gw_xml_next_element(el, NULL); c; c = gw_xml_next_element(el, c))
        n++;
    int *form = gw_malloc((n ? n : 1) * sizeof *form);
    uint64_t used = 0;
    bool extra = false, invitation = false;
    size_t i = 0;
    for (const struct gw_xml *c = gw_xml_next_element(el, NULL); c;
         c = gw_xml_next_element(el, c), i++) {
        form[i] = -1;
        for (size_t f = 0; f < xl_form_count(); f++) {
            const struct xl_form *F = xl_form(f);
            if ((F->kinds & kind) && !(used & (1ull << f)) && F->match(c, &o)) {
                form[i] = (int)f;
                used |= 1ull << f;
                if (strcmp(F->key, "muc") == 0 || strcmp(F->key, "dinv") == 0)
                    invitation = kind == XL_MESSAGE;
                break;
            }
        }
        extra |= form[i] < 0;
    }

    gw_json_open(w);
    if (kind != XL_MESSAGE)
        gw_json_kv(w, "t", kind == XL_PRESENCE ? "p" : "iq");
    const char *to = gw_xml_attr(el, "to"), *from = gw_xml_attr(el, "from");
    bool assign = kind == XL_MESSAGE;
    if (to && !(ctx->own_jid && strcmp(to, ctx->own_jid) == 0))
        write_jid(w, "to", "ta", to, &o, assign);
    if (from)
        write_jid(w, "f", "fa", from, &o, assign);
    gw_json_kv(w, "id", gw_xml_attr(el, "id"));
    /* A message's absent "type" means chat, or normal for an invitation (muc, dinv), which is
     * how XEP-0045 and XEP-0249 send them; what goes unsaid in JSON is exactly that default. */
    const char *type = gw_xml_attr(el, "type");
    if (kind == XL_MESSAGE) {
        if (!type && !invitation)
            gw_json_kv(w, "type", "normal");
        else if (type && (strcmp(type, "chat") != 0 || invitation))
            gw_json_kv(w, "type", type);
    } else {
        gw_json_kv(w, "type", type);
    }
    const char *lang = gw_xml_attr_ns(el, GW_NS_XML, "lang");
    if (lang && !(ctx->stream_lang && strcmp(lang, ctx->stream_lang) == 0))
        gw_json_kv(w, "l", lang);
    i = 0;
    for (const struct gw_xml *c = gw_xml_next_element(el, NULL); c;
         c = gw_xml_next_element(el, c), i++) {
        if (form[i] < 0)
            continue;
        const struct xl_form *F = xl_form((size_t)form[i]);
        gw_json_key(w, F->key);
        F->write(w, c, &o);
    }
    if (extra) {
        gw_json_key(w, "x");
        gw_json_open_array(w);
        i = 0;
        for (const struct gw_xml *c = gw_xml_next_element(el, NULL); c;
             c = gw_xml_next_element(el, c), i++)
            if (form[i] < 0)
                xl_write_tree(w, c, GW_NS_CLIENT);
        gw_json_close_array(w);
    }
    gw_json_close(w);
    free(form);
    return 0;
}
