/* The providers: what goes over HTTP for one push.
 *
 * webhook: a small JSON document POSTed to push_webhook_url, signed so the app's push service
 *   can tell it comes from mxgw and is fresh: X-Mxgw-Timestamp is the Unix time, and
 *   X-Mxgw-Signature is "sha256=" + hex(HMAC-SHA256(secret, timestamp + "." + body)).
 * webpush and unifiedpush: RFC 8030 delivery of an RFC 8291 encrypted JSON document, padded to
 *   a multiple of 256 bytes so its length says nothing about what it holds, with TTL and
 *   Urgency (high for calls), a Topic for ordinary pushes (a push service keeps only the newest
 *   waiting one for an offline device: its count covers the others), and the VAPID
 *   Authorization (always for webpush; for unifiedpush when a key is configured).
 * Either document carries the registration id, the count, "urgent" for calls, and the sender
 * and body only when the server and the registration both opted in. Never the account JID. */
#include "push/push_impl.h"

#include "gateway/err.h"
#include "gateway/mem.h"
#include "push/b64.h"
#include "push/ece.h"
#include "push/http.h"
#include "push/vapid.h"
#include "xmpp/json.h"

#include <mbedtls/md.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAD_BLOCK 256

static void document(struct gw_json_out *w, const struct reg *r, const struct taken *t,
                     bool webhook, int64_t ts, const struct gw_config *cfg)
{
    gw_json_open(w);
    gw_json_key(w, "v");
    gw_json_integer(w, 1);
    gw_json_kv(w, "id", r->id);
    gw_json_key(w, "n");
    gw_json_integer(w, t->count);
    if (t->urgent) {
        gw_json_key(w, "urgent");
        gw_json_bool(w, true);
    }
    /* Checked again here, not only when queued: a server that turned an opt-in off since
     * must not send what was stored before. */
    if (!t->lite && t->sender && cfg->push_include_sender && r->with_sender)
        gw_json_kv(w, "from", t->sender);
    if (!t->lite && t->body && cfg->push_include_body && r->with_body)
        gw_json_kv(w, "body", t->body);
    if (webhook) {
        gw_json_kv(w, "token", r->token);
        gw_json_key(w, "ts");
        gw_json_integer(w, ts);
    }
    gw_json_close(w);
}

static int send_webhook(struct gw_push *p, const struct reg *r, const struct taken *t,
                        gw_http_done done, void *arg)
{
    int64_t ts = push_now_ms() / 1000;
    struct gw_json_out *w = gw_json_out_new(p->core->json_writers);
    document(w, r, t, true, ts, p->cfg);
    size_t len;
    const char *body = gw_json_text(w, &len);
    char stamp[24];
    int sl = snprintf(stamp, sizeof stamp, "%lld", (long long)ts);
    unsigned char mac[32];
    mbedtls_md_context_t md;
    mbedtls_md_init(&md);
    mbedtls_md_setup(&md, mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), 1);
    mbedtls_md_hmac_starts(&md, (const unsigned char *)p->webhook_secret,
                           strlen(p->webhook_secret));
    mbedtls_md_hmac_update(&md, (const unsigned char *)stamp, (size_t)sl);
    mbedtls_md_hmac_update(&md, (const unsigned char *)".", 1);
    mbedtls_md_hmac_update(&md, (const unsigned char *)body, len);
    mbedtls_md_hmac_finish(&md, mac);
    mbedtls_md_free(&md);
    char h_ts[48], h_sig[96];
    snprintf(h_ts, sizeof h_ts, "X-Mxgw-Timestamp: %s", stamp);
    int n = snprintf(h_sig, sizeof h_sig, "X-Mxgw-Signature: sha256=");
    for (int i = 0; i < 32; i++)
        n += snprintf(h_sig + n, sizeof h_sig - (size_t)n, "%02x", mac[i]);
    const char *headers[] = {"Content-Type: application/json", h_ts, h_sig};
    struct gw_http_req req = {p->webhook_url, headers, 3, body, len};
    int rc = gw_http_post(p->http, &req, done, arg);
    gw_json_out_free(w);
    return rc;
}

static int send_webpush(struct gw_push *p, const struct reg *r, const struct taken *t,
                        gw_http_done done, void *arg)
{
    uint8_t key[GW_WEBPUSH_KEY + 8], auth[GW_WEBPUSH_AUTH + 8];
    size_t kl = 0, al = 0;
    struct gw_http_url u;
    char why[128];
    if (!r->endpoint || !r->p256dh || !r->auth ||
        gw_b64url_decode(r->p256dh, strlen(r->p256dh), key, sizeof key, &kl) ||
        kl != GW_WEBPUSH_KEY ||
        gw_b64url_decode(r->auth, strlen(r->auth), auth, sizeof auth, &al) ||
        al != GW_WEBPUSH_AUTH || gw_http_check_url(p->http, r->endpoint, &u, why, sizeof why))
        return GW_EINVAL;
    const char *vapid = NULL;
    if (p->vapid)
        vapid = gw_vapid_header(p->vapid, u.origin, push_now_ms() / 1000);
    if (r->provider == PROV_WEBPUSH && !vapid)
        return GW_EINVAL;
    struct gw_json_out *w = gw_json_out_new(p->core->json_writers);
    document(w, r, t, false, 0, p->cfg);
    size_t len;
    const char *plain = gw_json_text(w, &len);
    /* The record (plaintext, delimiter, padding) fills whole blocks. */
    size_t record = (len + 1 + PAD_BLOCK - 1) / PAD_BLOCK * PAD_BLOCK;
    if (record > GW_WEBPUSH_MAX_PLAIN + 1)
        record = GW_WEBPUSH_MAX_PLAIN + 1;
    size_t pad = record > len + 1 ? record - len - 1 : 0;
    struct gw_buf body;
    gw_buf_init(&body, 0);
    int rc = gw_webpush_encrypt(p->core->rand, key, auth, (const uint8_t *)plain, len, pad, &body);
    gw_json_out_free(w);
    if (rc) {
        gw_buf_free(&body);
        return rc;
    }
    uint64_t ttl = p->cfg->push_ttl_ms / 1000;
    if (t->urgent && ttl > 60)
        ttl = 60; /* a call nobody took within a minute is over */
    char h_ttl[40], h_auth[1300];
    snprintf(h_ttl, sizeof h_ttl, "TTL: %llu", (unsigned long long)ttl);
    const char *headers[6] = {"Content-Encoding: aes128gcm",
                              "Content-Type: application/octet-stream", h_ttl,
                              t->urgent ? "Urgency: high" : "Urgency: normal"};
    size_t nh = 4;
    if (!t->urgent)
        headers[nh++] = "Topic: mxgw";
    if (vapid) {
        snprintf(h_auth, sizeof h_auth, "Authorization: %s", vapid);
        headers[nh++] = h_auth;
    }
    struct gw_http_req req = {r->endpoint, headers, nh, body.data, body.len};
    rc = gw_http_post(p->http, &req, done, arg);
    gw_buf_free(&body);
    return rc;
}

int push_send(struct gw_push *p, const struct reg *r, const struct taken *t,
              void (*done)(void *arg, const struct gw_http_res *res), void *arg)
{
    switch (r->provider) {
    case PROV_WEBHOOK:
        return p->webhook_url ? send_webhook(p, r, t, done, arg) : GW_EINVAL;
    case PROV_WEBPUSH:
    case PROV_UNIFIEDPUSH:
        return send_webpush(p, r, t, done, arg);
    default:
        return GW_EINVAL;
    }
}
