/* Sessions and their registry.
 *
 * The registry keeps every live session in an intrusive list (for shutdown) and a map by id,
 * and counts sessions per client IP. Each session mirrors itself to the store: the record is
 * written on open, on state and JID changes, and refreshed by the session's one timer, which
 * first serves as the pre-auth deadline and after binding refreshes the record's TTL every
 * third of session_ttl. Store failures are logged and never affect the live session: the store
 * adds resumability and visibility, the upstream server stays the authority. */
#include "gateway/session.h"

#include "gateway/err.h"
#include "gateway/log.h"
#include "gateway/map.h"
#include "gateway/mem.h"
#include "gateway/metrics.h"
#include "gateway/rand.h"
#include "gateway/store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ID_BYTES    16   /* 128 bits */
#define JID_KEY_MAX 2100 /* "mxgw:jid:" + a bare JID of two 1023-byte parts */

struct gw_session {
    struct gw_core *core;
    struct gw_session *prev, *next;
    const struct gw_session_ops *ops;
    void *owner;
    enum gw_transport transport;
    enum gw_session_state state;
    bool closed;
    bool bound;
    char id[2 * ID_BYTES + 1];
    char ip[48];
    char *jid;
    uint64_t since_ms; /* wall clock, for the record */
    uint64_t last_ms;  /* wall clock of the last client activity */
    uv_timer_t timer;  /* pre-auth deadline, then record refresh */
};

struct gw_registry {
    struct gw_core *core;
    struct gw_session *head;
    struct gw_map *by_id;
    struct gw_map *per_ip; /* ip -> sessions (gw_map_tally) */
    size_t count;
    void (*on_empty)(void *arg);
    void *on_empty_arg;
    size_t by_state[GW_TRANSPORT_COUNT][GW_SESSION_STATE_COUNT]; /* live sessions */
    uint64_t *m_logins[GW_TRANSPORT_COUNT][2];                   /* [t][ok] */
    uint64_t *m_login_failures[GW_LOGIN_FAILURE_COUNT];
};

static const char *const transport_names[] = {"ws-xmpp", "ws-json", "bosh"};
static const char *const state_names[] = {"connecting", "authenticating", "bound", "detached",
                                          "closed"};

const char *gw_transport_name(enum gw_transport t)
{
    return transport_names[t];
}

const char *gw_session_state_name(enum gw_session_state st)
{
    return state_names[st];
}

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct gw_registry *gw_registry_new(struct gw_core *core)
{
    struct gw_registry *reg = gw_calloc(1, sizeof *reg);
    reg->core = core;
    reg->by_id = gw_map_new();
    reg->per_ip = gw_map_new();
    static uint64_t sink;
    static const char *const reasons[] = {"credentials", "mechanism", "server"};
    for (int t = 0; t < GW_TRANSPORT_COUNT; t++)
        for (int ok = 0; ok < 2; ok++) {
            char labels[64];
            snprintf(labels, sizeof labels, "transport=\"%s\",result=\"%s\"", transport_names[t],
                     ok ? "ok" : "failed");
            reg->m_logins[t][ok] =
                core->metrics ? gw_metrics_counter(core->metrics, "mxgw_logins_total",
                                                   "Logins (SASL and bind, run by mxgw for JSON "
                                                   "clients, relayed for the others), by transport "
                                                   "and result",
                                                   labels)
                              : &sink;
        }
    for (int i = 0; i < GW_LOGIN_FAILURE_COUNT; i++) {
        char labels[48];
        snprintf(labels, sizeof labels, "reason=\"%s\"", reasons[i]);
        reg->m_login_failures[i] =
            core->metrics ? gw_metrics_counter(core->metrics, "mxgw_login_failures_total",
                                               "Failed logins, by reason", labels)
                          : &sink;
    }
    return reg;
}

void gw_registry_free(struct gw_registry *reg)
{
    if (!reg)
        return;
    gw_map_free(reg->by_id);
    gw_map_free(reg->per_ip);
    free(reg);
}

size_t gw_registry_count(const struct gw_registry *reg)
{
    return reg->count;
}

void gw_registry_on_empty(struct gw_registry *reg, void (*fn)(void *arg), void *arg)
{
    reg->on_empty = fn;
    reg->on_empty_arg = arg;
}

void gw_registry_shutdown_all(struct gw_registry *reg, enum gw_close_reason why)
{
    /* An owner may close its session from inside shutdown(): step with a saved next. */
    struct gw_session *s = reg->head, *next;
    for (; s; s = next) {
        next = s->next;
        s->ops->shutdown(s->owner, why);
    }
}

struct gw_session *gw_registry_find(struct gw_registry *reg, const char *id)
{
    return gw_map_get(reg->by_id, id);
}

size_t gw_registry_count_by(const struct gw_registry *reg, enum gw_transport t,
                            enum gw_session_state st)
{
    return reg->by_state[t][st];
}

void gw_session_shutdown(struct gw_session *s, enum gw_close_reason why)
{
    if (!s->closed)
        s->ops->shutdown(s->owner, why);
}

/* ---- store records ---- */

static void record_key(const struct gw_session *s, char *key, size_t n)
{
    snprintf(key, n, "mxgw:session:%s", s->id);
}

static void store_done(void *arg, int err, const struct gw_store_reply *reply)
{
    (void)reply;
    if (err)
        GW_DEBUG("store.write_failed", "what=%s err=\"%s\"", (const char *)arg, gw_strerror(err));
}

/* Writes the whole record (it is small) and refreshes its TTL. */
static void record_write(struct gw_session *s)
{
    struct gw_store *st = s->core->store;
    char key[64], since[24], last[24];
    record_key(s, key, sizeof key);
    snprintf(since, sizeof since, "%" PRIu64, s->since_ms);
    snprintf(last, sizeof last, "%" PRIu64, s->last_ms);
    struct gw_store_str fields[] = {gw_store_cstr("id"),    gw_store_cstr("node"),
                                    gw_store_cstr("jid"),   gw_store_cstr("transport"),
                                    gw_store_cstr("state"), gw_store_cstr("since"),
                                    gw_store_cstr("last"),  gw_store_cstr("ip")};
    struct gw_store_str values[] = {gw_store_cstr(s->id),
                                    gw_store_cstr(s->core->node_id),
                                    gw_store_cstr(s->jid ? s->jid : ""),
                                    gw_store_cstr(transport_names[s->transport]),
                                    gw_store_cstr(state_names[s->state]),
                                    gw_store_cstr(since),
                                    gw_store_cstr(last),
                                    gw_store_cstr(s->ip)};
    uint64_t ttl = s->core->cfg->session_ttl_ms;
    gw_store_hset(st, key, sizeof fields / sizeof fields[0], fields, values, ttl, store_done,
                  "session");
    char idx[128];
    snprintf(idx, sizeof idx, "mxgw:node:%s", s->core->node_id);
    gw_store_sadd(st, idx, gw_store_cstr(s->id), ttl, store_done, "node-index");
    if (s->jid) {
        char jkey[JID_KEY_MAX];
        snprintf(jkey, sizeof jkey, "mxgw:jid:%s", s->jid);
        gw_store_sadd(st, jkey, gw_store_cstr(s->id), ttl, store_done, "jid-index");
    }
}

static void record_delete(struct gw_session *s)
{
    struct gw_store *st = s->core->store;
    char key[64], idx[128];
    record_key(s, key, sizeof key);
    gw_store_del(st, key, store_done, "session");
    snprintf(idx, sizeof idx, "mxgw:node:%s", s->core->node_id);
    gw_store_srem(st, idx, gw_store_cstr(s->id), store_done, "node-index");
    if (s->jid) {
        char jkey[JID_KEY_MAX];
        snprintf(jkey, sizeof jkey, "mxgw:jid:%s", s->jid);
        gw_store_srem(st, jkey, gw_store_cstr(s->id), store_done, "jid-index");
    }
}

/* ---- the session timer ---- */

static void on_timer(uv_timer_t *t)
{
    struct gw_session *s = t->data;
    if (s->closed)
        return;
    if (!s->bound) {
        GW_INFO("session.preauth_timeout", "session=%s ip=%s", s->id, s->ip);
        s->ops->shutdown(s->owner, GW_CLOSE_PREAUTH);
        return;
    }
    record_write(s);
}

static void start_refresh(struct gw_session *s)
{
    uint64_t every = s->core->cfg->session_ttl_ms / 3;
    uv_timer_start(&s->timer, on_timer, every, every);
}

/* ---- lifecycle ---- */

static int open_session(struct gw_core *core, enum gw_transport transport, const char *ip,
                        const char *id, const struct gw_session_ops *ops, void *owner,
                        struct gw_session **out)
{
    struct gw_registry *reg = core->reg;
    const struct gw_config *cfg = core->cfg;
    if (core->draining)
        return GW_EUNAVAIL;
    if (reg->count >= cfg->limit_sessions) {
        GW_WARN("session.limit", "what=total limit=%u ip=%s", cfg->limit_sessions, ip);
        return GW_ELIMIT;
    }
    if (gw_map_tally(reg->per_ip, ip) >= cfg->limit_sessions_per_ip) {
        GW_WARN("session.limit", "what=per_ip limit=%u ip=%s", cfg->limit_sessions_per_ip, ip);
        return GW_ELIMIT;
    }
    if (id && (strlen(id) >= sizeof((struct gw_session *)0)->id || !*id))
        return GW_EINVAL;
    if (id && gw_map_get(reg->by_id, id))
        return GW_EEXIST;
    struct gw_session *s = gw_calloc(1, sizeof *s);
    if (id) {
        snprintf(s->id, sizeof s->id, "%s", id);
    } else if (gw_rand_hex(core->rand, ID_BYTES, s->id, sizeof s->id) != 0) {
        free(s);
        return GW_EIO;
    }
    s->core = core;
    s->ops = ops;
    s->owner = owner;
    s->transport = transport;
    s->state = GW_SESSION_CONNECTING;
    snprintf(s->ip, sizeof s->ip, "%s", ip);
    s->since_ms = s->last_ms = wall_ms();
    uv_timer_init(core->loop, &s->timer);
    s->timer.data = s;
    uv_timer_start(&s->timer, on_timer, cfg->preauth_timeout_ms, 0);

    s->next = reg->head;
    if (reg->head)
        reg->head->prev = s;
    reg->head = s;
    reg->count++;
    reg->by_state[transport][s->state]++;
    gw_map_put(reg->by_id, s->id, s);
    gw_map_tally_add(reg->per_ip, s->ip, +1);
    record_write(s);
    GW_INFO("session.open", "session=%s transport=%s ip=%s", s->id, transport_names[transport],
            s->ip);
    *out = s;
    return 0;
}

int gw_session_open(struct gw_core *core, enum gw_transport transport, const char *ip,
                    const struct gw_session_ops *ops, void *owner, struct gw_session **out)
{
    return open_session(core, transport, ip, NULL, ops, owner, out);
}

int gw_session_open_as(struct gw_core *core, enum gw_transport transport, const char *ip,
                       const char *id, const struct gw_session_ops *ops, void *owner,
                       struct gw_session **out)
{
    return open_session(core, transport, ip, id, ops, owner, out);
}

void gw_session_set_owner(struct gw_session *s, const struct gw_session_ops *ops, void *owner)
{
    s->ops = ops;
    s->owner = owner;
}

static void free_session(uv_handle_t *h)
{
    struct gw_session *s = h->data;
    free(s->jid);
    free(s);
}

/* Takes the session out of this process; keep_record leaves its store record for another node. */
static void unlink_session(struct gw_session *s, bool keep_record)
{
    struct gw_registry *reg = s->core->reg;
    s->closed = true;
    reg->by_state[s->transport][s->state]--;
    if (keep_record) {
        char idx[128];
        snprintf(idx, sizeof idx, "mxgw:node:%s", s->core->node_id);
        gw_store_srem(s->core->store, idx, gw_store_cstr(s->id), store_done, "node-index");
    } else {
        s->state = GW_SESSION_CLOSED;
        record_delete(s);
    }
    if (s->prev)
        s->prev->next = s->next;
    else
        reg->head = s->next;
    if (s->next)
        s->next->prev = s->prev;
    gw_map_del(reg->by_id, s->id);
    gw_map_tally_add(reg->per_ip, s->ip, -1);
    reg->count--;
    GW_INFO(keep_record ? "session.release" : "session.close", "session=%s jid=%s", s->id,
            s->jid ? s->jid : "-");
    uv_close((uv_handle_t *)&s->timer, free_session);
    if (reg->count == 0 && reg->on_empty)
        reg->on_empty(reg->on_empty_arg);
}

void gw_session_close(struct gw_session *s)
{
    if (!s || s->closed)
        return;
    unlink_session(s, false);
}

void gw_session_release(struct gw_session *s)
{
    if (!s || s->closed)
        return;
    unlink_session(s, true);
}

void gw_session_set_state(struct gw_session *s, enum gw_session_state state)
{
    if (s->closed || s->state == state)
        return;
    s->core->reg->by_state[s->transport][s->state]--;
    s->core->reg->by_state[s->transport][state]++;
    s->state = state;
    record_write(s);
}

void gw_session_set_jid(struct gw_session *s, const char *jid)
{
    if (s->closed)
        return;
    if (s->jid && strcmp(s->jid, jid) == 0)
        return;
    if (s->jid) {
        /* A rebind under another JID: drop the old index entry. */
        char jkey[JID_KEY_MAX];
        snprintf(jkey, sizeof jkey, "mxgw:jid:%s", s->jid);
        gw_store_srem(s->core->store, jkey, gw_store_cstr(s->id), store_done, "jid-index");
        free(s->jid);
    }
    s->jid = gw_strdup(jid);
    if (!s->bound) {
        s->bound = true;
        start_refresh(s);
    }
    record_write(s);
}

void gw_session_count_login(struct gw_session *s, bool ok, enum gw_login_failure why)
{
    struct gw_registry *reg = s->core->reg;
    (*reg->m_logins[s->transport][ok])++;
    if (!ok)
        (*reg->m_login_failures[why])++;
}

void gw_session_touch(struct gw_session *s)
{
    s->last_ms = wall_ms();
}

const char *gw_session_id(const struct gw_session *s)
{
    return s->id;
}

const char *gw_session_jid(const struct gw_session *s)
{
    return s->jid;
}

enum gw_session_state gw_session_state(const struct gw_session *s)
{
    return s->state;
}
