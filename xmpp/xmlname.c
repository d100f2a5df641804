/* XML name validation for names that reach the serializer unescaped (element names, attribute
 * names, error conditions, marker names). The serializer writes names as they are, so a name
 * that expat would refuse must never get that far: the upstream server would end the stream. */
#include "xmpp/xmlname.h"

#include <expat.h>
#include <stdio.h>
#include <string.h>

/* Checks the ASCII bytes (bytes from 0x80 up are left to expat); sets *other when there are
 * some. With every ASCII byte a name character, "<name/>" can only parse as one name. */
static bool ascii_ok(const char *s, size_t n, bool *other)
{
    *other = false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80) {
            *other = true;
            continue;
        }
        bool start = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
        bool more = start || (c >= '0' && c <= '9') || c == '-' || c == '.';
        if (!(i == 0 ? start : more))
            return false;
    }
    return true;
}

/* Asks expat: "<name/>" must parse as a document, with no namespace processing (a colon was
 * already refused) so that only the name's characters decide. */
static bool expat_name(const char *s, size_t n)
{
    char doc[GW_XMLNAME_MAX + 4];
    int len = snprintf(doc, sizeof doc, "<%.*s/>", (int)n, s);
    XML_Parser p = XML_ParserCreate("UTF-8");
    if (!p)
        return false;
    bool ok = XML_Parse(p, doc, len, XML_TRUE) == XML_STATUS_OK;
    XML_ParserFree(p);
    return ok;
}

bool gw_xmlname_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > GW_XMLNAME_MAX || strchr(s, ':'))
        return false;
    bool other;
    if (!ascii_ok(s, n, &other))
        return false;
    return !other || expat_name(s, n);
}
