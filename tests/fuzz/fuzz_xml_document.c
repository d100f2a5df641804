/* Fuzz target for one-element documents (WebSocket frames, BOSH bodies): parse, and when it
 * parses, the serialization must read back. */
#include "xmpp/stream.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct gw_xml_limits lim = {65536, 32, 32};
    struct gw_xml *el = NULL, *back = NULL;
    const char *cond;
    if (gw_xml_parse_document((const char *)data, size, &lim, &el, &cond) == 0) {
        struct gw_buf b;
        gw_buf_init(&b, 0);
        struct gw_xml_limits big = {1 << 20, 64, 64};
        if (gw_xml_serialize(&b, el, NULL) == 0 &&
            gw_xml_parse_document(b.data, b.len, &big, &back, &cond) != 0)
            abort();
        gw_buf_free(&b);
    }
    gw_xml_free(el);
    gw_xml_free(back);
    return 0;
}
