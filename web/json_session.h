/* The JSON front end's session machinery, private to web/: the connection (ws_json.c), the
 * session that outlives it (json_session.c), and resumption with handover between nodes
 * (json_resume.c). See docs/json-protocol.md for what the client sees. */
#ifndef GW_JSON_SESSION_H
#define GW_JSON_SESSION_H

#include "gateway/core.h"
#include "gateway/session.h"
#include "web/json_store.h"
#include "xmpp/json.h"

#include <stdbool.h>
#include <stdint.h>

struct gw_jconn;
struct gw_jsess;
struct gw_jresume;
struct gw_map;

/* The module: one per process. */
struct gw_jmod {
    struct gw_core *core;
    struct gw_map *sessions;    /* sid -> struct gw_jsess: every JSON session this node owns */
    struct gw_jresume *waiting; /* resumes waiting for another node's handover reply */
    /* sessions owing the server an answer to its <r/>, oldest first, and the one timer that
     * answers them once they have waited GW_JS_UP_ACK_DELAY_MS (json_session.c) */
    struct gw_jsess *owed_head, *owed_tail;
    uv_timer_t owed_timer;
    uint64_t *m_resumed, *m_fresh, *m_resume_failed;
    uint64_t *m_handover_given, *m_handover_taken, *m_overflow, *m_rate_paused;
};

/* ---- the connection (web/ws_json.c) ---- */

/* Why a connection stops reading its client (several may hold at once). */
enum {
    GW_JPAUSE_RATE = 1,     /* over its rate limit */
    GW_JPAUSE_UPSTREAM = 2, /* the server is behind with acks or reading */
    GW_JPAUSE_RESUME = 4,   /* a resume is in progress */
};

/* Queues one JSON object for the client; takes w. Returns 0, GW_ELIMIT (queue full) or
 * GW_ECLOSED. */
int gw_jconn_send(struct gw_jconn *c, struct gw_json_out *w);
size_t gw_jconn_queued(const struct gw_jconn *c);
/* Ends the connection: {"op":"error","cond":…,"text":…,"fatal":true} (plus "resumable" when
 * resumable ≥ 0), or {"op":"bye"} when cond is NULL, then the close frame. The connection
 * forgets its session. */
void gw_jconn_close(struct gw_jconn *c, const char *cond, const char *text, uint16_t code,
                    int resumable);
void gw_jconn_pause(struct gw_jconn *c, unsigned reason, bool on);
/* The session the connection talks to (NULL: none). */
void gw_jconn_set_session(struct gw_jconn *c, struct gw_jsess *s);
/* The resume is now the session's to finish (it calls gw_jconn_resume_done later). */
void gw_jconn_resume_handed(struct gw_jconn *c);
/* A resume this connection asked for ended: ok, or failed with a non-fatal error already sent. */
void gw_jconn_resume_done(struct gw_jconn *c, bool ok);
/* Gives the connection the registry entry of the session that just ended or left (borrowed
 * no more by the session): it goes when the connection has closed, so that a draining gateway
 * waits for the last message and the close frame to go out. keep_record: release it (the store
 * record stays for another node) rather than close it. */
void gw_jconn_hold_session(struct gw_jconn *c, struct gw_session *gs, bool keep_record);
/* Takes the connection's pre-auth session (NULL if already taken): the caller closes it or
 * makes it the session's. */
struct gw_session *gw_jconn_take_pre(struct gw_jconn *c);
/* Sends a non-fatal {"op":"error"}. */
void gw_jconn_error(struct gw_jconn *c, const char *cond, const char *text, const char *id);
const char *gw_jconn_peer(const struct gw_jconn *c);
/* The connection's JID alias table (NULL: aliases off, or no connection). Borrowed. */
struct gw_alias *gw_jconn_aliases(const struct gw_jconn *c);

/* ---- the session (web/json_session.c) ---- */

/* Sets up the module (registers its handover messages on core->bus). Returns an owned module. */
struct gw_jmod *gw_jmod_new(struct gw_core *core);
void gw_jmod_free(struct gw_jmod *m);

/* Logs jid in for conn, whose pre-auth session becomes the new session's. The answer
 * ({"op":"session"} or a fatal error) goes to conn. */
void gw_jsess_login(struct gw_jmod *m, struct gw_jconn *conn, const char *jid, const char *password,
                    const char *resource);
/* Client ops on a session that conn is attached to. */
void gw_jsess_stanza(struct gw_jsess *s, const struct gw_json *obj);
void gw_jsess_ack(struct gw_jsess *s, const struct gw_json *obj);
/* An op whose name starts with "push." (web/json_push.h), for the logged-in account. */
void gw_jsess_push_op(struct gw_jsess *s, const char *op, const struct gw_json *obj);
void gw_jsess_request_ack(struct gw_jsess *s);
void gw_jsess_logout(struct gw_jsess *s);
void gw_jsess_set_inactive(struct gw_jsess *s, bool inactive);
/* Any message from the client after a resume: it has the new token, the old one goes. */
void gw_jsess_client_seen(struct gw_jsess *s);
/* The connection's send queue went below half its cap: the server may be read again. */
void gw_jsess_drained(struct gw_jsess *s);
/* The client's socket is gone (not a logout): detach, or end a session that cannot wait. */
void gw_jsess_conn_lost(struct gw_jsess *s);
/* True while the session takes client ops (logged in, not handing over). */
bool gw_jsess_ready(const struct gw_jsess *s);

/* What a resume brings to the session: the client's count and the token it used. */
struct gw_jresume_args {
    uint32_t h;
    char *secret; /* the re-login secret as text (xmpp/sasl.h), owned, wiped by the session */
    size_t secret_len;
    char *verifier; /* the verifier and sealed secret of the token used: they stay valid until */
    char *blob;     /* the client uses the new token (owned) */
};
void gw_jresume_args_free(struct gw_jresume_args *a);

struct gw_jsess *gw_jsess_find(struct gw_jmod *m, const char *sid);
/* Resume here of a session this node holds: false while it is busy (logging in, attaching,
 * handing over). */
bool gw_jsess_can_attach(const struct gw_jsess *s);
/* The highest count a client may claim on this session. */
uint32_t gw_jsess_cl_out(const struct gw_jsess *s);
uint32_t gw_jsess_cl_acked(const struct gw_jsess *s);
/* Attaches conn to a session held here; its previous connection, if any, gets "conflict".
 * Takes args. The answer ({"op":"resumed"} or an error) goes to conn. */
void gw_jsess_reattach(struct gw_jsess *s, struct gw_jconn *conn, struct gw_jresume_args *args);
/* Carries on here a session this node has just taken over in the store (rec): resumes the
 * upstream stream from the secret in args, then attaches conn. Takes args. */
void gw_jsess_adopt(struct gw_jmod *m, struct gw_jconn *conn, const char *sid,
                    const struct gw_jstore_rec *rec, struct gw_jresume_args *args);
/* Gives the session up for another node (handover) or a restart (shutdown): its client is told
 * (conflict, or system-shutdown with resumable), everything unsafe goes to the store queue,
 * the record is released (owner ""), and the upstream socket closes without ending the stream
 * so that the server keeps it for XEP-0198 resumption. done(arg, ok) runs once the store holds
 * it all (ok) or the session had to end instead (not ok); the session is gone afterwards. */
enum gw_jrelease { GW_JRELEASE_HANDOVER, GW_JRELEASE_SHUTDOWN };
void gw_jsess_release(struct gw_jsess *s, enum gw_jrelease why, void (*done)(void *arg, bool ok),
                      void *arg);

/* ---- resume and handover (web/json_resume.c) ---- */

/* Handles {"op":"resume","token":…,"h":…} on conn. The connection is paused until
 * gw_jconn_resume_done(). Returns the running resume (for gw_jresume_conn_gone). */
struct gw_jresume *gw_jresume_start(struct gw_jmod *m, struct gw_jconn *conn, const char *token,
                                    uint32_t h);
/* conn went away while its resume was running. */
void gw_jresume_conn_gone(struct gw_jresume *r);
/* Messages on this node's channel (web/node_bus.h): another node asks for a session we own,
 * or answers our request. arg is the module. */
void gw_jresume_on_handover(void *arg, const struct gw_json *obj);
void gw_jresume_on_released(void *arg, const struct gw_json *obj);
/* Fails every resume still waiting (the module is going). */
void gw_jresume_abort_all(struct gw_jmod *m);

#endif
