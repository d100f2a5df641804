/* JIDs (RFC 7622): parsing, validation and formatting. */
#ifndef GW_JID_H
#define GW_JID_H

#include <stdbool.h>
#include <stddef.h>

#define GW_JID_PART_MAX 1023

/* A parsed JID. Each part is an owned string; local and resource are NULL when absent. The
 * domain is lower-cased (ASCII) and a trailing dot removed. */
struct gw_jid {
    char *local;
    char *domain;
    char *resource;
};

/* Parses and validates s: valid UTF-8 with no control characters, each part 1..1023 bytes,
 * no RFC 7622 §3.3.1 forbidden characters in the localpart, a domain of valid labels or an IP
 * literal. Returns 0 or GW_EINVAL (out is left zeroed). */
int gw_jid_parse(const char *s, struct gw_jid *out);
void gw_jid_free(struct gw_jid *jid);
/* Returns an owned "local@domain" (or "domain"). */
char *gw_jid_bare(const struct gw_jid *jid);
/* Returns an owned "local@domain/resource" (parts that are absent are left out). */
char *gw_jid_full(const struct gw_jid *jid);
/* True if s is a valid JID. */
bool gw_jid_valid(const char *s);

#endif
