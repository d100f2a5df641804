/* Streaming XML parsing on expat, for the upstream stream and for one-element documents.
 *
 * expat runs with namespace processing and prefixes kept (triplets), so trees round-trip.
 * Everything RFC 6120 §11.1 restricts (DOCTYPE, entity declarations, comments, PIs) stops the
 * parser at once, before any expansion. Reparse deferral is off so a stanza is delivered as soon
 * as its last byte arrives; to keep expat's own buffering bounded, input is fed in slices and
 * the bytes since the current stanza (or the last event between stanzas) began are checked
 * against the stanza limit after each slice. Handlers may reset or free the parser: expat is
 * only stopped there (XML_StopParser), and reset or freed after XML_Parse returns.
 *
 * Idle streams hold no expat parser. An expat parser costs about 11 KB once it has seen a
 * stream header (buffers, name pools, hash tables), more than all the rest of a session. So
 * when a feed ends exactly between two stanzas, the parser is freed and the stream keeps only
 * the root's start tag with its namespace declarations (some 100 bytes); the next feed makes a
 * new parser and replays that tag, silently, before the new bytes. Positions stay in the
 * caller's byte count: the replayed bytes are subtracted (skew). The cost is one parser
 * creation per wakeup (about 3 µs); an owner that keeps the parser (gw_stream_keep_parser) releases
 * on its own idle timer with gw_stream_release() instead, so that busy streams do not pay it. */
#include "xmpp/stream.h"

#include "gateway/err.h"
#include "gateway/mem.h"

#include <expat.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define NS_SEP '\x01' /* cannot occur in XML 1.0 text, so names split unambiguously */
#define SLICE  4096
/* A kept parser is replaced (released between two stanzas, rebuilt by the next feed) once it
 * has parsed this many bytes: expat keeps every distinct element, attribute and prefix name it
 * has seen until the document ends, so a stream that never pauses must not grow it forever. */
#define RENEW_BYTES (256 * 1024)

struct gw_stream {
    XML_Parser p;
    struct gw_xml_limits lim;
    struct gw_stream_handlers h;
    void *arg;
    bool document; /* one-element document: the root is the result */
    bool failed;
    bool in_feed;
    bool reset_pending;
    bool free_pending;
    unsigned depth;   /* open elements, the stream root included */
    unsigned nsdecls; /* namespace declarations seen for the next start tag */
    struct gw_xml **stack;
    unsigned stack_cap;
    unsigned long long fed;  /* bytes given to expat since the (re)start */
    unsigned long long mark; /* where the current stanza or inter-stanza run began */
    unsigned long long reset_at;
    unsigned long long skew; /* bytes of a replayed root tag at the start of expat's input */
    struct gw_buf root_tag;  /* the root's start tag, for rebuilding a released parser */
    bool replaying;          /* feeding root_tag: no handler runs */
    bool keep_parser;        /* released only by gw_stream_release() */
    unsigned long salt;      /* expat's hash salt, drawn once per stream (0: expat's own) */
    /* What gw_stream_stanza_bytes() needs: the caller's bytes of the current feed begin at
     * position origin_pos; whether the stanza being parsed can stand alone so far. */
    const char *origin_ptr;
    unsigned long long origin_pos;
    bool alone;             /* no prefix other than xml: on any element or attribute */
    const char *shallow_ns; /* a stanza root unprefixed in it is built alone (gw_xml_doc_shallow) */
    bool shallow;           /* the stanza being parsed is: no children, no text */
    bool root_decl;         /* a default namespace declaration seen for the next stanza root */
    bool alone_decl;        /* the stanza root declares its default namespace itself */
    const char *raw;        /* the stanza being delivered, during the stanza handler only */
    size_t raw_len;
    const char *cond;
    const char *text;
    struct gw_xml *result; /* document mode */
};

static void fail(struct gw_stream *st, const char *cond, const char *text)
{
    if (st->failed)
        return;
    st->failed = true;
    st->cond = cond;
    st->text = text;
    XML_StopParser(st->p, XML_FALSE);
}

static unsigned long long event_start(struct gw_stream *st)
{
    return (unsigned long long)XML_GetCurrentByteIndex(st->p) - st->skew;
}

static unsigned long long event_end(struct gw_stream *st)
{
    return event_start(st) + (unsigned long long)XML_GetCurrentByteCount(st->p);
}

/* Appends s to the saved root tag with the characters an attribute value cannot hold raw
 * escaped. */
static void tag_escaped(struct gw_buf *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '&')
            gw_buf_puts(b, "&amp;");
        else if (*s == '<')
            gw_buf_puts(b, "&lt;");
        else if (*s == '\'')
            gw_buf_puts(b, "&apos;");
        else
            gw_buf_append(b, s, 1);
    }
}

/* Whether el's name and attributes resolve without a prefix declared outside it (xml: is
 * bound everywhere). */
static bool unprefixed(const struct gw_xml *el)
{
    if (el->prefix)
        return false;
    for (size_t i = 0; i < el->nattrs; i++)
        if (el->attrs[i].prefix && strcmp(el->attrs[i].prefix, "xml") != 0)
            return false;
    return true;
}

static void on_start(void *ud, const char *name, const char **atts)
{
    struct gw_stream *st = ud;
    if (st->failed || st->reset_pending || st->free_pending)
        return;
    unsigned nattrs = st->nsdecls;
    st->nsdecls = 0;
    for (const char **a = atts; *a; a += 2)
        nattrs++;
    if (nattrs > st->lim.max_attrs) {
        fail(st, "policy-violation", "too many attributes");
        return;
    }
    unsigned rel = st->document ? st->depth + 1 : st->depth;
    if (rel > st->lim.max_depth) {
        fail(st, "policy-violation", "elements nested too deep");
        return;
    }
    st->depth++;
    if (!st->document && st->depth == 1) {
        if (st->replaying)
            return;
        struct gw_xml *root = gw_xml_new_parsed(name, atts, NS_SEP);
        /* "<prefix:name" before the declarations on_nsdecl saved: what </prefix:name> closes. */
        struct gw_buf decls = st->root_tag;
        gw_buf_init(&st->root_tag, 0);
        gw_buf_puts(&st->root_tag, "<");
        if (root->prefix) {
            gw_buf_puts(&st->root_tag, root->prefix);
            gw_buf_puts(&st->root_tag, ":");
        }
        gw_buf_puts(&st->root_tag, root->name);
        if (decls.len)
            gw_buf_append(&st->root_tag, decls.data, decls.len);
        gw_buf_puts(&st->root_tag, ">");
        gw_buf_free(&decls);
        st->mark = event_end(st);
        if (st->h.open)
            st->h.open(st->arg, root);
        gw_xml_free(root);
        return;
    }
    unsigned level = st->document ? st->depth - 1 : st->depth - 2; /* 0: stanza/document root */
    if (level > 0 && st->shallow) {                                /* checked above, not built */
        st->root_decl = false;
        return;
    }
    if (level == 0 && !st->document)
        st->mark = event_start(st);
    if (level >= st->stack_cap) {
        st->stack_cap = st->stack_cap ? st->stack_cap * 2 : 8;
        st->stack = gw_realloc(st->stack, st->stack_cap * sizeof *st->stack);
    }
    struct gw_xml *el = gw_xml_new_parsed(name, atts, NS_SEP);
    if (level > 0) {
        gw_xml_append(st->stack[level - 1], el);
        st->alone = st->alone && unprefixed(el);
    } else {
        st->shallow =
            st->shallow_ns && !el->prefix && el->ns && strcmp(el->ns, st->shallow_ns) == 0;
        st->alone = unprefixed(el) && !st->shallow; /* its bytes are not checked below the root */
        st->alone_decl = st->root_decl;
    }
    st->root_decl = false;
    st->stack[level] = el;
}

static void on_end(void *ud, const char *name)
{
    struct gw_stream *st = ud;
    (void)name;
    if (st->failed || st->reset_pending || st->free_pending)
        return;
    st->depth--;
    if (!st->document && st->depth == 0) {
        st->mark = event_end(st);
        if (st->h.close)
            st->h.close(st->arg);
        return;
    }
    unsigned level = st->document ? st->depth : st->depth - 1;
    if (level > 0)
        return;
    struct gw_xml *el = st->stack[0];
    st->stack[0] = NULL;
    if (st->document) {
        st->result = el;
        return;
    }
    unsigned long long end = event_end(st);
    if (st->alone && st->origin_ptr && st->mark >= st->origin_pos) {
        st->raw = st->origin_ptr + (st->mark - st->origin_pos);
        st->raw_len = (size_t)(end - st->mark);
    }
    st->mark = end;
    if (st->stack_cap > 32) { /* give back what a deep stanza needed */
        free(st->stack);
        st->stack = NULL;
        st->stack_cap = 0;
    }
    if (st->h.stanza)
        st->h.stanza(st->arg, el);
    else
        gw_xml_free(el);
    st->raw = NULL; /* st outlives the handler: a free from inside it is deferred */
}

static void on_text(void *ud, const char *s, int len)
{
    struct gw_stream *st = ud;
    if (st->failed || st->reset_pending || st->free_pending)
        return;
    unsigned level_base = st->document ? 1 : 2;
    if (st->depth < level_base) {
        /* Between stanzas only whitespace is allowed (RFC 6120 §11.7). */
        for (int i = 0; i < len; i++)
            if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r') {
                fail(st, "not-well-formed", "text at stream level");
                return;
            }
        st->mark = event_end(st);
        return;
    }
    if (st->shallow)
        return;
    gw_xml_add_text(st->stack[st->depth - level_base], s, (size_t)len);
}

static void on_nsdecl(void *ud, const char *prefix, const char *uri)
{
    struct gw_stream *st = ud;
    st->nsdecls++;
    if (!st->document && st->depth == 1 && !prefix)
        st->root_decl = true; /* on the stanza root that follows */
    if (st->document || st->depth > 0 || st->replaying)
        return;
    /* A declaration on the stream root: kept so that a released parser can be rebuilt. */
    gw_buf_puts(&st->root_tag, prefix ? " xmlns:" : " xmlns");
    if (prefix)
        gw_buf_puts(&st->root_tag, prefix);
    gw_buf_puts(&st->root_tag, "='");
    tag_escaped(&st->root_tag, uri ? uri : "");
    gw_buf_puts(&st->root_tag, "'");
}

static void on_restricted_doctype(void *ud, const char *name, const char *sysid, const char *pubid,
                                  int has_internal)
{
    (void)name, (void)sysid, (void)pubid, (void)has_internal;
    fail(ud, "restricted-xml", "DOCTYPE is not allowed");
}

static void on_restricted_entity(void *ud, const char *name, int param, const char *value, int vlen,
                                 const char *base, const char *sysid, const char *pubid,
                                 const char *notation)
{
    (void)name, (void)param, (void)value, (void)vlen, (void)base, (void)sysid, (void)pubid;
    (void)notation;
    fail(ud, "restricted-xml", "entity declarations are not allowed");
}

static void on_restricted_comment(void *ud, const char *data)
{
    (void)data;
    fail(ud, "restricted-xml", "comments are not allowed");
}

static void on_restricted_pi(void *ud, const char *target, const char *data)
{
    (void)target, (void)data;
    fail(ud, "restricted-xml", "processing instructions are not allowed");
}

static void on_xmldecl(void *ud, const char *version, const char *encoding, int standalone)
{
    (void)standalone;
    if (version && strcmp(version, "1.0") != 0)
        fail(ud, "unsupported-version", "XML version must be 1.0");
    else if (encoding && strcasecmp(encoding, "UTF-8") != 0)
        fail(ud, "unsupported-encoding", "encoding must be UTF-8");
}

static void setup(struct gw_stream *st)
{
    XML_Parser p = st->p;
    if (st->salt)
        XML_SetHashSalt(p, st->salt);
    XML_SetUserData(p, st);
    XML_SetReturnNSTriplet(p, 1);
    XML_SetElementHandler(p, on_start, on_end);
    XML_SetCharacterDataHandler(p, on_text);
    XML_SetStartNamespaceDeclHandler(p, on_nsdecl);
    XML_SetStartDoctypeDeclHandler(p, on_restricted_doctype);
    XML_SetEntityDeclHandler(p, on_restricted_entity);
    XML_SetCommentHandler(p, on_restricted_comment);
    XML_SetProcessingInstructionHandler(p, on_restricted_pi);
    XML_SetXmlDeclHandler(p, on_xmldecl);
#ifdef GW_HAVE_REPARSE_DEFERRAL
    /* expat ≥ 2.6.0 (and Debian's backport) defers reparsing a token that arrives in pieces,
     * which can hold back a complete stanza; the stanza cap bounds the rescan cost instead. */
    XML_SetReparseDeferralEnabled(p, XML_FALSE);
#endif
}

static void clear_tree(struct gw_stream *st)
{
    if (st->stack && st->stack_cap && st->depth > (st->document ? 0u : 1u))
        gw_xml_free(st->stack[0]);
    free(st->stack);
    st->stack = NULL;
    st->stack_cap = 0;
    st->depth = 0;
    st->nsdecls = 0;
    st->root_decl = false;
    st->fed = st->mark = st->skew = 0;
    gw_buf_free(&st->root_tag);
}

struct gw_stream *gw_stream_new(const struct gw_xml_limits *limits,
                                const struct gw_stream_handlers *h, void *arg)
{
    struct gw_stream *st = gw_calloc(1, sizeof *st);
    st->lim = *limits;
    if (h)
        st->h = *h;
    st->arg = arg;
    gw_buf_init(&st->root_tag, 0);
    /* One salt for every parser this stream will have: left to itself, expat draws one at
     * each creation (a getrandom() call and a getenv() per rebuilt parser). */
    if (getrandom(&st->salt, sizeof st->salt, GRND_NONBLOCK) != (ssize_t)sizeof st->salt)
        st->salt = 0;
    st->p = XML_ParserCreateNS("UTF-8", NS_SEP);
    if (!st->p)
        abort(); /* out of memory, as gw_malloc would */
    setup(st);
    return st;
}

static void do_reset(struct gw_stream *st)
{
    clear_tree(st);
    if (st->p) {
        XML_ParserReset(st->p, "UTF-8");
    } else {
        st->p = XML_ParserCreateNS("UTF-8", NS_SEP);
        if (!st->p)
            abort();
    }
    setup(st);
    st->failed = false;
    st->reset_pending = false;
    st->cond = st->text = NULL;
}

static void destroy(struct gw_stream *st)
{
    clear_tree(st);
    gw_xml_free(st->result);
    XML_ParserFree(st->p);
    free(st);
}

static const char *expat_condition(enum XML_Error e)
{
    switch (e) {
    case XML_ERROR_INCORRECT_ENCODING:
    case XML_ERROR_UNKNOWN_ENCODING:
        return "unsupported-encoding";
    case XML_ERROR_UNDEFINED_ENTITY:
    case XML_ERROR_ENTITY_DECLARED_IN_PE:
    case XML_ERROR_EXTERNAL_ENTITY_HANDLING:
        return "restricted-xml";
    default:
        return "not-well-formed";
    }
}

/* Feeds one slice; returns 0, 1 when a reset consumed part of it (*used says how much), or a
 * negative error after the error handler ran. */
static int feed_slice(struct gw_stream *st, const char *data, size_t n, bool final, size_t *used)
{
    unsigned long long base = st->fed;
    st->fed += n;
    st->in_feed = true;
    enum XML_Status status = XML_Parse(st->p, data, (int)n, final);
    st->in_feed = false;
    *used = n;
    if (st->free_pending)
        return GW_ECLOSED;
    if (st->reset_pending) {
        *used = (size_t)(st->reset_at - base);
        do_reset(st);
        return 1;
    }
    if (status != XML_STATUS_OK && !st->failed) {
        st->failed = true;
        st->cond = expat_condition(XML_GetErrorCode(st->p));
        st->text = XML_ErrorString(XML_GetErrorCode(st->p));
    }
    if (!st->failed && st->fed - st->mark > st->lim.max_stanza) {
        st->failed = true;
        st->cond = "policy-violation";
        st->text = "stanza too large";
        clear_tree(st); /* release the partial stanza at once */
    }
    if (st->failed) {
        if (st->h.error)
            st->h.error(st->arg, st->cond, st->text);
        return strcmp(st->cond, "policy-violation") == 0 ? GW_ELIMIT : GW_EPROTO;
    }
    return 0;
}

/* Frees the parser of a stream that sits between two stanzas with nothing buffered. */
static void release_parser(struct gw_stream *st)
{
    if (st->document || st->failed || st->in_feed || !st->p || st->depth != 1 ||
        st->mark != st->fed || !st->root_tag.len)
        return;
    XML_ParserFree(st->p);
    st->p = NULL;
}

/* Makes a parser for a released stream and replays the root tag into it. */
static int rebuild_parser(struct gw_stream *st)
{
    st->p = XML_ParserCreateNS("UTF-8", NS_SEP);
    if (!st->p)
        abort();
    setup(st);
    st->depth = 0;
    st->replaying = true;
    enum XML_Status status = XML_Parse(st->p, st->root_tag.data, (int)st->root_tag.len, XML_FALSE);
    st->replaying = false;
    if (status != XML_STATUS_OK || st->depth != 1)
        return GW_EPROTO; /* cannot happen: the tag was parsed before */
    st->skew = st->root_tag.len;
    st->fed = st->mark = 0;
    return 0;
}

int gw_stream_feed(struct gw_stream *st, const char *data, size_t len)
{
    if (st->failed)
        return GW_EPROTO;
    if (!st->p && len > 0 && rebuild_parser(st) != 0) {
        st->failed = true;
        st->cond = "internal-server-error";
        st->text = "parser rebuild failed";
        if (st->h.error)
            st->h.error(st->arg, st->cond, st->text);
        return GW_EPROTO;
    }
    st->origin_ptr = data;
    st->origin_pos = st->fed;
    while (len > 0) {
        size_t n = len < SLICE ? len : SLICE, used;
        int rc = feed_slice(st, data, n, false, &used);
        if (rc == GW_ECLOSED) {
            destroy(st);
            return GW_ECLOSED;
        }
        if (rc < 0)
            return rc;
        data += used;
        len -= used;
        if (rc == 1) { /* a new stream, whose positions start at the next byte */
            st->origin_ptr = data;
            st->origin_pos = st->fed;
        }
    }
    st->origin_ptr = NULL; /* no stanza is in a feed that ended */
    if (!st->keep_parser || st->fed > RENEW_BYTES)
        release_parser(st);
    return 0;
}

const char *gw_stream_stanza_bytes(const struct gw_stream *st, size_t *len, bool *declares_ns)
{
    if (!st->raw)
        return NULL;
    *len = st->raw_len;
    *declares_ns = st->alone_decl;
    return st->raw;
}

void gw_stream_keep_parser(struct gw_stream *st, bool keep)
{
    st->keep_parser = keep;
}

void gw_stream_release(struct gw_stream *st)
{
    release_parser(st);
}

bool gw_stream_idle(const struct gw_stream *st)
{
    return st->p == NULL;
}

void gw_stream_reset(struct gw_stream *st)
{
    if (st->in_feed) {
        if (!st->reset_pending) {
            st->reset_pending = true;
            st->reset_at = event_end(st);
            XML_StopParser(st->p, XML_FALSE);
        }
        return;
    }
    do_reset(st);
}

void gw_stream_free(struct gw_stream *st)
{
    if (!st)
        return;
    if (st->in_feed) {
        st->free_pending = true;
        XML_StopParser(st->p, XML_FALSE);
        return;
    }
    destroy(st);
}

/* Parses one document with st (in document mode, fresh or reset). */
static int parse_document(struct gw_stream *st, const char *data, size_t len, struct gw_xml **out,
                          const char **condition)
{
    int rc = 0;
    size_t used;
    while (len > 0 && rc == 0) {
        size_t n = len < SLICE ? len : SLICE;
        rc = feed_slice(st, data, n, false, &used);
        data += n;
        len -= n;
    }
    if (rc == 0)
        rc = feed_slice(st, "", 0, true, &used);
    if (rc == 0 && !st->result) {
        st->cond = "not-well-formed";
        rc = GW_EPROTO;
    }
    if (rc == 0) {
        *out = st->result;
        st->result = NULL;
    } else {
        *condition = st->cond ? st->cond : "not-well-formed";
    }
    return rc;
}

/* The whole document is bounded before parsing, so the running stanza check is off. */
static struct gw_xml_limits document_limits(const struct gw_xml_limits *limits)
{
    struct gw_xml_limits lim = *limits;
    lim.max_stanza = (size_t)-1;
    return lim;
}

int gw_xml_parse_document(const char *data, size_t len, const struct gw_xml_limits *limits,
                          struct gw_xml **out, const char **condition)
{
    *out = NULL;
    *condition = NULL;
    if (len > limits->max_stanza) {
        *condition = "policy-violation";
        return GW_ELIMIT;
    }
    struct gw_xml_limits lim = document_limits(limits);
    struct gw_stream *st = gw_stream_new(&lim, NULL, NULL);
    st->document = true;
    int rc = parse_document(st, data, len, out, condition);
    destroy(st);
    return rc;
}

#define DOC_KEEP_BYTES 16384

/* A kept document parser has two parsers. Most documents go to the wrapped one: a stream whose
 * root is a synthetic <d> (no namespace), kept across documents, so that each document is one
 * stanza inside it and costs neither a parser reset nor a new prolog (bench/callgrind: the reset
 * alone was 7k of the 66k instructions per RFC 7395 message). The wrapped parser only ever
 * accepts: a document is taken from it when it produced exactly one complete element, left the
 * parser back at the root's level and every byte consumed into whole events. Anything else (an
 * error, a second element, a truncated one, "</d>", an XML declaration inside the wrapper, a
 * trailing CR expat holds back) drops the wrapped parser and parses the document again with the
 * classic one, whose result and condition are the answer: both paths have the same rules, and
 * the classic one decides every refusal. Documents that begin with "<?" or a byte order mark,
 * and documents over DOC_KEEP_BYTES, go to the classic parser directly. The wrapped stream is
 * renewed after RENEW_BYTES like any kept stream, which bounds expat's name tables. */
struct gw_xml_doc {
    struct gw_stream *st;   /* classic: NULL until needed, and after a large document */
    struct gw_stream *wrap; /* wrapped: NULL until the first document, and after a refusal */
    struct gw_xml *got;     /* the wrapped document's element */
    unsigned ngot;          /* elements it produced */
    const char *shallow_ns; /* gw_xml_doc_shallow() */
};

static void wrap_stanza(void *arg, struct gw_xml *el)
{
    struct gw_xml_doc *doc = arg;
    if (doc->ngot++ == 0)
        doc->got = el;
    else
        gw_xml_free(el);
}

/* A document that closes the synthetic root leaves the stream at depth 0, or in error if it
 * goes on: either way the check below sends it to the classic parser. */
static const struct gw_stream_handlers wrap_handlers = {
    .stanza = wrap_stanza,
};

static bool wrapped_parse(struct gw_xml_doc *doc, const char *data, size_t len,
                          const struct gw_xml_limits *lim, struct gw_xml **out)
{
    if (len == 0 || len > DOC_KEEP_BYTES || data[0] == '\xef' ||
        (len > 1 && data[0] == '<' && data[1] == '?'))
        return false;
    if (!doc->wrap) {
        doc->wrap = gw_stream_new(lim, &wrap_handlers, doc);
        gw_stream_keep_parser(doc->wrap, true);
        if (gw_stream_feed(doc->wrap, "<d>", 3) != 0) { /* cannot happen */
            gw_stream_free(doc->wrap);
            doc->wrap = NULL;
            return false;
        }
    }
    struct gw_stream *st = doc->wrap;
    st->lim = *lim;
    /* Only a document that gw_xml_doc_embeddable() takes may come back as its root alone: one
     * that starts with its start tag (an XML declaration is not parsed here). */
    st->shallow_ns = data[0] == '<' ? doc->shallow_ns : NULL;
    doc->got = NULL;
    doc->ngot = 0;
    int rc = gw_stream_feed(st, data, len);
    if (rc == 0 && doc->ngot == 1 && st->depth == 1 && st->mark == st->fed) {
        *out = doc->got;
        doc->got = NULL;
        return true;
    }
    gw_xml_free(doc->got);
    doc->got = NULL;
    gw_stream_free(st);
    doc->wrap = NULL;
    return false;
}

struct gw_xml_doc *gw_xml_doc_new(void)
{
    return gw_calloc(1, sizeof(struct gw_xml_doc));
}

void gw_xml_doc_free(struct gw_xml_doc *doc)
{
    if (!doc)
        return;
    if (doc->st)
        destroy(doc->st);
    gw_stream_free(doc->wrap);
    free(doc);
}

void gw_xml_doc_shallow(struct gw_xml_doc *doc, const char *ns)
{
    doc->shallow_ns = ns;
}

bool gw_xml_doc_embeddable(const struct gw_xml *el, const char *data, size_t len, const char *ns)
{
    return len > 1 && data[0] == '<' && data[1] != '?' && !el->prefix && el->ns &&
           strcmp(el->ns, ns) == 0;
}

int gw_xml_doc_parse(struct gw_xml_doc *doc, const char *data, size_t len,
                     const struct gw_xml_limits *limits, struct gw_xml **out,
                     const char **condition)
{
    *out = NULL;
    *condition = NULL;
    if (len > limits->max_stanza) {
        *condition = "policy-violation";
        return GW_ELIMIT;
    }
    struct gw_xml_limits lim = document_limits(limits);
    if (wrapped_parse(doc, data, len, &lim, out))
        return 0;
    if (doc->st) {
        /* XML_ParserReset keeps expat's allocations but none of the last document's state:
         * no tree, no error, no declarations (the stream's own hash salt is set again). */
        doc->st->lim = lim;
        do_reset(doc->st);
    } else {
        doc->st = gw_stream_new(&lim, NULL, NULL);
        doc->st->document = true;
    }
    int rc = parse_document(doc->st, data, len, out, condition);
    if (rc) { /* what a failed document left: a partial tree, or a root before trailing junk */
        clear_tree(doc->st);
        gw_xml_free(doc->st->result);
        doc->st->result = NULL;
    }
    if (len > DOC_KEEP_BYTES) {
        destroy(doc->st);
        doc->st = NULL;
    }
    return rc;
}
