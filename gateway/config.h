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
    /* WebSocket permessage-deflate (RFC 7692): off unless enabled; the server's window and
     * memory level bound what compressing costs per connection */
    bool ws_deflate;
    unsigned ws_deflate_window_bits;
    unsigned ws_deflate_mem_level;
    unsigned ws_deflate_message_bits;
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
    /* JSON sessions: detach, resume, limits (web/json_*.c) */
    uint64_t json_detach_timeout_ms;
    size_t json_queue_stanzas;
    size_t json_queue_bytes;
    size_t json_unacked_stanzas;
    unsigned json_rate_bytes;
    unsigned json_rate_stanzas;
    uint64_t json_rate_burst_ms;
    uint64_t json_handover_timeout_ms;
    unsigned json_csi_max_held;
    unsigned json_auth_failures;
    bool json_reauth_password; /* seal the password with the SCRAM keys (plaintext-store servers) */
    /* HTTP listener and BOSH (web/http.c, web/bosh*.c) */
    struct gw_hostport http_listen;
    unsigned http_max_connections;
    unsigned http_max_connections_per_ip;
    unsigned http_connections_per_daemon; /* libmicrohttpd daemons hold at most this many */
    uint64_t http_connection_timeout_ms;
    size_t http_connection_memory;
    size_t http_body_bytes;
    char http_cors_origins[1024]; /* space- or comma-separated origins; empty: no CORS */
    char bosh_path[128];
    uint64_t bosh_max_wait_ms;
    uint64_t bosh_inactivity_ms;
    uint64_t bosh_max_pause_ms;
    uint64_t bosh_polling_ms;
    unsigned bosh_requests;
    unsigned bosh_hold;
    char bosh_route_allowlist[1024]; /* "xmpp:host:port" entries; empty: 'route' ignored */
    /* logging */
    enum gw_log_level log_level;
    char log_file[512];
    /* component link (XEP-0114): host[0] == '\0' when off */
    struct gw_hostport component;
    char component_domain[256]; /* empty: no component link */
    char component_secret[256];
    char component_secret_file[512];
    uint64_t component_timeout_ms;
    /* push (push/) */
    bool push;
    uint64_t push_quiet_window_ms;
    unsigned push_max_per_account;
    uint64_t push_registration_ttl_ms;
    bool push_include_sender;
    bool push_include_body;
    size_t push_body_max;
    bool push_on_body, push_on_encrypted, push_on_invite, push_on_call, push_on_mention;
    bool push_on_groupchat;
    unsigned push_queue_max;
    unsigned push_max_attempts;
    uint64_t push_retry_min_ms;
    uint64_t push_retry_max_ms;
    uint64_t push_retry_after_max_ms;
    uint64_t push_http_timeout_ms;
    unsigned push_max_inflight;
    char push_allowlist[1024]; /* hosts (host or host:port) exempt from https-only/public-only */
    char push_hosts[1024];     /* when set, the only endpoint hosts accepted */
    char push_ca_file[512];
    uint64_t push_ttl_ms;
    char push_vapid_key_file[512];
    char push_vapid_subject[256];
    uint64_t push_vapid_expiry_ms;
    char push_webhook_url[1024];
    char push_webhook_secret[256];
    char push_webhook_secret_file[512];
    /* REST API and the operations surface (web/rest*.c, web/ops.c) */
    bool rest;
    size_t rest_body_bytes;
    unsigned rest_rate_limit;          /* requests per key per window, across nodes */
    unsigned rest_rate_limit_fallback; /* per key per window in this process, store down */
    uint64_t rest_rate_window_ms;
    uint64_t rest_iq_timeout_ms;
    uint64_t rest_key_cache_ms; /* how long a verified key stays usable while the store is down */
    uint64_t rest_retry_after_ms;
    unsigned rest_muc_max_rooms;
    uint64_t rest_muc_join_timeout_ms;
    uint64_t ready_probe_interval_ms; /* upstream TCP probe; 0: no probe */
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
