/* Tests for web/json_store.c: the session hash read back from a reply, queue items, and the
 * client-to-server ack pairs that turn the server's <resumed h/> into the client's count. */
#include "tests/unit/check.h"
#include "gateway/err.h"
#include "web/json_store.h"

#include <stdlib.h>
#include <string.h>

static struct gw_store_reply reply_of(const char *const *kv, size_t n, struct gw_store_str *buf)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = gw_store_cstr(kv[i]);
    return (struct gw_store_reply){(long long)n, n, buf};
}

int main(void)
{
    char key[GW_JSTORE_KEY_MAX];
    gw_jstore_key("abc", key, sizeof key);
    CHECK(strcmp(key, "mxgw:json:abc") == 0, "expected mxgw:json:abc, got %s", key);
    gw_jstore_qkey("abc", key, sizeof key);
    CHECK(strcmp(key, "mxgw:jsonq:abc") == 0, "expected mxgw:jsonq:abc, got %s", key);
    gw_jstore_channel("node-1", key, sizeof key);
    CHECK(strcmp(key, "mxgw:node:node-1") == 0, "expected mxgw:node:node-1, got %s", key);

    /* A record as written, read back. */
    const char *kv[] = {"owner",        "node-a",
                        "jid",          "a@x/r",
                        "bare",         "a@x",
                        "sm_id",        "sm1",
                        "sm_resume",    "1",
                        "token",        "v1",
                        "reauth",       "blob",
                        "up_in_h",      "7",
                        "up_out",       "5",
                        "up_out_acked", "3",
                        "cl_in",        "9",
                        "cl_in_acked",  "4",
                        "cl_out",       "12",
                        "cl_acked",     "10",
                        "cl_max",       "1012",
                        "state",        "detached",
                        "expires",      "1700000000000",
                        "up_fifo",      "4:6,5:9",
                        "unknown",      "ignored"};
    struct gw_store_str buf[64];
    struct gw_store_reply r = reply_of(kv, sizeof kv / sizeof kv[0], buf);
    struct gw_jstore_rec rec;
    CHECK(gw_jstore_parse(&r, &rec) == 0 && rec.found, "expected the record to parse");
    CHECK(strcmp(rec.owner, "node-a") == 0 && strcmp(rec.jid, "a@x/r") == 0 &&
              strcmp(rec.bare, "a@x") == 0 && strcmp(rec.sm_id, "sm1") == 0 && rec.sm_resume,
          "expected the strings back");
    CHECK(rec.up_in_h == 7 && rec.up_out == 5 && rec.up_out_acked == 3 && rec.cl_in == 9 &&
              rec.cl_in_acked == 4 && rec.cl_out == 12 && rec.cl_acked == 10 &&
              rec.cl_max == 1012 && rec.expires == 1700000000000ULL,
          "expected the counters back");
    CHECK(strcmp(rec.state, "detached") == 0 && strcmp(rec.token_prev, "") == 0 &&
              strcmp(rec.lang, "") == 0,
          "expected absent strings to read as empty");
    /* The server handled 4 of ours: the client's stanzas up to 6 are handled; then 9 with 5. */
    CHECK(gw_jstore_client_h(&rec, 3) == 4, "x=3: expected cl_in_acked 4, got %u",
          gw_jstore_client_h(&rec, 3));
    CHECK(gw_jstore_client_h(&rec, 4) == 6, "x=4: expected 6, got %u", gw_jstore_client_h(&rec, 4));
    CHECK(gw_jstore_client_h(&rec, 5) == 9, "x=5: expected cl_in 9, got %u",
          gw_jstore_client_h(&rec, 5));
    CHECK(gw_jstore_client_h(&rec, 50) == 9, "x beyond: expected cl_in 9");
    gw_jstore_rec_free(&rec);

    /* A missing hash, and a bad counter. */
    r = reply_of(kv, 0, buf);
    CHECK(gw_jstore_parse(&r, &rec) == 0 && !rec.found, "expected a missing hash");
    gw_jstore_rec_free(&rec);
    const char *bad[][2] = {{"cl_max", "x"},
                            {"cl_max", "4294967296"},
                            {"up_in_h", ""},
                            {"cl_out", "-1"},
                            {"expires", "1e9"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        r = reply_of(bad[i], 2, buf);
        CHECK(gw_jstore_parse(&r, &rec) == GW_EINVAL, "bad counter %s=%s: expected GW_EINVAL",
              bad[i][0], bad[i][1]);
        gw_jstore_rec_free(&rec);
    }

    /* Queue items. */
    size_t n;
    char *item = gw_jstore_item(4294967295u, "<message/>", 10, &n);
    CHECK(n == 21 && strcmp(item, "4294967295 <message/>") == 0, "expected the seq prefix, got %s",
          item);
    uint32_t seq;
    const char *xml;
    size_t xl;
    CHECK(gw_jstore_item_parse(item, n, &seq, &xml, &xl) == 0 && seq == 4294967295u && xl == 10 &&
              memcmp(xml, "<message/>", 10) == 0,
          "expected the item to parse back");
    free(item);
    const char *bad_items[] = {
        "", " <m/>", "12", "12 ", "x2 <m/>", "4294967296 <m/>", "123456789012 <m/>"};
    for (size_t i = 0; i < sizeof bad_items / sizeof bad_items[0]; i++)
        CHECK(gw_jstore_item_parse(bad_items[i], strlen(bad_items[i]), &seq, &xml, &xl) ==
                  GW_EINVAL,
              "bad item '%s': expected GW_EINVAL", bad_items[i]);

    /* Pairs: from a queue of unacked stanzas, and strictly read back. */
    struct gw_sm_queue q;
    gw_sm_init(&q, 8, 1000);
    uint32_t u;
    gw_sm_push(&q, "", 0, (void *)(uintptr_t)3, &u);
    gw_sm_push(&q, "", 0, (void *)(uintptr_t)5, &u);
    char *pairs = gw_jstore_pairs_encode(&q);
    CHECK(strcmp(pairs, "1:3,2:5") == 0, "expected 1:3,2:5, got %s", pairs);
    struct gw_jstore_pair p[4];
    CHECK(gw_jstore_pairs_decode(pairs, p, 4, &n) == 0 && n == 2 && p[1].u == 2 && p[1].c == 5,
          "expected the pairs back");
    free(pairs);
    gw_sm_clear(&q);
    CHECK(gw_jstore_pairs_decode("", p, 4, &n) == 0 && n == 0, "expected no pairs");
    const char *bad_pairs[] = {"1",           "1:",  ":2",      "1:2,",
                               "1:2,,3:4",    "a:1", "1:2;3:4", "1:2,3:4,5:6,7:8,9:10",
                               "4294967296:1"};
    for (size_t i = 0; i < sizeof bad_pairs / sizeof bad_pairs[0]; i++)
        CHECK(gw_jstore_pairs_decode(bad_pairs[i], p, 4, &n) == GW_EINVAL,
              "bad pairs '%s': expected GW_EINVAL", bad_pairs[i]);

    /* Counts wrap: pairs across 2^32, and a malformed list falls back to what was acked. */
    struct gw_jstore_rec w = {0};
    w.up_fifo = "4294967295:10,0:11";
    w.cl_in = 12;
    w.cl_in_acked = 9;
    CHECK(gw_jstore_client_h(&w, 4294967294u) == 9, "wrap: expected 9");
    CHECK(gw_jstore_client_h(&w, 4294967295u) == 10, "wrap: expected 10");
    CHECK(gw_jstore_client_h(&w, 0) == 12, "wrap: expected 12");
    w.up_fifo = "garbage";
    CHECK(gw_jstore_client_h(&w, 0) == 9, "malformed: expected cl_in_acked");
    return CHECK_DONE();
}
