/* The JSON sessions' records in the store, as data: key names, the session hash's fields, queue
 * items and the client-to-server ack pairs. No I/O here (web/json_session.c does it), so every
 * encoding can be tested on its own.
 *
 *   mxgw:json:<sid>    hash: owner node, JIDs, upstream SM id and counters, client counters,
 *                      token verifier(s) and sealed re-login secret(s), state, expiry
 *   mxgw:jsonq:<sid>   list: stanzas from the server kept for the client, "<seq> <XML>"
 *   mxgw:node:<node>   pub/sub channel of one node (handover requests and replies) */
#ifndef GW_JSON_STORE_H
#define GW_JSON_STORE_H

#include "gateway/store.h"
#include "xmpp/sm.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GW_JSTORE_KEY_MAX    128
#define GW_JSTORE_MAX_FIELDS 28
#define GW_JSTORE_MAX_PAIRS  256 /* client stanzas awaiting the server's ack */

/* The session hash as read back. Strings are owned and never NULL ("" when absent). */
struct gw_jstore_rec {
    bool found; /* the hash existed */
    char owner[64];
    char state[16];
    char *jid, *bare, *lang, *sm_id;
    bool sm_resume;
    char *token, *reauth;           /* the current token's verifier and sealed secret */
    char *token_prev, *reauth_prev; /* the previous ones, until the client used the new token */
    char *up_fifo;                  /* "u:c,…": see gw_jstore_pairs_decode() */
    uint32_t up_in_h;               /* server stanzas made safe: the h mxgw may resume with */
    uint32_t up_out, up_out_acked;  /* stanzas mxgw sent upstream, and of those acked */
    uint32_t cl_in, cl_in_acked;    /* client stanzas received, and of those acked to it */
    uint32_t cl_out, cl_acked;      /* the seq last given to a stanza for the client; its h */
    uint32_t cl_max;                /* no stanza for the client was or will be numbered above */
    uint64_t expires;               /* wall-clock ms when a detached session ends; 0 if bound */
};

void gw_jstore_key(const char *sid, char *out, size_t n);
void gw_jstore_qkey(const char *sid, char *out, size_t n);
void gw_jstore_channel(const char *node, char *out, size_t n);

/* Reads an hgetall reply. Returns 0 (rec->found false for a missing hash) or GW_EINVAL when a
 * counter is not a number; rec is filled either way and must be freed. */
int gw_jstore_parse(const struct gw_store_reply *r, struct gw_jstore_rec *rec);
void gw_jstore_rec_free(struct gw_jstore_rec *rec);

/* Fields to write in one hset; values are copied into the struct or borrowed (strings). */
struct gw_jstore_fields {
    size_t n;
    struct gw_store_str f[GW_JSTORE_MAX_FIELDS], v[GW_JSTORE_MAX_FIELDS];
    char num[GW_JSTORE_MAX_FIELDS][24];
};
/* value is borrowed until the hset call. */
void gw_jstore_add(struct gw_jstore_fields *w, const char *field, const char *value);
void gw_jstore_add_u64(struct gw_jstore_fields *w, const char *field, uint64_t value);

/* A queue item: "<seq> <xml>". Returns an owned buffer of *outlen bytes. */
char *gw_jstore_item(uint32_t seq, const char *xml, size_t len, size_t *outlen);
/* Splits an item; *xml points into item. Returns 0 or GW_EINVAL. */
int gw_jstore_item_parse(const char *item, size_t len, uint32_t *seq, const char **xml,
                         size_t *xml_len);

/* The client stanzas sent upstream and not yet acked by the server, as "u:c" pairs: stanza u
 * upstream carried the client's stanza c (every client stanza up to c is handled once the
 * server acks u). encode returns an owned string of the queue's items (seq = u, tag = c). */
struct gw_jstore_pair {
    uint32_t u, c;
};
char *gw_jstore_pairs_encode(const struct gw_sm_queue *q);
/* Returns 0 and *n pairs, or GW_EINVAL (malformed, or more than max). */
int gw_jstore_pairs_decode(const char *s, struct gw_jstore_pair *out, size_t max, size_t *n);
/* The count of the client's stanzas handled, once the server has said (XEP-0198 <resumed/>)
 * that it handled x of mxgw's: the c of the last pair within x, or every client stanza if all
 * pairs are. A malformed list falls back to cl_in_acked (the client resends the rest). */
uint32_t gw_jstore_client_h(const struct gw_jstore_rec *rec, uint32_t x);

#endif
