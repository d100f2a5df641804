/* The delivery queue in the store (layout and merging rule in push_impl.h).
 *
 * Enqueue: HINCRBY pending (+ the event's fields) returns the hash; the event that made pending
 * 1 schedules the device (due = max(now, cool), or now when urgent), an urgent one moves an
 * existing entry earlier, the rest are merged.
 * Drain: a node claims due devices (as many as it has free request slots) with a lease, reads
 * each device's count (starting the quiet window), sends it, then subtracts the count it sent
 * (removing the entry if nothing new came and its score is still the lease). A failure leaves
 * the count alone and reschedules: Retry-After when the service sent one (429, 503),
 * exponential backoff with jitter otherwise, at most push_max_attempts times; a 404 or 410
 * deletes the registration. The node keeps one timer, armed for the earliest score it knows of
 * (other nodes announce what they schedule on a channel, so a node that dies leaves nothing behind:
 * its leases run out and whoever is awake claims them). */
#include "push/push_impl.h"

#include "gateway/err.h"
#include "gateway/log.h"
#include "gateway/mem.h"
#include "gateway/metrics.h"
#include "gateway/rand.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- timer ---- */

static void on_timer(uv_timer_t *t)
{
    struct gw_push *p = t->data;
    p->timer_due = 0;
    push_drain(p);
}

void push_wake_at(struct gw_push *p, int64_t due)
{
    if (p->closing || !p->started)
        return;
    if (p->timer_due && p->timer_due <= due)
        return;
    int64_t now = push_now_ms();
    p->timer_due = due;
    uv_timer_start(&p->timer, on_timer, due > now ? (uint64_t)(due - now) : 0, 0);
}

void push_on_wake(void *arg, const char *channel, const char *msg, size_t len)
{
    (void)channel;
    struct gw_push *p = arg;
    char buf[24];
    if (len == 0 || len >= sizeof buf)
        return;
    memcpy(buf, msg, len);
    buf[len] = '\0';
    char *end;
    long long due = strtoll(buf, &end, 10);
    if (*end == '\0' && due > 0)
        push_wake_at(p, due);
}

static void announce(struct gw_push *p, int64_t due)
{
    char buf[24];
    snprintf(buf, sizeof buf, "%lld", (long long)due);
    gw_store_publish(p->core->store, PUSH_KEY_WAKE, gw_store_cstr(buf), NULL, NULL);
}

/* ---- enqueue ---- */

struct enq {
    struct gw_push *p;
    char id[GW_PUSH_ID_LEN + 1];
    enum provider prov;
    bool urgent;
    int64_t due;
};

static void enq_done(struct enq *e)
{
    struct gw_push *p = e->p;
    free(e);
    push_job_end(p);
}

static void on_scheduled(void *arg, int err, const struct gw_store_reply *r)
{
    (void)r;
    struct enq *e = arg;
    struct gw_push *p = e->p;
    if (err == GW_ELIMIT) {
        GW_WARN("push.dropped", "provider=%s reg=%.8s reason=queue_full",
                push_provider_name(e->prov), e->id);
        (*p->m[e->prov].dropped)++;
        char *k = push_key("q", e->id);
        gw_store_del(p->core->store, k, NULL, NULL);
        free(k);
    } else if (err) {
        (*p->m[e->prov].dropped)++;
    } else {
        push_wake_at(p, e->due);
        announce(p, e->due);
    }
    enq_done(e);
}

static void on_counted(void *arg, int err, const struct gw_store_reply *r)
{
    struct enq *e = arg;
    struct gw_push *p = e->p;
    if (err) {
        GW_WARN("push.dropped", "provider=%s reg=%.8s reason=store err=\"%s\"",
                push_provider_name(e->prov), e->id, gw_strerror(err));
        (*p->m[e->prov].dropped)++;
        enq_done(e);
        return;
    }
    int64_t now = push_now_ms();
    const char *cool = gw_store_reply_field(r, "cool");
    int64_t cool_until = cool ? strtoll(cool, NULL, 10) : 0;
    enum gw_store_zadd_mode mode;
    if (r->integer <= 1) { /* <= 1: after an overlap left the count below zero */
        e->due = e->urgent || cool_until < now ? now : cool_until;
        mode = GW_ZADD_SET;
    } else if (e->urgent) {
        (*p->m[e->prov].merged)++;
        e->due = now;
        mode = GW_ZADD_LT;
    } else {
        (*p->m[e->prov].merged)++;
        enq_done(e);
        return;
    }
    if (gw_store_zadd(p->core->store, PUSH_KEY_DUE, gw_store_cstr(e->id), e->due, mode,
                      p->cfg->push_queue_max, on_scheduled, e) != 0)
        enq_done(e);
}

void push_enqueue(struct gw_push *p, const struct reg *r, const struct gw_push_event *ev,
                  uint64_t t_us)
{
    /* Sender and body are stored only when both the server and the registration opt in:
     * otherwise they never leave this process. */
    bool sender = p->cfg->push_include_sender && r->with_sender;
    bool body = p->cfg->push_include_body && r->with_body;
    char t[24];
    snprintf(t, sizeof t, "%llu", (unsigned long long)t_us);
    struct gw_store_str f[4], v[4];
    size_t n = 0;
    f[n] = gw_store_cstr("t");
    v[n++] = gw_store_cstr(t);
    if (ev->urgent) {
        f[n] = gw_store_cstr("urgent");
        v[n++] = gw_store_cstr("1");
    }
    if (sender) {
        f[n] = gw_store_cstr("sender");
        v[n++] = gw_store_cstr(ev->sender ? ev->sender : "");
    }
    if (body) {
        f[n] = gw_store_cstr("body");
        v[n++] = gw_store_cstr(ev->body ? ev->body : "");
    }
    struct enq *e = gw_calloc(1, sizeof *e);
    e->p = p;
    snprintf(e->id, sizeof e->id, "%s", r->id);
    e->prov = r->provider;
    e->urgent = ev->urgent;
    push_job_begin(p);
    char *k = push_key("q", r->id);
    int rc = gw_store_hincrby(p->core->store, k, gw_store_cstr("pending"), 1, n, f, v,
                              p->queue_ttl_ms, on_counted, e);
    free(k);
    if (rc)
        enq_done(e);
    GW_DEBUG("push.queued", "provider=%s reg=%.8s kind=%s urgent=%s",
             push_provider_name(r->provider), r->id, gw_push_kind_name(ev->kind),
             ev->urgent ? "yes" : "no");
}

/* ---- delivery ---- */

struct deliv {
    struct gw_push *p;
    char id[GW_PUSH_ID_LEN + 1];
    int64_t lease; /* the due entry's score while this node holds it */
    int64_t cool;  /* the quiet window this delivery started */
    struct reg reg;
    bool have_reg;
    struct taken t;
    uint64_t start_delay_us;
};

static void deliv_done(struct deliv *d)
{
    struct gw_push *p = d->p;
    if (d->have_reg)
        push_reg_clear(&d->reg);
    free(d->t.sender);
    free(d->t.body);
    free(d);
    p->delivering--;
    if (!p->closing && p->more_due)
        push_drain(p); /* a slot is free and the last claim left work behind */
    push_job_end(p);
}

static void on_finished(void *arg, int err, const struct gw_store_reply *r)
{
    (void)err;
    (void)r;
    deliv_done(arg);
}

static void on_requeued(void *arg, int err, const struct gw_store_reply *r)
{
    struct deliv *d = arg;
    if (!err) {
        push_wake_at(d->p, d->cool);
        announce(d->p, d->cool);
    }
    (void)r;
    deliv_done(d);
}

/* Events arrived while this one was sent: they wait for the end of the quiet window. The
 * entry moves there only if it still holds our lease (an urgent event may have moved it
 * earlier, and that must stand). */
static void on_lease_dropped(void *arg, int err, const struct gw_store_reply *r)
{
    struct deliv *d = arg;
    if (err || r->integer != 1 ||
        gw_store_zadd(d->p->core->store, PUSH_KEY_DUE, gw_store_cstr(d->id), d->cool, GW_ZADD_LT, 0,
                      on_requeued, d) != 0)
        deliv_done(d);
}

static void on_settled(void *arg, int err, const struct gw_store_reply *r)
{
    struct deliv *d = arg;
    struct gw_push *p = d->p;
    if (err) { /* the lease runs out and the push comes again: at least once */
        deliv_done(d);
        return;
    }
    long long left = r->integer;
    char *k = push_key("q", d->id);
    if (left < 0) /* two deliveries overlapped (an urgent event during a send): back to 0 */
        gw_store_hincrby(p->core->store, k, gw_store_cstr("pending"), -left, 0, NULL, NULL, 0, NULL,
                         NULL);
    free(k);
    gw_store_cb next = left > 0 ? on_lease_dropped : on_finished;
    if (gw_store_zrem_if(p->core->store, PUSH_KEY_DUE, gw_store_cstr(d->id), d->lease, next, d) !=
        0)
        deliv_done(d);
}

/* The events this delivery covered are done with (sent, or given up on): subtract them. What
 * arrived meanwhile stays and is scheduled after the quiet window. */
static void settle(struct deliv *d)
{
    struct gw_store_str f[3] = {gw_store_cstr("urgent"), gw_store_cstr("lite"),
                                gw_store_cstr("attempts")};
    struct gw_store_str v[3] = {gw_store_cstr("0"), gw_store_cstr("0"), gw_store_cstr("0")};
    char *k = push_key("q", d->id);
    int rc = gw_store_hincrby(d->p->core->store, k, gw_store_cstr("pending"), -d->t.count, 3, f, v,
                              d->p->queue_ttl_ms, on_settled, d);
    free(k);
    if (rc)
        deliv_done(d);
}

struct resched {
    struct deliv *d;
    int64_t due;
};

static void on_rescheduled(void *arg, int err, const struct gw_store_reply *r)
{
    (void)r;
    struct resched *rs = arg;
    struct deliv *d = rs->d;
    if (!err) {
        push_wake_at(d->p, rs->due);
        announce(d->p, rs->due);
    }
    free(rs);
    deliv_done(d);
}

/* Tries again at due: the count never left the store, so only the attempt is recorded. */
static void reschedule(struct deliv *d, int64_t due, long attempts, bool lite)
{
    struct gw_push *p = d->p;
    char a[24];
    snprintf(a, sizeof a, "%ld", attempts);
    struct gw_store_str f[2] = {gw_store_cstr("attempts"), gw_store_cstr("lite")};
    struct gw_store_str v[2] = {gw_store_cstr(a), gw_store_cstr(lite ? "1" : "0")};
    char *k = push_key("q", d->id);
    gw_store_hset(p->core->store, k, 2, f, v, p->queue_ttl_ms, NULL, NULL);
    free(k);
    struct resched *rs = gw_calloc(1, sizeof *rs);
    rs->d = d;
    rs->due = due;
    if (gw_store_zadd(p->core->store, PUSH_KEY_DUE, gw_store_cstr(d->id), due, GW_ZADD_SET, 0,
                      on_rescheduled, rs) != 0) {
        free(rs);
        deliv_done(d);
    }
}

static int64_t backoff_ms(struct gw_push *p, long attempt)
{
    uint64_t d = p->cfg->push_retry_min_ms;
    for (long i = 1; i < attempt && d < p->cfg->push_retry_max_ms; i++)
        d *= 2;
    if (d > p->cfg->push_retry_max_ms)
        d = p->cfg->push_retry_max_ms;
    uint32_t r = 0;
    gw_rand_bytes(p->core->rand, &r, sizeof r);
    return (int64_t)(d / 2 + r % (d / 2 + 1)); /* jitter: spread retries over [d/2, d] */
}

static void give_up(struct deliv *d, const char *why)
{
    struct gw_push *p = d->p;
    (*p->m[d->reg.provider].failed)++;
    GW_WARN("push.failed", "provider=%s reg=%.8s reason=\"%s\" attempts=%ld count=%ld",
            push_provider_name(d->reg.provider), d->id, why, d->t.attempts + 1, d->t.count);
    settle(d);
}

static void retry(struct deliv *d, const char *why, int64_t delay_ms)
{
    struct gw_push *p = d->p;
    long attempts = d->t.attempts + 1;
    if (attempts >= (long)p->cfg->push_max_attempts) {
        give_up(d, why);
        return;
    }
    (*p->m[d->reg.provider].retried)++;
    GW_INFO("push.retry", "provider=%s reg=%.8s reason=\"%s\" attempt=%ld in_ms=%lld",
            push_provider_name(d->reg.provider), d->id, why, attempts, (long long)delay_ms);
    reschedule(d, push_now_ms() + delay_ms, attempts, d->t.lite);
}

static void on_response(void *arg, const struct gw_http_res *res)
{
    struct deliv *d = arg;
    struct gw_push *p = d->p;
    enum provider prov = d->reg.provider;
    char why[160];
    if (res->err == GW_ECLOSED) { /* shutting down: due at once, for whichever node is up */
        reschedule(d, push_now_ms(), d->t.attempts, d->t.lite);
        return;
    }
    if (res->err == GW_EAUTH) {
        GW_WARN("push.refused", "provider=%s reg=%.8s reason=\"%s\"", push_provider_name(prov),
                d->id, res->refused ? res->refused : "policy");
        give_up(d, res->refused ? res->refused : "refused by policy");
        return;
    }
    if (res->err) {
        snprintf(why, sizeof why, "%s", gw_strerror(res->err));
        retry(d, why, backoff_ms(p, d->t.attempts + 1));
        return;
    }
    long st = res->status;
    if (st >= 200 && st < 300) {
        (*p->m[prov].sent)++;
        char delay[32] = "";
        if (d->t.count == 1 && !d->t.attempts)
            snprintf(delay, sizeof delay, " delay_ms=%.3f", (double)d->start_delay_us / 1000.0);
        GW_INFO("push.sent", "provider=%s reg=%.8s status=%ld count=%ld attempt=%ld%s",
                push_provider_name(prov), d->id, st, d->t.count, d->t.attempts + 1, delay);
        settle(d);
        return;
    }
    if (st == 404 || st == 410) {
        (*p->m[prov].failed)++;
        GW_INFO("push.gone", "provider=%s reg=%.8s status=%ld detail=\"registration deleted\"",
                push_provider_name(prov), d->id, st);
        push_reg_delete(p, d->reg.account, d->id);
        deliv_done(d);
        return;
    }
    snprintf(why, sizeof why, "HTTP %ld", st);
    if (st == 413 && !d->t.lite && (d->t.sender || d->t.body)) {
        /* Too large for this service: the same push again without sender and body. */
        reschedule(d, push_now_ms(), d->t.attempts, true);
        return;
    }
    if ((st == 429 || st == 503) && res->retry_after_s >= 0) {
        if ((uint64_t)res->retry_after_s * 1000 > p->cfg->push_retry_after_max_ms) {
            give_up(d, "Retry-After beyond push_retry_after_max");
            return;
        }
        uint32_t r = 0;
        gw_rand_bytes(p->core->rand, &r, sizeof r);
        /* Never before the deadline; a little after it, so devices do not return together. */
        retry(d, why, res->retry_after_s * 1000 + (int64_t)(r % 250));
        return;
    }
    if (st >= 500 || st == 429 || st == 408) {
        retry(d, why, backoff_ms(p, d->t.attempts + 1));
        return;
    }
    give_up(d, st >= 300 && st < 400 ? "redirect (not followed)" : why);
}

static void send_it(struct deliv *d)
{
    struct gw_push *p = d->p;
    uint64_t now = push_now_us();
    d->start_delay_us = now > d->t.t_us ? now - d->t.t_us : 0;
    int rc = push_send(p, &d->reg, &d->t, on_response, d);
    if (rc == GW_EAGAIN) {
        reschedule(d, push_now_ms() + 100, d->t.attempts, d->t.lite);
        return;
    }
    if (rc) {
        give_up(d, "the registration cannot be sent to");
        return;
    }
    if (d->t.count == 1 && !d->t.attempts)
        gw_histogram_observe(p->delay, (double)d->start_delay_us / 1e6);
}

static void on_reg(void *arg, int err, const struct gw_store_reply *r)
{
    struct deliv *d = arg;
    struct gw_push *p = d->p;
    if (err) {
        reschedule(d, push_now_ms() + backoff_ms(p, 1), d->t.attempts, d->t.lite);
        return;
    }
    if (push_reg_parse(r, d->id, &d->reg) != 0) {
        (*p->m[PROV_UNKNOWN].dropped)++;
        GW_INFO("push.dropped", "reg=%.8s reason=unregistered", d->id);
        push_reg_delete(p, NULL, d->id);
        deliv_done(d);
        return;
    }
    d->have_reg = true;
    if (p->closing) {
        reschedule(d, push_now_ms(), d->t.attempts, d->t.lite);
        return;
    }
    send_it(d);
}

static void on_taken(void *arg, int err, const struct gw_store_reply *r)
{
    struct deliv *d = arg;
    struct gw_push *p = d->p;
    if (err) { /* the lease brings the entry back */
        deliv_done(d);
        return;
    }
    const char *v = gw_store_reply_field(r, "pending");
    d->t.count = v ? strtol(v, NULL, 10) : 0;
    if (d->t.count <= 0) { /* an entry whose events were already sent */
        if (gw_store_zrem_if(p->core->store, PUSH_KEY_DUE, gw_store_cstr(d->id), d->lease,
                             on_finished, d) != 0)
            deliv_done(d);
        return;
    }
    d->t.urgent = (v = gw_store_reply_field(r, "urgent")) && strcmp(v, "1") == 0;
    d->t.lite = (v = gw_store_reply_field(r, "lite")) && strcmp(v, "1") == 0;
    d->t.attempts = (v = gw_store_reply_field(r, "attempts")) ? strtol(v, NULL, 10) : 0;
    d->t.t_us = (v = gw_store_reply_field(r, "t")) ? strtoull(v, NULL, 10) : 0;
    if ((v = gw_store_reply_field(r, "sender")) && *v)
        d->t.sender = gw_strdup(v);
    if ((v = gw_store_reply_field(r, "body")) && *v)
        d->t.body = gw_strdup(v);
    char *k = push_key("reg", d->id);
    if (gw_store_hgetall(p->core->store, k, on_reg, d) != 0)
        deliv_done(d);
    free(k);
}

static void deliver(struct gw_push *p, const char *id, int64_t lease)
{
    struct deliv *d = gw_calloc(1, sizeof *d);
    d->p = p;
    snprintf(d->id, sizeof d->id, "%s", id);
    d->lease = lease;
    d->cool = push_now_ms() + (int64_t)p->cfg->push_quiet_window_ms;
    p->delivering++;
    push_job_begin(p);
    /* Read the waiting push and start the quiet window in one step. The count stays in the
     * store until the delivery settles, so a node that dies mid-way loses nothing. */
    char cool[24];
    snprintf(cool, sizeof cool, "%lld", (long long)d->cool);
    struct gw_store_str f = gw_store_cstr("cool"), v = gw_store_cstr(cool);
    char *k = push_key("q", id);
    if (gw_store_htake(p->core->store, k, 1, &f, &v, on_taken, d) != 0)
        deliv_done(d);
    free(k);
}

/* ---- claiming ---- */

struct claim {
    struct gw_push *p;
    int64_t lease;
    size_t limit;
};

static void on_claimed(void *arg, int err, const struct gw_store_reply *r)
{
    struct claim *c = arg;
    struct gw_push *p = c->p;
    int64_t lease = c->lease;
    size_t limit = c->limit;
    free(c);
    p->claiming = false;
    if (err) {
        if (!p->closing) {
            GW_WARN("push.claim_failed", "err=\"%s\" retry_ms=1000", gw_strerror(err));
            push_wake_at(p, push_now_ms() + 1000);
        }
        push_job_end(p);
        return;
    }
    p->more_due = r->n == limit;
    for (size_t i = 0; i < r->n; i++)
        if (push_valid_id(r->items[i].ptr) && !p->closing)
            deliver(p, r->items[i].ptr, lease);
    if (r->integer >= 0)
        push_wake_at(p, r->integer);
    if (p->claim_again) {
        p->claim_again = false;
        push_drain(p);
    }
    push_job_end(p);
}

void push_drain(struct gw_push *p)
{
    if (p->closing || !p->started)
        return;
    if (p->claiming) {
        p->claim_again = true;
        return;
    }
    unsigned slots = p->cfg->push_max_inflight;
    if (p->delivering >= slots)
        return;                                /* the next delivery to finish drains again */
    if (!gw_store_available(p->core->store)) { /* connecting or down: look again shortly */
        push_wake_at(p, push_now_ms() + 500);
        return;
    }
    struct claim *c = gw_calloc(1, sizeof *c);
    c->p = p;
    int64_t now = push_now_ms();
    c->lease = now + (int64_t)p->lease_ms;
    c->limit = slots - p->delivering;
    p->claiming = true;
    push_job_begin(p);
    if (gw_store_zclaim(p->core->store, PUSH_KEY_DUE, now, c->limit, c->lease, on_claimed, c) !=
        0) {
        free(c);
        p->claiming = false;
        push_job_end(p);
    }
}
