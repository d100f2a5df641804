/* What the REST API reads and writes without any I/O: request bodies turned into stanzas, RFC
 * 9457 problem documents, and the header checks (Accept, Content-Type, X-Request-Id). Kept apart
 * from the handlers so that the unit tests and the fuzz target reach them directly. */
#ifndef GW_REST_BODY_H
#define GW_REST_BODY_H

#include "xmpp/json.h"
#include "xmpp/stream.h"
#include "xmpp/xml.h"

#include <stdbool.h>
#include <stddef.h>

#define GW_REST_PROBLEM_TYPE "application/problem+json"

enum gw_rest_form { GW_REST_JSON, GW_REST_XML };

/* A stanza a backend asked to send. */
struct gw_rest_stanza {
    struct gw_xml *el; /* owned; in jabber:client, with no "from" */
    char *from;        /* owned; the sender the body named ("f", or "from" in XML), or NULL */
    enum gw_rest_form form;
};

/* Parses a request body into a stanza.
 * form GW_REST_JSON: one JSON object in the JSON protocol's stanza form (docs/json-protocol.md),
 *   translated by xmpp/xlate so both APIs read the same; "f" names the sender.
 * form GW_REST_XML: one <message/>, <presence/> or <iq/> in jabber:client (or no namespace),
 *   parsed under limits (DOCTYPE, comments, PIs refused); its "from" names the sender.
 * message_only: only a message is accepted (POST /messages), and "to" is required.
 * max_stanza bounds the body and the stanza it makes. Returns 0 and fills out, or GW_EINVAL
 * (bad input: reason in err) or GW_ELIMIT (too big). */
int gw_rest_stanza_parse(const char *body, size_t len, enum gw_rest_form form, bool message_only,
                         const struct gw_xml_limits *limits, struct gw_rest_stanza *out, char *err,
                         size_t errlen);
void gw_rest_stanza_free(struct gw_rest_stanza *s);

/* Writes an RFC 9457 problem document: type is "urn:mxgw:problem:<slug>", title the status's
 * phrase, detail (may be NULL) a sentence for people, request_id (may be NULL) the request's id.
 * Returns the writer's text (borrowed from w). */
const char *gw_rest_problem(struct gw_json_out *w, unsigned status, const char *slug,
                            const char *detail, const char *request_id, size_t *len);
/* The reason phrase of an HTTP status ("Not Found"), or "Error". */
const char *gw_rest_status_phrase(unsigned status);

/* True when an Accept header (NULL: absent) admits application/json (and so the problem type):
 * application/json, application/problem+json, application/(any), (any)/(any), with q > 0. */
bool gw_rest_accepts_json(const char *accept);
/* The request's media type, compared without parameters: 1 for application/json (a charset
 * parameter, when present, must be utf-8), 2 for application/xml or text/xml, 0 otherwise. */
int gw_rest_media_type(const char *content_type);
/* True when s is an acceptable client request id: 1..64 of [A-Za-z0-9._-]. */
bool gw_rest_request_id_ok(const char *s);

#endif
