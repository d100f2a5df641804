/* Internals shared by bosh.c (the endpoint, session creation, the upstream side) and
 * bosh_session.c (requests within a session: order, holding, answering, ending). Not a module
 * interface: nothing outside web/bosh*.c includes it. */
#ifndef GW_BOSH_IMPL_H
#define GW_BOSH_IMPL_H

#include "gateway/core.h"
#include "gateway/map.h"
#include "gateway/session.h"
#include "web/bosh_body.h"
#include "web/bosh_window.h"
#include "web/http.h"
#include "xmpp/upstream.h"

#include <stdbool.h>
#include <stdint.h>

#define BOSH_SID_BYTES   16    /* 128 bits from the CSPRNG */
#define BOSH_KEEP_ACKED  8     /* answers kept for replay when the client acknowledges */
#define BOSH_MAX_REPEATS 8     /* repeated requests in a row before policy-violation */
#define BOSH_LINGER_MS   10000 /* how long an ended session waits to tell its next request */
#define BOSH_SHUTDOWN_MS 2000  /* on SIGTERM, how long to wait for a request to tell */

struct gw_bosh;

/* One serialized payload waiting for a response. */
struct bosh_item {
    struct bosh_item *next;
    size_t len;
    char data[];
};

/* A parked client element that arrived before the upstream stream could take it. */
struct bosh_parked {
    struct bosh_parked *next;
    struct gw_xml *el;
};

struct bsess {
    struct gw_bosh *b;
    struct gw_session *sess; /* NULL once closed */
    struct gw_upstream *up;  /* NULL once the upstream stream is over */
    char sid[2 * BOSH_SID_BYTES + 1];
    char *domain, *lang, *content_type;
    /* what was agreed at creation */
    bool legacy; /* the client sent no 'ver': errors also carry the old HTTP statuses */
    bool xbosh;  /* XEP-0206: the client sent xmpp:version */
    char ver[16];
    unsigned wait_s, hold, requests, inactivity_s, polling_s, maxpause_s;
    bool acks; /* the client acknowledges responses */
    uint64_t creation_rid;
    bool created;  /* the creation response went out */
    char key[129]; /* the next key must hash to this (XEP-0124 §15); empty: no keys */
    struct gw_bosh_window win;
    /* towards the client */
    struct bosh_item *qhead, *qtail;
    size_t qbytes;
    bool up_paused;
    char *from, *authid; /* from the upstream's stream header */
    bool told_from;
    uint64_t report_rid, report_age; /* a 'report' owed in the next response */
    /* towards the server */
    bool up_ready; /* the upstream stream (after TLS) is open */
    struct bosh_parked *parked, *parked_tail;
    /* rules */
    uint64_t last_new_ms;   /* arrival of the last new (not repeated) request */
    bool last_empty_answer; /* the last answer carried no payload */
    unsigned repeats;       /* repeated requests since the last new one */
    uint64_t pause_ms;      /* a granted pause (inactivity for this gap), 0 if none */
    /* the end */
    bool ended;
    char *terminal; /* the terminal wrapper every later request gets */
    size_t terminal_len;
    const char *terminal_condition;
    bool keep_session; /* SIGTERM: the registry entry stays until the client was told */
    bool lingering;    /* ended, waiting for a request to give the terminal wrapper to */
    uv_timer_t timer;  /* inactivity, then linger once ended */
    unsigned busy;     /* inside a handler: the free waits */
    bool freeing;
    /* the pump queue: sessions with something to answer */
    struct bsess *dirty_next;
    bool dirty;
};

struct gw_bosh {
    struct gw_core *core;
    struct gw_http *http;
    struct gw_map *sessions; /* sid -> struct bsess */
    size_t count;
    uv_check_t check; /* answers batched at the end of each loop iteration */
    struct bsess *dirty;
    struct gw_xml_doc *doc; /* parses every request body, kept from one to the next */
    bool stopping;
    char path[128];
    /* metrics */
    uint64_t *opened, *closed;
    uint64_t *res_payload, *res_empty, *res_replayed, *res_recoverable, *res_terminal,
        *res_http_error;
};

/* ---- bosh_session.c ---- */

/* Handles a request of an existing session (body owned: taken over). */
void bosh_session_request(struct bsess *s, struct gw_http_req *req, struct gw_bosh_body *body);
/* Answers what can be answered now: held requests past 'hold', queued payloads. */
void bosh_pump(struct bsess *s);
/* Schedules bosh_pump() at the end of this loop iteration (batches what arrives meanwhile). */
void bosh_mark_dirty(struct bsess *s);
/* Ends the session with a terminal condition (NULL: a normal end), after the queued payloads and
 * extra (a serialized element such as the upstream's <stream:error/>, may be NULL). */
void bosh_end(struct bsess *s, const char *condition, const char *extra, size_t extra_len);
/* Defers req as part of session s (wait seconds at most). */
void bosh_defer(struct bsess *s, struct gw_http_req *req);
/* Frees the session once nothing refers to it. */
void bosh_session_release(struct bsess *s);
/* The HTTP status and Content-Type for an answer of this session. */
unsigned bosh_status(const struct bsess *s, const char *condition);
const char *bosh_content_type(const struct bsess *s);
uint64_t bosh_now_ms(const struct gw_bosh *b);
/* Counts a terminal condition (fixed set) in the metrics. */
void bosh_count_terminal(struct gw_bosh *b, const char *condition);
/* Registers every terminal condition's counter (at 0) so the series exist from the start. */
void bosh_register_terminal(struct gw_bosh *b);

/* ---- bosh.c ---- */

/* Sends one client element upstream (or parks it until the stream is open). Returns 0, or the
 * terminal condition to end the session with. */
const char *bosh_forward(struct bsess *s, struct gw_xml *el);
/* Restarts the upstream stream (XEP-0206 §5). Returns 0 or a terminal condition. */
const char *bosh_restart(struct bsess *s);

#endif
