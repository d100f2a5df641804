/* The node bus: one pub/sub channel per gateway node ("mxgw:node:<node_id>") on the store, with
 * messages dispatched by type to the modules that registered for it.
 *
 * A message is one JSON object whose "t" names its type ({"t":"kick","sid":…,"from":…,"req":…});
 * every other field belongs to that type. The bus subscribes once, parses each message once with
 * the strict JSON parser (capped at GW_NODE_BUS_MAX bytes) and hands it to the handler of its
 * type; messages of unknown types are ignored, so nodes of different versions can share a store.
 * Replies travel the same way, to the asking node's channel (its id is in the request). */
#ifndef GW_NODE_BUS_H
#define GW_NODE_BUS_H

#include "gateway/core.h"
#include "gateway/store.h"
#include "xmpp/json.h"

#include <stddef.h>

/* The largest message accepted: it bounds what one message costs to parse, and must hold a
 * REST send forwarded to the node holding the component link, and its answer. */
#define GW_NODE_BUS_MAX 1048576

struct gw_node_bus;

/* A message of the registered type; obj is borrowed for the call. */
typedef void (*gw_node_bus_fn)(void *arg, const struct gw_json *obj);

/* Subscribes to this node's channel. Returns an owned bus. */
struct gw_node_bus *gw_node_bus_new(struct gw_core *core);
/* Unsubscribes and frees the bus (before the store is closed). NULL is fine. */
void gw_node_bus_free(struct gw_node_bus *bus);
/* Calls fn(arg, obj) for every message whose "t" is type (copied); one handler per type
 * (a second registration replaces the first). arg is borrowed. */
void gw_node_bus_on(struct gw_node_bus *bus, const char *type, gw_node_bus_fn fn, void *arg);
/* Writes the channel name of node into out ("mxgw:node:<node>"). */
void gw_node_bus_channel(const char *node, char *out, size_t n);
/* Publishes the JSON object text (len bytes) to node's channel. cb gets the publish's reply
 * (integer = the number of subscribers that received it: 0 means the node is not running), or
 * the store's error. Returns as gw_store_publish. */
int gw_node_bus_send(struct gw_node_bus *bus, const char *node, const char *json, size_t len,
                     gw_store_cb cb, void *arg);

#endif
