/* The REST API for backend services, under /api/v1/ on the HTTP listener (docs/openapi.yaml):
 * send messages and stanzas through the component link as JIDs an API key is scoped to, look
 * up and end users' sessions on any node, and manage push registrations; Bearer API keys kept
 * hashed in the store, per-key rate limits counted in the store, RFC 9457 problem documents. */
#ifndef GW_REST_H
#define GW_REST_H

#include "gateway/core.h"
#include "web/http.h"
#include "web/node_bus.h"
#include "xmpp/component.h"
#include "xmpp/json.h"

struct gw_rest;

/* Push registrations of one account, as the push module keeps them (web/rest_push.c): REST
 * calls these when they are set (gw_rest_set_push), and answers 501 otherwise. account is a
 * bare JID. Each call answers exactly once, later or now, through done(ctx, status, body):
 * status 200 or 201 with a JSON body (list: {"registrations":[…]}), 204 without, or
 * 400/404/409/503 with a short detail text in body. body is borrowed for the call. */
typedef void (*gw_rest_push_done)(void *ctx, unsigned status, const char *body, size_t len);
struct gw_rest_push_ops {
    void (*list)(void *arg, const char *account, gw_rest_push_done done, void *ctx);
    /* reg is the request's JSON object (one registration as the JSON protocol's
     * push.register op takes it) */
    void (*put)(void *arg, const char *account, const struct gw_json *reg, gw_rest_push_done done,
                void *ctx);
    /* id NULL: every registration of the account */
    void (*del)(void *arg, const char *account, const char *id, gw_rest_push_done done, void *ctx);
};

/* Registers the /api/v1 route on http. comp (the component link; NULL when not configured:
 * sends answer 503) and bus are borrowed. Returns 0 and an owned module, or the route error. */
int gw_rest_start(struct gw_core *core, struct gw_http *http, struct gw_component *comp,
                  struct gw_node_bus *bus, struct gw_rest **out);
/* Lets the push module serve /api/v1/users/{jid}/push. ops borrowed (static), arg borrowed. */
void gw_rest_set_push(struct gw_rest *r, const struct gw_rest_push_ops *ops, void *arg);
/* Answers every call in progress with 503 (calls served for other nodes too, over the store),
 * withdraws this node's claim to the component link, takes its handlers off the link, and
 * releases the module once the store and the component have called back for the last of
 * them. Call after the node bus is freed, before the component link is closed and before the
 * HTTP server stops. */
void gw_rest_stop(struct gw_rest *r);

/* `mxgw key create|list|revoke -c FILE …`: manages API keys in the configured store (Redis:
 * the in-process store lives in the gateway's own process, so keys for it cannot be made from
 * outside). argv[0] is "key". Returns the process exit status. */
int gw_rest_key_command(int argc, char **argv);

#endif
