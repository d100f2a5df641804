// BOSH (XEP-0124 / XEP-0206) through mxgw to a real Prosody, with Strophe.js (the library web
// clients such as converse.js use) running in Node, and with raw wrappers where the test needs
// to choose rids. bob is on Prosody directly (@xmpp/client over TCP), so every message crosses
// mxgw's upstream stream for real.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { Env, USERS, NS, DOMAIN, xml, guarded, waitUntil } from "./lib/env.mjs";
import {
  StropheUser, RawBosh, post, wrapper, payloads, terminalCondition,
} from "./lib/bosh.mjs";

let env;
let gw; // the main gateway
let quick; // short inactivity and wait, for the timing rules
let bob;

before(async () => {
  env = await Env.start();
  gw = await env.startGateway({ bosh_max_wait: "5s" });
  quick = await env.startGateway({ bosh_max_wait: "2s", bosh_inactivity: "3s" });
  bob = await env.login({ service: env.prosody.tcpService, username: "bob", password: USERS.bob });
}, { timeout: 60000 });

after(async () => {
  await env?.stop();
}, { timeout: 60000 });

function tag(s) {
  return `${s} ${crypto.randomBytes(4).toString("hex")}`;
}

async function sessionRecord(jidBare) {
  for (const key of await env.redis.keys("mxgw:session:*")) {
    const rec = await env.redis.hgetall(key);
    if (rec.jid === jidBare && rec.transport === "bosh") return { key, rec };
  }
  return null;
}

/** bob → alice and alice → bob, through Strophe over mxgw. */
async function exchange(a, label) {
  const toAlice = tag(`${label} bob->alice <&>`);
  await bob.send(xml("message", { to: a.jid, type: "chat" }, xml("body", {}, toAlice)));
  await a.waitForMessage(toAlice);
  const toBob = tag(`${label} alice->bob <&>`);
  a.sendMessage(bob.jid.toString(), toBob);
  const got = await bob.waitFor((s) => s.is("message") && s.getChildText("body") === toBob,
    { what: `"${toBob}"` });
  assert.equal(got.attrs.from, a.jid, "the message comes from alice's BOSH session");
}

test("Strophe.js logs in over BOSH (SCRAM, stream restart, bind) and exchanges messages with a " +
  "user on Prosody", { timeout: 60000 }, guarded(() => env, async () => {
  const a = await StropheUser.connect({ url: gw.boshUrl, username: "alice", password: USERS.alice });
  try {
    assert.match(a.jid, /^alice@localhost\/strophe-/);
    assert.match(a.sid, /^[0-9a-f]{32}$/, "the sid carries 128 random bits");
    // SASL is the client's own, relayed: Strophe picked a SCRAM mechanism Prosody offered.
    const auth = a.sent.find((s) => s.includes("<auth"));
    assert.match(auth, /mechanism="SCRAM-SHA-(1|256|512)"/, `SASL auth: ${auth}`);
    // XEP-0206 §5: after <success/>, a restart request, answered with the new features.
    const restartIdx = a.sent.findIndex((s) => /xmpp:restart="true"/.test(s));
    assert.ok(restartIdx > 0, `a restart request was sent: ${a.sent.join("\n")}`);
    assert.ok(a.received.some((s) => s.includes("urn:ietf:params:xml:ns:xmpp-bind")),
      "the features after the restart offer resource binding");
    const first = a.received[0];
    for (const attr of ["sid", "wait", "requests", "hold", "inactivity", "polling", "maxpause",
      "ver", "from", "authid", "xmpp:version", "xmpp:restartlogic"]) {
      assert.ok(first.includes(` ${attr}="`), `session creation response has ${attr}: ${first}`);
    }
    assert.match(first, / wait="5"/, "wait is clamped to bosh_max_wait");
    // The session is a gateway session like any other: its record names the bound JID.
    const found = await waitUntil(() => sessionRecord("alice@localhost"), { what: "the record" });
    assert.equal(found.rec.state, "bound");
    await exchange(a, "first");
    await exchange(a, "second");
  } finally {
    await a.disconnect();
  }
}));

test("a terminate ends the session: the upstream stream, the record and the sid are gone",
  { timeout: 60000 }, guarded(() => env, async () => {
    const a = await StropheUser.connect({ url: gw.boshUrl, username: "carol", password: USERS.carol });
    const sid = a.sid;
    const rid = a.rid;
    await waitUntil(() => sessionRecord("carol@localhost"), { what: "carol's record" });
    await a.disconnect();
    const terminate = a.sent.find((s) => /type="terminate"/.test(s));
    assert.ok(terminate?.includes("unavailable"), `terminate carries the unavailable presence: ${terminate}`);
    assert.ok(a.received.some((s) => /type="terminate"/.test(s) && !/condition=/.test(s)),
      "mxgw answers the terminate with a plain type='terminate'");
    await waitUntil(async () => !(await sessionRecord("carol@localhost")), { what: "record gone" });
    const after = await post(gw.boshUrl, wrapper({ sid, rid: rid + 1 }));
    assert.equal(terminalCondition(after.el), "item-not-found", after.text);
  }));

test("out-of-order requests reach the server in rid order, and the session goes on",
  { timeout: 60000 }, guarded(() => env, async () => {
    const raw = new RawBosh(gw.boshUrl);
    const jid = await raw.login("alice", USERS.alice);
    const first = tag("first");
    const second = tag("second");
    const msg = (body) => `<message xmlns="${NS.client}" to="${bob.jid}" type="chat"><body>${body}</body></message>`;
    const r = raw.rid;
    raw.rid += 2;
    // rid+1 arrives before rid: it must wait for rid.
    const later = raw.request(msg(second), { rid: r + 1 });
    await waitUntil(() => gw.log().includes(`event=bosh.ahead rid=${r + 1} `),
      { what: "mxgw to hold the later request" });
    const earlier = raw.request(msg(first), { rid: r });
    const got1 = await bob.waitFor((s) => s.is("message") && [first, second].includes(s.getChildText("body")),
      { what: "the first message" });
    assert.equal(got1.getChildText("body"), first, "rid order, not arrival order");
    const got2 = await bob.waitFor((s) => s.is("message") && s.getChildText("body") === second);
    assert.equal(got2.attrs.from, jid);
    const e = await earlier; // answered when the later one was processed (hold=1)
    assert.equal(e.status, 200);
    assert.equal(terminalCondition(e.el), undefined, e.text);
    // The session goes on: the next request releases the held one, and messages flow both ways.
    const third = tag("third");
    const next = raw.request(msg(third));
    await bob.waitFor((s) => s.is("message") && s.getChildText("body") === third);
    const l = await later;
    assert.equal(terminalCondition(l.el), undefined, l.text);
    const back = tag("back to alice");
    await bob.send(xml("message", { to: jid, type: "chat" }, xml("body", {}, back)));
    await next; // held until bob's message came for it
    const got = await raw.pollFor((e) => e.is("message") && e.getChildText("body") === back,
      { what: `"${back}"` });
    assert.equal(got.attrs.from, bob.jid.toString());
    await raw.terminate();
  }));

test("an empty request overtaken by the next one on the other connection is not a poll too fast",
  { timeout: 60000 }, guarded(() => env, async () => {
    // A client with nothing held sends an empty request and, right after, one with a stanza
    // on its second connection; the second arrives first. When the empty one arrives, mxgw holds
    // only a request the client sent after it: the client was not polling too fast (XEP-0124
    // §12 counts what it held before), so the session must go on.
    const tooFast = () => gw.log().split("event=bosh.too_fast").length;
    const refusedBefore = tooFast();
    const raw = new RawBosh(gw.boshUrl);
    const jid = await raw.login("alice", USERS.alice);
    const sent = tag("overtaking");
    const r = raw.rid;
    raw.rid += 2;
    const later = raw.request(`<message xmlns="${NS.client}" to="${bob.jid}" type="chat">` +
      `<body>${sent}</body></message>`, { rid: r + 1 });
    await waitUntil(() => gw.log().includes(`event=bosh.ahead rid=${r + 1} `),
      { what: "mxgw to hold the later request" });
    const empty = await raw.request("", { rid: r }); // answered when rid+1 is taken (hold=1)
    assert.equal(terminalCondition(empty.el), undefined, empty.text);
    const got = await bob.waitFor((s) => s.is("message") && s.getChildText("body") === sent);
    assert.equal(got.attrs.from, jid);
    const back = tag("answer");
    await bob.send(xml("message", { to: jid, type: "chat" }, xml("body", {}, back)));
    const l = await later; // held until bob's message came for it
    assert.equal(terminalCondition(l.el), undefined, l.text);
    assert.ok(payloads(l.el).some((e) => e.is("message") && e.getChildText("body") === back), l.text);
    assert.equal(tooFast(), refusedBefore, "no request was refused as too fast");
    await raw.terminate();
  }));

test("a repeated rid is answered with the buffered response, and its payload is not sent twice",
  { timeout: 60000 }, guarded(() => env, async () => {
    const raw = new RawBosh(gw.boshUrl);
    await raw.login("alice", USERS.alice);
    const once = tag("once");
    const body = wrapper({ sid: raw.sid, rid: raw.rid },
      `<message xmlns="${NS.client}" to="${bob.jid}" type="chat"><body>${once}</body></message>` +
      `<iq xmlns="${NS.client}" type="get" id="ping1" to="${DOMAIN}"><ping xmlns="urn:xmpp:ping"/></iq>`);
    raw.rid++;
    const a = await post(gw.boshUrl, body);
    assert.ok(payloads(a.el).some((e) => e.is("iq") && e.attrs.id === "ping1"), a.text);
    const b = await post(gw.boshUrl, body); // the client lost the answer and sends it again
    assert.equal(b.status, 200);
    assert.equal(b.text, a.text, "the replay is the buffered response, byte for byte");
    const sentinel = tag("sentinel");
    const next = raw.request(`<message xmlns="${NS.client}" to="${bob.jid}" type="chat"><body>${sentinel}</body></message>`);
    await bob.waitFor((s) => s.is("message") && s.getChildText("body") === sentinel);
    // bob's stream is in order: everything mxgw sent before the sentinel is in by now.
    const copies = bob.stanzas.filter((s) => s.is("message") && s.getChildText("body") === once);
    assert.equal(copies.length, 1, "the repeated request's payload reached the server once");
    await bob.waitFor((s) => s.is("message") && s.getChildText("body") === once);
    await raw.request(""); // releases the held request
    await next;
    await raw.terminate();
  }));

test("pause, then a new page resumes the session and gets what arrived meanwhile in one response",
  { timeout: 60000 }, guarded(() => env, async () => {
    // quick has bosh_inactivity = 3s: without the pause, this session would die while we wait.
    const raw = new RawBosh(quick.boshUrl);
    const jid = await raw.login("alice", USERS.alice);
    const paused = await raw.request("", { pause: 15 });
    assert.equal(paused.status, 200);
    assert.equal(payloads(paused.el).length, 0, "the answer to a pause carries no payload");
    const texts = Array.from({ length: 20 }, (_, i) => tag(`during pause ${i}`));
    for (const t of texts) {
      await bob.send(xml("message", { to: jid, type: "chat" }, xml("body", {}, t)));
    }
    // bob's ping round trip: once it returns, Prosody has routed all 20 to alice's stream.
    await bob.xmpp.iqCaller.get(xml("ping", "urn:xmpp:ping"), DOMAIN);
    // Longer than the inactivity period, well within the pause.
    await new Promise((resolve) => setTimeout(resolve, 5000));
    const a = await StropheUser.attach({ url: quick.boshUrl, jid, sid: raw.sid, rid: raw.rid, wait: 2 });
    try {
      for (const t of texts) await a.waitForMessage(t);
      const carrying = a.received.filter((s) => texts.some((t) => s.includes(t.split(" ").pop())));
      assert.equal(carrying.length, 1, `all 20 queued messages left in one response, got ${carrying.length}`);
      await exchange(a, "after pause");
    } finally {
      await a.disconnect();
    }
  }));

test("the inactivity timeout ends a silent session; its next request finds no session",
  { timeout: 60000 }, guarded(() => env, async () => {
    const a = await StropheUser.connect({ url: quick.boshUrl, username: "carol", password: USERS.carol, wait: 2 });
    await waitUntil(() => sessionRecord("carol@localhost"), { what: "carol's record" });
    a.conn.pause(); // the client stops sending (a closed laptop lid)
    // wait (2 s) for the held request, then inactivity (3 s): the session is ended by mxgw.
    await waitUntil(async () => !(await sessionRecord("carol@localhost")),
      { timeoutMs: 20000, what: "the session to end" });
    assert.match(quick.log(), /event=bosh.inactive/);
    a.conn.resume();
    const conditions = await a.waitDisconnected(20000);
    assert.ok(conditions.includes("item-not-found"), `Strophe was told: ${JSON.stringify(a.statuses)}`);
  }));

test("sessions get distinct 128-bit sids", { timeout: 60000 }, guarded(() => env, async () => {
  const sids = new Set();
  for (let i = 0; i < 5; i++) {
    const raw = new RawBosh(gw.boshUrl);
    await raw.create();
    assert.match(raw.sid, /^[0-9a-f]{32}$/);
    sids.add(raw.sid);
    await raw.terminate();
  }
  assert.equal(sids.size, 5);
}));

test("Strophe ends cleanly when mxgw shuts down: held requests get system-shutdown",
  { timeout: 60000 }, guarded(() => env, async () => {
    const g = await env.startGateway({ bosh_max_wait: "10s" });
    const a = await StropheUser.connect({ url: g.boshUrl, username: "alice", password: USERS.alice });
    await waitUntil(() => a.conn._proto._requests.length > 0, { what: "a held request" });
    const r = await g.stop();
    assert.equal(r.code, 0, `mxgw exit: ${JSON.stringify(r)}`);
    const conditions = await a.waitDisconnected(15000);
    assert.ok(conditions.includes("system-shutdown"), `Strophe statuses: ${JSON.stringify(a.statuses)}`);
    assert.match(g.log(), /bosh.terminate .*condition=system-shutdown/);
  }));

