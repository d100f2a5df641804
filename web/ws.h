/* WebSocket server: libwebsockets on the gateway's libuv loop, with subprotocol dispatch,
 * bounded message reassembly and a bounded per-connection send queue. It knows nothing of
 * XMPP: each subprotocol is a set of handlers (RFC 7395 in ws_xmpp.c). */
#ifndef GW_WS_H
#define GW_WS_H

#include "gateway/core.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct gw_ws;
struct gw_ws_conn;

/* RFC 6455 close codes used by the front ends. */
enum {
    GW_WS_CLOSE_NORMAL = 1000,
    GW_WS_CLOSE_GOING_AWAY = 1001,
    GW_WS_CLOSE_PROTOCOL = 1002,
    GW_WS_CLOSE_UNSUPPORTED = 1003,
    GW_WS_CLOSE_INVALID_DATA = 1007,
    GW_WS_CLOSE_POLICY = 1008,
    GW_WS_CLOSE_TOO_BIG = 1009,
};

/* Handlers of one subprotocol. Each runs from the loop.
 * open: a connection was established with this subprotocol; returns the handler's state for the
 *   connection, or NULL to refuse it (the connection is then closed with 1008).
 * message: one complete text message (borrowed for the call).
 * oversized: optional; a message passed limit_stanza_bytes and was skipped without being
 *   buffered. Without it such a message closes the connection with 1009.
 * drained: the send queue fell below half of its cap after having been above it.
 * closed: the connection is gone; conn must not be used after this returns. */
struct gw_ws_proto {
    const char *name;
    void *(*open)(void *arg, struct gw_ws_conn *conn);
    void (*message)(void *state, const char *data, size_t len);
    void (*oversized)(void *state);
    void (*drained)(void *state);
    void (*closed)(void *state);
    void *arg;
};

/* Starts listening on cfg->ws_listen at cfg->ws_path with the given subprotocols (the array
 * is borrowed and must outlive the server). Returns 0 and an owned server, or GW_EIO. */
int gw_ws_start(struct gw_core *core, const struct gw_ws_proto *protos, size_t nprotos,
                struct gw_ws **out);
/* Closes every connection at once and the listener; libwebsockets finishes closing its handles
 * on the loop afterwards, so keep running the loop until it is empty, then call gw_ws_free(). */
void gw_ws_stop(struct gw_ws *ws);
/* Frees a stopped server once the loop has run dry. NULL is fine. */
void gw_ws_free(struct gw_ws *ws);

/* Queues one text message. Returns 0, GW_ELIMIT when the queue would pass
 * cfg->limit_queue_bytes (nothing is queued), or GW_ECLOSED when the connection is closing. */
int gw_ws_send(struct gw_ws_conn *c, const char *data, size_t len);
/* gw_ws_send() of one message made of n pieces, joined as they are copied. */
int gw_ws_sendv(struct gw_ws_conn *c, const struct iovec *v, size_t n);
/* Bytes queued and not yet handed to the socket. */
size_t gw_ws_queued(const struct gw_ws_conn *c);
/* Sends what is queued, then closes with code (reason is a short ASCII text, may be NULL). */
void gw_ws_close(struct gw_ws_conn *c, uint16_t code, const char *reason);
/* Stops or resumes reading from the client (backpressure). */
void gw_ws_pause(struct gw_ws_conn *c, bool paused);
/* The peer's IP address as text. */
const char *gw_ws_peer(const struct gw_ws_conn *c);

#endif
