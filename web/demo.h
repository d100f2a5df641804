/* The demo chat page at "/" and its assets under "/demo/": a small page that logs in over
 * BOSH (or WebSocket) with Strophe.js. The page, its script and the library are compiled into
 * the binary (bundled from npm at build time, see web/demo/), so no file or CDN is needed. */
#ifndef GW_DEMO_H
#define GW_DEMO_H

#include "gateway/core.h"
#include "web/http.h"

/* Registers the routes on http (borrowed). Returns 0 or a negative GW_E*. */
int gw_demo_start(struct gw_core *core, struct gw_http *http);

#endif
