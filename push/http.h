/* The push HTTP client: libcurl's multi-socket interface on the gateway's libuv loop.
 *
 * Requests never block the loop: curl's sockets are watched by uv_poll handles and its timeouts
 * by one uv_timer. The client enforces the endpoint policy: https only (http only for hosts the
 * allowlist names), no redirects followed, no proxies from the environment, verified TLS, and
 * no connection to an address that is not public unless the allowlist names the host. The
 * address is checked in curl's open-socket hook, on the address actually connected to, so a
 * DNS answer that changes between the check and the connection (rebinding) cannot get past. */
#ifndef GW_HTTP_H
#define GW_HTTP_H

#include "push/ssrf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct gw_http;

struct gw_http_opts {
    uint64_t timeout_ms;   /* each request, connect to last byte */
    unsigned max_inflight; /* requests at once; more are refused with GW_EAGAIN */
    const char *ca_file;   /* NULL or empty: the system's CAs */
    const char *allowlist; /* hosts exempt from https-only and public-only (ssrf.h) */
    const char *hosts;     /* when non-empty, the only hosts accepted */
    const char *user_agent;
};

/* An endpoint URL that passed gw_http_check_url(). */
struct gw_http_url {
    char origin[300]; /* scheme://host[:port], the VAPID audience */
    char host[256];
    unsigned port;
    bool exempt; /* named by the allowlist */
};

/* The outcome of a request. err 0: a response with status (and retry_after_s ≥ 0 when it
 * carried a usable Retry-After); otherwise GW_ETIMEDOUT, GW_ETLS (handshake or certificate),
 * GW_EAUTH when the endpoint was refused by policy (refused names why), GW_ECLOSED when the
 * client closed, or GW_EIO. start_us is when the request was handed to curl (uv_hrtime µs). */
struct gw_http_res {
    int err;
    long status;
    int64_t retry_after_s;
    const char *refused;
    const char *detail;
    uint64_t start_us;
};

typedef void (*gw_http_done)(void *arg, const struct gw_http_res *res);

struct gw_http_req {
    const char *url;
    const char *const *headers; /* "Name: value" */
    size_t nheaders;
    const void *body;
    size_t body_len;
};

/* Returns 0 and an owned client, or GW_ECONFIG (bad host lists, curl setup) with err. */
int gw_http_new(uv_loop_t *loop, const struct gw_http_opts *o, struct gw_http **out, char *err,
                size_t errlen);
/* Aborts every request (their callbacks run with GW_ECLOSED before this returns), then calls
 * done(arg) once curl's handles are released; the client is freed after done returns. */
void gw_http_close(struct gw_http *h, void (*done)(void *arg), void *arg);

/* Checks an endpoint against the policy before it is stored: a parseable absolute URL without
 * credentials, https (or http for an allowlisted host), a host allowed by push_hosts, and, for
 * an IP literal, a public address unless allowlisted. Returns 0 (and fills out, may be NULL) or
 * GW_EINVAL with the reason in why. Names are checked again at connect time. */
int gw_http_check_url(const struct gw_http *h, const char *url, struct gw_http_url *out, char *why,
                      size_t whylen);

/* POSTs req (everything copied). done(arg, res) runs later from the loop, exactly once,
 * unless this returns an error: GW_EAGAIN (max_inflight reached), GW_EINVAL (URL refused by
 * gw_http_check_url), GW_ECLOSED. */
int gw_http_post(struct gw_http *h, const struct gw_http_req *req, gw_http_done done, void *arg);
/* Requests in flight. */
size_t gw_http_inflight(const struct gw_http *h);

/* Parses a Retry-After value (RFC 9110 §10.2.3: delta-seconds or an HTTP-date, whose three
 * formats curl_getdate reads) against now_s. Returns 0 and the delay (≥ 0) in *delay_s, or
 * GW_EINVAL. */
int gw_http_retry_after(const char *v, size_t len, int64_t now_s, int64_t *delay_s);

#endif
