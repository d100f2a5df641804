/* Logging in on a user's behalf: features → SASL → restart → bind → XEP-0198 enable.
 * Every step checks that the element it gets is the one the protocol allows next; anything
 * else ends the login with an error, and the password is wiped as soon as SASL has used it. */
#include "xmpp/login.h"

#include "gateway/err.h"
#include "gateway/log.h"
#include "gateway/mem.h"
#include "gateway/rand.h"
#include "xmpp/jid.h"
#include "xmpp/sasl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum step { S_FEATURES, S_SASL, S_FEATURES2, S_BIND, S_SM, S_DONE };

struct gw_login {
    struct gw_core *core;
    struct gw_upstream *up;
    enum step step;
    struct gw_sasl *sasl;
    char *local, *domain, *resource;
    char *password; /* until SASL starts */
    bool plain_allowed;
    bool sm_offered;
    char bind_id[40];
    char *full_jid;
    gw_login_done done;
    void *arg;
};

static void finish(struct gw_login *lg, int err, const char *condition, const char *sm_id,
                   bool resume, uint32_t max)
{
    if (lg->step == S_DONE)
        return;
    lg->step = S_DONE;
    if (lg->password) {
        gw_memzero(lg->password, strlen(lg->password));
        free(lg->password);
        lg->password = NULL;
    }
    struct gw_login_result r = {err, condition, lg->full_jid, sm_id, resume, max};
    lg->done(lg->arg, &r);
}

static int send_el(struct gw_login *lg, struct gw_xml *el)
{
    int rc = gw_upstream_send(lg->up, el);
    gw_xml_free(el);
    return rc;
}

static void sasl_element(struct gw_login *lg, const char *name, const char *b64,
                         const char *mechanism)
{
    struct gw_xml *el = gw_xml_new(GW_NS_SASL, name);
    if (mechanism)
        gw_xml_set_attr(el, "mechanism", mechanism);
    gw_xml_add_text(el, b64 && *b64 ? b64 : "=", b64 && *b64 ? strlen(b64) : 1);
    if (send_el(lg, el) != 0)
        finish(lg, GW_EIO, "remote-server-error", NULL, false, 0);
}

static void start_sasl(struct gw_login *lg, const struct gw_xml *features)
{
    struct gw_xml *mechs = gw_xml_child(features, GW_NS_SASL, "mechanisms");
    const char *names[16];
    char *owned[16];
    size_t n = 0;
    for (struct gw_xml *m = mechs ? gw_xml_next_element(mechs, NULL) : NULL; m && n < 16;
         m = gw_xml_next_element(mechs, m)) {
        if (gw_xml_is(m, GW_NS_SASL, "mechanism")) {
            owned[n] = gw_xml_text(m);
            names[n] = owned[n];
            n++;
        }
    }
    int rc = gw_sasl_new(names, n, lg->plain_allowed, lg->local, lg->password, gw_rand_mbedtls,
                         lg->core->rand, &lg->sasl);
    for (size_t i = 0; i < n; i++)
        free(owned[i]);
    gw_memzero(lg->password, strlen(lg->password));
    free(lg->password);
    lg->password = NULL;
    if (rc != 0) {
        finish(lg, GW_EAUTH, "invalid-mechanism", NULL, false, 0);
        return;
    }
    char *b64 = NULL;
    if (gw_sasl_initial(lg->sasl, &b64) != 0) {
        finish(lg, GW_EAUTH, "invalid-mechanism", NULL, false, 0);
        return;
    }
    lg->step = S_SASL;
    sasl_element(lg, "auth", b64, gw_sasl_mechanism(lg->sasl));
    if (b64) {
        gw_memzero(b64, strlen(b64));
        free(b64);
    }
}

static void on_sasl(struct gw_login *lg, const struct gw_xml *el)
{
    char *text = gw_xml_text(el);
    if (gw_xml_is(el, GW_NS_SASL, "challenge")) {
        char *resp = NULL;
        if (gw_sasl_step(lg->sasl, text, &resp) != 0) {
            /* Abort the exchange rather than answer a challenge we cannot trust. */
            struct gw_xml *abort_el = gw_xml_new(GW_NS_SASL, "abort");
            send_el(lg, abort_el);
            finish(lg, GW_EAUTH, "bad-auth", NULL, false, 0);
        } else {
            sasl_element(lg, "response", resp, NULL);
        }
        if (resp) {
            gw_memzero(resp, strlen(resp));
            free(resp);
        }
    } else if (gw_xml_is(el, GW_NS_SASL, "success")) {
        if (gw_sasl_success(lg->sasl, text) != 0) {
            GW_WARN("login.server_signature",
                    "domain=%s detail=\"SCRAM server signature did not "
                    "verify\"",
                    lg->domain);
            finish(lg, GW_EAUTH, "bad-auth", NULL, false, 0);
        } else {
            lg->step = S_FEATURES2;
            if (gw_upstream_open(lg->up, lg->domain, NULL) != 0)
                finish(lg, GW_EIO, "remote-server-error", NULL, false, 0);
        }
    } else if (gw_xml_is(el, GW_NS_SASL, "failure")) {
        struct gw_xml *cond = gw_xml_next_element(el, NULL);
        finish(lg, GW_EAUTH, cond ? cond->name : "not-authorized", NULL, false, 0);
    } else {
        finish(lg, GW_EPROTO, "remote-server-error", NULL, false, 0);
    }
    free(text);
}

static void start_bind(struct gw_login *lg, const struct gw_xml *features)
{
    if (!gw_xml_child(features, GW_NS_BIND, "bind")) {
        finish(lg, GW_EPROTO, "remote-server-error", NULL, false, 0);
        return;
    }
    lg->sm_offered = gw_xml_child(features, GW_NS_SM, "sm") != NULL;
    char rnd[17];
    gw_rand_hex(lg->core->rand, 8, rnd, sizeof rnd);
    snprintf(lg->bind_id, sizeof lg->bind_id, "mxgw-bind-%s", rnd);
    struct gw_xml *iq = gw_xml_new(GW_NS_CLIENT, "iq");
    gw_xml_set_attr(iq, "type", "set");
    gw_xml_set_attr(iq, "id", lg->bind_id);
    struct gw_xml *bind = gw_xml_add_child(iq, GW_NS_BIND, "bind");
    if (lg->resource) {
        struct gw_xml *r = gw_xml_add_child(bind, GW_NS_BIND, "resource");
        gw_xml_add_text(r, lg->resource, strlen(lg->resource));
    }
    lg->step = S_BIND;
    if (send_el(lg, iq) != 0)
        finish(lg, GW_EIO, "remote-server-error", NULL, false, 0);
}

static void on_bind(struct gw_login *lg, const struct gw_xml *el)
{
    const char *type = gw_xml_attr(el, "type");
    struct gw_xml *bind = gw_xml_child(el, GW_NS_BIND, "bind");
    struct gw_xml *jid = bind ? gw_xml_child(bind, GW_NS_BIND, "jid") : NULL;
    if (!type || strcmp(type, "result") != 0 || !jid) {
        finish(lg, GW_EPROTO,
               type && strcmp(type, "error") == 0 ? "conflict" : "remote-server-error", NULL, false,
               0);
        return;
    }
    lg->full_jid = gw_xml_text(jid);
    if (!gw_jid_valid(lg->full_jid)) {
        finish(lg, GW_EPROTO, "remote-server-error", NULL, false, 0);
        return;
    }
    if (!lg->sm_offered) {
        finish(lg, 0, NULL, NULL, false, 0);
        return;
    }
    struct gw_xml *enable = gw_xml_new(GW_NS_SM, "enable");
    gw_xml_set_attr(enable, "resume", "true");
    lg->step = S_SM;
    if (send_el(lg, enable) != 0)
        finish(lg, GW_EIO, "remote-server-error", NULL, false, 0);
}

static void on_sm(struct gw_login *lg, const struct gw_xml *el)
{
    if (gw_xml_is(el, GW_NS_SM, "enabled")) {
        const char *resume = gw_xml_attr(el, "resume");
        const char *max = gw_xml_attr(el, "max");
        bool can_resume = resume && (strcmp(resume, "true") == 0 || strcmp(resume, "1") == 0);
        finish(lg, 0, NULL, gw_xml_attr(el, "id"), can_resume,
               max ? (uint32_t)strtoul(max, NULL, 10) : 0);
    } else {
        /* <failed/>: the session works, only without stream management. */
        finish(lg, 0, NULL, NULL, false, 0);
    }
}

struct gw_login *gw_login_start(struct gw_core *core, struct gw_upstream *up, const char *jid,
                                const char *password, const char *resource, bool plain_allowed,
                                gw_login_done done, void *arg, int *err)
{
    struct gw_jid parsed;
    if (gw_jid_parse(jid, &parsed) != 0 || !parsed.local) {
        gw_jid_free(&parsed);
        *err = GW_EINVAL;
        return NULL;
    }
    struct gw_login *lg = gw_calloc(1, sizeof *lg);
    lg->core = core;
    lg->up = up;
    lg->local = parsed.local;
    lg->domain = parsed.domain;
    free(parsed.resource);
    lg->resource = resource && *resource ? gw_strdup(resource) : NULL;
    lg->password = gw_strdup(password);
    lg->plain_allowed = plain_allowed;
    lg->done = done;
    lg->arg = arg;
    lg->step = S_FEATURES;
    *err = gw_upstream_open(up, lg->domain, NULL);
    if (*err) {
        gw_login_free(lg);
        return NULL;
    }
    return lg;
}

void gw_login_open(struct gw_login *lg, const struct gw_xml *header)
{
    (void)lg;
    (void)header;
}

bool gw_login_stanza(struct gw_login *lg, struct gw_xml *el)
{
    switch (lg->step) {
    case S_FEATURES:
    case S_FEATURES2:
        if (!gw_xml_is(el, GW_NS_STREAM, "features"))
            finish(lg, GW_EPROTO, "remote-server-error", NULL, false, 0);
        else if (lg->step == S_FEATURES)
            start_sasl(lg, el);
        else
            start_bind(lg, el);
        break;
    case S_SASL:
        on_sasl(lg, el);
        break;
    case S_BIND:
        if (!gw_xml_is(el, GW_NS_CLIENT, "iq") || !gw_xml_attr(el, "id") ||
            strcmp(gw_xml_attr(el, "id"), lg->bind_id) != 0)
            return false; /* not ours: let the owner have it */
        on_bind(lg, el);
        break;
    case S_SM:
        if (!el->ns || strcmp(el->ns, GW_NS_SM) != 0)
            return false;
        on_sm(lg, el);
        break;
    case S_DONE:
        return false;
    }
    gw_xml_free(el);
    return true;
}

void gw_login_free(struct gw_login *lg)
{
    if (!lg)
        return;
    if (lg->password) {
        gw_memzero(lg->password, strlen(lg->password));
        free(lg->password);
    }
    gw_sasl_free(lg->sasl);
    free(lg->local);
    free(lg->domain);
    free(lg->resource);
    free(lg->full_jid);
    free(lg);
}
