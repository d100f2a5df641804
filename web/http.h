/* HTTP front end: libmicrohttpd daemons on the gateway's libuv loop (no threads of their own),
 * with a small router that every HTTP feature (BOSH, the demo page, REST, health, metrics)
 * registers on.
 *
 * Requests reach a handler only after the layer has checked them: the path is canonical
 * (gw_http_canon_path), a route matched it (else 404), the method is one the route takes (else
 * 405 with Allow), the body was read whole under the route's cap (else 413) and its media type
 * is one the route accepts (else 415). CORS is answered by the layer for routes that ask for it:
 * preflights (OPTIONS with Origin) are answered without the handler, and responses to allowed
 * origins carry Access-Control-Allow-Origin. A handler answers at once or later: a request the
 * handler defers is suspended in libmicrohttpd (the connection costs no work) until it is
 * answered or its deadline passes. */
#ifndef GW_HTTP_H
#define GW_HTTP_H

#include "gateway/core.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct gw_http;
struct gw_http_req;

/* Methods, as a bit set for routes. HEAD is served wherever GET is. */
enum gw_http_method {
    GW_HTTP_GET = 1 << 0,
    GW_HTTP_HEAD = 1 << 1,
    GW_HTTP_POST = 1 << 2,
    GW_HTTP_PUT = 1 << 3,
    GW_HTTP_DELETE = 1 << 4,
    GW_HTTP_PATCH = 1 << 5,
    GW_HTTP_OPTIONS = 1 << 6,
};

/* Called once per request that passed the layer's checks (see above). Runs from the loop. The
 * handler answers with gw_http_respond() now, or calls gw_http_defer() and answers later; one
 * that does neither gets a 500 from the layer. req is valid until it is answered (or until
 * gone() for a deferred request). */
typedef void (*gw_http_handler)(void *arg, struct gw_http_req *req);

/* A route. path and name are copied; media_types, cors_headers and arg are borrowed and must
 * outlive the server (or the route's owner must stop before it: see gw_http_stop).
 * path: an exact path ("/http-bind"), or with prefix set a path prefix that matches itself
 *   and everything below it segment-wise ("/api/v1" matches "/api/v1" and "/api/v1/x", not
 *   "/api/v1x"). An exact route wins over a prefix route; the longest prefix wins.
 * name: a short fixed label for metrics and logs ("bosh", "rest").
 * methods: GW_HTTP_* bits; OPTIONS is always answered by the layer (preflight or Allow).
 * max_body: largest body accepted, in bytes; 0 means http_body_bytes.
 * media_types: NULL-terminated list of accepted request media types ("application/json"),
 *   compared without parameters and case-insensitively, for requests that carry a body;
 *   NULL accepts any (BOSH, whose XEP says to ignore Content-Type).
 * cors: answer CORS for the origins in http_cors_origins; cors_headers is the value of
 *   Access-Control-Allow-Headers in preflight answers (NULL: "Content-Type"). */
struct gw_http_route {
    const char *path;
    bool prefix;
    const char *name;
    unsigned methods;
    size_t max_body;
    const char *const *media_types;
    bool cors;
    const char *cors_headers;
    gw_http_handler handler;
    void *arg;
    /* Optional: answers the layer's own refusals of requests for this route instead of its
     * short text/plain ones (REST answers them as problem+json): a malformed path that starts
     * with the route's path (400), a method the route does not take (405, Allow already added),
     * a body over the cap (413), a media type it does not accept (415), a CORS origin refused
     * (403) and the server stopping (503). It must answer with gw_http_respond(); text is the
     * layer's short reason. Runs with arg. */
    void (*refuse)(void *arg, struct gw_http_req *req, unsigned status, const char *text);
};

/* Starts the daemon on cfg->http_listen with the limits of cfg (http_max_connections,
 * http_max_connections_per_ip, http_connection_timeout, http_connection_memory). Returns 0 and
 * an owned server, GW_ECONFIG (bad http_cors_origins) or GW_EIO (cannot listen). */
int gw_http_start(struct gw_core *core, struct gw_http **out);
/* Adds a route (see struct gw_http_route for what is copied). Routes may be added at any time,
 * at most 32. After gw_http_stop() begins, no handler is called any more (new requests get
 * 503), so a route's owner may be freed first. Returns 0, GW_ELIMIT past 32 routes, or
 * GW_EEXIST if a route with the same path and kind exists, or GW_EINVAL for a bad path. */
int gw_http_route_add(struct gw_http *h, const struct gw_http_route *route);
/* Stops accepting connections, answers every deferred request with 503 (after calling its
 * gone()), lets responses already queued reach their clients (for at most one second), then
 * closes everything and frees the server. The loop must keep running until its handles close. */
void gw_http_stop(struct gw_http *h);
/* Connections open now (for metrics and tests). */
unsigned gw_http_connections(const struct gw_http *h);

/* ---- the request ---- */

/* The method as a GW_HTTP_* bit, and as sent. */
enum gw_http_method gw_http_req_method(const struct gw_http_req *req);
const char *gw_http_req_method_name(const struct gw_http_req *req);
/* The canonical path (decoded; see gw_http_canon_path). */
const char *gw_http_req_path(const struct gw_http_req *req);
/* The value of request header name (case-insensitive), or NULL. Borrowed until answered. */
const char *gw_http_req_header(const struct gw_http_req *req, const char *name);
/* The percent-decoded value of query parameter name ("+" is a space), or NULL if absent or
 * not valid UTF-8 without NUL. Returned string owned by the request. */
const char *gw_http_req_query(struct gw_http_req *req, const char *name);
/* The body (not NUL-terminated; may be empty), borrowed until answered. */
const char *gw_http_req_body(const struct gw_http_req *req, size_t *len);
/* The client's IP address as text (the TCP peer: no proxy header is trusted). */
const char *gw_http_req_ip(const struct gw_http_req *req);
/* The route that matched. */
const struct gw_http_route *gw_http_req_route(const struct gw_http_req *req);

/* ---- answering ---- */

/* Adds a response header (copied) to the answer being prepared. Returns 0, or GW_EINVAL for a
 * name or value holding control characters, or GW_ELIMIT past 16 headers. */
int gw_http_add_header(struct gw_http_req *req, const char *name, const char *value);
/* Answers with status, Content-Type content_type (NULL: none) and body (copied; may be NULL
 * when len is 0). Safe from any loop callback, including the handler itself and callbacks of
 * other requests. After it returns req must not be used. */
void gw_http_respond(struct gw_http_req *req, unsigned status, const char *content_type,
                     const void *body, size_t len);
/* Convenience: a short text/plain answer. */
void gw_http_respond_text(struct gw_http_req *req, unsigned status, const char *text);

/* What a deferred request tells its owner.
 * expired: timeout_ms passed without an answer; the owner should answer now (if it does not,
 *   the layer answers 503 when expired() returns).
 * gone: the request is ending without an answer from the owner (the server is stopping, or
 *   the client closed the connection while the request was held); the owner must drop its
 *   pointer: req is invalid once gone() returns. */
struct gw_http_defer_ops {
    void (*expired)(void *arg, struct gw_http_req *req);
    void (*gone)(void *arg, struct gw_http_req *req);
};

/* Keeps req open after the handler returns, for at most timeout_ms. ops is borrowed (static),
 * arg borrowed. Only from the handler, once. */
void gw_http_defer(struct gw_http_req *req, uint64_t timeout_ms,
                   const struct gw_http_defer_ops *ops, void *arg);

/* ---- helpers, exposed for tests ---- */

/* Canonicalises the path part of a raw request target (up to '?'): percent-decodes it and
 * refuses what could name one resource in two ways or smuggle a separator: a path not starting
 * with '/', a malformed or %u escape, an encoded '/' or '\', a literal '\', NUL or another
 * control character, bytes that are not well-formed UTF-8 (overlong forms included), empty
 * segments ("//"), and "." or ".." segments, encoded or not. One trailing '/' is dropped (except
 * for "/"). Writes the result (never longer than the input) into out. Returns 0, GW_EINVAL, or
 * GW_ELIMIT if out is too small. */
int gw_http_canon_path(const char *raw, size_t rawlen, char *out, size_t outlen);

/* Decodes a query component (%XX, and '+' as a space) of n bytes into out (room for n + 1).
 * Returns 0, or GW_EINVAL for a malformed escape, NUL, or bytes that are not UTF-8. */
int gw_http_query_decode(const char *s, size_t n, char *out);

/* Parses a list of CORS origins ("https://a.example http://b.example:8080", or "*"),
 * separated by spaces or commas. Each must be scheme://host[:port] with scheme http or https
 * and no path. Returns the number of origins (0 for an empty list) or GW_EINVAL. */
int gw_http_parse_origins(const char *list, char origins[][256], size_t max);

#endif
