/* Tests for gateway/session.c: admission limits, the pre-auth deadline, store records and the
 * registry's shutdown and empty notifications, on a real loop with the in-process store. */
#include "tests/unit/check.h"
#include "gateway/core.h"
#include "gateway/err.h"
#include "gateway/rand.h"
#include "gateway/session.h"
#include "gateway/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct owner {
    struct gw_session *s;
    int shutdowns;
    enum gw_close_reason why;
    bool close_on_shutdown;
};

static void on_shutdown(void *arg, enum gw_close_reason why)
{
    struct owner *o = arg;
    o->shutdowns++;
    o->why = why;
    if (o->close_on_shutdown) {
        gw_session_close(o->s);
        o->s = NULL;
    }
}

static const struct gw_session_ops ops = {on_shutdown};

struct fetch {
    bool done;
    int err;
    char fields[16][2][128];
    size_t n;
};

static void fetched(void *arg, int err, const struct gw_store_reply *r)
{
    struct fetch *f = arg;
    f->done = true;
    f->err = err;
    f->n = 0;
    for (size_t i = 0; r && i + 1 < r->n && f->n < 16; i += 2, f->n++) {
        snprintf(f->fields[f->n][0], 128, "%.*s", (int)r->items[i].len, r->items[i].ptr);
        snprintf(f->fields[f->n][1], 128, "%.*s", (int)r->items[i + 1].len, r->items[i + 1].ptr);
    }
}

static const char *field(const struct fetch *f, const char *name)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->fields[i][0], name) == 0)
            return f->fields[i][1];
    return NULL;
}

static void fetch_record(struct gw_core *core, const char *id, struct fetch *f)
{
    char key[64];
    snprintf(key, sizeof key, "mxgw:session:%s", id);
    memset(f, 0, sizeof *f);
    gw_store_hgetall(core->store, key, fetched, f);
    while (!f->done) /* NOWAIT: never sleep into the pre-auth deadlines under test */
        uv_run(core->loop, UV_RUN_NOWAIT);
}

static int empties;
static void on_empty(void *arg)
{
    (void)arg;
    empties++;
}

static void noop_timer(uv_timer_t *t)
{
    (void)t;
}

/* Runs the loop for about ms milliseconds of its monotonic clock. */
static void run_for(uv_loop_t *loop, uint64_t ms)
{
    uint64_t until = uv_now(loop) + ms;
    uv_timer_t t;
    uv_timer_init(loop, &t);
    uv_timer_start(&t, noop_timer, ms, 0);
    while (uv_now(loop) < until)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
}

static void store_closed(void *arg)
{
    *(bool *)arg = true;
}

int main(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct gw_config cfg;
    gw_config_defaults(&cfg);
    cfg.limit_sessions_per_ip = 2;
    cfg.limit_sessions = 3;
    cfg.preauth_timeout_ms = 100;
    struct gw_core core = {.loop = &loop, .cfg = &cfg};
    snprintf(core.node_id, sizeof core.node_id, "node-a");
    CHECK(gw_rand_new(&core.rand) == 0, "expected a generator");
    CHECK(gw_store_open(&loop, NULL, 1000, &core.store) == 0, "expected the memory store");
    core.reg = gw_registry_new(&core);
    gw_registry_on_empty(core.reg, on_empty, NULL);

    uv_update_time(&loop); /* set-up took time: deadlines count from now */

    /* Per-IP and total limits. */
    struct owner o[5] = {{0}};
    int rc;
    rc = gw_session_open(&core, GW_TRANSPORT_WS_XMPP, "10.0.0.1", &ops, &o[0], &o[0].s);
    CHECK(rc == 0, "expected open, got %d", rc);
    rc = gw_session_open(&core, GW_TRANSPORT_WS_XMPP, "10.0.0.1", &ops, &o[1], &o[1].s);
    CHECK(rc == 0, "expected second open from the same IP, got %d", rc);
    rc = gw_session_open(&core, GW_TRANSPORT_WS_XMPP, "10.0.0.1", &ops, &o[2], &o[2].s);
    CHECK(rc == GW_ELIMIT, "expected GW_ELIMIT for a third session from one IP, got %d", rc);
    rc = gw_session_open(&core, GW_TRANSPORT_BOSH, "10.0.0.2", &ops, &o[2], &o[2].s);
    CHECK(rc == 0, "expected open from another IP, got %d", rc);
    rc = gw_session_open(&core, GW_TRANSPORT_WS_XMPP, "10.0.0.3", &ops, &o[3], &o[3].s);
    CHECK(rc == GW_ELIMIT, "expected GW_ELIMIT past the total limit, got %d", rc);
    CHECK(gw_registry_count(core.reg) == 3, "expected 3 sessions, got %zu",
          gw_registry_count(core.reg));

    /* Ids: 128 bits of hex, distinct, findable. */
    const char *id0 = gw_session_id(o[0].s), *id1 = gw_session_id(o[1].s);
    CHECK(strlen(id0) == 32 && strspn(id0, "0123456789abcdef") == 32, "expected 32 hex, got %s",
          id0);
    CHECK(strcmp(id0, id1) != 0, "expected distinct ids");
    CHECK(gw_registry_find(core.reg, id1) == o[1].s, "expected to find session by id");

    /* Record in the store. */
    struct fetch f;
    fetch_record(&core, id0, &f);
    CHECK(f.err == 0, "expected hgetall ok, got %d", f.err);
    CHECK(field(&f, "state") && strcmp(field(&f, "state"), "connecting") == 0,
          "expected state connecting, got %s", field(&f, "state") ? field(&f, "state") : "(none)");
    CHECK(field(&f, "node") && strcmp(field(&f, "node"), "node-a") == 0, "expected node-a");
    CHECK(field(&f, "transport") && strcmp(field(&f, "transport"), "ws-xmpp") == 0,
          "expected ws-xmpp");
    CHECK(field(&f, "ip") && strcmp(field(&f, "ip"), "10.0.0.1") == 0, "expected ip 10.0.0.1");

    /* Binding records the JID and cancels the pre-auth deadline of that session only. */
    gw_session_set_jid(o[0].s, "alice@localhost");
    gw_session_set_state(o[0].s, GW_SESSION_BOUND);
    fetch_record(&core, id0, &f);
    CHECK(field(&f, "jid") && strcmp(field(&f, "jid"), "alice@localhost") == 0,
          "expected jid alice@localhost");
    CHECK(field(&f, "state") && strcmp(field(&f, "state"), "bound") == 0, "expected bound");

    run_for(&loop, 250);
    CHECK(o[0].shutdowns == 0, "expected no pre-auth shutdown for a bound session");
    CHECK(o[1].shutdowns == 1 && o[1].why == GW_CLOSE_PREAUTH,
          "expected pre-auth shutdown for an unbound session, got %d", o[1].shutdowns);
    CHECK(o[2].shutdowns == 1, "expected pre-auth shutdown for the BOSH session");

    /* Closing frees a slot and deletes the record. */
    char saved[40];
    snprintf(saved, sizeof saved, "%s", id1);
    gw_session_close(o[1].s);
    o[1].s = NULL;
    fetch_record(&core, saved, &f);
    CHECK(f.n == 0, "expected the record gone after close, got %zu fields", f.n);
    CHECK(gw_registry_find(core.reg, saved) == NULL, "expected the id gone from the registry");
    rc = gw_session_open(&core, GW_TRANSPORT_WS_XMPP, "10.0.0.1", &ops, &o[3], &o[3].s);
    CHECK(rc == 0, "expected a slot to be free again, got %d", rc);

    /* Shutdown asks every owner; owners that close make the registry empty. */
    for (int i = 0; i < 4; i++)
        o[i].close_on_shutdown = true;
    CHECK(empties == 0, "expected no empty notification yet");
    gw_registry_shutdown_all(core.reg, GW_CLOSE_SHUTDOWN);
    CHECK(gw_registry_count(core.reg) == 0, "expected no sessions, got %zu",
          gw_registry_count(core.reg));
    CHECK(empties == 1, "expected one empty notification, got %d", empties);
    CHECK(o[0].why == GW_CLOSE_SHUTDOWN, "expected the shutdown reason");

    /* A session opened with a given id (arriving from another node), then released to another
     * node: gone from here, its record kept, this node's index entry dropped. */
    struct owner moved = {0}, other = {0};
    const char *given = "00112233445566778899aabbccddeeff";
    rc = gw_session_open_as(&core, GW_TRANSPORT_WS_JSON, "10.0.0.5", given, &ops, &moved, &moved.s);
    CHECK(rc == 0 && strcmp(gw_session_id(moved.s), given) == 0,
          "expected a session with the given id, got %d", rc);
    rc = gw_session_open_as(&core, GW_TRANSPORT_WS_JSON, "10.0.0.5", given, &ops, &other, &other.s);
    CHECK(rc == GW_EEXIST, "expected GW_EEXIST for a live id, got %d", rc);
    rc = gw_session_open_as(&core, GW_TRANSPORT_WS_JSON, "10.0.0.5", "", &ops, &other, &other.s);
    CHECK(rc == GW_EINVAL, "expected an empty id refused, got %d", rc);
    gw_session_set_owner(moved.s, &ops, &other);
    gw_session_set_jid(moved.s, "bob@localhost");
    gw_session_set_state(moved.s, GW_SESSION_DETACHED);
    gw_registry_shutdown_all(core.reg, GW_CLOSE_KICKED);
    CHECK(other.shutdowns == 1 && moved.shutdowns == 0, "expected the new owner asked");
    gw_session_release(moved.s);
    CHECK(gw_registry_find(core.reg, given) == NULL, "expected the released id gone from here");
    fetch_record(&core, given, &f);
    CHECK(field(&f, "state") && strcmp(field(&f, "state"), "detached") == 0,
          "expected the record kept as detached, got %zu fields", f.n);

    /* Draining refuses new sessions. */
    core.draining = true;
    rc = gw_session_open(&core, GW_TRANSPORT_WS_XMPP, "10.0.0.9", &ops, &o[4], &o[4].s);
    CHECK(rc == GW_EUNAVAIL, "expected GW_EUNAVAIL while draining, got %d", rc);

    bool closed = false;
    gw_store_close(core.store, store_closed, &closed);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(closed, "expected the store's close callback");
    gw_registry_free(core.reg);
    gw_rand_free(core.rand);
    CHECK(uv_loop_close(&loop) == 0, "expected every handle closed");
    return CHECK_DONE();
}
