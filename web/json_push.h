/* The JSON protocol's push ops (docs/json-protocol.md, "Push"): push.info, push.register and
 * push.unregister for the logged-in account. Registering also enables XEP-0357 on the user's
 * server account, on the session's own upstream stream, so the server pushes through mxgw
 * when the user has no session at all; unregistering disables it.
 *
 * The JSON session keeps one state pointer (NULL until the first push op) and calls these
 * three functions; nothing else of it is needed here. */
#ifndef GW_JSON_PUSH_H
#define GW_JSON_PUSH_H

#include "gateway/core.h"
#include "xmpp/json.h"
#include "xmpp/xml.h"

#include <stdbool.h>

struct gw_json_push;

/* What an op needs of the session, fixed when the state is created (the first op) and used
 * until gw_json_push_end(). to_client sends one JSON object to the client if it is there
 * (takes w). to_server sends a stanza of mxgw's own on the user's stream, counted by the
 * session like its client's stanzas in its XEP-0198 accounting (returns 0 or a GW_E*).
 * account: the bare JID logged in, NULL before login (borrowed for the call). */
struct gw_json_push_io {
    struct gw_core *core;
    void (*to_client)(void *ctx, struct gw_json_out *w);
    int (*to_server)(void *ctx, const struct gw_xml *el);
    void *ctx;
    const char *account;
};

/* Handles one op whose name starts with "push." (obj borrowed for the call). Answers go to
 * the client as JSON; *state is created on first use. */
void gw_json_push_op(struct gw_json_push **state, const struct gw_json_push_io *io, const char *op,
                     const struct gw_json *obj);
/* Offers an upstream stanza: returns true (and frees el) if it answered one of our XEP-0357
 * enable/disable requests. NULL state: false. The session must count a consumed stanza as
 * handled in its own XEP-0198 accounting towards the server. */
bool gw_json_push_upstream(struct gw_json_push *state, struct gw_xml *el);
/* The connection is gone: nothing more is sent; the state frees itself once its pending
 * store operations have finished. NULL is fine. */
void gw_json_push_end(struct gw_json_push *state);

#endif
