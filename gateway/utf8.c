/* UTF-8 decoding with every RFC 3629 restriction (no overlongs, no surrogates, ≤ U+10FFFF). */
#include "gateway/utf8.h"

size_t gw_utf8_decode(const unsigned char *s, size_t n, unsigned *cp)
{
    static const unsigned min[] = {0, 0, 0x80, 0x800, 0x10000};
    unsigned c = s[0];
    size_t len;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if ((c & 0xe0) == 0xc0) {
        len = 2;
        c &= 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
        len = 3;
        c &= 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
        len = 4;
        c &= 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3f);
    }
    if (c < min[len] || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return len;
}

size_t gw_utf8_xml_char(const unsigned char *s, size_t n)
{
    unsigned cp;
    size_t len = gw_utf8_decode(s, n, &cp);
    if (len == 0 || (cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r') || cp == 0xfffe ||
        cp == 0xffff)
        return 0;
    return len;
}

bool gw_utf8_xml_valid(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        if (s[i] >= 0x20 && s[i] < 0x80) { /* most text: printable ASCII */
            i++;
            continue;
        }
        size_t len = gw_utf8_xml_char(s + i, n - i);
        if (len == 0)
            return false;
        i += len;
    }
    return true;
}

bool gw_utf8_valid(const unsigned char *s, size_t n)
{
    unsigned cp;
    for (size_t i = 0; i < n;) {
        size_t len = gw_utf8_decode(s + i, n - i, &cp);
        if (len == 0)
            return false;
        i += len;
    }
    return true;
}
