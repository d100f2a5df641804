/* The upstream c2s stream of one session: non-blocking TCP to the XMPP server, STARTTLS with
 * mbedTLS (certificate and hostname verified unless configured otherwise), and the stream
 * parser. STARTTLS is done by mxgw itself and is invisible to the client: the handlers see the
 * stream header and features of the stream after TLS, with <starttls/> removed. */
#ifndef GW_UPSTREAM_H
#define GW_UPSTREAM_H

#include "gateway/core.h"
#include "gateway/session.h"
#include "xmpp/xml.h"

#include <stdbool.h>
#include <sys/uio.h>
#include <stddef.h>

struct gw_upstream;

/* All handlers run from the loop. After closed() no handler is called again; the owner then
 * calls gw_upstream_free() (which may be done from inside closed()). */
struct gw_upstream_handlers {
    /* The server's stream header (after STARTTLS when used); borrowed for the call. */
    void (*open)(void *arg, const struct gw_xml *header);
    /* A top-level element other than a stream error (stanzas, features, SASL, SM nonzas);
     * the handler takes ownership. */
    void (*stanza)(void *arg, struct gw_xml *el);
    /* The stream ended. err 0: the server closed the stream cleanly. Otherwise err is a
     * GW_E* and condition an RFC 6120 stream-error condition to give the client:
     * the server's own <stream:error> condition (error_el is that element, borrowed, so
     * it can be relayed whole), or "remote-connection-failed" (connect, TLS or certificate
     * failure, STARTTLS missing in "required" mode), "connection-timeout", or
     * "undefined-condition" (the server sent bad XML or broke the protocol). */
    void (*closed)(void *arg, int err, const char *condition, const struct gw_xml *error_el);
    /* Optional: the outbound queue fell below half of limit_queue_bytes after having been
     * above it (the owner may resume reading its client). */
    void (*drained)(void *arg);
};

/* Sets up what all upstream streams share (the TLS client configuration and CA chain, loaded
 * once). Returns 0, or GW_ECONFIG with the reason in err. */
int gw_upstream_global_init(struct gw_core *core, char *err, size_t errlen);
void gw_upstream_global_free(struct gw_core *core);

/* Returns an owned upstream; nothing is connected yet. handlers is copied, arg borrowed. */
struct gw_upstream *gw_upstream_new(struct gw_core *core, const struct gw_upstream_handlers *h,
                                    void *arg);
/* Opens (or restarts, after SASL success) the stream to domain: connects if not connected,
 * then sends a stream header with to=domain, version 1.0, and xml:lang if lang is non-NULL.
 * Returns 0 or a negative GW_E* (the connection failure itself is reported through closed()). */
int gw_upstream_open(struct gw_upstream *up, const char *domain, const char *lang);
/* Connects to host:port instead of the configured upstream (a BOSH 'route' that the
 * configuration allows). Only before the first gw_upstream_open(); host is copied. */
void gw_upstream_set_target(struct gw_upstream *up, const char *host, uint16_t port);
/* Labels this stream's metrics (mxgw_upstream_stanzas_total, mxgw_upstream_bytes_total) with
 * the transport of the session it serves; unlabelled streams count as transport="unknown". */
void gw_upstream_set_transport(struct gw_upstream *up, enum gw_transport t);
/* True once the stream runs over TLS. */
bool gw_upstream_secure(const struct gw_upstream *up);
/* Queues an element for the server, serialized in the jabber:client default namespace.
 * Returns 0, GW_ELIMIT when the outbound queue would pass limit_queue_bytes, GW_EINVAL if the
 * element cannot be serialized, or GW_ECLOSED. */
int gw_upstream_send(struct gw_upstream *up, const struct gw_xml *el);
/* Queues text, the bytes of a document that parsed as el, as they are, instead of serializing
 * el. The caller vouches that the bytes mean el inside the stream too: one element and
 * whitespace, no XML declaration, and the default namespace declared on the element itself or
 * left to the stream's jabber:client (as gw_upstream_send() writes it).
 * Returns what gw_upstream_send() does. */
/* el may be NULL for text that holds no stanza (stream management's <r/> and <a/>): the
 * stanza count leaves it out. */
int gw_upstream_send_text(struct gw_upstream *up, const struct gw_xml *el, const char *text,
                          size_t len);
/* From inside the stanza handler, for the element it was given (unchanged): the stanza as the
 * server wrote it, in at most three pieces that joined make a document meaning el on its own
 * (xmlns='jabber:client' after the root's name, unless the root declares it). Returns how many
 * pieces, or 0 when el is not unprefixed in jabber:client or its bytes cannot stand alone
 * (gw_stream_stanza_bytes()). The pieces are borrowed for the call. */
size_t gw_upstream_stanza_doc(const struct gw_upstream *up, const struct gw_xml *el,
                              struct iovec v[3]);
/* Bytes queued and not yet written to the socket (plain text, before TLS). */
size_t gw_upstream_queued(const struct gw_upstream *up);
/* Stops or resumes reading from the server (backpressure when the client is slow). */
void gw_upstream_pause(struct gw_upstream *up, bool paused);
/* Ends the stream: sends </stream:stream>, flushes, and closes the socket once the server
 * closes its side or after a short grace period. No handler is called any more, and the object
 * releases itself when done: the caller must not use up afterwards. */
void gw_upstream_close(struct gw_upstream *up);
/* Closes the socket at once (if still open) and frees the object at a safe point. Safe from
 * inside any handler. */
void gw_upstream_free(struct gw_upstream *up);

#endif
