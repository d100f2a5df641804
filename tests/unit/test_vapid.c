/* Tests for push/vapid.c: keys in SEC 1 and PKCS #8 PEM give the same public key (the value
 * openssl prints), a JWT has the RFC 8292 structure (ES256 header, aud/exp/sub claims, a 64-byte
 * r||s signature that verifies over the first two parts), tokens are reused per audience until
 * they near expiry, and bad keys and subjects are refused. The keys are throwaway test keys. */
#include "tests/unit/check.h"
#include "gateway/err.h"
#include "gateway/rand.h"
#include "push/b64.h"
#include "push/vapid.h"

#include <mbedtls/ecdsa.h>
#include <mbedtls/sha256.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char SEC1[] = "-----BEGIN EC PRIVATE KEY-----\n"
                           "MHcCAQEEIL8q1YYpvMiAgDsYN6c3O3UmCu+p0S3yUJLZphsDXsqpoAoGCCqGSM49\n"
                           "AwEHoUQDQgAEkzP7DZM27prN2TqUOjE77z33p3kQZJ8OiqIyTvt/Xaqb2oE0JQVc\n"
                           "cdS1IWLTbYF11iz3CfGi5f0AbhoUEXfXng==\n"
                           "-----END EC PRIVATE KEY-----\n";
static const char PKCS8[] = "-----BEGIN PRIVATE KEY-----\n"
                            "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgvyrVhim8yICAOxg3\n"
                            "pzc7dSYK76nRLfJQktmmGwNeyqmhRANCAASTM/sNkzbums3ZOpQ6MTvvPfeneRBk\n"
                            "nw6KojJO+39dqpvagTQlBVxx1LUhYtNtgXXWLPcJ8aLl/QBuGhQRd9ee\n"
                            "-----END PRIVATE KEY-----\n";
static const char P384[] = "-----BEGIN EC PRIVATE KEY-----\n"
                           "MIGkAgEBBDDd+ut0/04hlZyMP0sXfMdmeeHaSNJeSeKrc6qTsfvR2FaxlAirFnKV\n"
                           "660gyW93ptqgBwYFK4EEACKhZANiAAQLtpKKk5uR5eaJn6QpNajdobEa48LBXatv\n"
                           "nVnVoiQqeYQGdDQxOZvabE0py/M1qcsPBzqBco++ng0rxP3CCRan46nkn2HcfbGG\n"
                           "zzbVnef2rwC4sum+yMIgroqivLTXlnQ=\n"
                           "-----END EC PRIVATE KEY-----\n";
/* openssl ec -pubout -outform DER | tail -c 65 | base64url */
static const char PUBLIC[] =
    "BJMz-w2TNu6azdk6lDoxO-8996d5EGSfDoqiMk77f12qm9qBNCUFXHHUtSFi022BddYs9wnxouX9AG4aFBF3154";

static const char *write_tmp(const char *text)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/mxgw-test-vapid-XXXXXX");
    int fd = mkstemp(path);
    FILE *fp = fdopen(fd, "w");
    fputs(text, fp);
    fclose(fp);
    return path;
}

/* Decodes one JWT part into out (NUL-terminated); returns its length. */
static size_t part(const char *jwt, int which, char *out, size_t cap)
{
    const char *p = jwt;
    for (int i = 0; i < which && p; i++)
        p = strchr(p, '.') ? strchr(p, '.') + 1 : NULL;
    if (!p)
        return 0;
    size_t len = strcspn(p, "."), n = 0;
    if (gw_b64url_decode(p, len, (uint8_t *)out, cap - 1, &n) != 0)
        return 0;
    out[n] = '\0';
    return n;
}

static bool verify(const char *jwt, const char *public_b64)
{
    const char *last = strrchr(jwt, '.');
    uint8_t pub[65], sig[64], hash[32];
    size_t n = 0, m = 0;
    if (!last || gw_b64url_decode(public_b64, strlen(public_b64), pub, sizeof pub, &n) ||
        gw_b64url_decode(last + 1, strlen(last + 1), sig, sizeof sig, &m) || n != 65 || m != 64)
        return false;
    mbedtls_sha256_ret((const unsigned char *)jwt, (size_t)(last - jwt), hash, 0);
    mbedtls_ecp_group grp;
    mbedtls_ecp_point q;
    mbedtls_mpi r, s;
    mbedtls_ecp_group_init(&grp);
    mbedtls_ecp_point_init(&q);
    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    mbedtls_ecp_group_load(&grp, MBEDTLS_ECP_DP_SECP256R1);
    mbedtls_ecp_point_read_binary(&grp, &q, pub, 65);
    mbedtls_mpi_read_binary(&r, sig, 32);
    mbedtls_mpi_read_binary(&s, sig + 32, 32);
    int rc = mbedtls_ecdsa_verify(&grp, hash, sizeof hash, &q, &r, &s);
    mbedtls_mpi_free(&r);
    mbedtls_mpi_free(&s);
    mbedtls_ecp_point_free(&q);
    mbedtls_ecp_group_free(&grp);
    return rc == 0;
}

struct bad_case {
    const char *name, *pem, *subject;
    int64_t lifetime;
};

int main(void)
{
    struct gw_rand *rand;
    gw_rand_new(&rand);
    char err[256];

    const char *pems[] = {SEC1, PKCS8};
    for (int i = 0; i < 2; i++) {
        const char *path = write_tmp(pems[i]);
        struct gw_vapid *v = NULL;
        int rc = gw_vapid_load(rand, path, "mailto:ops@example.com", 43200, &v, err, sizeof err);
        unlink(path);
        CHECK(rc == 0, "load %s: got %d: %s", i ? "PKCS #8" : "SEC 1", rc, err);
        if (rc)
            continue;
        CHECK(strcmp(gw_vapid_public(v), PUBLIC) == 0, "public key: expected %s, got %s", PUBLIC,
              gw_vapid_public(v));

        char jwt[1024], buf[512];
        CHECK(gw_vapid_jwt(v, "https://push.example.net", 1700000000, jwt, sizeof jwt) == 0,
              "jwt: expected it signed");
        part(jwt, 0, buf, sizeof buf);
        CHECK(strcmp(buf, "{\"typ\":\"JWT\",\"alg\":\"ES256\"}") == 0, "jwt header: got %s", buf);
        part(jwt, 1, buf, sizeof buf);
        CHECK(strcmp(buf, "{\"aud\":\"https://push.example.net\",\"exp\":1700000000,"
                          "\"sub\":\"mailto:ops@example.com\"}") == 0,
              "jwt claims: got %s", buf);
        CHECK(part(jwt, 2, buf, sizeof buf) == 64, "jwt signature: expected 64 bytes (r||s)");
        CHECK(verify(jwt, PUBLIC), "jwt: expected the signature to verify");
        jwt[strlen(jwt) - 3] ^= 1;
        CHECK(!verify(jwt, PUBLIC), "jwt: expected a changed signature to fail");
        CHECK(gw_vapid_jwt(v, "https://push.example.net", 1, jwt, 60) == GW_ELIMIT,
              "jwt into a small buffer: expected GW_ELIMIT");

        /* Tokens: reused per audience while more than a quarter of the lifetime (at most an
         * hour) is left, then replaced. */
        int64_t now = 1800000000;
        char first[1200];
        snprintf(first, sizeof first, "%s", gw_vapid_header(v, "https://a.example", now));
        CHECK(strncmp(first, "vapid t=", 8) == 0 && strstr(first, ", k=") &&
                  strcmp(strstr(first, ", k=") + 4, PUBLIC) == 0,
              "header: expected 'vapid t=…, k=<key>', got %s", first);
        CHECK(strcmp(gw_vapid_header(v, "https://a.example", now + 43200 - 3601), first) == 0,
              "header: expected the token reused while over an hour remains");
        CHECK(strcmp(gw_vapid_header(v, "https://b.example", now), first) != 0,
              "header: expected another token for another audience");
        CHECK(strcmp(gw_vapid_header(v, "https://a.example", now + 43200 - 3599), first) != 0,
              "header: expected a new token within an hour of expiry");
        char *t = strstr(first, "t=") + 2;
        *strchr(t, ',') = '\0';
        part(t, 1, buf, sizeof buf);
        CHECK(strstr(buf, "\"exp\":1800043200") != NULL, "header: expected exp = now + 12 h in %s",
              buf);
        gw_vapid_free(v);
    }

    const struct bad_case bad[] = {
        {"a P-384 key", P384, "mailto:ops@example.com", 3600},
        {"not a key", "hello\n", "mailto:ops@example.com", 3600},
        {"a subject that is no URI", SEC1, "ops@example.com", 3600},
        {"a lifetime over 24 h", SEC1, "mailto:ops@example.com", 86401},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *path = write_tmp(bad[i].pem);
        struct gw_vapid *v = NULL;
        int rc = gw_vapid_load(rand, path, bad[i].subject, bad[i].lifetime, &v, err, sizeof err);
        unlink(path);
        CHECK(rc == GW_ECONFIG && !v, "%s: expected GW_ECONFIG, got %d", bad[i].name, rc);
    }
    gw_rand_free(rand);
    return CHECK_DONE();
}
