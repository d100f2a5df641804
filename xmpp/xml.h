/* XML element trees for stanzas, and an escaping serializer. */
#ifndef GW_XML_H
#define GW_XML_H

#include <stdbool.h>
#include <stddef.h>

/* Namespace URIs used across modules. */
#define GW_NS_CLIENT  "jabber:client"
#define GW_NS_STREAM  "http://etherx.jabber.org/streams"
#define GW_NS_FRAMING "urn:ietf:params:xml:ns:xmpp-framing"
#define GW_NS_TLS     "urn:ietf:params:xml:ns:xmpp-tls"
#define GW_NS_SASL    "urn:ietf:params:xml:ns:xmpp-sasl"
#define GW_NS_BIND    "urn:ietf:params:xml:ns:xmpp-bind"
#define GW_NS_STREAMS "urn:ietf:params:xml:ns:xmpp-streams"
#define GW_NS_STANZAS "urn:ietf:params:xml:ns:xmpp-stanzas"
#define GW_NS_SM      "urn:xmpp:sm:3"
#define GW_NS_XML     "http://www.w3.org/XML/1998/namespace"

/* One attribute. ns is NULL for unqualified attributes; prefix is the prefix it was written
 * with (NULL if none), kept so that a round trip reproduces the input. */
struct gw_xml_attr {
    char *ns;
    char *prefix;
    char *name;
    char *value;
};

enum gw_xml_node_kind { GW_XML_ELEMENT, GW_XML_TEXT };

/* A node of the tree: an element or a text run. Children are a singly linked list.
 * Element: ns is the namespace URI (NULL for none), prefix the prefix it was written with
 * (NULL for the default namespace). Text: text/text_len hold character data (no escaping).
 * The node owns every string and its attribute array; they may live in the node's own
 * allocation, so change them only through the functions below, never by assignment. */
struct gw_xml {
    enum gw_xml_node_kind kind;
    unsigned block; /* bytes of the node's own allocation, which may hold its strings */
    struct gw_xml *next;
    /* element */
    char *ns;
    char *prefix;
    char *name;
    struct gw_xml_attr *attrs;
    size_t nattrs;
    struct gw_xml *children;
    struct gw_xml *last_child;
    /* text */
    char *text;
    size_t text_len;
};

/* Builders. Each returns an owned node; strings are copied. ns and prefix may be NULL. */
struct gw_xml *gw_xml_new(const char *ns, const char *name);
/* An element with unqualified attributes, in one allocation: pairs holds npairs name/value
 * pairs in order, with distinct names, and a pair whose value is NULL is left out. */
struct gw_xml *gw_xml_new_attrs(const char *ns, const char *name, const char *const *pairs,
                                size_t npairs);
/* An element from a parser's names, in one allocation with its attributes: qname and the
 * attribute names are expat's triplets ("uri" sep "local" sep "prefix", or "local"), atts the
 * NULL-terminated name/value pairs. */
struct gw_xml *gw_xml_new_parsed(const char *qname, const char **atts, char sep);
struct gw_xml *gw_xml_new_text(const char *text, size_t len);
/* Appends child (takes ownership) and returns it. */
struct gw_xml *gw_xml_append(struct gw_xml *parent, struct gw_xml *child);
/* Creates a child element in the parent's namespace (or ns if non-NULL) and returns it. */
struct gw_xml *gw_xml_add_child(struct gw_xml *parent, const char *ns, const char *name);
/* Appends a text child. */
void gw_xml_add_text(struct gw_xml *parent, const char *text, size_t len);
/* Replace the element's namespace URI and its prefix (NULL: none). */
void gw_xml_set_ns(struct gw_xml *el, const char *ns);
void gw_xml_set_prefix(struct gw_xml *el, const char *prefix);
/* Sets or replaces an unqualified attribute (value NULL removes it). */
void gw_xml_set_attr(struct gw_xml *el, const char *name, const char *value);
/* Sets or replaces an attribute in namespace ns, with its prefix (a hint for serialization). */
void gw_xml_set_attr_ns(struct gw_xml *el, const char *ns, const char *prefix, const char *name,
                        const char *value);
/* Frees a node, its children and (not) its siblings. NULL is fine. */
void gw_xml_free(struct gw_xml *node);
/* Returns an owned deep copy (siblings not copied). */
struct gw_xml *gw_xml_copy(const struct gw_xml *node);

/* Lookups: borrow, never NULL-check the tree. */
const char *gw_xml_attr(const struct gw_xml *el, const char *name);
const char *gw_xml_attr_ns(const struct gw_xml *el, const char *ns, const char *name);
/* First child element with this name in namespace ns (ns NULL matches any). */
struct gw_xml *gw_xml_child(const struct gw_xml *el, const char *ns, const char *name);
/* Next sibling element after cur (cur NULL: first child element). */
struct gw_xml *gw_xml_next_element(const struct gw_xml *parent, const struct gw_xml *cur);
/* Concatenated direct text children; returns owned string (empty if none). */
char *gw_xml_text(const struct gw_xml *el);
bool gw_xml_is(const struct gw_xml *el, const char *ns, const char *name);
/* The defined condition of a stream or stanza <error/> (RFC 6120 §4.9.3, §8.3.3): the name of
 * its first child element in namespace ns other than <text/>, or NULL when it has none. */
const char *gw_xml_error_condition(const struct gw_xml *err, const char *ns);

/* A growable output buffer with a hard cap. */
struct gw_buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max; /* 0: unbounded (only for internal, already-bounded data) */
};
void gw_buf_init(struct gw_buf *b, size_t max);
void gw_buf_free(struct gw_buf *b);
void gw_buf_reset(struct gw_buf *b);
/* Each returns 0 or GW_ELIMIT when max would be crossed (the buffer is left unchanged). */
int gw_buf_append(struct gw_buf *b, const void *p, size_t n);
int gw_buf_puts(struct gw_buf *b, const char *s);
int gw_buf_printf(struct gw_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Drops the first n bytes. */
void gw_buf_consume(struct gw_buf *b, size_t n);

/* Serializes el as a standalone element: namespace declarations it needs are written on it
 * (default_ns is the namespace already in scope, e.g. "jabber:client" inside a c2s stream, or
 * NULL for a standalone document such as a WebSocket frame). Text and attribute values are
 * escaped (&, <, >, ", ' and the characters XML cannot hold are refused).
 * Returns 0, GW_ELIMIT (buffer cap) or GW_EINVAL (a string is not valid XML character data). */
int gw_xml_serialize(struct gw_buf *out, const struct gw_xml *el, const char *default_ns);

/* Appends s escaped so that it is valid, and reads back unchanged, both as text and as an
 * attribute value (quotes, tab, LF and CR become references). Returns 0, GW_ELIMIT or
 * GW_EINVAL if s is not valid UTF-8 XML character data. */
int gw_xml_escape(struct gw_buf *out, const char *s, size_t len);

#endif
