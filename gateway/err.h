/* Error codes shared by every module: functions return 0 or a negative GW_E* value. */
#ifndef GW_ERR_H
#define GW_ERR_H

enum {
    GW_OK = 0,
    GW_EINVAL = -1,    /* bad argument or malformed input */
    GW_ELIMIT = -2,    /* a configured bound was crossed */
    GW_EIO = -3,       /* socket or file error */
    GW_ETIMEDOUT = -4, /* a deadline passed */
    GW_ECLOSED = -5,   /* the peer or object is closed */
    GW_EPROTO = -6,    /* the peer broke the protocol */
    GW_ETLS = -7,      /* TLS handshake or certificate failure */
    GW_ENOTFOUND = -8, /* no such key, session or name */
    GW_EUNAVAIL = -9,  /* a dependency (store, upstream) is unavailable */
    GW_EAGAIN = -10,   /* try again later; nothing was done */
    GW_EEXIST = -11,   /* already exists */
    GW_EAUTH = -12,    /* authentication failed */
    GW_ECONFIG = -13,  /* configuration error */
    GW_ESTALE = -14,   /* a guarded write found the guard changed (another owner) */
};

/* Returns a static, human-readable name for a GW_E* code. */
const char *gw_strerror(int err);

#endif
