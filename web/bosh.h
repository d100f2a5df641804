/* BOSH connection manager (XEP-0124, XEP-0206) at cfg->bosh_path on the HTTP front end. Each
 * BOSH session is a gateway session with its own upstream c2s stream; the client's SASL and
 * stream restarts are relayed as in RFC 7395 (web/ws_xmpp.c). Session state (the rid window,
 * held requests, responses kept for replay) lives in this process: a load balancer must send
 * every request of a session ('sid') to the same node. */
#ifndef GW_BOSH_H
#define GW_BOSH_H

#include "gateway/core.h"
#include "web/http.h"

struct gw_bosh;

/* Checks the BOSH configuration, registers the route on http (borrowed; it must outlive the
 * connection manager) and the metrics. Returns 0 and an owned connection manager, or
 * GW_ECONFIG with a log line saying why. */
int gw_bosh_start(struct gw_core *core, struct gw_http *http, struct gw_bosh **out);
/* Ends every session at once (held requests get system-shutdown) and frees the connection
 * manager once its handles are closed. Call before gw_http_stop(). NULL is fine. */
void gw_bosh_stop(struct gw_bosh *b);
/* BOSH sessions open (ended sessions still waiting to tell their client count too). */
size_t gw_bosh_sessions(const struct gw_bosh *b);

#endif
