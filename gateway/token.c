/* Resume tokens and secrets sealed under them.
 *
 * A token's secret never reaches the store. Two values are derived from it with HKDF-SHA256
 * (RFC 5869), salted with the session id and separated by their info strings: a verifier that
 * the store keeps to recognise the token, and an AES-256-GCM key that seals what a node needs
 * to log the user in again (the SCRAM keys, and the password unless json_reauth_password is
 * off). A dump of the store therefore gives neither a usable token nor a credential; the
 * client's token unlocks both, and a new token (new secret, new key, the secret re-sealed) is
 * issued at every resume. */
#include "gateway/token.h"

#include "gateway/err.h"
#include "gateway/mem.h"

#include <mbedtls/base64.h>
#include <mbedtls/gcm.h>
#include <mbedtls/hkdf.h>
#include <mbedtls/md.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define NONCE_BYTES 12
#define TAG_BYTES   16

static const char VERIFIER_INFO[] = "mxgw json token verifier v1";
static const char SEAL_INFO[] = "mxgw json reauth key v1";

static const char hexdigits[] = "0123456789abcdef";

static bool valid_sid(const char *sid, size_t n)
{
    if (n == 0 || n > GW_TOKEN_SID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!strchr(hexdigits, sid[i]) || sid[i] == '\0')
            return false;
    return true;
}

static int hexval(char c)
{
    const char *p = c ? strchr(hexdigits, c) : NULL;
    return p ? (int)(p - hexdigits) : -1;
}

int gw_hkdf_sha256(const unsigned char *salt, size_t salt_len, const unsigned char *ikm,
                   size_t ikm_len, const char *info, size_t info_len, unsigned char *okm,
                   size_t okm_len)
{
    const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
    return mbedtls_hkdf(md, salt, salt_len, ikm, ikm_len, (const unsigned char *)info, info_len,
                        okm, okm_len) == 0
               ? 0
               : GW_EINVAL;
}

int gw_aes256gcm_seal(const unsigned char key[32], const unsigned char nonce[12],
                      const unsigned char *aad, size_t aad_len, const unsigned char *in, size_t len,
                      unsigned char *out)
{
    mbedtls_gcm_context gcm;
    mbedtls_gcm_init(&gcm);
    int rc = mbedtls_gcm_setkey(&gcm, MBEDTLS_CIPHER_ID_AES, key, 256);
    if (rc == 0)
        rc = mbedtls_gcm_crypt_and_tag(&gcm, MBEDTLS_GCM_ENCRYPT, len, nonce, NONCE_BYTES, aad,
                                       aad_len, in, out, TAG_BYTES, out + len);
    mbedtls_gcm_free(&gcm);
    return rc == 0 ? 0 : GW_EIO;
}

int gw_aes256gcm_open(const unsigned char key[32], const unsigned char nonce[12],
                      const unsigned char *aad, size_t aad_len, const unsigned char *in, size_t len,
                      unsigned char *out)
{
    mbedtls_gcm_context gcm;
    mbedtls_gcm_init(&gcm);
    int rc = mbedtls_gcm_setkey(&gcm, MBEDTLS_CIPHER_ID_AES, key, 256);
    if (rc == 0)
        rc = mbedtls_gcm_auth_decrypt(&gcm, len, nonce, NONCE_BYTES, aad, aad_len, in + len,
                                      TAG_BYTES, in, out);
    mbedtls_gcm_free(&gcm);
    return rc == 0 ? 0 : GW_EAUTH;
}

static void derive(const unsigned char secret[GW_TOKEN_SECRET_BYTES], const char *sid,
                   const char *info, size_t info_len, unsigned char out[32])
{
    /* Cannot fail for SHA-256 and a 32-byte output. */
    gw_hkdf_sha256((const unsigned char *)sid, strlen(sid), secret, GW_TOKEN_SECRET_BYTES, info,
                   info_len, out, 32);
}

int gw_token_new(struct gw_rand *r, const char *sid, unsigned char secret[GW_TOKEN_SECRET_BYTES],
                 char *out, size_t outlen)
{
    size_t n = strlen(sid);
    if (!valid_sid(sid, n) || outlen < n + 2 + 2 * GW_TOKEN_SECRET_BYTES)
        return GW_EINVAL;
    if (gw_rand_bytes(r, secret, GW_TOKEN_SECRET_BYTES) != 0)
        return GW_EIO;
    memcpy(out, sid, n);
    char *p = out + n;
    *p++ = '.';
    for (size_t i = 0; i < GW_TOKEN_SECRET_BYTES; i++) {
        *p++ = hexdigits[secret[i] >> 4];
        *p++ = hexdigits[secret[i] & 15];
    }
    *p = '\0';
    return 0;
}

int gw_token_parse(const char *token, char *sid, size_t sidlen,
                   unsigned char secret[GW_TOKEN_SECRET_BYTES])
{
    const char *dot = strchr(token, '.');
    if (!dot)
        return GW_EINVAL;
    size_t n = (size_t)(dot - token);
    if (!valid_sid(token, n) || n + 1 > sidlen || strlen(dot + 1) != 2 * GW_TOKEN_SECRET_BYTES)
        return GW_EINVAL;
    for (size_t i = 0; i < GW_TOKEN_SECRET_BYTES; i++) {
        int hi = hexval(dot[1 + 2 * i]), lo = hexval(dot[2 + 2 * i]);
        if (hi < 0 || lo < 0) {
            gw_memzero(secret, GW_TOKEN_SECRET_BYTES);
            return GW_EINVAL;
        }
        secret[i] = (unsigned char)(hi << 4 | lo);
    }
    memcpy(sid, token, n);
    sid[n] = '\0';
    return 0;
}

void gw_token_verifier(const unsigned char secret[GW_TOKEN_SECRET_BYTES], const char *sid,
                       char out[GW_TOKEN_VERIFIER_HEX])
{
    unsigned char v[32];
    derive(secret, sid, VERIFIER_INFO, sizeof VERIFIER_INFO - 1, v);
    for (size_t i = 0; i < sizeof v; i++) {
        out[2 * i] = hexdigits[v[i] >> 4];
        out[2 * i + 1] = hexdigits[v[i] & 15];
    }
    out[2 * sizeof v] = '\0';
}

int gw_token_check(const unsigned char secret[GW_TOKEN_SECRET_BYTES], const char *sid,
                   const char *stored_verifier)
{
    char mine[GW_TOKEN_VERIFIER_HEX];
    gw_token_verifier(secret, sid, mine);
    if (strlen(stored_verifier) != GW_TOKEN_VERIFIER_HEX - 1)
        return GW_EAUTH;
    return gw_memeq_ct(mine, stored_verifier, GW_TOKEN_VERIFIER_HEX - 1) == 0 ? 0 : GW_EAUTH;
}

int gw_token_seal(struct gw_rand *r, const unsigned char secret[GW_TOKEN_SECRET_BYTES],
                  const char *sid, const void *data, size_t len, char **out)
{
    unsigned char key[32];
    size_t raw_len = NONCE_BYTES + len + TAG_BYTES;
    unsigned char *raw = gw_malloc(raw_len);
    int rc = gw_rand_bytes(r, raw, NONCE_BYTES);
    if (rc == 0) {
        derive(secret, sid, SEAL_INFO, sizeof SEAL_INFO - 1, key);
        rc = gw_aes256gcm_seal(key, raw, (const unsigned char *)sid, strlen(sid), data, len,
                               raw + NONCE_BYTES);
    }
    if (rc == 0) {
        size_t olen = 0;
        mbedtls_base64_encode(NULL, 0, &olen, raw, raw_len);
        *out = gw_malloc(olen + 1);
        mbedtls_base64_encode((unsigned char *)*out, olen + 1, &olen, raw, raw_len);
        (*out)[olen] = '\0';
    }
    gw_memzero(key, sizeof key);
    free(raw);
    return rc ? GW_EIO : 0;
}

int gw_token_open(const unsigned char secret[GW_TOKEN_SECRET_BYTES], const char *sid,
                  const char *sealed, unsigned char **out, size_t *len)
{
    size_t slen = strlen(sealed), raw_len = 0;
    unsigned char *raw = gw_malloc(slen + 1);
    if (mbedtls_base64_decode(raw, slen + 1, &raw_len, (const unsigned char *)sealed, slen) != 0 ||
        raw_len < NONCE_BYTES + TAG_BYTES) {
        free(raw);
        return GW_EAUTH;
    }
    size_t n = raw_len - NONCE_BYTES - TAG_BYTES;
    unsigned char key[32];
    unsigned char *pt = gw_malloc(n + 1);
    derive(secret, sid, SEAL_INFO, sizeof SEAL_INFO - 1, key);
    int rc = gw_aes256gcm_open(key, raw, (const unsigned char *)sid, strlen(sid), raw + NONCE_BYTES,
                               n, pt);
    gw_memzero(key, sizeof key);
    free(raw);
    if (rc) {
        gw_memzero(pt, n);
        free(pt);
        return GW_EAUTH;
    }
    pt[n] = '\0';
    *out = pt;
    *len = n;
    return 0;
}
