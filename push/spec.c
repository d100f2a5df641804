/* Registration requests in JSON, as both front ends take them (the JSON protocol's
 * push.register op and the REST API's PUT /api/v1/users/{jid}/push): one strict reading, so a
 * device is described the same way everywhere. */
#include "push/push.h"

#include "gateway/err.h"

#include <stdio.h>
#include <string.h>

static bool allowed_key(const char *key, const char *const *extra, size_t nextra)
{
    static const char *const keys[] = {"provider", "endpoint", "keys",      "token",
                                       "sender",   "body",     "groupchat", "rooms"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (strcmp(key, keys[i]) == 0)
            return true;
    for (size_t i = 0; i < nextra; i++)
        if (strcmp(key, extra[i]) == 0)
            return true;
    return false;
}

static int bad(char *why, size_t n, const char *text)
{
    snprintf(why, n, "%s", text);
    return GW_EINVAL;
}

/* A string member, or NULL when absent; *rc set when it has another type. */
static const char *string_of(const struct gw_json *obj, const char *key, int *rc, char *why,
                             size_t n)
{
    const struct gw_json *v = gw_json_get(obj, key);
    if (!v)
        return NULL;
    if (v->type != GW_JSON_STRING) {
        snprintf(why, n, "\"%s\" must be a string", key);
        *rc = GW_EINVAL;
        return NULL;
    }
    return v->s;
}

static void bool_of(const struct gw_json *obj, const char *key, bool *out, int *rc, char *why,
                    size_t n)
{
    const struct gw_json *v = gw_json_get(obj, key);
    if (!v)
        return;
    if (v->type != GW_JSON_BOOL) {
        snprintf(why, n, "\"%s\" must be true or false", key);
        *rc = GW_EINVAL;
    } else {
        *out = v->b;
    }
}

int gw_push_spec_from_json(const struct gw_json *obj, const char *const *extra, size_t nextra,
                           struct gw_push_spec *spec, const char *rooms[GW_PUSH_ROOMS_MAX],
                           char *why, size_t whylen)
{
    memset(spec, 0, sizeof *spec);
    spec->groupchat = GW_GC_MENTIONS;
    spec->rooms = rooms;
    if (!obj || obj->type != GW_JSON_OBJECT)
        return bad(why, whylen, "a registration is a JSON object");
    for (const struct gw_json *m = obj->child; m; m = m->next)
        if (!allowed_key(m->key, extra, nextra)) {
            snprintf(why, whylen,
                     "unknown key \"%.40s\" (a registration takes provider, endpoint, keys, "
                     "token, sender, body, groupchat, rooms)",
                     m->key);
            return GW_EINVAL;
        }
    int rc = 0;
    spec->provider = string_of(obj, "provider", &rc, why, whylen);
    spec->endpoint = string_of(obj, "endpoint", &rc, why, whylen);
    spec->token = string_of(obj, "token", &rc, why, whylen);
    const char *gc = string_of(obj, "groupchat", &rc, why, whylen);
    bool_of(obj, "sender", &spec->with_sender, &rc, why, whylen);
    bool_of(obj, "body", &spec->with_body, &rc, why, whylen);
    if (rc)
        return rc;
    if (!spec->provider)
        return bad(why, whylen, "\"provider\" is required (webhook, webpush, unifiedpush)");
    if (gc && !gw_push_groupchat_parse(gc, &spec->groupchat))
        return bad(why, whylen, "\"groupchat\" must be none, mentions or all");
    const struct gw_json *k = gw_json_get(obj, "keys");
    if (k) {
        if (k->type != GW_JSON_OBJECT)
            return bad(why, whylen, "\"keys\" must be an object {p256dh, auth}");
        for (const struct gw_json *m = k->child; m; m = m->next)
            if (strcmp(m->key, "p256dh") != 0 && strcmp(m->key, "auth") != 0) {
                snprintf(why, whylen, "unknown key \"keys.%.40s\" (keys are p256dh and auth)",
                         m->key);
                return GW_EINVAL;
            }
        spec->p256dh = string_of(k, "p256dh", &rc, why, whylen);
        spec->auth = string_of(k, "auth", &rc, why, whylen);
        if (rc)
            return rc;
    }
    const struct gw_json *r = gw_json_get(obj, "rooms");
    if (r) {
        if (r->type != GW_JSON_ARRAY)
            return bad(why, whylen, "\"rooms\" must be an array of room JIDs");
        if (r->n > GW_PUSH_ROOMS_MAX)
            return bad(why, whylen, "\"rooms\" lists at most 32 rooms");
        for (const struct gw_json *m = r->child; m; m = m->next) {
            if (m->type != GW_JSON_STRING)
                return bad(why, whylen, "\"rooms\" must be an array of room JIDs");
            rooms[spec->nrooms++] = m->s;
        }
    }
    return 0;
}
