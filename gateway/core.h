/* The one context every module receives: the loop, config, store, registry and randomness. */
#ifndef GW_CORE_H
#define GW_CORE_H

#include "gateway/config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct gw_store;
struct gw_registry;
struct gw_rand;
struct gw_metrics;
struct gw_node_bus;
struct gw_component;
struct gw_push;
struct gw_json_writers;

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
};

/* Writes batched for the end of a loop iteration (web/ws.c, xmpp/upstream.c) do not wait for
 * it past this long after the read that began them. */
#define GW_BATCH_WAIT_NS 500000

/* Whether a batch list begun by the read at since (0: empty) has waited GW_BATCH_WAIT_NS by the
 * current read's clock. Outside a read (read_ns 0) it never has: no early write there. */
static inline bool gw_core_batch_overdue(const struct gw_core *core, uint64_t since)
{
    return core->read_ns && since && core->read_ns > since + GW_BATCH_WAIT_NS;
}

#endif
