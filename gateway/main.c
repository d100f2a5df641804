/* mxgw entry point: parses the command line, loads the config and wires the modules onto one
 * libuv loop; SIGTERM drains every session before exit, SIGHUP reopens the log. */
#include "gateway/config.h"
#include "gateway/core.h"
#include "gateway/err.h"
#include "gateway/log.h"
#include "gateway/metrics.h"
#include "gateway/rand.h"
#include "gateway/session.h"
#include "gateway/store.h"
#include "push/push.h"
#include "web/bosh.h"
#include "web/demo.h"
#include "web/http.h"
#include "web/node_bus.h"
#include "web/ops.h"
#include "web/rest.h"
#include "web/rest_push.h"
#include "web/ws.h"
#include "web/ws_json.h"
#include "web/ws_xmpp.h"
#include "xmpp/component.h"
#include "xmpp/json.h"
#include "xmpp/upstream.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

struct app {
    struct gw_core core;
    struct gw_config cfg;
    struct gw_ws *ws;
    struct gw_ws_proto protos[2];
    struct gw_http *http; /* BOSH, the demo page (REST, health and metrics later) */
    struct gw_bosh *bosh;
    /* REST and operations (the component link and push are on the core) */
    struct gw_ops *ops;
    struct gw_rest *rest;
    uv_signal_t sigterm, sigint, sighup;
    uv_timer_t drain_timer;
    bool stopping;
    int exit_code;
};

static void usage(FILE *fp)
{
    fprintf(fp, "usage: mxgw -c FILE        run the gateway\n"
                "       mxgw --check-config -c FILE\n"
                "       mxgw --version\n"
                "       mxgw key create|list|revoke -c FILE …   (API keys; mxgw key for help)\n");
}

static void close_handle(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void store_closed(void *arg)
{
    struct app *a = arg;
    a->core.store = NULL;
}

/* Push gives its in-flight deliveries back to the store and the component link ends its
 * stream before the store closes. */
static void component_closed(void *arg)
{
    struct app *a = arg;
    a->core.component = NULL;
    if (a->core.store)
        gw_store_close(a->core.store, store_closed, a);
}

static void push_closed(void *arg)
{
    struct app *a = arg;
    a->core.push = NULL;
    if (a->core.component)
        gw_component_close(a->core.component, component_closed, a);
    else
        component_closed(a);
}

/* The component link and push, from the config; returns 0 or 1 (logged). */
static int start_push(struct app *a)
{
    char err[256];
    int rc = gw_component_new(&a->core, &a->core.component, err, sizeof err);
    if (rc && rc != GW_ENOTFOUND) {
        GW_ERROR("start.failed", "what=component detail=\"%s\"", err);
        return 1;
    }
    rc = gw_push_new(&a->core, a->core.component, &a->core.push, err, sizeof err);
    if (rc && rc != GW_ENOTFOUND) {
        GW_ERROR("start.failed", "what=push detail=\"%s\"", err);
        return 1;
    }
    if (a->core.component)
        gw_component_start(a->core.component);
    if (a->core.push)
        gw_push_start(a->core.push);
    return 0;
}

/* Final step of a shutdown: every session is gone (or the drain time ran out). Releasing the
 * listeners, the store and our handles lets uv_run() return. */
static void finish(struct app *a)
{
    if (a->stopping)
        return;
    a->stopping = true;
    GW_INFO("shutdown.finish", "sessions=%zu", gw_registry_count(a->core.reg));
    gw_ws_stop(a->ws); /* freed once the loop has run dry (gw_ws_free) */
    /* The node bus first (no handler runs after), then REST answers its calls; the component
     * link closes after push, below. */
    gw_node_bus_free(a->core.bus);
    a->core.bus = NULL;
    gw_rest_stop(a->rest);
    a->rest = NULL;
    gw_bosh_stop(a->bosh); /* before the HTTP server: it answers its held requests */
    a->bosh = NULL;
    gw_http_stop(a->http);
    a->http = NULL;
    gw_ops_stop(a->ops); /* after the HTTP server: no handler of its runs any more */
    a->ops = NULL;
    close_handle((uv_handle_t *)&a->drain_timer);
    close_handle((uv_handle_t *)&a->sigterm);
    close_handle((uv_handle_t *)&a->sigint);
    close_handle((uv_handle_t *)&a->sighup);
    if (a->core.push)
        gw_push_close(a->core.push, push_closed, a);
    else
        push_closed(a);
}

static void on_drain_timeout(uv_timer_t *t)
{
    struct app *a = t->data;
    GW_WARN("shutdown.timeout", "sessions=%zu", gw_registry_count(a->core.reg));
    finish(a);
}

static void on_drained(uv_timer_t *t)
{
    finish(t->data);
}

/* Called from inside a front end's close path (an lws callback, say): the teardown that
 * destroys the listeners must wait for the next loop iteration. */
static void on_registry_empty(void *arg)
{
    struct app *a = arg;
    if (a->core.draining && !a->stopping)
        uv_timer_start(&a->drain_timer, on_drained, 0, 0);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct app *a = h->data;
    if (signum == SIGHUP) {
        int rc = gw_log_reopen();
        GW_INFO("log.reopen", "result=%s", gw_strerror(rc));
        return;
    }
    if (a->core.draining) {
        GW_WARN("shutdown.forced", "signal=%d", signum);
        finish(a);
        return;
    }
    GW_INFO("shutdown.begin", "signal=%d sessions=%zu", signum, gw_registry_count(a->core.reg));
    a->core.draining = true;
    uv_timer_start(&a->drain_timer, on_drain_timeout, a->cfg.shutdown_timeout_ms, 0);
    if (gw_registry_count(a->core.reg) == 0)
        finish(a);
    else
        gw_registry_shutdown_all(a->core.reg, GW_CLOSE_SHUTDOWN);
}

static int make_node_id(struct app *a)
{
    if (a->cfg.node_id[0]) {
        snprintf(a->core.node_id, sizeof a->core.node_id, "%s", a->cfg.node_id);
        return 0;
    }
    char host[32] = "mxgw", rnd[9];
    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = '\0';
    int rc = gw_rand_hex(a->core.rand, 4, rnd, sizeof rnd);
    snprintf(a->core.node_id, sizeof a->core.node_id, "%s-%s", host, rnd);
    return rc;
}

/* REST and the operations endpoints, on the HTTP front end and the component link. */
static int start_rest(struct app *a)
{
    if (gw_ops_start(&a->core, a->http, a->core.component, &a->ops) != 0)
        return GW_EIO;
    if (a->cfg.rest &&
        gw_rest_start(&a->core, a->http, a->core.component, a->core.bus, &a->rest) != 0)
        return GW_EIO;
    if (a->rest && a->core.push)
        gw_rest_push_attach(a->rest, &a->core);
    return 0;
}

static int run(struct app *a)
{
    uv_loop_t loop;
    char err[256];
    int rc = uv_loop_init(&loop);
    if (rc)
        return 1;
    a->core.loop = &loop;
    a->core.cfg = &a->cfg;
    a->core.metrics = gw_metrics_new();
    a->core.json_writers = gw_json_writers_new();
    if (gw_rand_new(&a->core.rand) != 0 || make_node_id(a) != 0) {
        GW_ERROR("start.failed", "what=rng");
        return 1;
    }
    if (gw_upstream_global_init(&a->core, err, sizeof err) != 0) {
        GW_ERROR("start.failed", "what=upstream_tls detail=\"%s\"", err);
        return 1;
    }
    if (gw_store_open(&loop, a->cfg.redis, a->cfg.redis_timeout_ms, &a->core.store) != 0) {
        GW_ERROR("start.failed", "what=store");
        return 1;
    }
    if (!a->cfg.redis[0])
        GW_WARN("store.memory",
                "detail=\"in-process store: single node, state lost on restart; set redis= "
                "for production\"");
    gw_store_set_metrics(a->core.store, a->core.metrics);
    a->core.bus = gw_node_bus_new(&a->core); /* before the modules that register on it */
    a->core.reg = gw_registry_new(&a->core);
    gw_registry_on_empty(a->core.reg, on_registry_empty, a);

    uv_timer_init(&loop, &a->drain_timer);
    a->drain_timer.data = a;
    uv_signal_t *sigs[] = {&a->sigterm, &a->sigint, &a->sighup};
    int nums[] = {SIGTERM, SIGINT, SIGHUP};
    for (int i = 0; i < 3; i++) {
        uv_signal_init(&loop, sigs[i]);
        sigs[i]->data = a;
        uv_signal_start(sigs[i], on_signal, nums[i]);
    }
    signal(SIGPIPE, SIG_IGN);

    gw_ws_xmpp_proto(&a->core, &a->protos[0]);
    gw_ws_json_proto(&a->core, &a->protos[1]);
    if (start_push(a) != 0 || gw_ws_start(&a->core, a->protos, 2, &a->ws) != 0 ||
        gw_http_start(&a->core, &a->http) != 0 || gw_bosh_start(&a->core, a->http, &a->bosh) != 0 ||
        gw_demo_start(&a->core, a->http) != 0 || start_rest(a) != 0) {
        a->exit_code = 1;
        finish(a);
    } else {
        GW_INFO("start", "version=%s node=%s store=%s upstream=%s:%u", MXGW_VERSION,
                a->core.node_id, gw_store_backend(a->core.store), a->cfg.upstream.host,
                a->cfg.upstream.port);
    }
    uv_run(&loop, UV_RUN_DEFAULT);

    gw_ws_free(a->ws);
    gw_ws_json_proto_free(&a->protos[1]);
    gw_ws_xmpp_proto_free(&a->protos[0]);
    gw_registry_free(a->core.reg);
    gw_upstream_global_free(&a->core);
    gw_rand_free(a->core.rand);
    gw_metrics_free(a->core.metrics);
    gw_json_writers_free(a->core.json_writers);
    if (uv_loop_close(&loop) != 0)
        GW_WARN("shutdown.handles_left", "%s", "");
    GW_INFO("stop", "exit=%d", a->exit_code);
    return a->exit_code;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "key") == 0)
        return gw_rest_key_command(argc - 1, argv + 1);
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"check-config", no_argument, NULL, 'k'},
                                         {"version", no_argument, NULL, 'V'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *path = NULL;
    bool check = false;
    int ch;
    while ((ch = getopt_long(argc, argv, "c:hV", opts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            path = optarg;
            break;
        case 'k':
            check = true;
            break;
        case 'V':
            printf("mxgw %s\n", MXGW_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!path || optind != argc) {
        usage(stderr);
        return 2;
    }
    static struct app a; /* large; zeroed; lives for the whole run */
    char err[512];
    if (gw_config_load(&a.cfg, path, err, sizeof err) != 0) {
        fprintf(stderr, "mxgw: %s\n", err);
        return 2;
    }
    if (check) {
        printf("%s: ok\n", path);
        return 0;
    }
    if (gw_log_open(a.cfg.log_file, a.cfg.log_level) != 0) {
        fprintf(stderr, "mxgw: %s: cannot open log file\n", a.cfg.log_file);
        return 2;
    }
    int rc = run(&a);
    gw_log_close();
    return rc;
}
