/* The benchmark driver's shared types: sessions over RFC 7395, the JSON protocol and BOSH, one
 * libuv loop, and the hooks the transports call back into (logged in, message received). */
#ifndef BENCH_H
#define BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

enum bench_proto { PROTO_XMPP, PROTO_JSON, PROTO_BOSH };

#define RING_CAP 256 /* messages queued in the driver per sender before it counts a drop */

/* A message the scheduler asked a session to send: its sequence number and the time it was
 * due. Latency runs from the due time, so a late send (driver or server back-pressure) shows as
 * latency instead of hiding it (open loop). */
struct pending {
    uint64_t due_ns;
    uint32_t seq;
};

struct bench_sess {
    struct bench *b;
    unsigned idx;
    enum bench_proto proto;
    int step;       /* login state machine, per transport */
    bool logged_in; /* bound, ready for traffic */
    bool failed;    /* gave up: counted, never retried */
    char jid[128];  /* full JID once bound */
    struct bench_sess *peer;
    struct pending ring[RING_CAP];
    unsigned ring_head, ring_len;
    uint32_t rx_stanzas; /* JSON: stanzas received, for {"op":"a"} */
    bool ack_due;        /* JSON: the server asked {"op":"r"} */
    /* JSON with aliases: {"op":"alias","jid":peer} sent, its answer, the peer's number */
    bool alias_asked, peer_aliased;
    int peer_alias;
    unsigned inflight; /* saturation: sent by this session, not yet delivered */
    void *t;           /* the transport's per-session state */
};

struct bench_stats {
    uint64_t sent, delivered, dropped, bad;
    uint64_t msg_bytes; /* chat message frames or HTTP exchanges, sent + delivered */
    uint64_t ctl_bytes; /* everything else on the same sockets while measuring */
};

struct bench {
    uv_loop_t *loop;
    enum bench_proto proto;
    const char *url; /* ws://host:port/path or http://host:port/path */
    char host[64], path[128];
    int port;
    const char *domain;
    const char *user_prefix, *password;
    const char **sources; /* local addresses to bind, in turn */
    unsigned nsources;
    unsigned body_len;
    bool json_aliases;         /* JSON: turn JID aliases on and address the peer by its number */
    unsigned n, ready, failed; /* sessions wanted, logged in, failed */
    struct bench_sess *sess;
    bool measuring;  /* count latencies and bytes */
    bool saturating; /* closed loop: each delivery triggers the next send */
    uint64_t *lat;   /* latencies (ns) of messages delivered while measuring */
    size_t nlat, lat_cap;
    struct bench_stats st;
    void *ws_ctx; /* libwebsockets context, when a WebSocket protocol is used */
};

/* Transports: start a session's login (the transport calls bench_logged_in or bench_failed),
 * send whatever the session has queued, and report socket byte counters. */
void bench_ws_init(struct bench *b);
void bench_ws_start(struct bench_sess *s);
void bench_ws_kick(struct bench_sess *s);
void bench_ws_free(struct bench *b);
uint64_t bench_ws_tcp_bytes(struct bench_sess *s);

void bench_bosh_init(struct bench *b);
void bench_bosh_start(struct bench_sess *s);
void bench_bosh_kick(struct bench_sess *s);
void bench_bosh_free(struct bench *b);
uint64_t bench_bosh_tcp_bytes(struct bench_sess *s);
/* 1: the URL answers a BOSH session request; 0: it does not (refused, 404, no sid). Blocking:
 * called before the loop runs. */
int bench_bosh_probe(const char *host, int port, const char *path, const char *domain);

/* tcpinfo.c: bytes sent and received on a TCP socket (kernel counters). */
uint64_t bench_tcp_bytes(int fd);

/* Callbacks from the transports. */
void bench_logged_in(struct bench_sess *s, const char *jid);
void bench_failed(struct bench_sess *s, const char *why);
/* A chat body arrived at s: text is the body's first bytes (the encoded timestamp). */
void bench_received(struct bench_sess *s, const char *body, size_t len);
const char *bench_source(struct bench *b, unsigned idx);

/* Message text (msg.c): the one place that knows what the wire forms look like. Each returns
 * the length written into out (cap bytes), or 0 when it does not fit. */
size_t msg_body(char *out, size_t cap, unsigned len, uint64_t due_ns, uint32_t seq);
size_t msg_xml_chat(char *out, size_t cap, const char *to, uint32_t seq, const char *body);
size_t msg_json_chat(char *out, size_t cap, const char *to, uint32_t seq, const char *body);
/* The same addressed by the peer's alias (docs/json-protocol.md, "Aliases"). */
size_t msg_json_chat_alias(char *out, size_t cap, int to, uint32_t seq, const char *body);
/* {"op":"alias"} (jid NULL: turn aliases on) or {"op":"alias","jid":…} (ask for its number). */
size_t msg_json_alias(char *out, size_t cap, const char *jid);
/* The number in an {"op":"alias",…,"n":N} answer, or -1. */
int msg_json_alias_n(const char *text, size_t len);
size_t msg_json_login(char *out, size_t cap, const char *jid, const char *password);
size_t msg_json_ack(char *out, size_t cap, uint32_t h);
size_t msg_xml_open(char *out, size_t cap, const char *domain);
size_t msg_xml_auth_plain(char *out, size_t cap, const char *user, const char *password);
size_t msg_xml_bind(char *out, size_t cap);
/* Calls bench_received for every chat body in an XML text (one stanza or a BOSH body) or in a
 * JSON stanza; returns how many it found. */
unsigned msg_scan_xml(struct bench_sess *s, const char *text, size_t len);
unsigned msg_scan_json(struct bench_sess *s, const char *text, size_t len);
/* The text of <jid>…</jid> (bind result) or "jid":"…" (JSON session), copied into out. */
bool msg_find_jid(const char *text, size_t len, bool json, char *out, size_t cap);
/* Finds needle in the first len bytes of hay. */
const char *msg_find(const char *hay, size_t len, const char *needle);
/* WebSocket frame header size for a payload of len bytes (masked: client to server). */
size_t msg_ws_header(size_t len, bool masked);

#endif
