/* The operations surface on the HTTP listener: /healthz (the process is alive), /readyz (it
 * should get traffic: the store reachable, the upstream server reachable, not draining) and
 * /metrics (Prometheus text format, version 0.0.4, from core->metrics), plus the series that
 * belong to no single module: sessions by transport and state, event-loop lag, and the login
 * and resume counters the JSON sessions increment. */
#ifndef GW_OPS_H
#define GW_OPS_H

#include "gateway/core.h"
#include "web/http.h"
#include "xmpp/component.h"

struct gw_ops;

/* Registers the routes and series and starts the loop-lag timer and the upstream probe.
 * comp may be NULL (no component link: reported as "off"). Returns 0 and an owned module. */
int gw_ops_start(struct gw_core *core, struct gw_http *http, struct gw_component *comp,
                 struct gw_ops **out);
/* Stops the timers and the probe; the module is freed once their handles have closed. Call
 * before the component link is closed (it forgets comp). */
void gw_ops_stop(struct gw_ops *ops);

#endif
