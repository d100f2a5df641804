/* Names for the GW_E* error codes. */
#include "gateway/err.h"

const char *gw_strerror(int err)
{
    switch (err) {
    case GW_OK:
        return "ok";
    case GW_EINVAL:
        return "invalid input";
    case GW_ELIMIT:
        return "limit exceeded";
    case GW_EIO:
        return "i/o error";
    case GW_ETIMEDOUT:
        return "timed out";
    case GW_ECLOSED:
        return "closed";
    case GW_EPROTO:
        return "protocol error";
    case GW_ETLS:
        return "tls error";
    case GW_ENOTFOUND:
        return "not found";
    case GW_EUNAVAIL:
        return "unavailable";
    case GW_EAGAIN:
        return "try again";
    case GW_EEXIST:
        return "already exists";
    case GW_EAUTH:
        return "authentication failed";
    case GW_ECONFIG:
        return "configuration error";
    case GW_ESTALE:
        return "guard changed";
    default:
        return "unknown error";
    }
}
