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
 * account. The JSON protocol makes them (web/json_push.c) and so does the REST API for
 * backends (web/rest_push.c), which also lists and removes them. */
#ifndef GW_PUSH_H
#define GW_PUSH_H

#include "gateway/core.h"
#include "push/policy.h"
#include "xmpp/json.h"
#include "xmpp/xml.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct gw_push;
struct gw_component;

#define GW_PUSH_ID_LEN    32 /* a registration id: 128 random bits in hex */
#define GW_PUSH_ROOMS_MAX 32 /* rooms a registration may list */

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
    /* Renewing an existing registration keeps the XEP-0357 publish-options secret it was
     * enabled with, instead of making a new one: for callers that cannot send the enable
     * again (the REST API), so the user's server keeps being accepted. */
    bool keep_secret;
};

/* Reads a registration request from a JSON object (borrowed; so is every string the spec
 * then points to): provider, endpoint, keys {p256dh, auth}, token, sender, body (booleans),
 * groupchat (none, mentions, all), rooms (at most GW_PUSH_ROOMS_MAX strings, into rooms). Keys
 * outside those and extra (nextra names the caller's own, e.g. "op", "id") are refused, as
 * are wrong types. Returns 0 or GW_EINVAL with the reason in why. The values themselves are
 * checked by gw_push_register. */
int gw_push_spec_from_json(const struct gw_json *obj, const char *const *extra, size_t nextra,
                           struct gw_push_spec *spec, const char *rooms[GW_PUSH_ROOMS_MAX],
                           char *why, size_t whylen);

/* One registration as an operator may see it: never the XEP-0357 secret, the webhook token,
 * the endpoint's path (a capability: whoever has it can push to the device) or the keys.
 * fingerprint is the first 16 hex digits of SHA-256 of the endpoint URL (webpush,
 * unifiedpush) or of the token (webhook; "" without a token), so that a backend that knows a
 * device's endpoint or token can recognise it. Strings borrowed for the callback. */
struct gw_push_reg_view {
    const char *id;
    const char *provider;
    const char *origin; /* scheme://host[:port] of the endpoint; NULL for webhook */
    const char *fingerprint;
    bool with_sender, with_body;
    enum gw_push_groupchat groupchat;
    const char *const *rooms;
    size_t nrooms;
    int64_t created, expires; /* Unix seconds: made or last renewed; expiry */
};
/* The outcome of a registration, borrowed for the callback. err 0: stored under id, valid
 * until expires (Unix seconds); secret is the XEP-0357 publish-options secret to enable it
 * with (NULL when keep_secret kept the old one); replaced tells whether an existing
 * registration of the same device was renewed; view is the registration as gw_push_list shows
 * it. Otherwise err is GW_ELIMIT (push_max_per_account reached), GW_EUNAVAIL (the store is
 * unavailable) or GW_ECLOSED, and why says so. */
struct gw_push_registered {
    int err;
    const char *why;
    const char *id;
    const char *secret;
    int64_t expires;
    bool replaced;
    const struct gw_push_reg_view *view;
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

/* Removes every registration of account (and their queued pushes). cb(arg, err, removed):
 * err 0 or GW_EUNAVAIL. Returns 0, or (no callback) GW_EINVAL for a bad account, GW_ECLOSED
 * while closing. */
int gw_push_unregister_all(struct gw_push *p, const char *account,
                           void (*cb)(void *arg, int err, size_t removed), void *arg);

/* err 0 and the account's live registrations (n may be 0), or GW_EUNAVAIL (regs NULL). */
typedef void (*gw_push_list_cb)(void *arg, int err, const struct gw_push_reg_view *regs, size_t n);
/* Lists the registrations of account; cb(arg, …) runs later, exactly once. Registrations that
 * expired are dropped from the account's index on the way. Returns 0, or (no callback)
 * GW_EINVAL for a bad account, GW_ECLOSED while closing. */
int gw_push_list(struct gw_push *p, const char *account, gw_push_list_cb cb, void *arg);

/* The VAPID public key (base64url) clients subscribe with, or NULL when none is configured. */
const char *gw_push_vapid_key(const struct gw_push *p);
/* The JID servers publish XEP-0357 notifications to (the component domain), or NULL when there
 * is no component link. */
const char *gw_push_jid(const struct gw_push *p);
/* Whether provider can be registered with this configuration. */
bool gw_push_provider_enabled(const struct gw_push *p, const char *provider);

#endif
