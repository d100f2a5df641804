/* mxgw-bench: the load driver. One process, one libuv loop, N sessions over one transport.
 *
 * Phases, in order, each measured on its own:
 *   1. login: a few warm-up sessions, a baseline of every watched process (/proc), then the
 *      other sessions with a bounded number of logins in flight; time to log them all in;
 *   2. idle: after a settling pause, resident memory of each watched process over the
 *      baseline, divided by the sessions added;
 *   3. saturation (optional): pairs of sessions exchange messages in a closed loop, each
 *      sender keeping a window of messages in flight: delivered messages per second;
 *   4. fixed rate (optional): the same pairs at an offered rate in an OPEN loop: a 1 ms clock
 *      queues each message at its due time whatever the replies do, and latency runs from
 *      that due time to delivery. CPU time of every watched process over the phase (until
 *      the last message is delivered) is divided by the messages delivered.
 * The driver's own CPU is measured the same way, to show it is not the bottleneck. The last
 * line of output is "RESULT {json}" for bench/run. The password comes from BENCH_PASSWORD. */
#include "bench/bench.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define MAX_PIDS    4
#define MAX_SOURCES 32
#define DRAIN_NS    (30ULL * 1000000000ULL) /* at most, waiting for the last deliveries */

struct watched {
    const char *name;
    int pid; /* 0: the driver itself */
};

struct sample {
    uint64_t cpu_ns[MAX_PIDS + 1];   /* schedstat: on-CPU time, ns */
    uint64_t ticks_ns[MAX_PIDS + 1]; /* utime + stime, converted to ns */
    uint64_t rss_kib[MAX_PIDS + 1];
    uint64_t at_ns;
};

enum phase { PH_WARM, PH_LOGIN, PH_SETTLE, PH_SAT, PH_SAT_DRAIN, PH_FLOW, PH_FLOW_DRAIN, PH_DONE };

struct opts {
    unsigned n, concurrency, pairs, window;
    double saturate_s, rate, rate_fraction, duration_s, settle_s, hold_s;
};

static struct bench B;
static struct opts O = {1000, 200, 100, 16, 0, 0, 0, 0, 3, 0};
static struct watched W[MAX_PIDS + 1];
static unsigned nw;
static const char *sources[MAX_SOURCES];
static enum phase phase;
static uv_timer_t tick;
static unsigned next_start, inflight_logins, warm_n, warm_ready;
static uint64_t t_phase, login_t0, login_t1;
static struct sample s_base, s_login, s_idle0, s_idle, s_sat0, s_sat1, s_flow0, s_flow1;
static struct bench_sess **active;
static unsigned nactive;
static uint64_t sched_count, sat_delivered, flow_sent0;
static uint64_t tcp0, tcp1;
static struct bench_stats flow_st;
static double sat_rate;
static unsigned lost_after_login;
static bool timeline; /* --timeline: the worst latency of each second of the fixed-rate phase */
static uint64_t tl_max, tl_next;

/* ---- /proc ---- */

static uint64_t read_u64_field(const char *path, const char *key)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[256];
    uint64_t v = 0;
    size_t kl = strlen(key);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, kl) == 0) {
            v = strtoull(line + kl, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

static uint64_t sched_ns(int pid)
{
    char dir[64];
    if (pid)
        snprintf(dir, sizeof dir, "/proc/%d/task", pid);
    else
        snprintf(dir, sizeof dir, "/proc/self/task");
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    uint64_t sum = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char p[384];
        snprintf(p, sizeof p, "%s/%s/schedstat", dir, e->d_name);
        FILE *f = fopen(p, "r");
        if (!f)
            continue;
        unsigned long long v = 0;
        if (fscanf(f, "%llu", &v) == 1)
            sum += v;
        fclose(f);
    }
    closedir(d);
    return sum;
}

static uint64_t tick_ns(int pid)
{
    char p[64];
    if (pid)
        snprintf(p, sizeof p, "/proc/%d/stat", pid);
    else
        snprintf(p, sizeof p, "/proc/self/stat");
    FILE *f = fopen(p, "r");
    if (!f)
        return 0;
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *s = strrchr(buf, ')'); /* the command name may hold spaces */
    unsigned long long ut = 0, st = 0;
    if (!s || sscanf(s + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return 0;
    return (ut + st) * (1000000000ULL / (uint64_t)sysconf(_SC_CLK_TCK));
}

static void take(struct sample *s)
{
    for (unsigned i = 0; i < nw; i++) {
        char p[64];
        if (W[i].pid)
            snprintf(p, sizeof p, "/proc/%d/status", W[i].pid);
        else
            snprintf(p, sizeof p, "/proc/self/status");
        s->rss_kib[i] = read_u64_field(p, "VmRSS:");
        s->cpu_ns[i] = sched_ns(W[i].pid);
        s->ticks_ns[i] = tick_ns(W[i].pid);
    }
    s->at_ns = uv_hrtime();
}

/* ---- sessions ---- */

const char *bench_source(struct bench *b, unsigned idx)
{
    return b->nsources ? b->sources[idx % b->nsources] : NULL;
}

static void start_session(unsigned i)
{
    struct bench_sess *s = &B.sess[i];
    s->b = &B;
    s->idx = i;
    s->proto = B.proto;
    inflight_logins++;
    if (B.proto == PROTO_BOSH)
        bench_bosh_start(s);
    else
        bench_ws_start(s);
}

static void start_more(unsigned limit)
{
    while (inflight_logins < O.concurrency && next_start < limit)
        start_session(next_start++);
}

void bench_logged_in(struct bench_sess *s, const char *jid)
{
    if (s->failed) /* given up on (login_stalled) */
        return;
    snprintf(s->jid, sizeof s->jid, "%s", jid);
    s->logged_in = true;
    B.ready++;
    inflight_logins--;
}

void bench_failed(struct bench_sess *s, const char *why)
{
    if (s->failed)
        return;
    s->failed = true;
    if (s->logged_in) {
        s->logged_in = false;
        B.ready--;
        lost_after_login++;
    } else {
        inflight_logins--;
    }
    B.failed++;
    if (B.failed <= 5)
        fprintf(stderr, "bench: session %u: %s\n", s->idx, why);
}

static void kick(struct bench_sess *s)
{
    if (B.proto == PROTO_BOSH)
        bench_bosh_kick(s);
    else
        bench_ws_kick(s);
}

static void enqueue(struct bench_sess *s, uint64_t due, uint32_t seq)
{
    if (s->ring_len == RING_CAP || !s->logged_in) {
        B.st.dropped++;
        return;
    }
    struct pending *q = &s->ring[(s->ring_head + s->ring_len) % RING_CAP];
    q->due_ns = due;
    q->seq = seq;
    s->ring_len++;
    s->inflight++;
    kick(s);
}

void bench_received(struct bench_sess *s, const char *body, size_t len)
{
    uint64_t now = uv_hrtime();
    if (len < 17) {
        B.st.bad++;
        return;
    }
    char hex[17];
    memcpy(hex, body + 1, 16);
    hex[16] = '\0';
    uint64_t due = strtoull(hex, NULL, 16);
    B.st.delivered++;
    struct bench_sess *from = s->peer;
    if (from && from->inflight)
        from->inflight--;
    if (B.measuring && B.nlat < B.lat_cap && now >= due) {
        B.lat[B.nlat++] = now - due;
        if (timeline && now - due > tl_max)
            tl_max = now - due;
    }
    if (B.saturating && from)
        enqueue(from, now, (uint32_t)sched_count++);
}

static void pair_up(void)
{
    active = calloc(B.n, sizeof *active);
    for (unsigned i = 0; i < B.n && nactive < 2 * O.pairs; i++)
        if (B.sess[i].logged_in)
            active[nactive++] = &B.sess[i];
    nactive &= ~1u;
    for (unsigned i = 0; i < nactive; i++)
        active[i]->peer = active[i ^ 1];
}

static uint64_t tcp_bytes(void)
{
    uint64_t sum = 0;
    for (unsigned i = 0; i < nactive; i++)
        sum +=
            B.proto == PROTO_BOSH ? bench_bosh_tcp_bytes(active[i]) : bench_ws_tcp_bytes(active[i]);
    return sum;
}

static uint64_t in_flight(void)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < nactive; i++)
        n += active[i]->inflight;
    return n;
}

/* ---- phases ---- */

static void enter(enum phase p)
{
    phase = p;
    t_phase = uv_hrtime();
}

static void start_flow(void)
{
    if (O.rate <= 0 && O.rate_fraction > 0)
        O.rate = sat_rate * O.rate_fraction;
    if (O.rate <= 0 || O.duration_s <= 0 || nactive == 0) {
        enter(PH_DONE);
        return;
    }
    memset(&B.st, 0, sizeof B.st);
    B.nlat = 0;
    B.lat_cap = (size_t)(O.rate * O.duration_s * 1.2) + 1000;
    B.lat = realloc(B.lat, B.lat_cap * sizeof *B.lat);
    tcp0 = tcp_bytes();
    take(&s_flow0);
    B.measuring = true;
    sched_count = 0;
    flow_sent0 = 0;
    fprintf(stderr, "bench: fixed rate %.0f msg/s for %.0f s over %u pairs\n", O.rate, O.duration_s,
            nactive / 2);
    enter(PH_FLOW);
}

/* A login the server never answers would hold the run forever: once no login has ended for
 * LOGIN_STALL_S, the ones still going are given up on (counted as failed). */
#define LOGIN_STALL_S 30
#define STR_(x)       #x
#define STR(x)        STR_(x)

static void login_stalled(uint64_t now)
{
    static unsigned done;
    static uint64_t since;
    if (B.ready + B.failed != done || since == 0) {
        done = B.ready + B.failed;
        since = now;
        return;
    }
    if (now - since < (uint64_t)LOGIN_STALL_S * 1000000000u)
        return;
    for (unsigned i = 0; i < next_start; i++)
        if (!B.sess[i].logged_in && !B.sess[i].failed)
            bench_failed(&B.sess[i],
                         "its login has not ended after " STR(LOGIN_STALL_S) " s without progress");
    since = now;
}

static void on_tick(uv_timer_t *t)
{
    (void)t;
    uint64_t now = uv_hrtime();
    double el = (double)(now - t_phase) / 1e9;
    switch (phase) {
    case PH_WARM:
        login_stalled(now);
        start_more(warm_n);
        if (B.ready + B.failed >= warm_n && el > 0.5) {
            warm_ready = B.ready;
            take(&s_base);
            login_t0 = uv_hrtime();
            enter(PH_LOGIN);
        }
        break;
    case PH_LOGIN:
        login_stalled(now);
        start_more(B.n);
        if (B.ready + B.failed >= B.n) {
            login_t1 = uv_hrtime();
            take(&s_login);
            enter(PH_SETTLE);
        }
        break;
    case PH_SETTLE:
        if (el >= O.settle_s / 2 && s_idle0.at_ns == 0) /* the second half: idle CPU */
            take(&s_idle0);
        if (el >= O.settle_s) {
            take(&s_idle);
            pair_up();
            if (O.saturate_s > 0 && nactive) {
                B.saturating = true;
                for (unsigned i = 0; i < nactive; i++)
                    for (unsigned k = 0; k < O.window; k++)
                        enqueue(active[i], now, (uint32_t)sched_count++);
                enter(PH_SAT);
            } else {
                start_flow();
            }
        }
        break;
    case PH_SAT:
        if (el >= 1.0 && s_sat0.at_ns == 0) { /* one second of warm-up, then measure */
            take(&s_sat0);
            sat_delivered = B.st.delivered;
        }
        if (el >= 1.0 + O.saturate_s) {
            take(&s_sat1);
            sat_rate = (double)(B.st.delivered - sat_delivered) /
                       ((double)(s_sat1.at_ns - s_sat0.at_ns) / 1e9);
            B.saturating = false;
            enter(PH_SAT_DRAIN);
        }
        break;
    case PH_SAT_DRAIN:
        if (in_flight() == 0 || (now - t_phase) > DRAIN_NS) {
            for (unsigned i = 0; i < nactive; i++)
                active[i]->inflight = 0;
            start_flow();
        }
        break;
    case PH_FLOW: {
        if (timeline && now >= tl_next) {
            if (tl_next)
                fprintf(stderr, "bench: t=%.0f s worst latency %.2f ms\n", el,
                        (double)tl_max / 1e6);
            tl_max = 0;
            tl_next = now + 1000000000ULL;
        }
        uint64_t due_n = (uint64_t)(el * O.rate) + 1; /* message k is due at k / rate */
        uint64_t total = (uint64_t)(O.duration_s * O.rate);
        if (due_n > total)
            due_n = total;
        for (; sched_count < due_n; sched_count++) {
            /* Stamped when the clock queues it (the tick is 1 ms coarse), not when written:
             * any wait for the socket after this counts as latency. */
            uint64_t due = t_phase + (uint64_t)((double)sched_count * 1e9 / O.rate);
            if (due < now)
                due = now;
            enqueue(active[sched_count % nactive], due, (uint32_t)sched_count);
        }
        if (sched_count >= total)
            enter(PH_FLOW_DRAIN);
        break;
    }
    case PH_FLOW_DRAIN:
        if ((B.st.delivered >= B.st.sent && in_flight() == 0) || (now - t_phase) > DRAIN_NS) {
            take(&s_flow1);
            tcp1 = tcp_bytes();
            B.measuring = false;
            flow_st = B.st;
            /* bench/run reads mxgw's /metrics at this line and at the phase's first */
            fprintf(stderr, "bench: fixed rate done\n");
            enter(PH_DONE);
        }
        break;
    case PH_DONE:
        if (el >= O.hold_s) /* --hold: sessions stay up for inspection (gdb, massif, smaps) */
            uv_stop(B.loop);
        break;
    }
}

/* ---- report ---- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(double p)
{
    if (B.nlat == 0)
        return -1;
    size_t i = (size_t)(p / 100.0 * (double)(B.nlat - 1) + 0.5);
    return (double)B.lat[i] / 1000.0;
}

static void print_cpu(const char *key, const struct sample *a, const struct sample *b, double div)
{
    printf(",\"%s\":{", key);
    for (unsigned i = 0; i < nw; i++)
        printf("%s\"%s\":%.3f", i ? "," : "", W[i].name,
               (double)(b->cpu_ns[i] - a->cpu_ns[i]) / 1000.0 / div);
    printf("}");
}

static void report(void)
{
    const char *pn[] = {"xmpp", "json", "bosh"};
    unsigned added = B.ready - warm_ready;
    double login_s = (double)(login_t1 - login_t0) / 1e9;
    fprintf(stderr, "bench: %s %u sessions (%u failed, %u warm-up) logged in in %.2f s\n",
            pn[B.proto], B.ready, B.failed, warm_ready, login_s);
    printf("RESULT {\"proto\":\"%s\",\"url\":\"%s\",\"sessions\":%u,\"ready\":%u,\"failed\":%u,"
           "\"lost_after_login\":%u,\"warm\":%u,\"login_s\":%.3f,\"login_per_s\":%.1f,"
           "\"json_aliases\":%s",
           pn[B.proto], B.url, B.n, B.ready, B.failed, lost_after_login, warm_ready, login_s,
           login_s > 0 ? (double)(B.n - warm_n) / login_s : 0, B.json_aliases ? "true" : "false");
    print_cpu("login_cpu_us_per_session", &s_base, &s_login, added ? added : 1);
    printf(",\"rss_base_kib\":{");
    for (unsigned i = 0; i < nw; i++)
        printf("%s\"%s\":%" PRIu64, i ? "," : "", W[i].name, s_base.rss_kib[i]);
    printf("},\"rss_idle_kib\":{");
    for (unsigned i = 0; i < nw; i++)
        printf("%s\"%s\":%" PRIu64, i ? "," : "", W[i].name, s_idle.rss_kib[i]);
    printf("},\"kib_per_session\":{");
    for (unsigned i = 0; i < nw; i++)
        printf("%s\"%s\":%.2f", i ? "," : "", W[i].name,
               added ? ((double)s_idle.rss_kib[i] - (double)s_base.rss_kib[i]) / added : 0);
    printf("}");
    if (s_idle0.at_ns && s_idle.at_ns > s_idle0.at_ns)
        print_cpu("idle_cpu_pct", &s_idle0, &s_idle, (double)(s_idle.at_ns - s_idle0.at_ns) / 1e5);
    printf(",\"pairs\":%u", nactive / 2);
    if (s_sat1.at_ns) {
        double secs = (double)(s_sat1.at_ns - s_sat0.at_ns) / 1e9;
        printf(",\"sat\":{\"seconds\":%.2f,\"msgs_per_s\":%.1f,\"window\":%u", secs, sat_rate,
               O.window);
        print_cpu("cpu_pct", &s_sat0, &s_sat1, secs * 1e4);
        printf("}");
    }
    if (s_flow1.at_ns) {
        qsort(B.lat, B.nlat, sizeof *B.lat, cmp_u64);
        double secs = (double)(s_flow1.at_ns - s_flow0.at_ns) / 1e9;
        double d = flow_st.delivered ? (double)flow_st.delivered : 1;
        printf(",\"flow\":{\"rate\":%.1f,\"seconds\":%.2f,\"sent\":%" PRIu64
               ",\"delivered\":%" PRIu64 ",\"dropped\":%" PRIu64 ",\"bad\":%" PRIu64
               ",\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f",
               O.rate, secs, flow_st.sent, flow_st.delivered, flow_st.dropped, flow_st.bad, pct(50),
               pct(99), pct(99.9), B.nlat ? (double)B.lat[B.nlat - 1] / 1000.0 : -1);
        print_cpu("cpu_us_per_msg", &s_flow0, &s_flow1, d);
        printf(",\"ticks_us_per_msg\":{");
        for (unsigned i = 0; i < nw; i++)
            printf("%s\"%s\":%.3f", i ? "," : "", W[i].name,
                   (double)(s_flow1.ticks_ns[i] - s_flow0.ticks_ns[i]) / 1000.0 / d);
        printf("}");
        print_cpu("cpu_pct", &s_flow0, &s_flow1, secs * 1e4);
        printf(",\"msg_bytes_per_msg\":%.1f,\"other_bytes_per_msg\":%.1f,"
               "\"tcp_bytes_per_msg\":%.1f}",
               (double)flow_st.msg_bytes / d, (double)flow_st.ctl_bytes / d,
               (double)(tcp1 - tcp0) / d);
    }
    printf("}\n");
    fflush(stdout);
}

/* ---- options ---- */

static void usage(void)
{
    fprintf(stderr,
            "usage: mxgw-bench --proto xmpp|json|bosh --url URL [--sessions N] [--concurrency C]\n"
            "       [--pairs P] [--saturate SECONDS] [--window W] [--rate MSGS_PER_S]\n"
            "       [--rate-fraction F] [--duration SECONDS] [--settle SECONDS] [--hold SECONDS]\n"
            "       [--body-len L] [--json-aliases]  (JSON: address the peer by its JID alias)\n"
            "       [--domain D] [--users PREFIX] [--source IP]... [--pid NAME=PID]...\n"
            "       [--timeline]  (print the worst latency of each second at the fixed rate)\n"
            "       [--probe]  (BOSH: exit 0 if URL answers a session request, 3 if not)\n"
            "BENCH_PASSWORD holds every account's password.\n");
    exit(2);
}

static bool parse_url(const char *url)
{
    const char *p;
    if (strncmp(url, "ws://", 5) == 0)
        p = url + 5;
    else if (strncmp(url, "http://", 7) == 0)
        p = url + 7;
    else
        return false;
    const char *colon = strchr(p, ':'), *slash = strchr(p, '/');
    if (!colon || !slash || colon > slash || (size_t)(colon - p) >= sizeof B.host)
        return false;
    memcpy(B.host, p, (size_t)(colon - p));
    B.host[colon - p] = '\0';
    B.port = atoi(colon + 1);
    snprintf(B.path, sizeof B.path, "%s", slash);
    return B.port > 0;
}

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(int argc, char **argv)
{
    B.domain = "localhost";
    B.user_prefix = "b";
    B.body_len = 32;
    B.password = getenv("BENCH_PASSWORD");
    const char *proto = NULL;
    bool probe = false;
    W[nw++] = (struct watched){"driver", 0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--probe") == 0) {
            probe = true;
            continue;
        }
        if (strcmp(a, "--json-aliases") == 0) {
            B.json_aliases = true;
            continue;
        }
        if (strcmp(a, "--timeline") == 0) {
            timeline = true;
            continue;
        }
        if (!v)
            usage();
        i++;
        if (strcmp(a, "--proto") == 0)
            proto = v;
        else if (strcmp(a, "--url") == 0)
            B.url = v;
        else if (strcmp(a, "--sessions") == 0)
            O.n = (unsigned)atoi(v);
        else if (strcmp(a, "--concurrency") == 0)
            O.concurrency = (unsigned)atoi(v);
        else if (strcmp(a, "--pairs") == 0)
            O.pairs = (unsigned)atoi(v);
        else if (strcmp(a, "--window") == 0)
            O.window = (unsigned)atoi(v);
        else if (strcmp(a, "--saturate") == 0)
            O.saturate_s = atof(v);
        else if (strcmp(a, "--rate") == 0)
            O.rate = atof(v);
        else if (strcmp(a, "--rate-fraction") == 0)
            O.rate_fraction = atof(v);
        else if (strcmp(a, "--duration") == 0)
            O.duration_s = atof(v);
        else if (strcmp(a, "--settle") == 0)
            O.settle_s = atof(v);
        else if (strcmp(a, "--hold") == 0)
            O.hold_s = atof(v);
        else if (strcmp(a, "--body-len") == 0)
            B.body_len = (unsigned)atoi(v);
        else if (strcmp(a, "--domain") == 0)
            B.domain = v;
        else if (strcmp(a, "--users") == 0)
            B.user_prefix = v;
        else if (strcmp(a, "--source") == 0 && B.nsources < MAX_SOURCES)
            sources[B.nsources++] = v;
        else if (strcmp(a, "--pid") == 0 && nw <= MAX_PIDS && strchr(v, '='))
            W[nw++] = (struct watched){strndup(v, (size_t)(strchr(v, '=') - v)),
                                       atoi(strchr(v, '=') + 1)};
        else
            usage();
    }
    if (!proto || !B.url || !parse_url(B.url))
        usage();
    if (strcmp(proto, "xmpp") == 0)
        B.proto = PROTO_XMPP;
    else if (strcmp(proto, "json") == 0)
        B.proto = PROTO_JSON;
    else if (strcmp(proto, "bosh") == 0)
        B.proto = PROTO_BOSH;
    else
        usage();
    if (probe)
        return B.proto == PROTO_BOSH && bench_bosh_probe(B.host, B.port, B.path, B.domain) ? 0 : 3;
    if (!B.password) {
        fprintf(stderr, "bench: set BENCH_PASSWORD\n");
        return 2;
    }
    if (O.n < 2 || O.concurrency == 0 || O.window == 0 || O.window > RING_CAP)
        usage();
    if (O.pairs > O.n / 2)
        O.pairs = O.n / 2;
    raise_nofile();
    B.sources = sources;
    B.n = O.n;
    B.sess = calloc(B.n, sizeof *B.sess);
    B.loop = uv_default_loop();
    if (!B.sess)
        return 1;
    if (B.proto == PROTO_BOSH)
        bench_bosh_init(&B);
    else
        bench_ws_init(&B);
    warm_n = B.n / 20 < 1 ? 1 : B.n / 20 > 100 ? 100 : B.n / 20;
    uv_timer_init(B.loop, &tick);
    uv_timer_start(&tick, on_tick, 1, 1);
    enter(PH_WARM);
    uv_run(B.loop, UV_RUN_DEFAULT);
    report();
    return B.ready == 0 ? 1 : 0;
}
