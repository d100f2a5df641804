/* Allocation wrappers that abort on exhaustion, and helpers for secret-bearing memory. */
#include "gateway/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void oom(size_t n)
{
    fprintf(stderr, "level=fatal event=oom bytes=%zu\n", n);
    abort();
}

void *gw_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom(n);
    return p;
}

void *gw_calloc(size_t count, size_t n)
{
    void *p = calloc(count ? count : 1, n ? n : 1);
    if (!p)
        oom(count * n);
    return p;
}

void *gw_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom(n);
    return q;
}

char *gw_strdup(const char *s)
{
    return gw_strndup(s, strlen(s));
}

char *gw_strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *d = gw_malloc(len + 1);
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

void gw_memzero(void *p, size_t n)
{
    volatile unsigned char *v = p;
    while (n--)
        *v++ = 0;
}

int gw_memeq_ct(const void *a, const void *b, size_t n)
{
    const volatile unsigned char *x = a, *y = b;
    unsigned char d = 0;
    for (size_t i = 0; i < n; i++)
        d |= x[i] ^ y[i];
    return d;
}
