/* The translator's shared parts: the element (escape) form both ways, the checks the short
 * forms share, the "alias" op, and the first version's entry points.
 *
 * The element form carries any element without loss: {"n":name,"ns":uri,"a":{attrs},"c":[…]}.
 * From a client it is read strictly, because names are written unescaped by the serializer:
 * every element and attribute name must be one expat accepts, namespace URIs may not be the
 * reserved xmlns one, and an attribute may not be a namespace declaration in disguise
 * ("xmlns"), since that would move its element into another namespace. */
#include "xmpp/xlate_impl.h"

#include "gateway/err.h"
#include "gateway/mem.h"
#include "xmpp/jid.h"
#include "xmpp/xmlname.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NS_XMLNS "http://www.w3.org/2000/xmlns/"

static bool same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

int xl_refuse(struct xl_in *in, const char *condition, const char *why, const char *detail)
{
    *in->condition = condition;
    snprintf(in->err, in->errlen, "%s%s%.60s", why, detail ? ": " : "", detail ? detail : "");
    return GW_EINVAL;
}

/* ---- element form, XML → JSON ---- */

void xl_write_tree(struct gw_json_out *w, const struct gw_xml *el, const char *parent_ns)
{
    gw_json_open(w);
    gw_json_kv(w, "n", el->name);
    if (!same(el->ns, parent_ns))
        gw_json_kv(w, "ns", el->ns ? el->ns : "");
    if (el->nattrs) {
        gw_json_key(w, "a");
        gw_json_open(w);
        for (size_t i = 0; i < el->nattrs; i++) {
            const struct gw_xml_attr *a = &el->attrs[i];
            if (!a->ns) {
                gw_json_key(w, a->name);
            } else {
                bool xml = strcmp(a->ns, GW_NS_XML) == 0;
                size_t n = strlen(a->ns) + strlen(a->name) + 8;
                char *k = gw_malloc(n);
                if (xml)
                    snprintf(k, n, "xml:%s", a->name);
                else
                    snprintf(k, n, "{%s}%s", a->ns, a->name);
                gw_json_key(w, k);
                free(k);
            }
            gw_json_cstr(w, a->value);
        }
        gw_json_close(w);
    }
    if (el->children) {
        gw_json_key(w, "c");
        gw_json_open_array(w);
        for (const struct gw_xml *c = el->children; c; c = c->next) {
            if (c->kind == GW_XML_TEXT)
                gw_json_string(w, c->text, c->text_len);
            else
                xl_write_tree(w, c, el->ns);
        }
        gw_json_close_array(w);
    }
    gw_json_close(w);
}

/* ---- element form, JSON → XML ---- */

/* Sets attribute key = value on el, refusing bad names and a second attribute of the same
 * name (xml:lang and {http://www.w3.org/XML/1998/namespace}lang are one attribute). */
static int read_attr(struct gw_xml *el, const char *k, const char *value, struct xl_in *in)
{
    const char *ns = NULL, *name = k, *close;
    char *uri = NULL;
    if (strncmp(k, "xml:", 4) == 0) {
        ns = GW_NS_XML;
        name = k + 4;
    } else if (k[0] == '{' && (close = strrchr(k, '}')) && close > k + 1) {
        uri = gw_strndup(k + 1, (size_t)(close - k - 1));
        ns = uri;
        name = close + 1;
    }
    int rc = 0;
    if (!gw_xmlname_valid(name) || (!ns && strcmp(name, "xmlns") == 0) ||
        (ns && strcmp(ns, NS_XMLNS) == 0))
        rc = xl_refuse(in, "bad-request", "invalid attribute name", k);
    else if (gw_xml_attr_ns(el, ns, name))
        rc = xl_refuse(in, "bad-request", "the same attribute twice", k);
    else if (ns)
        gw_xml_set_attr_ns(el, ns, strcmp(ns, GW_NS_XML) == 0 ? "xml" : NULL, name, value);
    else
        gw_xml_set_attr(el, name, value);
    free(uri);
    return rc;
}

int xl_read_tree(const struct gw_json *v, const char *parent_ns, struct gw_xml **out,
                 struct xl_in *in)
{
    *out = NULL;
    if (v->type != GW_JSON_OBJECT)
        return xl_refuse(in, "bad-request", "an element must be an object", NULL);
    static const char *const keys[] = {"n", "ns", "a", "c", NULL};
    if (xl_only_keys(v, keys, "an element", in))
        return GW_EINVAL;
    const char *name = gw_json_str(v, "n");
    const struct gw_json *ns = gw_json_get(v, "ns");
    const struct gw_json *attrs = gw_json_get(v, "a");
    const struct gw_json *children = gw_json_get(v, "c");
    if (!name || !gw_xmlname_valid(name))
        return xl_refuse(in, "bad-request", "an element needs a valid name \"n\"", name);
    if ((ns && ns->type != GW_JSON_STRING) || (attrs && attrs->type != GW_JSON_OBJECT) ||
        (children && children->type != GW_JSON_ARRAY))
        return xl_refuse(in, "bad-request", "\"ns\" is a string, \"a\" an object, \"c\" an array",
                         NULL);
    const char *uri = ns ? (ns->s[0] ? ns->s : NULL) : parent_ns;
    if (uri && (strcmp(uri, NS_XMLNS) == 0 || strcmp(uri, GW_NS_XML) == 0))
        return xl_refuse(in, "bad-request", "a reserved namespace", uri);
    struct gw_xml *el = gw_xml_new(uri, name);
    for (const struct gw_json *a = attrs ? attrs->child : NULL; a; a = a->next) {
        if (a->type != GW_JSON_STRING) {
            gw_xml_free(el);
            return xl_refuse(in, "bad-request", "attribute values are strings", a->key);
        }
        if (read_attr(el, a->key, a->s, in)) {
            gw_xml_free(el);
            return GW_EINVAL;
        }
    }
    for (const struct gw_json *c = children ? children->child : NULL; c; c = c->next) {
        if (c->type == GW_JSON_STRING) {
            if (c->slen)
                gw_xml_add_text(el, c->s, c->slen);
            continue;
        }
        struct gw_xml *child;
        if (xl_read_tree(c, uri, &child, in)) {
            gw_xml_free(el);
            return GW_EINVAL;
        }
        gw_xml_append(el, child);
    }
    *out = el;
    return 0;
}

/* ---- checks on XML ---- */

bool xl_one_of(const char *s, const char *const *set)
{
    for (; s && *set; set++)
        if (s[0] == (*set)[0] && strcmp(s, *set) == 0)
            return true;
    return false;
}

bool xl_is(const struct gw_xml *el, const char *ns, const char *name)
{
    return el->kind == GW_XML_ELEMENT && el->ns && strcmp(el->ns, ns) == 0 &&
           strcmp(el->name, name) == 0;
}

bool xl_no_text(const struct gw_xml *el)
{
    for (const struct gw_xml *c = el->children; c; c = c->next)
        if (c->kind == GW_XML_TEXT)
            return false;
    return true;
}

bool xl_text_only(const struct gw_xml *el)
{
    for (const struct gw_xml *c = el->children; c; c = c->next)
        if (c->kind != GW_XML_TEXT)
            return false;
    return el->nattrs == 0;
}

bool xl_attrs_in(const struct gw_xml *el, const char *const *set)
{
    for (size_t i = 0; i < el->nattrs; i++)
        if (el->attrs[i].ns || !xl_one_of(el->attrs[i].name, set))
            return false;
    return true;
}

bool xl_canon_int(const char *s, long long lo, long long hi, long long *out)
{
    if (!s || !*s || strlen(s) > 15)
        return false;
    bool neg = s[0] == '-';
    const char *d = s + neg;
    if (!*d || (d[0] == '0' && (d[1] || neg)))
        return false;
    long long v = 0;
    for (; *d; d++) {
        if (*d < '0' || *d > '9')
            return false;
        v = v * 10 + (*d - '0');
    }
    v = neg ? -v : v;
    if (v < lo || v > hi)
        return false;
    if (out)
        *out = v;
    return true;
}

bool xl_jid_ok(const char *s)
{
    return !s || gw_jid_valid(s);
}

/* ---- reading JSON ---- */

int xl_only_keys(const struct gw_json *obj, const char *const *keys, const char *what,
                 struct xl_in *in)
{
    for (const struct gw_json *m = obj->child; m; m = m->next)
        if (!xl_one_of(m->key, keys)) {
            char why[64];
            snprintf(why, sizeof why, "unknown key in %.40s", what);
            return xl_refuse(in, "bad-request", why, m->key);
        }
    return 0;
}

static int wrong_type(struct xl_in *in, const char *key, const char *type)
{
    char why[64];
    snprintf(why, sizeof why, "this key takes %.48s", type);
    return xl_refuse(in, "bad-request", why, key);
}

int xl_opt_str(const struct gw_json *obj, const char *key, const char **out, struct xl_in *in)
{
    const struct gw_json *v = gw_json_get(obj, key);
    *out = NULL;
    if (!v)
        return 0;
    if (v->type != GW_JSON_STRING)
        return wrong_type(in, key, "a string");
    *out = v->s;
    return 0;
}

int xl_opt_jid(const struct gw_json *obj, const char *key, const char **out, struct xl_in *in)
{
    if (xl_opt_str(obj, key, out, in))
        return GW_EINVAL;
    if (*out && !gw_jid_valid(*out))
        return xl_refuse(in, "jid-malformed", "not a valid JID", key);
    return 0;
}

int xl_opt_bool(const struct gw_json *obj, const char *key, int *out, struct xl_in *in)
{
    const struct gw_json *v = gw_json_get(obj, key);
    *out = -1;
    if (!v)
        return 0;
    if (v->type != GW_JSON_BOOL)
        return wrong_type(in, key, "true or false");
    *out = v->b;
    return 0;
}

int xl_opt_int(const struct gw_json *obj, const char *key, long long lo, long long hi,
               bool *present, long long *out, struct xl_in *in)
{
    const struct gw_json *v = gw_json_get(obj, key);
    *present = false;
    if (!v)
        return 0;
    if (v->type != GW_JSON_INT || v->i < lo || v->i > hi) {
        char range[64];
        snprintf(range, sizeof range, "an integer in %lld..%lld", lo, hi);
        return wrong_type(in, key, range);
    }
    *present = true;
    *out = v->i;
    return 0;
}

int xl_need_object(const struct gw_json *v, const char *what, struct xl_in *in)
{
    return v->type == GW_JSON_OBJECT ? 0 : wrong_type(in, what, "an object");
}

/* ---- writing ---- */

struct gw_xml *xl_text_child(struct gw_xml *parent, const char *ns, const char *name,
                             const char *text)
{
    struct gw_xml *c = gw_xml_add_child(parent, ns, name);
    if (text && *text)
        gw_xml_add_text(c, text, strlen(text));
    return c;
}

void xl_kv_int(struct gw_json_out *w, const char *key, long long v)
{
    gw_json_key(w, key);
    gw_json_integer(w, v);
}

void xl_kv_text(struct gw_json_out *w, const char *key, const struct gw_xml *el)
{
    char *t = gw_xml_text(el);
    gw_json_kv(w, key, t);
    free(t);
}

/* ---- the alias op ---- */

void gw_xlate_error_fields(struct gw_json_out *w, const char *cond, const char *text,
                           const char *id)
{
    gw_json_kv(w, "op", "error");
    gw_json_kv(w, "cond", cond);
    gw_json_kv(w, "text", text);
    gw_json_kv(w, "id", id);
}

void gw_xlate_alias_op(struct gw_alias **table, const struct gw_json *obj, struct gw_json_out *w)
{
    const struct gw_json *jid = gw_json_get(obj, "jid");
    const char *err = NULL, *cond = "bad-request";
    for (const struct gw_json *m = obj->child; m && !err; m = m->next)
        if (strcmp(m->key, "op") != 0 && strcmp(m->key, "jid") != 0)
            err = "unknown key in \"alias\"";
    if (!err && jid && (jid->type != GW_JSON_STRING || !gw_jid_valid(jid->s))) {
        err = "\"jid\" must be a valid JID";
        cond = "jid-malformed";
    }
    gw_json_open(w);
    if (err) {
        gw_xlate_error_fields(w, cond, err, NULL);
        gw_json_close(w);
        return;
    }
    if (!*table)
        *table = gw_alias_new();
    gw_json_kv(w, "op", "alias");
    if (!jid) {
        xl_kv_int(w, "max", GW_ALIAS_MAX);
    } else {
        bool created;
        int n = gw_alias_assign(*table, jid->s, &created);
        gw_json_kv(w, "jid", jid->s);
        if (n >= 0)
            xl_kv_int(w, "n", n);
    }
    gw_json_close(w);
}

/* ---- the first version's calls ---- */

int gw_xlate_to_json(const struct gw_xml *el, const char *own_jid, const char *stream_lang,
                     struct gw_json_out *w)
{
    struct gw_xlate_ctx ctx = {own_jid, NULL, stream_lang, NULL, 0, NULL};
    return gw_xlate_stanza_json(el, &ctx, w);
}

int gw_xlate_to_xml(const struct gw_json *obj, struct gw_xml **out, const char **condition,
                    char *err, size_t errlen)
{
    struct gw_xlate_ctx ctx = {NULL, NULL, NULL, NULL, 0, NULL};
    return gw_xlate_json_stanza(obj, &ctx, out, condition, err, errlen);
}
