/* The REST API's push registrations on push/: GET lists an account's registrations as an
 * operator may see them (no secret, token, endpoint path or keys: push/push.h), PUT makes or
 * renews one from the same JSON the JSON protocol's push.register takes, DELETE removes one
 * (?id=) or all.
 *
 * XEP-0357: a registration made here cannot be enabled on the user's server, since that takes
 * an iq on the user's own stream, which a backend call does not have. It serves what push
 * source 1 covers (stanzas for sessions mxgw holds while their client is away, on any node:
 * registrations are in the store); for pushes while the user has no session at all, the app
 * registers the same device over the JSON protocol, which renews it under the same id and
 * enables XEP-0357. A renewal made here keeps the XEP-0357 secret (keep_secret), so it never
 * breaks what the app enabled. */
#include "web/rest_push.h"

#include "gateway/err.h"
#include "gateway/mem.h"
#include "push/push.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct op {
    gw_rest_push_done done;
    void *ctx;
};

static struct op *op_new(gw_rest_push_done done, void *ctx)
{
    struct op *o = gw_calloc(1, sizeof *o);
    o->done = done;
    o->ctx = ctx;
    return o;
}

static void finish(struct op *o, unsigned status, const char *text)
{
    o->done(o->ctx, status, text, text ? strlen(text) : 0);
    free(o);
}

static void finish_json(struct op *o, unsigned status, struct gw_json_out *w)
{
    size_t len;
    const char *text = gw_json_text(w, &len);
    o->done(o->ctx, status, text, len);
    gw_json_out_free(w);
    free(o);
}

static void write_view(struct gw_json_out *w, const struct gw_push_reg_view *v)
{
    gw_json_kv(w, "id", v->id);
    gw_json_kv(w, "provider", v->provider);
    gw_json_kv(w, "origin", v->origin);
    gw_json_kv(w, "fingerprint", v->fingerprint[0] ? v->fingerprint : NULL);
    gw_json_key(w, "sender");
    gw_json_bool(w, v->with_sender);
    gw_json_key(w, "body");
    gw_json_bool(w, v->with_body);
    gw_json_kv(w, "groupchat", gw_push_groupchat_name(v->groupchat));
    gw_json_key(w, "rooms");
    gw_json_open_array(w);
    for (size_t i = 0; i < v->nrooms; i++)
        gw_json_cstr(w, v->rooms[i]);
    gw_json_close_array(w);
    gw_json_key(w, "created");
    gw_json_integer(w, v->created);
    gw_json_key(w, "expires");
    gw_json_integer(w, v->expires);
}

/* ---- GET ---- */

static void listed(void *arg, int err, const struct gw_push_reg_view *regs, size_t n)
{
    struct op *o = arg;
    if (err) {
        finish(o, 503, "the store is unavailable");
        return;
    }
    struct gw_json_out *w = gw_json_out_new(NULL);
    gw_json_open(w);
    gw_json_key(w, "registrations");
    gw_json_open_array(w);
    for (size_t i = 0; i < n; i++) {
        gw_json_open(w);
        write_view(w, &regs[i]);
        gw_json_close(w);
    }
    gw_json_close_array(w);
    gw_json_close(w);
    finish_json(o, 200, w);
}

static void list(void *arg, const char *account, gw_rest_push_done done, void *ctx)
{
    struct gw_core *core = arg;
    struct op *o = op_new(done, ctx);
    int rc = core->push ? gw_push_list(core->push, account, listed, o) : GW_ECLOSED;
    if (rc)
        finish(o, rc == GW_EINVAL ? 400 : 503,
               rc == GW_EINVAL ? "not a user's JID" : "push is shutting down");
}

/* ---- PUT ---- */

static void registered(void *arg, const struct gw_push_registered *res)
{
    struct op *o = arg;
    if (res->err) {
        finish(o, res->err == GW_ELIMIT ? 409 : 503, res->why);
        return;
    }
    struct gw_json_out *w = gw_json_out_new(NULL);
    gw_json_open(w);
    write_view(w, res->view);
    gw_json_key(w, "renewed");
    gw_json_bool(w, res->replaced);
    gw_json_close(w);
    finish_json(o, res->replaced ? 200 : 201, w);
}

static void put(void *arg, const char *account, const struct gw_json *reg, gw_rest_push_done done,
                void *ctx)
{
    struct gw_core *core = arg;
    struct op *o = op_new(done, ctx);
    struct gw_push_spec spec;
    const char *rooms[GW_PUSH_ROOMS_MAX];
    char why[160];
    if (!core->push) {
        finish(o, 503, "push is shutting down");
        return;
    }
    if (gw_push_spec_from_json(reg, NULL, 0, &spec, rooms, why, sizeof why) != 0) {
        finish(o, 400, why);
        return;
    }
    spec.keep_secret = true;
    if (gw_push_register(core->push, account, &spec, registered, o, why, sizeof why) != 0)
        finish(o, 400, why);
}

/* ---- DELETE ---- */

static void removed_one(void *arg, int err)
{
    struct op *o = arg;
    if (err == GW_ENOTFOUND)
        finish(o, 404, "this account has no registration with that id");
    else if (err)
        finish(o, 503, "the store is unavailable");
    else
        finish(o, 204, NULL);
}

static void removed_all(void *arg, int err, size_t n)
{
    (void)n;
    struct op *o = arg;
    if (err)
        finish(o, 503, "the store is unavailable");
    else
        finish(o, 204, NULL);
}

static void del(void *arg, const char *account, const char *id, gw_rest_push_done done, void *ctx)
{
    struct gw_core *core = arg;
    struct op *o = op_new(done, ctx);
    if (!core->push) {
        finish(o, 503, "push is shutting down");
        return;
    }
    int rc = id ? gw_push_unregister(core->push, account, id, removed_one, o)
                : gw_push_unregister_all(core->push, account, removed_all, o);
    if (rc == GW_EINVAL)
        finish(o, id ? 404 : 400,
               id ? "this account has no registration with that id" : "not a user's JID");
    else if (rc)
        finish(o, 503, "push is shutting down");
}

static const struct gw_rest_push_ops ops = {list, put, del};

void gw_rest_push_attach(struct gw_rest *r, struct gw_core *core)
{
    gw_rest_set_push(r, &ops, core);
}
