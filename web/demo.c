/* The demo chat page: static assets compiled in by cmake/Embed.cmake, and a small config.json
 * telling the page where BOSH and WebSocket are. */
#include "web/demo.h"

#include "gateway/err.h"
#include "gateway/log.h"
#include "xmpp/xml.h"

#include <stdio.h>
#include <string.h>

#ifdef MXGW_DEMO_ASSETS
extern const unsigned char gw_asset_index_html[], gw_asset_app_js[], gw_asset_style_css[],
    gw_asset_strophe_js[];
extern const size_t gw_asset_index_html_len, gw_asset_app_js_len, gw_asset_style_css_len,
    gw_asset_strophe_js_len;
#endif

struct asset {
    const char *path;
    const char *type;
    const unsigned char *data;
    const size_t *len;
};

#ifdef MXGW_DEMO_ASSETS
static const struct asset assets[] = {
    {"/", "text/html; charset=utf-8", gw_asset_index_html, &gw_asset_index_html_len},
    {"/demo/app.js", "text/javascript; charset=utf-8", gw_asset_app_js, &gw_asset_app_js_len},
    {"/demo/style.css", "text/css; charset=utf-8", gw_asset_style_css, &gw_asset_style_css_len},
    {"/demo/strophe.umd.min.js", "text/javascript; charset=utf-8", gw_asset_strophe_js,
     &gw_asset_strophe_js_len},
};
#endif

/* The page may load only what mxgw serves; it may talk to BOSH here and to the WebSocket
 * listener on its own port. */
#define CSP                                                                                        \
    "default-src 'self'; connect-src 'self' ws: wss:; script-src 'self'; style-src 'self'; "       \
    "img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

static void serve_asset(struct gw_http_req *req, const struct asset *a)
{
    gw_http_add_header(req, "Content-Security-Policy", CSP);
    gw_http_add_header(req, "Referrer-Policy", "no-referrer");
    gw_http_add_header(req, "Cache-Control", "no-cache");
    gw_http_respond(req, 200, a->type, a->data, *a->len);
}

/* The host the browser used, without port, when it is a plain host name or address. */
static void request_host(struct gw_http_req *req, char *out, size_t n, const char *fallback)
{
    const char *host = gw_http_req_header(req, "Host");
    snprintf(out, n, "%s", fallback);
    if (!host)
        return;
    size_t len = host[0] == '[' ? strcspn(host, "]") + 1 : strcspn(host, ":");
    if (len == 0 || len >= n)
        return;
    for (size_t i = 0; i < len; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]", host[i]))
            return;
    memcpy(out, host, len);
    out[len] = '\0';
}

static void serve_config(struct gw_core *core, struct gw_http_req *req)
{
    const struct gw_config *cfg = core->cfg;
    char host[sizeof cfg->ws_listen.host];
    request_host(req, host, sizeof host, cfg->ws_listen.host);
    struct gw_buf out;
    gw_buf_init(&out, 4096);
    /* Paths come from the configuration; escape them as JSON strings all the same. */
    gw_buf_puts(&out, "{\"bosh\":\"");
    for (const char *p = cfg->bosh_path; *p; p++)
        gw_buf_printf(&out, (*p == '"' || *p == '\\') ? "\\%c" : "%c", *p);
    gw_buf_printf(&out, "\",\"websocket\":\"ws://%s:%u", host, cfg->ws_listen.port);
    for (const char *p = cfg->ws_path; *p; p++)
        gw_buf_printf(&out, (*p == '"' || *p == '\\') ? "\\%c" : "%c", *p);
    gw_buf_puts(&out, "\"}\n");
    gw_http_respond(req, 200, "application/json", out.data, out.len);
    gw_buf_free(&out);
}

static void on_request(void *arg, struct gw_http_req *req)
{
    struct gw_core *core = arg;
    const char *path = gw_http_req_path(req);
    if (strcmp(path, "/demo/config.json") == 0) {
        serve_config(core, req);
        return;
    }
#ifdef MXGW_DEMO_ASSETS
    for (size_t i = 0; i < sizeof assets / sizeof assets[0]; i++)
        if (strcmp(path, assets[i].path) == 0) {
            serve_asset(req, &assets[i]);
            return;
        }
#else
    (void)serve_asset;
    if (strcmp(path, "/") == 0) {
        gw_http_respond_text(req, 200,
                             "mxgw: this build has no demo page (configured with -DMXGW_DEMO=OFF)");
        return;
    }
#endif
    gw_http_respond_text(req, 404, "not found");
}

int gw_demo_start(struct gw_core *core, struct gw_http *http)
{
    struct gw_http_route root = {
        .path = "/", .name = "demo", .methods = GW_HTTP_GET, .handler = on_request, .arg = core};
    struct gw_http_route files = {.path = "/demo",
                                  .prefix = true,
                                  .name = "demo",
                                  .methods = GW_HTTP_GET,
                                  .handler = on_request,
                                  .arg = core};
    int rc = gw_http_route_add(http, &root);
    if (rc == 0)
        rc = gw_http_route_add(http, &files);
    if (rc != 0)
        GW_ERROR("demo.start_failed", "err=\"%s\"", gw_strerror(rc));
    return rc;
}
