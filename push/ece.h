/* Encrypted content encoding (RFC 8188 "aes128gcm") and the Web Push message encryption built on
 * it (RFC 8291: ECDH P-256, HKDF-SHA-256, AES-128-GCM), with mbedTLS. */
#ifndef GW_ECE_H
#define GW_ECE_H

#include "xmpp/xml.h"

#include <stddef.h>
#include <stdint.h>

struct gw_rand;

#define GW_ECE_SALT_LEN   16
#define GW_ECE_TAG_LEN    16
#define GW_WEBPUSH_KEY    65   /* an uncompressed P-256 public key */
#define GW_WEBPUSH_AUTH   16   /* the subscription's auth secret */
#define GW_WEBPUSH_RS     4096 /* one record, as RFC 8291 §4 requires */
#define GW_WEBPUSH_HEADER (GW_ECE_SALT_LEN + 4 + 1 + GW_WEBPUSH_KEY)
/* Largest plaintext (padding included) in one Web Push message of at most 4096 bytes. */
#define GW_WEBPUSH_MAX_PLAIN (4096 - GW_WEBPUSH_HEADER - GW_ECE_TAG_LEN - 1)

/* The content-encryption key and nonce of RFC 8188 §2.2/§2.3 for ikm and salt. */
void gw_ece_derive(const uint8_t *ikm, size_t ikm_len, const uint8_t salt[GW_ECE_SALT_LEN],
                   uint8_t cek[16], uint8_t nonce[12]);

/* Appends an aes128gcm body to out: the header (salt, rs, keyid), then the records. plain's n
 * bytes are split into records of rs bytes (ciphertext and tag), with pad zero bytes of padding
 * put in the earliest records. Returns 0, GW_EINVAL (rs below 18, keyid over 255 bytes) or
 * GW_ELIMIT (out's cap). */
int gw_ece_encrypt(const uint8_t *ikm, size_t ikm_len, const uint8_t salt[GW_ECE_SALT_LEN],
                   const uint8_t *keyid, size_t keyid_len, uint32_t rs, const uint8_t *plain,
                   size_t n, size_t pad, struct gw_buf *out);

/* 0 if key (n bytes) is an uncompressed point on P-256, GW_EINVAL otherwise. */
int gw_webpush_check_key(const uint8_t *key, size_t n);

/* RFC 8291 with a given application-server private key (32 bytes) and salt, for the RFC's
 * example; rand only blinds the scalar multiplications. Appends one 4096-byte-record body.
 * Returns 0, GW_EINVAL (a bad key) or GW_ELIMIT (over 4096 bytes). */
int gw_webpush_encrypt_with(struct gw_rand *rand, const uint8_t ua_public[GW_WEBPUSH_KEY],
                            const uint8_t auth[GW_WEBPUSH_AUTH], const uint8_t as_private[32],
                            const uint8_t salt[GW_ECE_SALT_LEN], const uint8_t *plain, size_t n,
                            size_t pad, struct gw_buf *out);
/* The same with a fresh key pair and salt for this one message. */
int gw_webpush_encrypt(struct gw_rand *rand, const uint8_t ua_public[GW_WEBPUSH_KEY],
                       const uint8_t auth[GW_WEBPUSH_AUTH], const uint8_t *plain, size_t n,
                       size_t pad, struct gw_buf *out);

#endif
