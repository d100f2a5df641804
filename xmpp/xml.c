/* XML element trees, a capped growable buffer, and an escaping serializer. */
#include "xmpp/xml.h"

#include "gateway/err.h"
#include "gateway/mem.h"
#include "gateway/utf8.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- buffer ---- */

void gw_buf_init(struct gw_buf *b, size_t max)
{
    b->data = NULL;
    b->len = b->cap = 0;
    b->max = max;
}

void gw_buf_free(struct gw_buf *b)
{
    free(b->data);
    gw_buf_init(b, b->max);
}

void gw_buf_reset(struct gw_buf *b)
{
    b->len = 0;
}

static int reserve(struct gw_buf *b, size_t extra)
{
    if (b->max && (extra > b->max || b->len > b->max - extra))
        return GW_ELIMIT;
    size_t need = b->len + extra + 1; /* room for a terminating NUL */
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    if (b->max && cap > b->max + 1)
        cap = b->max + 1;
    b->data = gw_realloc(b->data, cap);
    b->cap = cap;
    return 0;
}

int gw_buf_append(struct gw_buf *b, const void *p, size_t n)
{
    int rc = reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int gw_buf_puts(struct gw_buf *b, const char *s)
{
    return gw_buf_append(b, s, strlen(s));
}

int gw_buf_printf(struct gw_buf *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return GW_EINVAL;
    if ((size_t)n < sizeof small)
        return gw_buf_append(b, small, (size_t)n);
    int rc = reserve(b, (size_t)n);
    if (rc)
        return rc;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void gw_buf_consume(struct gw_buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

/* ---- tree ---- */

/* A node is one allocation that can also hold its strings and its attribute array: an element
 * from the parser takes one malloc instead of some twenty (three strings per name, four per
 * attribute, and the array). node->block is that allocation's size. A string or array outside
 * it was allocated on its own, by a later change, and is freed on its own. */
#define MAX_BLOCK (1u << 31) /* larger nodes keep their strings apart */

static char *dup_or_null(const char *s)
{
    return s ? gw_strdup(s) : NULL;
}

/* The capacity of an attribute array of its own holding n (see grow_attrs). */
static size_t attr_cap(size_t n)
{
    size_t cap = n ? 1 : 0;
    while (cap < n)
        cap *= 2;
    return cap;
}

static bool inside(const struct gw_xml *n, const void *p)
{
    uintptr_t a = (uintptr_t)p, b = (uintptr_t)n;
    return a >= b && a < b + n->block;
}

static void release(const struct gw_xml *n, void *p)
{
    if (!inside(n, p))
        free(p);
}

/* A part of a name, not NUL-terminated; s NULL: absent. */
struct span {
    const char *s;
    size_t len;
};

static struct span span_of(const char *s)
{
    return (struct span){s, s ? strlen(s) : 0};
}

static size_t room(struct span sp)
{
    return sp.s ? sp.len + 1 : 0;
}

/* Copies sp to *at, NUL-terminated, and advances *at; NULL for an absent part. */
static char *put(char **at, struct span sp)
{
    if (!sp.s)
        return NULL;
    char *d = *at;
    memcpy(d, sp.s, sp.len);
    d[sp.len] = '\0';
    *at += sp.len + 1;
    return d;
}

/* A node of kind with `strings` bytes and nattrs attribute slots after it; *at is where the
 * strings go. Falls back to the node alone (strings and array apart) if that is too large. */
static struct gw_xml *node_alloc(enum gw_xml_node_kind kind, size_t nattrs, size_t strings,
                                 char **at)
{
    size_t size = sizeof(struct gw_xml) + nattrs * sizeof(struct gw_xml_attr) + strings;
    struct gw_xml *n;
    if (size < MAX_BLOCK) {
        n = gw_malloc(size);
        memset(n, 0, sizeof *n);
        n->block = (unsigned)size;
        n->attrs = nattrs ? (struct gw_xml_attr *)(n + 1) : NULL;
        *at = (char *)(n + 1) + nattrs * sizeof(struct gw_xml_attr);
    } else {
        n = gw_calloc(1, sizeof *n);
        n->block = sizeof *n;
        n->attrs = nattrs ? gw_calloc(attr_cap(nattrs), sizeof *n->attrs) : NULL;
        *at = NULL;
    }
    n->kind = kind;
    n->nattrs = nattrs;
    return n;
}

/* Copies sp into the node's block when it has one, else on its own. */
static char *place(char **at, struct span sp)
{
    if (*at)
        return put(at, sp);
    return sp.s ? gw_strndup(sp.s, sp.len) : NULL;
}

/* An element from its parts: q[0..2] namespace, local name, prefix; a[4 * i ...] attribute i's
 * namespace, local name, prefix and value. */
static struct gw_xml *element_of(const struct span q[3], const struct span *a, size_t nattrs)
{
    size_t strings = room(q[0]) + room(q[1]) + room(q[2]);
    for (size_t i = 0; i < 4 * nattrs; i++)
        strings += room(a[i]);
    char *at;
    struct gw_xml *el = node_alloc(GW_XML_ELEMENT, nattrs, strings, &at);
    el->ns = place(&at, q[0]);
    el->name = place(&at, q[1]);
    el->prefix = place(&at, q[2]);
    for (size_t i = 0; i < nattrs; i++) {
        struct gw_xml_attr *t = &el->attrs[i];
        t->ns = place(&at, a[4 * i]);
        t->name = place(&at, a[4 * i + 1]);
        t->prefix = place(&at, a[4 * i + 2]);
        t->value = place(&at, a[4 * i + 3]);
    }
    return el;
}

struct gw_xml *gw_xml_new(const char *ns, const char *name)
{
    struct span q[3] = {span_of(ns), span_of(name), {NULL, 0}};
    return element_of(q, NULL, 0);
}

struct gw_xml *gw_xml_new_attrs(const char *ns, const char *name, const char *const *pairs,
                                size_t npairs)
{
    enum { MAX = 8 };
    struct span q[3] = {span_of(ns), span_of(name), {NULL, 0}};
    struct span a[4 * MAX] = {{NULL, 0}};
    size_t n = 0, i = 0;
    for (; i < npairs && n < MAX; i++) {
        if (!pairs[2 * i + 1])
            continue;
        a[4 * n + 1] = span_of(pairs[2 * i]); /* no namespace, no prefix */
        a[4 * n + 3] = span_of(pairs[2 * i + 1]);
        n++;
    }
    struct gw_xml *el = element_of(q, a, n);
    for (; i < npairs; i++) /* past MAX: one by one */
        gw_xml_set_attr(el, pairs[2 * i], pairs[2 * i + 1]);
    return el;
}

/* Splits a triplet into namespace, local name and prefix. */
static void split(const char *qname, char sep, struct span q[3])
{
    const char *a = strchr(qname, sep);
    if (!a) {
        q[0] = (struct span){NULL, 0};
        q[1] = span_of(qname);
        q[2] = (struct span){NULL, 0};
        return;
    }
    q[0] = (struct span){qname, (size_t)(a - qname)};
    const char *b = strchr(a + 1, sep);
    if (b) {
        q[1] = (struct span){a + 1, (size_t)(b - a - 1)};
        q[2] = span_of(b + 1);
    } else {
        q[1] = span_of(a + 1);
        q[2] = (struct span){NULL, 0};
    }
}

struct gw_xml *gw_xml_new_parsed(const char *qname, const char **atts, char sep)
{
    size_t n = 0;
    while (atts[2 * n])
        n++;
    struct span small[4 * 8] = {{NULL, 0}};
    struct span *a = n <= 8 ? small : gw_malloc(4 * n * sizeof *a);
    for (size_t i = 0; i < n; i++) {
        split(atts[2 * i], sep, &a[4 * i]);
        a[4 * i + 3] = span_of(atts[2 * i + 1]);
    }
    struct span q[3];
    split(qname, sep, q);
    struct gw_xml *el = element_of(q, a, n);
    if (a != small)
        free(a);
    return el;
}

struct gw_xml *gw_xml_new_text(const char *text, size_t len)
{
    char *at;
    struct gw_xml *t = node_alloc(GW_XML_TEXT, 0, len + 1, &at);
    t->text = place(&at, (struct span){text, len});
    t->text_len = len;
    return t;
}

struct gw_xml *gw_xml_append(struct gw_xml *parent, struct gw_xml *child)
{
    child->next = NULL;
    if (parent->last_child)
        parent->last_child->next = child;
    else
        parent->children = child;
    parent->last_child = child;
    return child;
}

struct gw_xml *gw_xml_add_child(struct gw_xml *parent, const char *ns, const char *name)
{
    return gw_xml_append(parent, gw_xml_new(ns ? ns : parent->ns, name));
}

void gw_xml_add_text(struct gw_xml *parent, const char *text, size_t len)
{
    struct gw_xml *last = parent->last_child;
    if (last && last->kind == GW_XML_TEXT) {
        char *old = last->text;
        if (inside(last, old)) {
            last->text = gw_malloc(last->text_len + len + 1);
            memcpy(last->text, old, last->text_len);
        } else {
            last->text = gw_realloc(old, last->text_len + len + 1);
        }
        memcpy(last->text + last->text_len, text, len);
        last->text_len += len;
        last->text[last->text_len] = '\0';
        return;
    }
    gw_xml_append(parent, gw_xml_new_text(text, len));
}

void gw_xml_set_ns(struct gw_xml *el, const char *ns)
{
    char *old = el->ns;
    el->ns = ns ? gw_strdup(ns) : NULL;
    release(el, old);
}

void gw_xml_set_prefix(struct gw_xml *el, const char *prefix)
{
    char *old = el->prefix;
    el->prefix = prefix ? gw_strdup(prefix) : NULL;
    release(el, old);
}

static bool same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static struct gw_xml_attr *find_attr(const struct gw_xml *el, const char *ns, const char *name)
{
    for (size_t i = 0; i < el->nattrs; i++) {
        const char *n = el->attrs[i].name;
        if (n[0] == name[0] && strcmp(n, name) == 0 && same(el->attrs[i].ns, ns))
            return &el->attrs[i];
    }
    return NULL;
}

static void free_attr(const struct gw_xml *el, struct gw_xml_attr *a)
{
    release(el, a->ns);
    release(el, a->prefix);
    release(el, a->name);
    release(el, a->value);
}

/* Room for one more attribute. An array of its own has room for attr_cap(nattrs), so it grows
 * in powers of two; the array in the node's block is copied out the first time. */
static void grow_attrs(struct gw_xml *el)
{
    size_t n = el->nattrs;
    if (el->attrs && inside(el, el->attrs)) {
        struct gw_xml_attr *a = gw_malloc(attr_cap(n + 1) * sizeof *a);
        memcpy(a, el->attrs, n * sizeof *a);
        el->attrs = a;
    } else if (attr_cap(n + 1) > attr_cap(n)) {
        el->attrs = gw_realloc(el->attrs, attr_cap(n + 1) * sizeof *el->attrs);
    }
}

void gw_xml_set_attr_ns(struct gw_xml *el, const char *ns, const char *prefix, const char *name,
                        const char *value)
{
    struct gw_xml_attr *a = find_attr(el, ns, name);
    if (!value) {
        if (a) {
            free_attr(el, a);
            size_t i = (size_t)(a - el->attrs);
            memmove(a, a + 1, (el->nattrs - i - 1) * sizeof *a);
            el->nattrs--;
        }
        return;
    }
    if (a) {
        char *old = a->value, *old_prefix = a->prefix;
        a->value = gw_strdup(value);
        a->prefix = dup_or_null(prefix);
        release(el, old);
        release(el, old_prefix);
        return;
    }
    grow_attrs(el);
    a = &el->attrs[el->nattrs++];
    a->ns = dup_or_null(ns);
    a->prefix = dup_or_null(prefix);
    a->name = gw_strdup(name);
    a->value = gw_strdup(value);
}

void gw_xml_set_attr(struct gw_xml *el, const char *name, const char *value)
{
    gw_xml_set_attr_ns(el, NULL, NULL, name, value);
}

/* Iterative so that freeing never recurses with the tree's depth. */
void gw_xml_free(struct gw_xml *node)
{
    if (!node)
        return;
    node->next = NULL;
    struct gw_xml *stack = node;
    while (stack) {
        struct gw_xml *n = stack;
        stack = n->next;
        if (n->children) {
            n->last_child->next = stack;
            stack = n->children;
        }
        for (size_t i = 0; i < n->nattrs; i++)
            free_attr(n, &n->attrs[i]);
        release(n, n->attrs);
        release(n, n->ns);
        release(n, n->prefix);
        release(n, n->name);
        release(n, n->text);
        free(n);
    }
}

struct gw_xml *gw_xml_copy(const struct gw_xml *node)
{
    if (node->kind == GW_XML_TEXT)
        return gw_xml_new_text(node->text, node->text_len);
    struct span q[3] = {span_of(node->ns), span_of(node->name), span_of(node->prefix)};
    struct span small[4 * 8] = {{NULL, 0}};
    size_t n = node->nattrs;
    struct span *a = n <= 8 ? small : gw_malloc(4 * n * sizeof *a);
    for (size_t i = 0; i < n; i++) {
        const struct gw_xml_attr *t = &node->attrs[i];
        a[4 * i] = span_of(t->ns);
        a[4 * i + 1] = span_of(t->name);
        a[4 * i + 2] = span_of(t->prefix);
        a[4 * i + 3] = span_of(t->value);
    }
    struct gw_xml *el = element_of(q, a, n);
    if (a != small)
        free(a);
    for (const struct gw_xml *c = node->children; c; c = c->next)
        gw_xml_append(el, gw_xml_copy(c));
    return el;
}

const char *gw_xml_attr(const struct gw_xml *el, const char *name)
{
    struct gw_xml_attr *a = find_attr(el, NULL, name);
    return a ? a->value : NULL;
}

const char *gw_xml_attr_ns(const struct gw_xml *el, const char *ns, const char *name)
{
    struct gw_xml_attr *a = find_attr(el, ns, name);
    return a ? a->value : NULL;
}

bool gw_xml_is(const struct gw_xml *el, const char *ns, const char *name)
{
    return el && el->kind == GW_XML_ELEMENT && strcmp(el->name, name) == 0 &&
           (!ns || (el->ns && strcmp(el->ns, ns) == 0));
}

const char *gw_xml_error_condition(const struct gw_xml *err, const char *ns)
{
    for (const struct gw_xml *k = err->children; k; k = k->next)
        if (k->kind == GW_XML_ELEMENT && k->ns && strcmp(k->ns, ns) == 0 &&
            strcmp(k->name, "text") != 0)
            return k->name;
    return NULL;
}

struct gw_xml *gw_xml_child(const struct gw_xml *el, const char *ns, const char *name)
{
    for (struct gw_xml *c = el->children; c; c = c->next)
        if (gw_xml_is(c, ns, name))
            return c;
    return NULL;
}

struct gw_xml *gw_xml_next_element(const struct gw_xml *parent, const struct gw_xml *cur)
{
    struct gw_xml *c = cur ? cur->next : parent->children;
    while (c && c->kind != GW_XML_ELEMENT)
        c = c->next;
    return c;
}

char *gw_xml_text(const struct gw_xml *el)
{
    size_t n = 0;
    for (const struct gw_xml *c = el->children; c; c = c->next)
        if (c->kind == GW_XML_TEXT)
            n += c->text_len;
    char *s = gw_malloc(n + 1), *p = s;
    for (const struct gw_xml *c = el->children; c; c = c->next)
        if (c->kind == GW_XML_TEXT) {
            memcpy(p, c->text, c->text_len);
            p += c->text_len;
        }
    *p = '\0';
    return s;
}

/* ---- serializer ---- */

/* attr: also escape tab, LF and CR, which attribute-value normalization would turn into
 * spaces. CR is escaped in text too, where line-end normalization would turn it into LF. */
static int escape(struct gw_buf *out, const char *s, size_t len, bool attr)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t run = 0; /* bytes copied verbatim in one go */
    for (size_t i = 0; i < len;) {
        unsigned char c = p[i];
        if (c >= 0x20 && c < 0x7f && c != '&' && c != '<' && c != '>' && c != '\'' && c != '"') {
            i++; /* most text: printable ASCII that needs no escape */
            continue;
        }
        const char *rep = NULL;
        switch (c) {
        case '&':
            rep = "&amp;";
            break;
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '\'':
            rep = "&apos;";
            break;
        case '"':
            rep = "&quot;";
            break;
        case '\r':
            rep = "&#13;";
            break;
        case '\n':
            rep = attr ? "&#10;" : NULL;
            break;
        case '\t':
            rep = attr ? "&#9;" : NULL;
            break;
        default:
            break;
        }
        if (rep) {
            int rc = gw_buf_append(out, s + run, i - run);
            if (!rc)
                rc = gw_buf_puts(out, rep);
            if (rc)
                return rc;
            i++;
            run = i;
            continue;
        }
        size_t n = gw_utf8_xml_char(p + i, len - i);
        if (!n)
            return GW_EINVAL;
        i += n;
    }
    return gw_buf_append(out, s + run, len - run);
}

int gw_xml_escape(struct gw_buf *out, const char *s, size_t len)
{
    return escape(out, s, len, true);
}

/* Namespace declarations in scope while serializing: a small stack of prefix → uri. */
struct scope {
    const char *prefix; /* NULL: the default namespace */
    const char *uri;
};

#define MAX_SCOPE 256

struct ser {
    struct gw_buf *out;
    struct scope sc[MAX_SCOPE];
    char names[MAX_SCOPE][12]; /* generated prefixes, by scope slot */
    size_t n;
    int rc; /* the first failure: nothing is appended after it */
};

/* Appends n bytes, inline while they fit: this runs several times for every element and
 * attribute. The terminating NUL is written once, at the end (gw_xml_serialize). */
static void add(struct ser *s, const char *p, size_t n)
{
    struct gw_buf *b = s->out;
    if (s->rc)
        return;
    if (b->len + n < b->cap && (!b->max || b->len + n <= b->max)) {
        memcpy(b->data + b->len, p, n);
        b->len += n;
        return;
    }
    s->rc = gw_buf_append(b, p, n);
}

#define ADD_LIT(s, lit) add((s), (lit), sizeof(lit) - 1)

static void add_str(struct ser *s, const char *str)
{
    add(s, str, strlen(str));
}

static void add_escaped(struct ser *s, const char *str, size_t len, bool attr)
{
    if (!s->rc)
        s->rc = escape(s->out, str, len, attr);
}

static const char *lookup(const struct ser *s, const char *prefix)
{
    for (size_t i = s->n; i > 0; i--)
        if (same(s->sc[i - 1].prefix, prefix))
            return s->sc[i - 1].uri;
    return NULL;
}

static int declare(struct ser *s, const char *prefix, const char *uri)
{
    if (s->n == MAX_SCOPE)
        return s->rc = GW_ELIMIT;
    s->sc[s->n].prefix = prefix;
    s->sc[s->n].uri = uri;
    s->n++;
    if (prefix) {
        ADD_LIT(s, " xmlns:");
        add_str(s, prefix);
    } else {
        ADD_LIT(s, " xmlns");
    }
    ADD_LIT(s, "='");
    add_escaped(s, uri ? uri : "", uri ? strlen(uri) : 0, true);
    ADD_LIT(s, "'");
    return s->rc;
}

/* Chooses the prefix an attribute in namespace ns is written with, declaring it if needed. */
static int attr_prefix(struct ser *s, const struct gw_xml_attr *a, const char **prefix,
                       unsigned *gen)
{
    if (!a->ns) {
        *prefix = NULL;
        return 0;
    }
    if (strcmp(a->ns, GW_NS_XML) == 0) {
        *prefix = "xml";
        return 0;
    }
    if (a->prefix && same(lookup(s, a->prefix), a->ns)) {
        *prefix = a->prefix;
        return 0;
    }
    for (size_t i = s->n; i > 0; i--)
        if (s->sc[i - 1].prefix && same(s->sc[i - 1].uri, a->ns) &&
            same(lookup(s, s->sc[i - 1].prefix), a->ns)) {
            *prefix = s->sc[i - 1].prefix;
            return 0;
        }
    /* Declare: the original prefix if it is free on this element, else a generated one. */
    const char *p = a->prefix;
    if (s->n == MAX_SCOPE)
        return s->rc = GW_ELIMIT;
    if (!p || strcmp(p, "xml") == 0 || strcmp(p, "xmlns") == 0 || lookup(s, p)) {
        do {
            snprintf(s->names[s->n], sizeof s->names[0], "ns%u", (*gen)++);
        } while (lookup(s, s->names[s->n]));
        p = s->names[s->n];
    }
    *prefix = p;
    return declare(s, p, a->ns);
}

static int ser_element(struct ser *s, const struct gw_xml *el, unsigned depth)
{
    if (depth > 1024)
        return s->rc = GW_ELIMIT;
    size_t mark = s->n;
    const char *prefix = el->prefix;
    /* Element prefix: keep the original one unless it is bound to another namespace in a way we
     * cannot redeclare (the default namespace is always redeclarable on the element itself). */
    if (prefix && strcmp(prefix, "xml") == 0)
        prefix = NULL;
    if (prefix && !el->ns)
        prefix = NULL;
    size_t prefix_len = prefix ? strlen(prefix) : 0, name_len = strlen(el->name);
    ADD_LIT(s, "<");
    if (prefix) {
        add(s, prefix, prefix_len);
        ADD_LIT(s, ":");
    }
    add(s, el->name, name_len);
    if (s->rc)
        return s->rc;
    if (!same(lookup(s, prefix), el->ns) && declare(s, prefix, el->ns))
        return s->rc;
    unsigned gen = 0;
    for (size_t i = 0; i < el->nattrs; i++) {
        const struct gw_xml_attr *a = &el->attrs[i];
        const char *ap;
        int rc = attr_prefix(s, a, &ap, &gen);
        if (rc)
            return rc;
        ADD_LIT(s, " ");
        if (ap) {
            add_str(s, ap);
            ADD_LIT(s, ":");
        }
        add_str(s, a->name);
        ADD_LIT(s, "='");
        add_escaped(s, a->value, strlen(a->value), true);
        ADD_LIT(s, "'");
    }
    if (!el->children) {
        ADD_LIT(s, "/>");
    } else {
        ADD_LIT(s, ">");
        for (const struct gw_xml *c = el->children; !s->rc && c; c = c->next) {
            if (c->kind == GW_XML_TEXT)
                add_escaped(s, c->text, c->text_len, false);
            else
                ser_element(s, c, depth + 1);
        }
        ADD_LIT(s, "</");
        if (prefix) {
            add(s, prefix, prefix_len);
            ADD_LIT(s, ":");
        }
        add(s, el->name, name_len);
        ADD_LIT(s, ">");
    }
    s->n = mark;
    return s->rc;
}

int gw_xml_serialize(struct gw_buf *out, const struct gw_xml *el, const char *default_ns)
{
    /* On the stack (7 KB): as a heap block this size made every serialization take glibc's
     * large-request path, which consolidates the fast bins each time. */
    struct ser ser;
    struct ser *s = &ser;
    s->out = out;
    s->n = 0;
    s->rc = 0;
    s->sc[s->n++] = (struct scope){"xml", GW_NS_XML};
    if (default_ns)
        s->sc[s->n++] = (struct scope){NULL, default_ns};
    size_t start = out->len;
    int rc = ser_element(s, el, 0);
    if (rc)
        out->len = start; /* leave nothing half-written */
    if (out->data)
        out->data[out->len] = '\0';
    return rc;
}
