/* Allocation wrappers: small allocations abort on out-of-memory, so callers have no NULL branch. */
#ifndef GW_MEM_H
#define GW_MEM_H

#include <stddef.h>

/* Each returns owned memory and never returns NULL; on exhaustion the process aborts with a
 * log line. Inputs that could make an allocation large are bounded before they get here. */
void *gw_malloc(size_t n);
void *gw_calloc(size_t count, size_t n);
void *gw_realloc(void *p, size_t n);
char *gw_strdup(const char *s);
char *gw_strndup(const char *s, size_t n);

/* Overwrites n bytes in a way the compiler cannot elide (for secrets). */
void gw_memzero(void *p, size_t n);

/* Compares n bytes in time independent of their contents; 0 when equal. */
int gw_memeq_ct(const void *a, const void *b, size_t n);

#endif
