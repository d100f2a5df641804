/* The rid window of one BOSH session (XEP-0124 §14): which request ids are accepted, which
 * request is next in order, which requests wait for an earlier one, and the responses kept for
 * replay. It does no I/O and knows nothing of HTTP: the session feeds it requests and answers,
 * so the rules are unit-tested on their own, and a multi-node design can later move this state
 * (with the response copies) to the shared store.
 *
 * Every request received and not yet answered, and every answer kept for replay, is a slot,
 * ordered by rid. `next` is the rid expected next: every lower rid has been processed.
 *   AHEAD     received above `next` (out of order); processed once the gap is filled
 *   HELD      processed, not answered yet (the connection manager holds it)
 *   ANSWERED  answered; the response is kept so that a repeated request can be replayed */
#ifndef GW_BOSH_WINDOW_H
#define GW_BOSH_WINDOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GW_BOSH_SLOTS_MAX 48 /* requests (≤16) waiting or held + answers kept (≤16) + slack */

enum gw_bosh_slot_state { GW_BOSH_AHEAD, GW_BOSH_HELD, GW_BOSH_ANSWERED };

/* What a rid is to the window. */
enum gw_bosh_rid_class {
    GW_BOSH_RID_NEXT,    /* the next rid: process it now */
    GW_BOSH_RID_AHEAD,   /* above the next rid, within the window: wait for the gap */
    GW_BOSH_RID_REPLAY,  /* answered and still kept: replay the kept response */
    GW_BOSH_RID_PENDING, /* received, not answered yet: the client sent it again */
    GW_BOSH_RID_OUTSIDE, /* above the window, or below what is kept: item-not-found */
};

struct gw_bosh_slot {
    uint64_t rid;
    enum gw_bosh_slot_state state;
    void *req;      /* AHEAD/HELD: the owner's pending request (borrowed) */
    void *data;     /* AHEAD: the owner's parsed request, processed later (borrowed) */
    bool quiet;     /* HELD: answer without payloads and keep no copy (a pause request) */
    char *response; /* ANSWERED: owned copy */
    size_t len;
    uint64_t answered_ms;
};

struct gw_bosh_window {
    uint64_t next;
    unsigned size; /* how many rids from next on are accepted: the 'requests' attribute */
    unsigned keep; /* answers kept for replay */
    struct gw_bosh_slot slots[GW_BOSH_SLOTS_MAX];
    unsigned n;
};

/* A window whose first request (the session creation request, rid first) is processed:
 * next = first + 1. The caller adds that request's HELD slot. size ≤ 16, keep ≤ 16. */
void gw_bosh_window_init(struct gw_bosh_window *w, uint64_t first, unsigned size, unsigned keep);
/* Frees the kept responses. */
void gw_bosh_window_clear(struct gw_bosh_window *w);
/* Classifies rid; *slot is set to the existing slot for REPLAY and PENDING, else NULL. */
enum gw_bosh_rid_class gw_bosh_window_classify(struct gw_bosh_window *w, uint64_t rid,
                                               struct gw_bosh_slot **slot);
/* Adds a slot for rid in state (AHEAD or HELD); a HELD slot at next advances next. Returns the
 * slot (valid until the window changes), or NULL if there is no room. */
struct gw_bosh_slot *gw_bosh_window_add(struct gw_bosh_window *w, uint64_t rid,
                                        enum gw_bosh_slot_state state, void *req, void *data);
/* The AHEAD slot at next, made HELD (next advances), or NULL: call in a loop after a NEXT
 * request was processed, to process the ones that waited for it in order. */
struct gw_bosh_slot *gw_bosh_window_take_next(struct gw_bosh_window *w);
/* The HELD slot with the lowest rid, or NULL. */
struct gw_bosh_slot *gw_bosh_window_oldest_held(struct gw_bosh_window *w);
/* The slot whose req is req, or NULL. */
struct gw_bosh_slot *gw_bosh_window_find_req(struct gw_bosh_window *w, const void *req);
unsigned gw_bosh_window_count(const struct gw_bosh_window *w, enum gw_bosh_slot_state state);
/* Marks a HELD slot answered: with keep, a copy of response is kept for replay (dropping the
 * oldest kept answers past the window's keep); otherwise the slot goes. */
void gw_bosh_window_answered(struct gw_bosh_window *w, struct gw_bosh_slot *slot,
                             const char *response, size_t len, bool keep, uint64_t now_ms);
/* Removes a slot (an AHEAD request answered with a recoverable error). */
void gw_bosh_window_remove(struct gw_bosh_window *w, struct gw_bosh_slot *slot);
/* The client acknowledged every response up to ack: drops the kept copies up to it. */
void gw_bosh_window_ack(struct gw_bosh_window *w, uint64_t ack);
/* XEP-0124 §9.2: the client's ack says it lacks the response to ack + 1. If that response was
 * sent at least min_age_ms ago, returns true with its rid and age (for 'report' and 'time'). */
bool gw_bosh_window_report(const struct gw_bosh_window *w, uint64_t ack, uint64_t now_ms,
                           uint64_t min_age_ms, uint64_t *rid, uint64_t *age_ms);

#endif
