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

    /* Receive window: h is the longest prefix of stanzas done, whatever the order. */
    struct gw_sm_window w;
    gw_sm_window_init(&w, 4, 10);
    uint32_t n1, n2, n3, n4, n5;
    CHECK(gw_sm_window_add(&w, &n1) == 0 && n1 == 11, "expected the first number 11, got %u", n1);
    gw_sm_window_add(&w, &n2);
    gw_sm_window_add(&w, &n3);
    gw_sm_window_add(&w, &n4);
    CHECK(gw_sm_window_add(&w, &n5) == GW_ELIMIT, "expected the window full at 4 pending");
    CHECK(gw_sm_window_done(&w, n2) == 10, "expected h to wait for 11, got %u", w.h);
    CHECK(gw_sm_window_done(&w, n3) == 10, "expected h to still wait, got %u", w.h);
    CHECK(gw_sm_window_done(&w, n1) == 13, "expected h to jump to 13, got %u", w.h);
    CHECK(gw_sm_window_done(&w, n1) == 13 && gw_sm_window_done(&w, 99) == 13,
          "expected numbers outside the window ignored");
    CHECK(gw_sm_window_pending(&w) == 1, "expected 1 pending, got %u", gw_sm_window_pending(&w));
    CHECK(gw_sm_window_add(&w, &n5) == 0 && n5 == 15, "expected room again, number 15");
    CHECK(gw_sm_window_done(&w, n5) == 13 && gw_sm_window_done(&w, n4) == 15,
          "expected h 15 once 14 is done, got %u", w.h);
    gw_sm_window_free(&w);

    /* Growth keeps the flags of the live range, and numbers wrap at 2^32. */
    gw_sm_window_init(&w, 1000, UINT32_MAX - 20);
    uint32_t nums[100];
    for (int i = 0; i < 100; i++)
        gw_sm_window_add(&w, &nums[i]);
    CHECK(nums[19] == UINT32_MAX && nums[20] == 0, "expected numbers to wrap, got %u %u", nums[19],
          nums[20]);
    for (int i = 99; i >= 1; i--)
        gw_sm_window_done(&w, nums[i]);
    CHECK(w.h == UINT32_MAX - 20, "expected h held by the first stanza, got %u", w.h);
    CHECK(gw_sm_window_done(&w, nums[0]) == nums[99], "expected h at the last, got %u", w.h);
    gw_sm_window_free(&w);
    return CHECK_DONE();
}
