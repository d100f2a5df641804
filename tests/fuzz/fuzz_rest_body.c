/* Fuzz target for REST request bodies (web/rest_body.c): the first byte picks the form (JSON or
 * XML) and whether only messages are accepted; the rest is the body. A body that passes must
 * give a stanza in jabber:client without "from" that serializes within the cap, and every
 * refusal must say why. The header checks run on the same bytes. */
#include "web/rest_body.h"

#include "gateway/err.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    enum gw_rest_form form = (data[0] & 1) ? GW_REST_XML : GW_REST_JSON;
    bool message_only = (data[0] & 2) != 0;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    struct gw_xml_limits lim = {8192, 16, 16};
    struct gw_rest_stanza st;
    char err[200] = "";
    int rc = gw_rest_stanza_parse(body, len, form, message_only, &lim, &st, err, sizeof err);
    if (rc) {
        if ((rc != GW_EINVAL && rc != GW_ELIMIT) || !err[0])
            abort();
    } else {
        if (!st.el || !st.el->ns || strcmp(st.el->ns, GW_NS_CLIENT) != 0 ||
            gw_xml_attr(st.el, "from") || (message_only && !gw_xml_attr(st.el, "to")))
            abort();
        struct gw_buf b;
        gw_buf_init(&b, lim.max_stanza);
        if (gw_xml_serialize(&b, st.el, GW_NS_CLIENT) != 0)
            abort();
        gw_buf_free(&b);
        gw_rest_stanza_free(&st);
    }
    /* The header checks take NUL-terminated text. */
    char *text = malloc(len + 1);
    memcpy(text, body, len);
    text[len] = '\0';
    gw_rest_accepts_json(text);
    gw_rest_media_type(text);
    gw_rest_request_id_ok(text);
    free(text);
    return 0;
}
