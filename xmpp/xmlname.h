/* XML names as expat reads them: the check every name written unescaped must pass. */
#ifndef GW_XMLNAME_H
#define GW_XMLNAME_H

#include <stdbool.h>

#define GW_XMLNAME_MAX 256 /* longest name accepted, in bytes */

/* True if s is an NCName (an XML name without a colon) of 1..GW_XMLNAME_MAX bytes that expat
 * accepts as an element and attribute name. Names that are pure ASCII are checked directly;
 * others are given to expat itself, because XML 1.0's name classes outside ASCII are large
 * tables that expat already holds (and its tables, not the newest edition's, decide what
 * parses). */
bool gw_xmlname_valid(const char *s);

#endif
