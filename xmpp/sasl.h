/* SASL client for logging users in upstream: SCRAM-SHA-256, SCRAM-SHA-1 (RFC 5802, RFC 7677)
 * and PLAIN (RFC 4616). Without channel binding ("n,,"): tls-unique is unsafe under TLS 1.3 and
 * mbedTLS 2.28 has no tls-exporter. Usernames and passwords are taken as they are (no SASLprep
 * mapping): a name that needs NFKC normalization will simply fail to authenticate, which is
 * safe; control characters are refused. */
#ifndef GW_SASL_H
#define GW_SASL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GW_SASL_MIN_ITERATIONS 4096
#define GW_SASL_MAX_ITERATIONS 100000

struct gw_sasl;

/* Random bytes for the client nonce (gw_rand_mbedtls in production). Returns 0 on success. */
typedef int (*gw_sasl_rng)(void *arg, unsigned char *buf, size_t n);

/* Chooses the best mechanism the server offers (SCRAM-SHA-256, then SCRAM-SHA-1, then PLAIN if
 * plain_allowed) and prepares an exchange for authcid/password (both copied; the password copy
 * is wiped once the salted password is derived). Returns 0 and an owned exchange, GW_EAUTH when
 * no offered mechanism is acceptable, or GW_EINVAL for an unusable name or password. */
int gw_sasl_new(const char *const *offered, size_t n, bool plain_allowed, const char *authcid,
                const char *password, gw_sasl_rng rng, void *rng_arg, struct gw_sasl **out);
/* Keeps the password past a SCRAM exchange, so that gw_sasl_export() includes it: the only way
 * to log in again on a server that draws a new salt at every login (one that stores passwords
 * in plaintext). Without it the password is wiped as soon as the salted password is derived. */
void gw_sasl_keep_password(struct gw_sasl *s);
/* The chosen mechanism's name (static). */
const char *gw_sasl_mechanism(const struct gw_sasl *s);
/* The initial response, base64, in *b64 (owned). Returns 0 or GW_EIO (no randomness). */
int gw_sasl_initial(struct gw_sasl *s, char **b64);
/* Answers a server challenge (base64). Returns 0 with the response in *b64 (owned), or
 * GW_EAUTH when the challenge is malformed, the nonce does not extend ours, the iteration
 * count is outside [GW_SASL_MIN_ITERATIONS, GW_SASL_MAX_ITERATIONS], or it carries e=. */
int gw_sasl_step(struct gw_sasl *s, const char *b64, char **out);
/* Checks the additional data of <success/> (base64, may be empty): for SCRAM it must carry the
 * server signature v= we expect, compared in constant time. Returns 0 or GW_EAUTH. */
int gw_sasl_success(struct gw_sasl *s, const char *b64);
/* Frees the exchange, wiping every secret. NULL is fine. */
void gw_sasl_free(struct gw_sasl *s);

/* What it takes to log the same user in again without the password: for SCRAM the ClientKey
 * and ServerKey (RFC 5802 §3) with the salt and iteration count they were derived under (a
 * server that later offers another salt or count has a new password, or salts anew at every
 * login: the keys no longer work), plus the password when gw_sasl_keep_password() was asked
 * for (password_len 0 otherwise), used only when the keys no longer match; for PLAIN the
 * password itself. Callers keep it sealed (gateway/token.h) and wipe it
 * with gw_sasl_secret_wipe(). */
struct gw_sasl_secret {
    char mech[16];
    unsigned iterations;
    size_t salt_len;
    unsigned char salt[128];
    size_t key_len;
    unsigned char client_key[32], server_key[32];
    size_t password_len;
    char password[1024];
};

/* After gw_sasl_success() returned 0: fills out with the exchange's secret. Returns 0, or
 * GW_EINVAL when there is none to give (the salt or password was too long to keep). */
int gw_sasl_export(const struct gw_sasl *s, struct gw_sasl_secret *out);
/* Like gw_sasl_new() but from a secret: its mechanism must be offered (PLAIN also needs
 * plain_allowed). Returns 0 and an owned exchange, or GW_EAUTH. */
int gw_sasl_new_from_secret(const char *const *offered, size_t n, bool plain_allowed,
                            const char *authcid, const struct gw_sasl_secret *secret,
                            gw_sasl_rng rng, void *rng_arg, struct gw_sasl **out);
/* A text form of a secret (owned, to be sealed, then wiped and freed by the caller), and its
 * strict reading. decode returns 0 or GW_EINVAL. */
char *gw_sasl_secret_encode(const struct gw_sasl_secret *secret);
int gw_sasl_secret_decode(const char *text, size_t len, struct gw_sasl_secret *out);
void gw_sasl_secret_wipe(struct gw_sasl_secret *secret);

/* Hi(password, salt, iterations) of RFC 5802 §2.2, i.e. PBKDF2-HMAC (RFC 8018) with one output
 * block, for sha256 true (SCRAM-SHA-256, 32 bytes into out) or false (SCRAM-SHA-1, 20 bytes).
 * The same result as mbedtls_pkcs5_pbkdf2_hmac() for that length, at half the cost: the HMAC
 * key's inner and outer pad blocks are hashed once, and each iteration resumes from copies of
 * those states (two compressions instead of mbedTLS's four). Returns 0, or an mbedTLS error. */
int gw_sasl_hi(bool sha256, const unsigned char *password, size_t plen, const unsigned char *salt,
               size_t slen, unsigned iterations, unsigned char *out);

#endif
