/* mxgw-bench-relay: a null byte relay, the benchmark's floor. Not part of the mxgw binary.
 *
 * bench/run puts it in mxgw's place in front of Prosody's mod_websocket: each accepted
 * connection gets one to the target, and bytes go both ways unchanged. A message then costs
 * the relay what it costs any process in that place on this machine (two loop wakeups, a read
 * and a write each, the peers' wakeups) and nothing else: mxgw's CPU per message over RFC
 * 7395 minus the relay's is what mxgw's own work costs.
 *
 * One thread, one epoll set, level-triggered. A read goes into one shared buffer and is written
 * on at once; only what the destination does not take is kept, in a buffer of that end's own
 * (so an idle connection holds no buffer, as in mxgw). While an end holds bytes, its source is
 * not read (back-pressure goes to the sender) and its writable event is armed. A connect still
 * in progress is such a destination: the client's first bytes wait for it.
 *
 * Usage: mxgw-bench-relay LISTEN_PORT TARGET_PORT (both on 127.0.0.1). Prints "ready" once
 * listening; SIGTERM or SIGINT ends it. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_CAP    16384
#define MAX_EVENTS 256

struct end {
    int fd;
    struct end *peer;
    struct end *prev, *next; /* every open end, so that all are freed at exit */
    size_t off, len;         /* pending bytes for this end, read from the peer */
    bool closing;
    char *buf; /* BUF_CAP bytes while len > 0 */
};

static char rbuf[BUF_CAP];

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static int nonblocking(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static void watch(int ep, struct end *e, int op)
{
    /* read while the peer's buffer is empty; write while ours is not */
    struct epoll_event ev = {.data.ptr = e};
    if (e->peer->len == 0)
        ev.events |= EPOLLIN;
    if (e->len > 0)
        ev.events |= EPOLLOUT;
    if (epoll_ctl(ep, op, e->fd, &ev) < 0 && op == EPOLL_CTL_ADD) {
        perror("relay: epoll_ctl");
        exit(1);
    }
}

static void close_pair(struct end *e)
{
    /* freed after the batch of events: the peer may be in it too */
    e->closing = e->peer->closing = true;
}

/* Writes what is pending for e; false on a hard error. */
static bool flush(struct end *e)
{
    while (e->len > 0) {
        ssize_t n = send(e->fd, e->buf + e->off, e->len, MSG_NOSIGNAL);
        if (n < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
        e->off += (size_t)n;
        e->len -= (size_t)n;
    }
    free(e->buf);
    e->buf = NULL;
    e->off = 0;
    return true;
}

/* Reads from src into what is pending for its peer, then tries to write it on. */
static bool pump(int ep, struct end *src)
{
    struct end *dst = src->peer;
    ssize_t n = recv(src->fd, rbuf, BUF_CAP, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
        return false;
    if (n < 0)
        return true;
    ssize_t w = send(dst->fd, rbuf, (size_t)n, MSG_NOSIGNAL);
    if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        return false;
    if (w == n)
        return true;
    size_t done = w > 0 ? (size_t)w : 0;
    dst->buf = malloc(BUF_CAP);
    if (!dst->buf) {
        perror("relay: malloc");
        exit(1);
    }
    dst->off = 0;
    dst->len = (size_t)n - done;
    memcpy(dst->buf, rbuf + done, dst->len);
    watch(ep, src, EPOLL_CTL_MOD);
    watch(ep, dst, EPOLL_CTL_MOD);
    return true;
}

static struct end *ends;

static struct end *end_new(int fd)
{
    struct end *e = calloc(1, sizeof *e);
    if (!e) {
        perror("relay: calloc");
        exit(1);
    }
    e->fd = fd;
    e->next = ends;
    if (ends)
        ends->prev = e;
    ends = e;
    return e;
}

static void end_free(struct end *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        ends = e->next;
    if (e->next)
        e->next->prev = e->prev;
    close(e->fd);
    free(e->buf);
    free(e);
}

static void accept_one(int ep, int lfd, const struct sockaddr_in *target)
{
    int cfd = accept(lfd, NULL, NULL);
    if (cfd < 0)
        return;
    int ufd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    if (ufd < 0 || nonblocking(cfd) < 0 || nonblocking(ufd) < 0) {
        perror("relay: socket");
        close(cfd);
        if (ufd >= 0)
            close(ufd);
        return;
    }
    setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(ufd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(ufd, (const struct sockaddr *)target, sizeof *target) < 0 && errno != EINPROGRESS) {
        perror("relay: connect");
        close(cfd);
        close(ufd);
        return;
    }
    struct end *c = end_new(cfd), *u = end_new(ufd);
    c->peer = u;
    u->peer = c;
    watch(ep, c, EPOLL_CTL_ADD);
    watch(ep, u, EPOLL_CTL_ADD);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: mxgw-bench-relay LISTEN_PORT TARGET_PORT\n");
        return 2;
    }
    struct sockaddr_in la = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1]))};
    struct sockaddr_in ta = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2]))};
    la.sin_addr.s_addr = ta.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);
    int one = 1;
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(lfd, (struct sockaddr *)&la, sizeof la) < 0 || listen(lfd, 4096) < 0 ||
        nonblocking(lfd) < 0) {
        perror("relay: listen");
        return 1;
    }
    int ep = epoll_create1(0);
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) < 0) {
        perror("relay: epoll");
        return 1;
    }
    printf("ready\n");
    fflush(stdout);

    struct epoll_event evs[MAX_EVENTS];
    struct end *dead[2 * MAX_EVENTS];
    while (!stop) {
        int n = epoll_wait(ep, evs, MAX_EVENTS, -1);
        size_t nd = 0;
        for (int i = 0; i < n; i++) {
            struct end *e = evs[i].data.ptr;
            if (!e) {
                accept_one(ep, lfd, &ta);
                continue;
            }
            if (e->closing)
                continue;
            bool ok = true;
            if (evs[i].events & EPOLLOUT) {
                ok = flush(e);
                if (ok && e->len == 0) {
                    watch(ep, e, EPOLL_CTL_MOD);
                    watch(ep, e->peer, EPOLL_CTL_MOD);
                }
            }
            if (ok && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && e->peer->len == 0)
                ok = pump(ep, e);
            else if (ok && (evs[i].events & (EPOLLHUP | EPOLLERR)) && !(evs[i].events & EPOLLIN))
                ok = false; /* gone, with nothing left to read */
            if (!ok) {
                close_pair(e);
                dead[nd++] = e;
                dead[nd++] = e->peer;
            }
        }
        for (size_t i = 0; i < nd; i++)
            end_free(dead[i]);
    }
    while (ends)
        end_free(ends);
    close(ep);
    close(lfd);
    return 0;
}
