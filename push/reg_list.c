/* Registrations as operators see and manage them: every registration of an account, listed
 * without anything that would let a reader push to the device (secret, token, endpoint path,
 * keys), and removed all at once. */
#include "push/push_impl.h"

#include "gateway/err.h"
#include "gateway/log.h"
#include "gateway/mem.h"
#include "xmpp/jid.h"

#include <mbedtls/sha256.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool valid_account(const char *s)
{
    struct gw_jid j;
    if (!s || gw_jid_parse(s, &j) != 0)
        return false;
    bool ok = j.local && !j.resource;
    gw_jid_free(&j);
    return ok;
}

/* ---- listing ---- */

struct entry {
    bool found;
    struct reg reg;
    int64_t created, expires;
    char origin[300];
    char fingerprint[17];
    const char *rooms[GW_PUSH_ROOMS_MAX];
    size_t nrooms;
};

struct list_job {
    struct gw_push *p;
    gw_push_list_cb cb;
    void *arg;
    char *account, *acct_key;
    struct entry *entries;
    char **ids;
    size_t n, pending;
    bool failed;
};

struct fetch {
    struct list_job *j;
    size_t i;
};

void push_reg_describe(struct gw_push *p, enum provider prov, const char *endpoint,
                       const char *token, char origin[300], char fingerprint[17])
{
    origin[0] = fingerprint[0] = '\0';
    struct gw_http_url u;
    char why[128];
    if (endpoint && gw_http_check_url(p->http, endpoint, &u, why, sizeof why) == 0)
        snprintf(origin, 300, "%s", u.origin);
    const char *device = prov == PROV_WEBHOOK ? token : endpoint;
    if (!device)
        return;
    uint8_t hash[32];
    mbedtls_sha256_ret((const unsigned char *)device, strlen(device), hash, 0);
    for (int i = 0; i < 8; i++)
        snprintf(fingerprint + 2 * i, 3, "%02x", hash[i]);
}

size_t push_split_rooms(char *rooms, const char *out[GW_PUSH_ROOMS_MAX])
{
    size_t n = 0;
    for (char *s = rooms, *save = NULL, *tok;
         s && n < GW_PUSH_ROOMS_MAX && (tok = strtok_r(s, " ", &save)); s = NULL)
        out[n++] = tok;
    return n;
}

static int64_t int_field(const struct gw_store_reply *r, const char *f)
{
    const char *v = gw_store_reply_field(r, f);
    return v ? strtoll(v, NULL, 10) : 0;
}

static int by_created(const void *a, const void *b)
{
    const struct gw_push_reg_view *x = a, *y = b;
    if (x->created != y->created)
        return x->created < y->created ? -1 : 1;
    return strcmp(x->id, y->id);
}

static void list_finish(struct list_job *j)
{
    struct gw_push_reg_view *views = gw_calloc(j->n ? j->n : 1, sizeof *views);
    size_t nv = 0;
    for (size_t i = 0; i < j->n; i++) {
        struct entry *e = &j->entries[i];
        if (!e->found)
            continue;
        views[nv++] = (struct gw_push_reg_view){
            .id = e->reg.id,
            .provider = push_provider_name(e->reg.provider),
            .origin = e->origin[0] ? e->origin : NULL,
            .fingerprint = e->fingerprint,
            .with_sender = e->reg.with_sender,
            .with_body = e->reg.with_body,
            .groupchat = e->reg.groupchat,
            .rooms = e->rooms,
            .nrooms = e->nrooms,
            .created = e->created,
            .expires = e->expires,
        };
    }
    qsort(views, nv, sizeof *views, by_created);
    if (j->failed)
        j->cb(j->arg, GW_EUNAVAIL, NULL, 0);
    else
        j->cb(j->arg, 0, views, nv);
    free(views);
    for (size_t i = 0; i < j->n; i++) {
        push_reg_clear(&j->entries[i].reg);
        free(j->ids[i]);
    }
    free(j->entries);
    free(j->ids);
    free(j->account);
    free(j->acct_key);
    struct gw_push *p = j->p;
    free(j);
    push_job_end(p);
}

static void on_entry(void *arg, int err, const struct gw_store_reply *r)
{
    struct fetch *f = arg;
    struct list_job *j = f->j;
    struct entry *e = &j->entries[f->i];
    const char *id = j->ids[f->i];
    free(f);
    if (err) {
        j->failed = true;
    } else if (push_reg_parse(r, id, &e->reg) != 0 || strcmp(e->reg.account, j->account) != 0) {
        /* Expired (or not this account's): the index forgets it. */
        push_reg_clear(&e->reg);
        gw_store_srem(j->p->core->store, j->acct_key, gw_store_cstr(id), NULL, NULL);
    } else {
        e->found = true;
        e->created = int_field(r, "created");
        e->expires = int_field(r, "expires");
        push_reg_describe(j->p, e->reg.provider, e->reg.endpoint, e->reg.token, e->origin,
                          e->fingerprint);
        e->nrooms = push_split_rooms(e->reg.rooms, e->rooms);
    }
    if (--j->pending == 0)
        list_finish(j);
}

static void on_list_members(void *arg, int err, const struct gw_store_reply *r)
{
    struct list_job *j = arg;
    if (err) {
        j->failed = true;
        list_finish(j);
        return;
    }
    j->ids = gw_calloc(r->n ? r->n : 1, sizeof *j->ids);
    for (size_t i = 0; i < r->n; i++)
        if (push_valid_id(r->items[i].ptr))
            j->ids[j->n++] = gw_strdup(r->items[i].ptr);
    j->entries = gw_calloc(j->n ? j->n : 1, sizeof *j->entries);
    if (j->n == 0) {
        list_finish(j);
        return;
    }
    /* Every fetch is counted before the first is sent: a store that answers at once cannot
     * finish the job half-way. */
    j->pending = j->n + 1;
    for (size_t i = 0; i < j->n; i++) {
        struct fetch *f = gw_calloc(1, sizeof *f);
        f->j = j;
        f->i = i;
        char *k = push_key("reg", j->ids[i]);
        if (gw_store_hgetall(j->p->core->store, k, on_entry, f) != 0)
            on_entry(f, GW_EUNAVAIL, NULL);
        free(k);
    }
    if (--j->pending == 0)
        list_finish(j);
}

int gw_push_list(struct gw_push *p, const char *account, gw_push_list_cb cb, void *arg)
{
    if (p->closing)
        return GW_ECLOSED;
    if (!valid_account(account))
        return GW_EINVAL;
    struct list_job *j = gw_calloc(1, sizeof *j);
    j->p = p;
    j->cb = cb;
    j->arg = arg;
    j->account = gw_strdup(account);
    j->acct_key = push_key("acct", account);
    push_job_begin(p);
    if (gw_store_smembers(p->core->store, j->acct_key, on_list_members, j) != 0)
        on_list_members(j, GW_EUNAVAIL, NULL);
    return 0;
}

/* ---- removing all ---- */

struct unreg_all_job {
    struct gw_push *p;
    char *account;
    size_t removed;
    void (*cb)(void *arg, int err, size_t removed);
    void *arg;
};

static void unreg_all_finish(struct unreg_all_job *j, int err)
{
    j->cb(j->arg, err, err ? 0 : j->removed);
    struct gw_push *p = j->p;
    free(j->account);
    free(j);
    push_job_end(p);
}

/* The index's own delete runs after every registration's (one connection, in order), so its
 * answer says they are all done. */
static void on_index_deleted(void *arg, int err, const struct gw_store_reply *r)
{
    (void)r;
    unreg_all_finish(arg, err ? GW_EUNAVAIL : 0);
}

static void on_all_members(void *arg, int err, const struct gw_store_reply *r)
{
    struct unreg_all_job *j = arg;
    if (err) {
        unreg_all_finish(j, GW_EUNAVAIL);
        return;
    }
    for (size_t i = 0; i < r->n; i++)
        if (push_valid_id(r->items[i].ptr)) {
            push_reg_delete(j->p, j->account, r->items[i].ptr);
            j->removed++;
        }
    if (j->removed)
        GW_INFO("push.unregistered_all", "count=%zu", j->removed);
    char *k = push_key("acct", j->account);
    int rc = gw_store_del(j->p->core->store, k, on_index_deleted, j);
    free(k);
    if (rc)
        unreg_all_finish(j, GW_EUNAVAIL);
}

int gw_push_unregister_all(struct gw_push *p, const char *account,
                           void (*cb)(void *arg, int err, size_t removed), void *arg)
{
    if (p->closing)
        return GW_ECLOSED;
    if (!valid_account(account))
        return GW_EINVAL;
    struct unreg_all_job *j = gw_calloc(1, sizeof *j);
    j->p = p;
    j->account = gw_strdup(account);
    j->cb = cb;
    j->arg = arg;
    push_job_begin(p);
    char *k = push_key("acct", account);
    if (gw_store_smembers(p->core->store, k, on_all_members, j) != 0)
        on_all_members(j, GW_EUNAVAIL, NULL);
    free(k);
    return 0;
}
