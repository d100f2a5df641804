/* Pure parts of the HTTP front end: path canonicalisation, CORS origin lists and query
 * decoding, kept apart from the daemon so that they are unit-tested on their own. */
#include "web/http.h"

#include "gateway/err.h"
#include "gateway/utf8.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

/* ---- path canonicalisation ---- */

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int gw_http_canon_path(const char *raw, size_t rawlen, char *out, size_t outlen)
{
    const char *q = memchr(raw, '?', rawlen);
    size_t n = q ? (size_t)(q - raw) : rawlen;
    if (n == 0 || raw[0] != '/')
        return GW_EINVAL;
    if (outlen < n + 1)
        return GW_ELIMIT;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)raw[i];
        bool encoded = false;
        if (c == '%') {
            int hi = i + 2 < n ? hexval(raw[i + 1]) : -1;
            int lo = i + 2 < n ? hexval(raw[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return GW_EINVAL; /* truncated, non-hex, or the %uXXXX form */
            c = (unsigned char)(hi << 4 | lo);
            i += 2;
            encoded = true;
        }
        if (c < 0x20 || c == 0x7f || c == '\\' || (encoded && c == '/') || c == '#')
            return GW_EINVAL;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    /* The decoded bytes must be well-formed UTF-8 (this refuses overlong forms of '.' and '/'). */
    if (!gw_utf8_valid((const unsigned char *)out, o))
        return GW_EINVAL;
    if (strstr(out, "//"))
        return GW_EINVAL; /* an empty segment */
    if (o > 1 && out[o - 1] == '/')
        out[--o] = '\0';
    /* Segments: none "." or "..". */
    for (const char *seg = out + 1;; seg++) {
        const char *end = strchr(seg, '/');
        size_t len = end ? (size_t)(end - seg) : strlen(seg);
        if ((len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.'))
            return GW_EINVAL;
        if (!end)
            break;
        seg = end;
    }
    return 0;
}

/* ---- CORS origins ---- */

static bool origin_ok(const char *s, size_t n)
{
    const char *p;
    if (n > 8 && strncasecmp(s, "https://", 8) == 0)
        p = s + 8;
    else if (n > 7 && strncasecmp(s, "http://", 7) == 0)
        p = s + 7;
    else
        return false;
    const char *end = s + n;
    if (p == end)
        return false;
    for (; p < end; p++)
        if (!(isalnum((unsigned char)*p) || *p == '.' || *p == '-' || *p == ':' || *p == '[' ||
              *p == ']'))
            return false;
    return true;
}

int gw_http_parse_origins(const char *list, char origins[][256], size_t max)
{
    size_t count = 0;
    const char *p = list;
    for (;;) {
        while (*p == ' ' || *p == ',' || *p == '\t')
            p++;
        if (!*p)
            break;
        const char *start = p;
        while (*p && *p != ' ' && *p != ',' && *p != '\t')
            p++;
        size_t n = (size_t)(p - start);
        bool star = n == 1 && *start == '*';
        if (count >= max || n >= 256 || (!star && !origin_ok(start, n)))
            return GW_EINVAL;
        memcpy(origins[count], start, n);
        origins[count][n] = '\0';
        count++;
    }
    return (int)count;
}

/* Decodes a query component (%XX and '+') into out (size ≥ n + 1); 0 or GW_EINVAL. */
int gw_http_query_decode(const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            if (i + 2 >= n)
                return GW_EINVAL;
            int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0)
                return GW_EINVAL;
            c = (unsigned char)(hi << 4 | lo);
            i += 2;
        }
        if (c == 0)
            return GW_EINVAL;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return gw_utf8_valid((const unsigned char *)out, o) ? 0 : GW_EINVAL;
}
