/* Health, readiness, metrics, and the process-wide series.
 *
 * Readiness (GET /readyz) is 200 when all of these hold, else 503 listing the failed ones:
 *   - not draining (no SIGTERM received);
 *   - the store is available (Redis: connected; the in-process store always is);
 *   - the upstream XMPP server answered the last TCP connect probe to `upstream` (one every
 *     ready_probe_interval, each bounded by upstream_connect_timeout; not ready until the
 *     first probe succeeds; ready_probe_interval = 0s turns the probe off).
 * The component link is reported but not required: a second gateway configured as the same
 * component is refused by the server while the first holds the link (a standby), and its
 * client traffic is as good as the first's.
 *
 * Event-loop lag: a timer asks to run every LAG_MS; how late it actually runs (measured on the
 * monotonic clock) is what every other callback waited behind the busy loop. */
#include "web/ops.h"

#include "gateway/err.h"
#include "gateway/log.h"
#include "gateway/mem.h"
#include "gateway/metrics.h"
#include "gateway/session.h"
#include "gateway/store.h"
#include "xmpp/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LAG_MS 250

struct probe {
    uv_tcp_t tcp;
    uv_connect_t req;
    struct gw_ops *ops;
    bool done;
};

struct session_gauge {
    struct gw_core *core;
    enum gw_transport t;
    enum gw_session_state st;
};

struct gw_ops {
    struct gw_core *core;
    struct gw_component *comp;
    uv_timer_t lag;
    uv_timer_t probe_timer; /* the next probe, then the probe's deadline */
    struct probe *probe;    /* in flight, or NULL */
    unsigned handles;
    bool stopping;
    bool upstream_ok;
    bool probed;
    uint64_t lag_expected_ns;
    struct gw_histogram *m_lag;
    uint64_t *m_probes[2];
    int64_t *m_ready;
    struct session_gauge gauges[GW_TRANSPORT_COUNT][GW_SESSION_STATE_COUNT];
};

/* ---- health, readiness, metrics ---- */

static void on_healthz(void *arg, struct gw_http_req *req)
{
    (void)arg;
    gw_http_respond(req, 200, "application/json", "{\"status\":\"ok\"}\n", 16);
}

static bool store_ok(const struct gw_ops *o)
{
    return o->core->store && gw_store_available(o->core->store);
}

static bool upstream_ok(const struct gw_ops *o)
{
    return o->core->cfg->ready_probe_interval_ms == 0 || (o->probed && o->upstream_ok);
}

static void on_readyz(void *arg, struct gw_http_req *req)
{
    struct gw_ops *o = arg;
    struct gw_json_out *w = gw_json_out_new(o->core->json_writers);
    bool ready = !o->core->draining && store_ok(o) && upstream_ok(o);
    *o->m_ready = ready;
    gw_json_open(w);
    gw_json_key(w, "ready");
    gw_json_bool(w, ready);
    gw_json_key(w, "reasons");
    gw_json_open_array(w);
    if (o->core->draining)
        gw_json_cstr(w, "draining");
    if (!store_ok(o))
        gw_json_cstr(w, "store unavailable");
    if (!upstream_ok(o))
        gw_json_cstr(w, o->probed ? "upstream unreachable" : "upstream not probed yet");
    gw_json_close_array(w);
    gw_json_kv(w, "store", o->core->store ? gw_store_backend(o->core->store) : "none");
    gw_json_kv(w, "component", !o->comp ? "off" : gw_component_up(o->comp) ? "up" : "down");
    gw_json_kv(w, "node", o->core->node_id);
    gw_json_close(w);
    size_t len;
    const char *text = gw_json_text(w, &len);
    gw_http_respond(req, ready ? 200 : 503, "application/json", text, len);
    gw_json_out_free(w);
}

static void on_metrics(void *arg, struct gw_http_req *req)
{
    struct gw_ops *o = arg;
    *o->m_ready = !o->core->draining && store_ok(o) && upstream_ok(o);
    size_t len;
    char *text = gw_metrics_render(o->core->metrics, &len);
    gw_http_respond(req, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
    free(text);
}

/* ---- the upstream probe ---- */

static void schedule_probe(struct gw_ops *o);

static void probe_closed(uv_handle_t *h)
{
    struct probe *p = h->data;
    struct gw_ops *o = p->ops;
    free(p);
    o->handles--;
    if (o->stopping && o->handles == 0)
        free(o);
}

static void probe_finish(struct gw_ops *o, bool ok, const char *why)
{
    struct probe *p = o->probe;
    if (!p)
        return;
    o->probe = NULL;
    p->done = true;
    if (ok != o->upstream_ok || !o->probed)
        gw_log(ok ? GW_LOG_INFO : GW_LOG_WARN, "ready.upstream", "reachable=%s detail=\"%s\"",
               ok ? "yes" : "no", why);
    (*o->m_probes[ok ? 0 : 1])++;
    o->upstream_ok = ok;
    o->probed = true;
    uv_close((uv_handle_t *)&p->tcp, probe_closed);
    if (!o->stopping)
        schedule_probe(o);
}

static void on_probe_connect(uv_connect_t *req, int status)
{
    struct probe *p = req->data;
    if (p->done) /* timed out already */
        return;
    probe_finish(p->ops, status == 0, status == 0 ? "connected" : uv_strerror(status));
}

static void on_probe_timer(uv_timer_t *t)
{
    struct gw_ops *o = t->data;
    if (o->probe) {
        probe_finish(o, false, "connect timed out");
        return;
    }
    const struct gw_hostport *hp = &o->core->cfg->upstream;
    struct sockaddr_storage ss;
    if (uv_ip4_addr(hp->host, hp->port, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(hp->host, hp->port, (struct sockaddr_in6 *)&ss) != 0) {
        /* A host name: the c2s streams resolve it themselves; the probe only takes literals. */
        o->probed = o->upstream_ok = true;
        return;
    }
    struct probe *p = gw_calloc(1, sizeof *p);
    p->ops = o;
    uv_tcp_init(o->core->loop, &p->tcp);
    p->tcp.data = p;
    p->req.data = p;
    o->handles++;
    o->probe = p;
    int rc = uv_tcp_connect(&p->req, &p->tcp, (struct sockaddr *)&ss, on_probe_connect);
    if (rc) {
        probe_finish(o, false, uv_strerror(rc));
        return;
    }
    uv_timer_start(&o->probe_timer, on_probe_timer, o->core->cfg->upstream_connect_timeout_ms, 0);
}

static void schedule_probe(struct gw_ops *o)
{
    uint64_t every = o->core->cfg->ready_probe_interval_ms;
    if (every)
        uv_timer_start(&o->probe_timer, on_probe_timer, o->probed ? every : 0, 0);
}

/* ---- loop lag ---- */

static void on_lag(uv_timer_t *t)
{
    struct gw_ops *o = t->data;
    uint64_t now = uv_hrtime();
    double late = now > o->lag_expected_ns ? (double)(now - o->lag_expected_ns) / 1e9 : 0;
    gw_histogram_observe(o->m_lag, late);
    o->lag_expected_ns = now + (uint64_t)LAG_MS * 1000000;
    uv_timer_start(&o->lag, on_lag, LAG_MS, 0);
}

/* ---- series ---- */

static double session_count(void *arg)
{
    struct session_gauge *g = arg;
    return (double)gw_registry_count_by(g->core->reg, g->t, g->st);
}

static void register_series(struct gw_ops *o)
{
    struct gw_metrics *m = o->core->metrics;
    for (int t = 0; t < GW_TRANSPORT_COUNT; t++)
        for (int st = 0; st < GW_SESSION_STATE_COUNT; st++) {
            if (st == GW_SESSION_CLOSED)
                continue; /* closed sessions leave the registry at once */
            struct session_gauge *g = &o->gauges[t][st];
            *g = (struct session_gauge){o->core, (enum gw_transport)t, (enum gw_session_state)st};
            char labels[96];
            snprintf(labels, sizeof labels, "transport=\"%s\",state=\"%s\"",
                     gw_transport_name(g->t), gw_session_state_name(g->st));
            gw_metrics_gauge_fn(m, "mxgw_sessions", "Sessions on this node, by transport and state",
                                labels, session_count, g);
        }
    /* finest around the millisecond: a timer's lag is the wait a message arriving at that
     * moment has before the loop reads it, which mxgw_forward_seconds does not include */
    static const double lag_bounds[] = {0.0005, 0.001, 0.002, 0.003, 0.005, 0.01, 0.025,
                                        0.05,   0.1,   0.25,  0.5,   1,     5};
    o->m_lag = gw_metrics_histogram(m, "mxgw_loop_lag_seconds",
                                    "How late a timer due every 250 ms runs: the event loop's lag",
                                    NULL, lag_bounds, sizeof lag_bounds / sizeof lag_bounds[0]);
    o->m_probes[0] =
        gw_metrics_counter(m, "mxgw_upstream_probes_total",
                           "Readiness probes of the upstream c2s port, by result", "result=\"ok\"");
    o->m_probes[1] = gw_metrics_counter(m, "mxgw_upstream_probes_total",
                                        "Readiness probes of the upstream c2s port, by result",
                                        "result=\"failed\"");
    o->m_ready = gw_metrics_gauge(m, "mxgw_ready", "1 when /readyz answers 200", NULL);
}

/* ---- module ---- */

int gw_ops_start(struct gw_core *core, struct gw_http *http, struct gw_component *comp,
                 struct gw_ops **out)
{
    struct gw_ops *o = gw_calloc(1, sizeof *o);
    o->core = core;
    o->comp = comp;
    register_series(o);
    struct gw_http_route routes[] = {
        {.path = "/healthz", .name = "healthz", .methods = GW_HTTP_GET, .handler = on_healthz},
        {.path = "/readyz", .name = "readyz", .methods = GW_HTTP_GET, .handler = on_readyz},
        {.path = "/metrics", .name = "metrics", .methods = GW_HTTP_GET, .handler = on_metrics},
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        routes[i].arg = o;
        int rc = gw_http_route_add(http, &routes[i]);
        if (rc) {
            GW_ERROR("ops.start_failed", "path=%s err=\"%s\"", routes[i].path, gw_strerror(rc));
            free(o);
            return rc;
        }
    }
    uv_timer_init(core->loop, &o->lag);
    o->lag.data = o;
    uv_timer_init(core->loop, &o->probe_timer);
    o->probe_timer.data = o;
    o->handles = 2;
    o->lag_expected_ns = uv_hrtime() + (uint64_t)LAG_MS * 1000000;
    uv_timer_start(&o->lag, on_lag, LAG_MS, 0);
    schedule_probe(o);
    *out = o;
    return 0;
}

static void timer_closed(uv_handle_t *h)
{
    struct gw_ops *o = h->data;
    if (--o->handles == 0)
        free(o);
}

void gw_ops_stop(struct gw_ops *o)
{
    if (!o || o->stopping)
        return;
    o->stopping = true;
    o->comp = NULL;
    if (o->probe)
        probe_finish(o, false, "stopping");
    uv_close((uv_handle_t *)&o->lag, timer_closed);
    uv_close((uv_handle_t *)&o->probe_timer, timer_closed);
}
