/* Tests for web/rest_key.c: the key format, its hash and constant-time check, operation
 * lists, and scope matching (table-driven). */
#include "web/rest_key.h"

#include "check.h"
#include "gateway/err.h"
#include "gateway/rand.h"

#include <stdlib.h>
#include <string.h>

static void test_format(void)
{
    struct gw_rand *rand;
    CHECK(gw_rand_new(&rand) == 0, "rand");
    char key[GW_KEY_LEN + 1], id[GW_KEY_ID_HEX + 1], id2[GW_KEY_ID_HEX + 1];
    CHECK(gw_key_generate(rand, key, sizeof key, id) == 0, "generate");
    CHECK(strlen(key) == GW_KEY_LEN, "length %zu", strlen(key));
    CHECK(strncmp(key, "mxgw_", 5) == 0 && key[21] == '_', "form %s", key);
    CHECK(gw_key_parse(key, id2) == 0 && strcmp(id, id2) == 0, "id %s vs %s", id, id2);
    char other[GW_KEY_LEN + 1];
    CHECK(gw_key_generate(rand, other, sizeof other, id2) == 0 && strcmp(key, other) != 0 &&
              strcmp(id, id2) != 0,
          "two keys differ");
    CHECK(gw_key_generate(rand, other, GW_KEY_LEN, id2) == GW_EIO, "small buffer refused");
    gw_rand_free(rand);

    static const char *const bad[] = {
        "",
        "mxgw_",
        "mxgw_0123456789abcdef_",
        "mxgw_0123456789abcde_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0",
        "mxgw_0123456789ABCDEF_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "mxgw-0123456789abcdef_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "mxgw_0123456789abcdef-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "mxgw_0123456789abcdef_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg",
        "mxgw_0123456789abcdef_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0",
        " mxgw_0123456789abcdef_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(gw_key_parse(bad[i], id) == GW_EINVAL, "accepted bad key %zu", i);
    CHECK(gw_key_parse("mxgw_0123456789abcdef_0123456789abcdef0123456789abcdef0123456789abcdef"
                       "0123456789abcdef",
                       id) == 0 &&
              strcmp(id, "0123456789abcdef") == 0,
          "good key");
}

static void test_hash(void)
{
    /* SHA-256("abc") (FIPS 180-2 B.1). */
    char hex[GW_KEY_HASH_HEX + 1];
    gw_key_hash("abc", hex);
    CHECK(strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0,
          "sha256(abc) = %s", hex);
    const char *key =
        "mxgw_0123456789abcdef_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    gw_key_hash(key, hex);
    CHECK(gw_key_check(key, hex, strlen(hex)), "own hash matches");
    char flipped[GW_KEY_LEN + 1];
    strcpy(flipped, key);
    flipped[GW_KEY_LEN - 1] = 'e';
    CHECK(!gw_key_check(flipped, hex, strlen(hex)), "changed secret refused");
    CHECK(!gw_key_check(key, hex, 63), "short stored hash refused");
    CHECK(!gw_key_check(key, "", 0), "no stored hash refused");
    char upper[GW_KEY_HASH_HEX + 1];
    for (int i = 0; i <= GW_KEY_HASH_HEX; i++)
        upper[i] = (char)(hex[i] >= 'a' && hex[i] <= 'f' ? hex[i] - 32 : hex[i]);
    CHECK(!gw_key_check(key, upper, strlen(upper)), "hash compared exactly");
}

static void test_ops(void)
{
    static const struct {
        const char *list;
        int rc;
        unsigned ops;
    } cases[] = {
        {"messages", 0, GW_OP_MESSAGES},
        {"messages stanzas", 0, GW_OP_MESSAGES | GW_OP_STANZAS},
        {"sessions.read,sessions.kick", 0, GW_OP_SESSIONS_READ | GW_OP_SESSIONS_KICK},
        {"*", 0, GW_OP_ALL},
        {"push.read push.write", 0, GW_OP_PUSH_READ | GW_OP_PUSH_WRITE},
        {"", GW_EINVAL, 0},
        {"message", GW_EINVAL, 0},
        {"messages nope", GW_EINVAL, 0},
        {"sessions", GW_EINVAL, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        unsigned ops = 99;
        int rc = gw_key_ops_parse(cases[i].list, &ops);
        CHECK(rc == cases[i].rc && ops == cases[i].ops, "ops '%s': rc %d ops %u", cases[i].list, rc,
              ops);
    }
    char text[128];
    gw_key_ops_format(GW_OP_MESSAGES | GW_OP_SESSIONS_KICK, text, sizeof text);
    CHECK(strcmp(text, "messages sessions.kick") == 0, "format '%s'", text);
    unsigned back;
    gw_key_ops_format(GW_OP_ALL, text, sizeof text);
    CHECK(gw_key_ops_parse(text, &back) == 0 && back == GW_OP_ALL, "round trip '%s'", text);
}

static void test_scope(void)
{
    static const struct {
        const char *patterns;
        const char *jid;
        bool allowed;
    } cases[] = {
        {"orders@gw.example", "orders@gw.example", true},
        {"orders@gw.example", "orders@gw.example/any", true},
        {"orders@gw.example", "ORDERS@GW.EXAMPLE", true},
        {"orders@gw.example", "orders2@gw.example", false},
        {"orders@gw.example", "order@gw.example", false},
        {"orders@gw.example", "orders@other.example", false},
        {"orders@gw.example", "gw.example", false},
        {"orders@gw.example", "orders@gw.example.evil", false},
        {"*@gw.example", "anyone@gw.example", true},
        {"*@gw.example", "gw.example", false},
        {"*@gw.example", "anyone@sub.gw.example", false},
        {"notify-*@gw.example", "notify-billing@gw.example", true},
        {"notify-*@gw.example", "notify-@gw.example", true},
        {"notify-*@gw.example", "notify@gw.example", false},
        {"notify-*@gw.example", "xnotify-a@gw.example", false},
        {"gw.example", "gw.example", true},
        {"gw.example", "gw.example/res", true},
        {"gw.example", "a@gw.example", false},
        {"a@gw.example b@gw.example", "b@gw.example", true},
        {"a@gw.example,b@gw.example", "c@gw.example", false},
        {"a@gw.example", "not a jid", false},
        {"a@gw.example", "", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct gw_key_scope s = {0};
        char err[160];
        int rc = gw_key_scope_parse(&s, cases[i].patterns, "gw.example", err, sizeof err);
        CHECK(rc == 0, "parse '%s': %s", cases[i].patterns, err);
        bool got = gw_key_scope_allows(&s, cases[i].jid);
        CHECK(got == cases[i].allowed, "'%s' allows '%s': expected %d got %d", cases[i].patterns,
              cases[i].jid, cases[i].allowed, got);
        gw_key_scope_free(&s);
    }
    static const char *const bad[] = {
        "",
        "orders@other.example",
        "*",
        "or*ders@gw.example",
        "@gw.example",
        "a/b@gw.example",
        "a@gw.example/res",
        "**@gw.example",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct gw_key_scope s = {0};
        char err[160];
        CHECK(gw_key_scope_parse(&s, bad[i], "gw.example", err, sizeof err) == GW_EINVAL,
              "accepted pattern '%s'", bad[i]);
        gw_key_scope_free(&s);
    }
    struct gw_key_scope s = {0};
    char err[160];
    gw_key_scope_parse(&s, "*@gw.example notify-*@gw.example Orders@GW.example", "gw.example", err,
                       sizeof err);
    CHECK(s.njids == 3 && gw_key_scope_default(&s) &&
              strcmp(gw_key_scope_default(&s), "orders@gw.example") == 0,
          "default sender %s", gw_key_scope_default(&s) ? gw_key_scope_default(&s) : "(none)");
    gw_key_scope_free(&s);
    gw_key_scope_parse(&s, "*@gw.example", "gw.example", err, sizeof err);
    CHECK(gw_key_scope_default(&s) == NULL, "a wildcard names no default sender");
    gw_key_scope_free(&s);
}

int main(void)
{
    test_format();
    test_hash();
    test_ops();
    test_scope();
    return CHECK_DONE();
}
