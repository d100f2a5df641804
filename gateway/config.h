/* Configuration: a "key = value" file read through one table of typed keys. */
#ifndef GW_CONFIG_H
#define GW_CONFIG_H

#include "gateway/log.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum gw_tls_mode { GW_TLS_OFF, GW_TLS_STARTTLS, GW_TLS_REQUIRED };

struct gw_hostport {
    char host[256];
    uint16_t port;
};

struct gw_config {
    /* listeners */
    struct gw_hostport ws_listen;
    char ws_path[128];
    /* upstream XMPP server */
    struct gw_hostport upstream;
    enum gw_tls_mode upstream_tls;
    char upstream_ca_file[512];
    bool upstream_verify_cert;
    bool upstream_verify_hostname;
    uint64_t upstream_connect_timeout_ms;
    char upstream_source[256]; /* local addresses upstream sockets bind to, in turn; empty: any */
    /* store */
    char redis[512]; /* empty: in-process store */
    uint64_t redis_timeout_ms;
    char node_id[64]; /* empty: generated at start */
    uint64_t session_ttl_ms;
    /* limits */
    size_t limit_stanza_bytes;
    unsigned limit_xml_depth;
    unsigned limit_xml_attrs;
    size_t limit_queue_bytes;
    unsigned limit_sessions_per_ip;
    unsigned limit_sessions;
    uint64_t preauth_timeout_ms;
    uint64_t shutdown_timeout_ms;
    /* logging */
    enum gw_log_level log_level;
    char log_file[512];
};

/* Fills cfg with every key's documented default. */
void gw_config_defaults(struct gw_config *cfg);

/* Reads path into cfg (defaults first). On error returns GW_ECONFIG and writes
 * "FILE:LINE: key 'K': reason" into err. */
int gw_config_load(struct gw_config *cfg, const char *path, char *err, size_t errlen);

/* Applies one "key = value" line's parts; used by the loader and by tests. Returns 0 or
 * GW_ECONFIG with the reason in err. */
int gw_config_set(struct gw_config *cfg, const char *key, const char *value, char *err,
                  size_t errlen);

/* Calls fn for every key in table order with its default value text. */
void gw_config_each_key(void (*fn)(void *arg, const char *key, const char *def), void *arg);

#endif
