/* `mxgw key create|list|revoke -c FILE …`: API key management against the configured store.
 *
 * Keys live in the store so that every node sees them: mxgw:apikey:<id> is a hash (hash = hex
 * SHA-256 of the whole key, jids, ops, name, created = epoch ms) and mxgw:apikeys the set of
 * ids. The command runs its own loop just long enough for its few commands. It needs Redis: the
 * in-process store belongs to the running gateway's own process. */
#include "web/rest.h"

#include "gateway/config.h"
#include "gateway/err.h"
#include "gateway/mem.h"
#include "gateway/rand.h"
#include "gateway/store.h"
#include "web/rest_key.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define INDEX_KEY "mxgw:apikeys"
#define MAX_KEYS  10000

struct cli {
    uv_loop_t loop;
    struct gw_store *store;
    int pending;
    int status;
    uv_timer_t wait; /* the first connection to Redis */
    bool json;
};

static void usage(void)
{
    fprintf(stderr,
            "usage: mxgw key create -c FILE --jid PATTERN [--jid …] --op OP [--op …] [--name N]\n"
            "       mxgw key list -c FILE\n"
            "       mxgw key revoke -c FILE ID\n"
            "PATTERN: local@DOMAIN, *@DOMAIN, prefix*@DOMAIN or DOMAIN (DOMAIN = "
            "component_domain)\n"
            "OP: messages stanzas sessions.read sessions.kick push.read push.write, or *\n");
}

static void done_one(struct cli *k)
{
    if (--k->pending == 0)
        gw_store_close(k->store, NULL, NULL);
}

static void on_stored(void *arg, int err, const struct gw_store_reply *reply)
{
    struct cli *k = arg;
    (void)reply;
    if (err) {
        fprintf(stderr, "mxgw: the store refused the key: %s\n", gw_strerror(err));
        k->status = 1;
    }
    done_one(k);
}

static void on_record(void *arg, int err, const struct gw_store_reply *reply)
{
    struct cli *k = arg;
    if (err) {
        fprintf(stderr, "mxgw: %s\n", gw_strerror(err));
        k->status = 1;
    } else if (reply->n > 0) {
        const char *f[5] = {"id", "name", "jids", "ops", "created"}, *v[5] = {"", "", "", "", "0"};
        for (size_t i = 0; i + 1 < reply->n; i += 2)
            for (int j = 0; j < 5; j++)
                if (strcmp(reply->items[i].ptr, f[j]) == 0)
                    v[j] = reply->items[i + 1].ptr;
        time_t t = (time_t)(strtoll(v[4], NULL, 10) / 1000);
        struct tm tm;
        char when[32];
        gmtime_r(&t, &tm);
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
        printf("%s\tname=%s\tcreated=%s\tjids=%s\tops=%s\n", v[0], v[1], when, v[2], v[3]);
    }
    done_one(k);
}

static void on_index(void *arg, int err, const struct gw_store_reply *reply)
{
    struct cli *k = arg;
    if (err) {
        fprintf(stderr, "mxgw: cannot read the key index: %s\n", gw_strerror(err));
        k->status = 1;
    } else {
        for (size_t i = 0; i < reply->n && i < MAX_KEYS; i++) {
            char key[64];
            snprintf(key, sizeof key, "mxgw:apikey:%.20s", reply->items[i].ptr);
            k->pending++;
            gw_store_hgetall(k->store, key, on_record, k);
        }
    }
    done_one(k);
}

static void on_revoked(void *arg, int err, const struct gw_store_reply *reply)
{
    struct cli *k = arg;
    if (err) {
        fprintf(stderr, "mxgw: %s\n", gw_strerror(err));
        k->status = 1;
    } else if (reply->integer == 0) {
        fprintf(stderr, "mxgw: no such key\n");
        k->status = 1;
    } else {
        printf("revoked\n");
    }
    done_one(k);
}

struct args {
    const char *config;
    char jids[4096];
    char ops[512];
    const char *name;
};

static int parse_args(int argc, char **argv, struct args *a)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"jid", required_argument, NULL, 'j'},
                                         {"op", required_argument, NULL, 'o'},
                                         {"name", required_argument, NULL, 'n'},
                                         {NULL, 0, NULL, 0}};
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
        char *dst = ch == 'j' ? a->jids : ch == 'o' ? a->ops : NULL;
        if (ch == 'c') {
            a->config = optarg;
        } else if (ch == 'n') {
            a->name = optarg;
        } else if (dst) {
            size_t cap = ch == 'j' ? sizeof a->jids : sizeof a->ops, len = strlen(dst);
            if (len + strlen(optarg) + 2 > cap)
                return GW_EINVAL;
            snprintf(dst + len, cap - len, "%s%s", len ? " " : "", optarg);
        } else {
            return GW_EINVAL;
        }
    }
    return a->config ? 0 : GW_EINVAL;
}

static void on_wait(uv_timer_t *t)
{
    uv_stop(t->loop);
}

int gw_rest_key_command(int argc, char **argv)
{
    if (argc < 2) {
        usage();
        return 2;
    }
    const char *verb = argv[1];
    struct args a = {0};
    if (parse_args(argc - 1, argv + 1, &a) != 0) {
        usage();
        return 2;
    }
    static struct gw_config cfg;
    char err[512];
    if (gw_config_load(&cfg, a.config, err, sizeof err) != 0) {
        fprintf(stderr, "mxgw: %s\n", err);
        return 2;
    }
    if (!cfg.redis[0]) {
        fprintf(stderr, "mxgw: API keys live in the store, and this configuration uses the "
                        "in-process store, which only the running gateway can reach: set "
                        "redis = redis://host:port/db\n");
        return 2;
    }
    struct cli k = {0};
    k.status = 0;
    uv_loop_init(&k.loop);
    if (gw_store_open(&k.loop, cfg.redis, cfg.redis_timeout_ms, &k.store) != 0) {
        fprintf(stderr, "mxgw: bad redis URL\n");
        return 2;
    }
    /* Give the connection a moment to come up before the first command. */
    uv_timer_init(&k.loop, &k.wait);
    for (int i = 0; i < 50 && !gw_store_available(k.store); i++) {
        uv_timer_start(&k.wait, on_wait, 20, 0);
        uv_run(&k.loop, UV_RUN_DEFAULT);
    }
    uv_close((uv_handle_t *)&k.wait, NULL);
    int rc = 0;
    k.pending = 1;
    if (strcmp(verb, "create") == 0) {
        struct gw_key_scope scope = {0};
        unsigned ops;
        if (!cfg.component_domain[0]) {
            fprintf(stderr, "mxgw: component_domain is not set: keys send as JIDs on it\n");
            rc = 2;
        } else if (gw_key_scope_parse(&scope, a.jids, cfg.component_domain, err, sizeof err) != 0) {
            fprintf(stderr, "mxgw: --jid: %s\n", err);
            rc = 2;
        } else if (gw_key_ops_parse(a.ops, &ops) != 0) {
            fprintf(stderr, "mxgw: --op: give one or more of messages stanzas sessions.read "
                            "sessions.kick push.read push.write, or *\n");
            rc = 2;
        } else {
            struct gw_rand *rand;
            char token[GW_KEY_LEN + 1], id[GW_KEY_ID_HEX + 1], hash[GW_KEY_HASH_HEX + 1];
            char jids[4096] = "", ops_s[256], created[24];
            if (gw_rand_new(&rand) != 0 || gw_key_generate(rand, token, sizeof token, id) != 0) {
                fprintf(stderr, "mxgw: no randomness\n");
                return 1;
            }
            gw_rand_free(rand);
            gw_key_hash(token, hash);
            for (size_t i = 0; i < scope.njids; i++) {
                size_t l = strlen(jids);
                snprintf(jids + l, sizeof jids - l, "%s%s", l ? " " : "", scope.jids[i]);
            }
            gw_key_ops_format(ops, ops_s, sizeof ops_s);
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            snprintf(created, sizeof created, "%lld",
                     (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
            char key[64];
            snprintf(key, sizeof key, "mxgw:apikey:%s", id);
            struct gw_store_str f[] = {gw_store_cstr("id"),   gw_store_cstr("hash"),
                                       gw_store_cstr("jids"), gw_store_cstr("ops"),
                                       gw_store_cstr("name"), gw_store_cstr("created")};
            struct gw_store_str v[] = {gw_store_cstr(id),
                                       gw_store_cstr(hash),
                                       gw_store_cstr(jids),
                                       gw_store_cstr(ops_s),
                                       gw_store_cstr(a.name ? a.name : ""),
                                       gw_store_cstr(created)};
            k.pending = 2;
            gw_store_hset(k.store, key, 6, f, v, 0, on_stored, &k);
            gw_store_sadd(k.store, INDEX_KEY, gw_store_cstr(id), 0, on_stored, &k);
            /* The key is shown once, here; only its hash is kept. */
            printf("%s\n", token);
            fprintf(stderr, "key id %s: jids=%s ops=%s\n", id, jids, ops_s);
            gw_memzero(token, sizeof token);
        }
        gw_key_scope_free(&scope);
    } else if (strcmp(verb, "list") == 0) {
        gw_store_smembers(k.store, INDEX_KEY, on_index, &k);
    } else if (strcmp(verb, "revoke") == 0) {
        const char *id = optind < argc - 1 ? argv[optind + 1] : NULL;
        if (!id || strlen(id) != GW_KEY_ID_HEX) {
            fprintf(stderr, "mxgw: key revoke needs the key's id (16 hex digits)\n");
            rc = 2;
        } else {
            char key[64];
            snprintf(key, sizeof key, "mxgw:apikey:%s", id);
            k.pending = 2;
            gw_store_del(k.store, key, on_revoked, &k);
            gw_store_srem(k.store, INDEX_KEY, gw_store_cstr(id), on_stored, &k);
        }
    } else {
        usage();
        rc = 2;
    }
    if (rc)
        gw_store_close(k.store, NULL, NULL);
    uv_run(&k.loop, UV_RUN_DEFAULT);
    uv_loop_close(&k.loop);
    return rc ? rc : k.status;
}
