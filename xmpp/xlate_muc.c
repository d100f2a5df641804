/* The short forms of multi-user chat (XEP-0045) and direct invitations (XEP-0249):
 *   "muc"   <x xmlns='…muc#user'> in presence and messages: the occupant's affiliation, role,
 *           real JID and nick, status codes, a mediated invite or decline, a room password;
 *   "join"  <x xmlns='…muc'> in the presence that enters a room (password, history);
 *   "admin" <query xmlns='…muc#admin'>: affiliation and role changes and lists;
 *   "dinv"  <x xmlns='jabber:x:conference'>: a direct invitation.
 * Where XEP-0045's schema gives children a sequence (actor before reason in an item; reason
 * before continue in an invite; password before history in a join) another order, like
 * anything extra, leaves the element to the element form, so the round trip stays exact. The
 * children of <x xmlns='…muc#user'> are a choice in any order in the schema (Prosody writes
 * status 201, item, status 110): they are read in any order and written back in one. */
#include "xmpp/xlate_impl.h"

#include "gateway/err.h"
#include "gateway/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NS_MUC        "http://jabber.org/protocol/muc"
#define NS_MUC_USER   "http://jabber.org/protocol/muc#user"
#define NS_MUC_ADMIN  "http://jabber.org/protocol/muc#admin"
#define NS_CONFERENCE "jabber:x:conference"

#define HISTORY_MAX 2147483647LL

static const char *const affiliations[] = {"owner", "admin", "member", "outcast", "none", NULL};
static const char *const roles[] = {"moderator", "participant", "visitor", "none", NULL};
static const char *const bools[] = {"true", "false", NULL};

/* ---- <item> of muc#user and muc#admin ---- */

static bool match_actor(const struct gw_xml *a, const char *ns)
{
    static const char *const attrs[] = {"jid", "nick", NULL};
    return xl_is(a, ns, "actor") && xl_attrs_in(a, attrs) && !a->children &&
           xl_jid_ok(gw_xml_attr(a, "jid"));
}

static bool match_item(const struct gw_xml *it, const char *ns)
{
    static const char *const attrs[] = {"affiliation", "role", "jid", "nick", NULL};
    const char *aff = gw_xml_attr(it, "affiliation"), *role = gw_xml_attr(it, "role");
    if (!xl_is(it, ns, "item") || !xl_attrs_in(it, attrs) || !xl_no_text(it) ||
        (aff && !xl_one_of(aff, affiliations)) || (role && !xl_one_of(role, roles)) ||
        !xl_jid_ok(gw_xml_attr(it, "jid")))
        return false;
    const struct gw_xml *c = it->children;
    if (c && xl_is(c, ns, "actor")) {
        if (!match_actor(c, ns))
            return false;
        c = c->next;
    }
    if (c && xl_is(c, ns, "reason")) {
        if (!xl_text_only(c))
            return false;
        c = c->next;
    }
    return c == NULL;
}

/* Writes the item's fields into the object being written. */
static void write_item_fields(struct gw_json_out *w, const struct gw_xml *it, const char *ns)
{
    gw_json_kv(w, "aff", gw_xml_attr(it, "affiliation"));
    gw_json_kv(w, "role", gw_xml_attr(it, "role"));
    gw_json_kv(w, "jid", gw_xml_attr(it, "jid"));
    gw_json_kv(w, "nick", gw_xml_attr(it, "nick"));
    const struct gw_xml *actor = gw_xml_child(it, ns, "actor");
    if (actor) {
        gw_json_key(w, "actor");
        gw_json_open(w);
        gw_json_kv(w, "jid", gw_xml_attr(actor, "jid"));
        gw_json_kv(w, "nick", gw_xml_attr(actor, "nick"));
        gw_json_close(w);
    }
    const struct gw_xml *reason = gw_xml_child(it, ns, "reason");
    if (reason)
        xl_kv_text(w, "reason", reason);
}

static bool has_item_fields(const struct gw_json *obj)
{
    static const char *const keys[] = {"aff", "role", "jid", "nick", "actor", "reason", NULL};
    for (const struct gw_json *m = obj->child; m; m = m->next)
        if (xl_one_of(m->key, keys))
            return true;
    return false;
}

/* Builds <item> from obj's item fields (other keys were checked by the caller). */
static int read_item_fields(const struct gw_json *obj, struct gw_xml *parent, const char *ns,
                            struct xl_in *in)
{
    const char *aff, *role, *jid, *nick, *reason;
    if (xl_opt_str(obj, "aff", &aff, in) || xl_opt_str(obj, "role", &role, in) ||
        xl_opt_jid(obj, "jid", &jid, in) || xl_opt_str(obj, "nick", &nick, in) ||
        xl_opt_str(obj, "reason", &reason, in))
        return GW_EINVAL;
    if (aff && !xl_one_of(aff, affiliations))
        return xl_refuse(in, "bad-request", "\"aff\" is owner, admin, member, outcast or none",
                         aff);
    if (role && !xl_one_of(role, roles))
        return xl_refuse(in, "bad-request", "\"role\" is moderator, participant, visitor or none",
                         role);
    const struct gw_json *actor = gw_json_get(obj, "actor");
    const char *ajid = NULL, *anick = NULL;
    static const char *const actor_keys[] = {"jid", "nick", NULL};
    if (actor &&
        (xl_need_object(actor, "actor", in) || xl_only_keys(actor, actor_keys, "\"actor\"", in) ||
         xl_opt_jid(actor, "jid", &ajid, in) || xl_opt_str(actor, "nick", &anick, in)))
        return GW_EINVAL;
    struct gw_xml *it = gw_xml_add_child(parent, ns, "item");
    gw_xml_set_attr(it, "affiliation", aff);
    gw_xml_set_attr(it, "role", role);
    gw_xml_set_attr(it, "jid", jid);
    gw_xml_set_attr(it, "nick", nick);
    if (actor) {
        struct gw_xml *a = gw_xml_add_child(it, ns, "actor");
        gw_xml_set_attr(a, "jid", ajid);
        gw_xml_set_attr(a, "nick", anick);
    }
    if (reason)
        xl_text_child(it, ns, "reason", reason);
    return 0;
}

/* ---- "muc": <x xmlns='…muc#user'> ---- */

/* <invite> or <decline>: to/from JIDs, then <reason/>?, then (invite only) <continue/>?. */
static bool match_invite(const struct gw_xml *el, bool invite)
{
    static const char *const attrs[] = {"to", "from", NULL};
    static const char *const thread[] = {"thread", NULL};
    if (!xl_attrs_in(el, attrs) || !xl_no_text(el) || !xl_jid_ok(gw_xml_attr(el, "to")) ||
        !xl_jid_ok(gw_xml_attr(el, "from")))
        return false;
    const struct gw_xml *c = el->children;
    if (c && xl_is(c, NS_MUC_USER, "reason")) {
        if (!xl_text_only(c))
            return false;
        c = c->next;
    }
    if (invite && c && xl_is(c, NS_MUC_USER, "continue")) {
        if (!xl_attrs_in(c, thread) || c->children)
            return false;
        c = c->next;
    }
    return c == NULL;
}

/* The children of <x xmlns='…muc#user'> are a choice in any order (XEP-0045's schema), so
 * they may come in any order, each once but <status/>; they come back as item, status…,
 * invite, decline, password. */
static bool match_muc(const struct gw_xml *x, const struct xl_out *o)
{
    (void)o;
    if (!xl_is(x, NS_MUC_USER, "x") || x->nattrs || !xl_no_text(x))
        return false;
    static const char *const code[] = {"code", NULL};
    unsigned seen = 0;
    for (const struct gw_xml *c = x->children; c; c = c->next) {
        unsigned bit;
        bool ok;
        if (xl_is(c, NS_MUC_USER, "status")) {
            if (c->nattrs != 1 || !xl_attrs_in(c, code) || c->children ||
                !xl_canon_int(gw_xml_attr(c, "code"), 100, 999, NULL))
                return false;
            continue;
        } else if (xl_is(c, NS_MUC_USER, "item")) {
            bit = 1, ok = match_item(c, NS_MUC_USER) && (c->nattrs || c->children);
        } else if (xl_is(c, NS_MUC_USER, "invite")) {
            bit = 2, ok = match_invite(c, true);
        } else if (xl_is(c, NS_MUC_USER, "decline")) {
            bit = 4, ok = match_invite(c, false);
        } else if (xl_is(c, NS_MUC_USER, "password")) {
            bit = 8, ok = xl_text_only(c);
        } else {
            return false;
        }
        if (!ok || (seen & bit))
            return false;
        seen |= bit;
    }
    return true;
}

static void write_invite(struct gw_json_out *w, const char *key, const struct gw_xml *el)
{
    gw_json_key(w, key);
    gw_json_open(w);
    gw_json_kv(w, "to", gw_xml_attr(el, "to"));
    gw_json_kv(w, "f", gw_xml_attr(el, "from"));
    const struct gw_xml *reason = gw_xml_child(el, NS_MUC_USER, "reason");
    if (reason)
        xl_kv_text(w, "reason", reason);
    const struct gw_xml *cont = gw_xml_child(el, NS_MUC_USER, "continue");
    if (cont) {
        const char *thread = gw_xml_attr(cont, "thread");
        gw_json_key(w, "cont");
        if (thread)
            gw_json_cstr(w, thread);
        else
            gw_json_bool(w, true);
    }
    gw_json_close(w);
}

static void write_muc(struct gw_json_out *w, const struct gw_xml *x, const struct xl_out *o)
{
    (void)o;
    gw_json_open(w);
    const struct gw_xml *c = gw_xml_child(x, NS_MUC_USER, "item");
    if (c)
        write_item_fields(w, c, NS_MUC_USER);
    if (gw_xml_child(x, NS_MUC_USER, "status")) {
        gw_json_key(w, "codes");
        gw_json_open_array(w);
        for (c = x->children; c; c = c->next) {
            long long code = 0;
            if (strcmp(c->name, "status") == 0 &&
                xl_canon_int(gw_xml_attr(c, "code"), 100, 999, &code))
                gw_json_integer(w, code);
        }
        gw_json_close_array(w);
    }
    if ((c = gw_xml_child(x, NS_MUC_USER, "invite")))
        write_invite(w, "inv", c);
    if ((c = gw_xml_child(x, NS_MUC_USER, "decline")))
        write_invite(w, "dec", c);
    if ((c = gw_xml_child(x, NS_MUC_USER, "password")))
        xl_kv_text(w, "pw", c);
    gw_json_close(w);
}

static int read_invite(const struct gw_json *v, struct gw_xml *x, bool invite, struct xl_in *in)
{
    static const char *const inv_keys[] = {"to", "f", "reason", "cont", NULL};
    static const char *const dec_keys[] = {"to", "f", "reason", NULL};
    const char *what = invite ? "\"inv\"" : "\"dec\"", *to, *from, *reason;
    if (xl_need_object(v, what, in) || xl_only_keys(v, invite ? inv_keys : dec_keys, what, in) ||
        xl_opt_jid(v, "to", &to, in) || xl_opt_jid(v, "f", &from, in) ||
        xl_opt_str(v, "reason", &reason, in))
        return GW_EINVAL;
    const struct gw_json *cont = gw_json_get(v, "cont");
    if (cont && cont->type != GW_JSON_BOOL && cont->type != GW_JSON_STRING)
        return xl_refuse(in, "bad-request", "\"cont\" is true or a thread id", NULL);
    struct gw_xml *el = gw_xml_add_child(x, NS_MUC_USER, invite ? "invite" : "decline");
    gw_xml_set_attr(el, "to", to);
    gw_xml_set_attr(el, "from", from);
    if (reason)
        xl_text_child(el, NS_MUC_USER, "reason", reason);
    if (cont && (cont->type == GW_JSON_STRING || cont->b)) {
        struct gw_xml *c = gw_xml_add_child(el, NS_MUC_USER, "continue");
        if (cont->type == GW_JSON_STRING)
            gw_xml_set_attr(c, "thread", cont->s);
    }
    return 0;
}

static int read_muc(const struct gw_json *v, struct gw_xml *stanza, struct xl_in *in)
{
    static const char *const keys[] = {"aff",   "role", "jid", "nick", "actor", "reason",
                                       "codes", "inv",  "dec", "pw",   NULL};
    const char *pw;
    if (xl_need_object(v, "muc", in) || xl_only_keys(v, keys, "\"muc\"", in) ||
        xl_opt_str(v, "pw", &pw, in))
        return GW_EINVAL;
    const struct gw_json *codes = gw_json_get(v, "codes");
    if (codes && codes->type != GW_JSON_ARRAY)
        return xl_refuse(in, "bad-request", "\"codes\" is an array of status codes", NULL);
    for (const struct gw_json *c = codes ? codes->child : NULL; c; c = c->next)
        if (c->type != GW_JSON_INT || c->i < 100 || c->i > 999)
            return xl_refuse(in, "bad-request", "a status code is an integer 100..999", NULL);
    struct gw_xml *x = gw_xml_add_child(stanza, NS_MUC_USER, "x");
    if (has_item_fields(v) && read_item_fields(v, x, NS_MUC_USER, in))
        return GW_EINVAL;
    for (const struct gw_json *c = codes ? codes->child : NULL; c; c = c->next) {
        char num[8];
        snprintf(num, sizeof num, "%lld", c->i);
        gw_xml_set_attr(gw_xml_add_child(x, NS_MUC_USER, "status"), "code", num);
    }
    const struct gw_json *inv = gw_json_get(v, "inv"), *dec = gw_json_get(v, "dec");
    if ((inv && read_invite(inv, x, true, in)) || (dec && read_invite(dec, x, false, in)))
        return GW_EINVAL;
    if (pw)
        xl_text_child(x, NS_MUC_USER, "password", pw);
    return 0;
}

/* ---- "join": <x xmlns='…muc'> with <password/>? and <history/>? ---- */

static const char *const history_attrs[] = {"maxchars", "maxstanzas", "seconds", "since", NULL};

static bool match_join(const struct gw_xml *x, const struct xl_out *o)
{
    (void)o;
    if (!xl_is(x, NS_MUC, "x") || x->nattrs || !xl_no_text(x))
        return false;
    const struct gw_xml *c = x->children;
    if (c && xl_is(c, NS_MUC, "password")) {
        if (!xl_text_only(c))
            return false;
        c = c->next;
    }
    if (c && xl_is(c, NS_MUC, "history")) {
        if (!xl_attrs_in(c, history_attrs) || c->children)
            return false;
        for (int i = 0; i < 3; i++) {
            const char *n = gw_xml_attr(c, history_attrs[i]);
            if (n && !xl_canon_int(n, 0, HISTORY_MAX, NULL))
                return false;
        }
        c = c->next;
    }
    return c == NULL;
}

static void write_join(struct gw_json_out *w, const struct gw_xml *x, const struct xl_out *o)
{
    (void)o;
    gw_json_open(w);
    const struct gw_xml *pw = gw_xml_child(x, NS_MUC, "password");
    if (pw)
        xl_kv_text(w, "pw", pw);
    const struct gw_xml *h = gw_xml_child(x, NS_MUC, "history");
    if (h) {
        gw_json_key(w, "hist");
        gw_json_open(w);
        for (int i = 0; i < 3; i++) {
            long long n;
            if (xl_canon_int(gw_xml_attr(h, history_attrs[i]), 0, HISTORY_MAX, &n))
                xl_kv_int(w, history_attrs[i], n);
        }
        gw_json_kv(w, "since", gw_xml_attr(h, "since"));
        gw_json_close(w);
    }
    gw_json_close(w);
}

static int read_join(const struct gw_json *v, struct gw_xml *stanza, struct xl_in *in)
{
    static const char *const keys[] = {"pw", "hist", NULL};
    const char *pw, *since = NULL;
    if (xl_need_object(v, "join", in) || xl_only_keys(v, keys, "\"join\"", in) ||
        xl_opt_str(v, "pw", &pw, in))
        return GW_EINVAL;
    const struct gw_json *hist = gw_json_get(v, "hist");
    if (hist &&
        (xl_need_object(hist, "hist", in) || xl_only_keys(hist, history_attrs, "\"hist\"", in) ||
         xl_opt_str(hist, "since", &since, in)))
        return GW_EINVAL;
    long long n[3];
    bool has[3] = {false, false, false};
    for (int i = 0; hist && i < 3; i++)
        if (xl_opt_int(hist, history_attrs[i], 0, HISTORY_MAX, &has[i], &n[i], in))
            return GW_EINVAL;
    struct gw_xml *x = gw_xml_add_child(stanza, NS_MUC, "x");
    if (pw)
        xl_text_child(x, NS_MUC, "password", pw);
    if (hist) {
        struct gw_xml *h = gw_xml_add_child(x, NS_MUC, "history");
        for (int i = 0; i < 3; i++)
            if (has[i]) {
                char num[16];
                snprintf(num, sizeof num, "%lld", n[i]);
                gw_xml_set_attr(h, history_attrs[i], num);
            }
        gw_xml_set_attr(h, "since", since);
    }
    return 0;
}

/* ---- "admin": <query xmlns='…muc#admin'> holding items ---- */

static bool match_admin(const struct gw_xml *q, const struct xl_out *o)
{
    (void)o;
    if (!xl_is(q, NS_MUC_ADMIN, "query") || q->nattrs || !xl_no_text(q))
        return false;
    for (const struct gw_xml *it = q->children; it; it = it->next)
        if (!match_item(it, NS_MUC_ADMIN))
            return false;
    return true;
}

static void write_admin(struct gw_json_out *w, const struct gw_xml *q, const struct xl_out *o)
{
    (void)o;
    gw_json_open_array(w);
    for (const struct gw_xml *it = q->children; it; it = it->next) {
        gw_json_open(w);
        write_item_fields(w, it, NS_MUC_ADMIN);
        gw_json_close(w);
    }
    gw_json_close_array(w);
}

static int read_admin(const struct gw_json *v, struct gw_xml *stanza, struct xl_in *in)
{
    static const char *const keys[] = {"aff", "role", "jid", "nick", "actor", "reason", NULL};
    if (v->type != GW_JSON_ARRAY)
        return xl_refuse(in, "bad-request", "\"admin\" is an array of items", NULL);
    struct gw_xml *q = gw_xml_add_child(stanza, NS_MUC_ADMIN, "query");
    for (const struct gw_json *it = v->child; it; it = it->next)
        if (xl_need_object(it, "an item", in) || xl_only_keys(it, keys, "an item", in) ||
            read_item_fields(it, q, NS_MUC_ADMIN, in))
            return GW_EINVAL;
    return 0;
}

/* ---- "dinv": <x xmlns='jabber:x:conference' jid=… password? reason? continue? thread?/> ---- */

static bool match_dinv(const struct gw_xml *x, const struct xl_out *o)
{
    (void)o;
    static const char *const attrs[] = {"jid", "password", "reason", "continue", "thread", NULL};
    const char *jid = gw_xml_attr(x, "jid"), *cont = gw_xml_attr(x, "continue");
    return xl_is(x, NS_CONFERENCE, "x") && !x->children && xl_attrs_in(x, attrs) && jid &&
           xl_jid_ok(jid) && (!cont || xl_one_of(cont, bools));
}

static void write_dinv(struct gw_json_out *w, const struct gw_xml *x, const struct xl_out *o)
{
    (void)o;
    gw_json_open(w);
    gw_json_kv(w, "jid", gw_xml_attr(x, "jid"));
    gw_json_kv(w, "pw", gw_xml_attr(x, "password"));
    gw_json_kv(w, "reason", gw_xml_attr(x, "reason"));
    const char *cont = gw_xml_attr(x, "continue");
    if (cont) {
        gw_json_key(w, "cont");
        gw_json_bool(w, strcmp(cont, "true") == 0);
    }
    gw_json_kv(w, "th", gw_xml_attr(x, "thread"));
    gw_json_close(w);
}

static int read_dinv(const struct gw_json *v, struct gw_xml *stanza, struct xl_in *in)
{
    static const char *const keys[] = {"jid", "pw", "reason", "cont", "th", NULL};
    const char *jid, *pw, *reason, *thread;
    int cont;
    if (xl_need_object(v, "dinv", in) || xl_only_keys(v, keys, "\"dinv\"", in) ||
        xl_opt_jid(v, "jid", &jid, in) || xl_opt_str(v, "pw", &pw, in) ||
        xl_opt_str(v, "reason", &reason, in) || xl_opt_bool(v, "cont", &cont, in) ||
        xl_opt_str(v, "th", &thread, in))
        return GW_EINVAL;
    if (!jid)
        return xl_refuse(in, "bad-request", "\"dinv\" needs the room's \"jid\"", NULL);
    struct gw_xml *x = gw_xml_add_child(stanza, NS_CONFERENCE, "x");
    gw_xml_set_attr(x, "jid", jid);
    gw_xml_set_attr(x, "password", pw);
    gw_xml_set_attr(x, "reason", reason);
    if (cont >= 0)
        gw_xml_set_attr(x, "continue", cont ? "true" : "false");
    gw_xml_set_attr(x, "thread", thread);
    return 0;
}

const struct xl_form xl_muc_forms[] = {
    {"muc", XL_MESSAGE | XL_PRESENCE, match_muc, write_muc, read_muc},
    {"join", XL_PRESENCE, match_join, write_join, read_join},
    {"admin", XL_IQ, match_admin, write_admin, read_admin},
    {"dinv", XL_MESSAGE, match_dinv, write_dinv, read_dinv},
};
const size_t xl_n_muc_forms = sizeof xl_muc_forms / sizeof xl_muc_forms[0];
