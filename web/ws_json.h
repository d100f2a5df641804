/* The mobile JSON protocol over WebSocket (docs/json-protocol.md): mxgw logs the user in
 * upstream and translates stanzas to and from compact JSON. */
#ifndef GW_WS_JSON_H
#define GW_WS_JSON_H

#include "gateway/core.h"
#include "web/ws.h"

#define GW_JSON_SUBPROTOCOL "mxgw.json.v1"

/* Fills proto with the JSON subprotocol's handlers; core is borrowed for the server's life. */
void gw_ws_json_proto(struct gw_core *core, struct gw_ws_proto *proto);

#endif
