/* Logs a user in on an upstream stream on the client's behalf (the JSON protocol): SASL with
 * the strongest mechanism both sides allow, the stream restart, resource binding and XEP-0198
 * enable. The owner routes the upstream's header and stanzas here until done() is called. */
#ifndef GW_LOGIN_H
#define GW_LOGIN_H

#include "gateway/core.h"
#include "xmpp/sasl.h"
#include "xmpp/upstream.h"
#include "xmpp/xml.h"

#include <stdbool.h>
#include <stdint.h>

struct gw_login;

/* The outcome, borrowed for the call. err 0: logged in; otherwise condition names why
 * ("not-authorized" for bad credentials, "invalid-mechanism" when no acceptable mechanism,
 * "bad-auth" when the server's SCRAM signature did not verify, "remote-server-error" for
 * anything else the server answered). */
struct gw_login_result {
    int err;
    const char *condition;
    const char *full_jid;
    const char *sm_id; /* NULL when the server refused XEP-0198 */
    bool sm_resume;    /* the server will let the stream be resumed */
    uint32_t sm_max;   /* seconds the server keeps a resumable stream, 0 if unsaid */
    /* After a login with a password: what it takes to log in again (NULL if it cannot be
     * kept); borrowed for the call, wiped afterwards. */
    const struct gw_sasl_secret *secret;
    /* gw_login_resume(): true when the server resumed the old stream (XEP-0198 <resumed/>;
     * full_jid and sm_id are then the old ones), with resumed_h its count of our stanzas.
     * False when it refused and a new resource was bound instead. */
    bool resumed;
    uint32_t resumed_h;
};

typedef void (*gw_login_done)(void *arg, const struct gw_login_result *r);

/* Starts logging in as jid (a bare JID; its domain is the stream's) with password (copied and
 * wiped once SASL no longer needs it). resource may be NULL (the server picks). plain_allowed:
 * PLAIN may be used (the upstream link is TLS or loopback). Opens the upstream stream. Returns
 * an owned login (done() is called exactly once, later), or NULL with *err set. */
struct gw_login *gw_login_start(struct gw_core *core, struct gw_upstream *up, const char *jid,
                                const char *password, const char *resource, bool plain_allowed,
                                gw_login_done done, void *arg, int *err);
/* Logs in again from a secret (no password) and resumes the stream sm_id (XEP-0198 <resume/>
 * with h, our count of the server's stanzas handled). If the server refuses the resumption (or
 * sm_id is NULL) it binds full_jid's resource again and enables stream management, and the
 * result says resumed = false. A server that no longer accepts the secret (the password
 * changed) ends it with "not-authorized". Otherwise as gw_login_start(). */
struct gw_login *gw_login_resume(struct gw_core *core, struct gw_upstream *up, const char *full_jid,
                                 const struct gw_sasl_secret *secret, const char *sm_id, uint32_t h,
                                 bool plain_allowed, gw_login_done done, void *arg, int *err);
/* Feed the upstream's stream header (after every restart). */
void gw_login_open(struct gw_login *lg, const struct gw_xml *header);
/* Feed an upstream element; returns true if the login consumed (and freed) it. */
bool gw_login_stanza(struct gw_login *lg, struct gw_xml *el);
/* Frees the login (wiping secrets). Safe from inside done(). */
void gw_login_free(struct gw_login *lg);

#endif
