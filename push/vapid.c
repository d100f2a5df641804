/* VAPID keys and tokens. The JWT is base64url(header) "." base64url(claims) "." base64url(r||s)
 * with the ECDSA P-256 signature over SHA-256 of the first two parts (RFC 7518 §3.4: the two
 * 32-byte integers, not DER). Signatures are deterministic (RFC 6979) with blinding from the
 * DRBG. Tokens are cached per audience; the cache is bounded and simply emptied when full. */
#include "push/vapid.h"

#include "gateway/err.h"
#include "gateway/map.h"
#include "gateway/mem.h"
#include "gateway/rand.h"
#include "push/b64.h"
#include "xmpp/json.h"

#include <mbedtls/ecdsa.h>
#include <mbedtls/pk.h>
#include <mbedtls/sha256.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CACHE_MAX 1024
#define TOKEN_MAX 1024

/* base64url of {"typ":"JWT","alg":"ES256"} */
static const char JWT_HEADER[] = "eyJ0eXAiOiJKV1QiLCJhbGciOiJFUzI1NiJ9";

struct token {
    int64_t exp;
    char header[TOKEN_MAX + 128];
};

struct gw_vapid {
    struct gw_rand *rand;
    mbedtls_pk_context pk;
    char *subject;
    int64_t lifetime;
    char public_b64[GW_B64URL_LEN(65)];
    struct gw_map *cache; /* audience -> struct token */
};

static void free_token(void *arg, const char *key, void *value)
{
    (void)arg;
    (void)key;
    free(value);
}

int gw_vapid_load(struct gw_rand *rand, const char *path, const char *subject, int64_t lifetime_s,
                  struct gw_vapid **out, char *err, size_t errlen)
{
    if (strncmp(subject, "mailto:", 7) != 0 && strncmp(subject, "https://", 8) != 0) {
        snprintf(err, errlen, "push_vapid_subject must be a mailto: or https: URI");
        return GW_ECONFIG;
    }
    if (lifetime_s <= 0 || lifetime_s > 86400) {
        snprintf(err, errlen, "the VAPID token lifetime must be at most 24 h");
        return GW_ECONFIG;
    }
    struct gw_vapid *v = gw_calloc(1, sizeof *v);
    mbedtls_pk_init(&v->pk);
    v->rand = rand;
    int rc = mbedtls_pk_parse_keyfile(&v->pk, path, NULL);
    if (rc != 0 || mbedtls_pk_get_type(&v->pk) != MBEDTLS_PK_ECKEY ||
        mbedtls_pk_ec(v->pk)->grp.id != MBEDTLS_ECP_DP_SECP256R1) {
        snprintf(err, errlen, "%s: not a readable P-256 private key in PEM", path);
        gw_vapid_free(v);
        return GW_ECONFIG;
    }
    const mbedtls_ecp_keypair *kp = mbedtls_pk_ec(v->pk);
    unsigned char pub[65];
    size_t olen = 0;
    if (mbedtls_ecp_point_write_binary(&kp->grp, &kp->Q, MBEDTLS_ECP_PF_UNCOMPRESSED, &olen, pub,
                                       sizeof pub) != 0 ||
        olen != 65) {
        snprintf(err, errlen, "%s: cannot export the public key", path);
        gw_vapid_free(v);
        return GW_ECONFIG;
    }
    gw_b64url_encode(pub, sizeof pub, v->public_b64, sizeof v->public_b64);
    v->subject = gw_strdup(subject);
    v->lifetime = lifetime_s;
    v->cache = gw_map_new();
    *out = v;
    return 0;
}

void gw_vapid_free(struct gw_vapid *v)
{
    if (!v)
        return;
    mbedtls_pk_free(&v->pk);
    if (v->cache) {
        gw_map_each(v->cache, free_token, NULL);
        gw_map_free(v->cache);
    }
    free(v->subject);
    free(v);
}

const char *gw_vapid_public(const struct gw_vapid *v)
{
    return v->public_b64;
}

int gw_vapid_jwt(struct gw_vapid *v, const char *audience, int64_t exp, char *out, size_t outlen)
{
    struct gw_json_out *w = gw_json_out_new(NULL);
    gw_json_open(w);
    gw_json_kv(w, "aud", audience);
    gw_json_key(w, "exp");
    gw_json_integer(w, exp);
    gw_json_kv(w, "sub", v->subject);
    gw_json_close(w);
    size_t clen;
    const char *claims = gw_json_text(w, &clen);
    int rc = GW_ELIMIT;
    size_t hlen = sizeof JWT_HEADER - 1;
    if (hlen + 1 + GW_B64URL_LEN(clen) + 1 + GW_B64URL_LEN(64) > outlen)
        goto done;
    memcpy(out, JWT_HEADER, hlen);
    out[hlen] = '.';
    size_t n = hlen + 1 + gw_b64url_encode(claims, clen, out + hlen + 1, outlen - hlen - 1);
    unsigned char hash[32], sig[64];
    mbedtls_sha256_ret((const unsigned char *)out, n, hash, 0);
    const mbedtls_ecp_keypair *kp = mbedtls_pk_ec(v->pk);
    mbedtls_mpi r, s;
    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    rc = GW_EIO;
    if (mbedtls_ecdsa_sign_det_ext((mbedtls_ecp_group *)&kp->grp, &r, &s, &kp->d, hash, sizeof hash,
                                   MBEDTLS_MD_SHA256, gw_rand_mbedtls, v->rand) == 0 &&
        mbedtls_mpi_write_binary(&r, sig, 32) == 0 &&
        mbedtls_mpi_write_binary(&s, sig + 32, 32) == 0) {
        out[n++] = '.';
        gw_b64url_encode(sig, sizeof sig, out + n, outlen - n);
        rc = 0;
    }
    mbedtls_mpi_free(&r);
    mbedtls_mpi_free(&s);
done:
    gw_json_out_free(w);
    return rc;
}

const char *gw_vapid_header(struct gw_vapid *v, const char *audience, int64_t now_s)
{
    struct token *t = gw_map_get(v->cache, audience);
    int64_t margin = v->lifetime / 4 < 3600 ? v->lifetime / 4 : 3600;
    if (t && t->exp - now_s > margin)
        return t->header;
    if (!t) {
        if (gw_map_count(v->cache) >= CACHE_MAX) {
            gw_map_each(v->cache, free_token, NULL);
            gw_map_free(v->cache);
            v->cache = gw_map_new();
        }
        t = gw_calloc(1, sizeof *t);
        gw_map_put(v->cache, audience, t);
    }
    char jwt[TOKEN_MAX];
    t->exp = now_s + v->lifetime;
    if (gw_vapid_jwt(v, audience, t->exp, jwt, sizeof jwt) != 0) {
        free(gw_map_del(v->cache, audience));
        return NULL;
    }
    snprintf(t->header, sizeof t->header, "vapid t=%s, k=%s", jwt, v->public_b64);
    return t->header;
}
