/* Logging in on a user's behalf: features → SASL → restart → bind → XEP-0198 enable, or, to
 * resume a session on another connection, features → SASL from the kept secret → restart →
 * XEP-0198 resume (→ bind and enable if the server refuses it). Every step checks that the
 * element it gets is the one the protocol allows next; anything else ends the login with an
 * error, and the password is wiped as soon as SASL has used it. */
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

enum step { S_FEATURES, S_SASL, S_FEATURES2, S_RESUME, S_BIND, S_SM, S_DONE };

struct gw_login {
    struct gw_core *core;
    struct gw_upstream *up;
    enum step step;
    struct gw_sasl *sasl;
    char *local, *domain, *resource;
    char *password; /* until SASL starts */
    bool plain_allowed;
    bool sm_offered;
    bool bind_offered;
    char bind_id[40];
    char *full_jid;
    gw_login_done done;
    void *arg;
    struct gw_sasl_secret secret; /* exported after SASL, or given to log in again */
    bool have_secret;
    bool from_secret;
    char *sm_id; /* resume mode: the stream to resume */
    uint32_t h;  /* resume mode: our count of the server's stanzas */
    bool resumed;
    uint32_t resumed_h;
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
    struct gw_login_result r = {err, condition, lg->full_jid, sm_id, resume, max, NULL, false, 0};
    if (err == 0) {
        r.secret = lg->have_secret && !lg->from_secret ? &lg->secret : NULL;
        r.resumed = lg->resumed;
        r.resumed_h = lg->resumed_h;
    }
    lg->done(lg->arg, &r); /* may free lg; the secret is wiped with it */
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
    int rc;
    if (lg->from_secret) {
        rc = gw_sasl_new_from_secret(names, n, lg->plain_allowed, lg->local, &lg->secret,
                                     gw_rand_mbedtls, lg->core->rand, &lg->sasl);
    } else {
        rc = gw_sasl_new(names, n, lg->plain_allowed, lg->local, lg->password, gw_rand_mbedtls,
                         lg->core->rand, &lg->sasl);
        if (rc == 0 && lg->core->cfg->json_reauth_password)
            gw_sasl_keep_password(lg->sasl);
        gw_memzero(lg->password, strlen(lg->password));
        free(lg->password);
        lg->password = NULL;
    }
    for (size_t i = 0; i < n; i++)
        free(owned[i]);
    if (rc != 0) {
        /* A secret whose mechanism is gone is as good as a changed password; a name or password
         * SASL cannot carry (control characters) could never log in. */
        finish(lg, GW_EAUTH,
               lg->from_secret || rc == GW_EINVAL ? "not-authorized" : "invalid-mechanism", NULL,
               false, 0);
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
            /* From a secret, another salt or count means the password changed. */
            finish(lg, GW_EAUTH, lg->from_secret ? "not-authorized" : "bad-auth", NULL, false, 0);
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
            lg->have_secret = lg->from_secret || gw_sasl_export(lg->sasl, &lg->secret) == 0;
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

/* Resume mode, after the restart: ask for the old stream if the server offers SM, else bind. */
static void after_restart(struct gw_login *lg, const struct gw_xml *features)
{
    if (!lg->sm_id || !gw_xml_child(features, GW_NS_SM, "sm")) {
        start_bind(lg, features);
        return;
    }
    lg->sm_offered = true;
    lg->bind_offered = gw_xml_child(features, GW_NS_BIND, "bind") != NULL;
    struct gw_xml *resume = gw_xml_new(GW_NS_SM, "resume");
    char num[16];
    snprintf(num, sizeof num, "%u", lg->h);
    gw_xml_set_attr(resume, "previd", lg->sm_id);
    gw_xml_set_attr(resume, "h", num);
    lg->step = S_RESUME;
    if (send_el(lg, resume) != 0)
        finish(lg, GW_EIO, "remote-server-error", NULL, false, 0);
}

static void on_resume(struct gw_login *lg, const struct gw_xml *el)
{
    if (gw_xml_is(el, GW_NS_SM, "resumed")) {
        const char *h = gw_xml_attr(el, "h");
        char *end = NULL;
        unsigned long v = h ? strtoul(h, &end, 10) : 0;
        if (!h || *end || !*h || v > UINT32_MAX) {
            finish(lg, GW_EPROTO, "remote-server-error", NULL, false, 0);
            return;
        }
        lg->resumed = true;
        lg->resumed_h = (uint32_t)v;
        finish(lg, 0, NULL, lg->sm_id, true, 0);
        return;
    }
    /* <failed/>: the old stream is gone (expired, or an h it did not accept): bind anew on
     * this stream, as XEP-0198 §5 allows. */
    if (!lg->bind_offered) {
        finish(lg, GW_EPROTO, "remote-server-error", NULL, false, 0);
        return;
    }
    struct gw_xml *features = gw_xml_new(GW_NS_STREAM, "features");
    gw_xml_add_child(features, GW_NS_BIND, "bind");
    gw_xml_add_child(features, GW_NS_SM, "sm");
    start_bind(lg, features);
    gw_xml_free(features);
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
    free(lg->full_jid);
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

static struct gw_login *create(struct gw_core *core, struct gw_upstream *up, const char *jid,
                               bool plain_allowed, gw_login_done done, void *arg, int *err)
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
    lg->resource = parsed.resource;
    lg->plain_allowed = plain_allowed;
    lg->done = done;
    lg->arg = arg;
    lg->step = S_FEATURES;
    return lg;
}

static struct gw_login *begin(struct gw_login *lg, int *err)
{
    *err = gw_upstream_open(lg->up, lg->domain, NULL);
    if (*err) {
        gw_login_free(lg);
        return NULL;
    }
    return lg;
}

struct gw_login *gw_login_start(struct gw_core *core, struct gw_upstream *up, const char *jid,
                                const char *password, const char *resource, bool plain_allowed,
                                gw_login_done done, void *arg, int *err)
{
    struct gw_login *lg = create(core, up, jid, plain_allowed, done, arg, err);
    if (!lg)
        return NULL;
    free(lg->resource);
    lg->resource = resource && *resource ? gw_strdup(resource) : NULL;
    lg->password = gw_strdup(password);
    return begin(lg, err);
}

struct gw_login *gw_login_resume(struct gw_core *core, struct gw_upstream *up, const char *full_jid,
                                 const struct gw_sasl_secret *secret, const char *sm_id, uint32_t h,
                                 bool plain_allowed, gw_login_done done, void *arg, int *err)
{
    struct gw_login *lg = create(core, up, full_jid, plain_allowed, done, arg, err);
    if (!lg)
        return NULL;
    lg->secret = *secret;
    lg->have_secret = lg->from_secret = true;
    lg->sm_id = sm_id && *sm_id ? gw_strdup(sm_id) : NULL;
    lg->h = h;
    if (lg->sm_id)
        lg->full_jid = gw_strdup(full_jid); /* the resumed stream's, unless it binds anew */
    return begin(lg, err);
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
        else if (lg->from_secret)
            after_restart(lg, el);
        else
            start_bind(lg, el);
        break;
    case S_SASL:
        on_sasl(lg, el);
        break;
    case S_RESUME:
        if (!el->ns || strcmp(el->ns, GW_NS_SM) != 0) {
            finish(lg, GW_EPROTO, "remote-server-error", NULL, false, 0);
            break;
        }
        on_resume(lg, el);
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
    gw_sasl_secret_wipe(&lg->secret);
    free(lg->sm_id);
    free(lg->local);
    free(lg->domain);
    free(lg->resource);
    free(lg->full_jid);
    free(lg);
}
