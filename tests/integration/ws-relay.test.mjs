// RFC 7395 relay through mxgw with real clients: @xmpp/client over WebSocket through mxgw
// (SCRAM-SHA-1, bind) talks to a second user connected to Prosody directly over TCP + STARTTLS;
// the session record in Redis follows the session's life.
//
// With MXGW_IT_TARGET=prosody the WebSocket user talks to Prosody's own mod_websocket instead,
// which validates the harness; the mxgw-only checks are skipped then.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import tls from "node:tls";
import crypto from "node:crypto";
import {
  Env, USERS, TARGET_PROSODY, NS, DOMAIN, RawWs, guarded, exchangeMessages, waitUntil, xml,
  tryParse,
} from "./lib/env.mjs";

let env;
let gw;
const wsUrl = () => (TARGET_PROSODY ? env.prosody.wsUrl : gw.wsUrl);
const viaGateway = { skip: TARGET_PROSODY && "targets Prosody's own WebSocket (MXGW_IT_TARGET=prosody)" };

before(async () => {
  env = await Env.start();
  if (!TARGET_PROSODY) gw = await env.startGateway();
}, { timeout: 60000 });

after(async () => {
  await env?.stop();
}, { timeout: 60000 });

test("@xmpp/client logs in through the WebSocket with SCRAM-SHA-1 and exchanges messages with a direct TCP user",
  { timeout: 30000 }, guarded(() => env, async () => {
    const bob = await env.login({
      service: env.prosody.tcpService, username: "bob", password: USERS.bob,
    });
    assert.ok(bob.socket instanceof tls.TLSSocket, "bob's TCP stream was upgraded with STARTTLS");
    assert.equal(bob.socket.authorized, true, "bob verified Prosody's certificate against the test CA");

    const alice = await env.login({
      service: wsUrl(), username: "alice", password: USERS.alice, mechanism: "SCRAM-SHA-1",
    });
    assert.ok(alice.offeredMechanisms.includes("SCRAM-SHA-1"));
    const auth = alice.sent.find((el) => el.is("auth", NS.sasl));
    assert.ok(auth, "alice sent a SASL <auth/>");
    assert.equal(auth.attrs.mechanism, "SCRAM-SHA-1");
    assert.equal(alice.jid.bare().toString(), `alice@${DOMAIN}`);
    assert.ok(alice.jid.getResource(), "a resource was bound");

    await exchangeMessages(alice, bob, "relay");

    // An IQ round trip to the server through the relay.
    const pong = await alice.xmpp.iqCaller.request(
      xml("iq", { type: "get", to: DOMAIN }, xml("ping", { xmlns: "urn:xmpp:ping" })), 10000);
    assert.equal(pong.attrs.type, "result");

    // A large stanza (inside the 16 KiB test limit) arrives intact in both directions.
    const big = "x".repeat(12000) + crypto.randomBytes(8).toString("hex");
    await alice.send(xml("message", { to: bob.jid.toString(), type: "chat" }, xml("body", {}, big)));
    await bob.waitFor((s) => s.getChildText("body") === big, { what: "the 12 KB message" });
    await bob.send(xml("message", { to: alice.jid.toString(), type: "chat" }, xml("body", {}, big)));
    await alice.waitFor((s) => s.getChildText("body") === big, { what: "the 12 KB message" });

    await alice.stop();
    await bob.stop();
  }));

test("the answer to <open/> is an <open/> from the domain, then features without STARTTLS",
  { timeout: 30000 }, guarded(() => env, async () => {
    const c = await RawWs.connect(wsUrl());
    try {
      assert.equal(c.ws.protocol, "xmpp", "the server selected the xmpp subprotocol");
      // RFC 7395 §3.4: an <open/> from the domain, version 1.0, with a stream id.
      const { open, features } = await c.openStream();
      assert.equal(open.attrs.from, DOMAIN);
      assert.equal(open.attrs.version, "1.0");
      assert.ok(open.attrs.id, `the <open/> carries a stream id: ${open}`);
      assert.ok(features.getChild("mechanisms", NS.sasl), `SASL is offered: ${features}`);
      assert.ok(!features.getChild("starttls", NS.tls),
        `STARTTLS is not offered on the WebSocket side: ${features}`);
    } finally {
      c.close();
    }
  }));

test("an upgrade offering other subprotocols besides xmpp gets xmpp", { timeout: 30000 },
  guarded(() => env, async () => {
    const c = await RawWs.connect(wsUrl(), { protocols: ["bogus-protocol", "xmpp"] });
    try {
      assert.equal(c.ws.protocol, "xmpp");
      await c.openStream();
    } finally {
      c.close();
    }
  }));

test("every WebSocket message carries exactly one element; <close/> is answered (raw client)",
  { timeout: 30000 }, guarded(() => env, async () => {
    const bob = await env.login({ service: env.prosody.tcpService, username: "bob", password: USERS.bob });
    const c = await RawWs.connect(wsUrl());
    try {
      const jid = await c.login("alice", USERS.alice);
      assert.match(jid, /^alice@localhost\/raw-/);
      // Three messages at once from bob: each must arrive as its own WebSocket message.
      const bodies = [1, 2, 3].map((i) => `burst ${i} ${crypto.randomBytes(4).toString("hex")}`);
      for (const b of bodies) await bob.send(xml("message", { to: jid, type: "chat" }, xml("body", {}, b)));
      const got = [];
      while (got.length < bodies.length) {
        const text = await c.nextText();
        const el = tryParse(text);
        assert.ok(el, `a message that is not exactly one element: ${text}`);
        if (el.is("message")) {
          assert.equal(el.attrs.xmlns, NS.client, "stanzas carry xmlns='jabber:client'");
          got.push(el.getChildText("body"));
        }
      }
      assert.deepEqual(got, bodies, "messages arrive one per frame and in order");
      c.send(`<close xmlns="${NS.framing}"/>`);
      const { code, messages } = await c.waitClose();
      const closes = messages.map(tryParse).filter((el) => el?.is("close", NS.framing));
      assert.equal(closes.length, 1, `the server answers <close/> with <close/> (got ${messages})`);
      assert.notEqual(code, 1006, "the WebSocket is closed with a close frame");
    } finally {
      c.close();
      await bob.stop();
    }
  }));

test("a client's namespaces mean the same upstream, whether mxgw forwards its text or its tree (raw client)",
  { timeout: 30000 }, guarded(() => env, async () => {
    const bob = await env.login({ service: env.prosody.tcpService, username: "bob", password: USERS.bob });
    const c = await RawWs.connect(wsUrl());
    try {
      await c.login("alice", USERS.alice);
      const to = bob.jid.toString();
      const tag = crypto.randomBytes(4).toString("hex");
      const got = (id) => bob.waitFor((s) => s.is("message") && s.attrs.id === id, { what: `message ${id}` });
      // Unprefixed in jabber:client: forwarded as written, trailing newline and entities included.
      c.send(`<message xmlns='jabber:client' to='${to}' type='chat' id='text-${tag}'>` +
        `<body>as written &amp; kept &#x1F600;</body><x xmlns='urn:example:x' a='1'><y/></x></message>\n`);
      let m = await got(`text-${tag}`);
      assert.equal(m.getChildText("body"), "as written & kept \u{1F600}");
      const x = m.getChild("x", "urn:example:x");
      assert.ok(x && x.attrs.a === "1" && x.getChild("y", "urn:example:x"), `the extension arrived intact: ${m}`);
      // A prefixed root: its unprefixed child is in no namespace, and stays there.
      c.send(`<c:message xmlns:c='jabber:client' to='${to}' type='chat' id='prefixed-${tag}'>` +
        `<c:body>prefixed</c:body><z/></c:message>`);
      m = await got(`prefixed-${tag}`);
      assert.equal(m.getChildText("body"), "prefixed");
      const z = m.getChild("z");
      assert.ok(z, `<z/> arrived: ${m}`);
      assert.equal(z.attrs.xmlns, "", `<z/> is in no namespace, not in jabber:client: ${m}`);
      // No xmlns at all: mxgw takes the stanza as jabber:client.
      if (!TARGET_PROSODY) {
        c.send(`<message to='${to}' type='chat' id='bare-${tag}'><body>no xmlns</body></message>`);
        m = await got(`bare-${tag}`);
        assert.equal(m.getChildText("body"), "no xmlns");
      }
    } finally {
      c.close();
      await bob.stop();
    }
  }));

test("the server's stanzas reach the client with their namespaces, whether mxgw forwards the server's bytes or its tree (raw client)",
  { timeout: 30000 }, guarded(() => env, async () => {
    // Messages and presences whose bytes stand alone go out as Prosody wrote them, with
    // xmlns='jabber:client' added to the root; an iq goes through the tree. Either way the
    // client must read the same namespaces, text and attributes.
    const bob = await env.login({ service: env.prosody.tcpService, username: "bob", password: USERS.bob });
    const c = await RawWs.connect(wsUrl());
    try {
      const jid = await c.login("alice", USERS.alice);
      const tag = crypto.randomBytes(4).toString("hex");
      const text = "a & b <c> 'q' \u{1F600}";
      await bob.send(xml("message", { to: jid, type: "chat", id: `m-${tag}`, "xml:lang": "de" },
        xml("body", {}, text), xml("x", { xmlns: "urn:example:x", a: "'&\"" }, xml("y", {}, "in x"))));
      await bob.send(xml("presence", { to: jid, id: `p-${tag}` }, xml("status", {}, text),
        xml("c", { xmlns: "http://jabber.org/protocol/caps", hash: "sha-1", node: "n", ver: "v" })));
      await bob.send(xml("iq", { to: jid, type: "get", id: `i-${tag}` }, xml("query", { xmlns: "urn:example:q" })));
      const seen = {};
      while (Object.keys(seen).length < 3) {
        const frame = await c.nextText();
        const el = tryParse(frame);
        assert.ok(el, `a frame that is not one element: ${frame}`);
        if (String(el.attrs.id).endsWith(tag)) seen[el.name] = { el, frame };
      }
      for (const { el, frame } of Object.values(seen)) {
        assert.equal(el.attrs.xmlns, NS.client, `the root is in jabber:client: ${frame}`);
        assert.equal(el.attrs.from, bob.jid.toString(), `from is bob's full JID: ${frame}`);
      }
      const m = seen.message.el;
      assert.equal(m.getChildText("body"), text, `the body's text: ${seen.message.frame}`);
      assert.equal(m.getChild("body").attrs.xmlns, undefined, "the body inherits jabber:client");
      assert.equal(m.attrs["xml:lang"], "de");
      const x = m.getChild("x", "urn:example:x");
      assert.ok(x, `the extension keeps its namespace: ${seen.message.frame}`);
      assert.equal(x.attrs.a, "'&\"");
      assert.equal(x.getChildText("y"), "in x");
      assert.equal(x.getChild("y").attrs.xmlns, undefined, "<y/> inherits urn:example:x");
      const p = seen.presence.el;
      assert.equal(p.getChildText("status"), text);
      assert.ok(p.getChild("c", "http://jabber.org/protocol/caps"), `caps keep their namespace: ${seen.presence.frame}`);
      assert.ok(seen.iq.el.getChild("query", "urn:example:q"), `the iq's query: ${seen.iq.frame}`);
    } finally {
      c.close();
      await bob.stop();
    }
  }));

test("a client that stops reading gets every stanza, in order, once it reads again",
  { timeout: 120000, ...viaGateway }, guarded(() => env, async () => {
    // mxgw writes a stanza at once while the client's socket takes it; once the socket is
    // full, lws keeps the part it could not send and later stanzas wait in mxgw's queue (and
    // past half of it mxgw stops reading the server). None may be lost or reordered.
    const bob = await env.login({ service: env.prosody.tcpService, username: "bob", password: USERS.bob });
    const c = await RawWs.connect(gw.wsUrl);
    try {
      const jid = await c.login("alice", USERS.alice);
      c.ws._socket.pause(); // alice stops reading (TCP)
      const pad = "x".repeat(16000);
      const bodies = [];
      for (let i = 0; i < 300; i++) {
        bodies.push(`slow ${i} ${pad}`);
        await bob.send(xml("message", { to: jid, type: "chat" }, xml("body", {}, bodies[i])));
      }
      await waitUntil(async () => (await gw.queuedBytes("ws")) > 0,
        { timeoutMs: 60000, what: "mxgw to queue for the client that does not read" });
      c.ws._socket.resume();
      const got = [];
      while (got.length < bodies.length) {
        const el = tryParse(await c.nextText(30000));
        if (el?.is("message")) got.push(el.getChildText("body"));
      }
      assert.equal(got.length, bodies.length);
      assert.ok(got.every((b, i) => b === bodies[i]), "every stanza arrives once, in order");
      await waitUntil(async () => (await gw.queuedBytes("ws")) === 0, { timeoutMs: 10000, what: "the queue to drain" });
      c.send(`<close xmlns="${NS.framing}"/>`);
      const { code } = await c.waitClose();
      assert.notEqual(code, 1006, "the stream ends cleanly");
    } finally {
      c.close();
      await bob.stop();
    }
  }));

test("frames of every header size reach the client intact when several leave in one write (raw client)",
  { timeout: 60000, ...viaGateway }, guarded(() => env, async () => {
    // mxgw frames what it sends a client itself and writes all a loop iteration produced for
    // it at once; the length field takes 1, 2 or 8 bytes (RFC 6455 §5.2). A burst from bob
    // puts frames just below, at and above 125/126 and 65535/65536 bytes into such writes.
    const big = await env.startGateway({ limit_stanza_bytes: 262144 });
    const bob = await env.login({ service: env.prosody.tcpService, username: "bob", password: USERS.bob });
    const c = await RawWs.connect(big.wsUrl);
    try {
      const jid = await c.login("alice", USERS.alice);
      const tag = crypto.randomBytes(4).toString("hex");
      const msg = (i, body) => xml("message", { to: jid, type: "chat", id: `${tag}-${String(i).padStart(3, "0")}` },
        xml("body", {}, body));
      // A probe gives the frame length of a one-byte body; the others differ by their body's.
      await bob.send(msg(0, "p"));
      let probe;
      while (!probe) {
        const t = await c.nextText();
        if (t.includes(`id='${tag}-000'`) || t.includes(`id="${tag}-000"`)) probe = Buffer.byteLength(t);
      }
      const targets = [125, 126, 127, 200, 65535, 65536, 65537, 100000, 127, 65535]
        .filter((n) => n >= probe);
      assert.ok(targets.includes(65536) && targets.includes(65535), `probe frame of ${probe} bytes`);
      const sent = targets.map((n, i) => ({ id: `${tag}-${String(i + 1).padStart(3, "0")}`, n,
        body: crypto.randomBytes(8).toString("hex").slice(0, 1) + "y".repeat(n - probe) }));
      await Promise.all(sent.map((m, i) => bob.send(msg(i + 1, m.body))));
      for (const m of sent) {
        let t;
        do t = await c.nextText(20000); while (!t.includes(m.id));
        const el = tryParse(t);
        assert.ok(el?.is("message"), `one element per frame: ${t.slice(0, 200)}`);
        assert.equal(el.attrs.id, m.id, "in order");
        assert.equal(el.getChildText("body"), m.body, `the body of ${m.id} arrived whole`);
        assert.equal(Buffer.byteLength(t), m.n, `frame ${m.id} is ${m.n} bytes`);
      }
    } finally {
      c.close();
      await bob.stop();
      await big.stop();
    }
  }));

test("the Redis session record follows the session: created, bound with the JID, deleted on close",
  { timeout: 30000, ...viaGateway }, guarded(() => env, async () => {
    const redis = env.redis;
    const t0 = Date.now();
    const alice = await env.login({ service: wsUrl(), username: "alice", password: USERS.alice });
    const bare = `alice@${DOMAIN}`;
    const ids = await waitUntil(async () => {
      const m = await redis.smembers(`mxgw:jid:${bare}`);
      return m.length ? m : null;
    }, { what: `mxgw:jid:${bare} to name the session` });
    assert.equal(ids.length, 1, `one session for ${bare}: ${ids}`);
    const id = ids[0];
    const key = `mxgw:session:${id}`;
    const rec = await waitUntil(async () => {
      const h = await redis.hgetall(key);
      return h.state === "bound" ? h : null;
    }, { what: `${key} state=bound` });
    assert.equal(rec.id, id);
    assert.equal(rec.node, gw.nodeId);
    assert.equal(rec.jid, bare);
    assert.equal(rec.transport, "ws-xmpp");
    assert.equal(rec.state, "bound");
    assert.equal(rec.ip, "127.0.0.1");
    const since = Number(rec.since);
    const last = Number(rec.last);
    assert.ok(Number.isInteger(since) && since >= t0 - 2000 && since <= Date.now() + 2000,
      `since is unix ms of the session start (got ${rec.since})`);
    assert.ok(Number.isInteger(last) && last >= since && last <= Date.now() + 2000,
      `last is unix ms, not before since (got ${rec.last})`);
    const ttl = await redis.ttl(key);
    assert.ok(ttl > 0 && ttl <= 300, `record TTL is session_ttl (5m), got ${ttl}`);
    assert.ok((await redis.smembers(`mxgw:node:${gw.nodeId}`)).includes(id),
      `mxgw:node:${gw.nodeId} lists the session`);

    await alice.stop();
    await waitUntil(async () => !(await redis.exists(key)), { what: `${key} to be deleted` });
    await waitUntil(async () => !(await redis.smembers(`mxgw:jid:${bare}`)).includes(id),
      { what: `session ${id} to leave mxgw:jid:${bare}` });
    await waitUntil(async () => !(await redis.smembers(`mxgw:node:${gw.nodeId}`)).includes(id),
      { what: `session ${id} to leave mxgw:node:${gw.nodeId}` });
  }));

test("a session record exists from the first <open/>, before authentication", { timeout: 30000, ...viaGateway },
  guarded(() => env, async () => {
    const before = new Set(await env.redis.keys("mxgw:session:*"));
    const c = await RawWs.connect(wsUrl());
    try {
      await c.openStream();
      const rec = await waitUntil(async () => {
        for (const k of await env.redis.keys("mxgw:session:*")) {
          if (!before.has(k)) return env.redis.hgetall(k);
        }
        return null;
      }, { what: "a new mxgw:session:* record" });
      assert.ok(["connecting", "authenticating"].includes(rec.state), `pre-auth state, got ${rec.state}`);
      assert.equal(rec.transport, "ws-xmpp");
      assert.ok(!rec.jid, `no JID before binding, got ${rec.jid}`);
      c.close();
      await waitUntil(async () => !(await env.redis.exists(`mxgw:session:${rec.id}`)),
        { what: "the record to be deleted after the client vanished" });
    } finally {
      c.close();
    }
  }));

test("mxgw without Redis (in-process store) relays too", { timeout: 30000, ...viaGateway },
  guarded(() => env, async () => {
    const local = await env.startGateway({ redis: null });
    const bob = await env.login({ service: env.prosody.tcpService, username: "bob", password: USERS.bob });
    const alice = await env.login({ service: local.wsUrl, username: "alice", password: USERS.alice });
    await exchangeMessages(alice, bob, "in-process");
    await alice.stop();
    await bob.stop();
    const r = await local.stop();
    assert.equal(r.code, 0, `mxgw exits 0 on SIGTERM (got ${JSON.stringify(r)})`);
  }));
