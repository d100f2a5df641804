/* Push: wake sleeping phones for what matters, with as few pushes as possible, telling push
 * services as little as possible.
 *
 * Pushes come from two sources: stanzas for sessions mxgw holds while their client is away
 * (gw_push_stanza, called by the session that is detached), and XEP-0357 publish requests that
 * the XMPP server's push module sends to mxgw's component JID for users with no mxgw session
 * (push/appserver.c). Both end in the same per-device queue in the store: the first important
 * event for a device is sent at once, later ones within push_quiet_window merge into one push
 * carrying a count, urgent ones (calls) skip the wait. Delivery retries with backoff, honours
 * Retry-After, deletes a registration the push service says is gone, and survives restarts;
 * any node can deliver any device's pushes.
 *
 * Registrations (a device: provider, endpoint, keys, opt-ins) are kept in the store per
 * account. The JSON protocol creates them (web/json_push.c); the REST API may later. */
#ifndef GW_PUSH_H
#define GW_PUSH_H

#include "gateway/core.h"
#include "push/policy.h"
#include "xmpp/xml.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct gw_push;
struct gw_component;

#define GW_PUSH_ID_LEN 32 /* a registration id: 128 random bits in hex */

/* Builds the push module from core->cfg. comp (borrowed, may be NULL) is the component link
 * through which the module serves as XEP-0357 app server. Returns 0 and an owned module,
 * GW_ENOTFOUND when push = no (*out is NULL), or GW_ECONFIG with the reason in err (a bad
 * VAPID key, webhook URL or host list). */
int gw_push_new(struct gw_core *core, struct gw_component *comp, struct gw_push **out, char *err,
                size_t errlen);
/* Starts delivering (claims whatever is already due in the store). */
void gw_push_start(struct gw_push *p);
/* Stops: aborts requests in flight and gives their pushes back to the queue (another node, or
 * this one after a restart, sends them), waits for the store to confirm, logs the counters,
 * then calls done(arg); the module is freed after done returns. The store must stay open until
 * then. */
void gw_push_close(struct gw_push *p, void (*done)(void *arg), void *arg);

/* Source 1: an inbound stanza for account (a bare JID) whose session is detached. Classifies it
 * (push/policy.h; nick is the user's nickname in the room for groupchat, NULL if unknown) and,
 * when it is important, queues a push for each of the account's registrations that wants it,
 * merging with pushes already waiting. The stanza is borrowed for the call only; everything
 * else happens later from the loop and never delays the caller (a store or push-service outage
 * costs XMPP traffic nothing: the push is dropped with a metric). Returns 1 if the stanza was
 * important, 0 if not, GW_EINVAL for a bad account. */
int gw_push_stanza(struct gw_push *p, const char *account, const struct gw_xml *stanza,
                   const char *nick);

/* A registration request, as a client describes its device. Strings are borrowed. */
struct gw_push_spec {
    const char *provider;        /* "webhook", "webpush" or "unifiedpush" */
    const char *endpoint;        /* webpush/unifiedpush: the push endpoint URL */
    const char *p256dh;          /* webpush/unifiedpush: base64url P-256 public key (65 bytes) */
    const char *auth;            /* webpush/unifiedpush: base64url auth secret (16 bytes) */
    const char *token;           /* webhook: the device handle the app's push service understands */
    bool with_sender, with_body; /* the registration's opt-ins (the server must opt in too) */
    enum gw_push_groupchat groupchat;
    const char *const *rooms; /* rooms (bare JIDs) whose every message pushes */
    size_t nrooms;
};

/* The outcome of a registration, borrowed for the callback. err 0: stored under id, valid
 * until expires (Unix seconds); secret is the XEP-0357 publish-options secret to enable it
 * with; replaced tells whether an existing registration of the same device was renewed.
 * Otherwise err is GW_ELIMIT (push_max_per_account reached), GW_EUNAVAIL (the store is
 * unavailable) or GW_ECLOSED, and why says so. */
struct gw_push_registered {
    int err;
    const char *why;
    const char *id;
    const char *secret;
    int64_t expires;
    bool replaced;
};
typedef void (*gw_push_registered_cb)(void *arg, const struct gw_push_registered *r);

/* Registers a device for account. Checks the spec at once: an unknown or unconfigured
 * provider, an endpoint the policy refuses (push/http.h), bad keys, a bad token or room give
 * GW_EINVAL with the reason in why and no callback. Otherwise returns 0 and cb(arg, …) runs
 * later, exactly once. Registering the same device again (same endpoint, or same webhook
 * token) renews it under its old id. */
int gw_push_register(struct gw_push *p, const char *account, const struct gw_push_spec *spec,
                     gw_push_registered_cb cb, void *arg, char *why, size_t whylen);
/* Removes registration id of account (and its queued push). cb(arg, err): 0, GW_ENOTFOUND (no
 * such registration for this account), GW_EUNAVAIL. Returns 0, or GW_EINVAL for a malformed id
 * (no callback). */
int gw_push_unregister(struct gw_push *p, const char *account, const char *id,
                       void (*cb)(void *arg, int err), void *arg);

/* The VAPID public key (base64url) clients subscribe with, or NULL when none is configured. */
const char *gw_push_vapid_key(const struct gw_push *p);
/* The JID servers publish XEP-0357 notifications to (the component domain), or NULL when there
 * is no component link. */
const char *gw_push_jid(const struct gw_push *p);
/* Whether provider can be registered with this configuration. */
bool gw_push_provider_enabled(const struct gw_push *p, const char *provider);

#endif
