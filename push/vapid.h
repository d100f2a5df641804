/* VAPID (RFC 8292): the application server's P-256 key and the ES256 JWTs that identify it to
 * Web Push services, one per push-service origin, reused until they near expiry. */
#ifndef GW_VAPID_H
#define GW_VAPID_H

#include <stddef.h>
#include <stdint.h>

struct gw_rand;
struct gw_vapid;

/* Loads a PEM P-256 private key (SEC 1 "EC PRIVATE KEY" or PKCS #8) from path. subject is the
 * JWT "sub" (mailto: or https:), lifetime_s the tokens' lifetime (at most 24 h). rand is
 * borrowed for the object's life. Returns 0 and an owned object, or GW_ECONFIG with the reason
 * in err. */
int gw_vapid_load(struct gw_rand *rand, const char *path, const char *subject, int64_t lifetime_s,
                  struct gw_vapid **out, char *err, size_t errlen);
void gw_vapid_free(struct gw_vapid *v);
/* The public key as unpadded base64url of its 65 uncompressed bytes (the applicationServerKey
 * a client subscribes with). Borrowed. */
const char *gw_vapid_public(const struct gw_vapid *v);
/* The Authorization header value "vapid t=<JWT>, k=<public key>" for audience (a push
 * service's origin, "https://host[:port]") at now_s (Unix seconds). A token is reused while
 * more than a quarter of its lifetime (at most an hour) remains. Returns a string borrowed until
 * the next call, or NULL if signing failed. */
const char *gw_vapid_header(struct gw_vapid *v, const char *audience, int64_t now_s);
/* Signs one JWT {"aud":audience,"exp":exp,"sub":subject} into out (NUL-terminated). Returns 0,
 * GW_ELIMIT (out too small) or GW_EIO. */
int gw_vapid_jwt(struct gw_vapid *v, const char *audience, int64_t exp, char *out, size_t outlen);

#endif
