/* Registrations: checking what a client sends, storing it per account under a random id with a
 * cap and an expiry, renewing the same device under its old id, and removing it. Listing and
 * removing all of an account's registrations, for operators, are in reg_list.c. */
#include "push/push_impl.h"

#include "gateway/err.h"
#include "gateway/log.h"
#include "gateway/mem.h"
#include "gateway/rand.h"
#include "push/b64.h"
#include "push/ece.h"
#include "push/http.h"
#include "xmpp/jid.h"

#include <mbedtls/sha256.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOKEN_MAX 4096
#define ROOMS_MAX GW_PUSH_ROOMS_MAX

/* ---- reading ---- */

static char *dup_field(const struct gw_store_reply *r, const char *f)
{
    const char *v = gw_store_reply_field(r, f);
    return v && *v ? gw_strdup(v) : NULL;
}

int push_reg_parse(const struct gw_store_reply *r, const char *id, struct reg *out)
{
    memset(out, 0, sizeof *out);
    const char *account = gw_store_reply_field(r, "account");
    const char *provider = gw_store_reply_field(r, "provider");
    if (!account || !provider || !push_valid_id(id))
        return GW_ENOTFOUND;
    snprintf(out->id, sizeof out->id, "%s", id);
    out->account = gw_strdup(account);
    out->provider = push_provider_parse(provider);
    out->endpoint = dup_field(r, "endpoint");
    out->p256dh = dup_field(r, "p256dh");
    out->auth = dup_field(r, "auth");
    out->token = dup_field(r, "token");
    out->rooms = dup_field(r, "rooms");
    out->secret = dup_field(r, "secret");
    const char *s = gw_store_reply_field(r, "sender"), *b = gw_store_reply_field(r, "body");
    out->with_sender = s && strcmp(s, "1") == 0;
    out->with_body = b && strcmp(b, "1") == 0;
    const char *gc = gw_store_reply_field(r, "groupchat");
    if (!gc || !gw_push_groupchat_parse(gc, &out->groupchat))
        out->groupchat = GW_GC_MENTIONS;
    return 0;
}

void push_reg_clear(struct reg *r)
{
    free(r->account);
    free(r->endpoint);
    free(r->p256dh);
    free(r->auth);
    free(r->token);
    free(r->rooms);
    free(r->secret);
    memset(r, 0, sizeof *r);
}

void push_reg_delete(struct gw_push *p, const char *account, const char *id)
{
    struct gw_store *st = p->core->store;
    char *k = push_key("reg", id);
    gw_store_del(st, k, NULL, NULL);
    free(k);
    k = push_key("q", id);
    gw_store_del(st, k, NULL, NULL);
    free(k);
    gw_store_zrem(st, PUSH_KEY_DUE, gw_store_cstr(id), NULL, NULL);
    if (account) {
        k = push_key("acct", account);
        gw_store_srem(st, k, gw_store_cstr(id), NULL, NULL);
        free(k);
    }
}

/* ---- checking ---- */

static int fail(char *why, size_t n, const char *text)
{
    snprintf(why, n, "%s", text);
    return GW_EINVAL;
}

static bool valid_bare(const char *s)
{
    struct gw_jid j;
    if (gw_jid_parse(s, &j) != 0)
        return false;
    bool ok = j.local && !j.resource;
    gw_jid_free(&j);
    return ok;
}

static bool printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return false;
    return true;
}

static int check_spec(struct gw_push *p, const char *account, const struct gw_push_spec *s,
                      char *why, size_t n)
{
    if (!account || !valid_bare(account))
        return fail(why, n, "not logged in to an account");
    enum provider prov = push_provider_parse(s->provider);
    if (prov == PROV_UNKNOWN)
        return fail(why, n, "provider must be webhook, webpush or unifiedpush");
    if (!gw_push_provider_enabled(p, s->provider))
        return fail(why, n,
                    prov == PROV_WEBHOOK ? "this server has no webhook configured"
                                         : "this server has no VAPID key configured");
    if (prov == PROV_WEBHOOK) {
        if (s->endpoint)
            return fail(why, n, "a webhook registration takes a token, not an endpoint");
        if (s->token && (strlen(s->token) > TOKEN_MAX || !*s->token || !printable(s->token)))
            return fail(why, n, "token must be 1 to 4096 printable characters");
        if (s->p256dh || s->auth)
            return fail(why, n, "keys are for webpush and unifiedpush registrations");
    } else {
        if (!s->endpoint)
            return fail(why, n, "endpoint is required");
        char w[128];
        if (gw_http_check_url(p->http, s->endpoint, NULL, w, sizeof w) != 0)
            return fail(why, n, w);
        uint8_t key[80], auth[32];
        size_t kl = 0, al = 0;
        if (!s->p256dh || gw_b64url_decode(s->p256dh, strlen(s->p256dh), key, sizeof key, &kl) ||
            gw_webpush_check_key(key, kl) != 0)
            return fail(why, n, "keys.p256dh must be a base64url P-256 public key (65 bytes)");
        if (!s->auth || gw_b64url_decode(s->auth, strlen(s->auth), auth, sizeof auth, &al) ||
            al != GW_WEBPUSH_AUTH)
            return fail(why, n, "keys.auth must be 16 bytes in base64url");
        if (s->token)
            return fail(why, n, "token is for webhook registrations");
    }
    if (s->nrooms > ROOMS_MAX)
        return fail(why, n, "at most 32 rooms");
    for (size_t i = 0; i < s->nrooms; i++)
        if (!valid_bare(s->rooms[i]))
            return fail(why, n, "rooms must be bare JIDs");
    return 0;
}

/* ---- registering ---- */

struct reg_job {
    struct gw_push *p;
    gw_push_registered_cb cb;
    void *arg;
    char *account, *acct_key;
    enum provider provider;
    char *endpoint, *p256dh, *auth, *token, *rooms;
    bool with_sender, with_body;
    enum gw_push_groupchat groupchat;
    bool keep_secret;
    char *old_secret; /* the renewed registration's secret hash, when kept */
    char **ids;
    size_t n, next;
    char id[GW_PUSH_ID_LEN + 1];
    bool replaced;
    char secret[33];
    int64_t created, expires;
};

static void reg_done(struct reg_job *j, int err, const char *why)
{
    struct gw_push_registered r = {
        err,         why, err ? NULL : j->id, err || j->old_secret ? NULL : j->secret, j->expires,
        j->replaced, NULL};
    struct gw_push_reg_view view;
    char origin[300], fingerprint[17], *rooms = NULL;
    const char *room_list[GW_PUSH_ROOMS_MAX];
    if (!err) {
        push_reg_describe(j->p, j->provider, j->endpoint, j->token, origin, fingerprint);
        view = (struct gw_push_reg_view){
            .id = j->id,
            .provider = push_provider_name(j->provider),
            .origin = origin[0] ? origin : NULL,
            .fingerprint = fingerprint,
            .with_sender = j->with_sender,
            .with_body = j->with_body,
            .groupchat = j->groupchat,
            .rooms = room_list,
            .created = j->created,
            .expires = j->expires,
        };
        rooms = j->rooms ? gw_strdup(j->rooms) : NULL;
        view.nrooms = push_split_rooms(rooms, room_list);
        r.view = &view;
    }
    j->cb(j->arg, &r);
    free(rooms);
    struct gw_push *p = j->p;
    for (size_t i = 0; i < j->n; i++)
        free(j->ids[i]);
    free(j->ids);
    free(j->account);
    free(j->acct_key);
    free(j->endpoint);
    free(j->p256dh);
    free(j->auth);
    free(j->token);
    free(j->rooms);
    free(j->old_secret);
    gw_memzero(j->secret, sizeof j->secret);
    free(j);
    push_job_end(p);
}

static void on_reg_stored(void *arg, int err, const struct gw_store_reply *r)
{
    (void)r;
    struct reg_job *j = arg;
    if (err) {
        reg_done(j, GW_EUNAVAIL, "the store is unavailable");
        return;
    }
    GW_INFO("push.registered", "provider=%s reg=%.8s renewed=%s", push_provider_name(j->provider),
            j->id, j->replaced ? "yes" : "no");
    reg_done(j, 0, NULL);
}

static void store_reg(struct reg_job *j)
{
    struct gw_push *p = j->p;
    uint8_t hash[32];
    char hex[65], created[24], expires[24];
    if (j->old_secret) {
        snprintf(hex, sizeof hex, "%s", j->old_secret);
    } else {
        if (gw_rand_hex(p->core->rand, 16, j->secret, sizeof j->secret) != 0) {
            reg_done(j, GW_EUNAVAIL, "no randomness");
            return;
        }
        mbedtls_sha256_ret((const unsigned char *)j->secret, strlen(j->secret), hash, 0);
        for (int i = 0; i < 32; i++)
            snprintf(hex + 2 * i, 3, "%02x", hash[i]);
    }
    int64_t now = push_now_ms() / 1000;
    j->created = now;
    j->expires = now + (int64_t)(p->cfg->push_registration_ttl_ms / 1000);
    snprintf(created, sizeof created, "%lld", (long long)now);
    snprintf(expires, sizeof expires, "%lld", (long long)j->expires);
    struct gw_store_str f[13], v[13];
    size_t n = 0;
#define PUT(name, val) (f[n] = gw_store_cstr(name), v[n++] = gw_store_cstr(val))
    PUT("account", j->account);
    PUT("provider", push_provider_name(j->provider));
    PUT("endpoint", j->endpoint ? j->endpoint : "");
    PUT("p256dh", j->p256dh ? j->p256dh : "");
    PUT("auth", j->auth ? j->auth : "");
    PUT("token", j->token ? j->token : "");
    PUT("sender", j->with_sender ? "1" : "0");
    PUT("body", j->with_body ? "1" : "0");
    PUT("groupchat", gw_push_groupchat_name(j->groupchat));
    PUT("rooms", j->rooms ? j->rooms : "");
    PUT("secret", hex);
    PUT("created", created);
    PUT("expires", expires);
#undef PUT
    char *k = push_key("reg", j->id);
    int rc = gw_store_hset(p->core->store, k, n, f, v, p->cfg->push_registration_ttl_ms,
                           on_reg_stored, j);
    free(k);
    if (rc)
        reg_done(j, GW_EUNAVAIL, "the store is unavailable");
}

static void on_reg_added(void *arg, int err, const struct gw_store_reply *r)
{
    (void)r;
    struct reg_job *j = arg;
    if (err == GW_ELIMIT) {
        reg_done(j, GW_ELIMIT, "too many registrations for this account");
        return;
    }
    if (err) {
        reg_done(j, GW_EUNAVAIL, "the store is unavailable");
        return;
    }
    store_reg(j);
}

static void add_to_account(struct reg_job *j)
{
    struct gw_push *p = j->p;
    if (!j->id[0] && gw_rand_hex(p->core->rand, 16, j->id, sizeof j->id) != 0) {
        reg_done(j, GW_EUNAVAIL, "no randomness");
        return;
    }
    if (gw_store_sadd_capped(p->core->store, j->acct_key, gw_store_cstr(j->id),
                             p->cfg->push_max_per_account, p->cfg->push_registration_ttl_ms,
                             on_reg_added, j) != 0)
        reg_done(j, GW_EUNAVAIL, "the store is unavailable");
}

static bool same_str(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

static void next_existing(struct reg_job *j);

/* One of the account's registrations: the same device (same endpoint, or the same webhook
 * token) is renewed under its id; an expired one is dropped from the set. */
static void on_existing(void *arg, int err, const struct gw_store_reply *r)
{
    struct reg_job *j = arg;
    const char *id = j->ids[j->next - 1];
    struct reg old;
    if (err) {
        reg_done(j, GW_EUNAVAIL, "the store is unavailable");
        return;
    }
    if (push_reg_parse(r, id, &old) != 0) {
        gw_store_srem(j->p->core->store, j->acct_key, gw_store_cstr(id), NULL, NULL);
    } else {
        bool same = old.provider == j->provider &&
                    (j->provider == PROV_WEBHOOK ? same_str(old.token, j->token)
                                                 : same_str(old.endpoint, j->endpoint));
        if (same && !j->id[0]) {
            snprintf(j->id, sizeof j->id, "%s", id);
            j->replaced = true;
            if (j->keep_secret && old.secret && strlen(old.secret) == 64)
                j->old_secret = gw_strdup(old.secret);
        }
        push_reg_clear(&old);
    }
    next_existing(j);
}

static void next_existing(struct reg_job *j)
{
    if (j->id[0] || j->next == j->n) {
        add_to_account(j);
        return;
    }
    char *k = push_key("reg", j->ids[j->next++]);
    int rc = gw_store_hgetall(j->p->core->store, k, on_existing, j);
    free(k);
    if (rc)
        reg_done(j, GW_EUNAVAIL, "the store is unavailable");
}

static void on_members(void *arg, int err, const struct gw_store_reply *r)
{
    struct reg_job *j = arg;
    if (err) {
        reg_done(j, GW_EUNAVAIL, "the store is unavailable");
        return;
    }
    j->ids = gw_calloc(r->n ? r->n : 1, sizeof *j->ids);
    for (size_t i = 0; i < r->n; i++)
        if (push_valid_id(r->items[i].ptr))
            j->ids[j->n++] = gw_strdup(r->items[i].ptr);
    next_existing(j);
}

static char *opt_dup(const char *s)
{
    return s ? gw_strdup(s) : NULL;
}

int gw_push_register(struct gw_push *p, const char *account, const struct gw_push_spec *spec,
                     gw_push_registered_cb cb, void *arg, char *why, size_t whylen)
{
    if (p->closing)
        return fail(why, whylen, "shutting down");
    int rc = check_spec(p, account, spec, why, whylen);
    if (rc)
        return rc;
    struct reg_job *j = gw_calloc(1, sizeof *j);
    j->p = p;
    j->cb = cb;
    j->arg = arg;
    j->account = gw_strdup(account);
    j->acct_key = push_key("acct", account);
    j->provider = push_provider_parse(spec->provider);
    j->endpoint = opt_dup(spec->endpoint);
    j->p256dh = opt_dup(spec->p256dh);
    j->auth = opt_dup(spec->auth);
    j->token = opt_dup(spec->token);
    j->with_sender = spec->with_sender;
    j->with_body = spec->with_body;
    j->groupchat = spec->groupchat;
    j->keep_secret = spec->keep_secret;
    if (spec->nrooms) {
        size_t len = 1;
        for (size_t i = 0; i < spec->nrooms; i++)
            len += strlen(spec->rooms[i]) + 1;
        j->rooms = gw_calloc(1, len);
        for (size_t i = 0; i < spec->nrooms; i++) {
            if (i)
                strcat(j->rooms, " ");
            strcat(j->rooms, spec->rooms[i]);
        }
    }
    push_job_begin(p);
    if (gw_store_smembers(p->core->store, j->acct_key, on_members, j) != 0)
        reg_done(j, GW_EUNAVAIL, "the store is unavailable");
    return 0;
}

/* ---- unregistering ---- */

struct unreg_job {
    struct gw_push *p;
    char *account;
    char id[GW_PUSH_ID_LEN + 1];
    void (*cb)(void *arg, int err);
    void *arg;
};

static void on_unreg(void *arg, int err, const struct gw_store_reply *r)
{
    struct unreg_job *j = arg;
    struct reg reg;
    if (!err && push_reg_parse(r, j->id, &reg) == 0) {
        if (strcmp(reg.account, j->account) == 0) {
            push_reg_delete(j->p, j->account, j->id);
            GW_INFO("push.unregistered", "reg=%.8s", j->id);
        } else {
            err = GW_ENOTFOUND;
        }
        push_reg_clear(&reg);
    } else if (!err) {
        err = GW_ENOTFOUND;
    }
    j->cb(j->arg, err == GW_ENOTFOUND ? err : err ? GW_EUNAVAIL : 0);
    struct gw_push *p = j->p;
    free(j->account);
    free(j);
    push_job_end(p);
}

int gw_push_unregister(struct gw_push *p, const char *account, const char *id,
                       void (*cb)(void *arg, int err), void *arg)
{
    if (!push_valid_id(id) || !account || p->closing)
        return GW_EINVAL;
    struct unreg_job *j = gw_calloc(1, sizeof *j);
    j->p = p;
    j->account = gw_strdup(account);
    snprintf(j->id, sizeof j->id, "%s", id);
    j->cb = cb;
    j->arg = arg;
    push_job_begin(p);
    char *k = push_key("reg", id);
    if (gw_store_hgetall(p->core->store, k, on_unreg, j) != 0) {
        struct gw_store_reply none = {0, 0, NULL};
        on_unreg(j, GW_EUNAVAIL, &none);
    }
    free(k);
    return 0;
}
