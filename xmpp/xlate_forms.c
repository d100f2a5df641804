/* The short forms of everyday stanza children: body, subject, thread, receipts (XEP-0184),
 * chat states (XEP-0085), markers (XEP-0333), delay (XEP-0203), show, status, priority, stanza
 * errors (RFC 6120 §8.3) and the roster (RFC 6121 §2), plus the table of every form.
 *
 * Each form's match() accepts a child only when read(write(child)) is the same child, so a
 * child that is almost a form (an extra attribute, a value outside the protocol's set, a text
 * node where none belongs) goes to the element form instead and nothing is lost. The sets of
 * values a form accepts from the server are the ones it accepts from a client. */
#include "xmpp/xlate_impl.h"

#include "gateway/err.h"
#include "gateway/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NS_RECEIPTS   "urn:xmpp:receipts"
#define NS_CHATSTATES "http://jabber.org/protocol/chatstates"
#define NS_MARKERS    "urn:xmpp:chat-markers:0"
#define NS_DELAY      "urn:xmpp:delay"
#define NS_ROSTER     "jabber:iq:roster"
#define NS_OCCUPANT   "urn:xmpp:occupant-id:0"

static const char *const chat_states[] = {"active",   "composing", "paused",
                                          "inactive", "gone",      NULL};
static const char *const markers[] = {"received", "displayed", "acknowledged", NULL};
static const char *const shows[] = {"away", "chat", "dnd", "xa", NULL};
static const char *const error_types[] = {"auth", "cancel", "continue", "modify", "wait", NULL};
/* RFC 6120 §8.3.3: the only conditions a short error carries. */
static const char *const conditions[] = {"bad-request",
                                         "conflict",
                                         "feature-not-implemented",
                                         "forbidden",
                                         "gone",
                                         "internal-server-error",
                                         "item-not-found",
                                         "jid-malformed",
                                         "not-acceptable",
                                         "not-allowed",
                                         "not-authorized",
                                         "policy-violation",
                                         "recipient-unavailable",
                                         "redirect",
                                         "registration-required",
                                         "remote-server-not-found",
                                         "remote-server-timeout",
                                         "resource-constraint",
                                         "service-unavailable",
                                         "subscription-required",
                                         "undefined-condition",
                                         "unexpected-request",
                                         NULL};
static const char *const subscriptions[] = {"none", "to", "from", "both", "remove", NULL};

/* ---- text children in jabber:client: body, subject, thread, status ---- */

static bool client_text(const struct gw_xml *c, const char *name)
{
    return xl_is(c, GW_NS_CLIENT, name) && xl_text_only(c);
}

static void write_text(struct gw_json_out *w, const struct gw_xml *c, const struct xl_out *o)
{
    (void)o;
    char *t = gw_xml_text(c);
    gw_json_cstr(w, t);
    free(t);
}

static int read_text(const struct gw_json *v, struct gw_xml *stanza, const char *name,
                     const char *const *set, struct xl_in *in)
{
    if (v->type != GW_JSON_STRING)
        return xl_refuse(in, "bad-request", "this key takes a string", name);
    if (set && !xl_one_of(v->s, set))
        return xl_refuse(in, "bad-request", "a value outside the allowed set", v->s);
    xl_text_child(stanza, GW_NS_CLIENT, name, v->s);
    return 0;
}

static bool match_text_in(const struct gw_xml *c, const char *name, const char *const *set)
{
    if (!client_text(c, name))
        return false;
    if (!set)
        return true;
    char *t = gw_xml_text(c);
    bool ok = xl_one_of(t, set);
    free(t);
    return ok;
}

#define TEXT_FORM(fn, name, set)                                                                   \
    static bool match_##fn(const struct gw_xml *c, const struct xl_out *o)                         \
    {                                                                                              \
        (void)o;                                                                                   \
        return match_text_in(c, name, set);                                                        \
    }                                                                                              \
    static int read_##fn(const struct gw_json *v, struct gw_xml *stanza, struct xl_in *in)         \
    {                                                                                              \
        return read_text(v, stanza, name, set, in);                                                \
    }

TEXT_FORM(subject, "subject", NULL)
TEXT_FORM(body, "body", NULL)
TEXT_FORM(thread, "thread", NULL)
TEXT_FORM(show, "show", shows)
TEXT_FORM(status, "status", NULL)

/* ---- priority: an integer -128..127 written canonically ---- */

static bool match_priority(const struct gw_xml *c, const struct xl_out *o)
{
    (void)o;
    if (!client_text(c, "priority"))
        return false;
    char *t = gw_xml_text(c);
    bool ok = xl_canon_int(t, -128, 127, NULL);
    free(t);
    return ok;
}

static void write_priority(struct gw_json_out *w, const struct gw_xml *c, const struct xl_out *o)
{
    (void)o;
    char *t = gw_xml_text(c);
    long long v = 0;
    xl_canon_int(t, -128, 127, &v);
    free(t);
    gw_json_integer(w, v);
}

static int read_priority(const struct gw_json *v, struct gw_xml *stanza, struct xl_in *in)
{
    if (v->type != GW_JSON_INT || v->i < -128 || v->i > 127)
        return xl_refuse(in, "bad-request", "\"pri\" is an integer -128..127", NULL);
    char num[8];
    snprintf(num, sizeof num, "%lld", v->i);
    xl_text_child(stanza, GW_NS_CLIENT, "priority", num);
    return 0;
}

/* ---- empty flag elements: receipt request, markable ---- */

static bool empty_el(const struct gw_xml *c, const char *ns, const char *name)
{
    return xl_is(c, ns, name) && !c->children && !c->nattrs;
}

static void write_true(struct gw_json_out *w, const struct gw_xml *c, const struct xl_out *o)
{
    (void)c, (void)o;
    gw_json_bool(w, true);
}

static int read_flag(const struct gw_json *v, struct gw_xml *stanza, const char *ns,
                     const char *name, struct xl_in *in)
{
    if (v->type != GW_JSON_BOOL)
        return xl_refuse(in, "bad-request", "this key takes true or false", name);
    if (v->b)
        gw_xml_add_child(stanza, ns, name);
    return 0;
}

static bool match_rq(const struct gw_xml *c, const struct xl_out *o)
{
    (void)o;
    return empty_el(c, NS_RECEIPTS, "request");
}

static int read_rq(const struct gw_json *v, struct gw_xml *stanza, struct xl_in *in)
{
    return read_flag(v, stanza, NS_RECEIPTS, "request", in);
}

static bool match_markable(const struct gw_xml *c, const struct xl_out *o)
{
    (void)o;
    return empty_el(c, NS_MARKERS, "markable");
}

static int read_markable(const struct gw_json *v, struct gw_xml *stanza, struct xl_in *in)
{
    return read_flag(v, stanza, NS_MARKERS, "markable", in);
}

/* ---- receipt, chat state, marker ---- */

static bool only_id(const struct gw_xml *c)
{
    static const char *const id[] = {"id", NULL};
    return !c->children && c->nattrs == 1 && xl_attrs_in(c, id);
}

static bool match_rcv(const struct gw_xml *c, const struct xl_out *o)
{
    (void)o;
    return xl_is(c, NS_RECEIPTS, "received") && only_id(c);
}

static void write_id(struct gw_json_out *w, const struct gw_xml *c, const struct xl_out *o)
{
    (void)o;
    gw_json_cstr(w, gw_xml_attr(c, "id"));
}

static int read_rcv(const struct gw_json *v, struct gw_xml *stanza, struct xl_in *in)
{
    if (v->type != GW_JSON_STRING)
        return xl_refuse(in, "bad-request", "\"rcv\" takes the id of the message", NULL);
    gw_xml_set_attr(gw_xml_add_child(stanza, NS_RECEIPTS, "received"), "id", v->s);
    return 0;
}

static bool match_cs(const struct gw_xml *c, const struct xl_out *o)
{
    (void)o;
    return c->ns && strcmp(c->ns, NS_CHATSTATES) == 0 && xl_one_of(c->name, chat_states) &&
           !c->children && !c->nattrs;
}

static void write_cs(struct gw_json_out *w, const struct gw_xml *c, const struct xl_out *o)
{
    (void)o;
    gw_json_cstr(w, c->name);
}

static int read_cs(const struct gw_json *v, struct gw_xml *stanza, struct xl_in *in)
{
    if (v->type != GW_JSON_STRING || !xl_one_of(v->s, chat_states))
        return xl_refuse(in, "bad-request", "\"cs\" is active, composing, paused, inactive or gone",
                         NULL);
    gw_xml_add_child(stanza, NS_CHATSTATES, v->s);
    return 0;
}

static bool match_mk(const struct gw_xml *c, const struct xl_out *o)
{
    (void)o;
    return c->ns && strcmp(c->ns, NS_MARKERS) == 0 && xl_one_of(c->name, markers) && only_id(c);
}

static void write_mk(struct gw_json_out *w, const struct gw_xml *c, const struct xl_out *o)
{
    (void)o;
    gw_json_open(w);
    gw_json_kv(w, "n", c->name);
    gw_json_kv(w, "id", gw_xml_attr(c, "id"));
    gw_json_close(w);
}

static int read_mk(const struct gw_json *v, struct gw_xml *stanza, struct xl_in *in)
{
    static const char *const keys[] = {"n", "id", NULL};
    const char *n, *id;
    if (xl_need_object(v, "mk", in) || xl_only_keys(v, keys, "\"mk\"", in) ||
        xl_opt_str(v, "n", &n, in) || xl_opt_str(v, "id", &id, in))
        return GW_EINVAL;
    if (!n || !id || !xl_one_of(n, markers))
        return xl_refuse(in, "bad-request",
                         "\"mk\" needs \"n\" (received, displayed or acknowledged) and \"id\"",
                         NULL);
    gw_xml_set_attr(gw_xml_add_child(stanza, NS_MARKERS, n), "id", id);
    return 0;
}

/* ---- occupant id (XEP-0421): a MUC occupant's stable id ---- */

static bool match_oid(const struct gw_xml *c, const struct xl_out *o)
{
    (void)o;
    return xl_is(c, NS_OCCUPANT, "occupant-id") && only_id(c);
}

static int read_oid(const struct gw_json *v, struct gw_xml *stanza, struct xl_in *in)
{
    if (v->type != GW_JSON_STRING)
        return xl_refuse(in, "bad-request", "\"oid\" takes the occupant id", NULL);
    gw_xml_set_attr(gw_xml_add_child(stanza, NS_OCCUPANT, "occupant-id"), "id", v->s);
    return 0;
}

/* ---- delay (XEP-0203): {"stamp","f","text"} ---- */

static bool match_delay(const struct gw_xml *c, const struct xl_out *o)
{
    (void)o;
    static const char *const attrs[] = {"stamp", "from", NULL};
    const char *stamp = gw_xml_attr(c, "stamp");
    if (!xl_is(c, NS_DELAY, "delay") || !xl_attrs_in(c, attrs) || !stamp || !*stamp ||
        !xl_jid_ok(gw_xml_attr(c, "from")))
        return false;
    for (const struct gw_xml *t = c->children; t; t = t->next)
        if (t->kind != GW_XML_TEXT)
            return false;
    return true;
}

static void write_delay(struct gw_json_out *w, const struct gw_xml *c, const struct xl_out *o)
{
    (void)o;
    gw_json_open(w);
    gw_json_kv(w, "stamp", gw_xml_attr(c, "stamp"));
    gw_json_kv(w, "f", gw_xml_attr(c, "from"));
    if (c->children)
        xl_kv_text(w, "text", c);
    gw_json_close(w);
}

static int read_delay(const struct gw_json *v, struct gw_xml *stanza, struct xl_in *in)
{
    static const char *const keys[] = {"stamp", "f", "text", NULL};
    const char *stamp, *from, *text;
    if (xl_need_object(v, "dl", in) || xl_only_keys(v, keys, "\"dl\"", in) ||
        xl_opt_str(v, "stamp", &stamp, in) || xl_opt_jid(v, "f", &from, in) ||
        xl_opt_str(v, "text", &text, in))
        return GW_EINVAL;
    if (!stamp || !*stamp)
        return xl_refuse(in, "bad-request", "\"dl\" needs \"stamp\"", NULL);
    struct gw_xml *d = xl_text_child(stanza, NS_DELAY, "delay", text);
    gw_xml_set_attr(d, "stamp", stamp);
    gw_xml_set_attr(d, "from", from);
    return 0;
}

/* ---- stanza error: {"type","cond","code","text","by"} ---- */

/* <error type code? by?><condition/><text>…</text>?</error>, condition first as RFC 6120
 * §8.3.2 writes it, code canonical (a legacy code like 406), text without xml:lang. */
static bool match_error(const struct gw_xml *c, const struct xl_out *o)
{
    (void)o;
    static const char *const attrs[] = {"type", "code", "by", NULL};
    const char *code = gw_xml_attr(c, "code");
    if (!xl_is(c, GW_NS_CLIENT, "error") || !xl_attrs_in(c, attrs) || !xl_no_text(c) ||
        !xl_one_of(gw_xml_attr(c, "type"), error_types) ||
        (code && !xl_canon_int(code, 100, 999, NULL)) || !xl_jid_ok(gw_xml_attr(c, "by")))
        return false;
    const struct gw_xml *cond = c->children, *text = cond ? cond->next : NULL;
    if (!cond || !cond->ns || strcmp(cond->ns, GW_NS_STANZAS) != 0 ||
        !xl_one_of(cond->name, conditions) || cond->children || cond->nattrs)
        return false;
    if (text && (!xl_is(text, GW_NS_STANZAS, "text") || !xl_text_only(text) || text->next))
        return false;
    return true;
}

static void write_error(struct gw_json_out *w, const struct gw_xml *c, const struct xl_out *o)
{
    (void)o;
    gw_json_open(w);
    gw_json_kv(w, "type", gw_xml_attr(c, "type"));
    gw_json_kv(w, "cond", c->children->name);
    long long code;
    if (xl_canon_int(gw_xml_attr(c, "code"), 100, 999, &code))
        xl_kv_int(w, "code", code);
    if (c->children->next)
        xl_kv_text(w, "text", c->children->next);
    gw_json_kv(w, "by", gw_xml_attr(c, "by"));
    gw_json_close(w);
}

static int read_error(const struct gw_json *v, struct gw_xml *stanza, struct xl_in *in)
{
    static const char *const keys[] = {"type", "cond", "code", "text", "by", NULL};
    const char *type, *cond, *text, *by;
    bool has_code;
    long long code;
    if (xl_need_object(v, "err", in) || xl_only_keys(v, keys, "\"err\"", in) ||
        xl_opt_str(v, "type", &type, in) || xl_opt_str(v, "cond", &cond, in) ||
        xl_opt_str(v, "text", &text, in) || xl_opt_jid(v, "by", &by, in) ||
        xl_opt_int(v, "code", 100, 999, &has_code, &code, in))
        return GW_EINVAL;
    if (!xl_one_of(type, error_types))
        return xl_refuse(in, "bad-request",
                         "\"err\" needs \"type\": auth, cancel, continue, modify or wait", type);
    if (!xl_one_of(cond, conditions))
        return xl_refuse(in, "bad-request", "\"err\" needs \"cond\", an RFC 6120 condition", cond);
    struct gw_xml *err = gw_xml_add_child(stanza, GW_NS_CLIENT, "error");
    gw_xml_set_attr(err, "type", type);
    if (has_code) {
        char num[8];
        snprintf(num, sizeof num, "%lld", code);
        gw_xml_set_attr(err, "code", num);
    }
    gw_xml_set_attr(err, "by", by);
    gw_xml_add_child(err, GW_NS_STANZAS, cond);
    if (text)
        xl_text_child(err, GW_NS_STANZAS, "text", text);
    return 0;
}

/* ---- roster (RFC 6121 §2): {"ver","items":[{"jid","name","sub","ask","approved","groups"}]}
 * ---- */

static bool match_roster_item(const struct gw_xml *it)
{
    static const char *const attrs[] = {"jid", "name", "subscription", "ask", "approved", NULL};
    static const char *const asks[] = {"subscribe", NULL};
    static const char *const bools[] = {"true", "false", NULL};
    const char *jid = gw_xml_attr(it, "jid"), *sub = gw_xml_attr(it, "subscription");
    const char *ask = gw_xml_attr(it, "ask"), *approved = gw_xml_attr(it, "approved");
    if (!xl_is(it, NS_ROSTER, "item") || !xl_attrs_in(it, attrs) || !jid || !xl_jid_ok(jid) ||
        (sub && !xl_one_of(sub, subscriptions)) || (ask && !xl_one_of(ask, asks)) ||
        (approved && !xl_one_of(approved, bools)) || !xl_no_text(it))
        return false;
    for (const struct gw_xml *g = it->children; g; g = g->next)
        if (!xl_is(g, NS_ROSTER, "group") || !xl_text_only(g))
            return false;
    return true;
}

/* jid is the session's bare JID: ctx->own_bare, or own_jid up to its resource. */
static bool own_bare(const struct gw_xlate_ctx *ctx, const char *jid)
{
    if (ctx->own_bare)
        return strcmp(jid, ctx->own_bare) == 0;
    if (!ctx->own_jid)
        return false;
    size_t n = strcspn(ctx->own_jid, "/");
    return strlen(jid) == n && strncmp(jid, ctx->own_jid, n) == 0;
}

/* A roster push (a set) is only believed from the account itself (RFC 6121 §2.1.6): one from
 * anyone else stays in the element form, where a client will not take it for its roster. */
static bool match_roster(const struct gw_xml *c, const struct xl_out *o)
{
    static const char *const attrs[] = {"ver", NULL};
    if (!xl_is(c, NS_ROSTER, "query") || !xl_attrs_in(c, attrs) || !xl_no_text(c))
        return false;
    const char *type = gw_xml_attr(o->stanza, "type"), *from = gw_xml_attr(o->stanza, "from");
    if (type && strcmp(type, "set") == 0 && from && !own_bare(o->ctx, from))
        return false;
    for (const struct gw_xml *it = c->children; it; it = it->next)
        if (!match_roster_item(it))
            return false;
    return true;
}

static void write_roster(struct gw_json_out *w, const struct gw_xml *c, const struct xl_out *o)
{
    (void)o;
    gw_json_open(w);
    gw_json_kv(w, "ver", gw_xml_attr(c, "ver"));
    if (c->children) {
        gw_json_key(w, "items");
        gw_json_open_array(w);
        for (const struct gw_xml *it = c->children; it; it = it->next) {
            gw_json_open(w);
            gw_json_kv(w, "jid", gw_xml_attr(it, "jid"));
            gw_json_kv(w, "name", gw_xml_attr(it, "name"));
            gw_json_kv(w, "sub", gw_xml_attr(it, "subscription"));
            gw_json_kv(w, "ask", gw_xml_attr(it, "ask"));
            const char *approved = gw_xml_attr(it, "approved");
            if (approved) {
                gw_json_key(w, "approved");
                gw_json_bool(w, strcmp(approved, "true") == 0);
            }
            if (it->children) {
                gw_json_key(w, "groups");
                gw_json_open_array(w);
                for (const struct gw_xml *g = it->children; g; g = g->next) {
                    char *t = gw_xml_text(g);
                    gw_json_cstr(w, t);
                    free(t);
                }
                gw_json_close_array(w);
            }
            gw_json_close(w);
        }
        gw_json_close_array(w);
    }
    gw_json_close(w);
}

static int read_roster_item(const struct gw_json *v, struct gw_xml *query, struct xl_in *in)
{
    static const char *const keys[] = {"jid", "name", "sub", "ask", "approved", "groups", NULL};
    static const char *const asks[] = {"subscribe", NULL};
    const char *jid, *name, *sub, *ask;
    int approved;
    if (xl_need_object(v, "an item", in) || xl_only_keys(v, keys, "a roster item", in) ||
        xl_opt_jid(v, "jid", &jid, in) || xl_opt_str(v, "name", &name, in) ||
        xl_opt_str(v, "sub", &sub, in) || xl_opt_str(v, "ask", &ask, in) ||
        xl_opt_bool(v, "approved", &approved, in))
        return GW_EINVAL;
    if (!jid)
        return xl_refuse(in, "bad-request", "a roster item needs \"jid\"", NULL);
    if ((sub && !xl_one_of(sub, subscriptions)) || (ask && !xl_one_of(ask, asks)))
        return xl_refuse(in, "bad-request", "\"sub\" or \"ask\" outside the allowed set", NULL);
    const struct gw_json *groups = gw_json_get(v, "groups");
    if (groups && groups->type != GW_JSON_ARRAY)
        return xl_refuse(in, "bad-request", "\"groups\" is an array of strings", NULL);
    for (const struct gw_json *g = groups ? groups->child : NULL; g; g = g->next)
        if (g->type != GW_JSON_STRING)
            return xl_refuse(in, "bad-request", "\"groups\" is an array of strings", NULL);
    struct gw_xml *it = gw_xml_add_child(query, NS_ROSTER, "item");
    gw_xml_set_attr(it, "jid", jid);
    gw_xml_set_attr(it, "name", name);
    gw_xml_set_attr(it, "subscription", sub);
    gw_xml_set_attr(it, "ask", ask);
    if (approved >= 0)
        gw_xml_set_attr(it, "approved", approved ? "true" : "false");
    for (const struct gw_json *g = groups ? groups->child : NULL; g; g = g->next)
        xl_text_child(it, NS_ROSTER, "group", g->s);
    return 0;
}

static int read_roster(const struct gw_json *v, struct gw_xml *stanza, struct xl_in *in)
{
    static const char *const keys[] = {"ver", "items", NULL};
    const char *ver;
    if (xl_need_object(v, "roster", in) || xl_only_keys(v, keys, "\"roster\"", in) ||
        xl_opt_str(v, "ver", &ver, in))
        return GW_EINVAL;
    const struct gw_json *items = gw_json_get(v, "items");
    if (items && items->type != GW_JSON_ARRAY)
        return xl_refuse(in, "bad-request", "\"items\" is an array", NULL);
    struct gw_xml *q = gw_xml_add_child(stanza, NS_ROSTER, "query");
    gw_xml_set_attr(q, "ver", ver);
    for (const struct gw_json *it = items ? items->child : NULL; it; it = it->next)
        if (read_roster_item(it, q, in))
            return GW_EINVAL;
    return 0;
}

/* ---- the table ---- */

#define M XL_MESSAGE
#define P XL_PRESENCE
#define I XL_IQ

const struct xl_form xl_forms[] = {
    {"s", M, match_subject, write_text, read_subject},
    {"b", M, match_body, write_text, read_body},
    {"th", M, match_thread, write_text, read_thread},
    {"show", P, match_show, write_text, read_show},
    {"st", P, match_status, write_text, read_status},
    {"pri", P, match_priority, write_priority, read_priority},
    {"rq", M, match_rq, write_true, read_rq},
    {"rcv", M, match_rcv, write_id, read_rcv},
    {"cs", M, match_cs, write_cs, read_cs},
    {"markable", M, match_markable, write_true, read_markable},
    {"mk", M, match_mk, write_mk, read_mk},
    {"roster", I, match_roster, write_roster, read_roster},
    {"dl", M | P, match_delay, write_delay, read_delay},
    {"oid", M | P, match_oid, write_id, read_oid},
    {"err", M | P | I, match_error, write_error, read_error},
};
const size_t xl_nforms = sizeof xl_forms / sizeof xl_forms[0];
