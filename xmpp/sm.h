/* Stream-management accounting (XEP-0198) for one direction of a stream: the stanzas sent and
 * not yet acknowledged, bounded in count and bytes, and the peer's acknowledged count. Counts
 * are 32-bit and wrap as the XEP says. Used on both sides of a JSON session: towards the client
 * (what mxgw sent it) and towards the upstream server (what mxgw sent there). */
#ifndef GW_SM_H
#define GW_SM_H

#include <stddef.h>
#include <stdint.h>

/* One sent stanza kept until acknowledged. */
struct gw_sm_item {
    struct gw_sm_item *next;
    uint32_t seq; /* its number: h reaches seq when the peer has handled it */
    size_t len;
    void *tag;   /* the owner's reference (e.g. a client ack to release), borrowed */
    char data[]; /* the serialized stanza */
};

struct gw_sm_queue {
    struct gw_sm_item *head, *tail;
    uint32_t sent;  /* stanzas sent (the number of the last one) */
    uint32_t acked; /* the peer's last h */
    size_t count, bytes;
    size_t max_count, max_bytes;
};

/* An empty queue with these bounds. */
void gw_sm_init(struct gw_sm_queue *q, size_t max_count, size_t max_bytes);
/* Frees every kept item. */
void gw_sm_clear(struct gw_sm_queue *q);
/* Records one sent stanza (data copied). Returns its sequence number through *seq and 0, or
 * GW_ELIMIT when keeping it would pass a bound (nothing is recorded: the caller must end the
 * session rather than drop the stanza silently). */
int gw_sm_push(struct gw_sm_queue *q, const char *data, size_t len, void *tag, uint32_t *seq);
/* The peer acknowledged h. Releases the items it covers, calling release(arg, item) for each
 * in order before freeing it (release may be NULL). Returns the number released, or GW_EPROTO
 * when h acknowledges more than was sent (XEP-0198 handled-count-too-high). An h older than
 * the last one is ignored (0). */
int gw_sm_ack(struct gw_sm_queue *q, uint32_t h, void (*release)(void *arg, struct gw_sm_item *it),
              void *arg);
/* How many sent stanzas h leaves unacknowledged, or -1 if h is ahead of what was sent. */
long gw_sm_outstanding(const struct gw_sm_queue *q, uint32_t h);

#endif
