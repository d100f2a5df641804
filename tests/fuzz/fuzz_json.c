/* Fuzz target for the JSON protocol's parser and translator: whatever parses and translates
 * must serialize to XML that reads back, and must translate back to JSON that parses. */
#include "xmpp/json.h"
#include "xmpp/stream.h"
#include "xmpp/xlate.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct gw_json *j = NULL;
    char err[160];
    if (gw_json_parse((const char *)data, size, 65536, &j, err, sizeof err) != 0)
        return 0;
    struct gw_xml *el = NULL;
    const char *cond;
    if (gw_xlate_to_xml(j, &el, &cond, err, sizeof err) == 0) {
        struct gw_buf b;
        gw_buf_init(&b, 0);
        struct gw_xml_limits lim = {1 << 20, 64, 128};
        struct gw_xml *back = NULL;
        if (gw_xml_serialize(&b, el, NULL) == 0 &&
            gw_xml_parse_document(b.data, b.len, &lim, &back, &cond) != 0)
            abort(); /* the translator produced XML that does not parse */
        if (back) {
            struct gw_json_out *w = gw_json_out_new();
            size_t n;
            gw_xlate_to_json(back, NULL, NULL, w);
            const char *text = gw_json_text(w, &n);
            struct gw_json *again = NULL;
            if (gw_json_parse(text, n, 1 << 20, &again, err, sizeof err) != 0)
                abort(); /* the translator produced JSON that does not parse */
            gw_json_free(again);
            gw_json_out_free(w);
        }
        gw_xml_free(back);
        gw_buf_free(&b);
    }
    gw_xml_free(el);
    gw_json_free(j);
    return 0;
}
