/* Private to xmpp/component*.c: the link's state, shared by the connection side
 * (component.c) and the stanza side (component_stanza.c). */
#ifndef GW_COMPONENT_IMPL_H
#define GW_COMPONENT_IMPL_H

#include "gateway/map.h"
#include "xmpp/component.h"
#include "xmpp/stream.h"

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#define BACKOFF_MIN_MS 500
#define BACKOFF_MAX_MS 30000
#define RETRY_SOON_MS  1000 /* gw_component_retry_soon: attempts at least this far apart */
#define MAX_PENDING    10000
#define READ_CHUNK     4096

#define NS_DISCO_INFO "http://jabber.org/protocol/disco#info"
#define NS_PING       "urn:xmpp:ping"

enum state { ST_IDLE, ST_RESOLVING, ST_CONNECTING, ST_OPENING, ST_HANDSHAKE, ST_UP };

struct conn {
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_write_t wreq;
    struct gw_component *c;
    bool dead;
    bool writing;
    struct gw_buf inflight; /* the bytes of the uv_write in flight */
    char rbuf[READ_CHUNK];
};

struct handler {
    struct handler *next;
    char *name;
    char *ns;
    gw_component_handler fn;
    void *arg;
};

struct watcher {
    struct watcher *next;
    gw_component_watch_fn fn;
    void *arg;
};

struct strnode {
    struct strnode *next;
    char *a, *b, *c;
};

struct pending {
    struct pending *prev, *next;
    struct gw_component *comp;
    uint64_t handle;
    char id[33];
    char *to;
    gw_component_iq_cb cb;
    void *arg;
    uv_timer_t timer;
};

struct gw_component {
    struct gw_core *core;
    char *domain;
    char *secret;
    enum state state;
    struct conn *conn;
    uv_timer_t timer;     /* negotiation deadline, or the wait before the next attempt */
    uv_prepare_t flusher; /* writes what was queued during this iteration */
    struct gw_stream *parser;
    struct gw_buf out;
    uint64_t backoff_ms;
    uint64_t attempt_ms; /* uv_now when the last attempt began */
    unsigned attempt;    /* distinguishes the current resolve from stale ones */
    unsigned handles;    /* open handles and requests, while closing */
    bool closing;
    bool started;
    void (*closed)(void *arg);
    void *closed_arg;
    struct handler *handlers;
    struct watcher *watchers;
    struct strnode *features, *identities;
    struct gw_map *pending; /* iq id -> struct pending */
    struct pending *plist;  /* the same, for cancel by handle */
    uint64_t next_handle;
    int64_t *m_up;
    uint64_t *m_reconnects, *m_in, *m_out;
};

/* component.c */
/* Frees the link once it is closing and its last handle has closed. */
void component_maybe_finish(struct gw_component *c);
/* Writes what is queued before the loop next sleeps. */
void component_flush_soon(struct gw_component *c);
/* The bytes queued or in flight reach limit_queue_bytes. */
bool component_queue_full(const struct gw_component *c);

/* component_stanza.c */
/* An inbound stanza (jabber:client already) for the handlers, the iq waiters or the link's own
 * answers (disco#info, ping, service-unavailable). */
void component_dispatch(struct gw_component *c, struct gw_xml *el);
/* Fails every pending iq with err (their callbacks run now). */
void component_fail_pending(struct gw_component *c, int err);
/* Frees the handler, watcher, feature and identity lists. */
void component_free_lists(struct gw_component *c);

#endif
