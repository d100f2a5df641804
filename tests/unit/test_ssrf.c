/* Tests for push/ssrf.c: the address classifier over a table of IPv4 and IPv6 addresses
 * (special-purpose ranges, their edges, and IPv4 addresses hidden in IPv6 forms), and the
 * operator's host lists (exact, with port, wildcard subdomains, bad entries). */
#include "tests/unit/check.h"
#include "gateway/err.h"
#include "push/ssrf.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

struct addr_case {
    const char *addr;
    enum gw_addr_class want;
};

static const struct addr_case addrs[] = {
    /* IPv4 */
    {"8.8.8.8", GW_ADDR_PUBLIC},
    {"1.1.1.1", GW_ADDR_PUBLIC},
    {"0.0.0.0", GW_ADDR_RESERVED},
    {"0.255.255.255", GW_ADDR_RESERVED},
    {"10.0.0.1", GW_ADDR_PRIVATE},
    {"10.255.255.255", GW_ADDR_PRIVATE},
    {"11.0.0.0", GW_ADDR_PUBLIC},
    {"100.63.255.255", GW_ADDR_PUBLIC},
    {"100.64.0.0", GW_ADDR_PRIVATE},
    {"100.127.255.255", GW_ADDR_PRIVATE},
    {"100.128.0.0", GW_ADDR_PUBLIC},
    {"127.0.0.1", GW_ADDR_LOOPBACK},
    {"127.255.255.254", GW_ADDR_LOOPBACK},
    {"169.254.169.254", GW_ADDR_LINKLOCAL},
    {"172.15.255.255", GW_ADDR_PUBLIC},
    {"172.16.0.0", GW_ADDR_PRIVATE},
    {"172.31.255.255", GW_ADDR_PRIVATE},
    {"172.32.0.0", GW_ADDR_PUBLIC},
    {"192.0.0.8", GW_ADDR_RESERVED},
    {"192.0.2.1", GW_ADDR_RESERVED},
    {"192.88.99.1", GW_ADDR_RESERVED},
    {"192.168.1.1", GW_ADDR_PRIVATE},
    {"192.169.0.0", GW_ADDR_PUBLIC},
    {"198.18.0.1", GW_ADDR_RESERVED},
    {"198.19.255.255", GW_ADDR_RESERVED},
    {"198.20.0.0", GW_ADDR_PUBLIC},
    {"198.51.100.7", GW_ADDR_RESERVED},
    {"203.0.113.9", GW_ADDR_RESERVED},
    {"224.0.0.1", GW_ADDR_RESERVED},
    {"239.255.255.250", GW_ADDR_RESERVED},
    {"240.0.0.1", GW_ADDR_RESERVED},
    {"255.255.255.255", GW_ADDR_RESERVED},
    {"223.255.255.255", GW_ADDR_PUBLIC},
    /* IPv6 */
    {"2606:4700:4700::1111", GW_ADDR_PUBLIC},
    {"2a00:1450:4001:82b::200e", GW_ADDR_PUBLIC},
    {"::1", GW_ADDR_LOOPBACK},
    {"::", GW_ADDR_RESERVED},
    {"fe80::1", GW_ADDR_LINKLOCAL},
    {"febf:ffff::1", GW_ADDR_LINKLOCAL},
    {"fec0::1", GW_ADDR_PRIVATE},
    {"fc00::1", GW_ADDR_PRIVATE},
    {"fd12:3456:789a::1", GW_ADDR_PRIVATE},
    {"ff02::1", GW_ADDR_RESERVED},
    {"2001:db8::1", GW_ADDR_RESERVED},
    {"2001::1", GW_ADDR_RESERVED},
    {"100::1", GW_ADDR_RESERVED},
    {"3fff:ffff::1", GW_ADDR_PUBLIC},
    {"4000::1", GW_ADDR_RESERVED},
    /* IPv4 inside IPv6 */
    {"::ffff:127.0.0.1", GW_ADDR_LOOPBACK},
    {"::ffff:10.1.2.3", GW_ADDR_PRIVATE},
    {"::ffff:8.8.8.8", GW_ADDR_PUBLIC},
    {"::ffff:169.254.169.254", GW_ADDR_LINKLOCAL},
    {"::127.0.0.1", GW_ADDR_LOOPBACK},
    {"64:ff9b::a00:1", GW_ADDR_PRIVATE},
    {"64:ff9b::808:808", GW_ADDR_PUBLIC},
    {"2002:c0a8:0101::1", GW_ADDR_PRIVATE},
    {"2002:0808:0808::1", GW_ADDR_PUBLIC},
    {"2002:7f00:0001::1", GW_ADDR_LOOPBACK},
};

static void test_addresses(void)
{
    for (size_t i = 0; i < sizeof addrs / sizeof addrs[0]; i++) {
        const struct addr_case *c = &addrs[i];
        struct sockaddr_storage ss;
        memset(&ss, 0, sizeof ss);
        if (strchr(c->addr, ':')) {
            struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
            s6->sin6_family = AF_INET6;
            CHECK(inet_pton(AF_INET6, c->addr, &s6->sin6_addr) == 1, "bad test address %s",
                  c->addr);
        } else {
            struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
            s4->sin_family = AF_INET;
            CHECK(inet_pton(AF_INET, c->addr, &s4->sin_addr) == 1, "bad test address %s", c->addr);
        }
        enum gw_addr_class got = gw_addr_classify((struct sockaddr *)&ss);
        CHECK(got == c->want, "%s: expected %s, got %s", c->addr, gw_addr_class_name(c->want),
              gw_addr_class_name(got));
        enum gw_addr_class text;
        char bracketed[80];
        snprintf(bracketed, sizeof bracketed, strchr(c->addr, ':') ? "[%s]" : "%s", c->addr);
        CHECK(gw_addr_classify_text(bracketed, &text) && text == c->want, "%s as text: expected %s",
              bracketed, gw_addr_class_name(c->want));
    }
    enum gw_addr_class x;
    const char *names[] = {"localhost", "example.com", "1.2.3", "[::1", "0x7f000001", ""};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        CHECK(!gw_addr_classify_text(names[i], &x), "'%s': expected not an IP address", names[i]);
    struct sockaddr unix_sa = {.sa_family = AF_UNIX};
    CHECK(gw_addr_classify(&unix_sa) == GW_ADDR_RESERVED, "AF_UNIX: expected reserved");
}

struct list_case {
    const char *host;
    unsigned port;
    bool want;
};

static void test_hostlists(void)
{
    struct gw_hostlist *l = NULL;
    char err[128];
    CHECK(gw_hostlist_parse("push.example.com  localhost:8443,*.corp.example [::1]:9000 10.0.0.5",
                            &l, err, sizeof err) == 0,
          "parse: %s", err);
    const struct list_case cases[] = {
        {"push.example.com", 443, true},
        {"PUSH.Example.COM", 8080, true},
        {"example.com", 443, false},
        {"localhost", 8443, true},
        {"localhost", 443, false},
        {"a.corp.example", 443, true},
        {"a.b.corp.example", 1, true},
        {"corp.example", 443, false},
        {"evilcorp.example", 443, false},
        {"::1", 9000, true},
        {"::1", 9001, false},
        {"10.0.0.5", 80, true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        CHECK(gw_hostlist_match(l, cases[i].host, cases[i].port) == cases[i].want,
              "%s:%u: expected %s", cases[i].host, cases[i].port,
              cases[i].want ? "a match" : "no match");
    gw_hostlist_free(l);

    CHECK(gw_hostlist_parse("", &l, err, sizeof err) == 0 && gw_hostlist_empty(l) &&
              !gw_hostlist_match(l, "localhost", 1),
          "an empty list matches nothing");
    gw_hostlist_free(l);
    const char *bad[] = {"host:0", "host:99999", "host:x", "[::1", "[::1]x", ":443"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        l = NULL;
        CHECK(gw_hostlist_parse(bad[i], &l, err, sizeof err) == GW_ECONFIG && !l,
              "'%s': expected GW_ECONFIG", bad[i]);
    }
}

int main(void)
{
    test_addresses();
    test_hostlists();
    return CHECK_DONE();
}
