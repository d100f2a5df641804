/* Fuzz target for one-element documents (WebSocket frames, BOSH bodies): parse, and when it
 * parses, the serialization must read back. The same input through a document parser kept
 * from one input to the next (gw_xml_doc, as the front ends use it) must give the same result:
 * nothing of an earlier input may change how a later one parses. And a document that
 * gw_xml_doc_embeddable() lets go into a stream as it is must give, inside a c2s stream, the
 * stanza its own parse gave. A kept parser in shallow mode (gw_xml_doc_shallow, as ws_xmpp.c
 * uses it) must accept and refuse exactly the same, and give the same element, or its root
 * alone where gw_xml_doc_embeddable() holds. */
#include "xmpp/stream.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct gw_xml_doc *kept;    /* lives for the whole run, as a front end's does */
static struct gw_xml_doc *shallow; /* the same, in shallow mode */

static bool same(const struct gw_buf *a, const struct gw_buf *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

/* el's root without its children: what a shallow parse may give. */
static void serialize_root(struct gw_buf *b, const struct gw_xml *el)
{
    struct gw_xml *bare = gw_xml_copy(el);
    for (struct gw_xml *c = bare->children, *next; c; c = next) {
        next = c->next;
        gw_xml_free(c);
    }
    bare->children = bare->last_child = NULL;
    gw_buf_init(b, 0);
    gw_xml_serialize(b, bare, NULL);
    gw_xml_free(bare);
}

struct embedded {
    int stanzas;
    bool failed;
    struct gw_buf text; /* the first stanza, serialized */
};

static void on_stanza(void *arg, struct gw_xml *el)
{
    struct embedded *e = arg;
    if (e->stanzas++ == 0)
        gw_xml_serialize(&e->text, el, NULL);
    gw_xml_free(el);
}

static void on_error(void *arg, const char *condition, const char *text)
{
    (void)condition;
    (void)text;
    ((struct embedded *)arg)->failed = true;
}

/* data inside a c2s stream, as ws_xmpp.c forwards it: one stanza, equal to expected. */
static void check_embedded(const uint8_t *data, size_t size, const struct gw_buf *expected)
{
    static const char head[] = "<stream:stream xmlns='jabber:client' "
                               "xmlns:stream='http://etherx.jabber.org/streams' to='example.com'>";
    static const struct gw_stream_handlers h = {NULL, on_stanza, NULL, on_error};
    struct gw_xml_limits lim = {1 << 20, 64, 64};
    struct embedded e = {0, false, {NULL, 0, 0, 0}};
    struct gw_stream *st = gw_stream_new(&lim, &h, &e);
    gw_stream_feed(st, head, sizeof head - 1);
    if (!e.failed)
        gw_stream_feed(st, (const char *)data, size);
    gw_stream_free(st);
    if (e.failed || e.stanzas != 1 || e.text.len != expected->len ||
        memcmp(e.text.data, expected->data, expected->len) != 0)
        abort();
    gw_buf_free(&e.text);
}

static void serialize(struct gw_buf *b, const struct gw_xml *el)
{
    gw_buf_init(b, 0);
    if (el)
        gw_xml_serialize(b, el, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct gw_xml_limits lim = {65536, 32, 32};
    struct gw_xml *el = NULL, *back = NULL, *again = NULL;
    const char *cond = NULL, *cond2 = NULL;
    int rc = gw_xml_parse_document((const char *)data, size, &lim, &el, &cond);
    if (rc == 0) {
        struct gw_buf b;
        gw_buf_init(&b, 0);
        struct gw_xml_limits big = {1 << 20, 64, 64};
        if (gw_xml_serialize(&b, el, NULL) == 0 &&
            gw_xml_parse_document(b.data, b.len, &big, &back, &cond) != 0)
            abort();
        gw_buf_free(&b);
    }
    if (!kept)
        kept = gw_xml_doc_new();
    int rc2 = gw_xml_doc_parse(kept, (const char *)data, size, &lim, &again, &cond2);
    struct gw_buf x, y;
    serialize(&x, el);
    serialize(&y, again);
    if (rc == 0 && gw_xml_doc_embeddable(el, (const char *)data, size, GW_NS_CLIENT))
        check_embedded(data, size, &x);
    if (rc != rc2 || (rc && strcmp(cond, cond2) != 0) || x.len != y.len ||
        (x.len && memcmp(x.data, y.data, x.len) != 0))
        abort();
    if (!shallow) {
        shallow = gw_xml_doc_new();
        gw_xml_doc_shallow(shallow, GW_NS_CLIENT);
    }
    struct gw_xml *root = NULL;
    const char *cond3 = NULL;
    int rc3 = gw_xml_doc_parse(shallow, (const char *)data, size, &lim, &root, &cond3);
    if (rc3 != rc || (rc && strcmp(cond, cond3) != 0))
        abort();
    if (rc == 0) {
        struct gw_buf z, r;
        serialize(&z, root);
        serialize_root(&r, el);
        if (!same(&z, &x) &&
            !(gw_xml_doc_embeddable(el, (const char *)data, size, GW_NS_CLIENT) && same(&z, &r)))
            abort();
        gw_buf_free(&z);
        gw_buf_free(&r);
    }
    gw_xml_free(root);
    gw_buf_free(&x);
    gw_buf_free(&y);
    gw_xml_free(el);
    gw_xml_free(back);
    gw_xml_free(again);
    return 0;
}
