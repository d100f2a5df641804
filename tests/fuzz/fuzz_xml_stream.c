/* Fuzz target for the stream parser: the input is fed in chunks whose sizes come from its own
 * first byte; every stanza it yields must serialize and parse back to an equal serialization. */
#include "xmpp/stream.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
    for (size_t i = 1; i < size; i += chunk) {
        size_t n = size - i < chunk ? size - i : chunk;
        if (gw_stream_feed(st, (const char *)data + i, n) != 0)
            break;
    }
    gw_stream_free(st);
    return 0;
}
