/* Encoding of the JSON sessions' store records (web/json_store.h). */
#include "web/json_store.h"

#include "gateway/err.h"
#include "gateway/mem.h"
#include "gateway/num.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void gw_jstore_key(const char *sid, char *out, size_t n)
{
    snprintf(out, n, "mxgw:json:%s", sid);
}

void gw_jstore_qkey(const char *sid, char *out, size_t n)
{
    snprintf(out, n, "mxgw:jsonq:%s", sid);
}

void gw_jstore_channel(const char *node, char *out, size_t n)
{
    snprintf(out, n, "mxgw:node:%s", node);
}

static int parse_u64(const struct gw_store_str *v, uint64_t max, uint64_t *out)
{
    char buf[24];
    if (v->len == 0 || v->len >= sizeof buf)
        return GW_EINVAL;
    memcpy(buf, v->ptr, v->len);
    buf[v->len] = '\0';
    if (buf[0] < '0' || buf[0] > '9')
        return GW_EINVAL;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(buf, &end, 10);
    if (errno || *end || n > max)
        return GW_EINVAL;
    *out = n;
    return 0;
}

static void set_str(char **dst, const struct gw_store_str *v)
{
    free(*dst);
    *dst = gw_strndup(v->ptr, v->len);
}

static void set_fixed(char *dst, size_t size, const struct gw_store_str *v)
{
    size_t n = v->len < size - 1 ? v->len : size - 1;
    memcpy(dst, v->ptr, n);
    dst[n] = '\0';
}

int gw_jstore_parse(const struct gw_store_reply *r, struct gw_jstore_rec *rec)
{
    memset(rec, 0, sizeof *rec);
    char **strs[] = {&rec->jid,    &rec->bare,       &rec->lang,        &rec->sm_id,  &rec->token,
                     &rec->reauth, &rec->token_prev, &rec->reauth_prev, &rec->up_fifo};
    static const char *const str_names[] = {
        "jid", "bare", "lang", "sm_id", "token", "reauth", "token_prev", "reauth_prev", "up_fifo"};
    uint32_t *nums[] = {&rec->up_in_h,     &rec->up_out, &rec->up_out_acked, &rec->cl_in,
                        &rec->cl_in_acked, &rec->cl_out, &rec->cl_acked,     &rec->cl_max};
    static const char *const num_names[] = {"up_in_h",     "up_out", "up_out_acked", "cl_in",
                                            "cl_in_acked", "cl_out", "cl_acked",     "cl_max"};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        *strs[i] = gw_strdup("");
    int rc = 0;
    for (size_t i = 0; r && i + 1 < r->n; i += 2) {
        const struct gw_store_str *k = &r->items[i], *v = &r->items[i + 1];
        rec->found = true;
        bool known = false;
        for (size_t j = 0; j < sizeof strs / sizeof strs[0]; j++) {
            if (k->len == strlen(str_names[j]) && memcmp(k->ptr, str_names[j], k->len) == 0) {
                set_str(strs[j], v);
                known = true;
            }
        }
        for (size_t j = 0; j < sizeof nums / sizeof nums[0] && !known; j++) {
            if (k->len == strlen(num_names[j]) && memcmp(k->ptr, num_names[j], k->len) == 0) {
                uint64_t n;
                if (parse_u64(v, UINT32_MAX, &n) == 0)
                    *nums[j] = (uint32_t)n;
                else
                    rc = GW_EINVAL;
                known = true;
            }
        }
        if (known)
            continue;
        if (k->len == 5 && memcmp(k->ptr, "owner", 5) == 0) {
            set_fixed(rec->owner, sizeof rec->owner, v);
        } else if (k->len == 5 && memcmp(k->ptr, "state", 5) == 0) {
            set_fixed(rec->state, sizeof rec->state, v);
        } else if (k->len == 9 && memcmp(k->ptr, "sm_resume", 9) == 0) {
            rec->sm_resume = v->len == 1 && v->ptr[0] == '1';
        } else if (k->len == 7 && memcmp(k->ptr, "expires", 7) == 0) {
            if (parse_u64(v, UINT64_MAX, &rec->expires) != 0)
                rc = GW_EINVAL;
        }
    }
    return rc;
}

void gw_jstore_rec_free(struct gw_jstore_rec *rec)
{
    free(rec->jid);
    free(rec->bare);
    free(rec->lang);
    free(rec->sm_id);
    free(rec->token);
    free(rec->reauth);
    free(rec->token_prev);
    free(rec->reauth_prev);
    free(rec->up_fifo);
    memset(rec, 0, sizeof *rec);
}

void gw_jstore_add(struct gw_jstore_fields *w, const char *field, const char *value)
{
    if (w->n >= GW_JSTORE_MAX_FIELDS)
        abort(); /* a programming error: the callers' field lists are fixed */
    w->f[w->n] = gw_store_cstr(field);
    w->v[w->n] = gw_store_cstr(value ? value : "");
    w->n++;
}

void gw_jstore_add_u64(struct gw_jstore_fields *w, const char *field, uint64_t value)
{
    if (w->n >= GW_JSTORE_MAX_FIELDS)
        abort();
    gw_u64_dec(w->num[w->n], value);
    gw_jstore_add(w, field, w->num[w->n]);
}

char *gw_jstore_item(uint32_t seq, const char *xml, size_t len, size_t *outlen)
{
    char head[GW_U64_DEC_MAX + 1];
    size_t h = gw_u64_dec(head, seq);
    head[h++] = ' ';
    char *out = gw_malloc(h + len + 1);
    memcpy(out, head, h);
    memcpy(out + h, xml, len);
    out[h + len] = '\0';
    *outlen = h + len;
    return out;
}

int gw_jstore_item_parse(const char *item, size_t len, uint32_t *seq, const char **xml,
                         size_t *xml_len)
{
    const char *sp = memchr(item, ' ', len < 12 ? len : 12);
    if (!sp || sp == item)
        return GW_EINVAL;
    struct gw_store_str num = {item, (size_t)(sp - item)};
    uint64_t n;
    if (parse_u64(&num, UINT32_MAX, &n) != 0 || (size_t)(sp - item) + 1 >= len)
        return GW_EINVAL;
    *seq = (uint32_t)n;
    *xml = sp + 1;
    *xml_len = len - (size_t)(sp - item) - 1;
    return 0;
}

char *gw_jstore_pairs_encode(const struct gw_sm_queue *q)
{
    /* "seq:tag" pairs, comma-separated: at most 10 + 1 + 10 + 1 bytes each */
    size_t len = 0;
    char *out = gw_malloc(q->count * 22 + GW_U64_DEC_MAX);
    out[0] = '\0';
    for (const struct gw_sm_item *it = q->head; it; it = it->next) {
        if (len)
            out[len++] = ',';
        len += gw_u64_dec(out + len, it->seq);
        out[len++] = ':';
        len += gw_u64_dec(out + len, (uint32_t)(uintptr_t)it->tag);
    }
    return out;
}

int gw_jstore_pairs_decode(const char *s, struct gw_jstore_pair *out, size_t max, size_t *n)
{
    *n = 0;
    const char *p = s;
    while (*p) {
        if (*n >= max)
            return GW_EINVAL;
        char *end;
        if (*p < '0' || *p > '9')
            return GW_EINVAL;
        errno = 0;
        unsigned long u = strtoul(p, &end, 10);
        if (errno || *end != ':' || u > UINT32_MAX || end[1] < '0' || end[1] > '9')
            return GW_EINVAL;
        p = end + 1;
        unsigned long c = strtoul(p, &end, 10);
        if (errno || c > UINT32_MAX || (*end != ',' && *end != '\0'))
            return GW_EINVAL;
        out[*n].u = (uint32_t)u;
        out[*n].c = (uint32_t)c;
        (*n)++;
        p = *end == ',' ? end + 1 : end;
        if (*end == ',' && !*p)
            return GW_EINVAL;
    }
    return 0;
}

uint32_t gw_jstore_client_h(const struct gw_jstore_rec *rec, uint32_t x)
{
    struct gw_jstore_pair pairs[GW_JSTORE_MAX_PAIRS];
    size_t n;
    if (gw_jstore_pairs_decode(rec->up_fifo, pairs, GW_JSTORE_MAX_PAIRS, &n) != 0)
        return rec->cl_in_acked;
    uint32_t h = rec->cl_in_acked;
    for (size_t i = 0; i < n; i++) {
        /* u ≤ x, judged on the wrapped difference like every XEP-0198 count */
        if ((uint32_t)(x - pairs[i].u) > UINT32_MAX / 2)
            return h; /* the server has not handled this one: the client resends from here */
        h = pairs[i].c;
    }
    return rec->cl_in;
}
