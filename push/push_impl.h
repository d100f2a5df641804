/* Private to push/: the module's state and the helpers its files share.
 *
 * Store layout (every key under "mxgw:push:"):
 *   reg:<id>       hash  one registration: account, provider, endpoint, p256dh, auth, token,
 *                        sender, body (the opt-ins, 0/1), groupchat, rooms, secret (SHA-256 of
 *                        the XEP-0357 publish-options secret), created, expires; TTL =
 *                        push_registration_ttl
 *   acct:<bare>    set   the registration ids of an account (same TTL, refreshed on register)
 *   q:<id>         hash  the device's waiting push: pending (events not yet sent), urgent,
 *                        sender, body (only when both opt-ins allow; never stored otherwise),
 *                        t (arrival of the last event, µs), attempts, lite (resend without
 *                        sender/body after a 413), cool (epoch ms until which the next push
 *                        waits: the quiet window after the last send)
 *   due            zset  id -> epoch ms when the device's push is due (or, while a node is
 *                        sending it, when that node's lease runs out)
 *   wake           channel  "<epoch ms>" when something was scheduled, for the other nodes
 *
 * Merging, without a lock: an event increments pending; the one that takes it from 0 to 1
 * schedules the device at max(now, cool) (urgent: now), the others only add to the count. A
 * sender claims the due entry (moving its score to a lease), reads the count and sets cool =
 * now + window in one atomic step, sends, and then subtracts what it sent: whatever arrived
 * meanwhile stays, and the entry moves to the end of the window unless an urgent event moved
 * it earlier. The count stays in the store until a delivery settles, so a node that dies
 * mid-way loses nothing: its lease runs out and the push goes out again (at least once). A
 * failure only records the attempt and reschedules.
 */
#ifndef GW_PUSH_IMPL_H
#define GW_PUSH_IMPL_H

#include "gateway/store.h"
#include "push/http.h"
#include "push/policy.h"
#include "push/push.h"

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#define PUSH_KEY_DUE  "mxgw:push:due"
#define PUSH_KEY_WAKE "mxgw:push:wake"

enum provider { PROV_WEBHOOK, PROV_WEBPUSH, PROV_UNIFIEDPUSH, PROV_UNKNOWN, PROV_N };

struct prov_metrics {
    uint64_t *sent, *merged, *failed, *retried, *dropped;
};

struct gw_push {
    struct gw_core *core;
    const struct gw_config *cfg;
    struct gw_component *comp;
    struct gw_http *http;
    struct gw_vapid *vapid;
    char *webhook_url;
    char *webhook_secret;
    struct gw_push_policy policy;
    struct prov_metrics m[PROV_N];
    struct gw_histogram *delay;
    uint64_t lease_ms;
    uint64_t queue_ttl_ms;
    uv_timer_t timer;  /* the next due time this node knows of */
    int64_t timer_due; /* epoch ms the timer is armed for; 0: not armed */
    bool started, closing, claiming, claim_again, subscribed;
    bool more_due;       /* the last claim filled every free slot: more may be due already */
    unsigned jobs;       /* store operations and deliveries in flight */
    unsigned delivering; /* claimed devices being sent (at most push_max_inflight) */
    bool http_open, timer_open;
    void (*closed)(void *arg);
    void *closed_arg;
};

/* A registration as read from its hash; strings owned. */
struct reg {
    char id[GW_PUSH_ID_LEN + 1];
    char *account;
    enum provider provider;
    char *endpoint, *p256dh, *auth, *token, *rooms;
    bool with_sender, with_body;
    enum gw_push_groupchat groupchat;
    char *secret; /* hex SHA-256, or NULL */
};

/* ---- push.c ---- */
int64_t push_now_ms(void);  /* wall clock: due times are shared across nodes and restarts */
uint64_t push_now_us(void); /* wall clock, µs */
/* "mxgw:push:<kind>:<name>", owned. */
char *push_key(const char *kind, const char *name);
const char *push_provider_name(enum provider p);
enum provider push_provider_parse(const char *s);
bool push_valid_id(const char *id);
/* Job accounting: every asynchronous step holds one; the last one out finishes a close. */
void push_job_begin(struct gw_push *p);
void push_job_end(struct gw_push *p);

/* ---- reg.c ---- */
/* Fills out from a hgetall reply of reg:<id>. Returns 0 or GW_ENOTFOUND (empty or unusable). */
int push_reg_parse(const struct gw_store_reply *r, const char *id, struct reg *out);
void push_reg_clear(struct reg *r);
/* Deletes registration id of account everywhere (reg, acct member, queue, due). */
void push_reg_delete(struct gw_push *p, const char *account, const char *id);

/* ---- reg_list.c ---- */
/* What an operator may see of a device: the endpoint's origin (scheme://host[:port]; "" for
 * none or one the policy no longer takes) and the first 16 hex digits of SHA-256 of the
 * endpoint (webpush, unifiedpush) or the token (webhook; "" without one). */
void push_reg_describe(struct gw_push *p, enum provider prov, const char *endpoint,
                       const char *token, char origin[300], char fingerprint[17]);
/* Splits a stored room list (space separated; modified in place, may be NULL) into out.
 * Returns the count. */
size_t push_split_rooms(char *rooms, const char *out[GW_PUSH_ROOMS_MAX]);

/* ---- queue.c ---- */
/* Queues ev for registration r (which wants it): merges or schedules. t_us: when the event
 * arrived (wall clock). */
void push_enqueue(struct gw_push *p, const struct reg *r, const struct gw_push_event *ev,
                  uint64_t t_us);
/* Claims and sends what is due, as far as free delivery slots allow. */
void push_drain(struct gw_push *p);
/* Makes sure the timer fires by due (epoch ms). */
void push_wake_at(struct gw_push *p, int64_t due);
void push_on_wake(void *arg, const char *channel, const char *msg, size_t len);

/* ---- send.c ---- */
/* What a delivery sends: the waiting push as taken from q:<id>. */
struct taken {
    long count;
    bool urgent, lite;
    char *sender, *body; /* NULL unless stored (both opt-ins) */
    uint64_t t_us;
    long attempts;
};
/* Builds and starts the HTTP request for r and t. Returns 0 (done runs later), or a GW_E*
 * without calling done (GW_EAGAIN: no free request slot; GW_EINVAL: the registration cannot
 * be sent to, e.g. bad stored keys). */
int push_send(struct gw_push *p, const struct reg *r, const struct taken *t,
              void (*done)(void *arg, const struct gw_http_res *res), void *arg);

/* ---- appserver.c ---- */
/* Registers the XEP-0357 app server on the component link (if any). */
void push_appserver_start(struct gw_push *p);
void push_appserver_stop(struct gw_push *p);

#endif
