/* base64url (RFC 4648 §5) without padding: Web Push keys, VAPID keys and JWT parts. */
#ifndef GW_B64_H
#define GW_B64_H

#include <stddef.h>
#include <stdint.h>

/* Space gw_b64url_encode needs for n bytes, NUL included. */
#define GW_B64URL_LEN(n) (((n) + 2) / 3 * 4 + 1)

/* Writes n bytes as unpadded base64url into out (NUL-terminated). Returns the text length, or
 * 0 with out empty when outlen is below GW_B64URL_LEN(n). */
size_t gw_b64url_encode(const void *in, size_t n, char *out, size_t outlen);
/* Decodes base64url (trailing '=' padding accepted, anything else outside the alphabet
 * refused) into out. Returns 0 and the byte count in *outlen, GW_EINVAL for bad text, or
 * GW_ELIMIT when cap is too small. */
int gw_b64url_decode(const char *in, size_t n, uint8_t *out, size_t cap, size_t *outlen);

#endif
