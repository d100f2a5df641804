/* The push module: configuration, lifecycle, metrics, and source 1 (stanzas for detached
 * sessions). Registrations are in reg.c, the queue and delivery in queue.c, requests in send.c,
 * the XEP-0357 app server in appserver.c. */
#include "push/push_impl.h"

#include "gateway/err.h"
#include "gateway/log.h"
#include "gateway/mem.h"
#include "gateway/metrics.h"
#include "push/http.h"
#include "push/vapid.h"
#include "xmpp/component.h"
#include "xmpp/jid.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

int64_t push_now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

uint64_t push_now_us(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000000 + (uint64_t)tv.tv_usec;
}

char *push_key(const char *kind, const char *name)
{
    size_t n = strlen("mxgw:push:") + strlen(kind) + 1 + strlen(name) + 1;
    char *k = gw_malloc(n);
    snprintf(k, n, "mxgw:push:%s:%s", kind, name);
    return k;
}

static const char *const provider_names[] = {"webhook", "webpush", "unifiedpush", "unknown"};

const char *push_provider_name(enum provider p)
{
    return (unsigned)p < PROV_N ? provider_names[p] : "unknown";
}

enum provider push_provider_parse(const char *s)
{
    for (int i = 0; i < PROV_UNKNOWN; i++)
        if (s && strcmp(s, provider_names[i]) == 0)
            return (enum provider)i;
    return PROV_UNKNOWN;
}

bool push_valid_id(const char *id)
{
    if (!id || strlen(id) != GW_PUSH_ID_LEN)
        return false;
    for (const char *c = id; *c; c++)
        if (!isxdigit((unsigned char)*c) || isupper((unsigned char)*c))
            return false;
    return true;
}

/* ---- lifecycle ---- */

static void maybe_free(struct gw_push *p)
{
    if (!p->closing || p->jobs > 0 || p->http_open || p->timer_open)
        return;
    for (int i = 0; i < PROV_UNKNOWN; i++)
        GW_INFO("push.stats",
                "provider=%s sent=%llu merged=%llu failed=%llu retried=%llu dropped=%llu",
                provider_names[i], (unsigned long long)*p->m[i].sent,
                (unsigned long long)*p->m[i].merged, (unsigned long long)*p->m[i].failed,
                (unsigned long long)*p->m[i].retried, (unsigned long long)*p->m[i].dropped);
    gw_vapid_free(p->vapid);
    if (p->webhook_secret) {
        gw_memzero(p->webhook_secret, strlen(p->webhook_secret));
        free(p->webhook_secret);
    }
    free(p->webhook_url);
    void (*done)(void *) = p->closed;
    void *arg = p->closed_arg;
    free(p);
    if (done)
        done(arg);
}

void push_job_begin(struct gw_push *p)
{
    p->jobs++;
}

void push_job_end(struct gw_push *p)
{
    p->jobs--;
    maybe_free(p);
}

static void http_closed(void *arg)
{
    struct gw_push *p = arg;
    p->http_open = false;
    maybe_free(p);
}

static void timer_closed(uv_handle_t *h)
{
    struct gw_push *p = h->data;
    p->timer_open = false;
    maybe_free(p);
}

static void register_metrics(struct gw_push *p)
{
    static const struct {
        const char *name, *help;
        size_t off;
    } series[] = {
        {"mxgw_push_sent_total", "Pushes a push service accepted",
         offsetof(struct prov_metrics, sent)},
        {"mxgw_push_merged_total", "Important events merged into a push already waiting",
         offsetof(struct prov_metrics, merged)},
        {"mxgw_push_failed_total", "Pushes given up on (refused, gone, or out of attempts)",
         offsetof(struct prov_metrics, failed)},
        {"mxgw_push_retried_total", "Push deliveries rescheduled after a failure",
         offsetof(struct prov_metrics, retried)},
        {"mxgw_push_dropped_total",
         "Pushes dropped before delivery (queue full, store down, registration gone)",
         offsetof(struct prov_metrics, dropped)},
    };
    for (int i = 0; i < PROV_N; i++) {
        char labels[48];
        snprintf(labels, sizeof labels, "provider=\"%s\"", provider_names[i]);
        for (size_t k = 0; k < sizeof series / sizeof series[0]; k++)
            *(uint64_t **)((char *)&p->m[i] + series[k].off) =
                gw_metrics_counter(p->core->metrics, series[k].name, series[k].help, labels);
    }
    static const double bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1};
    p->delay = gw_metrics_histogram(
        p->core->metrics, "mxgw_push_delay_seconds",
        "From the arrival of an unmerged important event to the start of its HTTP request", NULL,
        bounds, sizeof bounds / sizeof bounds[0]);
}

static int read_secret(const struct gw_config *cfg, char **out, char *err, size_t errlen)
{
    char buf[256] = "";
    if (cfg->push_webhook_secret[0]) {
        snprintf(buf, sizeof buf, "%s", cfg->push_webhook_secret);
    } else if (cfg->push_webhook_secret_file[0]) {
        FILE *fp = fopen(cfg->push_webhook_secret_file, "r");
        if (!fp || !fgets(buf, sizeof buf, fp)) {
            snprintf(err, errlen, "push_webhook_secret_file %s: %s", cfg->push_webhook_secret_file,
                     fp ? "empty" : strerror(errno));
            if (fp)
                fclose(fp);
            return GW_ECONFIG;
        }
        fclose(fp);
        size_t n = strlen(buf);
        while (n > 0 && isspace((unsigned char)buf[n - 1]))
            buf[--n] = '\0';
    }
    if (strlen(buf) < 16) {
        snprintf(err, errlen,
                 "push_webhook_url needs a secret of at least 16 characters "
                 "(push_webhook_secret or push_webhook_secret_file)");
        gw_memzero(buf, sizeof buf);
        return GW_ECONFIG;
    }
    *out = gw_strdup(buf);
    gw_memzero(buf, sizeof buf);
    return 0;
}

int gw_push_new(struct gw_core *core, struct gw_component *comp, struct gw_push **out, char *err,
                size_t errlen)
{
    const struct gw_config *cfg = core->cfg;
    *out = NULL;
    if (!cfg->push)
        return GW_ENOTFOUND;
    struct gw_push *p = gw_calloc(1, sizeof *p);
    p->core = core;
    p->cfg = cfg;
    p->comp = comp;
    p->policy = (struct gw_push_policy){
        cfg->push_on_body,    cfg->push_on_encrypted, cfg->push_on_invite, cfg->push_on_call,
        cfg->push_on_mention, cfg->push_on_groupchat, cfg->push_body_max};
    p->lease_ms = cfg->push_http_timeout_ms + 5000;
    p->queue_ttl_ms = cfg->push_quiet_window_ms + cfg->push_retry_after_max_ms +
                      (uint64_t)cfg->push_max_attempts * cfg->push_retry_max_ms + 3600000;
    char ua[64];
    snprintf(ua, sizeof ua, "mxgw/%s", MXGW_VERSION);
    struct gw_http_opts ho = {cfg->push_http_timeout_ms, cfg->push_max_inflight, cfg->push_ca_file,
                              cfg->push_allowlist,       cfg->push_hosts,        ua};
    int rc = gw_http_new(core->loop, &ho, &p->http, err, errlen);
    if (rc) {
        free(p);
        return rc;
    }
    p->http_open = true;
    uv_timer_init(core->loop, &p->timer);
    p->timer.data = p;
    p->timer_open = true;
    if (cfg->push_vapid_key_file[0])
        rc = gw_vapid_load(core->rand, cfg->push_vapid_key_file, cfg->push_vapid_subject,
                           (int64_t)(cfg->push_vapid_expiry_ms / 1000), &p->vapid, err, errlen);
    if (!rc && cfg->push_webhook_url[0]) {
        char why[160];
        if (gw_http_check_url(p->http, cfg->push_webhook_url, NULL, why, sizeof why) != 0) {
            snprintf(err, errlen, "push_webhook_url: %s", why);
            rc = GW_ECONFIG;
        } else {
            rc = read_secret(cfg, &p->webhook_secret, err, errlen);
            p->webhook_url = gw_strdup(cfg->push_webhook_url);
        }
    }
    register_metrics(p);
    *out = p;
    if (rc) {
        gw_push_close(p, NULL, NULL);
        *out = NULL;
        return rc;
    }
    push_appserver_start(p);
    return 0;
}

void gw_push_start(struct gw_push *p)
{
    if (p->started || p->closing)
        return;
    p->started = true;
    if (gw_store_subscribe(p->core->store, PUSH_KEY_WAKE, push_on_wake, p) == 0)
        p->subscribed = true;
    GW_INFO("push.start", "providers=%s%s%s window_ms=%llu app_server=%s",
            p->webhook_url ? "webhook " : "", p->vapid ? "webpush " : "", "unifiedpush",
            (unsigned long long)p->cfg->push_quiet_window_ms,
            p->comp ? gw_component_domain(p->comp) : "-");
    push_drain(p);
}

void gw_push_close(struct gw_push *p, void (*done)(void *arg), void *arg)
{
    if (p->closing)
        return;
    p->closing = true;
    p->closed = done;
    p->closed_arg = arg;
    push_appserver_stop(p);
    if (p->subscribed && p->core->store)
        gw_store_unsubscribe(p->core->store, PUSH_KEY_WAKE);
    uv_timer_stop(&p->timer);
    uv_close((uv_handle_t *)&p->timer, timer_closed);
    /* Aborting runs every delivery's callback now with GW_ECLOSED: they give their pushes
     * back to the queue before the jobs count reaches zero. */
    gw_http_close(p->http, http_closed, p);
}

/* ---- the other public queries ---- */

const char *gw_push_vapid_key(const struct gw_push *p)
{
    return p->vapid ? gw_vapid_public(p->vapid) : NULL;
}

const char *gw_push_jid(const struct gw_push *p)
{
    return p->comp ? gw_component_domain(p->comp) : NULL;
}

bool gw_push_provider_enabled(const struct gw_push *p, const char *provider)
{
    switch (push_provider_parse(provider)) {
    case PROV_WEBHOOK:
        return p->webhook_url != NULL;
    case PROV_WEBPUSH:
        return p->vapid != NULL;
    case PROV_UNIFIEDPUSH:
        return true;
    default:
        return false;
    }
}

/* ---- source 1: stanzas for detached sessions ---- */

struct stanza_job {
    struct gw_push *p;
    char *account;
    char *acct_key;
    struct gw_push_event ev;
    uint64_t t_us;
    char **ids;
    size_t n, next;
};

static void stanza_next(struct stanza_job *j);

static void stanza_done(struct stanza_job *j)
{
    struct gw_push *p = j->p;
    for (size_t i = 0; i < j->n; i++)
        free(j->ids[i]);
    free(j->ids);
    gw_push_event_clear(&j->ev);
    free(j->account);
    free(j->acct_key);
    free(j);
    push_job_end(p);
}

static void on_stanza_reg(void *arg, int err, const struct gw_store_reply *r)
{
    struct stanza_job *j = arg;
    const char *id = j->ids[j->next - 1];
    struct reg reg;
    if (err) {
        (*j->p->m[PROV_UNKNOWN].dropped)++;
    } else if (push_reg_parse(r, id, &reg) != 0) {
        /* Expired: the account's set still names it. */
        gw_store_srem(j->p->core->store, j->acct_key, gw_store_cstr(id), NULL, NULL);
    } else {
        if (strcmp(reg.account, j->account) == 0 &&
            gw_push_wants(&j->ev, reg.groupchat, reg.rooms) && !j->p->closing)
            push_enqueue(j->p, &reg, &j->ev, j->t_us);
        push_reg_clear(&reg);
    }
    stanza_next(j);
}

static void stanza_next(struct stanza_job *j)
{
    if (j->next == j->n) {
        stanza_done(j);
        return;
    }
    char *k = push_key("reg", j->ids[j->next++]);
    if (gw_store_hgetall(j->p->core->store, k, on_stanza_reg, j) != 0) {
        free(k);
        stanza_done(j);
        return;
    }
    free(k);
}

static void on_stanza_members(void *arg, int err, const struct gw_store_reply *r)
{
    struct stanza_job *j = arg;
    if (err) {
        GW_WARN("push.dropped", "reason=store err=\"%s\"", gw_strerror(err));
        (*j->p->m[PROV_UNKNOWN].dropped)++;
        stanza_done(j);
        return;
    }
    j->ids = gw_calloc(r->n ? r->n : 1, sizeof *j->ids);
    for (size_t i = 0; i < r->n; i++)
        if (push_valid_id(r->items[i].ptr))
            j->ids[j->n++] = gw_strdup(r->items[i].ptr);
    stanza_next(j);
}

int gw_push_stanza(struct gw_push *p, const char *account, const struct gw_xml *stanza,
                   const char *nick)
{
    uint64_t t_us = push_now_us();
    struct gw_jid jid;
    if (!account || gw_jid_parse(account, &jid) != 0 || !jid.local || jid.resource) {
        if (account)
            gw_jid_free(&jid);
        return GW_EINVAL;
    }
    gw_jid_free(&jid);
    if (p->closing)
        return 0;
    struct gw_push_event ev;
    gw_push_classify(&p->policy, account, nick, stanza, &ev);
    if (ev.kind == GW_PUSH_NONE)
        return 0;
    struct stanza_job *j = gw_calloc(1, sizeof *j);
    j->p = p;
    j->account = gw_strdup(account);
    j->acct_key = push_key("acct", account);
    j->ev = ev;
    j->t_us = t_us;
    push_job_begin(p);
    if (gw_store_smembers(p->core->store, j->acct_key, on_stanza_members, j) != 0)
        stanza_done(j);
    return 1;
}
