/* Private to web/json_session.c, json_deliver.c and json_attach.c: the JSON session object
 * and the helpers those three files share. See json_session.c for the design. */
#ifndef GW_JSON_SESSION_IMPL_H
#define GW_JSON_SESSION_IMPL_H

#include "gateway/token.h"
#include "web/json_session.h"
#include "xmpp/login.h"
#include "xmpp/sm.h"
#include "xmpp/upstream.h"
#include "xmpp/xlate.h"

struct gw_json_push;
#include "xmpp/xml.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Stanzas to the client between mxgw's {"op":"r"}. */
#define GW_JS_ACK_REQUEST_EVERY 10
/* Client stanzas upstream between mxgw's <r/>; unacked by the server before the client is
 * paused; and past which the session ends. */
#define GW_JS_UP_R_EVERY       8
#define GW_JS_UP_PENDING_PAUSE 128
#define GW_JS_UP_PENDING_MAX   512
/* Longest wait before the server's <r/> is answered when there is nothing new to report (see
 * "upstream acks" in json_session.c). Far below what servers tolerate before they act on a
 * missing answer (Prosody: smacks_max_ack_delay, 30 s; ejabberd: ack_timeout, 60 s). */
#define GW_JS_UP_ACK_DELAY_MS 1000
/* Server stanzas between h and the newest. */
#define GW_JS_WINDOW_MAX 65536

enum gw_js_phase { GW_JS_LOGIN, GW_JS_LIVE, GW_JS_ENDED };
/* Why upstream reading stops. */
enum { GW_JS_UP_WS = 1, GW_JS_UP_WINDOW = 2, GW_JS_UP_PEND = 4, GW_JS_UP_RELEASE = 8 };

/* A stanza numbered for the client and not yet acked by it. */
struct gw_js_item {
    struct gw_js_item *next;
    uint32_t seq, u;
    bool counted;  /* u is a window number still to be made safe (live items) */
    bool in_store; /* its copy is in the store queue */
    size_t len;    /* bytes of its queue item */
    char *xml;     /* live: the stanza, for the queue if the client drops; attach: to send */
    size_t xml_len;
};

/* A stanza from the server not yet numbered for the client (waiting, or held while inactive). */
struct gw_js_held {
    struct gw_js_held *next;
    uint32_t u;
    bool counted;
    struct gw_xml *el;
    char *key;    /* CSI coalescing key */
    bool flushed; /* released from the CSI hold: goes to the client as it is */
};

struct gw_jsess {
    struct gw_jmod *mod;
    struct gw_core *core;
    struct gw_session *sess;
    char sid[GW_TOKEN_SID_MAX + 1];
    char key[GW_JSTORE_KEY_MAX], qkey[GW_JSTORE_KEY_MAX];
    struct gw_store_guard guard;
    struct gw_jconn *conn;
    enum gw_js_phase phase;
    bool detached, attaching, releasing, fresh, adopting;
    bool flushing;                 /* the resumed client is being sent the store queue */
    struct gw_js_item *flush_next; /* … from this item on */
    bool resumable;                /* the store holds the session and writing it works */
    bool records;    /* the store may hold records of this session, to delete at the end */
    bool token_prev; /* the token before the last resume is still valid */
    struct gw_upstream *up;
    /* The stanza up_stanza() is delivering right now, unchanged: send_live() may keep the
     * server's own bytes of it (gw_upstream_stanza_doc()) instead of serializing it. */
    const struct gw_xml *as_written;
    struct gw_login *login;
    struct gw_json_push *push; /* push ops (web/json_push.c), NULL until the first */
    char *jid, *bare, *lang, *sm_id, *mention;
    bool sm, sm_resume;
    unsigned up_pause;
    /* server → client */
    struct gw_sm_window win;
    uint32_t h_persisted, h_told;
    bool r_owed;
    bool owed_listed; /* on the module's list of sessions owing an answer to <r/> */
    struct gw_jsess *owed_prev, *owed_next;
    uint64_t owed_at;
    uint32_t cl_out, cl_acked, cl_max;
    bool ceiling_blocked;
    struct gw_js_item *items, *items_tail;
    size_t live_bytes; /* of the items not in the store: what a detach would append */
    size_t q_count, q_bytes;
    unsigned q_inflight;
    struct gw_js_held *pend, *pend_tail;
    size_t npend;
    struct gw_js_held *held, *held_tail;
    size_t nheld;
    bool inactive;
    /* client → server */
    struct gw_sm_queue upq;
    uint32_t cl_in, cl_in_acked;
    bool client_ack_requested, up_r_pending;
    /* store writes */
    bool persist_inflight, persist_dirty;
    /* resume */
    struct gw_jresume_args *args;
    uint32_t rec_up_in_h, rec_cl_in, rec_cl_in_acked;
    char *rec_fifo;
    /* release */
    void (*release_done)(void *arg, bool ok);
    void *release_arg;
    enum gw_jrelease release_why;
    bool release_failed;
    uv_timer_t timer;
    unsigned refs;
};

struct gw_js_snap {
    struct gw_jsess *s;
    uint32_t h, cl_max;
    char *token; /* attach and login: the new token, sent once it is stored */
};

extern const struct gw_session_ops gw_js_session_ops;
extern const struct gw_upstream_handlers gw_js_up_handlers;

static inline const struct gw_config *gw_js_cfg(const struct gw_jsess *s)
{
    return s->core->cfg;
}

/* What the translator needs to know: the session's JIDs and stream language, and the aliases
 * of the connection attached now (none while detached: aliases are per connection). */
static inline struct gw_xlate_ctx gw_js_xlate_ctx(const struct gw_jsess *s)
{
    struct gw_xlate_ctx ctx = {
        s->jid, s->bare, s->lang, gw_jconn_aliases(s->conn), s->core->cfg->limit_stanza_bytes,
        NULL};
    return ctx;
}

uint64_t gw_js_wall_ms(void);
/* a > b, with XEP-0198 wrap-around */
bool gw_js_after(uint32_t a, uint32_t b);

/* json_session.c: lifetime. A session is freed once it has ended (gw_js_finish drops the
 * reference it holds on itself) and every store callback holding a reference has run. */
struct gw_jsess *gw_js_new(struct gw_jmod *m, const char *sid);
void gw_js_ref(struct gw_jsess *s);
void gw_js_unref(struct gw_jsess *s);
void gw_js_finish(struct gw_jsess *s);
void gw_js_free_items(struct gw_jsess *s);

/* json_session.c: talking to the client and the server. */
int gw_js_to_client(struct gw_jsess *s, struct gw_json_out *w); /* takes w */
void gw_js_send_count(struct gw_jsess *s, const char *op, uint32_t h);
void gw_js_send_request(struct gw_jsess *s);
void gw_js_up_pause(struct gw_jsess *s, unsigned why, bool on);
void gw_js_xml_sm(struct gw_jsess *s, const char *name, const uint32_t *h); /* name: "r" or "a" */
char *gw_js_serialize(const struct gw_xml *el, size_t *len); /* owned, NULL if it cannot be */
bool gw_js_plain_allowed(const struct gw_jsess *s);

/* json_session.c: acks upstream and the records. mark_safe advances h and, for a resumable
 * session, persists before the server hears of it; lose_resumability is for a store that fails
 * (the session goes on, its client is told). */
void gw_js_ack_upstream(struct gw_jsess *s);
/* The server's <r/> arrived: answered at once if there is progress to report, otherwise with
 * the next progress or after GW_JS_UP_ACK_DELAY_MS. */
void gw_js_answer_request(struct gw_jsess *s);
void gw_js_mark_safe(struct gw_jsess *s, uint32_t u);
void gw_js_lose_resumability(struct gw_jsess *s, int err);
void gw_js_check_store(struct gw_jsess *s);
void gw_js_counters(struct gw_jsess *s, struct gw_jstore_fields *w, struct gw_js_snap *sn,
                    char **fifo);
void gw_js_persist(struct gw_jsess *s);
void gw_js_ignore_reply(void *arg, int err, const struct gw_store_reply *r); /* arg: session */
void gw_js_delete_records(struct gw_jsess *s);

/* json_session.c: endings. end: the session is over (records deleted, the server's stream
 * ended); lost: another node has it (nothing touched); detach: the client dropped off. */
void gw_js_end(struct gw_jsess *s, const char *cond, const char *text, uint16_t code);
void gw_js_lost(struct gw_jsess *s);
void gw_js_detach(struct gw_jsess *s);
void gw_js_release_persist(struct gw_jsess *s);
void gw_js_start_timer(struct gw_jsess *s);

/* json_deliver.c: the pipeline of server stanzas. */
void gw_js_spill(struct gw_jsess *s);
void gw_js_flush_held(struct gw_jsess *s);
void gw_js_deliver(struct gw_jsess *s, struct gw_xml *el, uint32_t u, bool counted);
void gw_js_drain_pending(struct gw_jsess *s);

/* json_attach.c: sends more of the store queue to a resumed client, as its socket drains. */
void gw_js_flush_more(struct gw_jsess *s);
/* json_deliver.c: the client stopped reading; the session detaches. */
void gw_js_drop_conn(struct gw_jsess *s, const char *cond, const char *text, uint16_t code);
/* json_attach.c: the upstream failed while logging in or resuming. */
void gw_js_login_failed(struct gw_jsess *s, const char *cond);
void gw_js_adopt_failed(struct gw_jsess *s, const char *cond);

#endif
