/* CSPRNG: mbedTLS CTR_DRBG seeded from the OS entropy source. It reseeds when the process id
 * changes, so a forked child never repeats its parent's ids (Mbed TLS CVE-2026-25835). */
#include "gateway/rand.h"

#include "gateway/err.h"
#include "gateway/mem.h"

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <stdlib.h>
#include <unistd.h>

struct gw_rand {
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    pid_t pid;
};

int gw_rand_new(struct gw_rand **out)
{
    static const unsigned char pers[] = "mxgw";
    struct gw_rand *r = gw_calloc(1, sizeof *r);
    mbedtls_entropy_init(&r->entropy);
    mbedtls_ctr_drbg_init(&r->drbg);
    if (mbedtls_ctr_drbg_seed(&r->drbg, mbedtls_entropy_func, &r->entropy, pers, sizeof pers - 1) !=
        0) {
        gw_rand_free(r);
        return GW_EIO;
    }
    mbedtls_ctr_drbg_set_prediction_resistance(&r->drbg, MBEDTLS_CTR_DRBG_PR_OFF);
    r->pid = getpid();
    *out = r;
    return 0;
}

void gw_rand_free(struct gw_rand *r)
{
    if (!r)
        return;
    mbedtls_ctr_drbg_free(&r->drbg);
    mbedtls_entropy_free(&r->entropy);
    gw_memzero(r, sizeof *r);
    free(r);
}

int gw_rand_bytes(struct gw_rand *r, void *buf, size_t n)
{
    pid_t pid = getpid();
    if (pid != r->pid) {
        if (mbedtls_ctr_drbg_reseed(&r->drbg, NULL, 0) != 0)
            return GW_EIO;
        r->pid = pid;
    }
    unsigned char *p = buf;
    while (n > 0) {
        size_t chunk = n > MBEDTLS_CTR_DRBG_MAX_REQUEST ? MBEDTLS_CTR_DRBG_MAX_REQUEST : n;
        if (mbedtls_ctr_drbg_random(&r->drbg, p, chunk) != 0)
            return GW_EIO;
        p += chunk;
        n -= chunk;
    }
    return 0;
}

int gw_rand_hex(struct gw_rand *r, size_t bytes, char *out, size_t outlen)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[64];
    if (bytes > sizeof raw || outlen < 2 * bytes + 1)
        return GW_EINVAL;
    int rc = gw_rand_bytes(r, raw, bytes);
    if (rc)
        return rc;
    for (size_t i = 0; i < bytes; i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[2 * bytes] = '\0';
    gw_memzero(raw, sizeof raw);
    return 0;
}

int gw_rand_mbedtls(void *p_rng, unsigned char *buf, size_t n)
{
    return gw_rand_bytes(p_rng, buf, n) == 0 ? 0 : MBEDTLS_ERR_CTR_DRBG_ENTROPY_SOURCE_FAILED;
}
