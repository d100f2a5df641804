/* RFC 7395 front end: XMPP over WebSocket, relayed to an upstream c2s stream per session. */
#ifndef GW_WS_XMPP_H
#define GW_WS_XMPP_H

#include "gateway/core.h"
#include "web/ws.h"

/* Fills proto with the "xmpp" subprotocol handlers; core is borrowed for the server's life. */
void gw_ws_xmpp_proto(struct gw_core *core, struct gw_ws_proto *proto);

#endif
