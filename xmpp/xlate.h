/* Translation between stanzas (struct gw_xml) and the JSON protocol's stanza objects
 * (docs/json-protocol.md): short forms for messages, presence and iq, and a lossless escape
 * form for any element. */
#ifndef GW_XLATE_H
#define GW_XLATE_H

#include "xmpp/json.h"
#include "xmpp/xml.h"

/* Writes stanza el (from the server) as one JSON object. own_jid (the session's full JID) is
 * left out of "to"; stream_lang, the upstream stream's xml:lang, is left out of "l". Returns 0,
 * or GW_EINVAL for something JSON cannot carry (never expected from a parsed stanza). */
int gw_xlate_to_json(const struct gw_xml *el, const char *own_jid, const char *stream_lang,
                     struct gw_json_out *w);

/* Builds the stanza a client's JSON object stands for, without "from" whatever the JSON says.
 * Returns 0 and an owned element, or GW_EINVAL with *condition set to the stanza error to
 * answer ("jid-malformed" for a bad "to", "bad-request" otherwise) and a reason in err. */
int gw_xlate_to_xml(const struct gw_json *obj, struct gw_xml **out, const char **condition,
                    char *err, size_t errlen);

#endif
