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

/* The receive side of a stream whose stanzas are made safe out of order (delivered and acked,
 * written to a durable queue, superseded, …): stanzas are numbered as they arrive, marked done
 * in any order, and h is the longest prefix of them all done, which is the only count that
 * may be acknowledged to the sender. A ring of flags over (h, last], bounded by max. */
struct gw_sm_window {
    uint32_t h;          /* every stanza numbered ≤ h is done */
    uint32_t last;       /* the number given to the last stanza added */
    unsigned char *done; /* done[n % cap] for n in (h, last] */
    size_t cap, max;
};

/* An empty window whose count starts at h. */
void gw_sm_window_init(struct gw_sm_window *w, size_t max, uint32_t h);
void gw_sm_window_free(struct gw_sm_window *w);
/* Numbers a new stanza, not yet done. Returns 0 and its number in *n, or GW_ELIMIT when max
 * stanzas are already between h and last (nothing is added). */
int gw_sm_window_add(struct gw_sm_window *w, uint32_t *n);
/* Marks stanza n done and returns the new h; an n outside (h, last] is ignored. */
uint32_t gw_sm_window_done(struct gw_sm_window *w, uint32_t n);
/* Stanzas added and not yet covered by h. */
uint32_t gw_sm_window_pending(const struct gw_sm_window *w);

#endif
