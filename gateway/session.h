/* Sessions: one client transport bound to one upstream stream, held in a registry that enforces
 * per-IP and total limits and mirrors each session to the store. */
#ifndef GW_SESSION_H
#define GW_SESSION_H

#include "gateway/core.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum gw_transport { GW_TRANSPORT_WS_XMPP, GW_TRANSPORT_WS_JSON, GW_TRANSPORT_BOSH };
#define GW_TRANSPORT_COUNT     3
#define GW_SESSION_STATE_COUNT 5
enum gw_session_state {
    GW_SESSION_CONNECTING,
    GW_SESSION_AUTHENTICATING,
    GW_SESSION_BOUND,
    GW_SESSION_DETACHED,
    GW_SESSION_CLOSED,
};

/* Why the registry asks an owner to end its session. */
enum gw_close_reason {
    GW_CLOSE_SHUTDOWN, /* SIGTERM: system-shutdown */
    GW_CLOSE_KICKED,   /* ended by an operator or another node */
    GW_CLOSE_PREAUTH,  /* pre-auth timeout */
};

/* Implemented by the front end that owns the session. */
struct gw_session_ops {
    /* Ask the owner to end the session gracefully; it later calls gw_session_close(). */
    void (*shutdown)(void *owner, enum gw_close_reason why);
};

struct gw_session;
struct gw_registry;

/* Returns an owned registry. */
struct gw_registry *gw_registry_new(struct gw_core *core);
/* Frees the registry; every session must already be closed. */
void gw_registry_free(struct gw_registry *reg);
size_t gw_registry_count(const struct gw_registry *reg);
/* Asks every session's owner to shut down. */
void gw_registry_shutdown_all(struct gw_registry *reg, enum gw_close_reason why);
/* Calls fn(arg) each time the last session closes (used to finish a graceful shutdown). */
void gw_registry_on_empty(struct gw_registry *reg, void (*fn)(void *arg), void *arg);
/* Borrowed session with this id, or NULL. */
struct gw_session *gw_registry_find(struct gw_registry *reg, const char *id);
/* Live sessions of this transport in this state (kept as counts: O(1), for metrics). */
size_t gw_registry_count_by(const struct gw_registry *reg, enum gw_transport t,
                            enum gw_session_state st);
/* Asks this session's owner to end it (as gw_registry_shutdown_all does for every session); the
 * owner later calls gw_session_close(). */
void gw_session_shutdown(struct gw_session *s, enum gw_close_reason why);

/* Opens a session for a client at ip. Returns 0 and a session owned by the registry (freed by
 * gw_session_close), GW_ELIMIT when the per-IP or total limit is reached, or GW_EUNAVAIL while
 * draining. owner is borrowed. Starts the pre-auth timer. */
int gw_session_open(struct gw_core *core, enum gw_transport transport, const char *ip,
                    const struct gw_session_ops *ops, void *owner, struct gw_session **out);
/* Like gw_session_open, but with a given id (a session moving here from another node or coming
 * back after a restart). Returns GW_EEXIST when a live session here has that id, GW_EINVAL for
 * an unusable id, or what gw_session_open returns. */
int gw_session_open_as(struct gw_core *core, enum gw_transport transport, const char *ip,
                       const char *id, const struct gw_session_ops *ops, void *owner,
                       struct gw_session **out);
/* Moves the session to another owner (borrowed), e.g. from a connection to the session object
 * that outlives it. */
void gw_session_set_owner(struct gw_session *s, const struct gw_session_ops *ops, void *owner);
/* Ends the session: stops its timers, removes it from the registry and the store. */
void gw_session_close(struct gw_session *s);
/* Takes the session out of this process but leaves its store record (and JID index) for the
 * node that will carry it on; only this node's index entry is removed. Frees like close. */
void gw_session_release(struct gw_session *s);
void gw_session_set_state(struct gw_session *s, enum gw_session_state state);
/* Records the bound JID (copied) and stops the pre-auth timer. */
void gw_session_set_jid(struct gw_session *s, const char *jid);
/* Notes client activity (for "last activity"; the store record is refreshed lazily). */
void gw_session_touch(struct gw_session *s);
/* Why a login failed (the label of mxgw_login_failures_total). */
enum gw_login_failure {
    GW_LOGIN_CREDENTIALS, /* the server refused the credentials */
    GW_LOGIN_MECHANISM,   /* no acceptable SASL mechanism, or the server failed to prove itself */
    GW_LOGIN_SERVER,      /* anything else the server or the link did */
    GW_LOGIN_FAILURE_COUNT,
};
/* Counts a login on this session's transport: ok, or failed for why (ignored when ok). */
void gw_session_count_login(struct gw_session *s, bool ok, enum gw_login_failure why);
const char *gw_session_id(const struct gw_session *s);
const char *gw_session_jid(const struct gw_session *s);
enum gw_session_state gw_session_state(const struct gw_session *s);
const char *gw_transport_name(enum gw_transport t);
const char *gw_session_state_name(enum gw_session_state st);

#endif
