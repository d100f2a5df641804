/* Fuzz target for what a resume reads: the client's token, and the session store's secret
 * text, ack pairs and queue items. Whatever decodes must encode back to the same value. */
#include "gateway/token.h"
#include "web/json_store.h"
#include "xmpp/sasl.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';

    char sid[GW_TOKEN_SID_MAX + 1];
    unsigned char secret[GW_TOKEN_SECRET_BYTES];
    if (gw_token_parse(text, sid, sizeof sid, secret) == 0 &&
        (strlen(sid) == 0 || strlen(sid) > GW_TOKEN_SID_MAX))
        abort();

    struct gw_sasl_secret s, back;
    if (gw_sasl_secret_decode(text, size, &s) == 0) {
        char *again = gw_sasl_secret_encode(&s);
        if (gw_sasl_secret_decode(again, strlen(again), &back) != 0 ||
            memcmp(&s, &back, sizeof s) != 0)
            abort(); /* a decoded secret must survive its own encoding */
        free(again);
    }

    struct gw_jstore_pair pairs[GW_JSTORE_MAX_PAIRS];
    size_t n;
    if (gw_jstore_pairs_decode(text, pairs, GW_JSTORE_MAX_PAIRS, &n) == 0 &&
        n > GW_JSTORE_MAX_PAIRS)
        abort();
    struct gw_jstore_rec rec = {0};
    rec.up_fifo = text;
    (void)gw_jstore_client_h(&rec, (uint32_t)size);

    uint32_t seq;
    const char *xml;
    size_t xml_len;
    if (gw_jstore_item_parse(text, size, &seq, &xml, &xml_len) == 0 &&
        (xml < text || xml + xml_len != text + size))
        abort();
    free(text);
    return 0;
}
