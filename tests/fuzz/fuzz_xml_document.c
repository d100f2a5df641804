/* Fuzz target for one-element documents (WebSocket frames, BOSH bodies): parse, and when it
 * parses, the serialization must read back. The same input through a document parser kept
 * from one input to the next (gw_xml_doc, as the front ends use it) must give the same result:
 * nothing of an earlier input may change how a later one parses. */
#include "xmpp/stream.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct gw_xml_doc *kept; /* lives for the whole run, as a front end's does */

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
    if (rc != rc2 || (rc && strcmp(cond, cond2) != 0) || x.len != y.len ||
        (x.len && memcmp(x.data, y.data, x.len) != 0))
        abort();
    gw_buf_free(&x);
    gw_buf_free(&y);
    gw_xml_free(el);
    gw_xml_free(back);
    gw_xml_free(again);
    return 0;
}
