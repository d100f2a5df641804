/* Tests for gateway/config.c: the example file documents every key with its default, and bad
 * input is reported with file, line and key. */
#include "tests/unit/check.h"
#include "gateway/config.h"
#include "gateway/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char example[512];
static char example_text[65536];

static void check_documented(void *arg, const char *key, const char *def)
{
    char line[640];
    snprintf(line, sizeof line, "\n%s = %s\n", key, def);
    if (!*def)
        snprintf(line, sizeof line, "\n%s =\n", key);
    CHECK(strstr(example_text, line) != NULL, "expected mxgw.conf.example to hold '%s = %s'", key,
          def);
}

static const char *write_tmp(const char *text)
{
    static char path[] = "/tmp/mxgw-test-config-XXXXXX";
    strcpy(path, "/tmp/mxgw-test-config-XXXXXX");
    int fd = mkstemp(path);
    FILE *fp = fdopen(fd, "w");
    fputs(text, fp);
    fclose(fp);
    return path;
}

struct bad_case {
    const char *text;
    const char *expect; /* substring of the error */
};

int main(void)
{
    const char *src = getenv("MXGW_SOURCE_DIR");
    snprintf(example, sizeof example, "%s/mxgw.conf.example", src ? src : ".");
    FILE *fp = fopen(example, "r");
    CHECK(fp != NULL, "expected to open %s", example);
    if (fp) {
        example_text[0] = '\n';
        size_t n = fread(example_text + 1, 1, sizeof example_text - 2, fp);
        example_text[n + 1] = '\0';
        fclose(fp);
    }

    /* The example loads and equals the defaults, and documents every key. */
    struct gw_config def, ex;
    char err[512] = "";
    gw_config_defaults(&def);
    int rc = gw_config_load(&ex, example, err, sizeof err);
    CHECK(rc == 0, "expected example to load, got %d: %s", rc, err);
    CHECK(memcmp(&def, &ex, sizeof def) == 0, "expected example values to equal the defaults");
    gw_config_each_key(check_documented, NULL);

    /* Defaults named by the architecture. */
    CHECK(def.ws_listen.port == 5290 && strcmp(def.ws_listen.host, "127.0.0.1") == 0,
          "expected ws 127.0.0.1:5290, got %s:%u", def.ws_listen.host, def.ws_listen.port);
    CHECK(def.upstream.port == 5222, "expected upstream port 5222, got %u", def.upstream.port);
    CHECK(def.limit_stanza_bytes == 262144, "expected 262144, got %zu", def.limit_stanza_bytes);
    CHECK(def.upstream_tls == GW_TLS_REQUIRED, "expected required TLS by default");
    CHECK(def.redis[0] == '\0', "expected in-process store by default");

    /* Good values of each type. */
    const char *good = "ws_listen = [::1]:7000\nupstream_tls = off\npreauth_timeout = 250ms\n"
                       "upstream_verify_cert = no\nlimit_queue_bytes = 65536\n"
                       "redis = redis://127.0.0.1:6380/2\nsession_ttl = 2h\n# comment\n\n";
    struct gw_config c;
    rc = gw_config_load(&c, write_tmp(good), err, sizeof err);
    CHECK(rc == 0, "expected good config to load, got %s", err);
    CHECK(strcmp(c.ws_listen.host, "::1") == 0 && c.ws_listen.port == 7000,
          "expected [::1]:7000, got %s:%u", c.ws_listen.host, c.ws_listen.port);
    CHECK(c.upstream_tls == GW_TLS_OFF, "expected tls off");
    CHECK(c.preauth_timeout_ms == 250, "expected 250 ms, got %llu",
          (unsigned long long)c.preauth_timeout_ms);
    CHECK(!c.upstream_verify_cert, "expected verify off");
    CHECK(c.limit_queue_bytes == 65536, "expected 65536, got %zu", c.limit_queue_bytes);
    CHECK(c.session_ttl_ms == 7200000, "expected 2h, got %llu",
          (unsigned long long)c.session_ttl_ms);

    static const struct bad_case bad[] = {
        {"log_level = info\nbogus = 1\n", ":2: key 'bogus': unknown key"},
        {"upstream_tls = maybe\n", ":1: key 'upstream_tls': expected off, starttls or required"},
        {"ws_listen = 127.0.0.1\n", ":1: key 'ws_listen': expected host:port"},
        {"ws_listen = 127.0.0.1:70000\n", ":1: key 'ws_listen': expected host:port"},
        {"preauth_timeout = 30\n", ":1: key 'preauth_timeout': expected a duration"},
        {"limit_stanza_bytes = 100\n", ":1: key 'limit_stanza_bytes': out of range"},
        {"limit_xml_depth = -1\n", ":1: key 'limit_xml_depth': expected a whole number"},
        {"limit_xml_depth = 12abc\n", ":1: key 'limit_xml_depth': expected a whole number"},
        {"upstream_verify_cert = maybe\n", ":1: key 'upstream_verify_cert': expected yes or no"},
        {"redis = http://x\n", ":1: key 'redis': expected redis://"},
        {"upstream_source = 127.0.0.2,nope\n", ":1: key 'upstream_source': expected comma-separ"},
        {"upstream_source = 127.0.0.2,\n", ":1: key 'upstream_source': expected comma-separ"},
        {"\n\nlog_level = loud\n", ":3: key 'log_level'"},
        {"log_level\n", ":1: expected 'key = value'"},
        {"log_level = info\nlog_level = warn\n", ":2: key 'log_level': set twice"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *path = write_tmp(bad[i].text);
        err[0] = '\0';
        rc = gw_config_load(&c, path, err, sizeof err);
        CHECK(rc == GW_ECONFIG, "case %zu: expected GW_ECONFIG, got %d", i, rc);
        CHECK(strncmp(err, path, strlen(path)) == 0 && strstr(err, bad[i].expect),
              "case %zu: expected '%s%s…', got '%s'", i, path, bad[i].expect, err);
        remove(path);
    }
    rc = gw_config_load(&c, "/nonexistent/mxgw.conf", err, sizeof err);
    CHECK(rc == GW_ECONFIG && strstr(err, "/nonexistent/mxgw.conf"),
          "expected missing file error naming it, got '%s'", err);

    return CHECK_DONE();
}
