/* Tests for xmpp/jid.c: RFC 7622 shapes, the localpart's forbidden characters, lengths, UTF-8
 * validity, domain labels and IP literals, and formatting. */
#include "tests/unit/check.h"
#include "gateway/err.h"
#include "xmpp/jid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct jid_case {
    const char *in;
    const char *full; /* NULL: must be refused */
    const char *bare;
};

static const struct jid_case cases[] = {
    {"alice@example.com", "alice@example.com", "alice@example.com"},
    {"alice@Example.COM/Phone", "alice@example.com/Phone", "alice@example.com"},
    {"example.com", "example.com", "example.com"},
    {"example.com/res", "example.com/res", "example.com"},
    {"alice@example.com.", "alice@example.com", "alice@example.com"},
    {"alice@[::1]", "alice@[::1]", "alice@[::1]"},
    {"alice@127.0.0.1", "alice@127.0.0.1", "alice@127.0.0.1"},
    {"jürgen@müller.example/δ", "jürgen@müller.example/δ", "jürgen@müller.example"},
    {"a@b/with/slash@and space", "a@b/with/slash@and space", "a@b"},
    {"", NULL, NULL},
    {"@example.com", NULL, NULL},
    {"alice@", NULL, NULL},
    {"alice@example.com/", NULL, NULL},
    {"al ice@example.com", NULL, NULL},
    {"al\"ice@example.com", NULL, NULL},
    {"al&ice@example.com", NULL, NULL},
    {"al'ice@example.com", NULL, NULL},
    {"al:ice@example.com", NULL, NULL},
    {"al<ice@example.com", NULL, NULL},
    {"al>ice@example.com", NULL, NULL},
    {"a@b@example.com", NULL, NULL},
    {"alice@exa mple.com", NULL, NULL},
    {"alice@-example.com", NULL, NULL},
    {"alice@example-.com", NULL, NULL},
    {"alice@example..com", NULL, NULL},
    {"alice@[::1", NULL, NULL},
    {"alice@[not-an-ip]", NULL, NULL},
    {"ali\x01"
     "ce@example.com",
     NULL, NULL},
    {"alice@example.com/\x7f", NULL, NULL},
    {"\xc0\xaf"
     "alice@example.com",
     NULL, NULL},
    {"alice\xed\xa0\x80@example.com", NULL, NULL},
    {"alice@example.com/\xe2\x80\x8a", NULL, NULL}, /* U+200A HAIR SPACE */
};

int main(void)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct gw_jid j;
        int rc = gw_jid_parse(cases[i].in, &j);
        if (!cases[i].full) {
            CHECK(rc == GW_EINVAL, "'%s': expected refusal, got %d", cases[i].in, rc);
            CHECK(!gw_jid_valid(cases[i].in), "'%s': expected invalid", cases[i].in);
            continue;
        }
        CHECK(rc == 0, "'%s': expected to parse, got %d", cases[i].in, rc);
        if (rc)
            continue;
        char *full = gw_jid_full(&j), *bare = gw_jid_bare(&j);
        CHECK(strcmp(full, cases[i].full) == 0, "'%s': expected full %s got %s", cases[i].in,
              cases[i].full, full);
        CHECK(strcmp(bare, cases[i].bare) == 0, "'%s': expected bare %s got %s", cases[i].in,
              cases[i].bare, bare);
        free(full);
        free(bare);
        gw_jid_free(&j);
    }

    /* Part lengths: 1023 bytes is the most each part may have. */
    char big[3200];
    memset(big, 'a', 1023);
    strcpy(big + 1023, "@example.com");
    CHECK(gw_jid_valid(big), "expected a 1023-byte localpart to pass");
    memset(big, 'a', 1024);
    strcpy(big + 1024, "@example.com");
    CHECK(!gw_jid_valid(big), "expected a 1024-byte localpart to be refused");
    strcpy(big, "a@example.com/");
    memset(big + 14, 'r', 1024);
    big[14 + 1024] = '\0';
    CHECK(!gw_jid_valid(big), "expected a 1024-byte resource to be refused");
    big[14 + 1023] = '\0';
    CHECK(gw_jid_valid(big), "expected a 1023-byte resource to pass");

    return CHECK_DONE();
}
