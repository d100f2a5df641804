/* Address classes and host lists for push endpoints. The address tables follow the IANA
 * special-purpose registries (RFC 6890 and updates): anything not global unicast is refused
 * unless the operator names the host. */
#include "push/ssrf.h"

#include "gateway/err.h"
#include "gateway/mem.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct net4 {
    uint32_t net;
    unsigned bits;
    enum gw_addr_class cls;
};

static const struct net4 v4[] = {
    {0x00000000, 8, GW_ADDR_RESERVED},   /* 0/8 "this network" */
    {0x0a000000, 8, GW_ADDR_PRIVATE},    /* 10/8 */
    {0x64400000, 10, GW_ADDR_PRIVATE},   /* 100.64/10 shared (CGNAT) */
    {0x7f000000, 8, GW_ADDR_LOOPBACK},   /* 127/8 */
    {0xa9fe0000, 16, GW_ADDR_LINKLOCAL}, /* 169.254/16 (cloud metadata lives here) */
    {0xac100000, 12, GW_ADDR_PRIVATE},   /* 172.16/12 */
    {0xc0000000, 24, GW_ADDR_RESERVED},  /* 192.0.0/24 IETF protocol assignments */
    {0xc0000200, 24, GW_ADDR_RESERVED},  /* 192.0.2/24 TEST-NET-1 */
    {0xc0586300, 24, GW_ADDR_RESERVED},  /* 192.88.99/24 6to4 relay anycast */
    {0xc0a80000, 16, GW_ADDR_PRIVATE},   /* 192.168/16 */
    {0xc6120000, 15, GW_ADDR_RESERVED},  /* 198.18/15 benchmarking */
    {0xc6336400, 24, GW_ADDR_RESERVED},  /* 198.51.100/24 TEST-NET-2 */
    {0xcb007100, 24, GW_ADDR_RESERVED},  /* 203.0.113/24 TEST-NET-3 */
    {0xe0000000, 4, GW_ADDR_RESERVED},   /* 224/4 multicast */
    {0xf0000000, 4, GW_ADDR_RESERVED},   /* 240/4 reserved, 255.255.255.255 broadcast */
};

static enum gw_addr_class classify4(uint32_t a)
{
    for (size_t i = 0; i < sizeof v4 / sizeof v4[0]; i++)
        if ((a >> (32 - v4[i].bits)) == (v4[i].net >> (32 - v4[i].bits)))
            return v4[i].cls;
    return GW_ADDR_PUBLIC;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static bool zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

static enum gw_addr_class classify6(const uint8_t *a)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const uint8_t nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
    if (zero(a, 15) && a[15] == 1)
        return GW_ADDR_LOOPBACK; /* ::1 */
    if (zero(a, 16))
        return GW_ADDR_RESERVED; /* :: */
    if (memcmp(a, mapped, 12) == 0 || memcmp(a, nat64, 12) == 0 || zero(a, 12))
        return classify4(be32(a + 12)); /* ::ffff:a.b.c.d, 64:ff9b::a.b.c.d, ::a.b.c.d */
    if (a[0] == 0x20 && a[1] == 0x02)
        return classify4(be32(a + 2)); /* 2002:aabb:ccdd::/48 (6to4) */
    if (a[0] == 0xff)
        return GW_ADDR_RESERVED; /* multicast */
    if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80)
        return GW_ADDR_LINKLOCAL; /* fe80::/10 */
    if (a[0] == 0xfe && (a[1] & 0xc0) == 0xc0)
        return GW_ADDR_PRIVATE; /* fec0::/10, deprecated site-local */
    if ((a[0] & 0xfe) == 0xfc)
        return GW_ADDR_PRIVATE; /* fc00::/7 unique local */
    if (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0x0d && a[3] == 0xb8)
        return GW_ADDR_RESERVED; /* 2001:db8::/32 documentation */
    if (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0 && (a[3] & 0xfe) == 0)
        return GW_ADDR_RESERVED; /* 2001::/23 IETF protocol assignments (Teredo, ORCHID …) */
    if (a[0] == 0x01 && zero(a + 1, 7))
        return GW_ADDR_RESERVED; /* 100::/64 discard */
    if ((a[0] & 0xe0) != 0x20)
        return GW_ADDR_RESERVED; /* outside 2000::/3, the global unicast space */
    return GW_ADDR_PUBLIC;
}

enum gw_addr_class gw_addr_classify(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)sa;
        return classify4(ntohl(s->sin_addr.s_addr));
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)sa;
        return classify6(s->sin6_addr.s6_addr);
    }
    return GW_ADDR_RESERVED;
}

const char *gw_addr_class_name(enum gw_addr_class c)
{
    static const char *const names[] = {"public", "loopback", "private", "link-local", "reserved"};
    return (unsigned)c < 5 ? names[c] : "reserved";
}

bool gw_addr_classify_text(const char *text, enum gw_addr_class *out)
{
    char buf[64];
    size_t n = strlen(text);
    if (n >= 2 && text[0] == '[' && text[n - 1] == ']') {
        text++;
        n -= 2;
    }
    if (n >= sizeof buf)
        return false;
    memcpy(buf, text, n);
    buf[n] = '\0';
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, buf, &a4) == 1) {
        *out = classify4(ntohl(a4.s_addr));
        return true;
    }
    if (inet_pton(AF_INET6, buf, &a6) == 1) {
        *out = classify6(a6.s6_addr);
        return true;
    }
    return false;
}

/* ---- host lists ---- */

struct entry {
    char *host;    /* lower case; a leading "*." matches subdomains */
    unsigned port; /* 0: any */
};

struct gw_hostlist {
    struct entry *e;
    size_t n;
};

int gw_hostlist_parse(const char *text, struct gw_hostlist **out, char *err, size_t errlen)
{
    struct gw_hostlist *l = gw_calloc(1, sizeof *l);
    const char *p = text;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (!*p)
            break;
        size_t len = strcspn(p, " \t,");
        char item[300];
        if (len >= sizeof item) {
            snprintf(err, errlen, "host list entry too long");
            gw_hostlist_free(l);
            return GW_ECONFIG;
        }
        memcpy(item, p, len);
        item[len] = '\0';
        p += len;
        unsigned port = 0;
        char *host = item;
        char *colon = strrchr(item, ':');
        if (item[0] == '[') { /* [v6] or [v6]:port */
            char *close = strchr(item, ']');
            if (!close || (close[1] && close[1] != ':')) {
                snprintf(err, errlen, "bad host list entry '%.64s'", item);
                gw_hostlist_free(l);
                return GW_ECONFIG;
            }
            colon = close[1] == ':' ? close + 1 : NULL;
            *close = '\0';
            host = item + 1;
        } else if (colon && strchr(item, ':') != colon) {
            colon = NULL; /* a bare IPv6 address */
        }
        if (colon) {
            char *end;
            long v = strtol(colon + 1, &end, 10);
            if (*end || v <= 0 || v > 65535) {
                snprintf(err, errlen, "bad port in host list entry '%.64s'", item);
                gw_hostlist_free(l);
                return GW_ECONFIG;
            }
            port = (unsigned)v;
            *colon = '\0';
        }
        if (!*host) {
            snprintf(err, errlen, "empty host in host list");
            gw_hostlist_free(l);
            return GW_ECONFIG;
        }
        for (char *q = host; *q; q++)
            *q = (char)tolower((unsigned char)*q);
        l->e = gw_realloc(l->e, (l->n + 1) * sizeof *l->e);
        l->e[l->n].host = gw_strdup(host);
        l->e[l->n].port = port;
        l->n++;
    }
    *out = l;
    return 0;
}

void gw_hostlist_free(struct gw_hostlist *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++)
        free(l->e[i].host);
    free(l->e);
    free(l);
}

bool gw_hostlist_empty(const struct gw_hostlist *l)
{
    return !l || l->n == 0;
}

bool gw_hostlist_match(const struct gw_hostlist *l, const char *host, unsigned port)
{
    size_t hl = strlen(host);
    for (size_t i = 0; l && i < l->n; i++) {
        const struct entry *e = &l->e[i];
        if (e->port && e->port != port)
            continue;
        if (strncmp(e->host, "*.", 2) == 0) {
            size_t sl = strlen(e->host) - 1; /* ".domain" */
            if (hl > sl && strcasecmp(host + hl - sl, e->host + 1) == 0)
                return true;
        } else if (strcasecmp(host, e->host) == 0) {
            return true;
        }
    }
    return false;
}
