/* What deserves a push: the classification of inbound stanzas (for sessions mxgw holds while the
 * client is away) and of XEP-0357 publish requests (for users with no mxgw session). Pure
 * functions on element trees; no I/O. */
#ifndef GW_POLICY_H
#define GW_POLICY_H

#include "xmpp/xml.h"

#include <stdbool.h>
#include <stddef.h>

enum gw_push_kind {
    GW_PUSH_NONE,      /* presence, chat states, receipts, markers, errors, headlines … */
    GW_PUSH_BODY,      /* a message with a body */
    GW_PUSH_ENCRYPTED, /* an encrypted message (OMEMO, OpenPGP, OX) */
    GW_PUSH_INVITE,    /* a MUC invite, mediated (XEP-0045) or direct (XEP-0249) */
    GW_PUSH_CALL,      /* a call proposal (XEP-0353): urgent */
    GW_PUSH_MENTION,   /* a groupchat message that mentions the user */
    GW_PUSH_GROUPCHAT, /* any other groupchat message with a body */
};

/* Which kinds count, from the push_on_* keys, and the body length cap. */
struct gw_push_policy {
    bool on_body, on_encrypted, on_invite, on_call, on_mention, on_groupchat;
    size_t body_max;
};

/* What a registration asked for groupchat messages. */
enum gw_push_groupchat { GW_GC_NONE, GW_GC_MENTIONS, GW_GC_ALL };

/* One important event. Strings are owned (NULL when absent). */
struct gw_push_event {
    enum gw_push_kind kind;
    bool urgent;
    char *sender; /* bare JID; for groupchat the occupant JID (room@service/nick) */
    char *body;   /* at most body_max bytes, cut at a character boundary; never for encrypted */
    char *room;   /* groupchat: the room's bare JID */
};

/* Classifies stanza, delivered to account (the user's bare JID). nick is the user's nickname in
 * the room for a groupchat message, if the caller knows it (NULL otherwise; the account's
 * localpart stands in for mention detection). A carbon (XEP-0280) counts as the message it
 * carries when received, never when sent, and only when it comes from the account itself. A
 * kind the policy turns off becomes GW_PUSH_NONE. out is overwritten (clear it after). */
void gw_push_classify(const struct gw_push_policy *p, const char *account, const char *nick,
                      const struct gw_xml *stanza, struct gw_push_event *out);
void gw_push_event_clear(struct gw_push_event *ev);
/* Whether an event should push to a registration that asked for mode and listed rooms (bare
 * JIDs separated by spaces, may be NULL): mentions push unless mode is none, other groupchat
 * messages only with mode all or a listed room; everything else always. */
bool gw_push_wants(const struct gw_push_event *ev, enum gw_push_groupchat mode, const char *rooms);
/* "none", "mentions", "all" → mode; returns false for anything else. */
bool gw_push_groupchat_parse(const char *s, enum gw_push_groupchat *out);
const char *gw_push_groupchat_name(enum gw_push_groupchat mode);
const char *gw_push_kind_name(enum gw_push_kind kind);

/* An XEP-0357 publish request (§8), as a server's push module sends it. Strings are owned. */
struct gw_push_publish {
    char *node;     /* the pubsub node: our registration id */
    long count;     /* message-count, 1 when absent */
    char *sender;   /* last-message-sender, NULL when absent */
    char *body;     /* last-message-body, NULL when absent (capped like events) */
    bool important; /* last-message-body has a value (Prosody's mark of importance) */
    char *secret;   /* the publish-options "secret" field, NULL when absent */
};

/* Parses iq (an iq set carrying pubsub/publish). Returns 0, or GW_EINVAL with a static reason in
 * *why (the answer is then a bad-request error). body_max caps the body kept. */
int gw_push_parse_publish(const struct gw_xml *iq, size_t body_max, struct gw_push_publish *out,
                          const char **why);
void gw_push_publish_clear(struct gw_push_publish *pub);

#endif
