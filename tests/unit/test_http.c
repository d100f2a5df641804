/* Tests for web/http.c's pure parts: the path canonicaliser (every encoding trick the router
 * must not be fooled by) and the CORS origin list parser. */
#include "tests/unit/check.h"
#include "gateway/err.h"
#include "web/http.h"

#include <string.h>

struct canon_case {
    const char *raw;
    int rc;
    const char *out;
};

static const struct canon_case canon_cases[] = {
    /* plain paths, query strings and trailing slashes */
    {"/", 0, "/"},
    {"/http-bind", 0, "/http-bind"},
    {"/http-bind/", 0, "/http-bind"},
    {"/http-bind?x=1&y=%2F", 0, "/http-bind"},
    {"/api/v1/sessions", 0, "/api/v1/sessions"},
    {"/a%20b", 0, "/a b"},
    {"/%41%62c", 0, "/Abc"},
    {"/caf%C3%A9", 0, "/caf\xc3\xa9"},
    {"/%e2%82%ac", 0, "/\xe2\x82\xac"},
    {"/file.txt", 0, "/file.txt"},
    {"/a/...", 0, "/a/..."},
    {"/.well-known/x", 0, "/.well-known/x"},
    {"/?", 0, "/"},
    /* not a path */
    {"", GW_EINVAL, NULL},
    {"http-bind", GW_EINVAL, NULL},
    {"*", GW_EINVAL, NULL},
    {"http://example.com/", GW_EINVAL, NULL},
    {"?a=b", GW_EINVAL, NULL},
    /* dot segments, literal and encoded (CVE-2016-1231, CVE-2023-32315) */
    {"/..", GW_EINVAL, NULL},
    {"/.", GW_EINVAL, NULL},
    {"/a/../b", GW_EINVAL, NULL},
    {"/a/./b", GW_EINVAL, NULL},
    {"/a/..", GW_EINVAL, NULL},
    {"/a/../", GW_EINVAL, NULL},
    {"/%2e%2e/etc", GW_EINVAL, NULL},
    {"/%2E%2E", GW_EINVAL, NULL},
    {"/.%2e/x", GW_EINVAL, NULL},
    {"/%2e", GW_EINVAL, NULL},
    {"/api/v1/%2e%2e/admin", GW_EINVAL, NULL},
    /* %u escapes (IIS / Openfire) and malformed escapes */
    {"/%u002e%u002e/admin", GW_EINVAL, NULL},
    {"/a%", GW_EINVAL, NULL},
    {"/a%2", GW_EINVAL, NULL},
    {"/a%zz", GW_EINVAL, NULL},
    {"/a%2?x", GW_EINVAL, NULL},
    /* encoded separators and backslashes */
    {"/a%2fb", GW_EINVAL, NULL},
    {"/a%2Fb", GW_EINVAL, NULL},
    {"/a%5cb", GW_EINVAL, NULL},
    {"/a\\b", GW_EINVAL, NULL},
    {"/..\\x", GW_EINVAL, NULL},
    /* empty segments */
    {"//", GW_EINVAL, NULL},
    {"//http-bind", GW_EINVAL, NULL},
    {"/a//b", GW_EINVAL, NULL},
    {"/a/b//", GW_EINVAL, NULL},
    /* NUL and control characters, encoded or not */
    {"/a%00b", GW_EINVAL, NULL},
    {"/a%0d%0aSet-Cookie:x", GW_EINVAL, NULL},
    {"/a%09", GW_EINVAL, NULL},
    {"/a%7f", GW_EINVAL, NULL},
    {"/a\tb", GW_EINVAL, NULL},
    {"/a%23b", GW_EINVAL, NULL},
    /* overlong UTF-8 forms of '.', '/' and NUL, surrogates, stray bytes */
    {"/%c0%ae%c0%ae/x", GW_EINVAL, NULL},
    {"/%c0%af", GW_EINVAL, NULL},
    {"/%e0%80%af", GW_EINVAL, NULL},
    {"/%c0%80", GW_EINVAL, NULL},
    {"/%ed%a0%80", GW_EINVAL, NULL},
    {"/%ff", GW_EINVAL, NULL},
    {"/%c3", GW_EINVAL, NULL},
    {"/\xc0\xae\xc0\xae", GW_EINVAL, NULL},
};

struct origin_case {
    const char *list;
    int rc;
    const char *first, *last;
};

static const struct origin_case origin_cases[] = {
    {"", 0, NULL, NULL},
    {"   ", 0, NULL, NULL},
    {"*", 1, "*", "*"},
    {"https://app.example", 1, "https://app.example", "https://app.example"},
    {"https://a.example http://b.example:8080", 2, "https://a.example", "http://b.example:8080"},
    {"https://a.example,https://b.example", 2, "https://a.example", "https://b.example"},
    {"http://[::1]:5280", 1, "http://[::1]:5280", "http://[::1]:5280"},
    {"https://a.example/", GW_EINVAL, NULL, NULL},
    {"https://a.example/path", GW_EINVAL, NULL, NULL},
    {"ftp://a.example", GW_EINVAL, NULL, NULL},
    {"a.example", GW_EINVAL, NULL, NULL},
    {"https://", GW_EINVAL, NULL, NULL},
    {"https://a.example\r\nX: y", GW_EINVAL, NULL, NULL},
    {"null", GW_EINVAL, NULL, NULL},
};

int main(void)
{
    for (size_t i = 0; i < sizeof canon_cases / sizeof canon_cases[0]; i++) {
        const struct canon_case *c = &canon_cases[i];
        char out[256];
        int rc = gw_http_canon_path(c->raw, strlen(c->raw), out, sizeof out);
        CHECK(rc == c->rc, "canon(\"%s\"): expected %d, got %d", c->raw, c->rc, rc);
        if (rc == 0 && c->out)
            CHECK(strcmp(out, c->out) == 0, "canon(\"%s\"): expected \"%s\", got \"%s\"", c->raw,
                  c->out, out);
    }
    /* The output never needs more room than the input; a smaller buffer is refused. */
    char small[4];
    CHECK(gw_http_canon_path("/abcdef", 7, small, sizeof small) == GW_ELIMIT,
          "expected GW_ELIMIT for a short buffer");
    /* The length bounds the input: bytes after it are not read. */
    char out[32];
    CHECK(gw_http_canon_path("/ab/../c", 3, out, sizeof out) == 0 && strcmp(out, "/ab") == 0,
          "expected \"/ab\" from the first 3 bytes, got \"%s\"", out);

    for (size_t i = 0; i < sizeof origin_cases / sizeof origin_cases[0]; i++) {
        const struct origin_case *c = &origin_cases[i];
        char origins[4][256];
        int rc = gw_http_parse_origins(c->list, origins, 4);
        CHECK(rc == c->rc, "origins(\"%s\"): expected %d, got %d", c->list, c->rc, rc);
        if (rc > 0) {
            CHECK(strcmp(origins[0], c->first) == 0, "origins(\"%s\")[0]: expected %s, got %s",
                  c->list, c->first, origins[0]);
            CHECK(strcmp(origins[rc - 1], c->last) == 0,
                  "origins(\"%s\")[last]: expected %s, got %s", c->list, c->last, origins[rc - 1]);
        }
    }
    char few[1][256];
    CHECK(gw_http_parse_origins("https://a.example https://b.example", few, 1) == GW_EINVAL,
          "expected GW_EINVAL past the maximum count");
    return CHECK_DONE();
}
