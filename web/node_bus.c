/* The node bus: this node's pub/sub channel, dispatching messages by their "t". */
#include "web/node_bus.h"

#include "gateway/log.h"
#include "gateway/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TYPES 16

struct entry {
    char *type;
    gw_node_bus_fn fn;
    void *arg;
};

struct gw_node_bus {
    struct gw_core *core;
    char channel[128];
    bool subscribed;
    struct entry types[MAX_TYPES];
    size_t ntypes;
};

void gw_node_bus_channel(const char *node, char *out, size_t n)
{
    snprintf(out, n, "mxgw:node:%s", node);
}

static void on_message(void *arg, const char *channel, const char *msg, size_t len)
{
    struct gw_node_bus *bus = arg;
    (void)channel;
    struct gw_json *obj = NULL;
    char why[96];
    if (gw_json_parse(msg, len, GW_NODE_BUS_MAX, &obj, why, sizeof why) != 0) {
        GW_DEBUG("node_bus.bad_message", "bytes=%zu", len);
        return;
    }
    const char *t = gw_json_str(obj, "t");
    for (size_t i = 0; t && i < bus->ntypes; i++)
        if (strcmp(bus->types[i].type, t) == 0) {
            bus->types[i].fn(bus->types[i].arg, obj);
            break;
        }
    gw_json_free(obj);
}

struct gw_node_bus *gw_node_bus_new(struct gw_core *core)
{
    struct gw_node_bus *bus = gw_calloc(1, sizeof *bus);
    bus->core = core;
    gw_node_bus_channel(core->node_id, bus->channel, sizeof bus->channel);
    bus->subscribed = gw_store_subscribe(core->store, bus->channel, on_message, bus) == 0;
    return bus;
}

void gw_node_bus_free(struct gw_node_bus *bus)
{
    if (!bus)
        return;
    if (bus->subscribed && bus->core->store)
        gw_store_unsubscribe(bus->core->store, bus->channel);
    for (size_t i = 0; i < bus->ntypes; i++)
        free(bus->types[i].type);
    free(bus);
}

void gw_node_bus_on(struct gw_node_bus *bus, const char *type, gw_node_bus_fn fn, void *arg)
{
    for (size_t i = 0; i < bus->ntypes; i++)
        if (strcmp(bus->types[i].type, type) == 0) {
            bus->types[i].fn = fn;
            bus->types[i].arg = arg;
            return;
        }
    if (bus->ntypes >= MAX_TYPES) {
        GW_ERROR("node_bus.full", "type=%s", type);
        return;
    }
    bus->types[bus->ntypes++] = (struct entry){gw_strdup(type), fn, arg};
}

int gw_node_bus_send(struct gw_node_bus *bus, const char *node, const char *json, size_t len,
                     gw_store_cb cb, void *arg)
{
    char channel[128];
    gw_node_bus_channel(node, channel, sizeof channel);
    return gw_store_publish(bus->core->store, channel, (struct gw_store_str){json, len}, cb, arg);
}
