/* JSON → stanza, for what a client sends (docs/json-protocol.md, "Stanzas").
 *
 * Strict: an unknown key, a value of the wrong type, a JID that is not one, a value outside a
 * form's set or a name XML cannot carry is refused with a stanza-error condition, and nothing
 * is sent. "from" is never taken from the JSON (RFC 6120 §8.1.2.1: the server stamps the
 * session's JID); "to" may be an alias the server assigned on this connection. The stanza is
 * serialized once to check it fits the stanza limit, since escaping and namespace declarations
 * make XML longer than the JSON that passed the size cap. */
#include "xmpp/xlate_impl.h"

#include "gateway/err.h"
#include "gateway/mem.h"
#include "xmpp/jid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const message_types[] = {"chat",     "error",  "groupchat",
                                            "headline", "normal", NULL};
static const char *const presence_types[] = {"error",        "probe",       "subscribe",
                                             "subscribed",   "unavailable", "unsubscribe",
                                             "unsubscribed", NULL};
static const char *const iq_types[] = {"get", "set", "result", "error", NULL};

/* "to": a JID, or the number of an alias of this connection. */
static int read_to(const struct gw_json *obj, const char **to, struct xl_in *in)
{
    const struct gw_json *v = gw_json_get(obj, "to");
    *to = NULL;
    if (!v)
        return 0;
    if (v->type == GW_JSON_INT) {
        *to = in->ctx->aliases ? gw_alias_jid(in->ctx->aliases, v->i) : NULL;
        if (!*to)
            return xl_refuse(in, "item-not-found", "no such alias on this connection", NULL);
        return 0;
    }
    if (v->type != GW_JSON_STRING)
        return xl_refuse(in, "bad-request", "\"to\" is a JID or an alias", NULL);
    if (!gw_jid_valid(v->s))
        return xl_refuse(in, "jid-malformed", "invalid \"to\"", NULL);
    *to = v->s;
    return 0;
}

/* {"t":"x","xml":{…}}: a whole message, presence or iq in the element form. Only stanzas:
 * anything else (stream management, SASL, stream elements) is mxgw's to speak, not the
 * client's. */
static int read_escape(const struct gw_json *obj, struct gw_xml **out, struct xl_in *in)
{
    static const char *const keys[] = {"t", "xml", NULL};
    if (xl_only_keys(obj, keys, "the element form", in))
        return GW_EINVAL;
    const struct gw_json *tree = gw_json_get(obj, "xml");
    if (!tree)
        return xl_refuse(in, "bad-request", "\"t\":\"x\" needs \"xml\"", NULL);
    struct gw_xml *el;
    if (xl_read_tree(tree, GW_NS_CLIENT, &el, in))
        return GW_EINVAL;
    if (!gw_xml_is(el, GW_NS_CLIENT, "message") && !gw_xml_is(el, GW_NS_CLIENT, "presence") &&
        !gw_xml_is(el, GW_NS_CLIENT, "iq")) {
        gw_xml_free(el);
        return xl_refuse(in, "bad-request", "the element form carries a message, presence or iq",
                         NULL);
    }
    gw_xml_set_attr(el, "from", NULL);
    const char *to = gw_xml_attr(el, "to");
    if (to && !gw_jid_valid(to)) {
        gw_xml_free(el);
        return xl_refuse(in, "jid-malformed", "invalid \"to\"", NULL);
    }
    *out = el;
    return 0;
}

static bool common_key(const char *k)
{
    /* "f", "fa" and "ta" are the server's and ignored, so a received object can be sent back. */
    static const char *const keys[] = {"t", "to", "f", "fa", "ta", "id", "type", "l", "x", NULL};
    return xl_one_of(k, keys);
}

static const struct xl_form *form_of(const char *key, unsigned kind)
{
    for (size_t f = 0; f < xl_form_count(); f++)
        if ((xl_form(f)->kinds & kind) && strcmp(xl_form(f)->key, key) == 0)
            return xl_form(f);
    return NULL;
}

static int read_short(const struct gw_json *obj, unsigned kind, struct gw_xml **out,
                      struct xl_in *in)
{
    bool invitation = false;
    for (const struct gw_json *m = obj->child; m; m = m->next) {
        if (!common_key(m->key) && !form_of(m->key, kind))
            return xl_refuse(in, "bad-request", "unknown key", m->key);
        invitation |=
            kind == XL_MESSAGE && (strcmp(m->key, "muc") == 0 || strcmp(m->key, "dinv") == 0);
    }
    const char *to, *id, *type, *lang;
    if (read_to(obj, &to, in) || xl_opt_str(obj, "id", &id, in) ||
        xl_opt_str(obj, "type", &type, in) || xl_opt_str(obj, "l", &lang, in))
        return GW_EINVAL;
    const char *const *types = kind == XL_MESSAGE    ? message_types
                               : kind == XL_PRESENCE ? presence_types
                                                     : iq_types;
    if (type && !xl_one_of(type, types))
        return xl_refuse(in, "bad-request", "a \"type\" this kind of stanza does not have", type);
    if (kind == XL_IQ && (!type || !id))
        return xl_refuse(in, "bad-request", "an iq needs \"type\" and \"id\"", NULL);
    const struct gw_json *x = gw_json_get(obj, "x");
    if (x && x->type != GW_JSON_ARRAY)
        return xl_refuse(in, "bad-request", "\"x\" is an array of elements", NULL);

    if (!type && kind == XL_MESSAGE && !invitation)
        type = "chat";
    const char *const attrs[] = {"to", to, "id", id, "type", type};
    struct gw_xml *el = gw_xml_new_attrs(GW_NS_CLIENT,
                                         kind == XL_MESSAGE    ? "message"
                                         : kind == XL_PRESENCE ? "presence"
                                                               : "iq",
                                         attrs, 3);
    if (lang)
        gw_xml_set_attr_ns(el, GW_NS_XML, "xml", "lang", lang);
    for (size_t f = 0; f < xl_form_count(); f++) {
        const struct xl_form *F = xl_form(f);
        const struct gw_json *v = (F->kinds & kind) ? gw_json_get(obj, F->key) : NULL;
        if (v && F->read(v, el, in)) {
            gw_xml_free(el);
            return GW_EINVAL;
        }
    }
    for (const struct gw_json *c = x ? x->child : NULL; c; c = c->next) {
        struct gw_xml *child;
        if (xl_read_tree(c, GW_NS_CLIENT, &child, in)) {
            gw_xml_free(el);
            return GW_EINVAL;
        }
        gw_xml_append(el, child);
    }
    *out = el;
    return 0;
}

int gw_xlate_json_stanza(const struct gw_json *obj, const struct gw_xlate_ctx *ctx,
                         struct gw_xml **out, const char **condition, char *err, size_t errlen)
{
    *out = NULL;
    struct xl_in in = {ctx, 0, condition, err, errlen};
    const struct gw_json *t = gw_json_get(obj, "t");
    if (t && t->type != GW_JSON_STRING)
        return xl_refuse(&in, "bad-request", "\"t\" is a string", NULL);
    const char *ts = t ? t->s : "m";
    unsigned kind = strcmp(ts, "m") == 0    ? XL_MESSAGE
                    : strcmp(ts, "p") == 0  ? XL_PRESENCE
                    : strcmp(ts, "iq") == 0 ? XL_IQ
                                            : 0;
    struct gw_xml *el = NULL;
    int rc;
    if (strcmp(ts, "x") == 0)
        rc = read_escape(obj, &el, &in);
    else if (!kind)
        rc = xl_refuse(&in, "bad-request", "unknown \"t\"", ts);
    else
        rc = (in.kind = (enum xl_kind)kind, read_short(obj, kind, &el, &in));
    if (rc)
        return rc;
    if (ctx->max_bytes) {
        struct gw_buf local, *b = ctx->xml ? ctx->xml : &local;
        gw_buf_init(b, ctx->max_bytes);
        rc = gw_xml_serialize(b, el, GW_NS_CLIENT);
        if (rc || b == &local)
            gw_buf_free(b);
        if (rc) {
            gw_xml_free(el);
            return xl_refuse(&in, rc == GW_ELIMIT ? "policy-violation" : "bad-request",
                             rc == GW_ELIMIT ? "the stanza is larger than the limit as XML"
                                             : "the stanza cannot be written as XML",
                             NULL);
        }
    }
    *out = el;
    return 0;
}
