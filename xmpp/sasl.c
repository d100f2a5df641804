/* SASL client: SCRAM-SHA-256, SCRAM-SHA-1 and PLAIN.
 *
 * SCRAM (RFC 5802): the client-first message carries our nonce; the server-first message must
 * extend it and give a salt and an iteration count within bounds; we derive SaltedPassword with
 * PBKDF2 (then wipe the password), send the proof, and keep the server signature we expect so
 * that <success/> can be checked in constant time. Every secret is wiped when the exchange is
 * freed. */
#include "xmpp/sasl.h"

#include "gateway/err.h"
#include "gateway/mem.h"

#include <mbedtls/base64.h>
#include <mbedtls/md.h>
#include <mbedtls/platform_util.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NONCE_BYTES 18 /* 24 base64 characters */
#define MAX_HASH    32

enum mech { M_SCRAM_SHA256, M_SCRAM_SHA1, M_PLAIN };

static const char *const mech_names[] = {"SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"};

struct gw_sasl {
    enum mech mech;
    char *authcid;
    char *password;
    gw_sasl_rng rng;
    void *rng_arg;
    char *client_first_bare;
    char *nonce;
    unsigned char server_sig[MAX_HASH];
    size_t hash_len;
    bool awaiting_final;
    bool succeeded;
    bool from_secret;   /* ClientKey and ServerKey given, not derived from a password */
    bool keep_password; /* the password stays after SCRAM, for gw_sasl_export() */
    unsigned iterations;
    unsigned char *salt;
    size_t salt_len;
    unsigned char ckey[MAX_HASH], skey[MAX_HASH];
};

static char *b64_encode(const unsigned char *p, size_t n)
{
    size_t olen = 0;
    mbedtls_base64_encode(NULL, 0, &olen, p, n);
    char *out = gw_malloc(olen + 1);
    mbedtls_base64_encode((unsigned char *)out, olen + 1, &olen, p, n);
    out[olen] = '\0';
    return out;
}

/* Decodes base64 into an owned buffer; returns NULL if it is not valid base64. */
static unsigned char *b64_decode(const char *s, size_t *n)
{
    size_t len = strlen(s), olen = 0;
    if (len == 1 && s[0] == '=') { /* RFC 6120 §6.4.2: "=" stands for empty data */
        *n = 0;
        return gw_calloc(1, 1);
    }
    unsigned char *out = gw_malloc(len + 1);
    if (mbedtls_base64_decode(out, len + 1, &olen, (const unsigned char *)s, len) != 0) {
        free(out);
        return NULL;
    }
    out[olen] = '\0';
    *n = olen;
    return out;
}

static bool printable_utf8(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return false;
    return *s != '\0';
}

int gw_sasl_new(const char *const *offered, size_t n, bool plain_allowed, const char *authcid,
                const char *password, gw_sasl_rng rng, void *rng_arg, struct gw_sasl **out)
{
    if (!printable_utf8(authcid) || !printable_utf8(password))
        return GW_EINVAL;
    int best = -1;
    for (size_t i = 0; i < n; i++)
        for (int m = 0; m < 3; m++)
            if (strcmp(offered[i], mech_names[m]) == 0 && (m != M_PLAIN || plain_allowed) &&
                (best < 0 || m < best))
                best = m;
    if (best < 0)
        return GW_EAUTH;
    struct gw_sasl *s = gw_calloc(1, sizeof *s);
    s->mech = (enum mech)best;
    s->authcid = gw_strdup(authcid);
    s->password = gw_strdup(password);
    s->rng = rng;
    s->rng_arg = rng_arg;
    s->hash_len = s->mech == M_SCRAM_SHA1 ? 20 : 32;
    *out = s;
    return 0;
}

void gw_sasl_keep_password(struct gw_sasl *s)
{
    s->keep_password = true;
}

const char *gw_sasl_mechanism(const struct gw_sasl *s)
{
    return mech_names[s->mech];
}

static void wipe_password(struct gw_sasl *s)
{
    if (s->password) {
        gw_memzero(s->password, strlen(s->password));
        free(s->password);
        s->password = NULL;
    }
}

/* The SCRAM "saslname": ',' and '=' escaped as =2C and =3D. */
static char *saslname(const char *name)
{
    char *out = gw_malloc(3 * strlen(name) + 1), *p = out;
    for (; *name; name++) {
        if (*name == ',')
            p += sprintf(p, "=2C");
        else if (*name == '=')
            p += sprintf(p, "=3D");
        else
            *p++ = *name;
    }
    *p = '\0';
    return out;
}

/* Builds the initial response with the given client nonce; exposed for RFC test vectors. */
int gw_sasl_initial_with_nonce(struct gw_sasl *s, const char *nonce, char **b64);

int gw_sasl_initial_with_nonce(struct gw_sasl *s, const char *nonce, char **b64)
{
    if (s->mech == M_PLAIN) {
        size_t a = strlen(s->authcid), p = strlen(s->password);
        unsigned char *msg = gw_malloc(a + p + 2);
        msg[0] = '\0';
        memcpy(msg + 1, s->authcid, a);
        msg[a + 1] = '\0';
        memcpy(msg + a + 2, s->password, p);
        *b64 = b64_encode(msg, a + p + 2);
        gw_memzero(msg, a + p + 2);
        free(msg);
        return 0; /* the password stays (wiped at free) for gw_sasl_export() */
    }
    char *name = saslname(s->authcid);
    size_t n = strlen(name) + strlen(nonce) + 8;
    s->client_first_bare = gw_malloc(n);
    snprintf(s->client_first_bare, n, "n=%s,r=%s", name, nonce);
    free(name);
    s->nonce = gw_strdup(nonce);
    char *first = gw_malloc(n + 3);
    snprintf(first, n + 3, "n,,%s", s->client_first_bare);
    *b64 = b64_encode((unsigned char *)first, strlen(first));
    free(first);
    return 0;
}

int gw_sasl_initial(struct gw_sasl *s, char **b64)
{
    unsigned char raw[NONCE_BYTES];
    if (s->mech != M_PLAIN && s->rng(s->rng_arg, raw, sizeof raw) != 0)
        return GW_EIO;
    char *nonce = b64_encode(raw, sizeof raw);
    int rc = gw_sasl_initial_with_nonce(s, nonce, b64);
    free(nonce);
    return rc;
}

/* Finds attribute `a=` in a comma-separated SCRAM message; returns its value (owned) or NULL. */
static char *attr(const char *msg, char a)
{
    for (const char *p = msg; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
        if (p[0] == a && p[1] == '=') {
            const char *end = strchr(p, ',');
            return gw_strndup(p + 2, end ? (size_t)(end - p - 2) : strlen(p + 2));
        }
    }
    return NULL;
}

static int hmac(const mbedtls_md_info_t *md, const unsigned char *key, size_t klen, const void *msg,
                size_t mlen, unsigned char *out)
{
    return mbedtls_md_hmac(md, key, klen, msg, mlen, out);
}

#define HMAC_BLOCK 64 /* SHA-1's and SHA-256's block size */

/* out = H(pad_state || msg): the outer or inner half of one HMAC, from a saved pad state. */
static int resume(mbedtls_md_context_t *work, const mbedtls_md_context_t *pad, const void *msg,
                  size_t len, unsigned char *out)
{
    int err = mbedtls_md_clone(work, pad);
    if (!err)
        err = mbedtls_md_update(work, msg, len);
    if (!err)
        err = mbedtls_md_finish(work, out);
    return err;
}

int gw_sasl_hi(bool sha256, const unsigned char *password, size_t plen, const unsigned char *salt,
               size_t slen, unsigned iterations, unsigned char *out)
{
    const mbedtls_md_info_t *md =
        mbedtls_md_info_from_type(sha256 ? MBEDTLS_MD_SHA256 : MBEDTLS_MD_SHA1);
    size_t hl = mbedtls_md_get_size(md);
    mbedtls_md_context_t inner, outer, work;
    mbedtls_md_init(&inner);
    mbedtls_md_init(&outer);
    mbedtls_md_init(&work);
    unsigned char key[HMAC_BLOCK] = {0}, ipad[HMAC_BLOCK], opad[HMAC_BLOCK];
    unsigned char u[MAX_HASH];
    int err = 0;
    if (plen > HMAC_BLOCK) /* RFC 2104: a long key is hashed first */
        err = mbedtls_md(md, password, plen, key);
    else if (plen)
        memcpy(key, password, plen);
    for (size_t k = 0; k < HMAC_BLOCK; k++) {
        ipad[k] = key[k] ^ 0x36;
        opad[k] = key[k] ^ 0x5c;
    }
    if (!err)
        err = mbedtls_md_setup(&inner, md, 0);
    if (!err)
        err = mbedtls_md_setup(&outer, md, 0);
    if (!err)
        err = mbedtls_md_setup(&work, md, 0);
    if (!err)
        err = mbedtls_md_starts(&inner);
    if (!err)
        err = mbedtls_md_update(&inner, ipad, HMAC_BLOCK);
    if (!err)
        err = mbedtls_md_starts(&outer);
    if (!err)
        err = mbedtls_md_update(&outer, opad, HMAC_BLOCK);
    /* U1 = HMAC(password, salt || INT(1)) */
    static const unsigned char one[4] = {0, 0, 0, 1};
    if (!err)
        err = mbedtls_md_clone(&work, &inner);
    if (!err)
        err = mbedtls_md_update(&work, salt, slen);
    if (!err)
        err = mbedtls_md_update(&work, one, sizeof one);
    if (!err)
        err = mbedtls_md_finish(&work, u);
    if (!err)
        err = resume(&work, &outer, u, hl, u);
    if (!err)
        memcpy(out, u, hl);
    /* Ui = HMAC(password, Ui-1); the result is U1 ^ U2 ^ ... */
    for (unsigned i = 1; !err && i < iterations; i++) {
        err = resume(&work, &inner, u, hl, u);
        if (!err)
            err = resume(&work, &outer, u, hl, u);
        for (size_t k = 0; !err && k < hl; k++)
            out[k] ^= u[k];
    }
    mbedtls_platform_zeroize(key, sizeof key);
    mbedtls_platform_zeroize(ipad, sizeof ipad);
    mbedtls_platform_zeroize(opad, sizeof opad);
    mbedtls_platform_zeroize(u, sizeof u);
    mbedtls_md_free(&inner); /* mbedtls_md_free wipes the contexts' states */
    mbedtls_md_free(&outer);
    mbedtls_md_free(&work);
    return err;
}

int gw_sasl_step(struct gw_sasl *s, const char *b64, char **out)
{
    if (s->mech == M_PLAIN || !s->client_first_bare || s->awaiting_final ||
        (!s->password && !s->from_secret))
        return GW_EAUTH;
    size_t n;
    char *server_first = (char *)b64_decode(b64, &n);
    if (!server_first || strlen(server_first) != n || n == 0) {
        free(server_first);
        return GW_EAUTH;
    }
    int rc = GW_EAUTH;
    char *nonce = NULL, *salt64 = NULL, *iters = NULL, *final_bare = NULL, *auth = NULL;
    unsigned char *salt = NULL;
    unsigned char salted[MAX_HASH], stored[MAX_HASH], csig[MAX_HASH], proof[MAX_HASH];
    unsigned char *ckey = s->ckey, *skey = s->skey;
    /* RFC 5802 §5.1: the first attribute is r= (an m= extension first means we must refuse). */
    if (strncmp(server_first, "r=", 2) != 0)
        goto done;
    nonce = attr(server_first, 'r');
    salt64 = attr(server_first, 's');
    iters = attr(server_first, 'i');
    char *error = attr(server_first, 'e');
    free(error);
    if (!nonce || !salt64 || !iters || error)
        goto done;
    size_t ours = strlen(s->nonce);
    if (strlen(nonce) <= ours || strncmp(nonce, s->nonce, ours) != 0)
        goto done;
    char *end;
    unsigned long i = strtoul(iters, &end, 10);
    if (*end || iters[0] < '1' || iters[0] > '9' || i < GW_SASL_MIN_ITERATIONS ||
        i > GW_SASL_MAX_ITERATIONS)
        goto done;
    size_t salt_len;
    salt = b64_decode(salt64, &salt_len);
    if (!salt || salt_len == 0)
        goto done;

    const mbedtls_md_info_t *md =
        mbedtls_md_info_from_type(s->mech == M_SCRAM_SHA1 ? MBEDTLS_MD_SHA1 : MBEDTLS_MD_SHA256);
    size_t hl = s->hash_len;
    bool keys_match = s->from_secret && i == s->iterations && salt_len == s->salt_len &&
                      memcmp(salt, s->salt, salt_len) == 0;
    /* Another salt or count means the keys we hold are useless: either the password changed,
     * or the server stores plaintext and salts anew at every login (Prosody's internal_plain,
     * ejabberd's "plain" format); only a kept password can still answer. */
    if (s->from_secret && !keys_match && !s->password)
        goto done;
    if (!keys_match) {
        int err = gw_sasl_hi(s->mech != M_SCRAM_SHA1, (unsigned char *)s->password,
                             strlen(s->password), salt, salt_len, (unsigned)i, salted);
        if (!s->keep_password)
            wipe_password(s);
        if (err || hmac(md, salted, hl, "Client Key", 10, ckey) ||
            hmac(md, salted, hl, "Server Key", 10, skey))
            goto done;
        free(s->salt);
        s->salt = salt;
        s->salt_len = salt_len;
        s->iterations = (unsigned)i;
        salt = NULL;
    }
    size_t fl = strlen(nonce) + 16;
    final_bare = gw_malloc(fl);
    snprintf(final_bare, fl, "c=biws,r=%s", nonce);
    size_t al = strlen(s->client_first_bare) + strlen(server_first) + strlen(final_bare) + 3;
    auth = gw_malloc(al);
    snprintf(auth, al, "%s,%s,%s", s->client_first_bare, server_first, final_bare);
    if (mbedtls_md(md, ckey, hl, stored) || hmac(md, stored, hl, auth, strlen(auth), csig) ||
        hmac(md, skey, hl, auth, strlen(auth), s->server_sig))
        goto done;
    for (size_t k = 0; k < hl; k++)
        proof[k] = ckey[k] ^ csig[k];
    char *proof64 = b64_encode(proof, hl);
    size_t ml = strlen(final_bare) + strlen(proof64) + 4;
    char *msg = gw_malloc(ml);
    snprintf(msg, ml, "%s,p=%s", final_bare, proof64);
    *out = b64_encode((unsigned char *)msg, strlen(msg));
    free(msg);
    free(proof64);
    s->awaiting_final = true;
    rc = 0;
done:
    gw_memzero(salted, sizeof salted);
    gw_memzero(stored, sizeof stored);
    gw_memzero(csig, sizeof csig);
    gw_memzero(proof, sizeof proof);
    free(server_first);
    free(nonce);
    free(salt64);
    free(iters);
    free(salt);
    free(final_bare);
    free(auth);
    return rc;
}

int gw_sasl_success(struct gw_sasl *s, const char *b64)
{
    if (s->mech == M_PLAIN) {
        s->succeeded = true;
        return 0;
    }
    if (!s->awaiting_final || !b64)
        return GW_EAUTH; /* success without the server proving it knows the password */
    size_t n;
    char *final = (char *)b64_decode(b64, &n);
    int rc = GW_EAUTH;
    char *v = final ? attr(final, 'v') : NULL;
    unsigned char *sig = NULL;
    size_t sig_len = 0;
    if (v && strncmp(final, "v=", 2) == 0)
        sig = b64_decode(v, &sig_len);
    if (sig && sig_len == s->hash_len && gw_memeq_ct(sig, s->server_sig, s->hash_len) == 0)
        rc = 0;
    s->succeeded = rc == 0;
    free(final);
    free(v);
    free(sig);
    return rc;
}

void gw_sasl_free(struct gw_sasl *s)
{
    if (!s)
        return;
    wipe_password(s);
    free(s->authcid);
    free(s->client_first_bare);
    free(s->nonce);
    free(s->salt);
    gw_memzero(s, sizeof *s);
    free(s);
}

/* ---- secrets ---- */

int gw_sasl_export(const struct gw_sasl *s, struct gw_sasl_secret *out)
{
    memset(out, 0, sizeof *out);
    if (!s->succeeded)
        return GW_EINVAL;
    snprintf(out->mech, sizeof out->mech, "%s", mech_names[s->mech]);
    if (s->mech == M_PLAIN) {
        size_t n = s->password ? strlen(s->password) : 0;
        if (n == 0 || n >= sizeof out->password)
            return GW_EINVAL;
        memcpy(out->password, s->password, n);
        out->password_len = n;
        return 0;
    }
    if (!s->salt || s->salt_len > sizeof out->salt)
        return GW_EINVAL;
    out->iterations = s->iterations;
    out->salt_len = s->salt_len;
    memcpy(out->salt, s->salt, s->salt_len);
    out->key_len = s->hash_len;
    memcpy(out->client_key, s->ckey, s->hash_len);
    memcpy(out->server_key, s->skey, s->hash_len);
    size_t n = s->keep_password && s->password ? strlen(s->password) : 0;
    if (n >= sizeof out->password)
        return GW_EINVAL;
    memcpy(out->password, s->password ? s->password : "", n);
    out->password_len = n;
    return 0;
}

int gw_sasl_new_from_secret(const char *const *offered, size_t n, bool plain_allowed,
                            const char *authcid, const struct gw_sasl_secret *secret,
                            gw_sasl_rng rng, void *rng_arg, struct gw_sasl **out)
{
    int mech = -1;
    for (int m = 0; m < 3; m++)
        if (strcmp(secret->mech, mech_names[m]) == 0)
            mech = m;
    bool offered_ok = false;
    for (size_t i = 0; i < n && mech >= 0; i++)
        offered_ok |= strcmp(offered[i], mech_names[mech]) == 0;
    if (!offered_ok || !printable_utf8(authcid) || (mech == M_PLAIN && !plain_allowed))
        return GW_EAUTH;
    size_t hash_len = mech == M_SCRAM_SHA1 ? 20 : 32;
    if (mech != M_PLAIN &&
        (secret->key_len != hash_len || secret->salt_len == 0 ||
         secret->salt_len > sizeof secret->salt || secret->iterations < GW_SASL_MIN_ITERATIONS ||
         secret->iterations > GW_SASL_MAX_ITERATIONS))
        return GW_EAUTH;
    if (mech == M_PLAIN &&
        (secret->password_len == 0 || secret->password_len >= sizeof secret->password))
        return GW_EAUTH;
    struct gw_sasl *s = gw_calloc(1, sizeof *s);
    s->mech = (enum mech)mech;
    s->authcid = gw_strdup(authcid);
    s->rng = rng;
    s->rng_arg = rng_arg;
    s->hash_len = hash_len;
    if (mech == M_PLAIN) {
        s->password = gw_strndup(secret->password, secret->password_len);
    } else {
        s->from_secret = true;
        s->iterations = secret->iterations;
        s->salt = gw_malloc(secret->salt_len);
        memcpy(s->salt, secret->salt, secret->salt_len);
        s->salt_len = secret->salt_len;
        memcpy(s->ckey, secret->client_key, hash_len);
        memcpy(s->skey, secret->server_key, hash_len);
        if (secret->password_len > 0 && secret->password_len < sizeof secret->password) {
            s->password = gw_strndup(secret->password, secret->password_len);
            s->keep_password = true;
        }
    }
    *out = s;
    return 0;
}

void gw_sasl_secret_wipe(struct gw_sasl_secret *secret)
{
    gw_memzero(secret, sizeof *secret);
}

/* "v1\n<mech>\n" then, for SCRAM, "<iterations>\n<salt>\n<ClientKey>\n<ServerKey>\n" in
 * base64 (and "<password>\n" in base64 when it was kept), or for PLAIN "<password>\n" in
 * base64. */
char *gw_sasl_secret_encode(const struct gw_sasl_secret *secret)
{
    char *parts[4] = {NULL, NULL, NULL, NULL};
    size_t n;
    if (strcmp(secret->mech, "PLAIN") == 0) {
        parts[0] = b64_encode((const unsigned char *)secret->password, secret->password_len);
        n = strlen(parts[0]) + 16;
    } else {
        parts[0] = b64_encode(secret->salt, secret->salt_len);
        parts[1] = b64_encode(secret->client_key, secret->key_len);
        parts[2] = b64_encode(secret->server_key, secret->key_len);
        n = strlen(parts[0]) + strlen(parts[1]) + strlen(parts[2]) + 64;
        if (secret->password_len > 0) {
            parts[3] = b64_encode((const unsigned char *)secret->password, secret->password_len);
            n += strlen(parts[3]) + 1;
        }
    }
    char *out = gw_malloc(n);
    if (!parts[1])
        snprintf(out, n, "v1\n%s\n%s\n", secret->mech, parts[0]);
    else
        snprintf(out, n, "v1\n%s\n%u\n%s\n%s\n%s\n%s%s", secret->mech, secret->iterations, parts[0],
                 parts[1], parts[2], parts[3] ? parts[3] : "", parts[3] ? "\n" : "");
    for (int i = 0; i < 4; i++) {
        if (parts[i]) {
            gw_memzero(parts[i], strlen(parts[i]));
            free(parts[i]);
        }
    }
    return out;
}

/* Decodes one base64 line into out (at most max bytes); returns its length or -1. */
static long line_b64(const char **p, const char *end, unsigned char *out, size_t max)
{
    const char *nl = memchr(*p, '\n', (size_t)(end - *p));
    size_t olen = 0;
    if (!nl || nl == *p ||
        mbedtls_base64_decode(out, max, &olen, (const unsigned char *)*p, (size_t)(nl - *p)) != 0)
        return -1;
    *p = nl + 1;
    return (long)olen;
}

int gw_sasl_secret_decode(const char *text, size_t len, struct gw_sasl_secret *out)
{
    memset(out, 0, sizeof *out);
    const char *p = text, *end = text + len, *nl;
    if (len < 3 || memcmp(p, "v1\n", 3) != 0)
        goto bad;
    p += 3;
    nl = memchr(p, '\n', (size_t)(end - p));
    if (!nl || (size_t)(nl - p) >= sizeof out->mech || memchr(p, '\0', (size_t)(nl - p)))
        goto bad;
    memcpy(out->mech, p, (size_t)(nl - p));
    p = nl + 1;
    long n;
    if (strcmp(out->mech, "PLAIN") == 0) {
        n = line_b64(&p, end, (unsigned char *)out->password, sizeof out->password - 1);
        if (n <= 0 || memchr(out->password, '\0', (size_t)n))
            goto bad;
        out->password_len = (size_t)n;
    } else if (strcmp(out->mech, "SCRAM-SHA-1") == 0 || strcmp(out->mech, "SCRAM-SHA-256") == 0) {
        char *e;
        unsigned long it = strtoul(p, &e, 10);
        if (e == p || *e != '\n' || it < GW_SASL_MIN_ITERATIONS || it > GW_SASL_MAX_ITERATIONS)
            goto bad;
        out->iterations = (unsigned)it;
        p = e + 1;
        size_t want = strcmp(out->mech, "SCRAM-SHA-1") == 0 ? 20 : 32;
        n = line_b64(&p, end, out->salt, sizeof out->salt);
        if (n <= 0)
            goto bad;
        out->salt_len = (size_t)n;
        if (line_b64(&p, end, out->client_key, sizeof out->client_key) != (long)want ||
            line_b64(&p, end, out->server_key, sizeof out->server_key) != (long)want)
            goto bad;
        out->key_len = want;
        if (p != end) { /* the kept password */
            n = line_b64(&p, end, (unsigned char *)out->password, sizeof out->password - 1);
            if (n <= 0 || memchr(out->password, '\0', (size_t)n))
                goto bad;
            out->password_len = (size_t)n;
        }
    } else {
        goto bad;
    }
    if (p != end)
        goto bad;
    return 0;
bad:
    gw_sasl_secret_wipe(out);
    return GW_EINVAL;
}
