/* REST API keys: format, hash, constant-time check and scope matching. */
#include "web/rest_key.h"

#include "gateway/err.h"
#include "gateway/mem.h"
#include "xmpp/jid.h"

#include <ctype.h>
#include <mbedtls/sha256.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct {
    const char *name;
    unsigned bit;
} op_names[] = {
    {"messages", GW_OP_MESSAGES},           {"stanzas", GW_OP_STANZAS},
    {"sessions.read", GW_OP_SESSIONS_READ}, {"sessions.kick", GW_OP_SESSIONS_KICK},
    {"push.read", GW_OP_PUSH_READ},         {"push.write", GW_OP_PUSH_WRITE},
};
#define NOPS (sizeof op_names / sizeof op_names[0])

static bool lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

int gw_key_parse(const char *key, char id[GW_KEY_ID_HEX + 1])
{
    if (strlen(key) != GW_KEY_LEN || memcmp(key, "mxgw_", 5) != 0 ||
        key[5 + GW_KEY_ID_HEX] != '_' || !lower_hex(key + 5, GW_KEY_ID_HEX) ||
        !lower_hex(key + 6 + GW_KEY_ID_HEX, GW_KEY_SECRET_HEX))
        return GW_EINVAL;
    memcpy(id, key + 5, GW_KEY_ID_HEX);
    id[GW_KEY_ID_HEX] = '\0';
    return 0;
}

int gw_key_generate(struct gw_rand *rand, char *out, size_t outlen, char id[GW_KEY_ID_HEX + 1])
{
    char secret[GW_KEY_SECRET_HEX + 1];
    if (outlen <= GW_KEY_LEN || gw_rand_hex(rand, GW_KEY_ID_HEX / 2, id, GW_KEY_ID_HEX + 1) != 0 ||
        gw_rand_hex(rand, GW_KEY_SECRET_HEX / 2, secret, sizeof secret) != 0)
        return GW_EIO;
    snprintf(out, outlen, "mxgw_%s_%s", id, secret);
    gw_memzero(secret, sizeof secret);
    return 0;
}

void gw_key_hash(const char *key, char hex[GW_KEY_HASH_HEX + 1])
{
    unsigned char md[32];
    mbedtls_sha256_ret((const unsigned char *)key, strlen(key), md, 0);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    gw_memzero(md, sizeof md);
}

bool gw_key_check(const char *key, const char *stored_hex, size_t stored_len)
{
    static const char dummy[GW_KEY_HASH_HEX + 1] =
        "0000000000000000000000000000000000000000000000000000000000000000";
    char hex[GW_KEY_HASH_HEX + 1];
    gw_key_hash(key, hex);
    bool good_len = stored_len == GW_KEY_HASH_HEX;
    int diff = gw_memeq_ct(hex, good_len ? stored_hex : dummy, GW_KEY_HASH_HEX);
    gw_memzero(hex, sizeof hex);
    return good_len && diff == 0;
}

/* Calls fn for each space- or comma-separated word of list; stops at the first nonzero. */
static int each_word(const char *list, int (*fn)(void *arg, const char *w, size_t n), void *arg)
{
    const char *p = list;
    for (;;) {
        p += strspn(p, " ,\t");
        if (!*p)
            return 0;
        size_t n = strcspn(p, " ,\t");
        int rc = fn(arg, p, n);
        if (rc)
            return rc;
        p += n;
    }
}

static int add_op(void *arg, const char *w, size_t n)
{
    unsigned *ops = arg;
    if (n == 1 && w[0] == '*') {
        *ops |= GW_OP_ALL;
        return 0;
    }
    for (size_t i = 0; i < NOPS; i++)
        if (strlen(op_names[i].name) == n && memcmp(op_names[i].name, w, n) == 0) {
            *ops |= op_names[i].bit;
            return 0;
        }
    return GW_EINVAL;
}

int gw_key_ops_parse(const char *list, unsigned *ops)
{
    *ops = 0;
    if (each_word(list, add_op, ops) != 0 || *ops == 0) {
        *ops = 0;
        return GW_EINVAL;
    }
    return 0;
}

void gw_key_ops_format(unsigned ops, char *out, size_t n)
{
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < NOPS; i++)
        if (ops & op_names[i].bit) {
            int w = snprintf(out + o, n - o, "%s%s", o ? " " : "", op_names[i].name);
            if (w < 0 || (size_t)w >= n - o)
                return;
            o += (size_t)w;
        }
}

/* ---- scopes ---- */

struct scope_parse {
    struct gw_key_scope *scope;
    const char *domain;
    char *err;
    size_t errlen;
};

static bool localpart_char_ok(unsigned char c)
{
    /* RFC 7622 §3.3.1 forbids these in a localpart; '*' is ours (the wildcard). */
    return c > 0x20 && c != 0x7f && !strchr("\"&'/:<>@*", c);
}

static int add_jid(void *arg, const char *w, size_t n)
{
    struct scope_parse *sp = arg;
    struct gw_key_scope *scope = sp->scope;
    char pat[1100];
    if (n >= sizeof pat) {
        snprintf(sp->err, sp->errlen, "a JID pattern is too long");
        return GW_EINVAL;
    }
    memcpy(pat, w, n);
    pat[n] = '\0';
    if (scope->njids >= GW_SCOPE_MAX_JIDS) {
        snprintf(sp->err, sp->errlen, "more than %d JID patterns", GW_SCOPE_MAX_JIDS);
        return GW_EINVAL;
    }
    char *at = strchr(pat, '@');
    const char *dom = at ? at + 1 : pat;
    if (strcasecmp(dom, sp->domain) != 0) {
        snprintf(sp->err, sp->errlen, "'%s' is not on the component domain %s", pat, sp->domain);
        return GW_EINVAL;
    }
    if (at) {
        size_t ln = (size_t)(at - pat);
        bool ok = ln > 0 && ln <= GW_JID_PART_MAX;
        for (size_t i = 0; ok && i < ln; i++)
            ok = localpart_char_ok((unsigned char)pat[i]) || (pat[i] == '*' && i == ln - 1);
        if (!ok) {
            snprintf(sp->err, sp->errlen, "'%s' is not local@domain, *@domain or prefix*@domain",
                     pat);
            return GW_EINVAL;
        }
        for (size_t i = 0; i < ln; i++)
            pat[i] = (char)tolower((unsigned char)pat[i]);
    }
    for (char *p = (char *)dom; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    scope->jids[scope->njids++] = gw_strdup(pat);
    return 0;
}

int gw_key_scope_parse(struct gw_key_scope *scope, const char *list, const char *domain, char *err,
                       size_t errlen)
{
    struct scope_parse sp = {scope, domain, err, errlen};
    int rc = each_word(list, add_jid, &sp);
    if (rc == 0 && scope->njids == 0) {
        snprintf(err, errlen, "no JID pattern");
        rc = GW_EINVAL;
    }
    return rc;
}

void gw_key_scope_free(struct gw_key_scope *scope)
{
    for (size_t i = 0; i < scope->njids; i++)
        free(scope->jids[i]);
    scope->njids = 0;
}

static bool pattern_allows(const char *pat, const struct gw_jid *j)
{
    const char *at = strchr(pat, '@');
    if (!at) /* the domain itself */
        return !j->local && strcasecmp(pat, j->domain) == 0;
    if (!j->local || strcasecmp(at + 1, j->domain) != 0)
        return false;
    size_t pl = (size_t)(at - pat), ll = strlen(j->local);
    if (pl > 0 && pat[pl - 1] == '*') /* "*" or "prefix*" */
        return ll >= pl - 1 && strncasecmp(pat, j->local, pl - 1) == 0;
    return ll == pl && strncasecmp(pat, j->local, pl) == 0;
}

bool gw_key_scope_allows(const struct gw_key_scope *scope, const char *jid)
{
    struct gw_jid j;
    if (gw_jid_parse(jid, &j) != 0)
        return false;
    bool ok = false;
    for (size_t i = 0; i < scope->njids && !ok; i++)
        ok = pattern_allows(scope->jids[i], &j);
    gw_jid_free(&j);
    return ok;
}

const char *gw_key_scope_default(const struct gw_key_scope *scope)
{
    for (size_t i = 0; i < scope->njids; i++)
        if (!strchr(scope->jids[i], '*'))
            return scope->jids[i];
    return NULL;
}
