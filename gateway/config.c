/* Configuration loading: one table names every key, its type, its default and its bounds, so the
 * parser, the defaults and the documentation check all read the same source. */
#include "gateway/config.h"

#include "gateway/err.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum key_type {
    T_STR,
    T_HOSTPORT,
    T_BOOL,
    T_UINT,
    T_SIZE,
    T_DURATION,
    T_TLS,
    T_LOGLEVEL,
    T_URL,
    T_OPT_HOSTPORT, /* host:port, or empty / "off" */
    T_ADDRS,
};

struct key {
    const char *name;
    enum key_type type;
    size_t offset;
    size_t size; /* of the field: string capacity or integer width */
    const char *def;
    uint64_t min, max; /* numeric bounds (durations in ms) */
};

#define F(field) offsetof(struct gw_config, field), sizeof(((struct gw_config *)0)->field)
#define NOLIM    0, UINT64_MAX

static const struct key keys[] = {
    {"ws_listen", T_HOSTPORT, F(ws_listen), "127.0.0.1:5290", NOLIM},
    {"ws_path", T_STR, F(ws_path), "/xmpp-websocket", NOLIM},
    {"ws_deflate", T_BOOL, F(ws_deflate), "no", NOLIM},
    {"ws_deflate_window_bits", T_UINT, F(ws_deflate_window_bits), "10", 9, 15},
    {"ws_deflate_mem_level", T_UINT, F(ws_deflate_mem_level), "1", 1, 9},
    {"ws_deflate_message_bits", T_UINT, F(ws_deflate_message_bits), "14", 10, 18},
    {"upstream", T_HOSTPORT, F(upstream), "127.0.0.1:5222", NOLIM},
    {"upstream_tls", T_TLS, F(upstream_tls), "required", NOLIM},
    {"upstream_ca_file", T_STR, F(upstream_ca_file), "/etc/ssl/certs/ca-certificates.crt", NOLIM},
    {"upstream_verify_cert", T_BOOL, F(upstream_verify_cert), "yes", NOLIM},
    {"upstream_verify_hostname", T_BOOL, F(upstream_verify_hostname), "yes", NOLIM},
    {"upstream_connect_timeout", T_DURATION, F(upstream_connect_timeout_ms), "10s", 100, 600000},
    {"upstream_source", T_ADDRS, F(upstream_source), "", NOLIM},
    {"redis", T_URL, F(redis), "", NOLIM},
    {"redis_timeout", T_DURATION, F(redis_timeout_ms), "1s", 10, 60000},
    {"node_id", T_STR, F(node_id), "", NOLIM},
    {"session_ttl", T_DURATION, F(session_ttl_ms), "5m", 1000, 86400000},
    {"limit_stanza_bytes", T_SIZE, F(limit_stanza_bytes), "262144", 10000, 16777216},
    {"limit_xml_depth", T_UINT, F(limit_xml_depth), "64", 4, 1024},
    {"limit_xml_attrs", T_UINT, F(limit_xml_attrs), "64", 8, 4096},
    {"limit_queue_bytes", T_SIZE, F(limit_queue_bytes), "1048576", 20000, 1073741824},
    {"limit_sessions_per_ip", T_UINT, F(limit_sessions_per_ip), "100", 1, 10000000},
    {"limit_sessions", T_UINT, F(limit_sessions), "100000", 1, 10000000},
    {"preauth_timeout", T_DURATION, F(preauth_timeout_ms), "30s", 100, 3600000},
    {"shutdown_timeout", T_DURATION, F(shutdown_timeout_ms), "5s", 0, 600000},
    /* JSON sessions */
    {"json_detach_timeout", T_DURATION, F(json_detach_timeout_ms), "5m", 1000, 86400000},
    {"json_queue_stanzas", T_SIZE, F(json_queue_stanzas), "500", 1, 100000},
    {"json_queue_bytes", T_SIZE, F(json_queue_bytes), "1048576", 10000, 67108864},
    {"json_unacked_stanzas", T_SIZE, F(json_unacked_stanzas), "200", 8, 100000},
    {"json_rate_bytes", T_UINT, F(json_rate_bytes), "20000", 0, 1000000000},
    {"json_rate_stanzas", T_UINT, F(json_rate_stanzas), "50", 0, 1000000},
    {"json_rate_burst", T_DURATION, F(json_rate_burst_ms), "5s", 100, 3600000},
    {"json_handover_timeout", T_DURATION, F(json_handover_timeout_ms), "3s", 100, 60000},
    {"json_csi_max_held", T_UINT, F(json_csi_max_held), "100", 1, 10000},
    {"json_auth_failures", T_UINT, F(json_auth_failures), "3", 1, 100},
    {"json_reauth_password", T_BOOL, F(json_reauth_password), "yes", NOLIM},
    {"http_listen", T_HOSTPORT, F(http_listen), "127.0.0.1:5280", NOLIM},
    {"http_max_connections", T_UINT, F(http_max_connections), "1024", 1, 1000000},
    {"http_max_connections_per_ip", T_UINT, F(http_max_connections_per_ip), "128", 1, 1000000},
    {"http_connections_per_daemon", T_UINT, F(http_connections_per_daemon), "128", 1, 65536},
    {"http_connection_timeout", T_DURATION, F(http_connection_timeout_ms), "30s", 1000, 3600000},
    {"http_connection_memory", T_SIZE, F(http_connection_memory), "16384", 4096, 32768},
    {"http_body_bytes", T_SIZE, F(http_body_bytes), "1048576", 1024, 16777216},
    {"http_cors_origins", T_STR, F(http_cors_origins), "", NOLIM},
    {"bosh_path", T_STR, F(bosh_path), "/http-bind", NOLIM},
    {"bosh_max_wait", T_DURATION, F(bosh_max_wait_ms), "60s", 1000, 300000},
    {"bosh_inactivity", T_DURATION, F(bosh_inactivity_ms), "60s", 1000, 3600000},
    {"bosh_max_pause", T_DURATION, F(bosh_max_pause_ms), "120s", 0, 3600000},
    {"bosh_polling", T_DURATION, F(bosh_polling_ms), "2s", 0, 60000},
    {"bosh_requests", T_UINT, F(bosh_requests), "2", 1, 16},
    {"bosh_hold", T_UINT, F(bosh_hold), "1", 1, 8},
    {"bosh_route_allowlist", T_STR, F(bosh_route_allowlist), "", NOLIM},
    {"log_level", T_LOGLEVEL, F(log_level), "info", NOLIM},
    {"log_file", T_STR, F(log_file), "-", NOLIM},
    /* component link (XEP-0114) and push */
    {"component", T_OPT_HOSTPORT, F(component), "127.0.0.1:5347", NOLIM},
    {"component_domain", T_STR, F(component_domain), "", NOLIM},
    {"component_secret", T_STR, F(component_secret), "", NOLIM},
    {"component_secret_file", T_STR, F(component_secret_file), "", NOLIM},
    {"component_timeout", T_DURATION, F(component_timeout_ms), "10s", 100, 600000},
    {"push", T_BOOL, F(push), "yes", NOLIM},
    {"push_quiet_window", T_DURATION, F(push_quiet_window_ms), "30s", 0, 3600000},
    {"push_max_per_account", T_UINT, F(push_max_per_account), "5", 1, 100},
    {"push_registration_ttl", T_DURATION, F(push_registration_ttl_ms), "720h", 60000, 31622400000},
    {"push_include_sender", T_BOOL, F(push_include_sender), "no", NOLIM},
    {"push_include_body", T_BOOL, F(push_include_body), "no", NOLIM},
    {"push_body_max", T_SIZE, F(push_body_max), "256", 16, 2048},
    {"push_on_body", T_BOOL, F(push_on_body), "yes", NOLIM},
    {"push_on_encrypted", T_BOOL, F(push_on_encrypted), "yes", NOLIM},
    {"push_on_invite", T_BOOL, F(push_on_invite), "yes", NOLIM},
    {"push_on_call", T_BOOL, F(push_on_call), "yes", NOLIM},
    {"push_on_mention", T_BOOL, F(push_on_mention), "yes", NOLIM},
    {"push_on_groupchat", T_BOOL, F(push_on_groupchat), "yes", NOLIM},
    {"push_queue_max", T_UINT, F(push_queue_max), "100000", 1, 100000000},
    {"push_max_attempts", T_UINT, F(push_max_attempts), "8", 1, 100},
    {"push_retry_min", T_DURATION, F(push_retry_min_ms), "1s", 10, 3600000},
    {"push_retry_max", T_DURATION, F(push_retry_max_ms), "10m", 10, 86400000},
    {"push_retry_after_max", T_DURATION, F(push_retry_after_max_ms), "1h", 1000, 86400000},
    {"push_http_timeout", T_DURATION, F(push_http_timeout_ms), "10s", 100, 300000},
    {"push_max_inflight", T_UINT, F(push_max_inflight), "64", 1, 10000},
    {"push_allowlist", T_STR, F(push_allowlist), "", NOLIM},
    {"push_hosts", T_STR, F(push_hosts), "", NOLIM},
    {"push_ca_file", T_STR, F(push_ca_file), "", NOLIM},
    {"push_ttl", T_DURATION, F(push_ttl_ms), "24h", 0, 2419200000},
    {"push_vapid_key_file", T_STR, F(push_vapid_key_file), "", NOLIM},
    {"push_vapid_subject", T_STR, F(push_vapid_subject), "", NOLIM},
    {"push_vapid_expiry", T_DURATION, F(push_vapid_expiry_ms), "12h", 600000, 86400000},
    {"push_webhook_url", T_STR, F(push_webhook_url), "", NOLIM},
    {"push_webhook_secret", T_STR, F(push_webhook_secret), "", NOLIM},
    {"push_webhook_secret_file", T_STR, F(push_webhook_secret_file), "", NOLIM},
    /* REST API and operations */
    {"rest", T_BOOL, F(rest), "yes", NOLIM},
    {"rest_body_bytes", T_SIZE, F(rest_body_bytes), "65536", 1024, 16777216},
    {"rest_rate_limit", T_UINT, F(rest_rate_limit), "600", 1, 100000000},
    {"rest_rate_limit_fallback", T_UINT, F(rest_rate_limit_fallback), "60", 1, 100000000},
    {"rest_rate_window", T_DURATION, F(rest_rate_window_ms), "60s", 1000, 86400000},
    {"rest_iq_timeout", T_DURATION, F(rest_iq_timeout_ms), "10s", 100, 120000},
    {"rest_key_cache", T_DURATION, F(rest_key_cache_ms), "60s", 0, 60000},
    {"rest_retry_after", T_DURATION, F(rest_retry_after_ms), "5s", 1000, 3600000},
    {"rest_muc_max_rooms", T_UINT, F(rest_muc_max_rooms), "100", 1, 100000},
    {"rest_muc_join_timeout", T_DURATION, F(rest_muc_join_timeout_ms), "10s", 100, 120000},
    {"ready_probe_interval", T_DURATION, F(ready_probe_interval_ms), "10s", 0, 3600000},
};

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return GW_ECONFIG;
}

static int parse_u64(const char *s, uint64_t *out, const char **rest)
{
    if (!isdigit((unsigned char)*s))
        return GW_EINVAL;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return GW_EINVAL;
    *out = v;
    *rest = end;
    return 0;
}

static int parse_duration(const char *s, uint64_t *ms)
{
    uint64_t v;
    const char *unit;
    if (parse_u64(s, &v, &unit))
        return GW_EINVAL;
    uint64_t mul;
    if (strcmp(unit, "ms") == 0)
        mul = 1;
    else if (strcmp(unit, "s") == 0)
        mul = 1000;
    else if (strcmp(unit, "m") == 0)
        mul = 60000;
    else if (strcmp(unit, "h") == 0)
        mul = 3600000;
    else
        return GW_EINVAL;
    if (v > UINT64_MAX / mul)
        return GW_EINVAL;
    *ms = v * mul;
    return 0;
}

static int parse_hostport(const char *s, struct gw_hostport *hp)
{
    const char *colon = strrchr(s, ':');
    const char *host = s;
    size_t hlen;
    if (!colon)
        return GW_EINVAL;
    if (*s == '[') { /* [v6]:port */
        const char *close = strchr(s, ']');
        if (!close || close + 1 != colon)
            return GW_EINVAL;
        host = s + 1;
        hlen = (size_t)(close - host);
    } else {
        hlen = (size_t)(colon - s);
    }
    uint64_t port;
    const char *rest;
    if (hlen == 0 || hlen >= sizeof hp->host || parse_u64(colon + 1, &port, &rest) || *rest ||
        port == 0 || port > 65535)
        return GW_EINVAL;
    memcpy(hp->host, host, hlen);
    hp->host[hlen] = '\0';
    hp->port = (uint16_t)port;
    return 0;
}

static int parse_bool(const char *s, bool *b)
{
    static const char *const yes[] = {"yes", "true", "on", "1"};
    static const char *const no[] = {"no", "false", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcmp(s, yes[i]) == 0) {
            *b = true;
            return 0;
        }
        if (strcmp(s, no[i]) == 0) {
            *b = false;
            return 0;
        }
    }
    return GW_EINVAL;
}

/* A comma-separated list of numeric IPv4/IPv6 addresses (spaces allowed after commas). */
static bool addr_list_ok(const char *s)
{
    unsigned char buf[sizeof(struct in6_addr)];
    char item[64];
    while (*s) {
        while (*s == ' ')
            s++;
        size_t n = strcspn(s, ",");
        if (n == 0 || n >= sizeof item)
            return false;
        memcpy(item, s, n);
        item[n] = '\0';
        if (inet_pton(AF_INET, item, buf) != 1 && inet_pton(AF_INET6, item, buf) != 1)
            return false;
        s += n;
        if (*s == ',' && *++s == '\0')
            return false;
    }
    return true;
}

static int apply(struct gw_config *cfg, const struct key *k, const char *v, char *err,
                 size_t errlen)
{
    void *field = (char *)cfg + k->offset;
    uint64_t n = 0;
    const char *rest;
    switch (k->type) {
    case T_ADDRS:
        if (!addr_list_ok(v))
            return fail(err, errlen, "expected comma-separated IP addresses");
        /* fall through */
    case T_URL:
        if (k->type == T_URL && *v && strncmp(v, "redis://", 8) != 0)
            return fail(err, errlen, "expected redis://host:port/db");
        /* fall through */
    case T_STR:
        if (strlen(v) >= k->size)
            return fail(err, errlen, "value longer than %zu bytes", k->size - 1);
        memcpy(field, v, strlen(v) + 1);
        return 0;
    case T_OPT_HOSTPORT:
        if (*v == '\0' || strcmp(v, "off") == 0) {
            memset(field, 0, sizeof(struct gw_hostport));
            return 0;
        }
        /* fall through */
    case T_HOSTPORT:
        if (parse_hostport(v, field))
            return fail(err, errlen, "expected host:port");
        return 0;
    case T_BOOL:
        if (parse_bool(v, field))
            return fail(err, errlen, "expected yes or no");
        return 0;
    case T_TLS:
        if (strcmp(v, "off") == 0)
            *(enum gw_tls_mode *)field = GW_TLS_OFF;
        else if (strcmp(v, "starttls") == 0)
            *(enum gw_tls_mode *)field = GW_TLS_STARTTLS;
        else if (strcmp(v, "required") == 0)
            *(enum gw_tls_mode *)field = GW_TLS_REQUIRED;
        else
            return fail(err, errlen, "expected off, starttls or required");
        return 0;
    case T_LOGLEVEL:
        if (gw_log_level_parse(v, field))
            return fail(err, errlen, "expected debug, info, warn, error or off");
        return 0;
    case T_DURATION:
        if (parse_duration(v, &n))
            return fail(err, errlen, "expected a duration such as 500ms, 30s, 5m or 1h");
        break;
    case T_UINT:
    case T_SIZE:
        if (parse_u64(v, &n, &rest) || *rest)
            return fail(err, errlen, "expected a whole number");
        break;
    }
    if (n < k->min || n > k->max)
        return fail(err, errlen, "out of range [%llu, %llu]", (unsigned long long)k->min,
                    (unsigned long long)k->max);
    if (k->size == sizeof(uint64_t))
        *(uint64_t *)field = n;
    else if (k->size == sizeof(unsigned))
        *(unsigned *)field = (unsigned)n;
    else
        return fail(err, errlen, "internal: bad field width");
    return 0;
}

static const struct key *find(const char *name)
{
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (strcmp(keys[i].name, name) == 0)
            return &keys[i];
    return NULL;
}

int gw_config_set(struct gw_config *cfg, const char *key, const char *value, char *err,
                  size_t errlen)
{
    const struct key *k = find(key);
    if (!k)
        return fail(err, errlen, "unknown key");
    return apply(cfg, k, value, err, errlen);
}

void gw_config_defaults(struct gw_config *cfg)
{
    char err[128];
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (apply(cfg, &keys[i], keys[i].def, err, sizeof err) != 0)
            abort(); /* a bad default is a programming error caught by the unit test */
}

void gw_config_each_key(void (*fn)(void *arg, const char *key, const char *def), void *arg)
{
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        fn(arg, keys[i].name, keys[i].def);
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

int gw_config_load(struct gw_config *cfg, const char *path, char *err, size_t errlen)
{
    gw_config_defaults(cfg);
    FILE *fp = fopen(path, "r");
    if (!fp) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return GW_ECONFIG;
    }
    char line[1024], why[256];
    unsigned lineno = 0;
    int rc = 0;
    bool seen[sizeof keys / sizeof keys[0]] = {false};
    while (fgets(line, sizeof line, fp)) {
        lineno++;
        if (!strchr(line, '\n') && !feof(fp)) {
            snprintf(err, errlen, "%s:%u: line longer than %zu bytes", path, lineno,
                     sizeof line - 2);
            rc = GW_ECONFIG;
            break;
        }
        char *s = trim(line);
        if (*s == '\0' || *s == '#')
            continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            snprintf(err, errlen, "%s:%u: expected 'key = value'", path, lineno);
            rc = GW_ECONFIG;
            break;
        }
        *eq = '\0';
        char *key = trim(s), *value = trim(eq + 1);
        const struct key *k = find(key);
        if (!k) {
            snprintf(err, errlen, "%s:%u: key '%.64s': unknown key", path, lineno, key);
            rc = GW_ECONFIG;
            break;
        }
        if (seen[k - keys]) {
            snprintf(err, errlen, "%s:%u: key '%s': set twice", path, lineno, key);
            rc = GW_ECONFIG;
            break;
        }
        seen[k - keys] = true;
        if (apply(cfg, k, value, why, sizeof why) != 0) {
            snprintf(err, errlen, "%s:%u: key '%s': %s", path, lineno, key, why);
            rc = GW_ECONFIG;
            break;
        }
    }
    fclose(fp);
    return rc;
}
