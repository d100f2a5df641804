/* Tests for push/push.c, reg.c, queue.c and send.c through the module's interface, with the
 * in-process store and a webhook receiver on loopback (allowlisted, plain http): source 1
 * (gw_push_stanza, as the detached-session path will call it) pushes once for a message and not
 * for presence or chat states, merges a burst within the quiet window into a counted push,
 * lets an urgent call through the window at once, follows each registration's groupchat
 * choice, keeps sender and body out unless both sides opt in, and registration checks,
 * renewal, the cap and unregistering work; the JSON reading of a registration request
 * (spec.c), the operators' list (reg_list.c: nothing that could push to a device), renewals
 * that keep the XEP-0357 secret, and removing all of an account's registrations. Delivery end
 * to end through real services is in tests/integration/push*.test.mjs. */
#include "tests/unit/check.h"
#include "gateway/core.h"
#include "gateway/err.h"
#include "gateway/metrics.h"
#include "gateway/rand.h"
#include "gateway/store.h"
#include "push/push.h"
#include "xmpp/stream.h"

#include <mbedtls/md.h>
#include <mbedtls/sha256.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uv_loop_t loop;

/* ---- a webhook receiver ---- */

#define MAX_REQ 64

struct srv {
    uv_tcp_t listener;
    int nreq;
    char body[MAX_REQ][1024];
    char sig[MAX_REQ][128];
    char ts[MAX_REQ][32];
    uint64_t at[MAX_REQ];
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

static void header(const char *buf, const char *name, char *out, size_t n)
{
    const char *h = strcasestr(buf, name);
    out[0] = '\0';
    if (h) {
        h += strlen(name);
        snprintf(out, n, "%.*s", (int)strcspn(h, "\r\n"), h);
    }
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
    char cl[16];
    header(p->buf, "Content-Length: ", cl, sizeof cl);
    if (p->answered || !end || p->len < (size_t)(end + 4 - p->buf) + (size_t)atoi(cl))
        return;
    p->answered = true;
    if (S.nreq < MAX_REQ) {
        snprintf(S.body[S.nreq], sizeof S.body[0], "%.*s", atoi(cl), end + 4);
        header(p->buf, "X-Mxgw-Signature: ", S.sig[S.nreq], sizeof S.sig[0]);
        header(p->buf, "X-Mxgw-Timestamp: ", S.ts[S.nreq], sizeof S.ts[0]);
        S.at[S.nreq] = uv_now(&loop);
    }
    S.nreq++;
    static const char ok[] =
        "HTTP/1.1 201 Created\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    uv_write_t *w = malloc(sizeof *w);
    w->data = p;
    uv_buf_t out = uv_buf_init((char *)ok, sizeof ok - 1);
    uv_write(w, s, &out, 1, on_written);
}

static void peer_alloc(uv_handle_t *h, size_t n, uv_buf_t *b)
{
    (void)n;
    struct peer *p = h->data;
    *b = uv_buf_init(p->buf + p->len, (unsigned)(sizeof p->buf - 1 - p->len));
}

static void srv_accept(uv_stream_t *l, int status)
{
    if (status < 0)
        return;
    struct peer *p = calloc(1, sizeof *p);
    uv_tcp_init(&loop, &p->tcp);
    p->tcp.data = p;
    uv_accept(l, (uv_stream_t *)&p->tcp);
    uv_read_start((uv_stream_t *)&p->tcp, peer_alloc, peer_read);
}

/* ---- loop helpers ---- */

static void tick(uv_timer_t *t)
{
    (void)t;
}

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

static bool never(void *arg)
{
    (void)arg;
    return false;
}

static bool requests_at_least(void *n)
{
    return S.nreq >= *(int *)n;
}

static bool wait_requests(int n, uint64_t ms)
{
    return run_until(requests_at_least, &n, ms);
}

struct regres {
    bool done;
    int err;
    char id[40];
    bool replaced;
    bool has_secret;
    char fingerprint[20];
};

static void on_registered(void *arg, const struct gw_push_registered *r)
{
    struct regres *x = arg;
    x->done = true;
    x->err = r->err;
    x->replaced = r->replaced;
    x->has_secret = r->secret != NULL;
    snprintf(x->id, sizeof x->id, "%s", r->id ? r->id : "");
    snprintf(x->fingerprint, sizeof x->fingerprint, "%s", r->view ? r->view->fingerprint : "-");
}

static bool reg_done(void *x)
{
    return ((struct regres *)x)->done;
}

static struct gw_push *push;
static bool keep_secret; /* what reg() asks for */

static struct regres reg(const char *account, const char *token, bool sender, bool body,
                         enum gw_push_groupchat gc, const char *room)
{
    struct regres x = {0};
    struct gw_push_spec spec = {.provider = "webhook",
                                .token = token,
                                .with_sender = sender,
                                .with_body = body,
                                .groupchat = gc,
                                .rooms = &room,
                                .nrooms = room ? 1 : 0,
                                .keep_secret = keep_secret};
    char why[160];
    int rc = gw_push_register(push, account, &spec, on_registered, &x, why, sizeof why);
    if (rc) {
        x.done = true;
        x.err = rc;
        return x;
    }
    run_until(reg_done, &x, 3000);
    return x;
}

static const struct gw_xml_limits lim = {65536, 32, 32};

static int stanza(const char *account, const char *xml, const char *nick)
{
    struct gw_xml *el = NULL;
    const char *cond;
    if (gw_xml_parse_document(xml, strlen(xml), &lim, &el, &cond) != 0)
        return -100;
    int rc = gw_push_stanza(push, account, el, nick);
    gw_xml_free(el);
    return rc;
}

/* The number in "key":N of request i's JSON body, or -1. */
static long json_int(int i, const char *key)
{
    char pat[32];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(S.body[i], pat);
    return p ? strtol(p + strlen(pat), NULL, 10) : -1;
}

static bool has(int i, const char *text)
{
    return strstr(S.body[i], text) != NULL;
}

#define ROMEO "romeo@montague.example"
#define MSG(extra)                                                                                 \
    "<message xmlns='jabber:client' type='chat' from='juliet@capulet.example/b' to='" ROMEO        \
    "/phone'>" extra "</message>"

struct unreg {
    bool done;
    int err;
};

static void on_unreg(void *arg, int err)
{
    struct unreg *u = arg;
    u->done = true;
    u->err = err;
}

static bool unreg_done(void *u)
{
    return ((struct unreg *)u)->done;
}

/* ---- the operators' side ---- */

struct listres {
    bool done;
    int err;
    size_t n;
    char id[4][40], provider[4][16], fingerprint[4][20], rooms[4][80], origin[4][80];
    enum gw_push_groupchat gc[4];
    bool sender[4];
    long long ttl[4];
};

static void on_list(void *arg, int err, const struct gw_push_reg_view *v, size_t n)
{
    struct listres *L = arg;
    L->done = true;
    L->err = err;
    L->n = n;
    for (size_t i = 0; i < n && i < 4; i++) {
        snprintf(L->id[i], sizeof L->id[i], "%s", v[i].id);
        snprintf(L->provider[i], sizeof L->provider[i], "%s", v[i].provider);
        snprintf(L->fingerprint[i], sizeof L->fingerprint[i], "%s", v[i].fingerprint);
        snprintf(L->origin[i], sizeof L->origin[i], "%s", v[i].origin ? v[i].origin : "-");
        L->rooms[i][0] = '\0';
        for (size_t k = 0; k < v[i].nrooms; k++)
            snprintf(L->rooms[i] + strlen(L->rooms[i]), sizeof L->rooms[i] - strlen(L->rooms[i]),
                     "%s%s", k ? "," : "", v[i].rooms[k]);
        L->gc[i] = v[i].groupchat;
        L->sender[i] = v[i].with_sender;
        L->ttl[i] = (long long)(v[i].expires - v[i].created);
    }
}

static bool list_done(void *L)
{
    return ((struct listres *)L)->done;
}

static struct listres list(const char *account)
{
    struct listres L = {0};
    int rc = gw_push_list(push, account, on_list, &L);
    if (rc) {
        L.done = true;
        L.err = rc;
        return L;
    }
    run_until(list_done, &L, 3000);
    return L;
}

/* Index of id in L, or -1. */
static int listed(const struct listres *L, const char *id)
{
    for (size_t i = 0; i < L->n && i < 4; i++)
        if (strcmp(L->id[i], id) == 0)
            return (int)i;
    return -1;
}

static void sha16(const char *s, char out[17])
{
    unsigned char h[32];
    mbedtls_sha256_ret((const unsigned char *)s, strlen(s), h, 0);
    for (int i = 0; i < 8; i++)
        snprintf(out + 2 * i, 3, "%02x", h[i]);
}

struct fieldres {
    bool done;
    char value[80];
};

static void on_hash(void *arg, int err, const struct gw_store_reply *r)
{
    struct fieldres *f = arg;
    f->done = true;
    for (size_t i = 0; !err && i + 1 < r->n; i += 2)
        if (strcmp(r->items[i].ptr, "secret") == 0)
            snprintf(f->value, sizeof f->value, "%s", r->items[i + 1].ptr);
}

static bool field_done(void *f)
{
    return ((struct fieldres *)f)->done;
}

/* The stored XEP-0357 secret hash of registration id. */
static struct fieldres stored_secret(struct gw_store *st, const char *id)
{
    struct fieldres f = {0};
    char key[80];
    snprintf(key, sizeof key, "mxgw:push:reg:%s", id);
    gw_store_hgetall(st, key, on_hash, &f);
    run_until(field_done, &f, 3000);
    return f;
}

struct allres {
    bool done;
    int err;
    size_t removed;
};

static void on_all(void *arg, int err, size_t removed)
{
    struct allres *a = arg;
    a->done = true;
    a->err = err;
    a->removed = removed;
}

static bool all_done(void *a)
{
    return ((struct allres *)a)->done;
}

/* gw_push_spec_from_json: what a registration request may look like. */
static void test_spec_json(void)
{
    static const struct {
        const char *json;
        bool ok;
    } cases[] = {
        {"{\"provider\":\"webhook\",\"token\":\"t\"}", true},
        {"{\"op\":\"push.register\",\"id\":\"r1\",\"provider\":\"webhook\"}", true},
        {"{\"provider\":\"webpush\",\"endpoint\":\"https://x/y\","
         "\"keys\":{\"p256dh\":\"a\",\"auth\":\"b\"},\"sender\":true,\"body\":false,"
         "\"groupchat\":\"all\",\"rooms\":[\"r@m.x\"]}",
         true},
        {"{\"token\":\"t\"}", false},                                 /* no provider */
        {"{\"provider\":1}", false},                                  /* not a string */
        {"{\"provider\":\"webhook\",\"nope\":1}", false},             /* unknown key */
        {"{\"provider\":\"webhook\",\"sender\":\"yes\"}", false},     /* not a boolean */
        {"{\"provider\":\"webhook\",\"groupchat\":\"some\"}", false}, /* unknown mode */
        {"{\"provider\":\"webhook\",\"keys\":[]}", false},            /* keys not an object */
        {"{\"provider\":\"webhook\",\"keys\":{\"x\":\"y\"}}", false}, /* unknown key in keys */
        {"{\"provider\":\"webhook\",\"rooms\":\"r@m.x\"}", false},    /* rooms not an array */
        {"{\"provider\":\"webhook\",\"rooms\":[1]}", false},          /* a room not a string */
    };
    static const char *const own[] = {"op", "id"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct gw_json *obj = NULL;
        char why[160] = "";
        struct gw_push_spec spec;
        const char *rooms[GW_PUSH_ROOMS_MAX];
        gw_json_parse(cases[i].json, strlen(cases[i].json), 4096, &obj, why, sizeof why);
        /* Only the JSON protocol names op and id as its own. */
        size_t nown = strstr(cases[i].json, "\"op\"") ? 2 : 0;
        int rc = gw_push_spec_from_json(obj, own, nown, &spec, rooms, why, sizeof why);
        CHECK((rc == 0) == cases[i].ok && (rc == 0 || why[0]),
              "spec %zu (%s): expected %s, got %d (%s)", i, cases[i].json,
              cases[i].ok ? "ok" : "refused", rc, why);
        if (i == 2 && rc == 0)
            CHECK(strcmp(spec.provider, "webpush") == 0 && strcmp(spec.p256dh, "a") == 0 &&
                      strcmp(spec.auth, "b") == 0 && spec.with_sender && !spec.with_body &&
                      spec.groupchat == GW_GC_ALL && spec.nrooms == 1 &&
                      strcmp(spec.rooms[0], "r@m.x") == 0 && !spec.keep_secret,
                  "spec 2: fields not as given");
        gw_json_free(obj);
    }
    struct gw_push_spec spec;
    const char *rooms[GW_PUSH_ROOMS_MAX];
    char why[160];
    CHECK(gw_push_spec_from_json(NULL, NULL, 0, &spec, rooms, why, sizeof why) == GW_EINVAL,
          "no object: expected GW_EINVAL");
    /* The JSON protocol's own keys are refused where the caller does not name them (REST). */
    const char *op = "{\"op\":\"push.register\",\"provider\":\"webhook\"}";
    struct gw_json *obj = NULL;
    gw_json_parse(op, strlen(op), 4096, &obj, why, sizeof why);
    CHECK(gw_push_spec_from_json(obj, NULL, 0, &spec, rooms, why, sizeof why) == GW_EINVAL &&
              strstr(why, "\"op\""),
          "op without being named: expected GW_EINVAL naming it, got %s", why);
    gw_json_free(obj);
}

static void closed(void *arg)
{
    *(bool *)arg = true;
}

static bool is_true(void *b)
{
    return *(bool *)b;
}

int main(void)
{
    uv_loop_init(&loop);
    uv_tcp_init(&loop, &S.listener);
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", 0, &sa);
    uv_tcp_bind(&S.listener, (struct sockaddr *)&sa, 0);
    uv_listen((uv_stream_t *)&S.listener, 16, srv_accept);
    struct sockaddr_in bound;
    int blen = sizeof bound;
    uv_tcp_getsockname(&S.listener, (struct sockaddr *)&bound, &blen);
    unsigned port = ntohs(bound.sin_port);

    struct gw_config cfg;
    gw_config_defaults(&cfg);
    snprintf(cfg.push_webhook_url, sizeof cfg.push_webhook_url, "http://localhost:%u/hook", port);
    snprintf(cfg.push_webhook_secret, sizeof cfg.push_webhook_secret, "0123456789abcdef-secret");
    snprintf(cfg.push_allowlist, sizeof cfg.push_allowlist, "localhost:%u", port);
    cfg.push_quiet_window_ms = 600;
    cfg.push_max_per_account = 3;
    cfg.push_include_sender = true;
    cfg.push_include_body = true;
    struct gw_core core = {.loop = &loop, .cfg = &cfg};
    core.metrics = gw_metrics_new();
    gw_rand_new(&core.rand);
    gw_store_open(&loop, NULL, 1000, &core.store);
    char err[256];
    int rc = gw_push_new(&core, NULL, &push, err, sizeof err);
    CHECK(rc == 0, "gw_push_new: %s", err);
    if (rc)
        return CHECK_DONE();
    gw_push_start(push);
    CHECK(!gw_push_provider_enabled(push, "webpush") && gw_push_provider_enabled(push, "webhook"),
          "providers: webhook on, webpush off without a VAPID key");
    CHECK(gw_push_jid(push) == NULL && gw_push_vapid_key(push) == NULL,
          "no component link, no VAPID key");

    /* Registration checks happen before anything is stored. */
    struct regres bad = reg("not a jid", "t", false, false, GW_GC_MENTIONS, NULL);
    CHECK(bad.err == GW_EINVAL, "a bad account: expected GW_EINVAL, got %d", bad.err);
    bad = reg(ROMEO, "tab\there", false, false, GW_GC_MENTIONS, NULL);
    CHECK(bad.err == GW_EINVAL, "a token with a control character: expected GW_EINVAL");
    bad = reg(ROMEO, "t", false, false, GW_GC_MENTIONS, "not a room");
    CHECK(bad.err == GW_EINVAL, "a bad room: expected GW_EINVAL");

    struct regres a = reg(ROMEO, "device-a", true, true, GW_GC_MENTIONS, NULL);
    CHECK(a.err == 0 && strlen(a.id) == 32 && !a.replaced, "register a: err %d", a.err);
    struct regres a2 = reg(ROMEO, "device-a", true, true, GW_GC_MENTIONS, NULL);
    CHECK(a2.err == 0 && strcmp(a2.id, a.id) == 0 && a2.replaced, "the same device renews its id");

    /* Source 1: a message pushes once; presence and chat states do not. */
    CHECK(stanza(ROMEO, "<presence xmlns='jabber:client' from='juliet@capulet.example/b'/>",
                 NULL) == 0,
          "presence: expected not important");
    CHECK(stanza(ROMEO, MSG("<composing xmlns='http://jabber.org/protocol/chatstates'/>"), NULL) ==
              0,
          "chat state: expected not important");
    CHECK(stanza(ROMEO, MSG("<body>hello</body>"), NULL) == 1, "message: expected important");
    CHECK(stanza("not a jid", MSG("<body>x</body>"), NULL) == GW_EINVAL,
          "a bad account: expected GW_EINVAL");
    CHECK(wait_requests(1, 3000), "expected one push");
    run_until(never, NULL, 100);
    CHECK(S.nreq == 1 && json_int(0, "n") == 1 && has(0, a.id) && has(0, "\"token\":\"device-a\""),
          "push: expected n=1 for the registration, got %d requests: %s", S.nreq, S.body[0]);
    CHECK(has(0, "\"from\":\"juliet@capulet.example\"") && has(0, "\"body\":\"hello\""),
          "both opted in: expected sender and body, got %s", S.body[0]);
    CHECK(!has(0, "romeo"), "the account JID never appears: %s", S.body[0]);
    /* The signature: HMAC-SHA256(secret, ts "." body), hex. */
    unsigned char mac[32];
    char signed_text[1100], want[80] = "sha256=";
    snprintf(signed_text, sizeof signed_text, "%s.%s", S.ts[0], S.body[0]);
    mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256),
                    (const unsigned char *)cfg.push_webhook_secret, strlen(cfg.push_webhook_secret),
                    (const unsigned char *)signed_text, strlen(signed_text), mac);
    for (int i = 0; i < 32; i++)
        snprintf(want + 7 + 2 * i, 3, "%02x", mac[i]);
    CHECK(strcmp(S.sig[0], want) == 0, "signature: expected %s, got %s", want, S.sig[0]);

    /* A burst within the quiet window: one more push carrying the count. */
    for (int i = 0; i < 20; i++)
        stanza(ROMEO, MSG("<body>burst</body>"), NULL);
    CHECK(wait_requests(2, 3000), "burst: expected a second push");
    run_until(never, NULL, 800);
    CHECK(S.nreq == 2 && json_int(1, "n") == 20,
          "burst: expected 2 pushes in all, the second n=20; "
          "got %d, n=%ld",
          S.nreq, json_int(1, "n"));
    CHECK(S.at[1] - S.at[0] >= 550, "burst: the second push waited for the window (%llu ms)",
          (unsigned long long)(S.at[1] - S.at[0]));

    /* An urgent call is not held by the window. */
    run_until(never, NULL, 700);
    stanza(ROMEO, MSG("<body>one</body>"), NULL);
    CHECK(wait_requests(3, 3000), "expected a push");
    stanza(ROMEO,
           "<message xmlns='jabber:client' from='juliet@capulet.example/b'><propose "
           "xmlns='urn:xmpp:jingle-message:0' id='c1'/></message>",
           NULL);
    CHECK(wait_requests(4, 3000), "call: expected a push");
    CHECK(S.at[3] - S.at[2] < 400 && has(3, "\"urgent\":true"),
          "call: expected an urgent push inside the window, after %llu ms: %s",
          (unsigned long long)(S.at[3] - S.at[2]), S.body[3]);

    /* Groupchat follows each registration's choice. b: mentions (no opt-ins), c: all. */
    run_until(never, NULL, 700);
    struct regres b = reg(ROMEO, "device-b", false, false, GW_GC_NONE, "garden@chat.example");
    struct regres c = reg(ROMEO, "device-c", false, false, GW_GC_ALL, NULL);
    struct regres d = reg(ROMEO, "device-d", false, false, GW_GC_MENTIONS, NULL);
    CHECK(b.err == 0 && c.err == 0 && d.err == GW_ELIMIT,
          "b and c registered, d over the cap of 3: got %d %d %d", b.err, c.err, d.err);
    int before = S.nreq;
    stanza(ROMEO,
           "<message xmlns='jabber:client' type='groupchat' from='hall@chat.example/nurse'>"
           "<body>lunch?</body></message>",
           "romeo");
    CHECK(wait_requests(before + 1, 3000), "groupchat: expected a push for c");
    run_until(never, NULL, 300);
    CHECK(S.nreq == before + 1 && has(before, c.id), "groupchat: only c (all) gets it");
    CHECK(!has(before, "\"from\"") && !has(before, "\"body\""),
          "c did not opt in: no sender, no body: %s", S.body[before]);
    run_until(never, NULL, 700);
    before = S.nreq;
    stanza(ROMEO,
           "<message xmlns='jabber:client' type='groupchat' from='garden@chat.example/n'>"
           "<body>romeo, lunch?</body></message>",
           "romeo");
    CHECK(wait_requests(before + 3, 3000), "a mention in a listed room: expected a, b and c");
    run_until(never, NULL, 300);
    CHECK(S.nreq == before + 3, "a mention: exactly three pushes, got %d", S.nreq - before);

    /* Unregistering: no more pushes for that device; someone else's id is not found. */
    struct unreg u = {0};
    CHECK(gw_push_unregister(push, ROMEO, "nothex", on_unreg, &u) == GW_EINVAL,
          "a malformed id: expected GW_EINVAL");
    gw_push_unregister(push, "juliet@capulet.example", a.id, on_unreg, &u);
    run_until(unreg_done, &u, 3000);
    CHECK(u.done && u.err == GW_ENOTFOUND, "another account's id: expected GW_ENOTFOUND, got %d",
          u.err);
    memset(&u, 0, sizeof u);
    gw_push_unregister(push, ROMEO, a.id, on_unreg, &u);
    run_until(unreg_done, &u, 3000);
    CHECK(u.done && u.err == 0, "unregister a: got %d", u.err);
    run_until(never, NULL, 700);
    before = S.nreq;
    stanza(ROMEO, MSG("<body>after</body>"), NULL);
    CHECK(wait_requests(before + 2, 3000), "after unregistering: expected b and c");
    run_until(never, NULL, 300);
    CHECK(S.nreq == before + 2 && !has(before, a.id) && !has(before + 1, a.id),
          "after unregistering: a gets nothing (%d pushes)", S.nreq - before);

    /* The operators' list: b and c, their choices, and nothing that could push to them. */
    struct listres L = list(ROMEO);
    int ib = listed(&L, b.id), ic = listed(&L, c.id);
    char fb[17], fc[17];
    sha16("device-b", fb);
    sha16("device-c", fc);
    CHECK(L.err == 0 && L.n == 2 && ib >= 0 && ic >= 0 && listed(&L, a.id) < 0,
          "list: expected b and c only, got err %d n %zu", L.err, L.n);
    if (ib >= 0 && ic >= 0) {
        CHECK(strcmp(L.provider[ib], "webhook") == 0 && strcmp(L.fingerprint[ib], fb) == 0 &&
                  strcmp(L.origin[ib], "-") == 0 && L.gc[ib] == GW_GC_NONE &&
                  strcmp(L.rooms[ib], "garden@chat.example") == 0 && !L.sender[ib],
              "list: b is %s %s %s gc %d rooms %s", L.provider[ib], L.fingerprint[ib], L.origin[ib],
              L.gc[ib], L.rooms[ib]);
        CHECK(strcmp(L.fingerprint[ic], fc) == 0 && L.gc[ic] == GW_GC_ALL && !L.rooms[ic][0],
              "list: c is %s gc %d rooms %s", L.fingerprint[ic], L.gc[ic], L.rooms[ic]);
        CHECK(L.ttl[ib] == (long long)(cfg.push_registration_ttl_ms / 1000),
              "list: expected expires - created = the TTL, got %lld", L.ttl[ib]);
    }
    CHECK(strcmp(b.fingerprint, fb) == 0, "registered: the view's fingerprint, got %s",
          b.fingerprint);
    struct listres none = list("nobody@capulet.example");
    CHECK(none.err == 0 && none.n == 0, "another account: expected an empty list");
    CHECK(gw_push_list(push, "not a jid", on_list, &none) == GW_EINVAL,
          "list of a bad account: expected GW_EINVAL");

    /* Renewing with keep_secret keeps the XEP-0357 secret the device was enabled with (and
     * hands out none); renewing without makes a new one. */
    struct fieldres s1 = stored_secret(core.store, c.id);
    keep_secret = true;
    struct regres c2 = reg(ROMEO, "device-c", false, false, GW_GC_MENTIONS, NULL);
    keep_secret = false;
    struct fieldres s2 = stored_secret(core.store, c.id);
    CHECK(c2.err == 0 && c2.replaced && strcmp(c2.id, c.id) == 0 && !c2.has_secret &&
              strlen(s1.value) == 64 && strcmp(s1.value, s2.value) == 0,
          "keep_secret: expected the same id and secret hash, no secret handed out (%s / %s)",
          s1.value, s2.value);
    struct regres c3 = reg(ROMEO, "device-c", false, false, GW_GC_MENTIONS, NULL);
    struct fieldres s3 = stored_secret(core.store, c.id);
    CHECK(c3.err == 0 && c3.replaced && c3.has_secret && strcmp(s3.value, s1.value) != 0,
          "a plain renewal: expected a new secret");
    keep_secret = true;
    struct regres e = reg(ROMEO, "device-e", false, false, GW_GC_MENTIONS, NULL);
    keep_secret = false;
    CHECK(e.err == 0 && !e.replaced && e.has_secret,
          "keep_secret on a new device: a new secret (err %d)", e.err);

    /* Removing all: nothing is listed and nothing pushes any more. */
    struct allres all = {0};
    CHECK(gw_push_unregister_all(push, "not a jid", on_all, &all) == GW_EINVAL,
          "remove all of a bad account: expected GW_EINVAL");
    gw_push_unregister_all(push, ROMEO, on_all, &all);
    run_until(all_done, &all, 3000);
    CHECK(all.done && all.err == 0 && all.removed == 3, "remove all: expected 3, got err %d n %zu",
          all.err, all.removed);
    L = list(ROMEO);
    CHECK(L.err == 0 && L.n == 0, "after removing all: expected an empty list, got %zu", L.n);
    run_until(never, NULL, 700);
    before = S.nreq;
    CHECK(stanza(ROMEO, MSG("<body>nobody home</body>"), NULL) == 1, "still important");
    run_until(never, NULL, 500);
    CHECK(S.nreq == before, "after removing all: expected no push, got %d", S.nreq - before);
    test_spec_json();

    run_until(never, NULL, 700);
    bool closed_flag = false;
    gw_push_close(push, closed, &closed_flag);
    CHECK(run_until(is_true, &closed_flag, 3000), "close: expected the callback");
    gw_store_close(core.store, NULL, NULL);
    uv_close((uv_handle_t *)&S.listener, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    gw_metrics_free(core.metrics);
    gw_rand_free(core.rand);
    CHECK(uv_loop_close(&loop) == 0, "expected every handle closed");
    return CHECK_DONE();
}
