/* Streaming XML parser (expat) for XMPP streams and for one-element documents, with hard limits. */
#ifndef GW_STREAM_H
#define GW_STREAM_H

#include "xmpp/xml.h"

#include <stdbool.h>
#include <stddef.h>

/* Bounds applied to everything parsed. */
struct gw_xml_limits {
    size_t max_stanza;  /* bytes of one top-level stanza (or one document) */
    unsigned max_depth; /* element nesting below the stream root (document root counts 1) */
    unsigned max_attrs; /* attributes (including xmlns declarations) per element */
};

/* Callbacks of a stream parser. Each is called from inside gw_stream_feed().
 * open: the stream root (<stream:stream> or an RFC 7395 <open/>); borrowed for the call.
 * stanza: a complete top-level child; the handler takes ownership.
 * close: the stream root was closed.
 * error: parsing failed; condition is an RFC 6120 stream-error condition ("not-well-formed",
 *   "restricted-xml", "policy-violation", "unsupported-encoding", "invalid-namespace",
 *   "bad-format", "invalid-xml"); text is a short human-readable detail. No callback follows
 *   an error until gw_stream_reset(). */
struct gw_stream_handlers {
    void (*open)(void *arg, const struct gw_xml *root);
    void (*stanza)(void *arg, struct gw_xml *stanza);
    void (*close)(void *arg);
    void (*error)(void *arg, const char *condition, const char *text);
};

struct gw_stream;

/* Returns an owned parser. limits and handlers are copied. */
struct gw_stream *gw_stream_new(const struct gw_xml_limits *limits,
                                const struct gw_stream_handlers *h, void *arg);
/* Parses len bytes. A stanza is delivered as soon as its last byte has been fed, whatever the
 * chunking. Returns 0, or the negative GW_E* after the error handler was called. Must not be
 * called re-entrantly from a handler. */
int gw_stream_feed(struct gw_stream *st, const char *data, size_t len);
/* Starts a new stream (after STARTTLS or SASL success). Safe from inside a handler: the parser
 * stops at the current byte, is reset after the feed returns, and the rest of that feed's bytes
 * go to the new stream. */
void gw_stream_reset(struct gw_stream *st);
/* From inside the stanza handler: the bytes of the stanza being delivered, borrowed for the
 * call, when they can stand for it outside the stream. That is when all of them are in the
 * buffer of the current gw_stream_feed() (a stanza begun in an earlier feed gives NULL), and no
 * element or attribute in it has a prefix other than xml, so every name resolves inside it.
 * The one exception is the root's default namespace: *declares_ns says whether the root
 * declares it itself; if not, it comes from the stream, and a copy on its own must declare it
 * (insert xmlns='...' after the root's name). NULL outside the handler. */
const char *gw_stream_stanza_bytes(const struct gw_stream *st, size_t *len, bool *declares_ns);
/* By default a stream releases its expat parser (~11 KB) whenever a feed ends between two
 * stanzas, and rebuilds it on the next feed (~3 µs). keep = true keeps it until
 * gw_stream_release(), for an owner that releases on its own idle timer instead (and, so that
 * expat's name tables stay bounded, at the first pause between stanzas after 256 KiB). */
void gw_stream_keep_parser(struct gw_stream *st, bool keep);
/* Releases the parser now if the stream sits between two stanzas with nothing buffered (a
 * no-op otherwise, and from inside a handler). The next feed rebuilds it. */
void gw_stream_release(struct gw_stream *st);
/* True when the stream holds no expat parser: the last feed ended between two stanzas, so the
 * parser was released (it is rebuilt by the next feed). For tests and memory accounting. */
bool gw_stream_idle(const struct gw_stream *st);
/* Frees the parser. Safe from inside a handler (the free is deferred to the end of the feed). */
void gw_stream_free(struct gw_stream *st);

/* Parses a buffer that must hold exactly one element (an RFC 7395 frame or a BOSH body).
 * Leading/trailing whitespace is allowed; an XML declaration is allowed; DOCTYPE, comments,
 * processing instructions, a second element or text outside the root are refused.
 * On success *out is the owned root and 0 is returned. On failure returns a negative GW_E*
 * and sets *condition to the RFC 6120 condition name (static string). Makes and frees an expat
 * parser: front ends that parse a document per message use a gw_xml_doc instead. */
int gw_xml_parse_document(const char *data, size_t len, const struct gw_xml_limits *limits,
                          struct gw_xml **out, const char **condition);

/* A document parser kept from one document to the next (reset between them, which costs a
 * fraction of making a new one), for a front end that parses every message it receives. One per
 * front end, not per connection: a parse runs to completion before the next. A document larger
 * than 16 KiB frees the parser afterwards, so that one large message leaves no large buffers. */
struct gw_xml_doc;
/* Returns an owned, empty document parser (the expat parser is made at the first parse). */
struct gw_xml_doc *gw_xml_doc_new(void);
/* NULL is fine. */
void gw_xml_doc_free(struct gw_xml_doc *doc);
/* gw_xml_parse_document() on a kept parser: the same rules, results and errors. */
int gw_xml_doc_parse(struct gw_xml_doc *doc, const char *data, size_t len,
                     const struct gw_xml_limits *limits, struct gw_xml **out,
                     const char **condition);

/* Whether data, a document that parsed as el, means el inside a stream whose default namespace
 * is anything: it starts with el's start tag (no whitespace or XML declaration before it), and el
 * is unprefixed in namespace ns, so it declares the default namespace itself. Every name in the
 * document then resolves inside el, so its bytes can stand in for el serialized. */
bool gw_xml_doc_embeddable(const struct gw_xml *el, const char *data, size_t len, const char *ns);
/* For a caller that sends such documents on as written and reads only their root: from now on
 * a document for which gw_xml_doc_embeddable(el, data, len, ns) holds may come back as its root
 * alone (name, namespace, attributes; no children, no text), checked all the same. Every other
 * document comes back whole. ns must outlive doc; NULL turns it off. */
void gw_xml_doc_shallow(struct gw_xml_doc *doc, const char *ns);

#endif
