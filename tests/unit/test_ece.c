/* Tests for push/ece.c and push/b64.c: the RFC 8188 §3.1 and §3.2 examples (aes128gcm, one and
 * two records, keyid, padding), the RFC 8291 §5 Web Push example byte for byte, key checks,
 * size limits, and a fresh-key message decrypted here with the user agent's private key. */
#include "tests/unit/check.h"
#include "gateway/err.h"
#include "gateway/rand.h"
#include "push/b64.h"
#include "push/ece.h"

#include <mbedtls/ecdh.h>
#include <mbedtls/gcm.h>
#include <mbedtls/hkdf.h>
#include <stdlib.h>
#include <string.h>

static size_t unb64(const char *s, uint8_t *out, size_t cap)
{
    size_t n = 0;
    int rc = gw_b64url_decode(s, strlen(s), out, cap, &n);
    CHECK(rc == 0, "base64url decode of %.20s…: got %d", s, rc);
    return n;
}

static const char *b64(const uint8_t *p, size_t n)
{
    static char out[8192];
    gw_b64url_encode(p, n, out, sizeof out);
    return out;
}

struct rfc8188_case {
    const char *name, *ikm, *salt, *keyid, *plain;
    uint32_t rs;
    size_t pad;
    const char *body;
};

static const struct rfc8188_case rfc8188[] = {
    {"RFC 8188 §3.1", "yqdlZ-tYemfogSmv7Ws5PQ", "I1BsxtFttlv3u_Oo94xnmw", "", "I am the walrus",
     4096, 0, "I1BsxtFttlv3u_Oo94xnmwAAEAAA-NAVub2qFgBEuQKRapoZu-IxkIva3MEB1PD-ly8Thjg"},
    {"RFC 8188 §3.2", "BO3ZVPxUlnLORbVGMpbT1Q", "uNCkWiNYzKTnBN9ji3-qWA", "a1", "I am the walrus",
     25, 1,
     "uNCkWiNYzKTnBN9ji3-qWAAAABkCYTHOG8chz_gnvgOqdGYovxyjuqRyJFjEDyoF1Fvkj6hQPdPHI51OEUKEpgz3SsLW"
     "IqS_uA"},
};

static void test_rfc8188(void)
{
    for (size_t i = 0; i < sizeof rfc8188 / sizeof rfc8188[0]; i++) {
        const struct rfc8188_case *c = &rfc8188[i];
        uint8_t ikm[32], salt[16];
        size_t ikm_len = unb64(c->ikm, ikm, sizeof ikm);
        unb64(c->salt, salt, sizeof salt);
        struct gw_buf out;
        gw_buf_init(&out, 0);
        int rc = gw_ece_encrypt(ikm, ikm_len, salt, (const uint8_t *)c->keyid, strlen(c->keyid),
                                c->rs, (const uint8_t *)c->plain, strlen(c->plain), c->pad, &out);
        CHECK(rc == 0, "%s: encrypt returned %d", c->name, rc);
        const char *got = b64((const uint8_t *)out.data, out.len);
        CHECK(strcmp(got, c->body) == 0, "%s:\n  expected %s\n  got      %s", c->name, c->body,
              got);
        gw_buf_free(&out);
    }
    /* §3.1's intermediate values. */
    uint8_t ikm[16], salt[16], cek[16], nonce[12];
    unb64("yqdlZ-tYemfogSmv7Ws5PQ", ikm, sizeof ikm);
    unb64("I1BsxtFttlv3u_Oo94xnmw", salt, sizeof salt);
    gw_ece_derive(ikm, sizeof ikm, salt, cek, nonce);
    CHECK(strcmp(b64(cek, 16), "_wniytB-ofscZDh4tbSjHw") == 0, "§3.1 CEK: got %s", b64(cek, 16));
    CHECK(strcmp(b64(nonce, 12), "Bcs8gkIRKLI8GeI8") == 0, "§3.1 NONCE: got %s", b64(nonce, 12));
    /* A record size that cannot hold a delimiter and a tag is refused. */
    struct gw_buf out;
    gw_buf_init(&out, 0);
    CHECK(gw_ece_encrypt(ikm, 16, salt, NULL, 0, 17, (const uint8_t *)"x", 1, 0, &out) == GW_EINVAL,
          "rs 17: expected GW_EINVAL");
    gw_buf_free(&out);
}

static const char UA_PUBLIC[] =
    "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
static const char UA_PRIVATE[] = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94";
static const char AUTH[] = "BTBZMqHH6r4Tts7J_aSIgg";

static void test_rfc8291(struct gw_rand *rand)
{
    uint8_t ua[65], auth[16], as[32], salt[16];
    unb64(UA_PUBLIC, ua, sizeof ua);
    unb64(AUTH, auth, sizeof auth);
    unb64("yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw", as, sizeof as);
    unb64("DGv6ra1nlYgDCS1FRnbzlw", salt, sizeof salt);
    const char *plain = "When I grow up, I want to be a watermelon";
    struct gw_buf out;
    gw_buf_init(&out, 0);
    int rc = gw_webpush_encrypt_with(rand, ua, auth, as, salt, (const uint8_t *)plain,
                                     strlen(plain), 0, &out);
    CHECK(rc == 0, "RFC 8291: encrypt returned %d", rc);
    const char *want = "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgD"
                       "ll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2"
                       "Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN";
    const char *got = b64((const uint8_t *)out.data, out.len);
    CHECK(strcmp(got, want) == 0, "RFC 8291 §5:\n  expected %s\n  got      %s", want, got);
    gw_buf_free(&out);
}

struct key_case {
    const char *name;
    const char *b64;
    int want;
};

static void test_keys(void)
{
    uint8_t k[80];
    const struct key_case cases[] = {
        {"the RFC's key", UA_PUBLIC, 0},
        {"compressed form",
         "AyVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4",
         GW_EINVAL},
        {"off the curve",
         "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIBiw4",
         GW_EINVAL},
        {"32 bytes", "BTBZMqHH6r4Tts7J_aSIggBTBZMqHH6r4Tts7J_aSIgg", GW_EINVAL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = 0;
        gw_b64url_decode(cases[i].b64, strlen(cases[i].b64), k, sizeof k, &n);
        int rc = gw_webpush_check_key(k, n);
        CHECK(rc == cases[i].want, "key %s: expected %d, got %d", cases[i].name, cases[i].want, rc);
    }
    /* base64url: the standard alphabet, whitespace and stray '=' are refused; padding is not. */
    size_t n;
    const char *bad[] = {"ab+c", "ab/c", "ab c", "a=bc", "abcde"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(gw_b64url_decode(bad[i], strlen(bad[i]), k, sizeof k, &n) == GW_EINVAL,
              "base64url '%s': expected refused", bad[i]);
    CHECK(gw_b64url_decode("YQ==", 4, k, sizeof k, &n) == 0 && n == 1 && k[0] == 'a',
          "base64url with padding: expected 'a'");
    CHECK(gw_b64url_decode("YWJj", 4, k, 2, &n) == GW_ELIMIT, "base64url: expected GW_ELIMIT");
}

/* The user agent's side, written here with mbedTLS directly: decrypts a one-record body. */
static int ua_decrypt(const uint8_t *body, size_t len, const uint8_t *ua_priv,
                      const uint8_t *ua_pub, const uint8_t *auth, uint8_t *plain, size_t *plain_len)
{
    if (len < 86 + 16 || body[20] != 65)
        return -1;
    const uint8_t *salt = body, *as_pub = body + 21, *ct = body + 86;
    size_t ctlen = len - 86 - 16;
    mbedtls_ecp_group grp;
    mbedtls_ecp_point q;
    mbedtls_mpi d, z;
    mbedtls_ecp_group_init(&grp);
    mbedtls_ecp_point_init(&q);
    mbedtls_mpi_init(&d);
    mbedtls_mpi_init(&z);
    mbedtls_ecp_group_load(&grp, MBEDTLS_ECP_DP_SECP256R1);
    mbedtls_mpi_read_binary(&d, ua_priv, 32);
    mbedtls_ecp_point_read_binary(&grp, &q, as_pub, 65);
    uint8_t secret[32], ikm[32], cek[16], nonce[12], info[14 + 130];
    int rc = mbedtls_ecdh_compute_shared(&grp, &z, &q, &d, NULL, NULL);
    mbedtls_mpi_write_binary(&z, secret, 32);
    memcpy(info, "WebPush: info", 14);
    memcpy(info + 14, ua_pub, 65);
    memcpy(info + 79, as_pub, 65);
    const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
    mbedtls_hkdf(md, auth, 16, secret, 32, info, sizeof info, ikm, 32);
    mbedtls_hkdf(md, salt, 16, ikm, 32, (const uint8_t *)"Content-Encoding: aes128gcm", 28, cek,
                 16);
    mbedtls_hkdf(md, salt, 16, ikm, 32, (const uint8_t *)"Content-Encoding: nonce", 24, nonce, 12);
    mbedtls_gcm_context gcm;
    mbedtls_gcm_init(&gcm);
    mbedtls_gcm_setkey(&gcm, MBEDTLS_CIPHER_ID_AES, cek, 128);
    if (rc == 0)
        rc = mbedtls_gcm_auth_decrypt(&gcm, ctlen, nonce, 12, NULL, 0, ct + ctlen, 16, ct, plain);
    mbedtls_gcm_free(&gcm);
    mbedtls_mpi_free(&d);
    mbedtls_mpi_free(&z);
    mbedtls_ecp_point_free(&q);
    mbedtls_ecp_group_free(&grp);
    *plain_len = ctlen;
    return rc;
}

static void test_fresh(struct gw_rand *rand)
{
    uint8_t ua[65], ua_priv[32], auth[16];
    unb64(UA_PUBLIC, ua, sizeof ua);
    unb64(UA_PRIVATE, ua_priv, sizeof ua_priv);
    unb64(AUTH, auth, sizeof auth);
    const char *msg = "{\"n\":3}";
    struct gw_buf a, b;
    gw_buf_init(&a, 0);
    gw_buf_init(&b, 0);
    int rc1 = gw_webpush_encrypt(rand, ua, auth, (const uint8_t *)msg, strlen(msg), 248, &a);
    int rc2 = gw_webpush_encrypt(rand, ua, auth, (const uint8_t *)msg, strlen(msg), 248, &b);
    CHECK(rc1 == 0 && rc2 == 0, "fresh: encrypt returned %d, %d", rc1, rc2);
    CHECK(a.len == 86 + 256 + 16, "fresh: expected a padded body of %d bytes, got %zu",
          86 + 256 + 16, a.len);
    CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) != 0,
          "fresh: two messages must differ (new salt and key each time)");
    uint8_t plain[4096];
    size_t n = 0;
    int rc = ua_decrypt((const uint8_t *)a.data, a.len, ua_priv, ua, auth, plain, &n);
    CHECK(rc == 0 && n == 256 && memcmp(plain, msg, strlen(msg)) == 0 && plain[7] == 2 &&
              plain[8] == 0 && plain[255] == 0,
          "fresh: expected to decrypt to the message, delimiter 2, zero padding (rc %d, n %zu)", rc,
          n);
    gw_buf_free(&a);
    gw_buf_free(&b);

    /* Over 4096 bytes in all is refused: one byte over the largest plaintext. */
    uint8_t *big = calloc(1, 4096);
    gw_buf_init(&a, 0);
    CHECK(gw_webpush_encrypt(rand, ua, auth, big, GW_WEBPUSH_MAX_PLAIN, 0, &a) == 0 &&
              a.len == 4096,
          "largest plaintext: expected a 4096-byte body, got %zu", a.len);
    gw_buf_reset(&a);
    CHECK(gw_webpush_encrypt(rand, ua, auth, big, GW_WEBPUSH_MAX_PLAIN + 1, 0, &a) == GW_ELIMIT,
          "one byte more: expected GW_ELIMIT");
    uint8_t bad[65];
    memcpy(bad, ua, 65);
    bad[64] ^= 1;
    CHECK(gw_webpush_encrypt(rand, bad, auth, big, 10, 0, &a) == GW_EINVAL,
          "a key off the curve: expected GW_EINVAL");
    gw_buf_free(&a);
    free(big);
}

int main(void)
{
    struct gw_rand *rand;
    gw_rand_new(&rand);
    test_rfc8188();
    test_rfc8291(rand);
    test_keys();
    test_fresh(rand);
    gw_rand_free(rand);
    return CHECK_DONE();
}
