/* Hash map with separate chaining: FNV-1a over the key, the table doubling at load 1 and
 * halving when it falls to 1/8, so memory follows the number of entries. */
#include "gateway/map.h"

#include "gateway/mem.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct entry {
    struct entry *next;
    void *value;
    uint32_t hash;
    char key[];
};

struct gw_map {
    struct entry **slots;
    size_t nslots; /* a power of two */
    size_t count;
};

#define MIN_SLOTS 16

static uint32_t hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

struct gw_map *gw_map_new(void)
{
    struct gw_map *m = gw_calloc(1, sizeof *m);
    m->nslots = MIN_SLOTS;
    m->slots = gw_calloc(m->nslots, sizeof *m->slots);
    return m;
}

void gw_map_free(struct gw_map *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->nslots; i++) {
        struct entry *e = m->slots[i];
        while (e) {
            struct entry *next = e->next;
            free(e);
            e = next;
        }
    }
    free(m->slots);
    free(m);
}

static void resize(struct gw_map *m, size_t nslots)
{
    struct entry **slots = gw_calloc(nslots, sizeof *slots);
    for (size_t i = 0; i < m->nslots; i++) {
        struct entry *e = m->slots[i];
        while (e) {
            struct entry *next = e->next;
            size_t j = e->hash & (nslots - 1);
            e->next = slots[j];
            slots[j] = e;
            e = next;
        }
    }
    free(m->slots);
    m->slots = slots;
    m->nslots = nslots;
}

static struct entry **find(const struct gw_map *m, const char *key, uint32_t h)
{
    struct entry **pe = &m->slots[h & (m->nslots - 1)];
    while (*pe && ((*pe)->hash != h || strcmp((*pe)->key, key) != 0))
        pe = &(*pe)->next;
    return pe;
}

void *gw_map_get(const struct gw_map *m, const char *key)
{
    struct entry *e = *find(m, key, hash(key));
    return e ? e->value : NULL;
}

void gw_map_put(struct gw_map *m, const char *key, void *value)
{
    uint32_t h = hash(key);
    struct entry **pe = find(m, key, h);
    if (*pe) {
        (*pe)->value = value;
        return;
    }
    size_t len = strlen(key);
    struct entry *e = gw_malloc(sizeof *e + len + 1);
    memcpy(e->key, key, len + 1);
    e->hash = h;
    e->value = value;
    e->next = NULL;
    *pe = e;
    if (++m->count > m->nslots)
        resize(m, m->nslots * 2);
}

void *gw_map_del(struct gw_map *m, const char *key)
{
    struct entry **pe = find(m, key, hash(key));
    struct entry *e = *pe;
    if (!e)
        return NULL;
    void *v = e->value;
    *pe = e->next;
    free(e);
    if (--m->count < m->nslots / 8 && m->nslots > MIN_SLOTS)
        resize(m, m->nslots / 2);
    return v;
}

size_t gw_map_count(const struct gw_map *m)
{
    return m->count;
}

size_t gw_map_tally(const struct gw_map *m, const char *key)
{
    return (size_t)(uintptr_t)gw_map_get(m, key);
}

void gw_map_tally_add(struct gw_map *m, const char *key, int delta)
{
    size_t n = gw_map_tally(m, key) + (size_t)(ptrdiff_t)delta;
    if (n == 0)
        gw_map_del(m, key);
    else
        gw_map_put(m, key, (void *)(uintptr_t)n);
}

void gw_map_each(const struct gw_map *m, void (*fn)(void *arg, const char *key, void *value),
                 void *arg)
{
    for (size_t i = 0; i < m->nslots; i++)
        for (struct entry *e = m->slots[i]; e; e = e->next)
            fn(arg, e->key, e->value);
}
