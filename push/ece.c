/* aes128gcm (RFC 8188) and Web Push encryption (RFC 8291).
 *
 * RFC 8188: PRK = HKDF-Extract(salt, IKM); CEK = HKDF-Expand(PRK, "Content-Encoding:
 * aes128gcm\0", 16); NONCE = HKDF-Expand(PRK, "Content-Encoding: nonce\0", 12); record i is
 * AES-128-GCM under CEK with NONCE XOR i, its plaintext ending in a delimiter (1, or 2 for the
 * last record) and zero padding.
 * RFC 8291: IKM = HKDF(salt = auth secret, ecdh_secret, "WebPush: info\0" || ua_public ||
 * as_public, 32), with a fresh application-server key pair whose public key is the keyid. */
#include "push/ece.h"

#include "gateway/err.h"
#include "gateway/mem.h"
#include "gateway/rand.h"

#include <mbedtls/ecdh.h>
#include <mbedtls/ecp.h>
#include <mbedtls/gcm.h>
#include <mbedtls/hkdf.h>
#include <mbedtls/md.h>
#include <stdlib.h>
#include <string.h>

static const char CEK_INFO[] = "Content-Encoding: aes128gcm"; /* each info ends in its NUL */
static const char NONCE_INFO[] = "Content-Encoding: nonce";
static const char KEY_INFO[] = "WebPush: info";

void gw_ece_derive(const uint8_t *ikm, size_t ikm_len, const uint8_t salt[GW_ECE_SALT_LEN],
                   uint8_t cek[16], uint8_t nonce[12])
{
    const mbedtls_md_info_t *sha256 = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
    mbedtls_hkdf(sha256, salt, GW_ECE_SALT_LEN, ikm, ikm_len, (const uint8_t *)CEK_INFO,
                 sizeof CEK_INFO, cek, 16);
    mbedtls_hkdf(sha256, salt, GW_ECE_SALT_LEN, ikm, ikm_len, (const uint8_t *)NONCE_INFO,
                 sizeof NONCE_INFO, nonce, 12);
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

int gw_ece_encrypt(const uint8_t *ikm, size_t ikm_len, const uint8_t salt[GW_ECE_SALT_LEN],
                   const uint8_t *keyid, size_t keyid_len, uint32_t rs, const uint8_t *plain,
                   size_t n, size_t pad, struct gw_buf *out)
{
    if (rs < GW_ECE_TAG_LEN + 2 || keyid_len > 255)
        return GW_EINVAL;
    uint8_t cek[16], nonce[12], header[4 + 1];
    put32(header, rs);
    header[4] = (uint8_t)keyid_len;
    size_t start = out->len;
    int rc = gw_buf_append(out, salt, GW_ECE_SALT_LEN);
    if (!rc)
        rc = gw_buf_append(out, header, sizeof header);
    if (!rc && keyid_len)
        rc = gw_buf_append(out, keyid, keyid_len);
    if (rc)
        return rc;
    gw_ece_derive(ikm, ikm_len, salt, cek, nonce);
    mbedtls_gcm_context gcm;
    mbedtls_gcm_init(&gcm);
    mbedtls_gcm_setkey(&gcm, MBEDTLS_CIPHER_ID_AES, cek, 128);
    size_t cap = rs - GW_ECE_TAG_LEN - 1; /* data and padding per record, delimiter aside */
    uint8_t *rec = gw_malloc(rs);
    uint8_t *enc = gw_malloc(rs);
    for (uint64_t seq = 0;; seq++) {
        bool last = n + pad <= cap;
        size_t p = last ? pad : (pad < cap ? pad : cap);
        size_t d = last ? n : cap - p;
        memcpy(rec, plain, d);
        rec[d] = last ? 2 : 1;
        memset(rec + d + 1, 0, p);
        size_t len = d + 1 + p;
        uint8_t iv[12];
        memcpy(iv, nonce, 12);
        for (int i = 0; i < 8; i++)
            iv[11 - i] ^= (uint8_t)(seq >> (8 * i));
        uint8_t tag[GW_ECE_TAG_LEN];
        mbedtls_gcm_crypt_and_tag(&gcm, MBEDTLS_GCM_ENCRYPT, len, iv, sizeof iv, NULL, 0, rec, enc,
                                  sizeof tag, tag);
        rc = gw_buf_append(out, enc, len);
        if (!rc)
            rc = gw_buf_append(out, tag, sizeof tag);
        plain += d;
        n -= d;
        pad -= p;
        if (rc || last)
            break;
    }
    gw_memzero(rec, rs);
    free(rec);
    free(enc);
    mbedtls_gcm_free(&gcm);
    gw_memzero(cek, sizeof cek);
    gw_memzero(nonce, sizeof nonce);
    if (rc)
        out->len = start;
    return rc;
}

int gw_webpush_check_key(const uint8_t *key, size_t n)
{
    if (n != GW_WEBPUSH_KEY || key[0] != 0x04)
        return GW_EINVAL;
    mbedtls_ecp_group grp;
    mbedtls_ecp_point q;
    mbedtls_ecp_group_init(&grp);
    mbedtls_ecp_point_init(&q);
    int rc = mbedtls_ecp_group_load(&grp, MBEDTLS_ECP_DP_SECP256R1) ||
                     mbedtls_ecp_point_read_binary(&grp, &q, key, n) ||
                     mbedtls_ecp_check_pubkey(&grp, &q)
                 ? GW_EINVAL
                 : 0;
    mbedtls_ecp_point_free(&q);
    mbedtls_ecp_group_free(&grp);
    return rc;
}

/* The shared part of both entry points: d is the application server's private scalar. */
static int encrypt_with_scalar(struct gw_rand *rand, mbedtls_ecp_group *grp, const mbedtls_mpi *d,
                               const uint8_t ua_public[GW_WEBPUSH_KEY],
                               const uint8_t auth[GW_WEBPUSH_AUTH],
                               const uint8_t salt[GW_ECE_SALT_LEN], const uint8_t *plain, size_t n,
                               size_t pad, struct gw_buf *out)
{
    if (n + pad > GW_WEBPUSH_MAX_PLAIN)
        return GW_ELIMIT;
    mbedtls_ecp_point ua, as;
    mbedtls_mpi z;
    mbedtls_ecp_point_init(&ua);
    mbedtls_ecp_point_init(&as);
    mbedtls_mpi_init(&z);
    uint8_t as_public[GW_WEBPUSH_KEY], secret[32], info[sizeof KEY_INFO + 2 * GW_WEBPUSH_KEY],
        ikm[32];
    size_t olen = 0;
    int rc = GW_EINVAL;
    if (mbedtls_ecp_point_read_binary(grp, &ua, ua_public, GW_WEBPUSH_KEY) ||
        mbedtls_ecp_check_pubkey(grp, &ua) || mbedtls_ecp_check_privkey(grp, d) ||
        mbedtls_ecp_mul(grp, &as, d, &grp->G, gw_rand_mbedtls, rand) ||
        mbedtls_ecp_point_write_binary(grp, &as, MBEDTLS_ECP_PF_UNCOMPRESSED, &olen, as_public,
                                       sizeof as_public) ||
        olen != GW_WEBPUSH_KEY ||
        mbedtls_ecdh_compute_shared(grp, &z, &ua, d, gw_rand_mbedtls, rand) ||
        mbedtls_mpi_write_binary(&z, secret, sizeof secret))
        goto done;
    memcpy(info, KEY_INFO, sizeof KEY_INFO);
    memcpy(info + sizeof KEY_INFO, ua_public, GW_WEBPUSH_KEY);
    memcpy(info + sizeof KEY_INFO + GW_WEBPUSH_KEY, as_public, GW_WEBPUSH_KEY);
    mbedtls_hkdf(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), auth, GW_WEBPUSH_AUTH, secret,
                 sizeof secret, info, sizeof info, ikm, sizeof ikm);
    rc = gw_ece_encrypt(ikm, sizeof ikm, salt, as_public, GW_WEBPUSH_KEY, GW_WEBPUSH_RS, plain, n,
                        pad, out);
done:
    gw_memzero(secret, sizeof secret);
    gw_memzero(ikm, sizeof ikm);
    mbedtls_mpi_free(&z);
    mbedtls_ecp_point_free(&as);
    mbedtls_ecp_point_free(&ua);
    return rc;
}

int gw_webpush_encrypt_with(struct gw_rand *rand, const uint8_t ua_public[GW_WEBPUSH_KEY],
                            const uint8_t auth[GW_WEBPUSH_AUTH], const uint8_t as_private[32],
                            const uint8_t salt[GW_ECE_SALT_LEN], const uint8_t *plain, size_t n,
                            size_t pad, struct gw_buf *out)
{
    mbedtls_ecp_group grp;
    mbedtls_mpi d;
    mbedtls_ecp_group_init(&grp);
    mbedtls_mpi_init(&d);
    int rc = GW_EINVAL;
    if (mbedtls_ecp_group_load(&grp, MBEDTLS_ECP_DP_SECP256R1) == 0 &&
        mbedtls_mpi_read_binary(&d, as_private, 32) == 0)
        rc = encrypt_with_scalar(rand, &grp, &d, ua_public, auth, salt, plain, n, pad, out);
    mbedtls_mpi_free(&d);
    mbedtls_ecp_group_free(&grp);
    return rc;
}

int gw_webpush_encrypt(struct gw_rand *rand, const uint8_t ua_public[GW_WEBPUSH_KEY],
                       const uint8_t auth[GW_WEBPUSH_AUTH], const uint8_t *plain, size_t n,
                       size_t pad, struct gw_buf *out)
{
    mbedtls_ecp_group grp;
    mbedtls_ecp_point q;
    mbedtls_mpi d;
    mbedtls_ecp_group_init(&grp);
    mbedtls_ecp_point_init(&q);
    mbedtls_mpi_init(&d);
    uint8_t salt[GW_ECE_SALT_LEN];
    int rc = GW_EIO;
    if (mbedtls_ecp_group_load(&grp, MBEDTLS_ECP_DP_SECP256R1) == 0 &&
        mbedtls_ecp_gen_keypair(&grp, &d, &q, gw_rand_mbedtls, rand) == 0 &&
        gw_rand_bytes(rand, salt, sizeof salt) == 0)
        rc = encrypt_with_scalar(rand, &grp, &d, ua_public, auth, salt, plain, n, pad, out);
    mbedtls_mpi_free(&d);
    mbedtls_ecp_point_free(&q);
    mbedtls_ecp_group_free(&grp);
    return rc;
}
