/* REST request bodies, problem documents and header checks (no I/O). */
#include "web/rest_body.h"

#include "gateway/err.h"
#include "gateway/mem.h"
#include "web/relay.h"
#include "xmpp/jid.h"
#include "xmpp/xlate.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void gw_rest_stanza_free(struct gw_rest_stanza *s)
{
    gw_xml_free(s->el);
    free(s->from);
    s->el = NULL;
    s->from = NULL;
}

static bool stanza_name(const char *name)
{
    return strcmp(name, "message") == 0 || strcmp(name, "presence") == 0 || strcmp(name, "iq") == 0;
}

static int parse_xml(const char *body, size_t len, const struct gw_xml_limits *limits,
                     struct gw_rest_stanza *out, char *err, size_t errlen)
{
    struct gw_xml *el = NULL;
    const char *cond = NULL;
    int rc = gw_xml_parse_document(body, len, limits, &el, &cond);
    if (rc) {
        snprintf(err, errlen, "the XML is not acceptable (%s)", cond ? cond : "not-well-formed");
        return cond && strcmp(cond, "policy-violation") == 0 && len > limits->max_stanza
                   ? GW_ELIMIT
                   : GW_EINVAL;
    }
    if (el->ns && strcmp(el->ns, GW_NS_CLIENT) != 0) {
        snprintf(err, errlen, "the stanza must be in the jabber:client namespace");
        gw_xml_free(el);
        return GW_EINVAL;
    }
    if (!el->ns)
        gw_relay_client_ns(el, NULL);
    if (!stanza_name(el->name)) {
        snprintf(err, errlen, "the root element must be message, presence or iq");
        gw_xml_free(el);
        return GW_EINVAL;
    }
    const char *to = gw_xml_attr(el, "to");
    if (to && !gw_jid_valid(to)) {
        snprintf(err, errlen, "'to' is not a valid JID");
        gw_xml_free(el);
        return GW_EINVAL;
    }
    const char *from = gw_xml_attr(el, "from");
    out->from = from ? gw_strdup(from) : NULL;
    gw_xml_set_attr(el, "from", NULL);
    out->el = el;
    return 0;
}

static int parse_json(const char *body, size_t len, bool message_only,
                      const struct gw_xml_limits *limits, struct gw_rest_stanza *out, char *err,
                      size_t errlen)
{
    struct gw_json *obj = NULL;
    int rc = gw_json_parse(body, len, limits->max_stanza, &obj, err, errlen);
    if (rc)
        return rc == GW_ELIMIT ? GW_ELIMIT : GW_EINVAL;
    const struct gw_json *f = gw_json_get(obj, "f");
    if (f && f->type != GW_JSON_STRING) {
        snprintf(err, errlen, "\"f\" (the sender) must be a JID string");
        gw_json_free(obj);
        return GW_EINVAL;
    }
    const char *t = gw_json_str(obj, "t");
    if (message_only && gw_json_get(obj, "t") && (!t || strcmp(t, "m") != 0)) {
        snprintf(err, errlen,
                 "only messages are sent here (\"t\" must be \"m\" or absent); "
                 "use /api/v1/stanzas for other stanzas");
        gw_json_free(obj);
        return GW_EINVAL;
    }
    struct gw_xlate_ctx ctx = {.max_bytes = limits->max_stanza};
    const char *cond = NULL;
    struct gw_xml *el = NULL;
    rc = gw_xlate_json_stanza(obj, &ctx, &el, &cond, err, errlen);
    if (rc == 0) {
        out->from = f ? gw_strdup(f->s) : NULL;
        out->el = el;
    }
    gw_json_free(obj);
    if (rc)
        return cond && strcmp(cond, "policy-violation") == 0 ? GW_ELIMIT : GW_EINVAL;
    return 0;
}

int gw_rest_stanza_parse(const char *body, size_t len, enum gw_rest_form form, bool message_only,
                         const struct gw_xml_limits *limits, struct gw_rest_stanza *out, char *err,
                         size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->form = form;
    if (len > limits->max_stanza) {
        snprintf(err, errlen, "the stanza is larger than %zu bytes", limits->max_stanza);
        return GW_ELIMIT;
    }
    int rc = form == GW_REST_XML ? parse_xml(body, len, limits, out, err, errlen)
                                 : parse_json(body, len, message_only, limits, out, err, errlen);
    if (rc)
        return rc;
    if (message_only && strcmp(out->el->name, "message") != 0) {
        snprintf(err, errlen, "only messages are sent here; use /api/v1/stanzas");
        gw_rest_stanza_free(out);
        return GW_EINVAL;
    }
    if (message_only && !gw_xml_attr(out->el, "to")) {
        snprintf(err, errlen, "a message needs \"to\": a user's JID or a room's");
        gw_rest_stanza_free(out);
        return GW_EINVAL;
    }
    /* What goes on the wire must fit the stanza cap, as the JSON did. */
    struct gw_buf b;
    gw_buf_init(&b, limits->max_stanza);
    rc = gw_xml_serialize(&b, out->el, GW_NS_CLIENT);
    gw_buf_free(&b);
    if (rc) {
        snprintf(err, errlen,
                 rc == GW_ELIMIT ? "the stanza is larger than the stanza limit"
                                 : "the stanza cannot be written as XML");
        gw_rest_stanza_free(out);
        return rc == GW_ELIMIT ? GW_ELIMIT : GW_EINVAL;
    }
    return 0;
}

/* ---- problems ---- */

static const struct {
    unsigned status;
    const char *phrase;
} phrases[] = {
    {200, "OK"},
    {202, "Accepted"},
    {204, "No Content"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {406, "Not Acceptable"},
    {409, "Conflict"},
    {413, "Content Too Large"},
    {415, "Unsupported Media Type"},
    {429, "Too Many Requests"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
};

const char *gw_rest_status_phrase(unsigned status)
{
    for (size_t i = 0; i < sizeof phrases / sizeof phrases[0]; i++)
        if (phrases[i].status == status)
            return phrases[i].phrase;
    return "Error";
}

const char *gw_rest_problem(struct gw_json_out *w, unsigned status, const char *slug,
                            const char *detail, const char *request_id, size_t *len)
{
    char type[96];
    snprintf(type, sizeof type, "urn:mxgw:problem:%s", slug);
    gw_json_reset(w);
    gw_json_open(w);
    gw_json_kv(w, "type", type);
    gw_json_kv(w, "title", gw_rest_status_phrase(status));
    gw_json_key(w, "status");
    gw_json_integer(w, status);
    gw_json_kv(w, "detail", detail);
    gw_json_kv(w, "request_id", request_id);
    gw_json_close(w);
    return gw_json_text(w, len);
}

/* ---- headers ---- */

/* Parses a q parameter's value; false when the range says "not acceptable" (q=0). */
static bool q_positive(const char *params, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++) {
        if ((params[i] == 'q' || params[i] == 'Q') && params[i + 1] == '=' &&
            (i == 0 || params[i - 1] == ';' || params[i - 1] == ' ')) {
            const char *v = params + i + 2;
            size_t vn = n - (i + 2);
            for (size_t k = 0; k < vn && v[k] != ';'; k++)
                if (v[k] >= '1' && v[k] <= '9')
                    return true;
            return false;
        }
    }
    return true;
}

bool gw_rest_accepts_json(const char *accept)
{
    if (!accept)
        return true;
    static const char *const ok[] = {"application/json", "application/problem+json",
                                     "application/*", "*/*"};
    bool any = false;
    for (const char *p = accept; *p;) {
        p += strspn(p, " \t,");
        if (!*p)
            break;
        size_t n = strcspn(p, ",");
        any = true;
        size_t tn = strcspn(p, ";, \t");
        if (tn > n)
            tn = n;
        for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
            if (strlen(ok[i]) == tn && strncasecmp(ok[i], p, tn) == 0 && q_positive(p + tn, n - tn))
                return true;
        p += n;
    }
    return !any; /* an empty Accept asks for nothing in particular */
}

int gw_rest_media_type(const char *ct)
{
    if (!ct)
        return 0;
    ct += strspn(ct, " \t");
    size_t n = strcspn(ct, "; \t");
    int kind = 0;
    if (n == 16 && strncasecmp(ct, "application/json", 16) == 0)
        kind = 1;
    else if ((n == 15 && strncasecmp(ct, "application/xml", 15) == 0) ||
             (n == 8 && strncasecmp(ct, "text/xml", 8) == 0))
        kind = 2;
    if (!kind)
        return 0;
    /* Parameters: only charset, and only UTF-8 (RFC 8259 §8.1 for JSON; XMPP is UTF-8). */
    for (const char *p = ct + n; *p;) {
        p += strspn(p, " \t;");
        if (!*p)
            break;
        size_t pn = strcspn(p, ";");
        char param[64];
        size_t k = 0;
        for (size_t i = 0; i < pn && k + 1 < sizeof param; i++)
            if (p[i] != ' ' && p[i] != '\t' && p[i] != '"')
                param[k++] = (char)tolower((unsigned char)p[i]);
        param[k] = '\0';
        if (strcmp(param, "charset=utf-8") != 0)
            return 0;
        p += pn;
    }
    return kind;
}

bool gw_rest_request_id_ok(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n <= 64 &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}
