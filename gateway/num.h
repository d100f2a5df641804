/* Decimal formatting of integers without printf, for the store's counters on every persist. */
#ifndef GW_NUM_H
#define GW_NUM_H

#include <stddef.h>
#include <stdint.h>

/* Room for any uint64_t in decimal and its NUL. */
#define GW_U64_DEC_MAX 21

/* Writes v in decimal at out (GW_U64_DEC_MAX bytes), NUL-terminated, as "%" PRIu64 would.
 * Returns the number of digits. */
size_t gw_u64_dec(char *out, uint64_t v);

#endif
