/* Fuzz target for the stream parser: the input is fed in chunks whose sizes come from its own
 * first byte; every stanza it yields must serialize and parse back to an equal serialization.
 * And where gw_stream_stanza_bytes() gives the stanza's own bytes, those bytes, with the
 * root's namespace declared when the root does not declare it, must parse on their own to the
 * same stanza: that is what sending them instead of the serialization relies on. */
#include "xmpp/stream.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct gw_stream *current;

/* raw (len bytes) with xmlns='ns' after the root's name; ns escaped for an attribute value. */
static void standalone(struct gw_buf *out, const char *raw, size_t len, const struct gw_xml *el)
{
    size_t at = 1 + strlen(el->name);
    gw_buf_append(out, raw, at);
    gw_buf_puts(out, " xmlns='");
    gw_xml_escape(out, el->ns, strlen(el->ns));
    gw_buf_puts(out, "'");
    gw_buf_append(out, raw + at, len - at);
}

static void check_bytes(const struct gw_xml *el, const struct gw_buf *want)
{
    size_t len;
    bool decl;
    const char *raw = gw_stream_stanza_bytes(current, &len, &decl);
    if (!raw)
        return;
    if (len == 0 || raw[0] != '<' || el->prefix)
        abort();
    struct gw_buf doc, got;
    gw_buf_init(&doc, 0);
    gw_buf_init(&got, 0);
    if (decl || !el->ns)
        gw_buf_append(&doc, raw, len);
    else
        standalone(&doc, raw, len, el);
    struct gw_xml_limits lim = {1 << 20, 128, 128};
    struct gw_xml *alone = NULL;
    const char *cond;
    if (gw_xml_parse_document(doc.data, doc.len, &lim, &alone, &cond) != 0)
        abort(); /* the bytes do not stand alone */
    if (gw_xml_serialize(&got, alone, NULL) != 0 || got.len != want->len ||
        memcmp(got.data, want->data, got.len) != 0)
        abort(); /* they stand for another stanza */
    gw_xml_free(alone);
    gw_buf_free(&doc);
    gw_buf_free(&got);
}

static void on_stanza(void *arg, struct gw_xml *el)
{
    (void)arg;
    struct gw_buf a, b;
    gw_buf_init(&a, 0);
    gw_buf_init(&b, 0);
    if (gw_xml_serialize(&a, el, NULL) == 0) {
        struct gw_xml_limits lim = {1 << 20, 128, 128};
        struct gw_xml *back = NULL;
        const char *cond;
        if (gw_xml_parse_document(a.data, a.len, &lim, &back, &cond) != 0)
            abort(); /* we wrote something we cannot read back */
        if (gw_xml_serialize(&b, back, NULL) != 0 || a.len != b.len ||
            memcmp(a.data, b.data, a.len))
            abort();
        gw_xml_free(back);
        check_bytes(el, &a);
    }
    gw_buf_free(&a);
    gw_buf_free(&b);
    gw_xml_free(el);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct gw_stream_handlers h = {NULL, on_stanza, NULL, NULL};
    struct gw_xml_limits lim = {4096, 16, 16};
    size_t chunk = size ? (size_t)(data[0] % 64) + 1 : 1;
    struct gw_stream *st = gw_stream_new(&lim, &h, NULL);
    current = st;
    for (size_t i = 1; i < size; i += chunk) {
        size_t n = size - i < chunk ? size - i : chunk;
        if (gw_stream_feed(st, (const char *)data + i, n) != 0)
            break;
    }
    gw_stream_free(st);
    return 0;
}
