/* Tests for xmpp/sasl.c with the RFC 5802 and RFC 7677 test vectors, mechanism choice, and every
 * way a server message can be refused. */
#include "tests/unit/check.h"

#include "gateway/err.h"
#include "xmpp/sasl.h"

#include <mbedtls/base64.h>
#include <mbedtls/md.h>
#include <mbedtls/pkcs5.h>
#include <stdlib.h>
#include <string.h>

int gw_sasl_initial_with_nonce(struct gw_sasl *s, const char *nonce, char **b64);

static char *enc(const char *s)
{
    static char out[1024];
    size_t olen;
    mbedtls_base64_encode((unsigned char *)out, sizeof out, &olen, (const unsigned char *)s,
                          strlen(s));
    out[olen] = '\0';
    return out;
}

static char *dec(const char *s)
{
    static char out[1024];
    size_t olen;
    mbedtls_base64_decode((unsigned char *)out, sizeof out, &olen, (const unsigned char *)s,
                          strlen(s));
    out[olen] = '\0';
    return out;
}

static int fixed_rng(void *arg, unsigned char *buf, size_t n)
{
    (void)arg;
    memset(buf, 7, n);
    return 0;
}

struct vector {
    const char *mech, *nonce, *client_first, *server_first, *client_final, *server_final;
};

static const struct vector vectors[] = {
    {"SCRAM-SHA-1", "fyko+d2lbbFgONRv9qkxdawL", "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
     "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
     "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
     "v=rmF9pqV8S7suAoZWja4dJRkFsKQ="},
    {"SCRAM-SHA-256", "rOprNGfwEbeRWgbNEkqO", "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
     "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
     "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
     "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
     "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="},
};

static struct gw_sasl *start(const char *mech, const char *nonce)
{
    const char *offered[] = {mech};
    struct gw_sasl *s = NULL;
    gw_sasl_new(offered, 1, false, "user", "pencil", fixed_rng, NULL, &s);
    char *first = NULL;
    gw_sasl_initial_with_nonce(s, nonce, &first);
    free(first);
    return s;
}

/* gw_sasl_hi against RFC 6070's PBKDF2-HMAC-SHA1 vector and against mbedTLS's own PBKDF2 for
 * keys of every size class (empty, short, exactly one block, longer than a block: hashed first),
 * empty and long salts, one and many iterations, both hashes. */
static void hi_matches_pbkdf2(void)
{
    unsigned char out[32], want[32];
    static const unsigned char rfc6070[20] = {0x4b, 0x00, 0x79, 0x01, 0xb7, 0x65, 0x48,
                                              0x9a, 0xbe, 0xad, 0x49, 0xd9, 0x26, 0xf7,
                                              0x21, 0xd0, 0x65, 0xa4, 0x29, 0xc1};
    CHECK(gw_sasl_hi(false, (const unsigned char *)"password", 8, (const unsigned char *)"salt", 4,
                     4096, out) == 0 &&
              memcmp(out, rfc6070, 20) == 0,
          "expected RFC 6070's vector for 4096 iterations");
    unsigned char key[200], salt[100];
    for (size_t k = 0; k < sizeof key; k++)
        key[k] = (unsigned char)(k * 7 + 1);
    for (size_t k = 0; k < sizeof salt; k++)
        salt[k] = (unsigned char)(k * 13 + 5);
    static const size_t plens[] = {0, 1, 6, 63, 64, 65, 128, 200};
    static const size_t slens[] = {0, 16, 100};
    static const unsigned iters[] = {1, 2, 4096};
    for (int sha256 = 0; sha256 <= 1; sha256++)
        for (size_t a = 0; a < sizeof plens / sizeof plens[0]; a++)
            for (size_t b = 0; b < sizeof slens / sizeof slens[0]; b++)
                for (size_t c = 0; c < sizeof iters / sizeof iters[0]; c++) {
                    const mbedtls_md_info_t *md =
                        mbedtls_md_info_from_type(sha256 ? MBEDTLS_MD_SHA256 : MBEDTLS_MD_SHA1);
                    unsigned hl = mbedtls_md_get_size(md);
                    mbedtls_md_context_t ctx;
                    mbedtls_md_init(&ctx);
                    int e1 = mbedtls_md_setup(&ctx, md, 1);
                    if (!e1)
                        e1 = mbedtls_pkcs5_pbkdf2_hmac(&ctx, key, plens[a], salt, slens[b],
                                                       iters[c], hl, want);
                    mbedtls_md_free(&ctx);
                    int e2 = gw_sasl_hi(sha256, key, plens[a], salt, slens[b], iters[c], out);
                    CHECK(e1 == 0 && e2 == 0 && memcmp(out, want, hl) == 0,
                          "SHA-%s key %zu salt %zu iterations %u: expected mbedTLS's PBKDF2",
                          sha256 ? "256" : "1", plens[a], slens[b], iters[c]);
                }
}

int main(void)
{
    hi_matches_pbkdf2();
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        const struct vector *v = &vectors[i];
        const char *offered[] = {"PLAIN", v->mech};
        struct gw_sasl *s = NULL;
        int rc = gw_sasl_new(offered, 2, true, "user", "pencil", fixed_rng, NULL, &s);
        CHECK(rc == 0 && strcmp(gw_sasl_mechanism(s), v->mech) == 0, "%s: expected chosen, got %s",
              v->mech, s ? gw_sasl_mechanism(s) : "none");
        char *first = NULL, *final = NULL;
        gw_sasl_initial_with_nonce(s, v->nonce, &first);
        CHECK(strcmp(dec(first), v->client_first) == 0, "%s: expected %s got %s", v->mech,
              v->client_first, dec(first));
        rc = gw_sasl_step(s, enc(v->server_first), &final);
        CHECK(rc == 0 && strcmp(dec(final), v->client_final) == 0, "%s: expected %s got %s",
              v->mech, v->client_final, rc == 0 ? dec(final) : "(error)");
        CHECK(gw_sasl_success(s, enc(v->server_final)) == 0,
              "%s: expected the server signature "
              "to verify",
              v->mech);
        free(first);
        free(final);

        /* The exported keys log in again without the password: same proof, same signature. */
        struct gw_sasl_secret sec, back;
        CHECK(gw_sasl_export(s, &sec) == 0 && sec.iterations == 4096 && sec.salt_len > 0,
              "%s: expected a secret to export", v->mech);
        gw_sasl_free(s);
        char *text = gw_sasl_secret_encode(&sec);
        CHECK(!strstr(text, "pencil"), "%s: expected no password in the secret", v->mech);
        CHECK(gw_sasl_secret_decode(text, strlen(text), &back) == 0 &&
                  memcmp(&back, &sec, sizeof sec) == 0,
              "%s: expected the secret to decode to itself", v->mech);
        free(text);
        s = NULL;
        CHECK(gw_sasl_new_from_secret(offered, 2, false, "user", &sec, fixed_rng, NULL, &s) == 0,
              "%s: expected an exchange from the secret", v->mech);
        gw_sasl_initial_with_nonce(s, v->nonce, &first);
        rc = gw_sasl_step(s, enc(v->server_first), &final);
        CHECK(rc == 0 && strcmp(dec(final), v->client_final) == 0,
              "%s from keys: expected %s got %s", v->mech, v->client_final,
              rc == 0 ? dec(final) : "(error)");
        CHECK(gw_sasl_success(s, enc(v->server_final)) == 0,
              "%s from keys: expected the server signature to verify", v->mech);
        free(first);
        free(final);
        gw_sasl_free(s);

        /* A server that now offers another salt or count has a new password: refused. */
        char other[256];
        const char *comma = strstr(v->server_first, ",s=");
        snprintf(other, sizeof other, "%.*s,s=QSXCR+Q6sek8bf93%s", (int)(comma - v->server_first),
                 v->server_first, strstr(v->server_first, ",i="));
        const char *i4097 = strstr(v->server_first, ",i=");
        char other_i[256];
        snprintf(other_i, sizeof other_i, "%.*s,i=4097", (int)(i4097 - v->server_first),
                 v->server_first);
        const char *changed[] = {other, other_i};
        for (size_t k = 0; k < 2; k++) {
            gw_sasl_new_from_secret(offered, 2, false, "user", &sec, fixed_rng, NULL, &s);
            gw_sasl_initial_with_nonce(s, v->nonce, &first);
            final = NULL;
            rc = gw_sasl_step(s, enc(changed[k]), &final);
            CHECK(rc == GW_EAUTH && !final, "%s from keys, %s: expected GW_EAUTH, got %d", v->mech,
                  changed[k], rc);
            free(first);
            gw_sasl_free(s);
        }
        /* With the password kept (a server that salts anew at every login), the secret carries
         * it, and a changed salt is answered from it exactly as a fresh login would. */
        struct gw_sasl_secret kept;
        s = NULL;
        gw_sasl_new(offered, 2, false, "user", "pencil", fixed_rng, NULL, &s);
        gw_sasl_keep_password(s);
        gw_sasl_initial_with_nonce(s, v->nonce, &first);
        free(first);
        gw_sasl_step(s, enc(v->server_first), &final);
        free(final);
        gw_sasl_success(s, enc(v->server_final));
        CHECK(gw_sasl_export(s, &kept) == 0 && kept.password_len == 6 &&
                  memcmp(kept.password, "pencil", 6) == 0 &&
                  memcmp(kept.client_key, sec.client_key, sec.key_len) == 0,
              "%s: expected the kept password beside the keys", v->mech);
        gw_sasl_free(s);
        text = gw_sasl_secret_encode(&kept);
        CHECK(gw_sasl_secret_decode(text, strlen(text), &back) == 0 &&
                  memcmp(&back, &kept, sizeof kept) == 0,
              "%s: expected the secret with its password to decode to itself", v->mech);
        free(text);
        char *fresh_final = NULL;
        s = start(v->mech, v->nonce);
        gw_sasl_step(s, enc(other), &fresh_final);
        gw_sasl_free(s);
        gw_sasl_new_from_secret(offered, 2, false, "user", &kept, fixed_rng, NULL, &s);
        gw_sasl_initial_with_nonce(s, v->nonce, &first);
        final = NULL;
        rc = gw_sasl_step(s, enc(other), &final);
        CHECK(rc == 0 && fresh_final && final && strcmp(final, fresh_final) == 0,
              "%s from keys and password, new salt: expected the fresh answer, got %d", v->mech,
              rc);
        free(first);
        free(final);
        free(fresh_final);
        gw_sasl_free(s);
        gw_sasl_secret_wipe(&kept);

        const char *only_plain[] = {"PLAIN"};
        s = NULL;
        CHECK(gw_sasl_new_from_secret(only_plain, 1, true, "user", &sec, fixed_rng, NULL, &s) ==
                      GW_EAUTH &&
                  !s,
              "%s: expected a secret refused when its mechanism is not offered", v->mech);
        gw_sasl_secret_wipe(&sec);
        s = start(v->mech, v->nonce);
        CHECK(gw_sasl_export(s, &sec) == GW_EINVAL, "%s: expected no secret before success",
              v->mech);
        gw_sasl_free(s);

        /* A wrong server signature, or none at all, is refused. */
        s = start(v->mech, v->nonce);
        gw_sasl_step(s, enc(v->server_first), &final);
        free(final);
        CHECK(gw_sasl_success(s, enc("v=AAAAAAAAAAAAAAAAAAAAAAAAAAA=")) == GW_EAUTH,
              "%s: expected a wrong signature refused", v->mech);
        CHECK(gw_sasl_success(s, "") == GW_EAUTH, "%s: expected a missing v= refused", v->mech);
        CHECK(gw_sasl_success(s, enc("e=other-error")) == GW_EAUTH, "%s: expected e= refused",
              v->mech);
        gw_sasl_free(s);
    }

    /* Mechanism choice: SHA-256 over SHA-1 over PLAIN, PLAIN only where allowed. */
    const char *all[] = {"PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256", "X-OAUTH2"};
    const char *plain[] = {"PLAIN"};
    struct gw_sasl *s = NULL;
    CHECK(gw_sasl_new(all, 4, true, "u", "p", fixed_rng, NULL, &s) == 0 &&
              strcmp(gw_sasl_mechanism(s), "SCRAM-SHA-256") == 0,
          "expected SCRAM-SHA-256 first");
    gw_sasl_free(s);
    CHECK(gw_sasl_new(all, 2, true, "u", "p", fixed_rng, NULL, &s) == 0 &&
              strcmp(gw_sasl_mechanism(s), "SCRAM-SHA-1") == 0,
          "expected SCRAM-SHA-1 over PLAIN");
    gw_sasl_free(s);
    s = NULL;
    CHECK(gw_sasl_new(plain, 1, false, "u", "p", fixed_rng, NULL, &s) == GW_EAUTH && !s,
          "expected PLAIN refused where it is not allowed");
    CHECK(gw_sasl_new(plain, 1, true, "u", "p", fixed_rng, NULL, &s) == 0, "expected PLAIN");
    char *b64 = NULL;
    gw_sasl_initial(s, &b64);
    size_t olen;
    unsigned char raw[32];
    mbedtls_base64_decode(raw, sizeof raw, &olen, (unsigned char *)b64, strlen(b64));
    CHECK(olen == 4 && memcmp(raw, "\0u\0p", 4) == 0, "expected \\0u\\0p, got %zu bytes", olen);
    free(b64);
    CHECK(gw_sasl_success(s, "") == 0, "expected PLAIN success");
    struct gw_sasl_secret psec, pback;
    CHECK(gw_sasl_export(s, &psec) == 0 && strcmp(psec.mech, "PLAIN") == 0 &&
              psec.password_len == 1 && psec.password[0] == 'p',
          "expected the PLAIN secret to be the password");
    gw_sasl_free(s);
    char *ptext = gw_sasl_secret_encode(&psec);
    CHECK(gw_sasl_secret_decode(ptext, strlen(ptext), &pback) == 0 &&
              memcmp(&pback, &psec, sizeof psec) == 0,
          "expected the PLAIN secret to decode to itself");
    free(ptext);
    s = NULL;
    CHECK(gw_sasl_new_from_secret(plain, 1, false, "u", &psec, fixed_rng, NULL, &s) == GW_EAUTH,
          "expected a PLAIN secret refused where PLAIN is not allowed");
    CHECK(gw_sasl_new_from_secret(plain, 1, true, "u", &psec, fixed_rng, NULL, &s) == 0,
          "expected a PLAIN exchange from the secret");
    gw_sasl_initial(s, &b64);
    mbedtls_base64_decode(raw, sizeof raw, &olen, (unsigned char *)b64, strlen(b64));
    CHECK(olen == 4 && memcmp(raw, "\0u\0p", 4) == 0, "expected \\0u\\0p from the secret");
    free(b64);
    gw_sasl_free(s);
    const char *bad_secrets[] = {
        "",
        "v2\nPLAIN\ncA==\n",
        "v1\nPLAIN\n\n",
        "v1\nPLAIN\ncA==",
        "v1\nPLAIN\ncA==\nextra",
        "v1\nPLAIN\nAA==\n",
        "v1\nX-OTHER\ncA==\n",
        "v1\nSCRAM-SHA-1\n4096\nc2FsdA==\nAAAA\nAAAA\n",
        "v1\nSCRAM-SHA-1\n12\nc2FsdA==\nAAAAAAAAAAAAAAAAAAAAAAAAAAA=\nAAAAAAAAAAAAAAAAAAAAAAAAAAA="
        "\n",
        "v1\nSCRAM-SHA-1\n4096\n\nAAAAAAAAAAAAAAAAAAAAAAAAAAA=\nAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
    };
    for (size_t i = 0; i < sizeof bad_secrets / sizeof bad_secrets[0]; i++)
        CHECK(gw_sasl_secret_decode(bad_secrets[i], strlen(bad_secrets[i]), &pback) == GW_EINVAL,
              "bad secret %zu: expected GW_EINVAL", i);
    CHECK(gw_sasl_secret_decode("v1\nSCRAM-SHA-1\n4096\nc2FsdA==\nAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
                                "AAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
                                87, &pback) == 0 &&
              pback.key_len == 20 && pback.salt_len == 4,
          "expected a well-formed SCRAM-SHA-1 secret to decode");
    CHECK(gw_sasl_new(all, 4, true, "bad\001name", "p", fixed_rng, NULL, &s) == GW_EINVAL,
          "expected a control character refused");

    /* Usernames with ',' and '=' are escaped. */
    const char *sha1[] = {"SCRAM-SHA-1"};
    gw_sasl_new(sha1, 1, false, "a,b=c", "p", fixed_rng, NULL, &s);
    gw_sasl_initial_with_nonce(s, "N", &b64);
    CHECK(strcmp(dec(b64), "n,,n=a=2Cb=3Dc,r=N") == 0, "expected escaped name, got %s", dec(b64));
    free(b64);
    gw_sasl_free(s);

    /* Bad server-first messages. */
    const char *bad[] = {
        "r=someoneelse,s=QSXCR+Q6sek8bf92,i=4096",              /* nonce not ours */
        "r=fyko+d2lbbFgONRv9qkxdawL,s=QSXCR+Q6sek8bf92,i=4096", /* nonce not extended */
        "r=fyko+d2lbbFgONRv9qkxdawLx,s=QSXCR+Q6sek8bf92,i=1",   /* iterations too low */
        "r=fyko+d2lbbFgONRv9qkxdawLx,s=QSXCR+Q6sek8bf92,i=1000000000",
        "r=fyko+d2lbbFgONRv9qkxdawLx,i=4096",                   /* no salt */
        "r=fyko+d2lbbFgONRv9qkxdawLx,s=!!!,i=4096",             /* bad base64 salt */
        "r=fyko+d2lbbFgONRv9qkxdawLx,s=QSXCR+Q6sek8bf92,i=12a", /* bad count */
        "m=ext,r=fyko+d2lbbFgONRv9qkxdawLx,s=QSXCR+Q6sek8bf92,i=4096",
        "e=invalid-proof",
        "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        s = start("SCRAM-SHA-1", "fyko+d2lbbFgONRv9qkxdawL");
        char *resp = NULL;
        int rc = gw_sasl_step(s, enc(bad[i]), &resp);
        CHECK(rc == GW_EAUTH && !resp, "bad server-first %zu (%s): expected GW_EAUTH, got %d", i,
              bad[i], rc);
        free(resp);
        gw_sasl_free(s);
    }
    s = start("SCRAM-SHA-1", "fyko+d2lbbFgONRv9qkxdawL");
    char *resp = NULL;
    CHECK(gw_sasl_step(s, "not base64!", &resp) == GW_EAUTH, "expected bad base64 refused");
    gw_sasl_free(s);

    return CHECK_DONE();
}
