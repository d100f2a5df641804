/* Fuzz target for the Retry-After parser (delta-seconds or an HTTP-date): any input gives an
 * error or a delay that is never negative. */
#include "gateway/err.h"
#include "push/http.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int64_t d = -1;
    int rc = gw_http_retry_after((const char *)data, size, 1700000000, &d);
    if ((rc != 0 && rc != GW_EINVAL) || (rc == 0 && d < 0))
        abort();
    return 0;
}
