/* Translation between stanzas (struct gw_xml) and the JSON protocol's stanza objects
 * (docs/json-protocol.md): short forms for messages, presence, iq, MUC and the roster, JID
 * aliases, and a lossless element (escape) form for anything else. */
#ifndef GW_XLATE_H
#define GW_XLATE_H

#include "xmpp/alias.h"
#include "xmpp/json.h"
#include "xmpp/xml.h"

/* What a translation needs to know about the connection. Every pointer is borrowed and may be
 * NULL.
 * own_jid: the session's full JID; a delivered "to" equal to it is left out.
 * own_bare: the session's bare JID; only it may push a roster (RFC 6121 §2.1.6). NULL:
 *   own_jid up to its resource.
 * stream_lang: the upstream stream's xml:lang, left out of "l".
 * aliases: the connection's alias table once the client turned aliases on; NULL means every
 *   JID is written in full and a numeric "to" from the client is refused.
 * max_bytes: the largest stanza, serialized, that a client may send (0: no bound); a JSON
 *   object within the size cap can still grow past it as XML (escaping, namespaces). */
struct gw_xlate_ctx {
    const char *own_jid;
    const char *own_bare;
    const char *stream_lang;
    struct gw_alias *aliases;
    size_t max_bytes;
    /* Optional, with max_bytes: gw_xlate_json_stanza() leaves here the stanza serialized in the
     * jabber:client default namespace, as its size check wrote it, so that the caller can send
     * those bytes rather than serialize again (empty when it fails; the caller frees it). */
    struct gw_buf *xml;
};

/* Writes stanza el (from the server) as one JSON object: a short form when one describes it
 * exactly, else the element form. New aliases are assigned in ctx->aliases on the way.
 * Returns 0. */
int gw_xlate_stanza_json(const struct gw_xml *el, const struct gw_xlate_ctx *ctx,
                         struct gw_json_out *w);

/* Builds the stanza a client's JSON object stands for, without "from" whatever the JSON says.
 * Returns 0 and an owned element, or GW_EINVAL with *condition set to the error to answer
 * ("jid-malformed" for a bad JID, "item-not-found" for an unknown alias, "policy-violation"
 * for a stanza over ctx->max_bytes, "bad-request" otherwise) and a reason in err. */
int gw_xlate_json_stanza(const struct gw_json *obj, const struct gw_xlate_ctx *ctx,
                         struct gw_xml **out, const char **condition, char *err, size_t errlen);

/* The protocol's error object's fields, "op":"error", "cond", "text" and "id" (NULL ones left
 * out), into an object open in w (docs/json-protocol.md, "Limits and bad input"). */
void gw_xlate_error_fields(struct gw_json_out *w, const char *cond, const char *text,
                           const char *id);

/* The "alias" op: {"op":"alias"} turns aliases on (creating *table), {"op":"alias","jid":J}
 * also assigns one to J. Writes the answer ({"op":"alias",...} or {"op":"error",...}) into w.
 * *table is owned by the caller (gw_alias_free). */
void gw_xlate_alias_op(struct gw_alias **table, const struct gw_json *obj, struct gw_json_out *w);

/* The calls of the first version, kept for callers that have no context: no aliases and no
 * size bound. */
int gw_xlate_to_json(const struct gw_xml *el, const char *own_jid, const char *stream_lang,
                     struct gw_json_out *w);
int gw_xlate_to_xml(const struct gw_json *obj, struct gw_xml **out, const char **condition,
                    char *err, size_t errlen);

#endif
