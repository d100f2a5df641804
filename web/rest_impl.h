/* Private to the REST API: the module, one call's state, and what its files share. */
#ifndef GW_REST_IMPL_H
#define GW_REST_IMPL_H

#include "gateway/map.h"
#include "web/rest.h"
#include "web/rest_body.h"
#include "web/rest_key.h"

#include <stdbool.h>
#include <stdint.h>

/* Route labels for metrics: a fixed set. */
enum rest_route { RR_MESSAGES, RR_STANZAS, RR_SESSIONS, RR_SESSION, RR_PUSH, RR_OTHER, RR_COUNT };

struct rest_room;

struct rest_call {
    struct gw_rest *r;
    struct rest_call *prev, *next; /* live calls */
    struct gw_http_req *req;       /* NULL once answered or gone */
    unsigned refs;                 /* the request, plus each callback still owed to us */
    char rid[65];                  /* request id (X-Request-Id) */
    uint64_t start_ns;
    enum rest_route route;
    unsigned op; /* GW_OP_* this call needs */
    char key_id[GW_KEY_ID_HEX + 1];
    char token[GW_KEY_LEN + 1]; /* wiped as soon as it is verified */
    struct gw_key_scope scope;
    char *arg;  /* the resource's path parameter (session id, account), owned */
    char *arg2; /* a query parameter (jid), owned */
    /* sending */
    struct gw_rest_stanza st;
    char *sender;  /* the from JID, owned */
    char *orig_id; /* the stanza id to report */
    bool iq_pending;
    uint64_t iq_handle;
    struct rest_call *room_next; /* waiting for a room join */
    struct rest_room *room;      /* the room waited for, or NULL */
    /* sessions lookup */
    struct gw_json_out *out;
    size_t pending;
    size_t found;
    /* a kick on another node */
    char kick_req[33];
    bool kick_waiting;
    /* forwarding a send to the node holding the component link (rest_forward.c) */
    unsigned retry_after_s; /* the answer's Retry-After, carried back to the asking node */
    uint64_t deadline_ms;   /* uv_now by which a forward or a remote call gives up; 0: none */
    char fwd_req[33];       /* asking node: the forward's id, while waiting for its answer */
    char fwd_node[64];      /* the node it went to */
    bool fwd_waiting;
    char *remote_node; /* holding node: a call for another node (owned), until answered */
    char remote_req[33];
};

struct cached_key {
    char hash[GW_KEY_HASH_HEX + 1];
    char jids[2048];
    unsigned ops;
    uint64_t verified_ms; /* uv_now */
};

struct local_rate {
    uint64_t window;
    unsigned count;
};

struct gw_rest {
    struct gw_core *core;
    struct gw_component *comp;
    struct gw_node_bus *bus;
    const struct gw_rest_push_ops *push;
    void *push_arg;
    struct rest_call *calls;
    bool stopping;
    bool holding;         /* inside gw_rest_stop */
    struct gw_map *cache; /* key id -> struct cached_key */
    struct gw_map *local; /* key id -> struct local_rate (store down) */
    struct gw_map *kicks; /* kick request id -> struct rest_call (waiting for "kicked") */
    struct gw_map *rooms; /* "occupant|room" -> struct rest_room */
    struct rest_room *room_list;
    size_t nrooms;
    uint64_t *m_requests[RR_COUNT][20];
    struct gw_histogram *m_seconds;
    uint64_t *m_sent[3]; /* messages, stanzas, iqs */
    uint64_t *m_auth_failed;
    uint64_t *m_rate_limited;
    /* forwarding (rest_forward.c) */
    struct gw_map *forwards; /* forward id -> struct rest_call waiting for its answer */
    size_t nremote;          /* calls served for other nodes, in progress */
    char *holder_key;        /* "mxgw:component:<domain>", NULL without a link */
    uv_timer_t deadlines;    /* the earliest deadline_ms of any call */
    uv_timer_t advertise;    /* refreshes the holder record while the link is up */
    bool timers_open;
    unsigned timers_closing;
    uint64_t *m_forwards[5]; /* by result: answered, no_holder, unreachable, timeout, failed */
    uint64_t *m_served;
};

/* rest.c */
/* A call for another node's request (rest_forward.c): answered through the node bus to node
 * under req. route is RR_MESSAGES or RR_STANZAS. */
struct rest_call *rest_call_new_remote(struct gw_rest *r, const char *node, const char *req,
                                       const char *rid, enum rest_route route);
/* The call still has someone to answer (an HTTP request, or a node waiting). */
bool rest_call_live(const struct rest_call *c);
/* Frees the module once it is stopping and nothing holds it any more. */
void rest_maybe_free(struct gw_rest *r);
void rest_call_ref(struct rest_call *c);
void rest_call_unref(struct rest_call *c);
/* Answers (once; later calls are ignored) with X-Request-Id, metrics and a log line. */
void rest_answer(struct rest_call *c, unsigned status, const char *ctype, const void *body,
                 size_t len);
void rest_answer_json(struct rest_call *c, unsigned status, struct gw_json_out *w);
/* A problem document; retry_after_s > 0 adds Retry-After. */
void rest_problem(struct rest_call *c, unsigned status, const char *slug, const char *detail,
                  unsigned retry_after_s);
unsigned rest_retry_after_s(const struct gw_rest *r);

/* rest_send.c */
void rest_send_message(struct rest_call *c);
void rest_send_stanza(struct rest_call *c);
/* Sends a prepared call (stanza, sender and id set) through this node's link, which is up. */
void rest_send_local(struct rest_call *c);
void rest_send_init(struct gw_rest *r);
/* Takes the module's handlers off the link (which outlives the module). */
void rest_send_detach(struct gw_rest *r);
void rest_send_stop(struct gw_rest *r);
/* A call that goes away (answered or gone) leaves any room it waits for. */
void rest_send_forget(struct rest_call *c);

/* rest_forward.c: sends from a node without the link, through the node that holds it */
void rest_forward_init(struct gw_rest *r);
/* Releases the holder record and closes the timers; the module waits for them
 * (timers_closing) before it is freed. */
void rest_forward_stop(struct gw_rest *r);
/* Forwards a prepared call to the node holding the link, and answers it with that node's
 * answer; 503 + Retry-After when no node holds it. */
void rest_forward_send(struct rest_call *c);
/* The remote call's answer goes back to its node (from rest_answer). */
void rest_forward_reply(struct rest_call *c, unsigned status, const char *ctype, const void *body,
                        size_t len);
/* A call that goes away stops waiting for a forward's answer. */
void rest_forward_forget(struct rest_call *c);
/* Makes sure the deadline timer fires by c->deadline_ms. */
void rest_forward_arm(struct gw_rest *r);

/* rest_sessions.c */
void rest_sessions_list(struct rest_call *c);
void rest_sessions_kick(struct rest_call *c);
void rest_sessions_init(struct gw_rest *r);
void rest_push(struct rest_call *c);

#endif
