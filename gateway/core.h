/* The one context every module receives: the loop, config, store, registry and randomness. */
#ifndef GW_CORE_H
#define GW_CORE_H

#include "gateway/config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <uv.h>

struct gw_store;
struct gw_registry;
struct gw_rand;
struct gw_metrics;
struct gw_node_bus;
struct gw_component;
struct gw_push;
struct gw_json_writers;

/* A list of writes batched for the end of a loop iteration (web/ws.c to clients,
 * xmpp/upstream.c to the server), as the core sees it: when it began, and how to write it
 * before then. */
struct gw_batch_list {
    uint64_t since; /* the read time (read_ns) that began it; 0: empty, or begun outside a read */
    /* Writes what it can of the list now, from inside a read or a send, so it calls no handler;
     * since becomes read_ns if anything stays listed, else 0. */
    void (*write_early)(struct gw_batch_list *l);
};

#define GW_BATCH_LISTS 2

struct gw_core {
    uv_loop_t *loop;
    const struct gw_config *cfg;
    struct gw_store *store;
    struct gw_registry *reg;
    struct gw_rand *rand;
    struct gw_metrics *metrics; /* every module registers its series here */
    struct gw_node_bus *bus;    /* web/node_bus.h: this node's pub/sub channel, by message type */
    void *upstream_shared;      /* xmpp/upstream.c's process-wide TLS client state */
    char node_id[64];
    bool draining;                        /* set by SIGTERM: no new sessions */
    struct gw_component *component;       /* the XEP-0114 link, NULL when off (xmpp/component.h) */
    struct gw_push *push;                 /* NULL when push is off (push/push.h) */
    struct gw_json_writers *json_writers; /* spare JSON writers (xmpp/json.h) */
    /* uv_hrtime() when the input being handled now was read (a client's WebSocket message, a
     * read from the XMPP server), 0 outside one: what is written because of it is timed from
     * here to the kernel (mxgw_forward_seconds, gateway/metrics.h) */
    uint64_t read_ns;
    struct gw_batch_list *batch_lists[GW_BATCH_LISTS]; /* borrowed: each module's, while it runs */
};

/* Writes batched for the end of a loop iteration (web/ws.c, xmpp/upstream.c) do not wait for
 * it past this long after the read that began them. */
#define GW_BATCH_WAIT_NS 500000

/* Writes list l now if it has waited GW_BATCH_WAIT_NS since the read that began it, by the
 * current read's clock (so this costs no clock call). Outside a read (read_ns 0) it never has:
 * no early write there. */
static inline void gw_core_batch_check(struct gw_core *core, struct gw_batch_list *l)
{
    if (core->read_ns && l->since && core->read_ns > l->since + GW_BATCH_WAIT_NS)
        l->write_early(l);
}

/* Lists take part in gw_core_read_begin() from add to remove (a module's start and stop). */
static inline void gw_core_batch_list_add(struct gw_core *core, struct gw_batch_list *l)
{
    for (unsigned i = 0; i < GW_BATCH_LISTS; i++)
        if (!core->batch_lists[i]) {
            core->batch_lists[i] = l;
            return;
        }
    abort(); /* GW_BATCH_LISTS counts the modules that batch: a new one must raise it */
}

static inline void gw_core_batch_list_remove(struct gw_core *core, struct gw_batch_list *l)
{
    for (unsigned i = 0; i < GW_BATCH_LISTS; i++)
        if (core->batch_lists[i] == l)
            core->batch_lists[i] = NULL;
}

/* Begins a read (a client's WebSocket message, a read from the server): what it causes is timed
 * from now (read_ns). Every list that has waited GW_BATCH_WAIT_NS is written first, whichever
 * way it goes: an iteration that goes on reading one side (a burst from the server after a
 * stall of its own, say) must not hold what earlier reads owe the other. Returns the outer
 * read's stamp, for gw_core_read_end(). */
static inline uint64_t gw_core_read_begin(struct gw_core *core)
{
    uint64_t outer = core->read_ns;
    core->read_ns = uv_hrtime();
    for (unsigned i = 0; i < GW_BATCH_LISTS; i++)
        if (core->batch_lists[i])
            gw_core_batch_check(core, core->batch_lists[i]);
    return outer;
}

static inline void gw_core_read_end(struct gw_core *core, uint64_t outer)
{
    core->read_ns = outer;
}

#endif
