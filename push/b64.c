/* base64url on mbedTLS's base64: the alphabet is translated and the padding dropped or put
 * back around the library's standard coder. */
#include "push/b64.h"

#include "gateway/err.h"
#include "gateway/mem.h"

#include <mbedtls/base64.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

size_t gw_b64url_encode(const void *in, size_t n, char *out, size_t outlen)
{
    size_t olen = 0;
    if (outlen < GW_B64URL_LEN(n) ||
        mbedtls_base64_encode((unsigned char *)out, outlen, &olen, in, n) != 0) {
        if (outlen)
            out[0] = '\0';
        return 0;
    }
    while (olen > 0 && out[olen - 1] == '=')
        olen--;
    out[olen] = '\0';
    for (size_t i = 0; i < olen; i++)
        out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
    return olen;
}

int gw_b64url_decode(const char *in, size_t n, uint8_t *out, size_t cap, size_t *outlen)
{
    while (n > 0 && in[n - 1] == '=')
        n--;
    if (n % 4 == 1 || n > 65536)
        return GW_EINVAL;
    char *std = gw_malloc(n + 4);
    for (size_t i = 0; i < n; i++) {
        char ch = in[i];
        bool alnum =
            (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
        /* Anything outside the alphabet (whitespace included, which mbedTLS would skip)
         * becomes a character the decoder refuses. */
        std[i] = alnum ? ch : ch == '-' ? '+' : ch == '_' ? '/' : '!';
    }
    size_t m = n;
    while (m % 4)
        std[m++] = '=';
    size_t olen = 0;
    int rc = mbedtls_base64_decode(out, cap, &olen, (unsigned char *)std, m);
    free(std);
    if (rc == MBEDTLS_ERR_BASE64_BUFFER_TOO_SMALL)
        return GW_ELIMIT;
    if (rc != 0)
        return GW_EINVAL;
    *outlen = olen;
    return 0;
}
