/* CSPRNG (mbedTLS CTR_DRBG seeded from the OS) for every id, nonce and token. */
#ifndef GW_RAND_H
#define GW_RAND_H

#include <stddef.h>

struct gw_rand;

/* Returns 0 and an owned generator, or GW_EIO if the entropy source failed. */
int gw_rand_new(struct gw_rand **out);
void gw_rand_free(struct gw_rand *r);
/* Fills buf with n random bytes; reseeds first if the process id changed (fork). Returns 0 or
 * GW_EIO. */
int gw_rand_bytes(struct gw_rand *r, void *buf, size_t n);
/* Writes a random id of `bytes` random bytes (≥16 for 128 bits) as lowercase hex into out
 * (size ≥ 2*bytes+1). Returns 0 or GW_EIO. */
int gw_rand_hex(struct gw_rand *r, size_t bytes, char *out, size_t outlen);
/* Adapter for mbedTLS APIs taking f_rng/p_rng (p_rng is the struct gw_rand). */
int gw_rand_mbedtls(void *p_rng, unsigned char *buf, size_t n);

#endif
