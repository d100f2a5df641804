/* Guards for outbound push requests (SSRF): which addresses an endpoint may reach and which
 * hosts an operator's lists name. */
#ifndef GW_SSRF_H
#define GW_SSRF_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

enum gw_addr_class {
    GW_ADDR_PUBLIC,    /* global unicast */
    GW_ADDR_LOOPBACK,  /* 127/8, ::1 */
    GW_ADDR_PRIVATE,   /* RFC 1918, 100.64/10 (CGNAT), fc00::/7 (ULA) */
    GW_ADDR_LINKLOCAL, /* 169.254/16, fe80::/10 */
    GW_ADDR_RESERVED, /* unspecified, multicast, broadcast, documentation, benchmarking, 240/4 … */
};

/* Classifies an AF_INET or AF_INET6 address (other families are RESERVED). IPv4-mapped,
 * IPv4-compatible, NAT64 (64:ff9b::/96) and 6to4 (2002::/16) addresses are judged by the IPv4
 * address inside them. */
enum gw_addr_class gw_addr_classify(const struct sockaddr *sa);
const char *gw_addr_class_name(enum gw_addr_class c);
/* Classifies an address written as text (IPv4 dotted quad or IPv6, brackets allowed). Returns
 * false if text is not an IP address. */
bool gw_addr_classify_text(const char *text, enum gw_addr_class *out);

/* A list of hosts from the configuration: "host", "host:port" or "*.domain" (any subdomain),
 * separated by spaces. Host names compare case-insensitively. */
struct gw_hostlist;

/* Parses text. Returns 0 and an owned list (empty for empty text), or GW_ECONFIG with the bad
 * entry in err. */
int gw_hostlist_parse(const char *text, struct gw_hostlist **out, char *err, size_t errlen);
void gw_hostlist_free(struct gw_hostlist *l);
bool gw_hostlist_empty(const struct gw_hostlist *l);
/* True if host (without brackets) and port match an entry. */
bool gw_hostlist_match(const struct gw_hostlist *l, const char *host, unsigned port);

#endif
