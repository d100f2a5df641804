/* The rid window of one BOSH session: slots kept sorted by rid in a small fixed array (a session
 * has at most a few dozen), so every operation is a short scan with no allocation but the
 * response copies. */
#include "web/bosh_window.h"

#include "gateway/mem.h"

#include <stdlib.h>
#include <string.h>

void gw_bosh_window_init(struct gw_bosh_window *w, uint64_t first, unsigned size, unsigned keep)
{
    memset(w, 0, sizeof *w);
    w->next = first + 1;
    w->size = size ? size : 1;
    w->keep = keep;
}

static void drop(struct gw_bosh_window *w, unsigned i)
{
    free(w->slots[i].response);
    memmove(&w->slots[i], &w->slots[i + 1], (w->n - i - 1) * sizeof w->slots[0]);
    w->n--;
}

void gw_bosh_window_clear(struct gw_bosh_window *w)
{
    while (w->n)
        drop(w, w->n - 1);
}

static struct gw_bosh_slot *find(struct gw_bosh_window *w, uint64_t rid)
{
    for (unsigned i = 0; i < w->n; i++)
        if (w->slots[i].rid == rid)
            return &w->slots[i];
    return NULL;
}

enum gw_bosh_rid_class gw_bosh_window_classify(struct gw_bosh_window *w, uint64_t rid,
                                               struct gw_bosh_slot **slot)
{
    struct gw_bosh_slot *s = find(w, rid);
    *slot = NULL;
    if (rid >= w->next) {
        if (rid - w->next >= w->size)
            return GW_BOSH_RID_OUTSIDE;
        if (s) {
            *slot = s;
            return GW_BOSH_RID_PENDING;
        }
        return rid == w->next ? GW_BOSH_RID_NEXT : GW_BOSH_RID_AHEAD;
    }
    if (!s)
        return GW_BOSH_RID_OUTSIDE; /* the same answer as above the window: no oracle */
    *slot = s;
    return s->state == GW_BOSH_ANSWERED ? GW_BOSH_RID_REPLAY : GW_BOSH_RID_PENDING;
}

struct gw_bosh_slot *gw_bosh_window_add(struct gw_bosh_window *w, uint64_t rid,
                                        enum gw_bosh_slot_state state, void *req, void *data)
{
    if (w->n >= GW_BOSH_SLOTS_MAX || find(w, rid))
        return NULL;
    unsigned i = w->n;
    while (i > 0 && w->slots[i - 1].rid > rid)
        i--;
    memmove(&w->slots[i + 1], &w->slots[i], (w->n - i) * sizeof w->slots[0]);
    w->n++;
    struct gw_bosh_slot *s = &w->slots[i];
    memset(s, 0, sizeof *s);
    s->rid = rid;
    s->state = state;
    s->req = req;
    s->data = data;
    if (state == GW_BOSH_HELD && rid == w->next)
        w->next++;
    return s;
}

struct gw_bosh_slot *gw_bosh_window_take_next(struct gw_bosh_window *w)
{
    struct gw_bosh_slot *s = find(w, w->next);
    if (!s || s->state != GW_BOSH_AHEAD)
        return NULL;
    s->state = GW_BOSH_HELD;
    w->next++;
    return s;
}

struct gw_bosh_slot *gw_bosh_window_oldest_held(struct gw_bosh_window *w)
{
    for (unsigned i = 0; i < w->n; i++)
        if (w->slots[i].state == GW_BOSH_HELD)
            return &w->slots[i];
    return NULL;
}

struct gw_bosh_slot *gw_bosh_window_find_req(struct gw_bosh_window *w, const void *req)
{
    for (unsigned i = 0; i < w->n; i++)
        if (w->slots[i].state != GW_BOSH_ANSWERED && w->slots[i].req == req)
            return &w->slots[i];
    return NULL;
}

unsigned gw_bosh_window_count(const struct gw_bosh_window *w, enum gw_bosh_slot_state state)
{
    unsigned n = 0;
    for (unsigned i = 0; i < w->n; i++)
        n += w->slots[i].state == state;
    return n;
}

void gw_bosh_window_answered(struct gw_bosh_window *w, struct gw_bosh_slot *slot,
                             const char *response, size_t len, bool keep, uint64_t now_ms)
{
    if (!keep || w->keep == 0) {
        drop(w, (unsigned)(slot - w->slots));
        return;
    }
    slot->state = GW_BOSH_ANSWERED;
    slot->req = NULL;
    slot->data = NULL;
    slot->response = gw_malloc(len ? len : 1);
    memcpy(slot->response, response, len);
    slot->len = len;
    slot->answered_ms = now_ms;
    while (gw_bosh_window_count(w, GW_BOSH_ANSWERED) > w->keep)
        for (unsigned i = 0; i < w->n; i++)
            if (w->slots[i].state == GW_BOSH_ANSWERED) {
                drop(w, i);
                break;
            }
}

void gw_bosh_window_remove(struct gw_bosh_window *w, struct gw_bosh_slot *slot)
{
    drop(w, (unsigned)(slot - w->slots));
}

void gw_bosh_window_ack(struct gw_bosh_window *w, uint64_t ack)
{
    for (unsigned i = 0; i < w->n;)
        if (w->slots[i].state == GW_BOSH_ANSWERED && w->slots[i].rid <= ack)
            drop(w, i);
        else
            i++;
}

bool gw_bosh_window_report(const struct gw_bosh_window *w, uint64_t ack, uint64_t now_ms,
                           uint64_t min_age_ms, uint64_t *rid, uint64_t *age_ms)
{
    for (unsigned i = 0; i < w->n; i++) {
        const struct gw_bosh_slot *s = &w->slots[i];
        if (s->rid != ack + 1)
            continue;
        if (s->state != GW_BOSH_ANSWERED || now_ms - s->answered_ms < min_age_ms)
            return false;
        *rid = s->rid;
        *age_ms = now_ms - s->answered_ms;
        return true;
    }
    return false;
}
