/* The upstream c2s stream of one session.
 *
 * States: resolving/connecting → header sent → (STARTTLS: starttls sent → TLS handshake →
 * header sent again) → open. The client never sees the pre-TLS stream: its header is held back
 * and its features consumed, so open() and stanza() see the post-TLS stream only. Plain bytes
 * queue in one capped buffer and are written (through mbedTLS once TLS is up) once per loop
 * iteration, before the loop sleeps; the writable watcher is armed only after a short write.
 * Reads take what the socket and mbedTLS's own buffer hold before the loop sleeps. Busy streams
 * keep their parser; idle ones do not. The object is freed only once its libuv handles have
 * closed, so a handler may free it at any time. */
#include "xmpp/upstream.h"

#include "gateway/err.h"
#include "gateway/log.h"
#include "gateway/mem.h"
#include "gateway/metrics.h"
#include "gateway/rand.h"
#include "xmpp/stream.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_CHUNK     4096
#define READ_BUDGET    (64 * 1024) /* bytes read per wakeup, so one stream cannot hog the loop */
#define CLOSE_GRACE_MS 2000
/* A stream that parses this many elements with no pause of PARSER_IDLE_MS keeps its expat
 * parser until it has been PARSER_IDLE_MS without a read (see "busy streams keep their parser"
 * below). More than a login takes, so that logins do not count. */
#define PARSER_BUSY_ELEMENTS 16
#define PARSER_IDLE_MS       1000
/* The timer that releases idle parsers wakes at most this often. */
#define PARSER_SWEEP_MIN_MS 100

/* Series indexed by transport (GW_TRANSPORT_COUNT: "unknown") and direction (0 sent to the
 * server, 1 received from it). */
struct upstream_metrics {
    int64_t *open;         /* connected streams */
    int64_t *queued;       /* bytes waiting to be written, all streams */
    uint64_t *connects[2]; /* ok, failed */
    uint64_t *stanzas[GW_TRANSPORT_COUNT + 1][2];
    uint64_t *bytes[GW_TRANSPORT_COUNT + 1][2];
    struct gw_histogram *forward[GW_TRANSPORT_COUNT + 1]; /* read to kernel, to the server */
};

#define MAX_SOURCES 64

struct shared {
    struct gw_core *core;
    mbedtls_ssl_config conf;
    mbedtls_x509_crt ca;
    struct upstream_metrics m;
    struct sockaddr_storage src[MAX_SOURCES]; /* upstream_source, parsed once */
    socklen_t src_len[MAX_SOURCES];
    unsigned nsrc, next_src;
    /* Streams keeping their parser, least recently read first, and the one timer that
     * releases the parsers of those that went idle (it runs only while the list is not
     * empty). */
    struct gw_upstream *kept_head, *kept_tail;
    uv_timer_t kept_timer;
    /* Streams written to in this loop iteration, flushed once before the loop sleeps. */
    struct gw_upstream *dirty_head, *dirty_tail; /* oldest first: written in that order */
    struct gw_batch_list batch;                  /* the list as the core sees it (gateway/core.h) */
    uv_check_t flush_check;                      /* after the I/O callbacks of an iteration */
    uv_prepare_t flush_prepare; /* after timers and the rest, right before polling */
    unsigned open_handles;
};

enum state {
    ST_IDLE,
    ST_RESOLVING,
    ST_CONNECTING,
    ST_STREAM,   /* header sent, waiting for or reading the stream */
    ST_STARTTLS, /* <starttls/> sent, waiting for <proceed/> */
    ST_HANDSHAKE,
    ST_CLOSING,
    ST_DEAD,
};

struct gw_upstream {
    struct gw_core *core;
    struct gw_upstream_handlers h;
    void *arg;
    enum state state;
    int fd;
    uv_poll_t poll;
    uv_timer_t timer;
    unsigned open_handles;
    bool poll_started;
    bool resolving;
    bool tls_phase_done; /* TLS is up, or it will not be used on this stream */
    bool paused;
    bool write_blocked;
    bool high; /* the queue passed half its cap; drained() is owed */
    bool freed;
    struct gw_stream *parser;
    mbedtls_ssl_context *ssl;
    struct gw_xml *held_header; /* pre-TLS header in opportunistic mode, until we know */
    struct gw_buf out;
    size_t tls_pending; /* the length of an mbedtls_ssl_write that said WANT_WRITE, or 0 */
    char *domain;
    char *lang;
    struct gw_hostport *target; /* NULL: cfg->upstream */
    /* metrics */
    struct upstream_metrics *m;
    unsigned transport;   /* GW_TRANSPORT_COUNT: not labelled */
    bool connected;       /* counted in m->open */
    size_t accounted;     /* out.len as last added to m->queued */
    uint64_t out_read_ns; /* the oldest read time of the timed stanzas in out */
    unsigned out_timed;   /* stanzas in out caused by a read (core->read_ns) */
    /* busy streams: on the shared kept list, in the order of their last read */
    struct gw_upstream *kept_prev, *kept_next;
    bool kept;
    unsigned burst;   /* elements parsed since the stream was last idle for PARSER_IDLE_MS */
    uint64_t read_ms; /* loop time of the last read */
    /* on the shared list of streams to flush at the end of this iteration */
    struct gw_upstream *dirty_prev, *dirty_next;
    bool dirty;
};

/* Brings the queued-bytes gauge up to date with this stream's queue. */
static void account(struct gw_upstream *up)
{
    *up->m->queued += (int64_t)up->out.len - (int64_t)up->accounted;
    up->accounted = up->out.len;
}

static bool is_stanza(const struct gw_xml *el)
{
    return el->name && (strcmp(el->name, "message") == 0 || strcmp(el->name, "presence") == 0 ||
                        strcmp(el->name, "iq") == 0);
}

static void on_io(uv_poll_t *h, int status, int events);
static void flush(struct gw_upstream *up);

/* ---- busy streams keep their parser ----
 *
 * An expat parser holds about 11 KB once it has parsed a stream header, more than the rest of
 * an idle session, so by default a stream frees it whenever a read ends between two stanzas and
 * builds a new one on the next read (xmpp/stream.c). That rebuild costs about 25,000
 * instructions, paid on every stanza of a busy stream. So a stream that parses
 * PARSER_BUSY_ELEMENTS elements without a pause of PARSER_IDLE_MS is busy and keeps its parser.
 * Logins take fewer elements than that: keeping parsers through a burst of logins would leave
 * the heap fragmented (resident memory) once they are freed. Busy streams sit on one list per
 * process in the order of their last read (moved to the tail at each read: O(1)), and one timer
 * releases the parsers at the head of the list once they have gone PARSER_IDLE_MS without a
 * read. A sweep touches only the streams that went idle, and the timer runs only while some
 * stream keeps a parser. Idle sessions still hold no parser. */

static void kept_unlink(struct shared *sh, struct gw_upstream *up)
{
    if (up->kept_prev)
        up->kept_prev->kept_next = up->kept_next;
    else
        sh->kept_head = up->kept_next;
    if (up->kept_next)
        up->kept_next->kept_prev = up->kept_prev;
    else
        sh->kept_tail = up->kept_prev;
    up->kept_prev = up->kept_next = NULL;
}

static void kept_append(struct shared *sh, struct gw_upstream *up)
{
    up->kept_prev = sh->kept_tail;
    up->kept_next = NULL;
    if (sh->kept_tail)
        sh->kept_tail->kept_next = up;
    else
        sh->kept_head = up;
    sh->kept_tail = up;
}

/* The stream goes back to releasing its parser after each read (now, if it is between two
 * stanzas). */
static void unkeep(struct gw_upstream *up)
{
    if (!up->kept)
        return;
    kept_unlink(up->core->upstream_shared, up);
    up->kept = false;
    if (up->parser) {
        gw_stream_keep_parser(up->parser, false);
        gw_stream_release(up->parser);
    }
}

static void on_kept_timer(uv_timer_t *t)
{
    struct shared *sh = t->data;
    uint64_t now = uv_now(t->loop);
    while (sh->kept_head && now - sh->kept_head->read_ms >= PARSER_IDLE_MS)
        unkeep(sh->kept_head);
    if (sh->kept_head) {
        uint64_t wait = PARSER_IDLE_MS - (now - sh->kept_head->read_ms);
        uv_timer_start(t, on_kept_timer, wait > PARSER_SWEEP_MIN_MS ? wait : PARSER_SWEEP_MIN_MS,
                       0);
    }
}

/* Called before each read. */
static void note_read(struct gw_upstream *up)
{
    uint64_t now = uv_now(up->core->loop);
    if (up->kept) {
        struct shared *sh = up->core->upstream_shared;
        kept_unlink(sh, up);
        kept_append(sh, up);
    } else if (now - up->read_ms >= PARSER_IDLE_MS) {
        up->burst = 0;
    }
    up->read_ms = now;
}

/* Called for each element parsed: the stream keeps its parser once it is busy (from inside the
 * feed, so the parser is not released at its end). */
static void note_element(struct gw_upstream *up)
{
    if (up->kept || ++up->burst < PARSER_BUSY_ELEMENTS || !up->parser)
        return;
    struct shared *sh = up->core->upstream_shared;
    up->kept = true;
    gw_stream_keep_parser(up->parser, true);
    kept_append(sh, up);
    if (!uv_is_active((uv_handle_t *)&sh->kept_timer))
        uv_timer_start(&sh->kept_timer, on_kept_timer, PARSER_IDLE_MS, 0);
}

/* ---- one write per stream and loop iteration ----
 *
 * Elements sent during an iteration (a client's stanza, the <r/> that follows it, the <a/>
 * answering the server's <r/>) are appended to the stream's queue, and the stream goes on a
 * list of streams to flush; a uv_check (after the I/O callbacks) and a uv_prepare (after timers
 * and the rest, right before the loop polls) write each listed stream once. So whatever one
 * iteration produced for a stream leaves in one send(), and nothing waits while the loop
 * sleeps. A stream whose socket is full is not listed: its writable watcher flushes it.
 *
 * Nor does a stanza wait out a long iteration (one that reads a burst from many clients, or
 * from the server, runs for milliseconds): once the list has waited GW_BATCH_WAIT_NS since the
 * read that began it, the next stanza queued writes the list first (flush_early; the clock is
 * the current read's, core->read_ns, so this costs no clock call), and so does the next read of
 * either side (gw_core_read_begin). That write runs inside a send or a read, so it calls no
 * handler: a stream owed drained() or whose write fails stays listed for the regular flush,
 * which reports it. */

static void flush_early(struct gw_batch_list *l);

static void dirty_unlink(struct shared *sh, struct gw_upstream *up)
{
    if (!up->dirty)
        return;
    if (up->dirty_prev)
        up->dirty_prev->dirty_next = up->dirty_next;
    else
        sh->dirty_head = up->dirty_next;
    if (up->dirty_next)
        up->dirty_next->dirty_prev = up->dirty_prev;
    else
        sh->dirty_tail = up->dirty_prev;
    up->dirty_prev = up->dirty_next = NULL;
    up->dirty = false;
}

static void defer_flush(struct gw_upstream *up)
{
    struct shared *sh = up->core->upstream_shared;
    if (up->dirty || up->write_blocked)
        return;
    if (!sh->dirty_head)
        sh->batch.since = up->core->read_ns;
    up->dirty = true;
    up->dirty_next = NULL;
    up->dirty_prev = sh->dirty_tail;
    if (sh->dirty_tail)
        sh->dirty_tail->dirty_next = up;
    else
        sh->dirty_head = up;
    sh->dirty_tail = up;
}

/* Handlers that flush may send again (drained) or end streams: each is taken off the list
 * before its flush. */
static void flush_dirty(struct shared *sh)
{
    struct gw_upstream *up;
    while ((up = sh->dirty_head) != NULL) {
        dirty_unlink(sh, up);
        flush(up);
    }
    sh->batch.since = 0;
}

static void on_flush_check(uv_check_t *h)
{
    flush_dirty(h->data);
}

static void on_flush_prepare(uv_prepare_t *h)
{
    flush_dirty(h->data);
}

/* ---- shared TLS configuration ---- */

static int verify_cb(void *ctx, mbedtls_x509_crt *crt, int depth, uint32_t *flags)
{
    (void)crt;
    (void)depth;
    const struct gw_config *cfg = ctx;
    if (!cfg->upstream_verify_hostname)
        *flags &= ~(uint32_t)MBEDTLS_X509_BADCERT_CN_MISMATCH;
    return 0;
}

/* upstream_source: numeric addresses only, so that binding never resolves names. */
static int parse_sources(struct shared *sh, const char *list)
{
    char item[64];
    for (const char *p = list; *p;) {
        size_t n = strcspn(p, ",");
        while (n > 0 && *p == ' ')
            p++, n--;
        if (n == 0 || n >= sizeof item || sh->nsrc == MAX_SOURCES)
            return GW_EINVAL;
        memcpy(item, p, n);
        item[n] = '\0';
        struct sockaddr_in *v4 = (struct sockaddr_in *)&sh->src[sh->nsrc];
        struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&sh->src[sh->nsrc];
        if (inet_pton(AF_INET, item, &v4->sin_addr) == 1) {
            v4->sin_family = AF_INET;
            sh->src_len[sh->nsrc++] = sizeof *v4;
        } else if (inet_pton(AF_INET6, item, &v6->sin6_addr) == 1) {
            v6->sin6_family = AF_INET6;
            sh->src_len[sh->nsrc++] = sizeof *v6;
        } else {
            return GW_EINVAL;
        }
        p += n;
        if (*p == ',')
            p++;
    }
    return 0;
}

/* Binds to the next configured source address of the socket's family. The port is left to
 * connect() (IP_BIND_ADDRESS_NO_PORT), so one source address serves ~28k connections per
 * server address and port instead of ~28k in all. */
static void bind_source(struct gw_upstream *up, int family)
{
    struct shared *sh = up->core->upstream_shared;
    for (unsigned i = 0; i < sh->nsrc; i++) {
        unsigned k = sh->next_src++ % sh->nsrc;
        if (sh->src[k].ss_family != family)
            continue;
        int one = 1;
        setsockopt(up->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        if (bind(up->fd, (struct sockaddr *)&sh->src[k], sh->src_len[k]) != 0)
            GW_WARN("upstream.bind_failed", "err=\"%s\"", strerror(errno));
        return;
    }
}

int gw_upstream_global_init(struct gw_core *core, char *err, size_t errlen)
{
    const struct gw_config *cfg = core->cfg;
    struct shared *sh = gw_calloc(1, sizeof *sh);
    mbedtls_ssl_config_init(&sh->conf);
    mbedtls_x509_crt_init(&sh->ca);
    sh->core = core;
    core->upstream_shared = sh;
    sh->batch.write_early = flush_early;
    gw_core_batch_list_add(core, &sh->batch);
    uv_timer_init(core->loop, &sh->kept_timer);
    uv_check_init(core->loop, &sh->flush_check);
    uv_prepare_init(core->loop, &sh->flush_prepare);
    sh->kept_timer.data = sh->flush_check.data = sh->flush_prepare.data = sh;
    sh->open_handles = 3;
    uv_check_start(&sh->flush_check, on_flush_check);
    uv_prepare_start(&sh->flush_prepare, on_flush_prepare);
    /* None of them is what keeps the loop running: the streams' own handles are. */
    uv_unref((uv_handle_t *)&sh->kept_timer);
    uv_unref((uv_handle_t *)&sh->flush_check);
    uv_unref((uv_handle_t *)&sh->flush_prepare);
    if (mbedtls_ssl_config_defaults(&sh->conf, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
                                    MBEDTLS_SSL_PRESET_DEFAULT) != 0) {
        snprintf(err, errlen, "mbedtls config failed");
        return GW_ECONFIG;
    }
    struct gw_metrics *mt = core->metrics;
    sh->m.open = gw_metrics_gauge(mt, "mxgw_upstream_connections",
                                  "Upstream c2s streams connected to the XMPP server", NULL);
    sh->m.queued = gw_metrics_gauge(mt, "mxgw_queue_bytes", "Bytes queued for writing, by queue",
                                    "queue=\"upstream\"");
    sh->m.connects[0] =
        gw_metrics_counter(mt, "mxgw_upstream_connects_total",
                           "Upstream TCP connection attempts, by result", "result=\"ok\"");
    sh->m.connects[1] =
        gw_metrics_counter(mt, "mxgw_upstream_connects_total",
                           "Upstream TCP connection attempts, by result", "result=\"failed\"");
    for (unsigned t = 0; t <= GW_TRANSPORT_COUNT; t++)
        for (int d = 0; d < 2; d++) {
            char labels[96];
            snprintf(labels, sizeof labels, "transport=\"%s\",direction=\"%s\"",
                     t < GW_TRANSPORT_COUNT ? gw_transport_name((enum gw_transport)t) : "unknown",
                     d ? "received" : "sent");
            sh->m.stanzas[t][d] = gw_metrics_counter(
                mt, "mxgw_upstream_stanzas_total",
                "Stanzas between mxgw and the XMPP server's c2s port, by client transport", labels);
            sh->m.bytes[t][d] = gw_metrics_counter(
                mt, "mxgw_upstream_bytes_total",
                "Bytes (before TLS) between mxgw and the XMPP server's c2s port", labels);
        }
    for (unsigned t = 0; t <= GW_TRANSPORT_COUNT; t++)
        sh->m.forward[t] = gw_metrics_forward(
            mt, t < GW_TRANSPORT_COUNT ? gw_transport_name((enum gw_transport)t) : "unknown",
            "to_server");
    mbedtls_ssl_conf_rng(&sh->conf, gw_rand_mbedtls, core->rand);
    mbedtls_ssl_conf_min_version(&sh->conf, MBEDTLS_SSL_MAJOR_VERSION_3,
                                 MBEDTLS_SSL_MINOR_VERSION_3);
    mbedtls_ssl_conf_renegotiation(&sh->conf, MBEDTLS_SSL_RENEGOTIATION_DISABLED);
    mbedtls_ssl_conf_verify(&sh->conf, verify_cb, (void *)cfg);
    if (parse_sources(sh, cfg->upstream_source) != 0) {
        snprintf(err, errlen, "upstream_source: expected comma-separated IP addresses (at most %d)",
                 MAX_SOURCES);
        return GW_ECONFIG;
    }
    if (cfg->upstream_tls != GW_TLS_OFF && cfg->upstream_verify_cert) {
        int rc = mbedtls_x509_crt_parse_file(&sh->ca, cfg->upstream_ca_file);
        if (rc < 0) {
            snprintf(err, errlen, "cannot load upstream_ca_file %s", cfg->upstream_ca_file);
            return GW_ECONFIG;
        }
        mbedtls_ssl_conf_ca_chain(&sh->conf, &sh->ca, NULL);
        mbedtls_ssl_conf_authmode(&sh->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
    } else {
        mbedtls_ssl_conf_authmode(&sh->conf, MBEDTLS_SSL_VERIFY_NONE);
    }
    return 0;
}

static void shared_closed(uv_handle_t *h)
{
    struct shared *sh = h->data;
    if (--sh->open_handles == 0)
        free(sh);
}

void gw_upstream_global_free(struct gw_core *core)
{
    struct shared *sh = core->upstream_shared;
    if (!sh)
        return;
    mbedtls_ssl_config_free(&sh->conf);
    mbedtls_x509_crt_free(&sh->ca);
    gw_core_batch_list_remove(core, &sh->batch);
    core->upstream_shared = NULL;
    /* The loop has run dry (every stream is gone): one more turn runs the close callbacks. */
    uv_close((uv_handle_t *)&sh->kept_timer, shared_closed);
    uv_close((uv_handle_t *)&sh->flush_check, shared_closed);
    uv_close((uv_handle_t *)&sh->flush_prepare, shared_closed);
    uv_run(core->loop, UV_RUN_NOWAIT);
}

/* ---- lifecycle ---- */

static void release(struct gw_upstream *up)
{
    if (up->open_handles > 0 || up->resolving)
        return;
    gw_stream_free(up->parser);
    if (up->ssl) {
        mbedtls_ssl_free(up->ssl);
        free(up->ssl);
    }
    gw_xml_free(up->held_header);
    gw_buf_free(&up->out);
    account(up);
    free(up->domain);
    free(up->lang);
    free(up->target);
    free(up);
}

static void on_handle_closed(uv_handle_t *h)
{
    struct gw_upstream *up = h->data;
    up->open_handles--;
    release(up);
}

/* Closes the socket and handles; the memory goes once libuv is done with the handles. */
static void teardown(struct gw_upstream *up)
{
    unkeep(up);
    dirty_unlink(up->core->upstream_shared, up);
    if (up->connected) {
        up->connected = false;
        (*up->m->open)--;
    }
    up->state = ST_DEAD;
    uv_timer_stop(&up->timer);
    if (up->poll_started) {
        uv_poll_stop(&up->poll);
        if (!uv_is_closing((uv_handle_t *)&up->poll))
            uv_close((uv_handle_t *)&up->poll, on_handle_closed);
        up->poll_started = false;
    }
    if (up->fd >= 0) {
        close(up->fd);
        up->fd = -1;
    }
}

/* The stream failed or ended: tell the owner once; it frees us. */
static void finish(struct gw_upstream *up, int err, const char *condition,
                   const struct gw_xml *error_el)
{
    if (up->state == ST_DEAD)
        return;
    if (up->state == ST_CLOSING) { /* we were ending it anyway: nobody to tell */
        gw_upstream_free(up);
        return;
    }
    if (err)
        GW_INFO("upstream.closed", "domain=%s err=\"%s\" condition=%s",
                up->domain ? up->domain : "-", gw_strerror(err), condition ? condition : "-");
    teardown(up);
    if (up->h.closed && !up->freed)
        up->h.closed(up->arg, err, condition, error_el);
}

struct gw_upstream *gw_upstream_new(struct gw_core *core, const struct gw_upstream_handlers *h,
                                    void *arg)
{
    struct gw_upstream *up = gw_calloc(1, sizeof *up);
    up->core = core;
    up->h = *h;
    up->arg = arg;
    up->fd = -1;
    up->m = &((struct shared *)core->upstream_shared)->m;
    up->transport = GW_TRANSPORT_COUNT;
    gw_buf_init(&up->out, core->cfg->limit_queue_bytes);
    uv_timer_init(core->loop, &up->timer);
    up->timer.data = up;
    up->open_handles = 1;
    return up;
}

void gw_upstream_free(struct gw_upstream *up)
{
    if (!up || up->freed)
        return;
    up->freed = true;
    teardown(up);
    if (!uv_is_closing((uv_handle_t *)&up->timer))
        uv_close((uv_handle_t *)&up->timer, on_handle_closed);
}

/* ---- writing ---- */

static int queue(struct gw_upstream *up, const char *s, size_t n)
{
    return gw_buf_append(&up->out, s, n);
}

static void update_poll(struct gw_upstream *up)
{
    if (!up->poll_started || up->state == ST_DEAD)
        return;
    int ev = 0;
    if (!up->paused || up->state != ST_STREAM)
        ev |= UV_READABLE;
    if (up->write_blocked || up->state == ST_CONNECTING)
        ev |= UV_WRITABLE;
    uv_poll_start(&up->poll, ev, on_io);
}

static void fail_io(struct gw_upstream *up, int err, const char *what, int code)
{
    GW_INFO("upstream.io_error", "what=%s code=%d", what, code);
    finish(up, err, up->state == ST_CLOSING ? NULL : "remote-connection-failed", NULL);
}

static bool can_write(const struct gw_upstream *up)
{
    return up->state != ST_DEAD && up->state != ST_IDLE && up->state != ST_RESOLVING &&
           up->state != ST_CONNECTING && up->state != ST_HANDSHAKE;
}

/* Writes what the socket takes of the queue. Returns 0, with write_blocked set if the socket
 * filled, or the error (code: what failed, errno or mbedTLS's) for the caller to report: no
 * handler runs here, so it may be called from inside a send. */
static int write_out(struct gw_upstream *up, int *code)
{
    if (!can_write(up))
        return 0;
    up->write_blocked = false;
    while (up->out.len > 0) {
        ssize_t n;
        if (up->ssl) {
            /* After WANT_WRITE, mbedTLS holds a record made of the length it was given, and
             * must be called again with the same: it reports as written whatever length the
             * next call gives, while it sends only that record. */
            size_t len = up->tls_pending ? up->tls_pending : up->out.len;
            int rc = mbedtls_ssl_write(up->ssl, (const unsigned char *)up->out.data, len);
            if (rc == MBEDTLS_ERR_SSL_WANT_WRITE || rc == MBEDTLS_ERR_SSL_WANT_READ) {
                up->tls_pending = len;
                up->write_blocked = true;
                break;
            }
            up->tls_pending = 0;
            if (rc < 0) {
                *code = rc;
                return GW_ETLS;
            }
            n = rc;
        } else {
            n = send(up->fd, up->out.data, up->out.len, MSG_NOSIGNAL);
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                up->write_blocked = true;
                break;
            }
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                *code = errno;
                return GW_EIO;
            }
        }
        gw_buf_consume(&up->out, (size_t)n);
        *up->m->bytes[up->transport][0] += (uint64_t)n;
    }
    account(up);
    if (up->out.len == 0 && up->out_timed) { /* all of it is with the kernel */
        gw_histogram_observe_since(up->m->forward[up->transport], up->out_read_ns, up->out_timed);
        up->out_timed = 0;
    }
    if (up->out.len == 0 && up->out.cap > 8192)
        gw_buf_free(&up->out); /* idle streams keep no big buffer */
    return 0;
}

static void flush(struct gw_upstream *up)
{
    if (!can_write(up))
        return;
    bool was_blocked = up->write_blocked;
    int code = 0;
    int err = write_out(up, &code);
    if (err) {
        fail_io(up, err, err == GW_ETLS ? "tls_write" : "write", code);
        return;
    }
    if (up->high && up->out.len < up->core->cfg->limit_queue_bytes / 2) {
        up->high = false;
        if (up->h.drained && up->state == ST_STREAM)
            up->h.drained(up->arg);
        if (up->state == ST_DEAD)
            return;
    }
    if (was_blocked != up->write_blocked)
        update_poll(up);
}

/* The write of the list before its time (top of "written once per iteration"). */
static void flush_early(struct gw_batch_list *l)
{
    struct shared *sh = (struct shared *)((char *)l - offsetof(struct shared, batch));
    struct gw_upstream *up, *next;
    for (up = sh->dirty_head; up; up = next) {
        next = up->dirty_next;
        int code = 0;
        if (up->high || write_out(up, &code) != 0)
            continue; /* the regular flush calls drained(), or reports the failure */
        dirty_unlink(sh, up);
        if (up->write_blocked) /* the socket filled: its writable watcher takes over */
            update_poll(up);
    }
    l->since = sh->dirty_head ? sh->core->read_ns : 0;
}

static int send_header(struct gw_upstream *up)
{
    struct gw_buf *b = &up->out;
    int rc = gw_buf_puts(b, "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
                            "xmlns:stream='http://etherx.jabber.org/streams' to='");
    if (!rc)
        rc = gw_xml_escape(b, up->domain, strlen(up->domain));
    if (!rc && up->lang) {
        rc = gw_buf_puts(b, "' xml:lang='");
        if (!rc)
            rc = gw_xml_escape(b, up->lang, strlen(up->lang));
    }
    if (!rc)
        rc = gw_buf_puts(b, "' version='1.0'>");
    flush(up);
    return rc;
}

/* ---- TLS ---- */

static int bio_send(void *ctx, const unsigned char *buf, size_t len)
{
    struct gw_upstream *up = ctx;
    ssize_t n = send(up->fd, buf, len, MSG_NOSIGNAL);
    if (n >= 0)
        return (int)n;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return MBEDTLS_ERR_SSL_WANT_WRITE;
    return MBEDTLS_ERR_NET_SEND_FAILED;
}

static int bio_recv(void *ctx, unsigned char *buf, size_t len)
{
    struct gw_upstream *up = ctx;
    ssize_t n = recv(up->fd, buf, len, 0);
    if (n > 0)
        return (int)n;
    if (n == 0)
        return MBEDTLS_ERR_SSL_CONN_EOF;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return MBEDTLS_ERR_SSL_WANT_READ;
    return MBEDTLS_ERR_NET_RECV_FAILED;
}

static void handshake(struct gw_upstream *up)
{
    int rc = mbedtls_ssl_handshake(up->ssl);
    if (rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE) {
        up->write_blocked = rc == MBEDTLS_ERR_SSL_WANT_WRITE;
        update_poll(up);
        return;
    }
    if (rc != 0) {
        char why[160] = "";
        uint32_t flags = mbedtls_ssl_get_verify_result(up->ssl);
        if (flags && flags != (uint32_t)-1)
            mbedtls_x509_crt_verify_info(why, sizeof why, "", flags);
        else
            mbedtls_strerror(rc, why, sizeof why);
        for (char *p = why; *p; p++)
            if (*p == '\n' || *p == '"')
                *p = ' ';
        GW_WARN("upstream.tls_failed", "domain=%s reason=\"%s\"", up->domain, why);
        finish(up, GW_ETLS, "remote-connection-failed", NULL);
        return;
    }
    uv_timer_stop(&up->timer);
    up->write_blocked = false;
    up->tls_phase_done = true;
    up->state = ST_STREAM;
    GW_DEBUG("upstream.tls", "domain=%s suite=%s", up->domain,
             mbedtls_ssl_get_ciphersuite(up->ssl));
    update_poll(up);
    if (send_header(up) != 0)
        finish(up, GW_ELIMIT, "undefined-condition", NULL);
}

static struct gw_stream *new_parser(struct gw_upstream *up);

static void start_tls(struct gw_upstream *up)
{
    struct shared *sh = up->core->upstream_shared;
    up->ssl = gw_malloc(sizeof *up->ssl);
    mbedtls_ssl_init(up->ssl);
    if (mbedtls_ssl_setup(up->ssl, &sh->conf) != 0 ||
        mbedtls_ssl_set_hostname(up->ssl, up->domain) != 0) {
        finish(up, GW_ETLS, "remote-connection-failed", NULL);
        return;
    }
    mbedtls_ssl_set_bio(up->ssl, up, bio_send, bio_recv, NULL);
    up->state = ST_HANDSHAKE;
    /* Bytes after <proceed/> are TLS, never plain XML (STARTTLS command injection): the old
     * parser is dropped with whatever it still held, and the new stream gets a new one. */
    gw_stream_free(up->parser);
    up->parser = new_parser(up);
    handshake(up);
}

/* ---- parser handlers ---- */

static void p_open(void *arg, const struct gw_xml *root)
{
    struct gw_upstream *up = arg;
    if (up->state == ST_CLOSING || up->state == ST_DEAD)
        return;
    if (!up->tls_phase_done) {
        gw_xml_free(up->held_header);
        up->held_header = gw_xml_copy(root);
        return;
    }
    if (up->h.open)
        up->h.open(up->arg, root);
}

static void p_stanza(void *arg, struct gw_xml *el)
{
    struct gw_upstream *up = arg;
    note_element(up);
    if (gw_xml_is(el, GW_NS_STREAM, "error")) {
        const char *cond = gw_xml_error_condition(el, GW_NS_STREAMS);
        finish(up, GW_EPROTO, cond ? cond : "undefined-condition", el);
        gw_xml_free(el);
        return;
    }
    if (up->state == ST_STARTTLS) {
        if (gw_xml_is(el, GW_NS_TLS, "proceed"))
            start_tls(up);
        else
            finish(up, GW_ETLS, "remote-connection-failed", NULL);
        gw_xml_free(el);
        return;
    }
    if (!up->tls_phase_done && gw_xml_is(el, GW_NS_STREAM, "features")) {
        if (gw_xml_child(el, GW_NS_TLS, "starttls")) {
            gw_xml_free(el);
            up->state = ST_STARTTLS;
            if (queue(up, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>", 51) != 0)
                finish(up, GW_ELIMIT, "undefined-condition", NULL);
            else
                flush(up);
            return;
        }
        if (up->core->cfg->upstream_tls == GW_TLS_REQUIRED) {
            GW_WARN("upstream.no_starttls", "domain=%s detail=\"server did not offer STARTTLS\"",
                    up->domain);
            gw_xml_free(el);
            finish(up, GW_ETLS, "remote-connection-failed", NULL);
            return;
        }
        GW_WARN("upstream.plaintext",
                "domain=%s detail=\"no STARTTLS offered; continuing in "
                "plain text (upstream_tls = starttls)\"",
                up->domain);
        up->tls_phase_done = true;
        uv_timer_stop(&up->timer);
        if (up->held_header && up->h.open)
            up->h.open(up->arg, up->held_header);
        gw_xml_free(up->held_header);
        up->held_header = NULL;
        if (up->state == ST_DEAD) {
            gw_xml_free(el);
            return;
        }
    }
    if (up->state == ST_CLOSING) {
        gw_xml_free(el);
        return;
    }
    if (is_stanza(el))
        (*up->m->stanzas[up->transport][1])++;
    up->h.stanza(up->arg, el);
}

static void p_close(void *arg)
{
    struct gw_upstream *up = arg;
    if (up->state == ST_CLOSING) {
        teardown(up);
        gw_upstream_free(up);
        return;
    }
    finish(up, 0, NULL, NULL);
}

static void p_error(void *arg, const char *condition, const char *text)
{
    struct gw_upstream *up = arg;
    GW_WARN("upstream.bad_xml", "domain=%s condition=%s", up->domain ? up->domain : "-", condition);
    (void)text;
    if (up->state == ST_CLOSING) {
        teardown(up);
        gw_upstream_free(up);
        return;
    }
    finish(up, GW_EPROTO, "undefined-condition", NULL);
}

static const struct gw_stream_handlers parser_handlers = {p_open, p_stanza, p_close, p_error};

static struct gw_stream *new_parser(struct gw_upstream *up)
{
    const struct gw_config *cfg = up->core->cfg;
    struct gw_xml_limits lim = {cfg->limit_stanza_bytes, cfg->limit_xml_depth,
                                cfg->limit_xml_attrs};
    struct gw_stream *p = gw_stream_new(&lim, &parser_handlers, up);
    gw_stream_keep_parser(p, up->kept);
    return p;
}

/* ---- reading ---- */

static void on_eof(struct gw_upstream *up)
{
    if (up->state == ST_CLOSING) {
        teardown(up);
        gw_upstream_free(up);
        return;
    }
    finish(up, GW_EIO, "remote-connection-failed", NULL);
}

static void on_timeout(uv_timer_t *t);

/* Reads what the socket holds, within READ_BUDGET. libuv's epoll watchers are level-triggered,
 * so reading stops as soon as a read shows the socket empty, rather than reading again until it
 * says EAGAIN (one system call in three, for a stanza at a time): a read shorter than the
 * buffer, or, with TLS, a record consumed with nothing more in mbedTLS's buffers (it reads no
 * further ahead on the socket than the record it is on). If more arrived meanwhile, the socket
 * is still readable and the loop comes back. */
static void do_read(struct gw_upstream *up)
{
    char buf[READ_CHUNK];
    size_t budget = READ_BUDGET;
    note_read(up);
    while (budget > 0 &&
           (up->state == ST_STREAM || up->state == ST_STARTTLS || up->state == ST_CLOSING)) {
        if (up->paused && up->state == ST_STREAM)
            return;
        ssize_t n;
        if (up->ssl) {
            int rc = mbedtls_ssl_read(up->ssl, (unsigned char *)buf, sizeof buf);
            if (rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE)
                return;
            if (rc == 0 || rc == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY ||
                rc == MBEDTLS_ERR_SSL_CONN_EOF) {
                on_eof(up);
                return;
            }
            if (rc < 0) {
                fail_io(up, GW_ETLS, "tls_read", rc);
                return;
            }
            n = rc;
        } else {
            n = recv(up->fd, buf, sizeof buf, 0);
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                return;
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                fail_io(up, GW_EIO, "read", errno);
                return;
            }
            if (n == 0) {
                on_eof(up);
                return;
            }
        }
        budget -= (size_t)n < budget ? (size_t)n : budget;
        *up->m->bytes[up->transport][1] += (uint64_t)n;
        uint64_t outer = gw_core_read_begin(up->core); /* what it causes is timed from now */
        gw_stream_feed(up->parser, buf, (size_t)n);
        gw_core_read_end(up->core, outer);
        if (up->state == ST_HANDSHAKE) /* <proceed/> arrived: the rest is TLS */
            return;
        if (up->ssl ? up->state != ST_DEAD && mbedtls_ssl_get_bytes_avail(up->ssl) == 0 &&
                          !mbedtls_ssl_check_pending(up->ssl)
                    : (size_t)n < sizeof buf)
            return; /* the socket is empty (top of function) */
    }
    /* Budget spent with data possibly left in mbedTLS's buffer: come back next iteration
     * instead of sleeping on a socket that may have nothing more to say. */
    if (up->ssl && budget == 0 && mbedtls_ssl_get_bytes_avail(up->ssl) > 0 && up->state != ST_DEAD)
        uv_timer_start(&up->timer, on_timeout, 0, 0);
}

/* ---- connecting ---- */

static void on_timeout(uv_timer_t *t)
{
    struct gw_upstream *up = t->data;
    switch (up->state) {
    case ST_CLOSING:
        teardown(up);
        gw_upstream_free(up);
        break;
    case ST_RESOLVING:
    case ST_CONNECTING:
    case ST_HANDSHAKE:
    case ST_STARTTLS:
        GW_INFO("upstream.timeout", "domain=%s state=%d", up->domain, up->state);
        finish(up, GW_ETIMEDOUT, "remote-connection-failed", NULL);
        break;
    case ST_STREAM:
        if (!up->tls_phase_done) { /* the server never got to STARTTLS */
            finish(up, GW_ETIMEDOUT, "remote-connection-failed", NULL);
            break;
        }
        do_read(up); /* resumed reading of bytes mbedTLS had buffered */
        break;
    default:
        break;
    }
}

static void connected(struct gw_upstream *up)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(up->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
        GW_INFO("upstream.connect_failed", "addr=%s:%u err=\"%s\"", up->core->cfg->upstream.host,
                up->core->cfg->upstream.port, strerror(err ? err : errno));
        (*up->m->connects[1])++;
        finish(up, GW_EIO, "remote-connection-failed", NULL);
        return;
    }
    (*up->m->connects[0])++;
    (*up->m->open)++;
    up->connected = true;
    up->state = ST_STREAM;
    if (up->core->cfg->upstream_tls == GW_TLS_OFF)
        up->tls_phase_done = true;
    else
        uv_timer_start(&up->timer, on_timeout, up->core->cfg->upstream_connect_timeout_ms, 0);
    update_poll(up);
    flush(up);
}

static void on_io(uv_poll_t *h, int status, int events)
{
    struct gw_upstream *up = h->data;
    if (up->state == ST_DEAD)
        return;
    if (status < 0 && up->state != ST_CONNECTING) {
        fail_io(up, GW_EIO, "poll", status);
        return;
    }
    if (up->state == ST_CONNECTING) {
        connected(up);
        return;
    }
    if (up->state == ST_HANDSHAKE) {
        handshake(up);
        return;
    }
    if (events & UV_WRITABLE)
        flush(up);
    if ((events & UV_READABLE) && up->state != ST_DEAD)
        do_read(up);
}

static void start_connect(struct gw_upstream *up, const struct sockaddr *sa, socklen_t salen)
{
    up->fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (up->fd < 0) {
        finish(up, GW_EIO, "remote-connection-failed", NULL);
        return;
    }
    int one = 1;
    setsockopt(up->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(up->fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    bind_source(up, sa->sa_family);
    uv_poll_init(up->core->loop, &up->poll, up->fd);
    up->poll.data = up;
    up->poll_started = true;
    up->open_handles++;
    up->state = ST_CONNECTING;
    uv_timer_start(&up->timer, on_timeout, up->core->cfg->upstream_connect_timeout_ms, 0);
    if (connect(up->fd, sa, salen) != 0 && errno != EINPROGRESS) {
        GW_INFO("upstream.connect_failed", "addr=%s:%u err=\"%s\"", up->core->cfg->upstream.host,
                up->core->cfg->upstream.port, strerror(errno));
        finish(up, GW_EIO, "remote-connection-failed", NULL);
        return;
    }
    update_poll(up);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct gw_upstream *up = req->data;
    free(req);
    up->resolving = false;
    if (up->freed || up->state != ST_RESOLVING) {
        uv_freeaddrinfo(res);
        release(up);
        return;
    }
    if (status < 0 || !res) {
        GW_WARN("upstream.resolve_failed", "host=%s err=\"%s\"", up->core->cfg->upstream.host,
                uv_strerror(status));
        uv_freeaddrinfo(res);
        finish(up, GW_EIO, "remote-connection-failed", NULL);
        return;
    }
    start_connect(up, res->ai_addr, res->ai_addrlen);
    uv_freeaddrinfo(res);
}

static void begin_connect(struct gw_upstream *up)
{
    const struct gw_hostport *hp = up->target ? up->target : &up->core->cfg->upstream;
    struct sockaddr_in v4;
    struct sockaddr_in6 v6;
    memset(&v4, 0, sizeof v4);
    memset(&v6, 0, sizeof v6);
    if (inet_pton(AF_INET, hp->host, &v4.sin_addr) == 1) {
        v4.sin_family = AF_INET;
        v4.sin_port = htons(hp->port);
        start_connect(up, (struct sockaddr *)&v4, sizeof v4);
        return;
    }
    if (inet_pton(AF_INET6, hp->host, &v6.sin6_addr) == 1) {
        v6.sin6_family = AF_INET6;
        v6.sin6_port = htons(hp->port);
        start_connect(up, (struct sockaddr *)&v6, sizeof v6);
        return;
    }
    char port[8];
    snprintf(port, sizeof port, "%u", hp->port);
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    uv_getaddrinfo_t *req = gw_malloc(sizeof *req);
    req->data = up;
    up->state = ST_RESOLVING;
    up->resolving = true;
    uv_timer_start(&up->timer, on_timeout, up->core->cfg->upstream_connect_timeout_ms, 0);
    if (uv_getaddrinfo(up->core->loop, req, on_resolved, hp->host, port, &hints) != 0) {
        free(req);
        up->resolving = false;
        finish(up, GW_EIO, "remote-connection-failed", NULL);
    }
}

/* ---- public operations ---- */

int gw_upstream_open(struct gw_upstream *up, const char *domain, const char *lang)
{
    if (up->state == ST_DEAD || up->state == ST_CLOSING)
        return GW_ECLOSED;
    free(up->domain);
    free(up->lang);
    up->domain = gw_strdup(domain);
    up->lang = lang ? gw_strdup(lang) : NULL;
    if (up->state == ST_IDLE) {
        up->parser = new_parser(up);
        int rc = send_header(up); /* queued until the connection is up */
        if (rc)
            return rc;
        begin_connect(up);
        return 0;
    }
    /* A restart (after SASL success): the old stream's bytes are all consumed. */
    if (!up->tls_phase_done)
        return GW_EPROTO;
    gw_stream_reset(up->parser);
    return send_header(up);
}

void gw_upstream_set_target(struct gw_upstream *up, const char *host, uint16_t port)
{
    if (up->state != ST_IDLE)
        return;
    if (!up->target)
        up->target = gw_calloc(1, sizeof *up->target);
    snprintf(up->target->host, sizeof up->target->host, "%s", host);
    up->target->port = port;
}

bool gw_upstream_secure(const struct gw_upstream *up)
{
    return up->ssl != NULL && up->tls_phase_done;
}

static int may_send(const struct gw_upstream *up)
{
    if (up->state == ST_DEAD || up->state == ST_CLOSING)
        return GW_ECLOSED;
    /* Nothing of the client's may leave before the stream it was shown (after TLS) is open:
     * a client pipelining credentials must not get them sent ahead of STARTTLS. */
    if (!up->tls_phase_done || up->state != ST_STREAM)
        return GW_EAGAIN;
    return 0;
}

static void queued(struct gw_upstream *up, const struct gw_xml *el)
{
    if (el && is_stanza(el)) {
        (*up->m->stanzas[up->transport][0])++;
        uint64_t t = up->core->read_ns;
        if (t && up->out_timed++ == 0)
            up->out_read_ns = t;
    }
    defer_flush(up); /* written before the loop sleeps, with the rest of this iteration's */
    account(up);
    if (up->state != ST_DEAD && up->out.len > up->core->cfg->limit_queue_bytes / 2)
        up->high = true;
    gw_core_batch_check(up->core, &((struct shared *)up->core->upstream_shared)->batch);
}

int gw_upstream_send(struct gw_upstream *up, const struct gw_xml *el)
{
    int rc = may_send(up);
    if (rc)
        return rc;
    size_t before = up->out.len;
    rc = gw_xml_serialize(&up->out, el, GW_NS_CLIENT);
    if (rc) {
        up->out.len = before;
        return rc;
    }
    queued(up, el);
    return 0;
}

int gw_upstream_send_text(struct gw_upstream *up, const struct gw_xml *el, const char *text,
                          size_t len)
{
    int rc = may_send(up);
    if (!rc)
        rc = gw_buf_append(&up->out, text, len);
    if (!rc)
        queued(up, el);
    return rc;
}

size_t gw_upstream_stanza_doc(const struct gw_upstream *up, const struct gw_xml *el,
                              struct iovec v[3])
{
    static const char ns[] = " xmlns='" GW_NS_CLIENT "'";
    size_t len;
    bool declares;
    const char *raw = up->parser ? gw_stream_stanza_bytes(up->parser, &len, &declares) : NULL;
    if (!raw || el->prefix || !el->ns || strcmp(el->ns, GW_NS_CLIENT) != 0)
        return 0;
    if (declares) {
        v[0] = (struct iovec){(void *)raw, len};
        return 1;
    }
    size_t at = 1 + strlen(el->name); /* after "<message" */
    v[0] = (struct iovec){(void *)raw, at};
    v[1] = (struct iovec){(void *)ns, sizeof ns - 1};
    v[2] = (struct iovec){(void *)(raw + at), len - at};
    return 3;
}

void gw_upstream_set_transport(struct gw_upstream *up, enum gw_transport t)
{
    up->transport = (unsigned)t < GW_TRANSPORT_COUNT ? (unsigned)t : GW_TRANSPORT_COUNT;
}

size_t gw_upstream_queued(const struct gw_upstream *up)
{
    return up->out.len;
}

void gw_upstream_pause(struct gw_upstream *up, bool paused)
{
    if (up->paused == paused || up->state == ST_DEAD)
        return;
    up->paused = paused;
    update_poll(up);
    if (!paused && up->ssl && mbedtls_ssl_get_bytes_avail(up->ssl) > 0)
        uv_timer_start(&up->timer, on_timeout, 0, 0);
}

void gw_upstream_close(struct gw_upstream *up)
{
    if (!up || up->freed)
        return;
    if (up->state != ST_STREAM || !up->tls_phase_done) {
        gw_upstream_free(up);
        return;
    }
    queue(up, "</stream:stream>", 16);
    flush(up);
    up->state = ST_CLOSING;
    up->paused = false;
    update_poll(up);
    uv_timer_start(&up->timer, on_timeout, CLOSE_GRACE_MS, 0);
}
