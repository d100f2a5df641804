// Client state (XEP-0352 meaning) and rate limits of the JSON protocol: while inactive,
// presence and chat states wait (a newer presence from the same sender replaces the older) and
// a message arrives at once; on active the held ones arrive in order. A client flooding
// messages is slowed down by pausing reading, never refused and never cut off, and other
// sessions on the same gateway are not held up.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { Env, USERS, guarded, xml, waitUntil, delay } from "./lib/env.mjs";
import { JsonClient } from "./lib/json-client.mjs";

let env;
let gw;
let slow;
let bob;

before(async () => {
  env = await Env.start({ prosodyAuth: "internal_hashed" });
  gw = await env.startGateway({});
  slow = await env.startGateway({ json_rate_stanzas: 10, json_rate_bytes: 0, json_rate_burst: "1s" });
  bob = await env.login({ service: env.prosody.tcpService, username: "bob", password: USERS.bob });
}, { timeout: 60000 });

after(async () => {
  await env?.stop();
}, { timeout: 60000 });

test("inactive: presence and chat states wait, a message comes at once; active flushes them in order",
  { timeout: 30000 }, guarded(() => env, async () => {
    const c = await JsonClient.connect(gw.wsUrl);
    const s = await c.login("alice", USERS.alice, "csi");
    const me = s.jid;
    const tag = crypto.randomBytes(3).toString("hex");
    c.send({ op: "inactive" });
    await delay(100); // the op is read before bob's stanzas arrive
    await bob.send(xml("presence", { to: me }, xml("show", {}, "away"), xml("status", {}, `a ${tag}`)));
    await bob.send(xml("message", { to: me, type: "chat", id: `cs-${tag}` },
      xml("composing", { xmlns: "http://jabber.org/protocol/chatstates" })));
    await bob.send(xml("presence", { to: me }, xml("show", {}, "xa"), xml("status", {}, `b ${tag}`)));
    await bob.send(xml("message", { to: me, type: "chat", id: `m-${tag}` }, xml("body", {}, "wake up")));
    await c.next((o) => o.id === `m-${tag}`, "the message, at once");
    const early = c.all.filter((o) => o.t === "p" || o.cs);
    assert.deepEqual(early, [], `nothing else yet: ${JSON.stringify(early)}`);
    c.send({ op: "active" });
    const held = await c.next((o) => o.t === "p", "the held presence");
    assert.equal(held.show, "xa", "only the newest presence of that sender");
    assert.equal(held.st, `b ${tag}`);
    const cs = await c.next((o) => o.cs === "composing", "the held chat state");
    assert.equal(cs.id, `cs-${tag}`);
    const order = c.all.filter((o) => o.op === undefined).map((o) => o.id ?? o.t);
    assert.deepEqual(order.slice(-3), [`m-${tag}`, `cs-${tag}`, "p"],
      "the message first, then the held ones in the order they came (the newer presence " +
      "arrived after the chat state)");
    assert.equal(c.all.filter((o) => o.t === "p").length, 1, "the superseded presence never came");
    // presence held while inactive is acked upstream only once delivered: nothing lost
    c.ack();
    c.send({ op: "logout" });
    await c.next((o) => o.op === "bye", "bye");
  }));

test("a flood is paced by pausing reading: nothing refused, all in order, other sessions unaffected",
  { timeout: 60000 }, guarded(() => env, async () => {
    const a = await JsonClient.connect(slow.wsUrl);
    await a.login("alice", USERS.alice, "flood");
    const other = await JsonClient.connect(slow.wsUrl);
    await other.login("carol", USERS.carol, "calm");
    const tag = crypto.randomBytes(3).toString("hex");
    const N = 60;
    const t0 = Date.now();
    for (let i = 1; i <= N; i++) a.send({ to: bob.jid.toString(), id: `f${i}`, b: `flood ${tag} ${i}` });
    // carol talks while alice is being paced
    const body = `calm ${tag}`;
    other.send({ to: bob.jid.toString(), b: body });
    await bob.waitFor((st) => st.is("message") && st.getChildText("body") === body,
      { what: "carol's message" });
    const floodSoFar = bob.stanzas.filter((st) => (st.getChildText("body") || "").startsWith(`flood ${tag}`)).length;
    assert.ok(floodSoFar < N, `carol's message got through while the flood was still paced (${floodSoFar}/${N})`);
    const got = [];
    for (let i = 1; i <= N; i++) {
      const st = await bob.waitFor((x) => x.is("message") && x.getChildText("body") === `flood ${tag} ${i}`,
        { what: `flood message ${i}`, timeoutMs: 20000 });
      got.push(st);
    }
    const elapsed = Date.now() - t0;
    // 10 stanzas/s with a 1 s burst: the last of 60 cannot be read before about 5 s
    assert.ok(elapsed >= 4000, `the flood was paced (${elapsed} ms for ${N} stanzas)`);
    assert.deepEqual(a.all.filter((o) => o.op === "error"), [], "nothing was refused");
    assert.ok(a.isOpen, "the flooding client is still connected");
    assert.match(slow.log(), /json\.rate_paused/, "mxgw paused reading");
    a.send({ op: "logout" });
    other.send({ op: "logout" });
    await a.next((o) => o.op === "bye", "bye", 20000);
  }));

test("held stanzas are not lost when the client drops: they wait in the queue and come on resume elsewhere",
  { timeout: 30000 }, guarded(() => env, async () => {
    const c = await JsonClient.connect(gw.wsUrl);
    const s = await c.login("alice", USERS.alice, "csi-drop");
    const tag = crypto.randomBytes(3).toString("hex");
    c.send({ op: "inactive" });
    await delay(100);
    await bob.send(xml("presence", { to: s.jid }, xml("status", {}, `held ${tag}`)));
    await bob.send(xml("message", { to: s.jid, type: "chat", id: `hcs-${tag}` },
      xml("paused", { xmlns: "http://jabber.org/protocol/chatstates" })));
    await bob.send(xml("message", { to: s.jid, type: "chat", id: `hm-${tag}` }, xml("body", {}, "now")));
    await c.next((o) => o.id === `hm-${tag}`, "the message");
    assert.equal(c.all.filter((o) => o.t === "p" || o.cs).length, 0, "the others are held");
    c.drop();
    await waitUntil(async () => (await env.redis.cmd("LLEN", `mxgw:jsonq:${s.id}`))[0] === "3",
      { timeoutMs: 10000, what: "the held stanzas and the unacked message in the queue" });
    const c2 = await JsonClient.connect(slow.wsUrl);
    const r = await c2.resume(s.token, c.h);
    assert.equal(r.op, "resumed", JSON.stringify(r));
    const p = await c2.next((o) => o.t === "p", "the held presence");
    assert.equal(p.st, `held ${tag}`);
    await c2.next((o) => o.cs === "paused", "the held chat state");
    assert.equal(c2.stanzas().filter((o) => o.id === `hm-${tag}`).length, 0,
      "the message the client had counted does not come again");
    c2.send({ op: "logout" });
    await c2.next((o) => o.op === "bye", "bye");
  }));
