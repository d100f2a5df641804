/* Wire forms of the benchmark's messages, built and recognised in one place: RFC 7395 / BOSH
 * stanzas and the JSON protocol (docs/json-protocol.md), with or without JID aliases.
 *
 * A chat body starts with "T" and 16 hex digits of the due time (ns, monotonic) and 8 of the
 * sequence number, padded to the configured body length; the receiver reads the due time back
 * to get the latency. */
#include "bench/bench.h"

#include <libwebsockets.h>
#include <stdio.h>
#include <string.h>

const char *msg_find(const char *hay, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    if (n == 0 || len < n)
        return NULL;
    const char *end = hay + len - n + 1;
    for (const char *p = hay; p < end; p++) {
        p = memchr(p, needle[0], (size_t)(end - p));
        if (!p)
            return NULL;
        if (memcmp(p, needle, n) == 0)
            return p;
    }
    return NULL;
}

static size_t fit(int n, size_t cap)
{
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

size_t msg_body(char *out, size_t cap, unsigned len, uint64_t due_ns, uint32_t seq)
{
    if (len < 26)
        len = 26;
    if (len + 1 > cap)
        return 0;
    snprintf(out, cap, "T%016llx%08x", (unsigned long long)due_ns, (unsigned)seq);
    static const char pad[] = "the quick brown fox jumps over the lazy dog ";
    for (unsigned i = 25; i < len; i++)
        out[i] = pad[(i - 25) % (sizeof pad - 1)];
    out[len] = '\0';
    return len;
}

size_t msg_xml_chat(char *out, size_t cap, const char *to, uint32_t seq, const char *body)
{
    return fit(snprintf(out, cap,
                        "<message xmlns='jabber:client' to='%s' type='chat' id='%08x'>"
                        "<body>%s</body></message>",
                        to, (unsigned)seq, body),
               cap);
}

size_t msg_json_chat(char *out, size_t cap, const char *to, uint32_t seq, const char *body)
{
    return fit(
        snprintf(out, cap, "{\"to\":\"%s\",\"id\":\"%08x\",\"b\":\"%s\"}", to, (unsigned)seq, body),
        cap);
}

size_t msg_json_chat_alias(char *out, size_t cap, int to, uint32_t seq, const char *body)
{
    return fit(
        snprintf(out, cap, "{\"to\":%d,\"id\":\"%08x\",\"b\":\"%s\"}", to, (unsigned)seq, body),
        cap);
}

size_t msg_json_alias(char *out, size_t cap, const char *jid)
{
    if (!jid)
        return fit(snprintf(out, cap, "{\"op\":\"alias\"}"), cap);
    return fit(snprintf(out, cap, "{\"op\":\"alias\",\"jid\":\"%s\"}", jid), cap);
}

int msg_json_alias_n(const char *text, size_t len)
{
    const char *p = msg_find(text, len, "\"n\":");
    if (!p)
        return -1;
    int n = 0, digits = 0;
    for (p += 4; p < text + len && *p >= '0' && *p <= '9' && digits < 9; p++, digits++)
        n = n * 10 + (*p - '0');
    return digits ? n : -1;
}

size_t msg_json_login(char *out, size_t cap, const char *jid, const char *password)
{
    return fit(snprintf(out, cap,
                        "{\"op\":\"login\",\"jid\":\"%s\",\"password\":\"%s\","
                        "\"resource\":\"bench\"}",
                        jid, password),
               cap);
}

size_t msg_json_ack(char *out, size_t cap, uint32_t h)
{
    return fit(snprintf(out, cap, "{\"op\":\"a\",\"h\":%u}", (unsigned)h), cap);
}

size_t msg_xml_open(char *out, size_t cap, const char *domain)
{
    return fit(snprintf(out, cap,
                        "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='%s' "
                        "version='1.0'/>",
                        domain),
               cap);
}

size_t msg_xml_auth_plain(char *out, size_t cap, const char *user, const char *password)
{
    char raw[256], b64[400];
    int n = snprintf(raw, sizeof raw, "%c%s%c%s", 0, user, 0, password);
    if (n <= 0 || (size_t)n >= sizeof raw)
        return 0;
    if (lws_b64_encode_string(raw, n, b64, sizeof b64) < 0)
        return 0;
    return fit(snprintf(out, cap,
                        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s"
                        "</auth>",
                        b64),
               cap);
}

size_t msg_xml_bind(char *out, size_t cap)
{
    return fit(snprintf(out, cap,
                        "<iq xmlns='jabber:client' type='set' id='bind1'>"
                        "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                        "<resource>bench</resource></bind></iq>"),
               cap);
}

unsigned msg_scan_xml(struct bench_sess *s, const char *text, size_t len)
{
    unsigned n = 0;
    const char *p = text, *end = text + len;
    while ((p = msg_find(p, (size_t)(end - p), "<body>T")) != NULL) {
        p += 6;
        bench_received(s, p, (size_t)(end - p));
        n++;
    }
    return n;
}

unsigned msg_scan_json(struct bench_sess *s, const char *text, size_t len)
{
    const char *p = msg_find(text, len, "\"b\":\"T");
    if (!p)
        return 0;
    p += 5;
    bench_received(s, p, (size_t)(text + len - p));
    return 1;
}

bool msg_find_jid(const char *text, size_t len, bool json, char *out, size_t cap)
{
    const char *open = json ? "\"jid\":\"" : "<jid>";
    const char *close = json ? "\"" : "</jid>";
    const char *p = msg_find(text, len, open);
    if (!p)
        return false;
    p += strlen(open);
    const char *e = msg_find(p, (size_t)(text + len - p), close);
    if (!e || (size_t)(e - p) >= cap)
        return false;
    memcpy(out, p, (size_t)(e - p));
    out[e - p] = '\0';
    return true;
}

size_t msg_ws_header(size_t len, bool masked)
{
    size_t h = len < 126 ? 2 : len < 65536 ? 4 : 10;
    return h + (masked ? 4 : 0);
}
