/* Bytes a TCP socket has carried (sent and acknowledged, plus received), from the kernel's
 * tcp_info: what crossed the wire, frame and HTTP headers included. Its own file because
 * glibc's netinet/tcp.h lacks these fields and clashes with linux/tcp.h. */
#include <linux/tcp.h>
#include <stdint.h>
#include <sys/socket.h>

uint64_t bench_tcp_bytes(int fd);

uint64_t bench_tcp_bytes(int fd)
{
    struct tcp_info ti;
    socklen_t l = sizeof ti;
    if (fd < 0 || getsockopt(fd, 6 /* IPPROTO_TCP */, TCP_INFO, &ti, &l) != 0)
        return 0;
    return ti.tcpi_bytes_acked + ti.tcpi_bytes_received;
}
