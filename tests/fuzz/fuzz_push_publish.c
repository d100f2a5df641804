/* Fuzz target for the push policy's parsers: the input is parsed as one element, then read as
 * an XEP-0357 publish request and classified as an inbound stanza. Neither may crash, leak, or
 * return a body longer than its cap or a kind without a reason. */
#include "push/policy.h"
#include "xmpp/stream.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct gw_xml_limits lim = {65536, 32, 32};
    struct gw_xml *el = NULL;
    const char *cond;
    if (gw_xml_parse_document((const char *)data, size, &lim, &el, &cond) != 0)
        return 0;
    struct gw_push_publish pub;
    const char *why = NULL;
    int rc = gw_push_parse_publish(el, 64, &pub, &why);
    if ((rc != 0 && !why) || (rc == 0 && !pub.node) || (pub.body && strlen(pub.body) > 64))
        abort();
    gw_push_publish_clear(&pub);
    struct gw_push_policy p = {true, true, true, true, true, true, 64};
    struct gw_push_event ev;
    gw_push_classify(&p, "romeo@montague.example", size % 2 ? "romeo" : NULL, el, &ev);
    if ((ev.body && strlen(ev.body) > 64) || (ev.kind == GW_PUSH_NONE && (ev.body || ev.sender)))
        abort();
    gw_push_event_clear(&ev);
    gw_xml_free(el);
    return 0;
}
