/* Stanza ⇄ JSON translation for the mobile protocol (docs/json-protocol.md).
 *
 * Server to client: a message, presence or iq whose attributes are the usual ones gets the
 * short form; children the short form knows (body, subject, thread, receipts, chat states,
 * markers, show, status, priority, error) become keys, and every other child travels whole in
 * "x" as an element tree, so nothing is lost. A stanza the short form cannot describe at all
 * (another element, an unknown attribute, stray text) travels whole as {"t":"x","xml":tree}.
 * Client to server is the reverse, with "from" never taken from the JSON, "to" validated as a
 * JID, and every name checked, since element and attribute names are written unescaped. */
#include "xmpp/xlate.h"

#include "gateway/err.h"
#include "gateway/mem.h"
#include "xmpp/jid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NS_RECEIPTS   "urn:xmpp:receipts"
#define NS_CHATSTATES "http://jabber.org/protocol/chatstates"
#define NS_MARKERS    "urn:xmpp:chat-markers:0"

static const char *const chat_states[] = {"active", "composing", "paused", "inactive", "gone"};
static const char *const markers[] = {"received", "displayed", "acknowledged"};

static bool one_of(const char *s, const char *const *set, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, set[i]) == 0)
            return true;
    return false;
}

static bool same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* ---- XML → JSON ---- */

static void write_tree(struct gw_json_out *w, const struct gw_xml *el, const char *parent_ns)
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
            } else if (strcmp(a->ns, GW_NS_XML) == 0) {
                char k[64];
                snprintf(k, sizeof k, "xml:%s", a->name);
                gw_json_key(w, k);
            } else {
                size_t n = strlen(a->ns) + strlen(a->name) + 3;
                char *k = gw_malloc(n);
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
                write_tree(w, c, el->ns);
        }
        gw_json_close_array(w);
    }
    gw_json_close(w);
}

static bool only_text(const struct gw_xml *el)
{
    for (const struct gw_xml *c = el->children; c; c = c->next)
        if (c->kind != GW_XML_TEXT)
            return false;
    return el->nattrs == 0;
}

static bool blank(const struct gw_xml *t)
{
    for (size_t i = 0; i < t->text_len; i++)
        if (!strchr(" \t\r\n", t->text[i]))
            return false;
    return true;
}

/* The stanza error as {"type","cond","code","text"}, when it has nothing else. */
static bool short_error(const struct gw_xml *err)
{
    for (size_t i = 0; i < err->nattrs; i++)
        if (err->attrs[i].ns ||
            (strcmp(err->attrs[i].name, "type") != 0 && strcmp(err->attrs[i].name, "code") != 0))
            return false;
    int conds = 0;
    for (const struct gw_xml *c = gw_xml_next_element(err, NULL); c;
         c = gw_xml_next_element(err, c)) {
        if (!c->ns || strcmp(c->ns, GW_NS_STANZAS) != 0)
            return false;
        if (strcmp(c->name, "text") == 0) {
            if (!only_text(c))
                return false;
        } else if (c->children || c->nattrs || ++conds > 1) {
            return false;
        }
    }
    return conds == 1;
}

static void write_error(struct gw_json_out *w, const struct gw_xml *err)
{
    gw_json_key(w, "err");
    gw_json_open(w);
    gw_json_kv(w, "type", gw_xml_attr(err, "type"));
    for (const struct gw_xml *c = gw_xml_next_element(err, NULL); c;
         c = gw_xml_next_element(err, c)) {
        if (strcmp(c->name, "text") == 0) {
            char *t = gw_xml_text(c);
            gw_json_kv(w, "text", t);
            free(t);
        } else {
            gw_json_kv(w, "cond", c->name);
        }
    }
    const char *code = gw_xml_attr(err, "code");
    if (code) {
        char *end;
        long v = strtol(code, &end, 10);
        if (*end == '\0' && v > 0 && v < 1000) {
            gw_json_key(w, "code");
            gw_json_integer(w, v);
        }
    }
    gw_json_close(w);
}

enum kind { K_MESSAGE, K_PRESENCE, K_IQ };

/* Which short key a child maps to, or NULL if it goes to "x". Marks keys used once. */
static const char *short_key(enum kind k, const struct gw_xml *c, unsigned *used)
{
    enum {
        U_BODY = 1,
        U_SUBJ = 2,
        U_THREAD = 4,
        U_RQ = 8,
        U_RCV = 16,
        U_CS = 32,
        U_MKBL = 64,
        U_MK = 128,
        U_SHOW = 256,
        U_ST = 512,
        U_PRI = 1024,
        U_ERR = 2048
    };
    const char *key = NULL;
    unsigned bit = 0;
    bool jc = c->ns && strcmp(c->ns, GW_NS_CLIENT) == 0;
    if (gw_xml_is(c, GW_NS_CLIENT, "error")) {
        if (short_error(c))
            key = "err", bit = U_ERR;
    } else if (k == K_MESSAGE && jc && only_text(c)) {
        if (strcmp(c->name, "body") == 0)
            key = "b", bit = U_BODY;
        else if (strcmp(c->name, "subject") == 0)
            key = "s", bit = U_SUBJ;
        else if (strcmp(c->name, "thread") == 0)
            key = "th", bit = U_THREAD;
    } else if (k == K_MESSAGE && c->ns && !c->children) {
        if (strcmp(c->ns, NS_RECEIPTS) == 0 && strcmp(c->name, "request") == 0 && !c->nattrs)
            key = "rq", bit = U_RQ;
        else if (strcmp(c->ns, NS_RECEIPTS) == 0 && strcmp(c->name, "received") == 0 &&
                 c->nattrs == 1 && gw_xml_attr(c, "id"))
            key = "rcv", bit = U_RCV;
        else if (strcmp(c->ns, NS_CHATSTATES) == 0 && !c->nattrs && one_of(c->name, chat_states, 5))
            key = "cs", bit = U_CS;
        else if (strcmp(c->ns, NS_MARKERS) == 0 && strcmp(c->name, "markable") == 0 && !c->nattrs)
            key = "markable", bit = U_MKBL;
        else if (strcmp(c->ns, NS_MARKERS) == 0 && one_of(c->name, markers, 3) && c->nattrs == 1 &&
                 gw_xml_attr(c, "id"))
            key = "mk", bit = U_MK;
    } else if (k == K_PRESENCE && jc && only_text(c)) {
        if (strcmp(c->name, "show") == 0)
            key = "show", bit = U_SHOW;
        else if (strcmp(c->name, "status") == 0)
            key = "st", bit = U_ST;
        else if (strcmp(c->name, "priority") == 0) {
            char *t = gw_xml_text(c), *end;
            long v = strtol(t, &end, 10);
            bool ok = *t && *end == '\0' && v >= -128 && v <= 127 && (t[0] != '0' || !t[1]) &&
                      t[0] != '+' && !(t[0] == '-' && t[1] == '0');
            free(t);
            if (ok)
                key = "pri", bit = U_PRI;
        }
    }
    if (!key || (*used & bit))
        return NULL;
    *used |= bit;
    return key;
}

static void write_short(struct gw_json_out *w, const char *key, const struct gw_xml *c)
{
    if (strcmp(key, "err") == 0) {
        write_error(w, c);
        return;
    }
    gw_json_key(w, key);
    if (strcmp(key, "rq") == 0 || strcmp(key, "markable") == 0) {
        gw_json_bool(w, true);
    } else if (strcmp(key, "rcv") == 0) {
        gw_json_cstr(w, gw_xml_attr(c, "id"));
    } else if (strcmp(key, "cs") == 0) {
        gw_json_cstr(w, c->name);
    } else if (strcmp(key, "mk") == 0) {
        gw_json_open(w);
        gw_json_kv(w, "n", c->name);
        gw_json_kv(w, "id", gw_xml_attr(c, "id"));
        gw_json_close(w);
    } else if (strcmp(key, "pri") == 0) {
        char *t = gw_xml_text(c);
        gw_json_integer(w, strtol(t, NULL, 10));
        free(t);
    } else {
        char *t = gw_xml_text(c);
        gw_json_cstr(w, t);
        free(t);
    }
}

int gw_xlate_to_json(const struct gw_xml *el, const char *own_jid, const char *stream_lang,
                     struct gw_json_out *w)
{
    enum kind k;
    if (gw_xml_is(el, GW_NS_CLIENT, "message"))
        k = K_MESSAGE;
    else if (gw_xml_is(el, GW_NS_CLIENT, "presence"))
        k = K_PRESENCE;
    else if (gw_xml_is(el, GW_NS_CLIENT, "iq"))
        k = K_IQ;
    else
        goto escape;
    for (size_t i = 0; i < el->nattrs; i++) {
        const struct gw_xml_attr *a = &el->attrs[i];
        bool known = a->ns ? (strcmp(a->ns, GW_NS_XML) == 0 && strcmp(a->name, "lang") == 0)
                           : one_of(a->name, (const char *const[]){"to", "from", "id", "type"}, 4);
        if (!known)
            goto escape;
    }
    for (const struct gw_xml *c = el->children; c; c = c->next)
        if (c->kind == GW_XML_TEXT && !blank(c))
            goto escape;

    gw_json_open(w);
    if (k != K_MESSAGE)
        gw_json_kv(w, "t", k == K_PRESENCE ? "p" : "iq");
    const char *to = gw_xml_attr(el, "to");
    if (to && !(own_jid && strcmp(to, own_jid) == 0))
        gw_json_kv(w, "to", to);
    gw_json_kv(w, "f", gw_xml_attr(el, "from"));
    gw_json_kv(w, "id", gw_xml_attr(el, "id"));
    const char *type = gw_xml_attr(el, "type");
    if (type && !(k == K_MESSAGE && strcmp(type, "chat") == 0))
        gw_json_kv(w, "type", type);
    else if (!type && k == K_MESSAGE)
        gw_json_kv(w, "type", "normal"); /* absent means normal; chat is what goes unsaid */
    const char *lang = gw_xml_attr_ns(el, GW_NS_XML, "lang");
    if (lang && !(stream_lang && strcmp(lang, stream_lang) == 0))
        gw_json_kv(w, "l", lang);
    unsigned used = 0;
    bool extra = false;
    for (const struct gw_xml *c = gw_xml_next_element(el, NULL); c;
         c = gw_xml_next_element(el, c)) {
        const char *key = short_key(k, c, &used);
        if (key)
            write_short(w, key, c);
        else
            extra = true;
    }
    if (extra) {
        used = 0;
        gw_json_key(w, "x");
        gw_json_open_array(w);
        for (const struct gw_xml *c = gw_xml_next_element(el, NULL); c;
             c = gw_xml_next_element(el, c))
            if (!short_key(k, c, &used))
                write_tree(w, c, GW_NS_CLIENT);
        gw_json_close_array(w);
    }
    gw_json_close(w);
    return 0;

escape:
    gw_json_open(w);
    gw_json_kv(w, "t", "x");
    gw_json_key(w, "xml");
    write_tree(w, el, NULL);
    gw_json_close(w);
    return 0;
}

/* ---- JSON → XML ---- */

struct fail {
    const char **condition;
    char *err;
    size_t errlen;
};

static int refuse(struct fail *f, const char *condition, const char *why, const char *detail)
{
    *f->condition = condition;
    snprintf(f->err, f->errlen, "%s%s%s", why, detail ? ": " : "", detail ? detail : "");
    return GW_EINVAL;
}

/* An XML NCName (no prefix): written unescaped, so it is checked here. */
static bool ncname(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 256)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        bool start = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
        bool more = start || (c >= '0' && c <= '9') || c == '-' || c == '.';
        if (!(i == 0 ? start : more))
            return false;
    }
    return true;
}

static int read_tree(const struct gw_json *v, const char *parent_ns, struct gw_xml **out,
                     struct fail *f)
{
    if (v->type != GW_JSON_OBJECT)
        return refuse(f, "bad-request", "an element must be an object", NULL);
    const char *name = gw_json_str(v, "n");
    const struct gw_json *ns = gw_json_get(v, "ns");
    const struct gw_json *attrs = gw_json_get(v, "a");
    const struct gw_json *children = gw_json_get(v, "c");
    for (const struct gw_json *m = v->child; m; m = m->next)
        if (!one_of(m->key, (const char *const[]){"n", "ns", "a", "c"}, 4))
            return refuse(f, "bad-request", "unknown key in an element", m->key);
    if (!name || !ncname(name))
        return refuse(f, "bad-request", "an element needs a valid name \"n\"", name);
    if ((ns && ns->type != GW_JSON_STRING) || (attrs && attrs->type != GW_JSON_OBJECT) ||
        (children && children->type != GW_JSON_ARRAY))
        return refuse(f, "bad-request", "\"ns\" is a string, \"a\" an object, \"c\" an array",
                      NULL);
    const char *uri = ns ? (ns->s[0] ? ns->s : NULL) : parent_ns;
    struct gw_xml *el = gw_xml_new(uri, name);
    for (const struct gw_json *a = attrs ? attrs->child : NULL; a; a = a->next) {
        if (a->type != GW_JSON_STRING) {
            gw_xml_free(el);
            return refuse(f, "bad-request", "attribute values are strings", a->key);
        }
        const char *k = a->key, *close;
        if (strncmp(k, "xml:", 4) == 0 && ncname(k + 4)) {
            gw_xml_set_attr_ns(el, GW_NS_XML, "xml", k + 4, a->s);
        } else if (k[0] == '{' && (close = strchr(k, '}')) && close > k + 1 && ncname(close + 1)) {
            char *attr_ns = gw_strndup(k + 1, (size_t)(close - k - 1));
            gw_xml_set_attr_ns(el, attr_ns, NULL, close + 1, a->s);
            free(attr_ns);
        } else if (ncname(k)) {
            gw_xml_set_attr(el, k, a->s);
        } else {
            gw_xml_free(el);
            return refuse(f, "bad-request", "invalid attribute name", k);
        }
    }
    for (const struct gw_json *c = children ? children->child : NULL; c; c = c->next) {
        if (c->type == GW_JSON_STRING) {
            gw_xml_add_text(el, c->s, c->slen);
            continue;
        }
        struct gw_xml *child;
        int rc = read_tree(c, uri, &child, f);
        if (rc) {
            gw_xml_free(el);
            return rc;
        }
        gw_xml_append(el, child);
    }
    *out = el;
    return 0;
}

static void text_child(struct gw_xml *el, const char *ns, const char *name, const char *text)
{
    struct gw_xml *c = gw_xml_add_child(el, ns, name);
    gw_xml_add_text(c, text, strlen(text));
}

static int read_error(const struct gw_json *e, struct gw_xml *stanza, struct fail *f)
{
    const char *type = gw_json_str(e, "type"), *cond = gw_json_str(e, "cond");
    if (e->type != GW_JSON_OBJECT || !type || !cond || !ncname(cond))
        return refuse(f, "bad-request", "\"err\" needs \"type\" and \"cond\"", NULL);
    struct gw_xml *err = gw_xml_add_child(stanza, GW_NS_CLIENT, "error");
    gw_xml_set_attr(err, "type", type);
    long long code;
    if (gw_json_int(e, "code", &code)) {
        char num[24];
        snprintf(num, sizeof num, "%lld", code);
        gw_xml_set_attr(err, "code", num);
    }
    gw_xml_add_child(err, GW_NS_STANZAS, cond);
    const char *text = gw_json_str(e, "text");
    if (text)
        text_child(err, GW_NS_STANZAS, "text", text);
    return 0;
}

int gw_xlate_to_xml(const struct gw_json *obj, struct gw_xml **out, const char **condition,
                    char *err, size_t errlen)
{
    struct fail f = {condition, err, errlen};
    *out = NULL;
    const char *t = gw_json_str(obj, "t");
    if (t && strcmp(t, "x") == 0) {
        const struct gw_json *tree = gw_json_get(obj, "xml");
        if (!tree)
            return refuse(&f, "bad-request", "\"t\":\"x\" needs \"xml\"", NULL);
        struct gw_xml *el;
        int rc = read_tree(tree, GW_NS_CLIENT, &el, &f);
        if (rc)
            return rc;
        gw_xml_set_attr(el, "from", NULL);
        const char *to = gw_xml_attr(el, "to");
        if (to && !gw_jid_valid(to)) {
            gw_xml_free(el);
            return refuse(&f, "jid-malformed", "invalid \"to\"", NULL);
        }
        *out = el;
        return 0;
    }
    enum kind k = !t || strcmp(t, "m") == 0 ? K_MESSAGE
                  : strcmp(t, "p") == 0     ? K_PRESENCE
                  : strcmp(t, "iq") == 0    ? K_IQ
                                            : (enum kind) - 1;
    if ((int)k < 0)
        return refuse(&f, "bad-request", "unknown \"t\"", t);
    static const char *const common[] = {"t", "to", "f", "id", "type", "l", "x", "err"};
    static const char *const msg_keys[] = {"b", "s", "th", "rq", "rcv", "cs", "markable", "mk"};
    static const char *const pres_keys[] = {"show", "st", "pri"};
    for (const struct gw_json *m = obj->child; m; m = m->next) {
        bool ok = one_of(m->key, common, 8) || (k == K_MESSAGE && one_of(m->key, msg_keys, 8)) ||
                  (k == K_PRESENCE && one_of(m->key, pres_keys, 3));
        bool typed = m->type == GW_JSON_STRING || strcmp(m->key, "x") == 0 ||
                     strcmp(m->key, "err") == 0 || strcmp(m->key, "mk") == 0 ||
                     strcmp(m->key, "pri") == 0 || strcmp(m->key, "rq") == 0 ||
                     strcmp(m->key, "markable") == 0;
        if (!ok)
            return refuse(&f, "bad-request", "unknown key", m->key);
        if (!typed)
            return refuse(&f, "bad-request", "this key takes a string", m->key);
    }
    const char *to = gw_json_str(obj, "to"), *type = gw_json_str(obj, "type");
    if (to && !gw_jid_valid(to))
        return refuse(&f, "jid-malformed", "invalid \"to\"", NULL);
    if (k == K_IQ && (!type || !gw_json_str(obj, "id")))
        return refuse(&f, "bad-request", "an iq needs \"type\" and \"id\"", NULL);
    struct gw_xml *el = gw_xml_new(GW_NS_CLIENT, k == K_MESSAGE    ? "message"
                                                 : k == K_PRESENCE ? "presence"
                                                                   : "iq");
    gw_xml_set_attr(el, "to", to);
    gw_xml_set_attr(el, "id", gw_json_str(obj, "id"));
    gw_xml_set_attr(el, "type", type ? type : (k == K_MESSAGE ? "chat" : NULL));
    const char *lang = gw_json_str(obj, "l");
    if (lang)
        gw_xml_set_attr_ns(el, GW_NS_XML, "xml", "lang", lang);
    const char *s;
    if ((s = gw_json_str(obj, "s")))
        text_child(el, GW_NS_CLIENT, "subject", s);
    if ((s = gw_json_str(obj, "b")))
        text_child(el, GW_NS_CLIENT, "body", s);
    if ((s = gw_json_str(obj, "th")))
        text_child(el, GW_NS_CLIENT, "thread", s);
    if ((s = gw_json_str(obj, "show")))
        text_child(el, GW_NS_CLIENT, "show", s);
    if ((s = gw_json_str(obj, "st")))
        text_child(el, GW_NS_CLIENT, "status", s);
    long long pri;
    if (gw_json_int(obj, "pri", &pri)) {
        if (pri < -128 || pri > 127) {
            gw_xml_free(el);
            return refuse(&f, "bad-request", "\"pri\" is -128..127", NULL);
        }
        char num[8];
        snprintf(num, sizeof num, "%lld", pri);
        text_child(el, GW_NS_CLIENT, "priority", num);
    }
    const struct gw_json *v;
    if ((v = gw_json_get(obj, "rq")) && v->type == GW_JSON_BOOL && v->b)
        gw_xml_add_child(el, NS_RECEIPTS, "request");
    if ((s = gw_json_str(obj, "rcv")))
        gw_xml_set_attr(gw_xml_add_child(el, NS_RECEIPTS, "received"), "id", s);
    if ((s = gw_json_str(obj, "cs"))) {
        if (!one_of(s, chat_states, 5)) {
            gw_xml_free(el);
            return refuse(&f, "bad-request", "unknown chat state", s);
        }
        gw_xml_add_child(el, NS_CHATSTATES, s);
    }
    if ((v = gw_json_get(obj, "markable")) && v->type == GW_JSON_BOOL && v->b)
        gw_xml_add_child(el, NS_MARKERS, "markable");
    if ((v = gw_json_get(obj, "mk"))) {
        const char *n = gw_json_str(v, "n"), *id = gw_json_str(v, "id");
        if (!n || !id || !one_of(n, markers, 3)) {
            gw_xml_free(el);
            return refuse(&f, "bad-request",
                          "\"mk\" needs \"n\" (received, displayed or "
                          "acknowledged) and \"id\"",
                          NULL);
        }
        gw_xml_set_attr(gw_xml_add_child(el, NS_MARKERS, n), "id", id);
    }
    if ((v = gw_json_get(obj, "err")) && read_error(v, el, &f) != 0) {
        gw_xml_free(el);
        return GW_EINVAL;
    }
    if ((v = gw_json_get(obj, "x"))) {
        if (v->type != GW_JSON_ARRAY) {
            gw_xml_free(el);
            return refuse(&f, "bad-request", "\"x\" is an array of elements", NULL);
        }
        for (const struct gw_json *c = v->child; c; c = c->next) {
            struct gw_xml *child;
            if (read_tree(c, GW_NS_CLIENT, &child, &f) != 0) {
                gw_xml_free(el);
                return GW_EINVAL;
            }
            gw_xml_append(el, child);
        }
    }
    *out = el;
    return 0;
}
