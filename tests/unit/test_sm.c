/* Tests for xmpp/sm.c: acks release in order, bounds refuse without dropping, h too high is a
 * protocol error, stale h is ignored, and counts wrap at 2^32 (XEP-0198 §4, §6). */
#include "tests/unit/check.h"
#include "gateway/err.h"
#include "xmpp/sm.h"

#include <stdio.h>
#include <string.h>

static char released[64];

static void on_release(void *arg, struct gw_sm_item *it)
{
    (void)arg;
    strncat(released, it->data, it->len);
}

int main(void)
{
    struct gw_sm_queue q;
    gw_sm_init(&q, 3, 100);
    uint32_t seq = 0;
    CHECK(gw_sm_push(&q, "a", 1, NULL, &seq) == 0 && seq == 1, "expected seq 1, got %u", seq);
    CHECK(gw_sm_push(&q, "b", 1, NULL, &seq) == 0 && seq == 2, "expected seq 2, got %u", seq);
    CHECK(gw_sm_push(&q, "c", 1, NULL, &seq) == 0 && seq == 3, "expected seq 3, got %u", seq);
    int rc = gw_sm_push(&q, "d", 1, NULL, &seq);
    CHECK(rc == GW_ELIMIT, "expected GW_ELIMIT past the count bound, got %d", rc);
    CHECK(q.count == 3 && q.sent == 3, "expected nothing recorded on refusal, got %zu/%u", q.count,
          q.sent);

    CHECK(gw_sm_outstanding(&q, 1) == 2, "expected 2 outstanding at h=1, got %ld",
          gw_sm_outstanding(&q, 1));
    rc = gw_sm_ack(&q, 2, on_release, NULL);
    CHECK(rc == 2 && strcmp(released, "ab") == 0, "expected a,b released in order, got %d '%s'", rc,
          released);
    rc = gw_sm_ack(&q, 1, on_release, NULL);
    CHECK(rc == 0 && q.acked == 2, "expected a stale h ignored, got %d acked=%u", rc, q.acked);
    rc = gw_sm_ack(&q, 5, on_release, NULL);
    CHECK(rc == GW_EPROTO, "expected GW_EPROTO for h beyond sent, got %d", rc);
    CHECK(gw_sm_outstanding(&q, 5) == -1, "expected -1 outstanding for h too high");
    rc = gw_sm_ack(&q, 3, on_release, NULL);
    CHECK(rc == 1 && strcmp(released, "abc") == 0 && q.count == 0 && q.bytes == 0,
          "expected c released and queue empty, got %d '%s'", rc, released);

    /* Byte bound. */
    gw_sm_clear(&q);
    gw_sm_init(&q, 100, 10);
    CHECK(gw_sm_push(&q, "0123456789", 10, NULL, NULL) == 0, "expected 10 bytes to fit");
    CHECK(gw_sm_push(&q, "x", 1, NULL, NULL) == GW_ELIMIT, "expected GW_ELIMIT past the bytes");

    /* Wrap-around at 2^32. */
    gw_sm_clear(&q);
    gw_sm_init(&q, 10, 100);
    q.sent = q.acked = UINT32_MAX - 1;
    released[0] = '\0';
    gw_sm_push(&q, "x", 1, NULL, &seq);
    CHECK(seq == UINT32_MAX, "expected seq 2^32-1, got %u", seq);
    gw_sm_push(&q, "y", 1, NULL, &seq);
    CHECK(seq == 0, "expected seq to wrap to 0, got %u", seq);
    gw_sm_push(&q, "z", 1, NULL, &seq);
    CHECK(seq == 1, "expected seq 1 after the wrap, got %u", seq);
    CHECK(gw_sm_outstanding(&q, 0) == 1, "expected 1 outstanding at h=0 across the wrap, got %ld",
          gw_sm_outstanding(&q, 0));
    rc = gw_sm_ack(&q, 0, on_release, NULL);
    CHECK(rc == 2 && strcmp(released, "xy") == 0, "expected x,y released across the wrap, got %d",
          rc);
    rc = gw_sm_ack(&q, 2, on_release, NULL);
    CHECK(rc == GW_EPROTO, "expected h=2 too high after the wrap, got %d", rc);
    rc = gw_sm_ack(&q, 1, on_release, NULL);
    CHECK(rc == 1 && q.count == 0, "expected z released, got %d", rc);
    gw_sm_clear(&q);

    return CHECK_DONE();
}
