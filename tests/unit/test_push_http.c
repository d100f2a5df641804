/* Tests for push/http.c: Retry-After parsing (delta-seconds and the three HTTP-date forms),
 * the endpoint URL policy, and real requests through libcurl on the loop against a small HTTP
 * server here: the status, a Retry-After, a redirect that is not followed, a capped body, a
 * deadline, the in-flight bound, and a name resolving to loopback refused at connect time
 * (the server sees no connection at all). */
#include "tests/unit/check.h"
#include "gateway/err.h"
#include "push/http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uv_loop_t loop;

/* ---- Retry-After ---- */

struct ra_case {
    const char *v;
    int want_rc;
    int64_t want;
};

static void test_retry_after(void)
{
    /* 1994-11-06 08:49:37 UTC, the example date of RFC 9110 §5.6.7 */
    const int64_t now = 784111777 - 100;
    const struct ra_case cases[] = {
        {"120", 0, 120},
        {" 7 ", 0, 7},
        {"0", 0, 0},
        {"Sun, 06 Nov 1994 08:49:37 GMT", 0, 100},
        {"Sunday, 06-Nov-94 08:49:37 GMT", 0, 100},
        {"Sun Nov  6 08:49:37 1994", 0, 100},
        {"Sun, 06 Nov 1994 08:48:37 GMT", 0, 40},
        {"Sat, 05 Nov 1994 08:49:37 GMT", 0, 0}, /* in the past: now */
        {"-5", GW_EINVAL, 0},
        {"1.5", GW_EINVAL, 0},
        {"12345678901", GW_EINVAL, 0},
        {"soon", GW_EINVAL, 0},
        {"", GW_EINVAL, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t d = -1;
        int rc = gw_http_retry_after(cases[i].v, strlen(cases[i].v), now, &d);
        CHECK(rc == cases[i].want_rc && (rc || d == cases[i].want),
              "Retry-After '%s': expected rc %d delay %lld, got rc %d delay %lld", cases[i].v,
              cases[i].want_rc, (long long)cases[i].want, rc, (long long)d);
    }
}

/* ---- URL policy ---- */

struct url_case {
    const char *url;
    bool ok;
    const char *origin;
};

static void test_urls(struct gw_http *h, unsigned port)
{
    char exempt_http[64], other_port[64], exempt_ip[64], exempt_origin[64];
    snprintf(exempt_http, sizeof exempt_http, "http://localhost:%u/x", port);
    snprintf(exempt_origin, sizeof exempt_origin, "http://localhost:%u", port);
    snprintf(other_port, sizeof other_port, "http://localhost:%u/x", port + 1);
    snprintf(exempt_ip, sizeof exempt_ip, "https://127.0.0.1:%u/x", port);
    const struct url_case cases[] = {
        {"https://fcm.googleapis.com/fcm/send/abc", true, "https://fcm.googleapis.com"},
        {"https://push.example.net:8443/x", true, "https://push.example.net:8443"},
        {"HTTPS://Push.Example.NET/x", true, "https://push.example.net"},
        {"https://[2606:4700::1111]/x", true, "https://[2606:4700::1111]"},
        {"http://push.example.net/x", false, NULL},
        {"ftp://push.example.net/x", false, NULL},
        {"https://user:pw@push.example.net/x", false, NULL},
        {"https://127.0.0.1/x", false, NULL},
        {"https://10.1.2.3/x", false, NULL},
        {"https://169.254.169.254/latest/meta-data", false, NULL},
        {"https://[::1]/x", false, NULL},
        {"https://[::ffff:127.0.0.1]/x", false, NULL},
        {"//push.example.net/x", false, NULL},
        {"not a url", false, NULL},
        /* the allowlist exempts localhost:PORT (http and loopback), not other ports or names */
        {exempt_http, true, exempt_origin},
        {other_port, false, NULL},
        {exempt_ip, false, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct gw_http_url u;
        char why[128] = "";
        int rc = gw_http_check_url(h, cases[i].url, &u, why, sizeof why);
        CHECK((rc == 0) == cases[i].ok, "%s: expected %s (%s)", cases[i].url,
              cases[i].ok ? "accepted" : "refused", why);
        if (rc == 0 && cases[i].origin)
            CHECK(strcmp(u.origin, cases[i].origin) == 0, "%s: expected origin %s, got %s",
                  cases[i].url, cases[i].origin, u.origin);
    }
    char longurl[2200] = "https://push.example.net/";
    memset(longurl + strlen(longurl), 'a', 2100);
    longurl[2150] = '\0';
    char why[128];
    CHECK(gw_http_check_url(h, longurl, NULL, why, sizeof why) == GW_EINVAL,
          "an over-long URL: expected refused");
}

/* ---- a tiny HTTP server ---- */

struct srv {
    uv_tcp_t listener;
    int connections, requests;
    char last_path[128];
};

static struct srv S;

struct peer {
    uv_tcp_t tcp;
    char buf[8192];
    size_t len;
    bool answered;
};

static void peer_closed(uv_handle_t *h)
{
    free(h->data);
}

static void on_written(uv_write_t *w, int status)
{
    (void)status;
    struct peer *p = w->data;
    free(w);
    uv_close((uv_handle_t *)&p->tcp, peer_closed);
}

/* text is a literal: it outlives the write. */
static void respond(struct peer *p, const char *text)
{
    uv_write_t *w = malloc(sizeof *w);
    w->data = p;
    uv_buf_t b = uv_buf_init((char *)text, (unsigned)strlen(text));
    uv_write(w, (uv_stream_t *)&p->tcp, &b, 1, on_written);
}

static void answer(struct peer *p)
{
    static char big[100 * 1024 + 256];
    sscanf(p->buf, "POST %127s", S.last_path);
    S.requests++;
    p->answered = true;
    if (strcmp(S.last_path, "/ok") == 0) {
        respond(p, "HTTP/1.1 201 Created\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    } else if (strcmp(S.last_path, "/slow") == 0) {
        return; /* never answers */
    } else if (strcmp(S.last_path, "/429") == 0) {
        respond(p, "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\nContent-Length: 0\r\n"
                   "Connection: close\r\n\r\n");
    } else if (strcmp(S.last_path, "/redirect") == 0) {
        respond(p, "HTTP/1.1 302 Found\r\nLocation: /ok\r\nContent-Length: 0\r\n"
                   "Connection: close\r\n\r\n");
    } else if (strcmp(S.last_path, "/big") == 0) {
        int n = snprintf(big, sizeof big,
                         "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n",
                         100 * 1024);
        memset(big + n, 'x', 100 * 1024);
        big[n + 100 * 1024] = '\0';
        uv_write_t *w = malloc(sizeof *w);
        w->data = p;
        uv_buf_t b = uv_buf_init(big, (unsigned)(n + 100 * 1024));
        uv_write(w, (uv_stream_t *)&p->tcp, &b, 1, on_written);
    } else {
        respond(p, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    }
}

static void peer_alloc(uv_handle_t *h, size_t n, uv_buf_t *b)
{
    (void)n;
    struct peer *p = h->data;
    *b = uv_buf_init(p->buf + p->len, (unsigned)(sizeof p->buf - 1 - p->len));
}

static void peer_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    (void)b;
    struct peer *p = s->data;
    if (n < 0) {
        if (!uv_is_closing((uv_handle_t *)s))
            uv_close((uv_handle_t *)s, peer_closed);
        return;
    }
    p->len += (size_t)n;
    p->buf[p->len] = '\0';
    char *end = strstr(p->buf, "\r\n\r\n");
    const char *cl = strstr(p->buf, "Content-Length: ");
    if (!p->answered && end && cl && p->len >= (size_t)(end + 4 - p->buf) + (size_t)atoi(cl + 16))
        answer(p);
}

static void srv_accept(uv_stream_t *l, int status)
{
    if (status < 0)
        return;
    struct peer *p = calloc(1, sizeof *p);
    uv_tcp_init(&loop, &p->tcp);
    p->tcp.data = p;
    uv_accept(l, (uv_stream_t *)&p->tcp);
    S.connections++;
    uv_read_start((uv_stream_t *)&p->tcp, peer_alloc, peer_read);
}

/* ---- requests ---- */

struct res {
    bool done;
    struct gw_http_res r;
    char refused[80];
};

static void on_done(void *arg, const struct gw_http_res *r)
{
    struct res *x = arg;
    x->done = true;
    x->r = *r;
    snprintf(x->refused, sizeof x->refused, "%s", r->refused ? r->refused : "");
    x->r.refused = NULL;
    x->r.detail = NULL;
}

static void tick(uv_timer_t *t)
{
    (void)t;
}

static void wait_done(struct res *x, uint64_t ms)
{
    uv_timer_t t;
    uv_timer_init(&loop, &t);
    uv_timer_start(&t, tick, 5, 5);
    uv_update_time(&loop);
    uint64_t until = uv_now(&loop) + ms;
    while (!x->done && uv_now(&loop) < until)
        uv_run(&loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
}

static int post(struct gw_http *h, const char *url, struct res *x)
{
    memset(x, 0, sizeof *x);
    const char *hdrs[] = {"Content-Type: application/json"};
    struct gw_http_req req = {url, hdrs, 1, "{}", 2};
    return gw_http_post(h, &req, on_done, x);
}

static void test_requests(struct gw_http *h, unsigned port)
{
    char url[128];
    struct res x;
    snprintf(url, sizeof url, "http://localhost:%u/ok", port);
    CHECK(post(h, url, &x) == 0, "post /ok: expected started");
    wait_done(&x, 5000);
    CHECK(x.done && x.r.err == 0 && x.r.status == 201 && x.r.start_us > 0,
          "/ok: expected 201, got err %d status %ld", x.r.err, x.r.status);

    snprintf(url, sizeof url, "http://localhost:%u/429", port);
    post(h, url, &x);
    wait_done(&x, 5000);
    CHECK(x.r.status == 429 && x.r.retry_after_s == 7,
          "/429: expected 429 with Retry-After 7, got %ld, %lld", x.r.status,
          (long long)x.r.retry_after_s);

    int before = S.requests;
    snprintf(url, sizeof url, "http://localhost:%u/redirect", port);
    post(h, url, &x);
    wait_done(&x, 5000);
    uv_run(&loop, UV_RUN_NOWAIT);
    CHECK(x.r.status == 302 && S.requests == before + 1,
          "/redirect: expected the 302 itself and no second request, got %ld and %d requests",
          x.r.status, S.requests - before);

    snprintf(url, sizeof url, "http://localhost:%u/big", port);
    post(h, url, &x);
    wait_done(&x, 5000);
    CHECK(x.r.err == 0 && x.r.status == 200, "/big: expected the status despite the body cap");

    snprintf(url, sizeof url, "http://localhost:%u/slow", port);
    post(h, url, &x);
    wait_done(&x, 5000);
    CHECK(x.done && x.r.err == GW_ETIMEDOUT, "/slow: expected GW_ETIMEDOUT, got %d", x.r.err);

    /* https to a name that resolves to loopback, not allowlisted on this port: refused before
     * any connection is made. */
    int conns = S.connections;
    snprintf(url, sizeof url, "https://localhost:%u/ok", port + 1);
    CHECK(post(h, url, &x) == 0, "https://localhost: expected it to pass the URL check");
    wait_done(&x, 5000);
    CHECK(x.done && x.r.err == GW_EAUTH && strstr(x.refused, "loopback"),
          "https://localhost: expected refused (loopback), got err %d '%s'", x.r.err, x.refused);
    CHECK(S.connections == conns, "refused: expected no connection at all");

    /* Refused synchronously: a URL the policy refuses; the in-flight bound. */
    CHECK(post(h, "http://example.com/x", &x) == GW_EINVAL, "http://example.com: expected EINVAL");
    struct res a, b, c;
    snprintf(url, sizeof url, "http://localhost:%u/slow", port);
    CHECK(post(h, url, &a) == 0 && post(h, url, &b) == 0, "expected two requests in flight");
    CHECK(post(h, url, &c) == GW_EAGAIN && gw_http_inflight(h) == 2,
          "a third: expected GW_EAGAIN (max_inflight 2)");
    wait_done(&a, 5000);
    wait_done(&b, 5000);
    CHECK(a.r.err == GW_ETIMEDOUT && b.r.err == GW_ETIMEDOUT, "expected both to time out");

    /* Close with a request in flight: its callback runs with GW_ECLOSED. */
    post(h, url, &a);
    gw_http_close(h, NULL, NULL);
    CHECK(a.done && a.r.err == GW_ECLOSED, "close: expected GW_ECLOSED, got %d", a.r.err);
}

int main(void)
{
    uv_loop_init(&loop);
    test_retry_after();

    uv_tcp_init(&loop, &S.listener);
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", 0, &sa);
    bool listening = uv_tcp_bind(&S.listener, (struct sockaddr *)&sa, 0) == 0 &&
                     uv_listen((uv_stream_t *)&S.listener, 16, srv_accept) == 0;
    CHECK(listening, "expected to listen on 127.0.0.1");
    struct sockaddr_in bound;
    int blen = sizeof bound;
    uv_tcp_getsockname(&S.listener, (struct sockaddr *)&bound, &blen);
    unsigned port = ntohs(bound.sin_port);
    char allow[64];
    snprintf(allow, sizeof allow, "localhost:%u", port);

    struct gw_http_opts o = {
        .timeout_ms = 300, .max_inflight = 2, .allowlist = allow, .user_agent = "mxgw-test"};
    struct gw_http *h;
    char err[128];
    CHECK(gw_http_new(&loop, &o, &h, err, sizeof err) == 0, "gw_http_new: %s", err);
    struct gw_http_opts bad = o;
    bad.allowlist = "host:0";
    struct gw_http *h2 = NULL;
    CHECK(gw_http_new(&loop, &bad, &h2, err, sizeof err) == GW_ECONFIG,
          "a bad allowlist: expected GW_ECONFIG");
    test_urls(h, port);
    if (listening)
        test_requests(h, port);
    else
        gw_http_close(h, NULL, NULL);

    uv_close((uv_handle_t *)&S.listener, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop) == 0, "expected every handle closed");
    return CHECK_DONE();
}
