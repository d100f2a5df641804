/* Tests for xmpp/component.c against a scripted XEP-0114 server on the same loop (real TCP on
 * loopback): the handshake digest, the handshake itself, disco/ping/unknown iqs answered by the
 * link, handlers seeing jabber:client stanzas, sends checked for from/to, iqs matched by id and
 * sender with timeouts, a dropped connection failing pending iqs and reconnecting, a refused
 * secret retried with growing backoff, and the outbound queue bound. */
#include "tests/unit/check.h"
#include "gateway/core.h"
#include "gateway/err.h"
#include "gateway/metrics.h"
#include "gateway/rand.h"
#include "xmpp/component.h"

#include <mbedtls/sha1.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uv_loop_t loop;

/* ---- the scripted server ---- */

struct srv {
    uv_tcp_t listener;
    uv_tcp_t *client;
    char rx[1 << 16];
    size_t rxlen;
    int accepts;
    uint64_t accept_at[8];
    bool paused; /* stop reading: the component's queue must fill up */
};

static struct srv S;

static void srv_clear(void)
{
    S.rxlen = 0;
    S.rx[0] = '\0';
}

static void srv_alloc(uv_handle_t *h, size_t n, uv_buf_t *b)
{
    (void)h;
    (void)n;
    static char buf[65536];
    *b = uv_buf_init(buf, sizeof buf);
}

static void srv_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    if (n <= 0) {
        if (n < 0 && (uv_tcp_t *)s == S.client) {
            uv_close((uv_handle_t *)s, (uv_close_cb)free);
            S.client = NULL;
        }
        return;
    }
    size_t room = sizeof S.rx - 1 - S.rxlen;
    size_t k = (size_t)n < room ? (size_t)n : room;
    memcpy(S.rx + S.rxlen, b->base, k);
    S.rxlen += k;
    S.rx[S.rxlen] = '\0';
}

static void srv_accept(uv_stream_t *l, int status)
{
    if (status < 0)
        return;
    uv_tcp_t *c = malloc(sizeof *c);
    uv_tcp_init(&loop, c);
    if (uv_accept(l, (uv_stream_t *)c) != 0) {
        uv_close((uv_handle_t *)c, (uv_close_cb)free);
        return;
    }
    if (S.client) /* one connection at a time: the old one is gone */
        uv_close((uv_handle_t *)S.client, (uv_close_cb)free);
    S.client = c;
    srv_clear();
    if (S.accepts < 8)
        S.accept_at[S.accepts] = uv_now(&loop);
    S.accepts++;
    if (!S.paused)
        uv_read_start((uv_stream_t *)c, srv_alloc, srv_read);
}

static void srv_send(const char *text)
{
    if (!S.client)
        return;
    uv_buf_t b = uv_buf_init((char *)text, (unsigned)strlen(text));
    uv_try_write((uv_stream_t *)S.client, &b, 1);
}

static void srv_drop(void)
{
    if (S.client) {
        uv_close((uv_handle_t *)S.client, (uv_close_cb)free);
        S.client = NULL;
    }
}

static void tick(uv_timer_t *t)
{
    (void)t;
}

/* Runs the loop until cond() or ms pass; returns cond(). */
static bool run_until(bool (*cond)(void *), void *arg, uint64_t ms)
{
    uv_timer_t t;
    uv_timer_init(&loop, &t);
    uv_timer_start(&t, tick, 5, 5);
    uv_update_time(&loop);
    uint64_t until = uv_now(&loop) + ms;
    bool ok;
    while (!(ok = cond(arg)) && uv_now(&loop) < until)
        uv_run(&loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    return ok;
}

static bool rx_has(void *s)
{
    return strstr(S.rx, s) != NULL;
}

static bool never(void *arg)
{
    (void)arg;
    return false;
}

/* Waits for text from the component, then forgets what came before it and the text itself. */
static bool srv_expect(const char *text)
{
    bool ok = run_until(rx_has, (void *)text, 3000);
    if (ok) {
        char *at = strstr(S.rx, text) + strlen(text);
        S.rxlen = strlen(at);
        memmove(S.rx, at, S.rxlen + 1);
    }
    return ok;
}

/* ---- the component's side ---- */

static int ups, downs;
static void on_watch(void *arg, bool up)
{
    (void)arg;
    if (up)
        ups++;
    else
        downs++;
}

static bool accepted_after(void *n)
{
    return S.accepts > *(int *)n;
}

static bool is_up(void *c)
{
    return gw_component_up(c);
}

static bool is_down(void *c)
{
    return !gw_component_up(c);
}

struct seen {
    int calls;
    bool client_ns;
    char id[64];
};

static bool on_custom_iq(void *arg, const struct gw_xml *iq)
{
    struct seen *s = arg;
    s->calls++;
    const struct gw_xml *q = gw_xml_next_element(iq, NULL);
    s->client_ns =
        iq->ns && strcmp(iq->ns, GW_NS_CLIENT) == 0 && q && strcmp(q->ns, "urn:example:test") == 0;
    snprintf(s->id, sizeof s->id, "%s", gw_xml_attr(iq, "id"));
    return true; /* answered below by the test through reply_result */
}

struct iqres {
    bool done;
    int err;
    char type[16];
};

static void on_iq(void *arg, int err, const struct gw_xml *reply)
{
    struct iqres *r = arg;
    r->done = true;
    r->err = err;
    snprintf(r->type, sizeof r->type, "%s", reply ? gw_xml_attr(reply, "type") : "-");
}

static bool iq_done(void *r)
{
    return ((struct iqres *)r)->done;
}

/* The id the component gave the iq it sent (the first id='…' still unread). */
static void last_id(char *out, size_t n)
{
    const char *p = strstr(S.rx, "id='");
    out[0] = '\0';
    if (p)
        snprintf(out, n, "%.*s", (int)strcspn(p + 4, "'"), p + 4);
}

static const char *HEADER = "<?xml version='1.0'?><stream:stream "
                            "xmlns:stream='http://etherx.jabber.org/streams' "
                            "xmlns='jabber:component:accept' from='comp.test' id='abc'>";

/* Runs one successful handshake on the current connection. */
static bool handshake(struct gw_component *c)
{
    if (!srv_expect("to='comp.test'>"))
        return false;
    srv_send(HEADER);
    /* abc + secret, computed by sha1sum: the construction is SHA-1(id + secret) in lower hex. */
    if (!srv_expect("<handshake>de0a408ef519cd62e7379039634152874895c50c</handshake>"))
        return false;
    srv_send("<handshake/>");
    return run_until(is_up, c, 3000);
}

int main(void)
{
    uv_loop_init(&loop);

    /* The digest, as XEP-0114 §3 defines it (values from sha1sum). */
    char d[41];
    gw_component_digest("3BF96D32", "sifHaDyaQ", d);
    CHECK(strcmp(d, "5514a25f9a866b3cf0b012c033192d7ed9161d6d") == 0, "digest: got %s", d);

    uv_tcp_init(&loop, &S.listener);
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", 0, &sa);
    uv_tcp_bind(&S.listener, (struct sockaddr *)&sa, 0);
    uv_listen((uv_stream_t *)&S.listener, 8, srv_accept);
    struct sockaddr_in bound;
    int len = sizeof bound;
    uv_tcp_getsockname(&S.listener, (struct sockaddr *)&bound, &len);

    struct gw_config cfg;
    gw_config_defaults(&cfg);
    snprintf(cfg.component.host, sizeof cfg.component.host, "127.0.0.1");
    cfg.component.port = ntohs(bound.sin_port);
    snprintf(cfg.component_domain, sizeof cfg.component_domain, "comp.test");
    cfg.component_timeout_ms = 2000;
    cfg.limit_queue_bytes = 20000;
    struct gw_core core = {.loop = &loop, .cfg = &cfg};
    core.metrics = gw_metrics_new();
    gw_rand_new(&core.rand);

    /* Configuration: no domain turns the link off; a domain without a secret is an error. */
    struct gw_component *c = NULL;
    char err[256];
    struct gw_config off = cfg;
    off.component_domain[0] = '\0';
    core.cfg = &off;
    CHECK(gw_component_new(&core, &c, err, sizeof err) == GW_ENOTFOUND && !c,
          "no component_domain: expected the link off");
    core.cfg = &cfg;
    CHECK(gw_component_new(&core, &c, err, sizeof err) == GW_ECONFIG,
          "no secret: expected GW_ECONFIG");
    snprintf(cfg.component_secret, sizeof cfg.component_secret, "secret");
    CHECK(gw_component_new(&core, &c, err, sizeof err) == 0 && c, "expected a link: %s", err);
    gw_component_watch(c, on_watch, NULL);
    struct seen seen = {0};
    gw_component_on(c, "iq", "urn:example:test", on_custom_iq, &seen);
    gw_component_add_identity(c, "pubsub", "push", NULL);
    gw_component_add_feature(c, "urn:xmpp:push:0");

    struct gw_xml *msg = gw_xml_new(GW_NS_CLIENT, "message");
    gw_xml_set_attr(msg, "to", "user@example.com");
    CHECK(gw_component_send(c, msg) == GW_EUNAVAIL, "before start: expected GW_EUNAVAIL");

    /* Handshake. */
    gw_component_start(c);
    CHECK(handshake(c), "expected the link up after the handshake; server got: %s", S.rx);
    CHECK(ups == 1 && downs == 0, "expected one up, got %d up %d down", ups, downs);

    /* Outbound: from is defaulted, checked, and the stanza inherits the stream namespace. */
    gw_xml_add_text(gw_xml_add_child(msg, NULL, "body"), "hi", 2);
    CHECK(gw_component_send(c, msg) == 0, "expected the message sent");
    CHECK(srv_expect("<message to='user@example.com' from='comp.test'><body>hi</body></message>"),
          "expected an unprefixed message from the domain, got: %s", S.rx);
    gw_xml_set_attr(msg, "from", "bot@comp.test/r");
    CHECK(gw_component_send(c, msg) == 0, "a JID on the domain: expected it sent");
    gw_xml_set_attr(msg, "from", "someone@example.com");
    CHECK(gw_component_send(c, msg) == GW_EINVAL, "a from outside the domain: expected EINVAL");
    gw_xml_set_attr(msg, "from", NULL);
    gw_xml_set_attr(msg, "to", NULL);
    CHECK(gw_component_send(c, msg) == GW_EINVAL, "no to: expected GW_EINVAL");
    gw_xml_set_attr(msg, "to", "user@example.com");

    /* Inbound iqs the link answers itself. */
    srv_send("<iq type='get' id='d1' from='localhost' to='comp.test'>"
             "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
    CHECK(srv_expect("<iq type='result' id='d1' to='localhost' from='comp.test'>"),
          "disco: expected a result, got %s", S.rx);
    CHECK(srv_expect("<identity category='pubsub' type='push'/>") &&
              srv_expect("var='urn:xmpp:push:0'"),
          "disco: expected the identity and feature, got %s", S.rx);
    srv_send("<iq type='get' id='p1' from='localhost' to='comp.test'>"
             "<ping xmlns='urn:xmpp:ping'/></iq>");
    CHECK(srv_expect("<iq type='result' id='p1' to='localhost' from='comp.test'/>"),
          "ping: expected an empty result, got %s", S.rx);
    srv_send("<iq type='set' id='u1' from='localhost' to='comp.test'><x xmlns='urn:nope'/></iq>");
    CHECK(srv_expect("id='u1'") && srv_expect("<service-unavailable"),
          "unknown iq: expected service-unavailable, got %s", S.rx);
    srv_send("<iq type='bogus' id='b1' from='localhost' to='comp.test'/>");
    CHECK(srv_expect("id='b1'") && srv_expect("<bad-request"),
          "bad iq type: expected bad-request, got %s", S.rx);

    /* A registered handler sees jabber:client, and answers through the link. */
    srv_send("<iq type='set' id='h1' from='localhost' to='comp.test'>"
             "<q xmlns='urn:example:test'/></iq>");
    run_until(never, NULL, 100);
    CHECK(seen.calls == 1 && seen.client_ns && strcmp(seen.id, "h1") == 0,
          "handler: expected one call in jabber:client, got %d (%d)", seen.calls, seen.client_ns);

    /* Iqs: matched by id and by the answering JID; others time out. */
    struct gw_xml *iq = gw_xml_new(GW_NS_CLIENT, "iq");
    gw_xml_set_attr(iq, "type", "get");
    gw_xml_set_attr(iq, "to", "localhost");
    gw_xml_add_child(iq, "urn:xmpp:ping", "ping");
    struct iqres r1 = {0};
    CHECK(gw_component_iq(c, iq, 2000, on_iq, &r1, NULL) == 0, "expected the iq sent");
    run_until(rx_has, "<ping", 2000);
    char id[64], answer[256];
    last_id(id, sizeof id);
    srv_clear();
    snprintf(answer, sizeof answer, "<iq type='result' id='%s' from='evil.example'/>", id);
    srv_send(answer);
    run_until(never, NULL, 100);
    CHECK(!r1.done, "an answer from another JID: expected it ignored");
    snprintf(answer, sizeof answer, "<iq type='result' id='%s' from='localhost'/>", id);
    srv_send(answer);
    CHECK(run_until(iq_done, &r1, 2000) && r1.err == 0 && strcmp(r1.type, "result") == 0,
          "expected the result, got done=%d err=%d", r1.done, r1.err);
    struct iqres r2 = {0};
    gw_component_iq(c, iq, 200, on_iq, &r2, NULL);
    CHECK(run_until(iq_done, &r2, 2000) && r2.err == GW_ETIMEDOUT,
          "no answer: expected GW_ETIMEDOUT, got %d", r2.err);
    struct iqres r3 = {0};
    uint64_t handle = 0;
    gw_component_iq(c, iq, 200, on_iq, &r3, &handle);
    gw_component_iq_cancel(c, handle);
    run_until(never, NULL, 400);
    CHECK(!r3.done, "cancelled: expected no callback");

    /* The server drops the connection: pending iqs fail, watchers hear it, the link comes back
     * after a short backoff. */
    struct iqres r4 = {0};
    gw_component_iq(c, iq, 5000, on_iq, &r4, NULL);
    run_until(never, NULL, 50);
    srv_drop();
    CHECK(run_until(iq_done, &r4, 2000) && r4.err == GW_ECLOSED,
          "dropped: expected GW_ECLOSED, got %d", r4.err);
    CHECK(downs == 1 && !gw_component_up(c), "dropped: expected the link down");
    CHECK(gw_component_send(c, msg) == GW_EUNAVAIL, "down: expected sends refused");
    srv_clear();
    CHECK(handshake(c), "expected the link back after a reconnect");
    CHECK(ups == 2, "expected a second up, got %d", ups);

    /* The outbound queue is bounded: a server that stops reading fills it. */
    uv_read_stop((uv_stream_t *)S.client);
    struct gw_xml *big = gw_xml_new(GW_NS_CLIENT, "message");
    gw_xml_set_attr(big, "to", "user@example.com");
    static char text[8192];
    memset(text, 'x', sizeof text);
    gw_xml_add_text(gw_xml_add_child(big, NULL, "body"), text, sizeof text);
    int rc = 0, sent = 0;
    for (int i = 0; i < 100000 && rc == 0; i++) {
        rc = gw_component_send(c, big);
        if (rc == 0)
            sent++;
        if (i % 8 == 0)
            run_until(never, NULL, 1);
    }
    CHECK(rc == GW_ELIMIT, "expected GW_ELIMIT once the queue is full, got %d after %d", rc, sent);
    CHECK(gw_component_up(c), "a full queue: expected the link still up");
    gw_xml_free(big);
    uv_read_start((uv_stream_t *)S.client, srv_alloc, srv_read);

    /* A refused secret: the link stays down and retries with growing gaps. */
    srv_drop();
    CHECK(run_until(is_down, c, 2000), "dropped again: expected the link down");
    int before = S.accepts;
    for (int i = 0; i < 3; i++) {
        srv_expect("to='comp.test'>");
        srv_send(HEADER);
        srv_expect("</handshake>");
        srv_send("<stream:error><not-authorized "
                 "xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>");
        run_until(is_down, c, 2000);
    }
    int tries = S.accepts - before;
    CHECK(tries == 3 && S.accepts <= 8, "expected 3 attempts, got %d", tries);
    if (tries == 3 && S.accepts <= 8) {
        uint64_t g1 = S.accept_at[before + 1] - S.accept_at[before];
        uint64_t g2 = S.accept_at[before + 2] - S.accept_at[before + 1];
        CHECK(g1 >= 200 && g2 > g1, "expected growing gaps between attempts, got %llu then %llu",
              (unsigned long long)g1, (unsigned long long)g2);
    }
    CHECK(!gw_component_up(c) && ups == 2, "expected no up while the secret is refused");

    /* The link is wanted now (a standby asked to send): the next attempt comes about a second
     * after the last one began, not at the end of the backoff (2 to 4 s by now). Up or
     * connecting, the hint changes nothing. */
    uv_update_time(&loop);
    uint64_t last = S.accept_at[S.accepts - 1], asked = uv_now(&loop);
    before = S.accepts;
    gw_component_retry_soon(c);
    CHECK(run_until(accepted_after, &before, 1800), "retry_soon: expected an attempt within 1.8 s");
    uint64_t at = S.accept_at[before];
    CHECK(at - last >= 900 && at - asked < 1500,
          "retry_soon: expected the attempt 1 s after the last (%llu ms) and soon after the hint "
          "(%llu ms)",
          (unsigned long long)(at - last), (unsigned long long)(at - asked));
    gw_component_retry_soon(c); /* connecting: ignored */
    CHECK(handshake(c) && ups == 3, "retry_soon: expected the link up (ups %d)", ups);
    before = S.accepts;
    gw_component_retry_soon(c); /* up: ignored */
    run_until(never, NULL, 100);
    CHECK(S.accepts == before && gw_component_up(c), "retry_soon while up: expected no change");

    /* A watcher taken off hears nothing more. */
    gw_component_unwatch(c, on_watch, NULL);
    srv_drop();
    CHECK(run_until(is_down, c, 2000) && downs == 2,
          "unwatched: expected the link down and no call (downs %d)", downs);

    gw_xml_free(msg);
    gw_xml_free(iq);
    gw_component_close(c, NULL, NULL);
    srv_drop();
    uv_close((uv_handle_t *)&S.listener, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    gw_metrics_free(core.metrics);
    gw_rand_free(core.rand);
    CHECK(uv_loop_close(&loop) == 0, "expected every handle closed");
    return CHECK_DONE();
}
