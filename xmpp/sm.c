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

/* ---- receive window ---- */

void gw_sm_window_init(struct gw_sm_window *w, size_t max, uint32_t h)
{
    memset(w, 0, sizeof *w);
    w->h = w->last = h;
    w->max = max;
}

void gw_sm_window_free(struct gw_sm_window *w)
{
    free(w->done);
    w->done = NULL;
    w->cap = 0;
}

uint32_t gw_sm_window_pending(const struct gw_sm_window *w)
{
    return w->last - w->h;
}

int gw_sm_window_add(struct gw_sm_window *w, uint32_t *n)
{
    size_t pending = w->last - w->h;
    if (pending >= w->max)
        return GW_ELIMIT;
    if (pending + 1 > w->cap) {
        /* Grow and lay the live range out again: positions are numbers modulo cap. */
        size_t cap = w->cap ? w->cap * 2 : 16;
        if (cap > w->max)
            cap = w->max;
        unsigned char *done = gw_calloc(cap, 1);
        for (uint32_t k = w->h + 1; k != w->last + 1; k++)
            done[k % cap] = w->done[k % w->cap];
        free(w->done);
        w->done = done;
        w->cap = cap;
    }
    *n = ++w->last;
    w->done[*n % w->cap] = 0;
    return 0;
}

uint32_t gw_sm_window_done(struct gw_sm_window *w, uint32_t n)
{
    uint32_t ahead = n - w->h;
    if (ahead == 0 || ahead > w->last - w->h)
        return w->h;
    w->done[n % w->cap] = 1;
    while (w->h != w->last && w->done[(w->h + 1) % w->cap]) {
        w->h++;
        w->done[w->h % w->cap] = 0;
    }
    return w->h;
}
