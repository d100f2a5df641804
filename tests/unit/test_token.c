/* Tests for gateway/token.c: HKDF-SHA256 against RFC 5869, AES-256-GCM against the GCM
 * specification's test case 16, then tokens: format, parsing, verifiers, and sealing that only
 * the right secret and session id open. */
#include "tests/unit/check.h"
#include "gateway/err.h"
#include "gateway/rand.h"
#include "gateway/token.h"

#include <stdlib.h>
#include <string.h>

static size_t unhex(const char *hex, unsigned char *out)
{
    size_t n = strlen(hex) / 2;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        sscanf(hex + 2 * i, "%2x", &v);
        out[i] = (unsigned char)v;
    }
    return n;
}

static void tohex(const unsigned char *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", p[i]);
}

/* RFC 5869 appendix A, test cases 1 and 3 (SHA-256). */
struct hkdf_vector {
    const char *ikm, *salt, *info, *okm;
};

static const struct hkdf_vector hkdf_vectors[] = {
    {"0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "000102030405060708090a0b0c",
     "f0f1f2f3f4f5f6f7f8f9",
     "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"},
    {"0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "", "",
     "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"},
};

int main(void)
{
    for (size_t i = 0; i < sizeof hkdf_vectors / sizeof hkdf_vectors[0]; i++) {
        const struct hkdf_vector *v = &hkdf_vectors[i];
        unsigned char ikm[64], salt[64], info[64], okm[64];
        char got[129];
        size_t il = unhex(v->ikm, ikm), sl = unhex(v->salt, salt), nl = unhex(v->info, info);
        size_t ol = strlen(v->okm) / 2;
        int rc = gw_hkdf_sha256(sl ? salt : NULL, sl, ikm, il, (const char *)info, nl, okm, ol);
        tohex(okm, ol, got);
        CHECK(rc == 0 && strcmp(got, v->okm) == 0, "HKDF vector %zu: expected %s, got %s", i,
              v->okm, got);
    }

    /* GCM specification (McGrew, Viega), test case 16: AES-256, 96-bit IV, AAD. */
    unsigned char key[32], iv[12], aad[20], pt[60], out[76], back[60];
    unhex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308", key);
    unhex("cafebabefacedbaddecaf888", iv);
    unhex("feedfacedeadbeeffeedfacedeadbeefabaddad2", aad);
    unhex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e24"
          "49a6b525b16aedf5aa0de657ba637b39",
          pt);
    const char *ct_tag =
        "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e4859"
        "0dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f66276fc6ece0f4e1768cddf8853bb2d"
        "551b";
    char got[160];
    CHECK(gw_aes256gcm_seal(key, iv, aad, sizeof aad, pt, sizeof pt, out) == 0, "GCM seal");
    tohex(out, sizeof out, got);
    CHECK(strcmp(got, ct_tag) == 0, "GCM test case 16: expected %s, got %s", ct_tag, got);
    CHECK(gw_aes256gcm_open(key, iv, aad, sizeof aad, out, sizeof pt, back) == 0 &&
              memcmp(back, pt, sizeof pt) == 0,
          "GCM open: expected the plaintext back");
    out[3] ^= 1;
    CHECK(gw_aes256gcm_open(key, iv, aad, sizeof aad, out, sizeof pt, back) == GW_EAUTH,
          "GCM open of a modified ciphertext: expected GW_EAUTH");

    /* Tokens. */
    struct gw_rand *r;
    CHECK(gw_rand_new(&r) == 0, "rand");
    const char *sid = "0123456789abcdef0123456789abcdef";
    unsigned char secret[GW_TOKEN_SECRET_BYTES], secret2[GW_TOKEN_SECRET_BYTES];
    char tok[GW_TOKEN_MAX], tok2[GW_TOKEN_MAX], psid[GW_TOKEN_SID_MAX + 1];
    CHECK(gw_token_new(r, sid, secret, tok, sizeof tok) == 0, "token_new");
    CHECK(strlen(tok) == 32 + 1 + 64 && strncmp(tok, sid, 32) == 0 && tok[32] == '.',
          "expected <sid>.<64 hex>, got %s", tok);
    CHECK(gw_token_new(r, sid, secret2, tok2, sizeof tok2) == 0 && strcmp(tok, tok2) != 0,
          "expected two tokens to differ");
    CHECK(gw_token_new(r, "NOT-HEX", secret2, tok2, sizeof tok2) == GW_EINVAL,
          "expected a bad sid refused");
    CHECK(gw_token_new(r, sid, secret2, tok2, 40) == GW_EINVAL, "expected a short buffer refused");
    CHECK(gw_token_parse(tok, psid, sizeof psid, secret2) == 0 && strcmp(psid, sid) == 0 &&
              memcmp(secret, secret2, sizeof secret) == 0,
          "expected the token to parse back");
    const char *bad[] = {
        "",
        ".",
        "0123.",
        "0123",
        "0123.zz",
        ".0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "ABCD.0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "abcd.0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde",
        "abcd.0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0",
        "abcd.0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg",
        "ab.cd.0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(gw_token_parse(bad[i], psid, sizeof psid, secret2) == GW_EINVAL,
              "bad token %zu (%s): expected GW_EINVAL", i, bad[i]);

    char ver[GW_TOKEN_VERIFIER_HEX], ver2[GW_TOKEN_VERIFIER_HEX];
    gw_token_verifier(secret, sid, ver);
    gw_token_verifier(secret, "abcd", ver2);
    CHECK(strlen(ver) == 64 && strcmp(ver, ver2) != 0, "expected the verifier salted by the sid");
    CHECK(gw_token_check(secret, sid, ver) == 0, "expected the verifier to match its secret");
    memcpy(secret2, secret, sizeof secret);
    secret2[31] ^= 0x80;
    CHECK(gw_token_check(secret2, sid, ver) == GW_EAUTH, "expected another secret refused");
    CHECK(gw_token_check(secret, sid, "short") == GW_EAUTH, "expected a bad verifier refused");
    /* The verifier is not the sealing key: both derive from the secret with distinct infos. */
    unsigned char vk[32], sk[32];
    gw_hkdf_sha256((const unsigned char *)sid, 32, secret, 32, "mxgw json token verifier v1", 27,
                   vk, 32);
    gw_hkdf_sha256((const unsigned char *)sid, 32, secret, 32, "mxgw json reauth key v1", 23, sk,
                   32);
    char vkh[65];
    tohex(vk, 32, vkh);
    CHECK(strcmp(vkh, ver) == 0 && memcmp(vk, sk, 32) != 0,
          "expected verifier = HKDF(info verifier) and a distinct sealing key");

    char *sealed = NULL;
    const char msg[] = "1\nSCRAM-SHA-256\n4096\nc2FsdA==\n";
    CHECK(gw_token_seal(r, secret, sid, msg, sizeof msg - 1, &sealed) == 0, "seal");
    CHECK(!strstr(sealed, "SCRAM"), "expected no plaintext in the sealed text");
    unsigned char *opened = NULL;
    size_t olen = 0;
    CHECK(gw_token_open(secret, sid, sealed, &opened, &olen) == 0 && olen == sizeof msg - 1 &&
              memcmp(opened, msg, olen) == 0,
          "expected the sealed secret back");
    free(opened);
    opened = NULL;
    CHECK(gw_token_open(secret2, sid, sealed, &opened, &olen) == GW_EAUTH && !opened,
          "expected another secret refused");
    CHECK(gw_token_open(secret, "abcd", sealed, &opened, &olen) == GW_EAUTH,
          "expected another session id refused (associated data)");
    CHECK(gw_token_open(secret, sid, "bm90IHNlYWxlZA==", &opened, &olen) == GW_EAUTH,
          "expected a short blob refused");
    CHECK(gw_token_open(secret, sid, "!!!", &opened, &olen) == GW_EAUTH,
          "expected bad base64 refused");
    sealed[20] = sealed[20] == 'A' ? 'B' : 'A';
    CHECK(gw_token_open(secret, sid, sealed, &opened, &olen) == GW_EAUTH,
          "expected a modified blob refused");
    char *sealed2 = NULL;
    gw_token_seal(r, secret, sid, msg, sizeof msg - 1, &sealed2);
    CHECK(strcmp(sealed, sealed2) != 0, "expected a fresh nonce per seal");
    free(sealed);
    free(sealed2);
    gw_rand_free(r);
    return CHECK_DONE();
}
