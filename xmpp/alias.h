/* JID aliases of one JSON WebSocket connection: small integers standing for JIDs, so that a
 * JID crosses the wire in full once and then as a number (docs/json-protocol.md, "Aliases"). */
#ifndef GW_ALIAS_H
#define GW_ALIAS_H

#include <stdbool.h>
#include <stddef.h>

#define GW_ALIAS_MAX       256   /* aliases per connection: 0 .. GW_ALIAS_MAX-1 */
#define GW_ALIAS_MAX_BYTES 16384 /* bytes of JID text held per connection */
#define GW_ALIAS_MAX_JID   512   /* longer JIDs are never aliased */

struct gw_alias;

/* Returns an owned, empty table. Numbers are handed out from 0 upwards and are never reused
 * or reassigned: a number means the same JID for the whole life of the table, which is what
 * makes it safe for the client to write it in "to" while stanzas are in flight. */
struct gw_alias *gw_alias_new(void);
void gw_alias_free(struct gw_alias *a);

/* The number of jid, or -1 when it has none. */
int gw_alias_find(const struct gw_alias *a, const char *jid);
/* The number of jid, assigning the next one when it has none (*created then true). Returns
 * GW_ELIMIT when the table is full (GW_ALIAS_MAX numbers or GW_ALIAS_MAX_BYTES of text) or
 * jid is longer than GW_ALIAS_MAX_JID. */
int gw_alias_assign(struct gw_alias *a, const char *jid, bool *created);
/* The JID number n stands for (borrowed, valid while the table lives), or NULL. */
const char *gw_alias_jid(const struct gw_alias *a, long long n);
/* Numbers assigned so far. */
size_t gw_alias_count(const struct gw_alias *a);

#endif
