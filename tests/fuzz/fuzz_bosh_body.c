/* Fuzz target for BOSH request wrappers (web/bosh_body.c): parse and validate; a wrapper that
 * passes must have its invariants (rid in 1..2^53-1, a sid that is not empty, a condition for
 * every refusal), and its rid run through a rid window must classify without harm. */
#include "web/bosh_body.h"
#include "web/bosh_window.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct gw_xml_limits lim = {65536, 33, 32};
    struct gw_bosh_body b;
    const char *cond = NULL;
    if (gw_bosh_body_parse(NULL, (const char *)data, size, &lim, &b, &cond) != 0) {
        if (!cond || (strcmp(cond, "bad-request") != 0 && strcmp(cond, "policy-violation") != 0))
            abort();
        return 0;
    }
    if (b.rid == 0 || b.rid > GW_BOSH_RID_MAX || (b.sid && !*b.sid))
        abort();
    struct gw_bosh_window w;
    int req;
    gw_bosh_window_init(&w, b.rid > 1 ? b.rid - 1 : 1, 2, 2);
    gw_bosh_window_add(&w, w.next - 1, GW_BOSH_HELD, &req, NULL);
    struct gw_bosh_slot *slot;
    enum gw_bosh_rid_class cls = gw_bosh_window_classify(&w, b.rid, &slot);
    if (cls == GW_BOSH_RID_NEXT && !gw_bosh_window_add(&w, b.rid, GW_BOSH_HELD, &req, NULL))
        abort();
    struct gw_buf out;
    gw_buf_init(&out, 0);
    gw_bosh_terminal(&out, b.terminate ? NULL : "bad-request", NULL, 0);
    gw_buf_free(&out);
    gw_bosh_window_clear(&w);
    gw_bosh_body_free(&b);
    return 0;
}
