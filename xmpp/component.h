/* The component link (XEP-0114): one plain TCP stream from mxgw to the XMPP server's component
 * port, authenticated with the shared secret, through which mxgw acts as an XMPP entity of its
 * own domain (the XEP-0357 app server, the REST API's sender).
 *
 * The link connects on its own, reconnects with exponential backoff and jitter after any
 * failure, and tells watchers when it goes up or down. While it is down, sends fail at once
 * with GW_EUNAVAIL (callers decide: REST answers 503, push answers nothing because the server
 * cannot reach us either). Stanzas are plain struct gw_xml trees in the jabber:client namespace
 * both ways: the link maps jabber:component:accept on the wire. */
#ifndef GW_COMPONENT_H
#define GW_COMPONENT_H

#include "gateway/core.h"
#include "xmpp/xml.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GW_NS_COMPONENT "jabber:component:accept"

struct gw_component;

/* An inbound stanza for a handler; borrowed for the call. Returns true when the handler took
 * charge of it (for an iq get/set it must answer it, now or later, through
 * gw_component_send/gw_component_reply_error); false lets the next handler, and finally the
 * link's default (an iq gets service-unavailable, other stanzas are dropped), have it. */
typedef bool (*gw_component_handler)(void *arg, const struct gw_xml *stanza);
/* The link went up (true) or down (false). */
typedef void (*gw_component_watch_fn)(void *arg, bool up);
/* The outcome of gw_component_iq(): err 0 and the result iq, GW_EPROTO and the error iq,
 * GW_ETIMEDOUT (reply NULL), or GW_ECLOSED when the link went down first (reply NULL). The
 * reply is borrowed for the call. */
typedef void (*gw_component_iq_cb)(void *arg, int err, const struct gw_xml *reply);

/* Builds the link from core->cfg (component, component_domain, component_secret or
 * component_secret_file, component_timeout, the limit_* parser bounds). Returns 0 and an owned
 * link (not yet connected: see gw_component_start), GW_ENOTFOUND when the configuration turns
 * the link off (component = off or no component_domain; *out is NULL), or GW_ECONFIG with the
 * reason in err (no secret, an unreadable secret file). */
int gw_component_new(struct gw_core *core, struct gw_component **out, char *err, size_t errlen);
/* Starts connecting (and reconnecting for as long as the link lives). */
void gw_component_start(struct gw_component *c);
/* Ends the link: closes the stream (</stream:stream>) and the socket, fails pending iqs with
 * GW_ECLOSED, and calls done(arg) once every handle is released; the link is freed after done
 * returns. No handler or watcher is called after this. */
void gw_component_close(struct gw_component *c, void (*done)(void *arg), void *arg);

/* True while the link is authenticated and usable. */
bool gw_component_up(const struct gw_component *c);
/* The component's domain (borrowed; valid for the link's life). */
const char *gw_component_domain(const struct gw_component *c);

/* Calls fn(arg, up) on every change of state (not for the state at registration). arg is
 * borrowed; several watchers may be registered. */
void gw_component_watch(struct gw_component *c, gw_component_watch_fn fn, void *arg);
/* Removes the watcher registered with fn and arg (an owner going away before the link). */
void gw_component_unwatch(struct gw_component *c, gw_component_watch_fn fn, void *arg);
/* A hint that the link is wanted now (a standby node was asked to send and no node holds the
 * link): while waiting for the next attempt, the attempt starts at once, or 1 s after the
 * previous one began if that was sooner, instead of at the end of the backoff. Otherwise
 * (connecting, up, closing) nothing changes. */
void gw_component_retry_soon(struct gw_component *c);
/* Registers a handler for inbound stanzas named name ("message", "presence", "iq") that carry a
 * child element in namespace child_ns (NULL: any stanza of that name). For an iq only get/set
 * are offered; results and errors go to gw_component_iq() callbacks. Handlers are tried in
 * registration order. arg is borrowed. */
void gw_component_on(struct gw_component *c, const char *name, const char *child_ns,
                     gw_component_handler fn, void *arg);
/* Removes every handler registered with fn and arg (an owner going away before the link). */
void gw_component_off(struct gw_component *c, gw_component_handler fn, void *arg);
/* Adds a feature var to the link's disco#info answer (XEP-0030), and an identity
 * (category/type, e.g. "pubsub"/"push"). The link always answers disco#info and XEP-0199 ping
 * itself. Strings are copied. */
void gw_component_add_feature(struct gw_component *c, const char *var);
void gw_component_add_identity(struct gw_component *c, const char *category, const char *type,
                               const char *name);

/* Sends a stanza (borrowed). Its "to" is required; its "from" must be the component domain or
 * a JID on it (absent: the domain). Returns 0, GW_EUNAVAIL while the link is down, GW_ELIMIT
 * when the outbound queue (limit_queue_bytes) is full, or GW_EINVAL (no "to", a "from" outside
 * the domain, a tree that cannot be serialized). */
int gw_component_send(struct gw_component *c, const struct gw_xml *stanza);
/* Answers an inbound iq get/set (borrowed) with an error of this type ("cancel", "modify",
 * "wait", "auth") and RFC 6120 condition. Returns as gw_component_send. */
int gw_component_reply_error(struct gw_component *c, const struct gw_xml *iq, const char *type,
                             const char *condition);
/* Answers an inbound iq get/set with a result carrying payload (borrowed; NULL for none). */
int gw_component_reply_result(struct gw_component *c, const struct gw_xml *iq,
                              const struct gw_xml *payload);
/* Sends an iq get/set (borrowed; its id is replaced by a fresh random one) and calls cb(arg, …)
 * exactly once, later, with the answer from the iq's "to" (answers from anyone else are
 * ignored), a timeout after timeout_ms, or GW_ECLOSED. Returns 0 and, through *handle (may be
 * NULL), a ticket for gw_component_iq_cancel; or, without calling cb, the errors of
 * gw_component_send, or GW_ELIMIT when 10000 iqs are already pending. */
int gw_component_iq(struct gw_component *c, const struct gw_xml *iq, uint64_t timeout_ms,
                    gw_component_iq_cb cb, void *arg, uint64_t *handle);
/* Forgets a pending iq: its callback will not be called. Unknown tickets are ignored. */
void gw_component_iq_cancel(struct gw_component *c, uint64_t handle);

/* The handshake digest: lowercase hex of SHA-1(stream_id + secret) (XEP-0114 §3), into out
 * (size ≥ 41). Exposed for the unit test. */
void gw_component_digest(const char *stream_id, const char *secret, char out[41]);

#endif
