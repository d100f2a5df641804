/* RFC 7395 front end: XMPP over WebSocket, relayed to an upstream c2s stream per session. */
#ifndef GW_WS_XMPP_H
#define GW_WS_XMPP_H

#include "gateway/core.h"
#include "web/ws.h"

/* Fills proto with the "xmpp" subprotocol handlers; core is borrowed for the server's life.
 * proto->arg is owned state, freed by gw_ws_xmpp_proto_free() once the server is freed. */
void gw_ws_xmpp_proto(struct gw_core *core, struct gw_ws_proto *proto);
void gw_ws_xmpp_proto_free(struct gw_ws_proto *proto);

#endif
