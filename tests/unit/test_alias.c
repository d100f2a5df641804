/* Tests for xmpp/alias.c: numbers in order from 0, stable for a JID, never reused, and the
 * count, byte and length bounds. */
#include "tests/unit/check.h"

#include "gateway/err.h"
#include "xmpp/alias.h"

#include <stdio.h>
#include <string.h>

int main(void)
{
    struct gw_alias *a = gw_alias_new();
    bool created;
    CHECK(gw_alias_find(a, "alice@example.com/phone") == -1, "expected no alias at first");
    CHECK(gw_alias_jid(a, 0) == NULL && gw_alias_jid(a, -1) == NULL, "expected no JID for 0");
    int n = gw_alias_assign(a, "alice@example.com/phone", &created);
    CHECK(n == 0 && created, "expected alias 0, got %d", n);
    n = gw_alias_assign(a, "bob@example.com", &created);
    CHECK(n == 1 && created, "expected alias 1, got %d", n);
    n = gw_alias_assign(a, "alice@example.com/phone", &created);
    CHECK(n == 0 && !created, "expected the same alias again, got %d", n);
    CHECK(gw_alias_find(a, "bob@example.com") == 1, "expected find to agree");
    CHECK(gw_alias_find(a, "Bob@example.com") == -1, "expected an exact match only");
    CHECK(strcmp(gw_alias_jid(a, 1), "bob@example.com") == 0, "expected the JID back");
    CHECK(gw_alias_jid(a, 2) == NULL && gw_alias_count(a) == 2, "expected two aliases");

    /* Too long a JID is never aliased; the table is unchanged. */
    char longjid[GW_ALIAS_MAX_JID + 16];
    memset(longjid, 'x', sizeof longjid - 1);
    longjid[sizeof longjid - 1] = '\0';
    memcpy(longjid + 200, "@example.com/", 13);
    CHECK(gw_alias_assign(a, longjid, &created) == GW_ELIMIT && !created,
          "expected a long JID refused");
    CHECK(gw_alias_count(a) == 2, "expected nothing assigned");

    /* The count bound: numbers up to GW_ALIAS_MAX-1, then GW_ELIMIT; old ones still work. */
    char jid[64];
    for (int i = 2; i < GW_ALIAS_MAX; i++) {
        snprintf(jid, sizeof jid, "u%d@e.x", i);
        n = gw_alias_assign(a, jid, &created);
        if (n != i) {
            CHECK(0, "expected alias %d, got %d", i, n);
            break;
        }
    }
    CHECK(gw_alias_assign(a, "one-more@e.x", &created) == GW_ELIMIT, "expected the table full");
    CHECK(gw_alias_assign(a, "bob@example.com", &created) == 1 && !created,
          "expected an existing alias from a full table");
    snprintf(jid, sizeof jid, "u%d@e.x", GW_ALIAS_MAX - 1);
    CHECK(gw_alias_find(a, jid) == GW_ALIAS_MAX - 1, "expected the last alias");
    gw_alias_free(a);

    /* The byte bound: JIDs of GW_ALIAS_MAX_JID bytes fill GW_ALIAS_MAX_BYTES first. */
    a = gw_alias_new();
    char big[GW_ALIAS_MAX_JID + 1];
    int fitted = 0;
    for (int i = 0; i < GW_ALIAS_MAX; i++) {
        memset(big, 'a', GW_ALIAS_MAX_JID);
        big[GW_ALIAS_MAX_JID] = '\0';
        snprintf(big, 16, "%08d", i);
        big[8] = '@';
        if (gw_alias_assign(a, big, &created) < 0)
            break;
        fitted++;
    }
    CHECK(fitted == GW_ALIAS_MAX_BYTES / GW_ALIAS_MAX_JID, "expected %d long JIDs, got %d",
          GW_ALIAS_MAX_BYTES / GW_ALIAS_MAX_JID, fitted);
    CHECK(gw_alias_assign(a, "short@e.x", &created) >= 0 || fitted < GW_ALIAS_MAX,
          "a short JID may still fit");
    gw_alias_free(a);
    gw_alias_free(NULL);
    return CHECK_DONE();
}
