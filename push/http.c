/* libcurl's multi-socket interface on libuv, with the push endpoint policy.
 *
 * curl tells us which sockets to watch (socket callback → one uv_poll_t per socket, closed when
 * curl removes the socket) and when to call it back (timer callback → one uv_timer_t); we call
 * curl_multi_socket_action() from those watchers only, never from inside a curl callback, and
 * collect finished transfers after each call. Each request is one easy handle carrying its own
 * copy of the URL, headers and body. Responses are not needed beyond the status and
 * Retry-After: bodies are discarded and both bodies and headers are capped, so an endpoint
 * cannot make a request last or grow beyond the deadline and the caps. */
#include "push/http.h"

#include "gateway/err.h"
#include "gateway/log.h"
#include "gateway/mem.h"

#include <ctype.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_BODY_BYTES   (64 * 1024)
#define MAX_HEADER_BYTES (32 * 1024)
#define MAX_URL          2048

struct call {
    struct call *prev, *next;
    struct gw_http *h;
    CURL *easy;
    struct curl_slist *headers;
    gw_http_done done;
    void *arg;
    bool exempt;
    const char *refused; /* static text: why the open-socket hook said no */
    size_t body_bytes, header_bytes;
    int64_t retry_after_s;
    uint64_t start_us;
    char errbuf[CURL_ERROR_SIZE];
};

struct sock {
    struct sock *prev, *next;
    uv_poll_t poll;
    curl_socket_t fd;
    struct gw_http *h;
};

struct gw_http {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    struct call *calls;
    size_t ncalls;
    struct sock *socks;
    unsigned max_inflight;
    uint64_t timeout_ms;
    char *ca_file;
    char *user_agent;
    struct gw_hostlist *allow, *hosts;
    unsigned handles; /* uv handles still open while closing */
    bool closing;
    void (*closed)(void *arg);
    void *closed_arg;
};

/* ---- Retry-After ---- */

int gw_http_retry_after(const char *v, size_t len, int64_t now_s, int64_t *delay_s)
{
    char buf[64];
    while (len > 0 && isspace((unsigned char)*v)) {
        v++;
        len--;
    }
    while (len > 0 && isspace((unsigned char)v[len - 1]))
        len--;
    if (len == 0 || len >= sizeof buf)
        return GW_EINVAL;
    memcpy(buf, v, len);
    buf[len] = '\0';
    bool digits = true;
    for (size_t i = 0; i < len; i++)
        digits = digits && isdigit((unsigned char)buf[i]);
    if (digits) {
        if (len > 10)
            return GW_EINVAL; /* beyond any sane delay; refuse rather than overflow */
        *delay_s = strtoll(buf, NULL, 10);
        return 0;
    }
    time_t t = curl_getdate(buf, NULL);
    if (t == -1)
        return GW_EINVAL;
    *delay_s = (int64_t)t > now_s ? (int64_t)t - now_s : 0;
    return 0;
}

/* ---- URL policy ---- */

int gw_http_check_url(const struct gw_http *h, const char *url, struct gw_http_url *out, char *why,
                      size_t whylen)
{
    struct gw_http_url tmp;
    if (!out)
        out = &tmp;
    memset(out, 0, sizeof *out);
    if (strlen(url) > MAX_URL) {
        snprintf(why, whylen, "endpoint longer than %d bytes", MAX_URL);
        return GW_EINVAL;
    }
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL, *user = NULL, *password = NULL;
    int rc = GW_EINVAL;
    if (curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        snprintf(why, whylen, "endpoint is not an absolute URL");
        goto done;
    }
    if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK ||
        curl_url_get(u, CURLUPART_PASSWORD, &password, 0) == CURLUE_OK) {
        snprintf(why, whylen, "endpoint must not carry credentials");
        goto done;
    }
    bool https = strcmp(scheme, "https") == 0;
    if (!https && strcmp(scheme, "http") != 0) {
        snprintf(why, whylen, "endpoint scheme must be https");
        goto done;
    }
    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT);
    out->port = port ? (unsigned)strtoul(port, NULL, 10) : (https ? 443 : 80);
    /* curl keeps brackets around an IPv6 host; lists and the classifier take it bare. */
    size_t hl = strlen(host);
    const char *bare = host;
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
        bare = host + 1;
        hl -= 2;
    }
    if (hl == 0 || hl >= sizeof out->host) {
        snprintf(why, whylen, "endpoint host is empty or too long");
        goto done;
    }
    memcpy(out->host, bare, hl);
    out->host[hl] = '\0';
    for (char *q = out->host; *q; q++)
        *q = (char)tolower((unsigned char)*q);
    out->exempt = gw_hostlist_match(h->allow, out->host, out->port);
    if (!gw_hostlist_empty(h->hosts) && !gw_hostlist_match(h->hosts, out->host, out->port) &&
        !out->exempt) {
        snprintf(why, whylen, "endpoint host is not one of push_hosts");
        goto done;
    }
    if (!https && !out->exempt) {
        snprintf(why, whylen, "http endpoints must be named by push_allowlist");
        goto done;
    }
    enum gw_addr_class cls;
    if (gw_addr_classify_text(out->host, &cls) && cls != GW_ADDR_PUBLIC && !out->exempt) {
        snprintf(why, whylen, "endpoint address is %s", gw_addr_class_name(cls));
        goto done;
    }
    bool v6 = strchr(out->host, ':') != NULL;
    int n = snprintf(out->origin, sizeof out->origin, "%s://%s%s%s", scheme, v6 ? "[" : "",
                     out->host, v6 ? "]" : "");
    if (out->port != (https ? 443u : 80u) && n > 0 && (size_t)n < sizeof out->origin)
        snprintf(out->origin + n, sizeof out->origin - (size_t)n, ":%u", out->port);
    rc = 0;
done:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(user);
    curl_free(password);
    curl_url_cleanup(u);
    return rc;
}

/* ---- curl callbacks ---- */

/* The address check: runs for every connection curl opens, with the address it will use. */
static curl_socket_t open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct call *k = clientp;
    if (purpose != CURLSOCKTYPE_IPCXN) {
        k->refused = "not a TCP connection";
        return CURL_SOCKET_BAD;
    }
    enum gw_addr_class cls = gw_addr_classify(&a->addr);
    if (cls != GW_ADDR_PUBLIC && !k->exempt) {
        static const char *const why[] = {
            "public", "resolves to a loopback address", "resolves to a private address",
            "resolves to a link-local address", "resolves to a reserved address"};
        k->refused = why[cls];
        return CURL_SOCKET_BAD;
    }
    return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    struct call *k = arg;
    (void)p;
    k->body_bytes += size * n;
    return k->body_bytes > MAX_BODY_BYTES ? 0 : size * n; /* 0 aborts the transfer */
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    struct call *k = arg;
    size_t len = size * n;
    k->header_bytes += len;
    if (k->header_bytes > MAX_HEADER_BYTES)
        return 0;
    if (len > 12 && strncasecmp(p, "retry-after:", 12) == 0) {
        int64_t delay;
        if (gw_http_retry_after(p + 12, len - 12, (int64_t)time(NULL), &delay) == 0)
            k->retry_after_s = delay;
    } else if (len > 5 && strncasecmp(p, "HTTP/", 5) == 0) {
        k->retry_after_s = -1; /* a new response (after 100 Continue): forget the last one's */
    }
    return len;
}

static void check_done(struct gw_http *h);

/* One uv handle fewer; the last one after gw_http_close() frees the client. */
static void release(struct gw_http *h)
{
    h->handles--;
    if (h->closing && h->handles == 0) {
        void (*done)(void *) = h->closed;
        void *arg = h->closed_arg;
        free(h);
        if (done)
            done(arg);
    }
}

static void sock_closed(uv_handle_t *hd)
{
    struct sock *s = hd->data;
    struct gw_http *h = s->h;
    free(s);
    release(h);
}

static void close_sock(struct gw_http *h, struct sock *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        h->socks = s->next;
    if (s->next)
        s->next->prev = s->prev;
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *)&s->poll, sock_closed);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    struct sock *s = p->data;
    struct gw_http *h = s->h;
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    int running;
    curl_multi_socket_action(h->multi, s->fd, flags, &running);
    check_done(h);
}

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    struct gw_http *h = userp;
    struct sock *s = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            close_sock(h, s);
            curl_multi_assign(h->multi, fd, NULL);
        }
        return 0;
    }
    if (!s) {
        s = gw_calloc(1, sizeof *s);
        s->fd = fd;
        s->h = h;
        if (uv_poll_init_socket(h->loop, &s->poll, fd) != 0) {
            free(s);
            return -1;
        }
        s->poll.data = s;
        h->handles++;
        s->next = h->socks;
        if (h->socks)
            h->socks->prev = s;
        h->socks = s;
        curl_multi_assign(h->multi, fd, s);
    }
    int ev = (what & CURL_POLL_IN ? UV_READABLE : 0) | (what & CURL_POLL_OUT ? UV_WRITABLE : 0);
    uv_poll_start(&s->poll, ev, on_poll);
    return 0;
}

static void on_timeout(uv_timer_t *t)
{
    struct gw_http *h = t->data;
    int running;
    curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(h);
}

static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    struct gw_http *h = userp;
    if (timeout_ms < 0)
        uv_timer_stop(&h->timer);
    else
        uv_timer_start(&h->timer, on_timeout, (uint64_t)timeout_ms, 0);
    return 0;
}

/* ---- requests ---- */

static void unlink_call(struct gw_http *h, struct call *k)
{
    if (k->prev)
        k->prev->next = k->next;
    else
        h->calls = k->next;
    if (k->next)
        k->next->prev = k->prev;
    h->ncalls--;
}

static void free_call(struct call *k)
{
    curl_easy_cleanup(k->easy);
    curl_slist_free_all(k->headers);
    free(k);
}

static void finish(struct gw_http *h, struct call *k, CURLcode code)
{
    struct gw_http_res res = {.retry_after_s = -1, .start_us = k->start_us};
    long status = 0;
    curl_easy_getinfo(k->easy, CURLINFO_RESPONSE_CODE, &status);
    if (status > 0 && (code == CURLE_OK || code == CURLE_WRITE_ERROR)) {
        res.status = status; /* a capped body still has its status */
        res.retry_after_s = k->retry_after_s;
    } else if (k->refused) {
        res.err = GW_EAUTH;
        res.refused = k->refused;
    } else if (code == CURLE_OPERATION_TIMEDOUT) {
        res.err = GW_ETIMEDOUT;
    } else if (code == CURLE_SSL_CONNECT_ERROR || code == CURLE_PEER_FAILED_VERIFICATION ||
               code == CURLE_SSL_CACERT_BADFILE || code == CURLE_SSL_CERTPROBLEM) {
        res.err = GW_ETLS;
    } else if (code == CURLE_UNSUPPORTED_PROTOCOL) {
        res.err = GW_EAUTH;
        res.refused = "scheme not allowed";
    } else {
        res.err = GW_EIO;
    }
    res.detail = k->errbuf[0] ? k->errbuf : curl_easy_strerror(code);
    curl_multi_remove_handle(h->multi, k->easy);
    unlink_call(h, k);
    k->done(k->arg, &res);
    free_call(k);
}

static void check_done(struct gw_http *h)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(h->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct call *k = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&k);
        finish(h, k, m->data.result);
    }
}

int gw_http_post(struct gw_http *h, const struct gw_http_req *req, gw_http_done done, void *arg)
{
    if (h->closing)
        return GW_ECLOSED;
    if (h->ncalls >= h->max_inflight)
        return GW_EAGAIN;
    struct gw_http_url u;
    char why[128];
    if (gw_http_check_url(h, req->url, &u, why, sizeof why) != 0)
        return GW_EINVAL;
    struct call *k = gw_calloc(1, sizeof *k);
    k->h = h;
    k->done = done;
    k->arg = arg;
    k->exempt = u.exempt;
    k->retry_after_s = -1;
    k->easy = curl_easy_init();
    if (!k->easy) {
        free(k);
        return GW_EIO;
    }
    for (size_t i = 0; i < req->nheaders; i++)
        k->headers = curl_slist_append(k->headers, req->headers[i]);
    k->headers = curl_slist_append(k->headers, "Expect:"); /* no 100-continue round trip */
    CURL *e = k->easy;
    curl_easy_setopt(e, CURLOPT_URL, req->url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, u.exempt ? "http,https" : "https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)h->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)h->timeout_ms);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    if (h->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, h->ca_file);
    curl_easy_setopt(e, CURLOPT_USERAGENT, h->user_agent);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, k->headers);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, req->body_len ? req->body : "");
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, k);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, k);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, k);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, k->errbuf);
    curl_easy_setopt(e, CURLOPT_PRIVATE, k);
    k->next = h->calls;
    if (h->calls)
        h->calls->prev = k;
    h->calls = k;
    h->ncalls++;
    k->start_us = uv_hrtime() / 1000;
    if (curl_multi_add_handle(h->multi, e) != CURLM_OK) {
        unlink_call(h, k);
        free_call(k);
        return GW_EIO;
    }
    return 0;
}

size_t gw_http_inflight(const struct gw_http *h)
{
    return h->ncalls;
}

/* ---- lifecycle ---- */

int gw_http_new(uv_loop_t *loop, const struct gw_http_opts *o, struct gw_http **out, char *err,
                size_t errlen)
{
    struct gw_hostlist *allow = NULL, *hosts = NULL;
    if (gw_hostlist_parse(o->allowlist ? o->allowlist : "", &allow, err, errlen) != 0 ||
        gw_hostlist_parse(o->hosts ? o->hosts : "", &hosts, err, errlen) != 0) {
        gw_hostlist_free(allow);
        return GW_ECONFIG;
    }
    /* libcurl counts these calls itself: each client pairs one with curl_global_cleanup(), and
     * only the first and the last do anything */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(err, errlen, "curl_global_init failed");
        gw_hostlist_free(allow);
        gw_hostlist_free(hosts);
        return GW_ECONFIG;
    }
    struct gw_http *h = gw_calloc(1, sizeof *h);
    h->loop = loop;
    h->allow = allow;
    h->hosts = hosts;
    h->max_inflight = o->max_inflight ? o->max_inflight : 1;
    h->timeout_ms = o->timeout_ms;
    h->ca_file = o->ca_file && *o->ca_file ? gw_strdup(o->ca_file) : NULL;
    h->user_agent = gw_strdup(o->user_agent ? o->user_agent : "mxgw");
    h->multi = curl_multi_init();
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)h->max_inflight);
    curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, (long)h->max_inflight);
    uv_timer_init(loop, &h->timer);
    h->timer.data = h;
    h->handles = 1;
    *out = h;
    return 0;
}

static void timer_closed(uv_handle_t *hd)
{
    release(hd->data);
}

void gw_http_close(struct gw_http *h, void (*done)(void *arg), void *arg)
{
    if (h->closing)
        return;
    h->closing = true;
    h->closed = done;
    h->closed_arg = arg;
    while (h->calls) {
        struct call *k = h->calls;
        struct gw_http_res res = {.err = GW_ECLOSED, .retry_after_s = -1, .detail = "closing"};
        curl_multi_remove_handle(h->multi, k->easy);
        unlink_call(h, k);
        k->done(k->arg, &res);
        free_call(k);
    }
    curl_multi_cleanup(h->multi); /* closes cached connections, removing their sockets */
    h->multi = NULL;
    while (h->socks) /* any socket curl did not remove itself */
        close_sock(h, h->socks);
    uv_timer_stop(&h->timer);
    gw_hostlist_free(h->allow);
    gw_hostlist_free(h->hosts);
    free(h->ca_file);
    free(h->user_agent);
    h->allow = h->hosts = NULL;
    curl_global_cleanup();
    uv_close((uv_handle_t *)&h->timer, timer_closed);
}
