/* What the store tests share: one loop, a reply collector, running the loop until a reply or a
 * deadline, and a real redis-server of their own on a port nobody else holds. */
#ifndef GW_TEST_STORE_UTIL_H
#define GW_TEST_STORE_UTIL_H

#include "tests/unit/check.h"
#include "gateway/store.h"

#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define RESULT_ITEMS 32

static uv_loop_t loop;

/* One store reply, copied (items cut at 63 bytes). */
struct result {
    bool done;
    int err;
    long long integer;
    size_t n;
    char items[RESULT_ITEMS][64];
};

static inline void on_result(void *arg, int err, const struct gw_store_reply *r)
{
    struct result *res = arg;
    res->done = true;
    res->err = err;
    res->integer = r ? r->integer : 0;
    res->n = r ? r->n : 0;
    for (size_t i = 0; r && i < r->n && i < RESULT_ITEMS; i++)
        snprintf(res->items[i], 64, "%.*s", (int)r->items[i].len, r->items[i].ptr);
}

static inline void count_tick(uv_timer_t *t)
{
    (*(int *)t->data)++;
}

/* Runs the loop until res is done or ms pass; returns the ticks a 10 ms timer saw meanwhile
 * (how a test sees that the loop kept running while a command waited). */
static inline int wait_for(struct result *res, uint64_t ms)
{
    int ticks = 0;
    uv_timer_t t, guard;
    uv_timer_init(&loop, &t);
    uv_timer_init(&loop, &guard);
    t.data = guard.data = &ticks;
    uv_timer_start(&t, count_tick, 10, 10);
    uv_update_time(&loop);
    uint64_t until = uv_now(&loop) + ms;
    uv_timer_start(&guard, count_tick, ms, 0); /* wakes the last uv_run for the deadline */
    while (!res->done && uv_now(&loop) < until)
        uv_run(&loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_close((uv_handle_t *)&guard, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    return ticks;
}

static inline void sleep_loop(uint64_t ms)
{
    struct result never = {0};
    wait_for(&never, ms);
}

/* Clears res, makes the call (which names on_result, &res) and waits up to 3 s for it. */
#define RUN(call)                                                                                  \
    do {                                                                                           \
        memset(&res, 0, sizeof res);                                                               \
        call;                                                                                      \
        wait_for(&res, 3000);                                                                      \
    } while (0)

static inline bool wait_available(struct gw_store *st, uint64_t ms)
{
    for (uint64_t waited = 0; waited < ms && !gw_store_available(st); waited += 50)
        sleep_loop(50);
    return gw_store_available(st);
}

static inline void close_store(struct gw_store *st)
{
    gw_store_close(st, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
}

/* A loopback port the kernel has just handed out, so no other test holds it. */
static inline int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* Starts redis-server on port (it dies with this process). Returns its pid. */
static inline pid_t start_redis(int port)
{
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive a crashed test */
        char p[16];
        snprintf(p, sizeof p, "%d", port);
        execlp("redis-server", "redis-server", "--port", p, "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--dir", "/tmp", "--loglevel", "warning", (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Starts a redis-server of our own and opens a store on it (database db, command timeout
 * timeout_ms): a free port each try, and the server must still be running once the store is up
 * (otherwise the store may have found another process's Redis on that port). Returns the
 * server's pid with *st open and *port set, or -1. */
static inline pid_t start_own_redis(int db, uint64_t timeout_ms, struct gw_store **st, int *port,
                                    char *url, size_t urlsize)
{
    for (int attempt = 0; attempt < 5; attempt++) {
        *port = free_port();
        pid_t pid = start_redis(*port);
        snprintf(url, urlsize, "redis://127.0.0.1:%d/%d", *port, db);
        if (gw_store_open(&loop, url, timeout_ms, st) != 0)
            return -1;
        bool up = wait_available(*st, 5000);
        if (up && waitpid(pid, NULL, WNOHANG) == 0)
            return pid;
        close_store(*st);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    *st = NULL;
    return -1;
}

#endif
