/* Tests for xmpp/xmlname.c: ASCII names, colons, lengths, and names outside ASCII decided as
 * expat decides them (the fuzzer found U+060F passing an ASCII-minded check while expat, with
 * XML 1.0's older name tables, refuses it). */
#include "tests/unit/check.h"

#include "xmpp/xmlname.h"

#include <string.h>

static const struct {
    const char *name;
    bool ok;
} cases[] = {
    {"body", true},
    {"not-acceptable", true},
    {"_x.y-z9", true},
    {"A", true},
    {"é", true},
    {"漢字", true},
    {"naïve", true},
    {"", false},
    {"9a", false},
    {"-a", false},
    {".a", false},
    {"a b", false},
    {"a:b", false},
    {":", false},
    {"a>", false},
    {"a/", false},
    {"a'", false},
    {"é x='1'", false},
    {"é/", false},
    {"n\xd8\x8f"
     "a",
     false}, /* U+060F, from the fuzzer's crash */
    {"\xd8\x8f", false},
    {"a\xf0\x9f\x98\x80", false}, /* expat has no supplementary name characters */
    {"a\xc3", false},             /* truncated UTF-8 */
    {"a\xc0\xaf", false},         /* overlong */
    {"a\xef\xbf\xbe", false},     /* U+FFFE */
};

int main(void)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        CHECK(gw_xmlname_valid(cases[i].name) == cases[i].ok, "%zu \"%s\": expected %s", i,
              cases[i].name, cases[i].ok ? "valid" : "refused");
    char name[GW_XMLNAME_MAX + 2];
    memset(name, 'a', sizeof name);
    name[GW_XMLNAME_MAX] = '\0';
    CHECK(gw_xmlname_valid(name), "expected %d bytes accepted", GW_XMLNAME_MAX);
    name[GW_XMLNAME_MAX] = 'a';
    name[GW_XMLNAME_MAX + 1] = '\0';
    CHECK(!gw_xmlname_valid(name), "expected %d bytes refused", GW_XMLNAME_MAX + 1);
    return CHECK_DONE();
}
