// StanzaJS (npm `stanza`), unchanged and with its default settings, through mxgw to a real
// Prosody: over BOSH (XEP-0124/0206) and over RFC 7395 WebSocket. It runs in Node as it ships
// (its Node platform uses the built-in fetch for BOSH and `ws` for WebSocket; no polyfill).
// Each run logs in with SCRAM, exchanges a message each way with bob, who is on Prosody directly
// (@xmpp/client over TCP), and disconnects cleanly: mxgw ends the upstream stream (bob sees
// alice go unavailable) and drops the session record.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import * as XMPP from "stanza";
import {
  Env, USERS, NS, DOMAIN, RawWs, xml, guarded, waitUntil, withTimeout,
} from "./lib/env.mjs";
import { post, wrapper, payloads } from "./lib/bosh.mjs";

let env;
let gw;
let bob;

before(async () => {
  env = await Env.start();
  gw = await env.startGateway({});
  bob = await env.login({ service: env.prosody.tcpService, username: "bob", password: USERS.bob });
}, { timeout: 60000 });

after(async () => {
  await env?.stop();
}, { timeout: 60000 });

/** The SASL mechanism names in a <stream:features/> (ltx element). */
function mechanismsOf(features) {
  const m = features?.getChild("mechanisms", NS.sasl);
  return m ? m.getChildren("mechanism").map((e) => e.text()) : [];
}

/** What Prosody's own connection managers offer a web client before SASL, for comparison. */
async function prosodyOwnMechanisms(transport) {
  if (transport === "bosh") {
    const url = `http://127.0.0.1:${env.prosody.httpPort}/http-bind`;
    let rid = 1000 + crypto.randomInt(1000000);
    const r = await post(url, wrapper({ to: DOMAIN, rid: rid++, wait: 5, hold: 1, ver: "1.6",
      "xmpp:version": "1.0" }));
    const sid = r.el.attrs.sid;
    let features = payloads(r.el).find((e) => e.is("features", NS.stream));
    if (!features) {
      const r2 = await post(url, wrapper({ sid, rid: rid++ }));
      features = payloads(r2.el).find((e) => e.is("features", NS.stream));
    }
    await post(url, wrapper({ sid, rid: rid++, type: "terminate" })).catch(() => {});
    return mechanismsOf(features);
  }
  const ws = await RawWs.connect(env.prosody.wsUrl);
  try {
    const { features } = await ws.openStream();
    return mechanismsOf(features);
  } finally {
    ws.close();
  }
}

/** A StanzaJS client with its raw traffic and events recorded. */
class StanzaUser {
  static async connect({ transports, username, password, timeoutMs = 20000 }) {
    const u = new StanzaUser();
    u.resource = `stanza-${crypto.randomBytes(3).toString("hex")}`;
    u.client = XMPP.createClient({ jid: `${username}@${DOMAIN}`, password, resource: u.resource,
      transports });
    u.incoming = [];
    u.outgoing = [];
    u.chats = [];
    u.presences = [];
    u.features = [];
    u.client.on("raw:incoming", (d) => u.incoming.push(d));
    u.client.on("raw:outgoing", (d) => u.outgoing.push(d));
    u.client.on("chat", (m) => u.chats.push(m));
    u.client.on("features", (f) => u.features.push(f));
    u.disconnected = new Promise((resolve) => u.client.on("disconnected", resolve));
    const failed = new Promise((_, reject) => {
      u.client.on("auth:failed", () => reject(new Error("StanzaJS: auth:failed")));
      u.client.on("stream:error", (e) => reject(new Error(`StanzaJS: stream error ${e?.condition}`)));
    });
    const started = new Promise((resolve) => u.client.once("session:started", resolve));
    u.client.connect();
    try {
      await withTimeout(Promise.race([started, failed, u.disconnected.then(() => {
        throw new Error("StanzaJS disconnected before the session started");
      })]), timeoutMs, `StanzaJS login of ${username}`);
    } catch (err) {
      err.message += `\nraw in: ${u.incoming.join("\n").slice(0, 3000)}`;
      u.client.disconnect();
      throw err;
    }
    u.jid = u.client.jid;
    return u;
  }

  async waitForChat(body, timeoutMs = 10000) {
    return waitUntil(() => this.chats.find((m) => m.body === body),
      { timeoutMs, what: `StanzaJS to get "${body}"` });
  }

  /** The mechanisms of the first features StanzaJS saw (the pre-SASL ones). */
  get offeredMechanisms() {
    const f = this.features.find((x) => x.sasl);
    return f ? f.sasl.mechanisms : [];
  }
}

async function sessionRecord(bare, transport) {
  for (const key of await env.redis.keys("mxgw:session:*")) {
    const rec = await env.redis.hgetall(key);
    if (rec.jid === bare && rec.transport === transport) return { key, rec };
  }
  return null;
}

async function roundTrip(transport) {
  const url = transport === "bosh" ? gw.boshUrl : gw.wsUrl;
  const recordTransport = transport === "bosh" ? "bosh" : "ws-xmpp";
  const a = await StanzaUser.connect({ transports: { [transport]: url }, username: "alice",
    password: USERS.alice });
  let done = false;
  try {
    assert.equal(a.jid, `alice@${DOMAIN}/${a.resource}`, "the JID the server bound");
    // SASL is StanzaJS's own, relayed by mxgw: it picked SCRAM from what Prosody offers, without
    // channel binding (the TLS channel to Prosody is mxgw's, not the client's).
    const auth = a.outgoing.find((s) => s.includes("<auth"));
    assert.match(auth, /mechanism="SCRAM-SHA-(1|256)"/, `SASL auth: ${auth}`);
    const offered = a.offeredMechanisms;
    assert.ok(offered.includes("SCRAM-SHA-1") && offered.includes("SCRAM-SHA-256"),
      `SCRAM offered: ${offered}`);
    assert.deepEqual(offered.filter((m) => /-PLUS$/i.test(m)), [],
      "no channel-binding (-PLUS) mechanism is offered through the relay");
    assert.deepEqual([...offered].sort(), [...(await prosodyOwnMechanisms(transport))].sort(),
      `the same mechanisms as Prosody's own ${transport} endpoint offers`);
    if (transport === "bosh") {
      // StanzaJS asks for hold=2 and ver=1.6; mxgw grants hold=1 with requests=2.
      const creation = a.outgoing[0];
      assert.match(creation, /hold="2"/, `StanzaJS's session request: ${creation}`);
      assert.match(a.incoming[0], / hold='1'/, `the session creation response: ${a.incoming[0]}`);
      assert.match(a.incoming[0], / requests='2'/);
    }
    const found = await waitUntil(() => sessionRecord(`alice@${DOMAIN}`, recordTransport),
      { what: "alice's session record" });
    assert.equal(found.rec.state, "bound");

    // Directed presence, so that Prosody tells bob when alice's stream ends.
    a.client.sendPresence({ to: bob.jid.toString() });
    await bob.waitFor((s) => s.is("presence") && s.attrs.from === a.jid && !s.attrs.type,
      { what: "alice's directed presence" });

    const toAlice = `bob to StanzaJS over ${transport} <&> ${crypto.randomBytes(4).toString("hex")}`;
    await bob.send(xml("message", { to: a.jid, type: "chat" }, xml("body", {}, toAlice)));
    const got = await a.waitForChat(toAlice);
    assert.equal(got.from, bob.jid.toString(), "sender of bob's message");

    const toBob = `StanzaJS over ${transport} to bob <&> ${crypto.randomBytes(4).toString("hex")}`;
    const acked = new Promise((resolve) => a.client.once("message:acked", resolve));
    a.client.sendMessage({ to: bob.jid.toString(), type: "chat", body: toBob });
    const reply = await bob.waitFor((s) => s.is("message") && s.getChildText("body") === toBob,
      { what: `"${toBob}"` });
    assert.equal(reply.attrs.from, a.jid, "the message comes from alice's StanzaJS session");
    // StanzaJS enables XEP-0198 itself (mxgw relays <enable/>, <r/> and <a/>): Prosody's ack.
    const ackedMsg = await withTimeout(acked, 40000, "StanzaJS message:acked");
    assert.equal(ackedMsg.body, toBob);

    // Clean disconnect: BOSH terminate answered with a plain terminate wrapper, or RFC 7395
    // <close/> answered with <close/>; then the upstream stream ends and the record goes.
    const rawBefore = a.incoming.length;
    // stream:end, not StanzaJS's later "disconnected": its BOSH transport never sends what is
    // still in its queue once the session ended (e.g. an <a/>), and then waits for it forever;
    // it does the same against Prosody's own mod_bosh.
    const ended = new Promise((resolve) => a.client.once("stream:end", resolve));
    a.client.disconnect();
    await withTimeout(ended, 15000, "StanzaJS stream:end");
    done = true;
    const after = a.incoming.slice(rawBefore);
    if (transport === "bosh") {
      const term = after.find((s) => /type='terminate'/.test(s));
      assert.ok(term, `a terminate wrapper answered the terminate request: ${after.join("\n")}`);
      assert.doesNotMatch(term, /condition=/, `a clean terminate, no error condition: ${term}`);
    } else {
      assert.ok(after.some((s) => /^<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'\/>$/.test(s)),
        `<close/> answered the client's <close/>: ${after.join("\n")}`);
    }
    await bob.waitFor((s) => s.is("presence") && s.attrs.from === a.jid &&
      s.attrs.type === "unavailable", { timeoutMs: 15000, what: "alice's unavailable presence" });
    await waitUntil(async () => !(await env.redis.exists(found.key)),
      { timeoutMs: 15000, what: `${found.key} to be deleted` });
  } finally {
    if (!done) a.client.disconnect();
  }
}

test("StanzaJS over BOSH through mxgw: SCRAM login, a message each way with a user on Prosody, " +
  "clean disconnect", { timeout: 90000 }, guarded(() => env, () => roundTrip("bosh")));

test("StanzaJS over RFC 7395 WebSocket through mxgw: the same", { timeout: 90000 },
  guarded(() => env, () => roundTrip("websocket")));
