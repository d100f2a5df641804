/* BOSH sessions of the driver (XEP-0124/0206) over HTTP/1.1 keep-alive connections on libuv.
 *
 * Each session has two connection slots, as hold='1' allows two requests at once. While
 * logging in, requests go one at a time (create, auth, restart, bind); afterwards the client
 * keeps one request waiting at the server and sends queued messages on the other slot, all of
 * them in one body. A response frees its slot; with nothing left outstanding, an empty request
 * goes out so the server can always deliver. The HTTP client is minimal on purpose: one
 * request per connection at a time, Content-Length or chunked bodies, and it counts every byte
 * it writes and reads. */
#include "bench/bench.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define NS_HTTPBIND "http://jabber.org/protocol/httpbind"
#define MAX_BATCH   64

enum slot_state { SLOT_CLOSED, SLOT_CONNECTING, SLOT_IDLE, SLOT_BUSY };

struct slot {
    uv_tcp_t tcp;
    uv_connect_t creq;
    struct bosh *o;
    enum slot_state state;
    bool handle_open;
    char *rx;
    size_t rx_len, rx_cap;
    struct wreq *req; /* written once connected */
    size_t req_len;
};

struct bosh {
    struct bench_sess *s;
    struct slot slot[2];
    char sid[96];
    unsigned long long rid;
    unsigned outstanding;
    uint64_t bytes; /* HTTP bytes written and read, headers included */
};

struct wreq {
    uv_write_t w;
    char data[];
};

static void pump(struct bosh *o);
static void send_body(struct bosh *o, const char *payload, size_t plen, const char *attrs);

static void fail(struct bosh *o, const char *why)
{
    bench_failed(o->s, why);
}

static void on_written(uv_write_t *w, int status)
{
    (void)status; /* a failed write shows as a read error or EOF */
    free(w);
}

static void write_req(struct slot *sl)
{
    struct wreq *w = sl->req;
    uv_buf_t buf = uv_buf_init(w->data, (unsigned)sl->req_len);
    sl->req = NULL;
    sl->state = SLOT_BUSY;
    if (uv_write(&w->w, (uv_stream_t *)&sl->tcp, &buf, 1, on_written) != 0) {
        free(w);
        fail(sl->o, "write failed");
    }
}

static void on_close(uv_handle_t *h)
{
    struct slot *sl = h->data;
    sl->handle_open = false;
    free(sl->req); /* a request that never got written: its session already failed */
    sl->req = NULL;
}

static void close_slot(struct slot *sl)
{
    if (sl->handle_open && !uv_is_closing((uv_handle_t *)&sl->tcp))
        uv_close((uv_handle_t *)&sl->tcp, on_close);
    sl->state = SLOT_CLOSED;
    sl->rx_len = 0;
}

static void on_response(struct slot *sl, int status, const char *body, size_t len);

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct slot *sl = h->data;
    (void)hint;
    if (sl->rx_cap - sl->rx_len < 16384) {
        sl->rx_cap = sl->rx_cap ? sl->rx_cap * 2 : 32768;
        sl->rx = realloc(sl->rx, sl->rx_cap);
        if (!sl->rx)
            abort();
    }
    *buf = uv_buf_init(sl->rx + sl->rx_len, (unsigned)(sl->rx_cap - sl->rx_len));
}

/* Length of a complete chunked body starting at p (bytes up to and including the last chunk's
 * trailer), with the data copied together into out; 0 while incomplete, -1 when malformed. */
static long chunked(const char *p, size_t avail, char **out, size_t *outlen)
{
    size_t off = 0, len = 0;
    char *data = NULL;
    for (;;) {
        const char *eol = msg_find(p + off, avail - off, "\r\n");
        if (!eol)
            break;
        char *end;
        unsigned long n = strtoul(p + off, &end, 16);
        if (end == p + off || n > (1u << 24))
            goto bad;
        size_t data_at = (size_t)(eol - p) + 2;
        if (avail < data_at + n + 2)
            break;
        if (n == 0) { /* no trailers expected: the last chunk ends with one more CRLF */
            *out = data;
            *outlen = len;
            return (long)(data_at + 2);
        }
        data = realloc(data, len + n + 1);
        if (!data)
            abort();
        memcpy(data + len, p + data_at, n);
        len += n;
        off = data_at + n + 2;
    }
    free(data);
    return 0;
bad:
    free(data);
    return -1;
}

/* Parses complete responses off the front of the buffer. */
static void parse(struct slot *sl)
{
    for (;;) {
        const char *hdr_end = msg_find(sl->rx, sl->rx_len, "\r\n\r\n");
        if (!hdr_end)
            return;
        size_t hlen = (size_t)(hdr_end - sl->rx) + 4;
        int status = 0;
        if (sl->rx_len < 12 || sscanf(sl->rx, "HTTP/1.%*d %d", &status) != 1) {
            fail(sl->o, "bad HTTP response");
            close_slot(sl);
            return;
        }
        size_t clen = 0;
        bool close_after = false, is_chunked = false;
        for (const char *p = sl->rx; p < hdr_end;) {
            const char *eol = msg_find(p, (size_t)(hdr_end + 2 - p), "\r\n");
            if (!eol)
                break;
            if (strncasecmp(p, "content-length:", 15) == 0)
                clen = strtoul(p + 15, NULL, 10);
            else if (strncasecmp(p, "connection:", 11) == 0 &&
                     msg_find(p, (size_t)(eol - p), "close"))
                close_after = true;
            else if (strncasecmp(p, "transfer-encoding:", 18) == 0 &&
                     msg_find(p, (size_t)(eol - p), "chunked"))
                is_chunked = true;
            p = eol + 2;
        }
        char *joined = NULL;
        size_t blen = clen;
        if (is_chunked) {
            long n = chunked(sl->rx + hlen, sl->rx_len - hlen, &joined, &blen);
            if (n < 0) {
                fail(sl->o, "bad chunked body");
                close_slot(sl);
                return;
            }
            if (n == 0)
                return;
            clen = (size_t)n;
        }
        if (sl->rx_len < hlen + clen)
            return;
        sl->o->bytes += hlen + clen;
        if (sl->o->s->b->measuring)
            sl->o->s->b->st.msg_bytes += hlen + clen;
        sl->state = SLOT_IDLE;
        char *body = sl->rx + hlen;
        size_t rest = sl->rx_len - hlen - clen;
        if (close_after)
            close_slot(sl);
        on_response(sl, status, joined ? joined : body, joined ? blen : clen);
        free(joined);
        if (sl->rx_len >= hlen + clen) { /* not closed and reset meanwhile */
            memmove(sl->rx, body + clen, rest);
            sl->rx_len = rest;
        }
    }
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    struct slot *sl = st->data;
    (void)buf;
    if (n < 0) {
        bool was_busy = sl->state == SLOT_BUSY;
        close_slot(sl);
        if (was_busy)
            fail(sl->o, "connection lost during a request");
        return;
    }
    sl->rx_len += (size_t)n;
    parse(sl);
}

static void on_connect(uv_connect_t *c, int status)
{
    struct slot *sl = c->data;
    if (status < 0) {
        close_slot(sl);
        fail(sl->o, "connect failed");
        return;
    }
    sl->state = SLOT_IDLE;
    uv_read_start((uv_stream_t *)&sl->tcp, on_alloc, on_read);
    if (sl->req)
        write_req(sl);
}

static struct slot *free_slot(struct bosh *o)
{
    for (int i = 0; i < 2; i++)
        if (o->slot[i].state == SLOT_IDLE)
            return &o->slot[i];
    for (int i = 0; i < 2; i++)
        if (o->slot[i].state == SLOT_CLOSED && !o->slot[i].handle_open)
            return &o->slot[i];
    return NULL;
}

/* Wraps payload in <body/> and sends it on a free slot, connecting it if needed. */
static void send_body(struct bosh *o, const char *payload, size_t plen, const char *attrs)
{
    struct bench *b = o->s->b;
    struct slot *sl = free_slot(o);
    if (!sl) {
        fail(o, "no free connection slot");
        return;
    }
    char head[512];
    int hn;
    if (o->sid[0])
        hn = snprintf(head, sizeof head, "<body rid='%llu' sid='%s' xmlns='" NS_HTTPBIND "'%s",
                      o->rid++, o->sid, attrs);
    else
        hn = snprintf(head, sizeof head,
                      "<body content='text/xml; charset=utf-8' hold='1' rid='%llu' to='%s' "
                      "ver='1.6' wait='60' xml:lang='en' xmpp:version='1.0' xmlns='" NS_HTTPBIND
                      "' xmlns:xmpp='urn:xmpp:xbosh'%s",
                      o->rid++, b->domain, attrs);
    size_t blen = (size_t)hn + (plen ? 1 + plen + 7 : 2);
    char hdr[256];
    int hl = snprintf(hdr, sizeof hdr,
                      "POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: text/xml; "
                      "charset=utf-8\r\nContent-Length: %zu\r\n\r\n",
                      b->path, b->host, b->port, blen);
    struct wreq *w = malloc(sizeof *w + (size_t)hl + blen + 1);
    if (!w)
        abort();
    char *p = w->data;
    memcpy(p, hdr, (size_t)hl);
    p += hl;
    memcpy(p, head, (size_t)hn);
    p += hn;
    if (plen) {
        *p++ = '>';
        memcpy(p, payload, plen);
        p += plen;
        memcpy(p, "</body>", 7);
        p += 7;
    } else {
        memcpy(p, "/>", 2);
        p += 2;
    }
    sl->req = w;
    sl->req_len = (size_t)(p - w->data);
    o->bytes += sl->req_len;
    if (b->measuring)
        b->st.msg_bytes += sl->req_len;
    o->outstanding++;
    if (sl->state == SLOT_IDLE) {
        write_req(sl);
        return;
    }
    uv_tcp_init(b->loop, &sl->tcp);
    sl->tcp.data = sl;
    sl->handle_open = true;
    sl->state = SLOT_CONNECTING;
    const char *src = bench_source(b, o->s->idx);
    if (src) {
        struct sockaddr_in a;
        uv_ip4_addr(src, 0, &a);
        uv_tcp_bind(&sl->tcp, (struct sockaddr *)&a, 0);
    }
    struct sockaddr_in dst;
    uv_ip4_addr(b->host, b->port, &dst);
    sl->creq.data = sl;
    if (uv_tcp_connect(&sl->creq, &sl->tcp, (struct sockaddr *)&dst, on_connect) != 0) {
        close_slot(sl);
        fail(o, "connect failed");
    }
}

static void poll_empty(struct bosh *o)
{
    send_body(o, NULL, 0, "");
}

static bool attr_value(const char *body, size_t len, const char *name, char *out, size_t cap)
{
    char pat[32];
    for (int q = 0; q < 2; q++) {
        snprintf(pat, sizeof pat, " %s=%c", name, q ? '"' : '\'');
        const char *p = msg_find(body, len, pat);
        if (!p)
            continue;
        p += strlen(pat);
        const char *e = memchr(p, q ? '"' : '\'', (size_t)(body + len - p));
        if (!e || (size_t)(e - p) >= cap)
            return false;
        memcpy(out, p, (size_t)(e - p));
        out[e - p] = '\0';
        return true;
    }
    return false;
}

static void on_response(struct slot *sl, int status, const char *body, size_t len)
{
    struct bosh *o = sl->o;
    struct bench_sess *s = o->s;
    struct bench *b = s->b;
    o->outstanding--;
    if (s->failed)
        return;
    if (status != 200 || msg_find(body, len, "type='terminate'") ||
        msg_find(body, len, "type=\"terminate\"")) {
        fail(o, status != 200 ? "HTTP error" : "session terminated");
        return;
    }
    char stanza[512], user[128];
    switch (s->step) {
    case 1:
        if (!o->sid[0] && !attr_value(body, len, "sid", o->sid, sizeof o->sid)) {
            fail(o, "no sid");
            return;
        }
        if (msg_find(body, len, "<mechanisms")) {
            snprintf(user, sizeof user, "%s%u", b->user_prefix, s->idx);
            size_t n = msg_xml_auth_plain(stanza, sizeof stanza, user, b->password);
            s->step = 2;
            send_body(o, stanza, n, "");
        } else if (o->outstanding == 0) {
            poll_empty(o);
        }
        return;
    case 2:
        if (msg_find(body, len, "<success")) {
            s->step = 3;
            send_body(o, NULL, 0, " xml:lang='en' xmpp:restart='true' xmlns:xmpp='urn:xmpp:xbosh'");
        } else if (msg_find(body, len, "<failure")) {
            fail(o, "SASL failure");
        } else if (o->outstanding == 0) {
            poll_empty(o);
        }
        return;
    case 3:
        if (msg_find(body, len, "<bind")) {
            s->step = 4;
            send_body(o, stanza, msg_xml_bind(stanza, sizeof stanza), "");
        } else if (o->outstanding == 0) {
            poll_empty(o);
        }
        return;
    case 4: {
        char jid[128];
        if (msg_find_jid(body, len, false, jid, sizeof jid)) {
            s->step = 5;
            bench_logged_in(s, jid);
            pump(o);
        } else if (o->outstanding == 0) {
            poll_empty(o);
        }
        return;
    }
    default:
        msg_scan_xml(s, body, len);
        pump(o);
        return;
    }
}

/* After login: queued messages go out at once if a request may be added; otherwise one
 * request always waits at the server. */
static void pump(struct bosh *o)
{
    struct bench_sess *s = o->s;
    struct bench *b = s->b;
    if (s->failed || s->step != 5)
        return;
    if (s->ring_len && o->outstanding < 2) {
        static char payload[MAX_BATCH * 1024];
        size_t plen = 0;
        char body[1024];
        unsigned n = 0;
        while (s->ring_len && n < MAX_BATCH) {
            struct pending *q = &s->ring[s->ring_head];
            msg_body(body, sizeof body, b->body_len, q->due_ns, q->seq);
            size_t m =
                msg_xml_chat(payload + plen, sizeof payload - plen, s->peer->jid, q->seq, body);
            if (!m)
                break;
            plen += m;
            s->ring_head = (s->ring_head + 1) % RING_CAP;
            s->ring_len--;
            b->st.sent++;
            n++;
        }
        send_body(o, payload, plen, "");
        return;
    }
    if (o->outstanding == 0)
        poll_empty(o);
}

void bench_bosh_init(struct bench *b)
{
    (void)b;
}

void bench_bosh_start(struct bench_sess *s)
{
    struct bosh *o = calloc(1, sizeof *o);
    if (!o)
        abort();
    o->s = s;
    o->rid = 1000000 + (unsigned long long)s->idx * 7919u;
    for (int i = 0; i < 2; i++)
        o->slot[i].o = o;
    s->t = o;
    s->step = 1;
    poll_empty(o); /* without a sid this is the session creation request */
}

void bench_bosh_kick(struct bench_sess *s)
{
    if (s->t)
        pump(s->t);
}

uint64_t bench_bosh_tcp_bytes(struct bench_sess *s)
{
    return s->t ? ((struct bosh *)s->t)->bytes : 0;
}

void bench_bosh_free(struct bench *b)
{
    (void)b;
}

int bench_bosh_probe(const char *host, int port, const char *path, const char *domain)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return 0;
    struct timeval tv = {3, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in a;
    uv_ip4_addr(host, port, &a);
    int ok = 0;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) {
        char body[512], req[1024];
        int bl = snprintf(body, sizeof body,
                          "<body content='text/xml; charset=utf-8' hold='1' rid='1' to='%s' "
                          "ver='1.6' wait='1' xml:lang='en' xmpp:version='1.0' xmlns='" NS_HTTPBIND
                          "' xmlns:xmpp='urn:xmpp:xbosh'/>",
                          domain);
        int rl = snprintf(req, sizeof req,
                          "POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: text/xml; "
                          "charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
                          path, host, port, bl, body);
        char resp[8192];
        size_t got = 0;
        if (write(fd, req, (size_t)rl) == rl) {
            ssize_t n;
            while (got < sizeof resp - 1 && (n = read(fd, resp + got, sizeof resp - 1 - got)) > 0)
                got += (size_t)n;
        }
        resp[got] = '\0';
        int status = 0;
        ok = sscanf(resp, "HTTP/1.%*d %d", &status) == 1 && status == 200 &&
             (msg_find(resp, got, " sid='") || msg_find(resp, got, " sid=\""));
    }
    close(fd);
    return ok;
}
