/* REST API keys: their format, hash and constant-time check, and their scopes (the sender JIDs a
 * key may use and the operations it may call).
 *
 * A key reads "mxgw_<id>_<secret>": id is 16 lowercase hex digits (64 random bits, not secret:
 * it names the key in the store and in logs), secret 64 lowercase hex digits (256 random bits
 * from the CTR_DRBG). The store keeps only SHA-256 of the whole key, so a leaked store reveals no
 * usable key; the secret's entropy makes a slow hash unnecessary. */
#ifndef GW_REST_KEY_H
#define GW_REST_KEY_H

#include "gateway/rand.h"

#include <stdbool.h>
#include <stddef.h>

#define GW_KEY_ID_HEX     16
#define GW_KEY_SECRET_HEX 64
#define GW_KEY_LEN        (5 + GW_KEY_ID_HEX + 1 + GW_KEY_SECRET_HEX) /* 86 */
#define GW_KEY_HASH_HEX   64
#define GW_SCOPE_MAX_JIDS 32

/* Operations a key may be allowed, as bits. */
enum gw_key_op {
    GW_OP_MESSAGES = 1 << 0,      /* POST /messages */
    GW_OP_STANZAS = 1 << 1,       /* POST /stanzas */
    GW_OP_SESSIONS_READ = 1 << 2, /* GET /sessions */
    GW_OP_SESSIONS_KICK = 1 << 3, /* DELETE /sessions/{id} */
    GW_OP_PUSH_READ = 1 << 4,     /* GET /users/{jid}/push */
    GW_OP_PUSH_WRITE = 1 << 5,    /* PUT, DELETE /users/{jid}/push */
    GW_OP_ALL = (1 << 6) - 1,
};

/* Checks the form of key and copies its id (NUL-terminated) into id. Returns 0 or GW_EINVAL. */
int gw_key_parse(const char *key, char id[GW_KEY_ID_HEX + 1]);
/* Makes a new key into out (size > GW_KEY_LEN) and its id. Returns 0 or GW_EIO. */
int gw_key_generate(struct gw_rand *rand, char *out, size_t outlen, char id[GW_KEY_ID_HEX + 1]);
/* Lowercase hex SHA-256 of key (NUL-terminated) into hex. */
void gw_key_hash(const char *key, char hex[GW_KEY_HASH_HEX + 1]);
/* True when key hashes to stored_hex (64 hex digits), compared in constant time. A stored value of
 * another length is compared against a dummy, in the same time, and fails. */
bool gw_key_check(const char *key, const char *stored_hex, size_t stored_len);

/* Parses a space- or comma-separated list of operation names ("messages stanzas sessions.read
 * sessions.kick push.read push.write", or "*" for all) into bits. Returns 0 or GW_EINVAL. */
int gw_key_ops_parse(const char *list, unsigned *ops);
/* Writes the names of ops, separated by spaces, into out. */
void gw_key_ops_format(unsigned ops, char *out, size_t n);

/* The sender JIDs a key may use: patterns on the component's domain, each one of
 *   "domain"            the domain itself,
 *   "local@domain"      exactly that account (any resource),
 *   "*@domain"          any account on the domain (not the domain itself),
 *   "prefix*@domain"    any account whose localpart starts with prefix.
 * Localparts compare ASCII-case-insensitively (the server case-maps them as one account). */
struct gw_key_scope {
    char *jids[GW_SCOPE_MAX_JIDS];
    size_t njids;
    unsigned ops;
};

/* Parses a space- or comma-separated list of patterns, each on domain. Returns 0, or GW_EINVAL
 * with the reason in err (a malformed pattern, another domain, more than GW_SCOPE_MAX_JIDS). */
int gw_key_scope_parse(struct gw_key_scope *scope, const char *list, const char *domain, char *err,
                       size_t errlen);
void gw_key_scope_free(struct gw_key_scope *scope);
/* True when jid (a full or bare JID) is one the scope allows as a sender. */
bool gw_key_scope_allows(const struct gw_key_scope *scope, const char *jid);
/* The first pattern naming one JID (not a wildcard), or NULL: the sender when a call names none.
 * Borrowed. */
const char *gw_key_scope_default(const struct gw_key_scope *scope);

#endif
