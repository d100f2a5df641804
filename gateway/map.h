/* A hash map from C-string keys (copied) to borrowed pointers. */
#ifndef GW_MAP_H
#define GW_MAP_H

#include <stddef.h>

struct gw_map;

/* Returns an owned, empty map. */
struct gw_map *gw_map_new(void);
/* Frees the map and its key copies (not the values). NULL is fine. */
void gw_map_free(struct gw_map *m);
/* The value stored under key, or NULL. */
void *gw_map_get(const struct gw_map *m, const char *key);
/* Stores value under key (copied), replacing any previous value. */
void gw_map_put(struct gw_map *m, const char *key, void *value);
/* Removes key; returns the value it had, or NULL. */
void *gw_map_del(struct gw_map *m, const char *key);
size_t gw_map_count(const struct gw_map *m);
/* A map used as counters (per-address connection counts): the count under key (0 if absent),
 * and adding delta to it. A count that reaches 0 is removed, so the map holds only keys in use.
 * The values are pointer-sized integers: such a map holds no other values. */
size_t gw_map_tally(const struct gw_map *m, const char *key);
void gw_map_tally_add(struct gw_map *m, const char *key, int delta);
/* Calls fn for every entry; fn must not change the map. */
void gw_map_each(const struct gw_map *m, void (*fn)(void *arg, const char *key, void *value),
                 void *arg);

#endif
