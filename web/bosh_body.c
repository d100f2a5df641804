/* BOSH <body/> wrappers: request parsing and validation, response wrapper writing. */
#include "web/bosh_body.h"

#include "gateway/err.h"

#include <stdio.h>
#include <string.h>

#define MAX_KEY     128
#define MAX_CONTENT 128

int gw_bosh_parse_uint(const char *s, uint64_t max, uint64_t *out)
{
    if (!s || !*s)
        return GW_EINVAL;
    uint64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return GW_EINVAL;
        unsigned d = (unsigned)(*s - '0');
        v = v > (max - d) / 10 ? max : v * 10 + d;
    }
    *out = v;
    return 0;
}

static bool is_hex_key(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > MAX_KEY)
        return false;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f') || (*s >= 'A' && *s <= 'F')))
            return false;
    return true;
}

/* A header value we may copy into Content-Type: printable ASCII only (no CR/LF injection). */
static bool is_header_text(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > MAX_CONTENT)
        return false;
    for (; *s; s++)
        if (*s < 0x20 || *s > 0x7e)
            return false;
    return true;
}

static bool is_true(const char *s)
{
    return s && (strcmp(s, "true") == 0 || strcmp(s, "1") == 0);
}

/* "major.minor", each a separate integer (XEP-0124 §7.1). */
static int parse_ver(const char *s, unsigned *major, unsigned *minor)
{
    const char *dot = strchr(s, '.');
    if (!dot || dot == s || dot[1] == '\0' || dot - s > 6 || strlen(dot + 1) > 6)
        return GW_EINVAL;
    char a[8];
    memcpy(a, s, (size_t)(dot - s));
    a[dot - s] = '\0';
    uint64_t ma, mi;
    if (gw_bosh_parse_uint(a, 999999, &ma) || gw_bosh_parse_uint(dot + 1, 999999, &mi))
        return GW_EINVAL;
    *major = (unsigned)ma;
    *minor = (unsigned)mi;
    return 0;
}

static int validate(struct gw_bosh_body *b)
{
    struct gw_xml *root = b->root;
    if (!gw_xml_is(root, GW_NS_HTTPBIND, "body"))
        return GW_EPROTO;
    /* XEP-0124 §6: the wrapper holds elements only (whitespace between them is layout). */
    for (const struct gw_xml *c = root->children; c; c = c->next) {
        if (c->kind == GW_XML_ELEMENT) {
            b->npayloads++;
            continue;
        }
        for (size_t i = 0; i < c->text_len; i++)
            if (!strchr(" \t\r\n", c->text[i]))
                return GW_EPROTO;
    }
    if (gw_bosh_parse_uint(gw_xml_attr(root, "rid"), GW_BOSH_RID_MAX + 1, &b->rid) != 0 ||
        b->rid == 0 || b->rid > GW_BOSH_RID_MAX)
        return GW_EPROTO;
    b->sid = gw_xml_attr(root, "sid");
    if (b->sid && !*b->sid)
        return GW_EPROTO;
    b->to = gw_xml_attr(root, "to");
    b->lang = gw_xml_attr_ns(root, GW_NS_XML, "lang");
    b->route = gw_xml_attr(root, "route");
    b->xmpp_version = gw_xml_attr_ns(root, GW_NS_XBOSH, "version");
    const char *v;
    if ((v = gw_xml_attr(root, "wait"))) {
        if (gw_bosh_parse_uint(v, UINT32_MAX, &b->wait))
            return GW_EPROTO;
        b->has_wait = true;
    }
    if ((v = gw_xml_attr(root, "hold"))) {
        if (gw_bosh_parse_uint(v, UINT32_MAX, &b->hold))
            return GW_EPROTO;
        b->has_hold = true;
    }
    if ((v = gw_xml_attr(root, "ver"))) {
        if (parse_ver(v, &b->ver_major, &b->ver_minor))
            return GW_EPROTO;
        b->has_ver = true;
    }
    if ((v = gw_xml_attr(root, "content")) && !is_header_text(v))
        return GW_EPROTO;
    b->content = v;
    if ((v = gw_xml_attr(root, "ack"))) {
        if (gw_bosh_parse_uint(v, GW_BOSH_RID_MAX, &b->ack))
            return GW_EPROTO;
        b->has_ack = true;
        /* In a creation request, ack='1' announces that the client will acknowledge. */
        b->ack_requested = !b->sid && b->ack == 1;
    }
    if ((v = gw_xml_attr(root, "pause"))) {
        if (gw_bosh_parse_uint(v, UINT32_MAX, &b->pause))
            return GW_EPROTO;
        b->has_pause = true;
    }
    if ((v = gw_xml_attr(root, "key")) && !is_hex_key(v))
        return GW_EPROTO;
    b->key = v;
    if ((v = gw_xml_attr(root, "newkey")) && !is_hex_key(v))
        return GW_EPROTO;
    b->newkey = v;
    if ((v = gw_xml_attr(root, "type"))) {
        if (strcmp(v, "terminate") != 0)
            return GW_EPROTO;
        b->terminate = true;
    }
    b->restart = is_true(gw_xml_attr_ns(root, GW_NS_XBOSH, "restart"));
    return 0;
}

int gw_bosh_body_parse(struct gw_xml_doc *doc, const char *data, size_t len,
                       const struct gw_xml_limits *lim, struct gw_bosh_body *out,
                       const char **condition)
{
    memset(out, 0, sizeof *out);
    const char *cond = NULL;
    int rc = doc ? gw_xml_doc_parse(doc, data, len, lim, &out->root, &cond)
                 : gw_xml_parse_document(data, len, lim, &out->root, &cond);
    if (rc != 0) {
        *condition =
            cond && strcmp(cond, "policy-violation") == 0 ? "policy-violation" : "bad-request";
        return rc;
    }
    rc = validate(out);
    if (rc != 0) {
        gw_bosh_body_free(out);
        *condition = "bad-request";
    }
    return rc;
}

void gw_bosh_body_free(struct gw_bosh_body *b)
{
    gw_xml_free(b->root);
    memset(b, 0, sizeof *b);
}

int gw_bosh_attr(struct gw_buf *out, const char *name, const char *value)
{
    int rc = gw_buf_printf(out, " %s='", name);
    if (!rc)
        rc = gw_xml_escape(out, value, strlen(value));
    if (!rc)
        rc = gw_buf_puts(out, "'");
    return rc;
}

int gw_bosh_attr_u64(struct gw_buf *out, const char *name, uint64_t value)
{
    return gw_buf_printf(out, " %s='%llu'", name, (unsigned long long)value);
}

int gw_bosh_wrapper_begin(struct gw_buf *out, const char *attrs)
{
    int rc = gw_buf_puts(out, "<body xmlns='" GW_NS_HTTPBIND "'");
    if (!rc && attrs)
        rc = gw_buf_puts(out, attrs);
    if (!rc)
        rc = gw_buf_puts(out, ">");
    return rc;
}

int gw_bosh_wrapper_end(struct gw_buf *out)
{
    return gw_buf_puts(out, "</body>");
}

int gw_bosh_terminal(struct gw_buf *out, const char *condition, const char *payload, size_t len)
{
    struct gw_buf attrs;
    gw_buf_init(&attrs, 0);
    int rc = gw_buf_puts(&attrs, " type='terminate'");
    if (!rc && condition)
        rc = gw_bosh_attr(&attrs, "condition", condition);
    if (!rc)
        rc = gw_buf_puts(&attrs, " xmlns:stream='" GW_NS_STREAM "'");
    if (!rc)
        rc = gw_bosh_wrapper_begin(out, attrs.data);
    if (!rc && len)
        rc = gw_buf_append(out, payload, len);
    if (!rc)
        rc = gw_bosh_wrapper_end(out);
    gw_buf_free(&attrs);
    return rc;
}

unsigned gw_bosh_legacy_status(const char *condition)
{
    if (!condition)
        return 200;
    if (strcmp(condition, "bad-request") == 0)
        return 400;
    if (strcmp(condition, "policy-violation") == 0)
        return 403;
    if (strcmp(condition, "item-not-found") == 0)
        return 404;
    return 200;
}
