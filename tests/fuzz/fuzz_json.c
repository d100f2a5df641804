/* Fuzz target for the JSON protocol's parser and translator. Whatever parses and translates
 * must serialize to XML that expat reads back (the gateway must never send the server
 * something that is not well-formed), must translate back to JSON that parses, and that JSON
 * must translate to the same stanza again (the short forms and the element form lose
 * nothing). Half the inputs go through a connection with aliases on, so numeric "to" values
 * and alias bookkeeping are exercised too. */
#include "gateway/err.h"
#include "xmpp/json.h"
#include "xmpp/stream.h"
#include "xmpp/xlate.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct gw_xml_limits lim = {1 << 20, 1100, 1 << 16};

static int cmp_attr(const void *pa, const void *pb)
{
    const struct gw_xml_attr *a = pa, *b = pb;
    int c = strcmp(a->ns ? a->ns : "", b->ns ? b->ns : "");
    return c ? c : strcmp(a->name, b->name);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Attribute order and prefixes carry no meaning: sort the one, drop the other. */
static void normalize(struct gw_xml *el)
{
    gw_xml_set_prefix(el, NULL);
    for (size_t i = 0; i < el->nattrs; i++) {
        struct gw_xml_attr *a = &el->attrs[i];
        gw_xml_set_attr_ns(el, a->ns, NULL, a->name, a->value);
    }
    if (el->nattrs > 1)
        qsort(el->attrs, el->nattrs, sizeof el->attrs[0], cmp_attr);
    for (struct gw_xml *c = el->children; c; c = c->next)
        if (c->kind == GW_XML_ELEMENT)
            normalize(c);
}

static char *ser(const struct gw_xml *el)
{
    struct gw_buf b;
    gw_buf_init(&b, 0);
    char *s = gw_xml_serialize(&b, el, NULL) == 0 ? strdup(b.data ? b.data : "") : NULL;
    gw_buf_free(&b);
    return s;
}

/* The canonical text of a stanza: serialized and parsed back (so text runs and prefixes come
 * out alike however the tree was built), with attributes sorted, a message's absent type
 * written as normal (RFC 6121 §5.2.2), whitespace between its children dropped, and its
 * children in sorted order (the short forms put theirs first). NULL if el does not serialize; abort
 * if what it serializes to does not parse. */
static char *canonical(const struct gw_xml *el)
{
    char *text = ser(el);
    if (!text)
        return NULL;
    struct gw_xml *back = NULL;
    const char *cond;
    if (gw_xml_parse_document(text, strlen(text), &lim, &back, &cond) != 0)
        abort(); /* the translator produced XML that does not parse */
    free(text);
    if (strcmp(back->name, "message") == 0 && !gw_xml_attr(back, "type"))
        gw_xml_set_attr(back, "type", "normal");
    normalize(back);
    size_t n = 0, len = 0;
    for (struct gw_xml *c = back->children; c; c = c->next)
        n++;
    char **parts = malloc((n + 1) * sizeof *parts);
    n = 0;
    for (struct gw_xml *c = back->children; c; c = c->next) {
        if (c->kind == GW_XML_TEXT && strspn(c->text, " \t\r\n") == c->text_len)
            continue; /* whitespace between a stanza's children is not kept (docs) */
        parts[n] = c->kind == GW_XML_TEXT ? strdup(c->text) : ser(c);
        len += strlen(parts[n++]);
    }
    qsort(parts, n, sizeof *parts, cmp_str);
    for (struct gw_xml *c = back->children, *next; c; c = next) {
        next = c->next;
        gw_xml_free(c);
    }
    back->children = back->last_child = NULL;
    char *head = ser(back);
    char *out = malloc(strlen(head) + len + 1);
    strcpy(out, head);
    for (size_t i = 0; i < n; i++) {
        strcat(out, parts[i]);
        free(parts[i]);
    }
    free(parts);
    free(head);
    gw_xml_free(back);
    return out;
}

/* JSON text → stanza with the given context; NULL when refused. */
static struct gw_xml *to_xml(const char *text, size_t n, struct gw_xlate_ctx *ctx)
{
    struct gw_json *j = NULL;
    char err[160];
    if (gw_json_parse(text, n, 1 << 20, &j, err, sizeof err) != 0)
        return NULL;
    struct gw_xml *el = NULL;
    const char *cond;
    gw_xlate_json_stanza(j, ctx, &el, &cond, err, sizeof err);
    gw_json_free(j);
    return el;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct gw_alias *aliases = gw_alias_new();
    bool created;
    gw_alias_assign(aliases, "alice@example.com/phone", &created);
    gw_alias_assign(aliases, "room@conference.example.com", &created);
    struct gw_xlate_ctx ctx = {"me@example.com/x",        NULL,  "en",
                               size % 2 ? aliases : NULL, 65536, NULL};
    struct gw_xml *el = to_xml((const char *)data, size, &ctx);
    char *first = el ? canonical(el) : NULL;
    if (first) {
        /* Back to JSON: it must parse, and read as the same stanza. Our own JID as "to" would
         * be left out on the way (it is implied for delivered stanzas), and so would the stream's
         * language: write without either. */
        struct gw_xlate_ctx back_ctx = ctx;
        back_ctx.own_jid = NULL;
        back_ctx.stream_lang = NULL;
        struct gw_json_out *w = gw_json_out_new(NULL);
        gw_xlate_stanza_json(el, &back_ctx, w);
        size_t n;
        const char *text = gw_json_text(w, &n);
        struct gw_json *again = NULL;
        char err[160];
        if (gw_json_parse(text, n, 1 << 20, &again, err, sizeof err) != 0)
            abort(); /* the translator produced JSON that does not parse */
        gw_json_free(again);
        struct gw_xml *el2 = to_xml(text, n, &back_ctx);
        char *second = el2 ? canonical(el2) : NULL;
        if (!second || strcmp(first, second) != 0)
            abort(); /* JSON → XML → JSON → XML changed the stanza */
        free(second);
        gw_xml_free(el2);
        gw_json_out_free(w);
    }
    free(first);
    gw_xml_free(el);
    gw_alias_free(aliases);
    return 0;
}
