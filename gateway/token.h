/* Resume tokens: "<session id>.<secret>", where only a verifier derived from the secret is
 * stored, and secrets sealed under a key derived from the same secret (so that the store alone
 * holds nothing usable without the client's token). */
#ifndef GW_TOKEN_H
#define GW_TOKEN_H

#include "gateway/rand.h"

#include <stddef.h>

#define GW_TOKEN_SECRET_BYTES 32 /* 256 bits */
#define GW_TOKEN_SID_MAX      64 /* hex characters of a session id */
#define GW_TOKEN_MAX          (GW_TOKEN_SID_MAX + 1 + 2 * GW_TOKEN_SECRET_BYTES + 1)
#define GW_TOKEN_VERIFIER_HEX (2 * 32 + 1)

/* Draws a new secret (CTR_DRBG) and writes the token "<sid>.<64 hex digits>" into out (size
 * ≥ GW_TOKEN_MAX). Returns 0, GW_EINVAL for a bad sid, or GW_EIO (no randomness). */
int gw_token_new(struct gw_rand *r, const char *sid, unsigned char secret[GW_TOKEN_SECRET_BYTES],
                 char *out, size_t outlen);
/* Splits a token into its session id (lowercase hex, 1..GW_TOKEN_SID_MAX characters, written to
 * sid, size ≥ GW_TOKEN_SID_MAX + 1) and secret. Returns 0 or GW_EINVAL for anything else. */
int gw_token_parse(const char *token, char *sid, size_t sidlen,
                   unsigned char secret[GW_TOKEN_SECRET_BYTES]);
/* The value the store keeps to recognise the token: HKDF-SHA256(secret, salt = sid,
 * info = "mxgw json token verifier v1"), as 64 hex digits in out. */
void gw_token_verifier(const unsigned char secret[GW_TOKEN_SECRET_BYTES], const char *sid,
                       char out[GW_TOKEN_VERIFIER_HEX]);
/* Compares a stored verifier with the one of secret, in constant time; 0 when they match. */
int gw_token_check(const unsigned char secret[GW_TOKEN_SECRET_BYTES], const char *sid,
                   const char *stored_verifier);

/* Seals len bytes with AES-256-GCM under HKDF-SHA256(secret, salt = sid,
 * info = "mxgw json reauth key v1"), a random 96-bit nonce and sid as associated data.
 * Returns 0 and *out, an owned base64 string of nonce || ciphertext || tag, or GW_EIO. */
int gw_token_seal(struct gw_rand *r, const unsigned char secret[GW_TOKEN_SECRET_BYTES],
                  const char *sid, const void *data, size_t len, char **out);
/* Opens what gw_token_seal made. Returns 0 with *out (owned, NUL-terminated, *len bytes; the
 * caller wipes it) or GW_EAUTH when it does not authenticate (wrong secret, sid or bytes). */
int gw_token_open(const unsigned char secret[GW_TOKEN_SECRET_BYTES], const char *sid,
                  const char *sealed, unsigned char **out, size_t *len);

/* The primitives, exposed for test vectors (RFC 5869; the GCM specification's test cases). */
int gw_hkdf_sha256(const unsigned char *salt, size_t salt_len, const unsigned char *ikm,
                   size_t ikm_len, const char *info, size_t info_len, unsigned char *okm,
                   size_t okm_len);
/* out: len bytes of ciphertext then the 16-byte tag. */
int gw_aes256gcm_seal(const unsigned char key[32], const unsigned char nonce[12],
                      const unsigned char *aad, size_t aad_len, const unsigned char *in, size_t len,
                      unsigned char *out);
/* in: len bytes of ciphertext then the tag; out: len bytes. Returns 0 or GW_EAUTH. */
int gw_aes256gcm_open(const unsigned char key[32], const unsigned char nonce[12],
                      const unsigned char *aad, size_t aad_len, const unsigned char *in, size_t len,
                      unsigned char *out);

#endif
