/* Internals shared by the translator's files (xlate*.c): the table of short forms, the element
 * form, and the small checks every form uses. Not for other modules. */
#ifndef GW_XLATE_IMPL_H
#define GW_XLATE_IMPL_H

#include "xmpp/xlate.h"

#include <stdbool.h>
#include <stddef.h>

enum xl_kind { XL_MESSAGE = 1, XL_PRESENCE = 2, XL_IQ = 4 };

/* Writing a stanza for the client. */
struct xl_out {
    const struct gw_xlate_ctx *ctx;
    const struct gw_xml *stanza;
    enum xl_kind kind;
};

/* Reading a client's stanza: where a refusal goes. */
struct xl_in {
    const struct gw_xlate_ctx *ctx;
    enum xl_kind kind;
    const char **condition;
    char *err;
    size_t errlen;
};

/* One short form: a JSON key standing for one child element of a stanza.
 * match: the child is exactly what write() followed by read() gives back; anything else (an
 *   extra attribute, a text node, children in another order) leaves it to the element form.
 * write: writes the key's value (the caller wrote the key).
 * read: builds the child from the value and appends it to the stanza; 0 or a refusal. */
struct xl_form {
    const char *key;
    unsigned kinds;
    bool (*match)(const struct gw_xml *c, const struct xl_out *o);
    void (*write)(struct gw_json_out *w, const struct gw_xml *c, const struct xl_out *o);
    int (*read)(const struct gw_json *v, struct gw_xml *stanza, struct xl_in *in);
};

/* Every form, in the order read() builds children: xl_forms (xlate_forms.c) then
 * xl_muc_forms (xlate_muc.c); xl_form(i) walks both, i < xl_form_count(). */
extern const struct xl_form xl_forms[];
extern const size_t xl_nforms;
extern const struct xl_form xl_muc_forms[];
extern const size_t xl_n_muc_forms;

static inline size_t xl_form_count(void)
{
    return xl_nforms + xl_n_muc_forms;
}

static inline const struct xl_form *xl_form(size_t i)
{
    return i < xl_nforms ? &xl_forms[i] : &xl_muc_forms[i - xl_nforms];
}

/* Sets the condition and reason of a refusal; returns GW_EINVAL. */
int xl_refuse(struct xl_in *in, const char *condition, const char *why, const char *detail);

/* The element form of el; its "ns" is left out when it equals parent_ns. */
void xl_write_tree(struct gw_json_out *w, const struct gw_xml *el, const char *parent_ns);
/* Reads the element form v (children inherit parent_ns). 0 and an owned *out, or a refusal. */
int xl_read_tree(const struct gw_json *v, const char *parent_ns, struct gw_xml **out,
                 struct xl_in *in);

/* ---- checks on XML (server side) ---- */

bool xl_one_of(const char *s, const char *const *set); /* set ends with NULL */
bool xl_is(const struct gw_xml *el, const char *ns, const char *name);
bool xl_no_text(const struct gw_xml *el);   /* element children only */
bool xl_text_only(const struct gw_xml *el); /* no attributes, only text */
/* Every attribute unqualified and named in set (NULL-terminated). */
bool xl_attrs_in(const struct gw_xml *el, const char *const *set);
/* s is the canonical decimal writing of an integer in lo..hi (no sign, no leading zero). */
bool xl_canon_int(const char *s, long long lo, long long hi, long long *out);
bool xl_jid_ok(const char *s); /* NULL (absent) or a valid JID */

/* ---- reading JSON (client side) ---- */

/* Refuses a key of obj that is not in keys (NULL-terminated). what names the object. */
int xl_only_keys(const struct gw_json *obj, const char *const *keys, const char *what,
                 struct xl_in *in);
/* Optional members of a given type: 0 with *out NULL/unchanged when absent, a refusal when the
 * member has another type. */
int xl_opt_str(const struct gw_json *obj, const char *key, const char **out, struct xl_in *in);
int xl_opt_jid(const struct gw_json *obj, const char *key, const char **out, struct xl_in *in);
int xl_opt_bool(const struct gw_json *obj, const char *key, int *out, struct xl_in *in);
int xl_opt_int(const struct gw_json *obj, const char *key, long long lo, long long hi,
               bool *present, long long *out, struct xl_in *in);
int xl_need_object(const struct gw_json *v, const char *what, struct xl_in *in);

/* ---- writing ---- */

/* Appends <name xmlns=ns>text</name> (no text node for ""). */
struct gw_xml *xl_text_child(struct gw_xml *parent, const char *ns, const char *name,
                             const char *text);
void xl_kv_int(struct gw_json_out *w, const char *key, long long v);
void xl_kv_text(struct gw_json_out *w, const char *key, const struct gw_xml *el);

#endif
