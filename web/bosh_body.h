/* BOSH <body/> wrappers (XEP-0124 §6, XEP-0206): parsing and validating a request's wrapper
 * into typed attributes, and writing response wrappers. No I/O and no session state, so it is
 * fuzzed and unit-tested on its own. */
#ifndef GW_BOSH_BODY_H
#define GW_BOSH_BODY_H

#include "xmpp/stream.h"
#include "xmpp/xml.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GW_NS_HTTPBIND "http://jabber.org/protocol/httpbind"
#define GW_NS_XBOSH    "urn:xmpp:xbosh"

/* XEP-0124 §14.1: rids stay below 2^53 so that every client can represent them. */
#define GW_BOSH_RID_MAX 9007199254740991ULL

/* A request wrapper. Strings are borrowed from root and live as long as it. */
struct gw_bosh_body {
    struct gw_xml *root; /* owned: the parsed <body/> with its payloads as children */
    const char *sid;     /* NULL: a session creation request */
    uint64_t rid;
    /* session creation */
    const char *to, *lang, *route, *content, *xmpp_version;
    bool has_wait, has_hold, has_ver, ack_requested;
    uint64_t wait; /* saturated at UINT32_MAX: only ever clamped down */
    uint64_t hold;
    unsigned ver_major, ver_minor;
    /* any request */
    const char *key, *newkey;
    bool has_ack, has_pause, terminate, restart;
    uint64_t ack, pause;
    size_t npayloads; /* element children */
};

/* Parses data as one <body/> under lim (DOCTYPE, comments, PIs and entity declarations
 * refused) and validates the attributes this connection manager acts on: rid (1..2^53-1),
 * the numbers (digits only), key/newkey (hex), content (printable ASCII), type (only
 * "terminate"), xmpp:restart, and that the wrapper holds no character data. Returns 0 and
 * fills out (release with gw_bosh_body_free), or a negative GW_E* with *condition set to the
 * terminal binding condition to answer: "bad-request", or "policy-violation" when a size,
 * depth or attribute bound was crossed. doc is the front end's kept document parser (borrowed),
 * or NULL for a parser made for this body alone. */
int gw_bosh_body_parse(struct gw_xml_doc *doc, const char *data, size_t len,
                       const struct gw_xml_limits *lim, struct gw_bosh_body *out,
                       const char **condition);
void gw_bosh_body_free(struct gw_bosh_body *b);

/* Parses a non-negative decimal integer made of digits only (no sign, space or exponent),
 * saturating at max. Returns 0 or GW_EINVAL. */
int gw_bosh_parse_uint(const char *s, uint64_t max, uint64_t *out);

/* Appends the opening of a response wrapper: <body xmlns=... [attrs]> (attrs is a string of
 * already escaped ' name="value"' pairs, may be NULL). Close it with gw_bosh_wrapper_end(). */
int gw_bosh_wrapper_begin(struct gw_buf *out, const char *attrs);
int gw_bosh_wrapper_end(struct gw_buf *out);
/* Appends ' name="value"' with value escaped. */
int gw_bosh_attr(struct gw_buf *out, const char *name, const char *value);
int gw_bosh_attr_u64(struct gw_buf *out, const char *name, uint64_t value);

/* Writes a complete terminal binding wrapper: type='terminate', condition (NULL: a normal end),
 * then payload (already serialized elements, may be empty). */
int gw_bosh_terminal(struct gw_buf *out, const char *condition, const char *payload, size_t len);

/* The legacy HTTP status (XEP-0124 §17.1) standing for a terminal condition, for clients that
 * sent no 'ver': 400, 403, 404, or 200 for conditions that have none. */
unsigned gw_bosh_legacy_status(const char *condition);

#endif
