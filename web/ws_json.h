/* The mobile JSON protocol over WebSocket (docs/json-protocol.md): mxgw logs the user in
 * upstream, translates stanzas to and from compact JSON, and keeps the session across dropped
 * connections and nodes. */
#ifndef GW_WS_JSON_H
#define GW_WS_JSON_H

#include "gateway/core.h"
#include "web/ws.h"

#define GW_JSON_SUBPROTOCOL "mxgw.json.v1"

/* Fills proto with the JSON subprotocol's handlers and sets up the JSON sessions' module
 * (it subscribes to this node's channel in core->store); core is borrowed for the server's
 * life. */
void gw_ws_json_proto(struct gw_core *core, struct gw_ws_proto *proto);
/* Frees what gw_ws_json_proto() set up, once the loop has stopped. */
void gw_ws_json_proto_free(struct gw_ws_proto *proto);

#endif
