/* A per-connection JID alias table: a hash map from JID to number and an array back. Both are
 * bounded (count and bytes), and entries are never evicted, so a number keeps its meaning for
 * the table's whole life. Both grow with use: a table turned on and never used (most idle
 * sessions) is this struct alone, a few dozen bytes. */
#include "xmpp/alias.h"

#include "gateway/err.h"
#include "gateway/map.h"
#include "gateway/mem.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct gw_alias {
    struct gw_map *by_jid; /* jid -> (void *)(number + 1); NULL until the first assignment */
    char **jids;           /* number -> jid, cap entries */
    size_t n, cap;
    size_t bytes;
};

struct gw_alias *gw_alias_new(void)
{
    return gw_calloc(1, sizeof(struct gw_alias));
}

void gw_alias_free(struct gw_alias *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->n; i++)
        free(a->jids[i]);
    free(a->jids);
    gw_map_free(a->by_jid);
    free(a);
}

int gw_alias_find(const struct gw_alias *a, const char *jid)
{
    uintptr_t v = a->by_jid ? (uintptr_t)gw_map_get(a->by_jid, jid) : 0;
    return v ? (int)(v - 1) : -1;
}

int gw_alias_assign(struct gw_alias *a, const char *jid, bool *created)
{
    *created = false;
    int n = gw_alias_find(a, jid);
    if (n >= 0)
        return n;
    size_t len = strlen(jid);
    if (len > GW_ALIAS_MAX_JID || a->n == GW_ALIAS_MAX || a->bytes + len > GW_ALIAS_MAX_BYTES)
        return GW_ELIMIT;
    if (!a->by_jid)
        a->by_jid = gw_map_new();
    if (a->n == a->cap) {
        a->cap = a->cap ? 2 * a->cap : 4; /* 4, 8, ... GW_ALIAS_MAX (a power of two) */
        a->jids = gw_realloc(a->jids, a->cap * sizeof *a->jids);
    }
    a->jids[a->n] = gw_strdup(jid);
    gw_map_put(a->by_jid, jid, (void *)(uintptr_t)(a->n + 1));
    a->bytes += len;
    *created = true;
    return (int)a->n++;
}

const char *gw_alias_jid(const struct gw_alias *a, long long n)
{
    return n >= 0 && (size_t)n < a->n ? a->jids[n] : NULL;
}

size_t gw_alias_count(const struct gw_alias *a)
{
    return a->n;
}
