/* The one context every module receives: the loop, config, store, registry and randomness. */
#ifndef GW_CORE_H
#define GW_CORE_H

#include "gateway/config.h"

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

struct gw_store;
struct gw_registry;
struct gw_rand;
struct gw_metrics;
struct gw_node_bus;

/* Where an important stanza (xmpp/csi.h: a message with a body, a call, an invite, …) is
 * reported when it reaches a JSON session whose client is away (detached) or inactive. The push
 * module sets `important`; while it is NULL nothing is called. session_id is the JSON session,
 * stanza the serialized XML; all borrowed for the call, which must not block. */
struct gw_push_hook {
    void (*important)(void *arg, const char *session_id, const char *bare_jid, const char *stanza,
                      size_t len, bool detached);
    void *arg;
};

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
    bool draining; /* set by SIGTERM: no new sessions */
    struct gw_push_hook push;
};

#endif
