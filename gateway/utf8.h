/* UTF-8 decoding shared by every module that validates text. */
#ifndef GW_UTF8_H
#define GW_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* Decodes the sequence at s (n > 0 bytes available). Returns its length (1-4) and the code
 * point in *cp, or 0 if it is not well-formed UTF-8: truncated, overlong, a surrogate, or
 * above U+10FFFF. */
size_t gw_utf8_decode(const unsigned char *s, size_t n, unsigned *cp);
/* Whether all n bytes at s are well-formed UTF-8 (n == 0: yes). */
bool gw_utf8_valid(const unsigned char *s, size_t n);
/* The length of the character at s (n > 0 bytes available) if it is well-formed UTF-8 and a
 * character XML 1.0 allows (Char: tab, LF, CR, U+0020 and above, but not U+FFFE or U+FFFF),
 * else 0. */
size_t gw_utf8_xml_char(const unsigned char *s, size_t n);
/* Whether all n bytes at s are such characters (n == 0: yes). */
bool gw_utf8_xml_valid(const unsigned char *s, size_t n);

#endif
