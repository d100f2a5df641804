/* XEP-0198 send-side accounting with 32-bit wrap-around: "h is ahead of sent" is judged on the
 * unsigned difference, so the comparison stays right across 2^32. */
#include "xmpp/sm.h"

#include "gateway/err.h"
#include "gateway/mem.h"

#include <stdlib.h>
#include <string.h>

void gw_sm_init(struct gw_sm_queue *q, size_t max_count, size_t max_bytes)
{
    memset(q, 0, sizeof *q);
    q->max_count = max_count;
    q->max_bytes = max_bytes;
}

void gw_sm_clear(struct gw_sm_queue *q)
{
    while (q->head) {
        struct gw_sm_item *it = q->head;
        q->head = it->next;
        free(it);
    }
    q->tail = NULL;
    q->count = q->bytes = 0;
}

int gw_sm_push(struct gw_sm_queue *q, const char *data, size_t len, void *tag, uint32_t *seq)
{
    if (q->count + 1 > q->max_count || q->bytes + len > q->max_bytes)
        return GW_ELIMIT;
    struct gw_sm_item *it = gw_malloc(sizeof *it + len);
    it->next = NULL;
    it->seq = ++q->sent;
    it->len = len;
    it->tag = tag;
    memcpy(it->data, data, len);
    if (q->tail)
        q->tail->next = it;
    else
        q->head = it;
    q->tail = it;
    q->count++;
    q->bytes += len;
    if (seq)
        *seq = it->seq;
    return 0;
}

long gw_sm_outstanding(const struct gw_sm_queue *q, uint32_t h)
{
    uint32_t ahead = h - q->acked;         /* how far h moves past the last ack */
    uint32_t unacked = q->sent - q->acked; /* what could be acknowledged at most */
    if (ahead > unacked)
        return ahead > UINT32_MAX / 2 ? (long)unacked : -1; /* behind: stale; else too high */
    return (long)(unacked - ahead);
}

int gw_sm_ack(struct gw_sm_queue *q, uint32_t h, void (*release)(void *arg, struct gw_sm_item *it),
              void *arg)
{
    uint32_t ahead = h - q->acked, unacked = q->sent - q->acked;
    if (ahead > unacked) {
        if (ahead > UINT32_MAX / 2)
            return 0; /* an old h, overtaken by a newer ack */
        return GW_EPROTO;
    }
    int n = 0;
    for (uint32_t i = 0; i < ahead && q->head; i++) {
        struct gw_sm_item *it = q->head;
        q->head = it->next;
        if (!q->head)
            q->tail = NULL;
        q->count--;
        q->bytes -= it->len;
        if (release)
            release(arg, it);
        free(it);
        n++;
    }
    q->acked = h;
    return n;
}
