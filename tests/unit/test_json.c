/* Tests for xmpp/json.c: what the strict parser refuses (RFC 8259 and RFC 7493's I-JSON rules,
 * plus what XML cannot carry), its depth and size caps, lookups, and the writer's output. */
#include "tests/unit/check.h"

#include "gateway/err.h"
#include "xmpp/json.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

struct parse_case {
    const char *in;
    size_t len; /* 0: strlen(in) */
    int rc;
};

static const struct parse_case cases[] = {
    {"not json", 0, GW_EINVAL},
    {"[1]", 0, GW_EINVAL},
    {"\"s\"", 0, GW_EINVAL},
    {"1", 0, GW_EINVAL},
    {"", 0, GW_EINVAL},
    {"{\"b\":\"a\\u0000b\"}", 0, GW_EINVAL},
    {"{\"b\":\"a\\u0001b\"}", 0, GW_EINVAL},
    {"{\"b\":\"a\\u001fb\"}", 0, GW_EINVAL},
    {"{\"b\":\"a\x01"
     "b\"}",
     0, GW_EINVAL},
    {"{\"b\":\"a\\u0000\"}", 0, GW_EINVAL},
    {"{\"b\\u0000\":\"a\"}", 0, GW_EINVAL},
    {"{\"b\":\"\\ud800\"}", 0, GW_EINVAL},
    {"{\"b\":\"\\ud800\\u0041\"}", 0, GW_EINVAL},
    {"{\"b\":\"\\udc00x\"}", 0, GW_EINVAL},
    {"{\"b\":\"x\\uDBFF\"}", 0, GW_EINVAL},
    {"{\"b\":\"\\uffff\"}", 0, GW_EINVAL},
    {"{\"b\":\"\\ufffe\"}", 0, GW_EINVAL},
    {"{\"b\":\"\xef\xbf\xbe\"}", 0, GW_EINVAL}, /* U+FFFE written out */
    {"{\"b\":\"\xed\xa0\x80\"}", 0, GW_EINVAL}, /* an encoded surrogate */
    {"{\"b\":\"\xc0\xaf\"}", 0, GW_EINVAL},     /* overlong */
    {"{\"b\":\"\xff\"}", 0, GW_EINVAL},
    {"{\"b\":1,\"b\":2}", 0, GW_EINVAL},
    {"{\"x\":{\"a\":1,\"a\":1}}", 0, GW_EINVAL},
    {"{\"h\":9007199254740992}", 0, GW_EINVAL},
    {"{\"h\":-9007199254740992}", 0, GW_EINVAL},
    {"{\"h\":99999999999999999999999}", 0, GW_EINVAL},
    {"{\"h\":1.5}", 0, GW_EINVAL},
    {"{\"h\":1e3}", 0, GW_EINVAL},
    {"{\"b\":\"x\"", 0, GW_EINVAL},
    {"{}{}", 0, GW_EINVAL},
    {"{\"a\":1}x", 0, GW_EINVAL},
    {"{\"a\":1} ", 0, 0},
    {"{\"b\":\"tab\\t nl\\n cr\\r ok\"}", 0, 0},
    {"{\"h\":9007199254740991,\"g\":-9007199254740991}", 0, 0},
    {"{\"b\":\"\\ud83d\\ude00\"}", 0, 0},
    {"{\"b\":\"\\\\ud800 is only text\"}", 0, 0},
    {"{\"b\":\"\\uFFFD\"}", 0, 0},
    {"{\"a\":null,\"t\":true,\"f\":false,\"arr\":[1,\"x\",{}]}", 0, 0},
};

int main(void)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct parse_case *c = &cases[i];
        struct gw_json *j = NULL;
        char err[160] = "";
        size_t len = c->len ? c->len : strlen(c->in);
        int rc = gw_json_parse(c->in, len, 1000, &j, err, sizeof err);
        CHECK(rc == c->rc && (rc == 0) == (j != NULL), "case %zu (%s): expected %d got %d (%s)", i,
              c->in, c->rc, rc, err);
        CHECK(rc == 0 || err[0], "case %zu: a refusal says why", i);
        gw_json_free(j);
    }

    /* Depth: 32 levels pass, 33 do not. */
    char deep[200];
    for (int levels = 31; levels <= 32; levels++) {
        strcpy(deep, "{\"x\":");
        for (int i = 0; i < levels; i++)
            strcat(deep, "[");
        for (int i = 0; i < levels; i++)
            strcat(deep, "]");
        strcat(deep, "}");
        struct gw_json *j = NULL;
        char err[160];
        int rc = gw_json_parse(deep, strlen(deep), 1000, &j, err, sizeof err);
        CHECK(rc == (levels + 1 > GW_JSON_MAX_DEPTH ? GW_EINVAL : 0),
              "depth %d: expected %s, got %d", levels + 1,
              levels + 1 > GW_JSON_MAX_DEPTH ? "refused" : "parsed", rc);
        gw_json_free(j);
    }

    /* The size cap is checked before parsing. */
    struct gw_json *j = NULL;
    char err[160];
    const char *ten = "{\"b\":\"123\"}";
    CHECK(gw_json_parse(ten, strlen(ten), strlen(ten) - 1, &j, err, sizeof err) == GW_ELIMIT && !j,
          "expected GW_ELIMIT over the cap");
    CHECK(gw_json_parse(ten, strlen(ten), strlen(ten), &j, err, sizeof err) == 0,
          "expected a message exactly at the cap to parse");
    gw_json_free(j);

    /* Lookups. */
    const char *doc = "{\"s\":\"str\",\"i\":42,\"o\":{\"k\":\"v\"},\"n\":null,\"e\":\"\"}";
    CHECK(gw_json_parse(doc, strlen(doc), 1000, &j, err, sizeof err) == 0, "parse: %s", err);
    long long v = 0;
    CHECK(j && strcmp(gw_json_str(j, "s"), "str") == 0, "expected s");
    CHECK(j && gw_json_int(j, "i", &v) == 1 && v == 42, "expected i = 42");
    CHECK(j && gw_json_int(j, "s", &v) == 0, "expected a string not taken as an integer");
    CHECK(j && !gw_json_str(j, "i") && !gw_json_str(j, "missing"), "expected NULL lookups");
    CHECK(j && strcmp(gw_json_str(gw_json_get(j, "o"), "k"), "v") == 0, "expected o.k");
    CHECK(j && gw_json_get(j, "n")->type == GW_JSON_NULL, "expected null");
    CHECK(j && gw_json_get(j, "e")->slen == 0, "expected an empty string");
    gw_json_free(j);

    /* A decoded surrogate pair becomes its UTF-8 character. */
    const char *pair = "{\"b\":\"\\ud83d\\ude00 ok\"}";
    CHECK(gw_json_parse(pair, strlen(pair), 100, &j, err, sizeof err) == 0 &&
              strcmp(gw_json_str(j, "b"), "\xf0\x9f\x98\x80 ok") == 0,
          "expected a surrogate pair to decode");
    gw_json_free(j);

    /* Integers come out as "%lld" writes them, at both ends of the range too. */
    static const long long ints[] = {0, 7, -1, 10, -10, 9007199254740991LL, LLONG_MAX, LLONG_MIN};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        struct gw_json_out *iw = gw_json_out_new(NULL);
        gw_json_open_array(iw);
        gw_json_integer(iw, ints[i]);
        gw_json_close_array(iw);
        char want[32];
        snprintf(want, sizeof want, "[%lld]", ints[i]);
        size_t il;
        const char *it = gw_json_text(iw, &il);
        CHECK(il == strlen(want) && memcmp(it, want, il) == 0, "integer: expected %s got %.*s",
              want, (int)il, it);
        gw_json_out_free(iw);
    }

    /* Writer: compact output, escaping, integers, booleans, kv skipping NULL, reset. The
     * writer comes from a pool, as the gateway's do. */
    struct gw_json_writers *pool = gw_json_writers_new();
    struct gw_json_out *w = gw_json_out_new(pool);
    gw_json_open(w);
    gw_json_kv(w, "a", "q\"<\\>\n");
    gw_json_kv(w, "skip", NULL);
    gw_json_key(w, "n");
    gw_json_integer(w, -9007199254740991LL);
    gw_json_key(w, "t");
    gw_json_bool(w, true);
    gw_json_key(w, "l");
    gw_json_open_array(w);
    gw_json_cstr(w, "é");
    gw_json_close_array(w);
    gw_json_close(w);
    size_t n;
    const char *text = gw_json_text(w, &n);
    const char *want =
        "{\"a\":\"q\\\"<\\\\>\\n\",\"n\":-9007199254740991,\"t\":true,\"l\":[\"é\"]}";
    CHECK(n == strlen(want) && memcmp(text, want, n) == 0, "writer: expected %s, got %.*s", want,
          (int)n, text);
    CHECK(gw_json_parse(text, n, 1000, &j, err, sizeof err) == 0, "the writer's output parses");
    gw_json_free(j);
    gw_json_reset(w);
    gw_json_open(w);
    gw_json_close(w);
    text = gw_json_text(w, &n);
    CHECK(n == 2 && memcmp(text, "{}", 2) == 0, "expected {} after a reset");
    gw_json_out_free(w);

    /* A freed writer goes back to its pool emptied, and the next one taken is that writer; past
     * the pool's few spares writers are freed whole (LeakSanitizer would see one lost). */
    struct gw_json_out *again = gw_json_out_new(pool);
    CHECK(again == w, "expected the pool to hand back the writer just freed");
    gw_json_text(again, &n);
    CHECK(n == 0, "expected a writer from the pool to be empty, it holds %zu bytes", n);
    gw_json_open(again);
    gw_json_close(again);
    text = gw_json_text(again, &n);
    CHECK(n == 2 && memcmp(text, "{}", 2) == 0, "expected {} from a writer taken again");
    struct gw_json_out *many[20];
    for (size_t i = 0; i < 20; i++) {
        many[i] = i == 0 ? again : gw_json_out_new(pool);
        gw_json_kv(many[i], "k", "v");
    }
    for (size_t i = 0; i < 20; i++)
        gw_json_out_free(many[i]);
    gw_json_writers_free(pool);
    return CHECK_DONE();
}
