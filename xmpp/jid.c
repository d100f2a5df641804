/* JIDs (RFC 7622) without full PRECIS: parts are checked for UTF-8 validity, length, control
 * characters, spaces (U+0020 is allowed inside a resource) and the localpart's forbidden
 * characters; the domain must be a host name of valid labels or an IP literal, and is
 * lower-cased (ASCII) with one trailing dot removed. Non-ASCII parts are accepted as given and
 * not normalized. */
#include "xmpp/jid.h"

#include "gateway/err.h"
#include "gateway/mem.h"
#include "gateway/utf8.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Length of the UTF-8 character at s, or 0 if it is malformed, a control or a space. */
static size_t good_char(const unsigned char *s, size_t n)
{
    unsigned cp;
    size_t len = gw_utf8_decode(s, n, &cp);
    if (len == 0 || cp <= 0x20 || (cp >= 0x7f && cp < 0xa0))
        return 0; /* malformed, controls, space */
    if (cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 ||
        cp == 0x202f || cp == 0x205f || cp == 0x3000 || cp == 0xfeff || cp == 0xfffe ||
        cp == 0xffff)
        return 0; /* Unicode spaces, BOM, noncharacters */
    return len;
}

/* A resourcepart (OpaqueString) may hold U+0020; a localpart (UsernameCaseMapped) may not. */
static bool valid_part(const char *s, size_t n, const char *forbidden, bool space_ok)
{
    if (n == 0 || n > GW_JID_PART_MAX)
        return false;
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        if (p[i] < 0x80 && forbidden && strchr(forbidden, p[i]))
            return false;
        if (p[i] == ' ' && space_ok && i > 0 && i + 1 < n) {
            i++;
            continue;
        }
        size_t l = good_char(p + i, n - i);
        if (!l)
            return false;
        i += l;
    }
    return true;
}

static bool valid_domain(char *d, size_t n)
{
    if (n == 0 || n > GW_JID_PART_MAX)
        return false;
    if (d[0] == '[') { /* IPv6 literal */
        if (d[n - 1] != ']' || n > 48)
            return false;
        char tmp[48];
        memcpy(tmp, d + 1, n - 2);
        tmp[n - 2] = '\0';
        unsigned char addr[16];
        return inet_pton(AF_INET6, tmp, addr) == 1;
    }
    /* Labels of letters, digits, hyphens (and any non-ASCII, for IDNs in U-label form). */
    size_t label = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)d[i];
        if (c == '.') {
            if (label == 0 || d[i - 1] == '-')
                return false;
            label = 0;
            i++;
            continue;
        }
        if (c >= 0x80) {
            size_t l = good_char((unsigned char *)d + i, n - i);
            if (!l)
                return false;
            i += l;
            label += l;
        } else {
            if (c >= 'A' && c <= 'Z')
                d[i] = (char)(c - 'A' + 'a');
            else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                       (c == '-' && label > 0) || c == '_'))
                return false;
            i++;
            label++;
        }
        if (label > 63)
            return false;
    }
    return label > 0 && d[n - 1] != '-';
}

int gw_jid_parse(const char *s, struct gw_jid *out)
{
    memset(out, 0, sizeof *out);
    if (!s)
        return GW_EINVAL;
    size_t len = strlen(s);
    if (len > 3 * GW_JID_PART_MAX + 2)
        return GW_EINVAL;
    const char *slash = strchr(s, '/');
    const char *end = slash ? slash : s + len;
    const char *at = memchr(s, '@', (size_t)(end - s));
    const char *dom = at ? at + 1 : s;
    size_t dlen = (size_t)(end - dom);
    if (at && !valid_part(s, (size_t)(at - s), "\"&'/:<>@", false))
        return GW_EINVAL;
    if (slash && !valid_part(slash + 1, len - (size_t)(slash + 1 - s), NULL, true))
        return GW_EINVAL;
    char *domain = gw_strndup(dom, dlen);
    if (dlen > 1 && domain[dlen - 1] == '.')
        domain[--dlen] = '\0';
    if (!valid_domain(domain, dlen)) {
        free(domain);
        return GW_EINVAL;
    }
    out->domain = domain;
    if (at)
        out->local = gw_strndup(s, (size_t)(at - s));
    if (slash)
        out->resource = gw_strdup(slash + 1);
    return 0;
}

void gw_jid_free(struct gw_jid *jid)
{
    free(jid->local);
    free(jid->domain);
    free(jid->resource);
    memset(jid, 0, sizeof *jid);
}

static char *join(const struct gw_jid *jid, bool full)
{
    size_t n = strlen(jid->domain) + 3 + (jid->local ? strlen(jid->local) : 0) +
               (full && jid->resource ? strlen(jid->resource) : 0);
    char *s = gw_malloc(n);
    snprintf(s, n, "%s%s%s%s%s", jid->local ? jid->local : "", jid->local ? "@" : "", jid->domain,
             full && jid->resource ? "/" : "", full && jid->resource ? jid->resource : "");
    return s;
}

char *gw_jid_bare(const struct gw_jid *jid)
{
    return join(jid, false);
}

char *gw_jid_full(const struct gw_jid *jid)
{
    return join(jid, true);
}

bool gw_jid_valid(const char *s)
{
    struct gw_jid j;
    if (gw_jid_parse(s, &j) != 0)
        return false;
    gw_jid_free(&j);
    return true;
}
