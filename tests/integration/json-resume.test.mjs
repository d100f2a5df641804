// Session continuity of the JSON protocol (docs/json-protocol.md, "Sessions"): a dropped socket
// while messages keep arriving, resumption on the same node, on a second mxgw process while the
// first still runs, after the first was killed with SIGKILL, and after a SIGTERM; a resume
// while the old socket is still open. Every numbered message must arrive, once after
// de-duplication by id, in order. Real Prosody, real Redis, real mxgw processes.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { Env, USERS, guarded, xml, waitUntil, delay } from "./lib/env.mjs";
import { JsonClient, checkSequence } from "./lib/json-client.mjs";

let env;
let gw1;
let gw2;
let bob;

const OPTIONS = { json_detach_timeout: "60s", json_handover_timeout: "3s" };

before(async () => {
  // internal_hashed keeps each account's SCRAM salt, so a node can log in again from the
  // session's stored SCRAM keys (internal_plain draws a new salt at every login).
  env = await Env.start({ prosodyAuth: "internal_hashed" });
  gw1 = await env.startGateway(OPTIONS);
  gw2 = await env.startGateway(OPTIONS);
  bob = await env.login({ service: env.prosody.tcpService, username: "bob", password: USERS.bob });
}, { timeout: 60000 });

after(async () => {
  await env?.stop();
}, { timeout: 60000 });

/** Sends messages prefix1..prefixN from bob to jid, one every gapMs, in the background. */
function sendNumbered(to, prefix, from, count, gapMs = 20) {
  return (async () => {
    for (let i = from; i <= count; i++) {
      await bob.send(xml("message", { to, type: "chat", id: `${prefix}${i}` },
        xml("body", {}, `message ${i}`)));
      if (gapMs) await delay(gapMs);
    }
  })();
}

/** Collects what a client received across its connections into one list. */
function bodies(...clients) {
  return clients.flatMap((c) => c.stanzas());
}

async function loginAlice(gw, resource) {
  const c = await JsonClient.connect(gw.wsUrl);
  const s = await c.login("alice", USERS.alice, resource);
  assert.equal(s.resumable, true, `the session is resumable: ${JSON.stringify(s)}`);
  assert.match(s.token, /^[0-9a-f]{32}\.[0-9a-f]{64}$/, "a token of <sid>.<256 bits>");
  assert.equal(s.token.split(".")[0], s.id, "the token names the session");
  return { c, s };
}

test("a dropped socket while messages arrive: resume on the same node, every message once and in order",
  { timeout: 60000 }, guarded(() => env, async () => {
    const prefix = `d${crypto.randomBytes(3).toString("hex")}-`;
    const { c, s } = await loginAlice(gw1, "drop");
    const N = 60;
    const sending = sendNumbered(s.jid, prefix, 1, N);
    await c.next((o) => o.id === `${prefix}10`, "message 10");
    c.drop();
    const hAtDrop = c.h;
    await delay(200); // a few more arrive while the client is away
    const c2 = await JsonClient.connect(gw1.wsUrl);
    const r = await c2.resume(s.token, hAtDrop);
    assert.equal(r.op, "resumed", `resumed: ${JSON.stringify(r)}`);
    assert.equal(r.id, s.id);
    assert.equal(r.jid, s.jid);
    assert.notEqual(r.token, s.token, "a new token at every resume");
    assert.ok(!r.fresh, "the upstream stream stayed open");
    await sending;
    await c2.next((o) => o.id === `${prefix}${N}`, `message ${N}`, 20000);
    const { duplicates } = checkSequence(bodies(c, c2), N, prefix);
    assert.equal(duplicates, 0, "nothing the client had counted comes again");
    // alice → bob through the resumed session
    const body = `after resume ${crypto.randomBytes(3).toString("hex")}`;
    c2.send({ to: bob.jid.toString(), b: body });
    await bob.waitFor((st) => st.is("message") && st.getChildText("body") === body,
      { what: "alice's message after the resume" });
    c2.send({ op: "logout" });
    await c2.next((o) => o.op === "bye", "bye");
  }));

test("the store holds what a resume needs, and no credential: hash fields, token verifier, queue items",
  { timeout: 30000 }, guarded(() => env, async () => {
    const prefix = `k${crypto.randomBytes(3).toString("hex")}-`;
    const { c, s } = await loginAlice(gw1, "keys");
    c.drop();
    await waitUntil(async () => (await env.redis.hgetall(`mxgw:json:${s.id}`)).state === "detached",
      { timeoutMs: 10000, what: "the session to be detached" });
    await sendNumbered(s.jid, prefix, 1, 3, 0);
    await waitUntil(async () => (await env.redis.cmd("LLEN", `mxgw:jsonq:${s.id}`))[0] === "3",
      { timeoutMs: 10000, what: "three queued stanzas" });
    const rec = await env.redis.hgetall(`mxgw:json:${s.id}`);
    assert.equal(rec.owner, gw1.nodeId);
    assert.equal(rec.jid, s.jid);
    assert.equal(rec.bare, "alice@localhost");
    assert.ok(rec.sm_id.length > 0 && rec.sm_resume === "1", "the upstream SM id, resumable");
    assert.match(rec.token, /^[0-9a-f]{64}$/);
    const secret = s.token.split(".")[1];
    assert.notEqual(rec.token, secret, "the store keeps a verifier, not the token's secret");
    assert.ok(!JSON.stringify(rec).includes(secret), "the secret appears nowhere");
    assert.ok(!JSON.stringify(rec).includes(USERS.alice), "the password appears nowhere");
    assert.ok(rec.reauth.length > 40, "a sealed re-login secret");
    assert.ok(!Buffer.from(rec.reauth, "base64").toString("latin1").includes("SCRAM"),
      "the re-login secret is sealed");
    for (const f of ["up_in_h", "up_out", "up_out_acked", "cl_out", "cl_acked", "cl_max"]) {
      assert.match(rec[f], /^\d+$/, `counter ${f}`);
    }
    assert.ok(Number(rec.expires) > Date.now(), "a detached session says when it expires");
    assert.ok(await env.redis.ttl(`mxgw:json:${s.id}`) > 0, "the hash has a TTL");
    assert.ok(await env.redis.ttl(`mxgw:jsonq:${s.id}`) > 0, "the queue has a TTL");
    const items = await env.redis.cmd("LRANGE", `mxgw:jsonq:${s.id}`, "0", "-1");
    assert.equal(items.length, 3);
    items.forEach((it, i) => {
      assert.match(it, /^\d+ <message /, "each item is its seq then the stanza as XML");
      assert.ok(it.includes(`${prefix}${i + 1}`), `item ${i} is message ${i + 1}`);
    });
    const session = await env.redis.hgetall(`mxgw:session:${s.id}`);
    assert.equal(session.state, "detached", "the session record says detached");
    const c2 = await JsonClient.connect(gw1.wsUrl, { autoAck: false });
    const r = await c2.resume(s.token, c.h);
    assert.equal(r.op, "resumed");
    for (let i = 1; i <= 3; i++) await c2.next((o) => o.id === `${prefix}${i}`, `queued ${i}`);
    // the token used to resume stays valid until the client shows it has the new one
    const rec2 = await env.redis.hgetall(`mxgw:json:${s.id}`);
    assert.equal(rec2.token_prev, rec.token, "the previous verifier is kept for now");
    assert.notEqual(rec2.token, rec.token, "a new verifier");
    c2.ack();
    await waitUntil(async () => (await env.redis.cmd("LLEN", `mxgw:jsonq:${s.id}`))[0] === "0",
      { timeoutMs: 10000, what: "acked items to leave the queue" });
    await waitUntil(async () => (await env.redis.hgetall(`mxgw:json:${s.id}`)).token_prev === "",
      { timeoutMs: 10000, what: "the previous token to be forgotten once the client spoke" });
    c2.send({ op: "logout" });
    await c2.next((o) => o.op === "bye", "bye");
    await waitUntil(async () => !(await env.redis.exists(`mxgw:json:${s.id}`)),
      { timeoutMs: 10000, what: "logout to delete the records" });
  }));

test("resume on a second mxgw process while the first still runs: handover, zero loss",
  { timeout: 60000 }, guarded(() => env, async () => {
    const prefix = `h${crypto.randomBytes(3).toString("hex")}-`;
    const { c, s } = await loginAlice(gw1, "handover");
    const N = 60;
    const sending = sendNumbered(s.jid, prefix, 1, N);
    await c.next((o) => o.id === `${prefix}15`, "message 15");
    c.drop();
    await delay(150);
    const c2 = await JsonClient.connect(gw2.wsUrl);
    const r = await c2.resume(s.token, c.h);
    assert.equal(r.op, "resumed", `resumed on gw2: ${JSON.stringify(r)}`);
    assert.ok(!r.fresh, "the upstream stream was resumed (XEP-0198), not rebound");
    await sending;
    await c2.next((o) => o.id === `${prefix}${N}`, `message ${N}`, 20000);
    const { duplicates } = checkSequence(bodies(c, c2), N, prefix);
    console.log(`handover: ${N} messages, ${duplicates} duplicates (unacked window)`);
    assert.equal((await env.redis.hgetall(`mxgw:json:${s.id}`)).owner, gw2.nodeId,
      "gw2 owns the session now");
    assert.match(gw1.log(), new RegExp(`json.released session=${s.id} why=handover`));
    const body = `via gw2 ${crypto.randomBytes(3).toString("hex")}`;
    c2.send({ to: bob.jid.toString(), b: body, id: "v2" });
    await bob.waitFor((st) => st.is("message") && st.getChildText("body") === body,
      { what: "alice's message through gw2" });
    // and back to the first node, with the token from gw2
    c2.drop();
    const more = `${prefix}x`;
    await sendNumbered(s.jid, more, 1, 5, 0);
    const c3 = await JsonClient.connect(gw1.wsUrl);
    const r3 = await c3.resume(r.token, c2.h);
    assert.equal(r3.op, "resumed", `back on gw1: ${JSON.stringify(r3)}`);
    for (let i = 1; i <= 5; i++) await c3.next((o) => o.id === `${more}${i}`, `more ${i}`);
    c3.send({ op: "logout" });
    await c3.next((o) => o.op === "bye", "bye");
  }));

test("a resume while the old socket is still open closes it with conflict (same node and another node)",
  { timeout: 60000 }, guarded(() => env, async () => {
    for (const target of [gw1, gw2]) {
      const prefix = `c${crypto.randomBytes(3).toString("hex")}-`;
      const { c, s } = await loginAlice(gw1, `conflict${target === gw1 ? 1 : 2}`);
      await sendNumbered(s.jid, prefix, 1, 5, 0);
      await c.next((o) => o.id === `${prefix}5`, "message 5");
      const c2 = await JsonClient.connect(target.wsUrl);
      const r = await c2.resume(s.token, c.h);
      assert.equal(r.op, "resumed", `resumed: ${JSON.stringify(r)}`);
      const e = await c.next((o) => o.op === "error", "the old connection's error");
      assert.equal(e.cond, "conflict");
      assert.equal(e.fatal, true);
      await c.closed;
      await sendNumbered(s.jid, prefix, 6, 10, 0);
      await c2.next((o) => o.id === `${prefix}10`, "message 10");
      const { duplicates } = checkSequence(bodies(c, c2), 10, prefix);
      assert.equal(duplicates, 0);
      c2.send({ op: "logout" });
      await c2.next((o) => o.op === "bye", "bye");
    }
  }));

test("resume on a second node after the first was killed with SIGKILL: zero loss",
  { timeout: 60000 }, guarded(() => env, async () => {
    const victim = await env.startGateway(OPTIONS);
    const prefix = `s${crypto.randomBytes(3).toString("hex")}-`;
    const { c, s } = await loginAlice(victim, "sigkill");
    const N = 60;
    const sending = sendNumbered(s.jid, prefix, 1, N, 25);
    await c.next((o) => o.id === `${prefix}20`, "message 20");
    victim.child.signal("SIGKILL");
    await victim.child.exit;
    await c.closed;
    await delay(100);
    const c2 = await JsonClient.connect(gw2.wsUrl);
    const r = await c2.resume(s.token, c.h);
    assert.equal(r.op, "resumed", `resumed after SIGKILL: ${JSON.stringify(r)}`);
    assert.ok(!r.fresh, "the server resumed the stream (XEP-0198) for the new node");
    await sending;
    await c2.next((o) => o.id === `${prefix}${N}`, `message ${N}`, 20000);
    const { duplicates } = checkSequence(bodies(c, c2), N, prefix);
    console.log(`after SIGKILL: ${N} messages, ${duplicates} duplicates (unacked window)`);
    assert.equal((await env.redis.hgetall(`mxgw:json:${s.id}`)).owner, gw2.nodeId);
    c2.send({ op: "logout" });
    await c2.next((o) => o.op === "bye", "bye");
  }));

test("SIGTERM hands the session over: the client is told it may resume, and resumes on another node",
  { timeout: 60000 }, guarded(() => env, async () => {
    const leaving = await env.startGateway(OPTIONS);
    const prefix = `t${crypto.randomBytes(3).toString("hex")}-`;
    const { c, s } = await loginAlice(leaving, "sigterm");
    const N = 50;
    const sending = sendNumbered(s.jid, prefix, 1, N, 25);
    await c.next((o) => o.id === `${prefix}10`, "message 10");
    leaving.child.signal("SIGTERM");
    const e = await c.next((o) => o.op === "error", "the shutdown notice");
    assert.equal(e.cond, "system-shutdown");
    assert.equal(e.resumable, true, "the client is told it can resume elsewhere");
    assert.equal(await c.closed, 1001);
    const exit = await leaving.child.waitExit(10000);
    assert.deepEqual(exit && { code: exit.code, signal: exit.signal }, { code: 0, signal: null },
      "the leaving node exits cleanly");
    assert.match(leaving.log(), new RegExp(`json.released session=${s.id} why=shutdown`));
    const rec = await env.redis.hgetall(`mxgw:json:${s.id}`);
    assert.equal(rec.owner, "", "the record is released for any node");
    const c2 = await JsonClient.connect(gw2.wsUrl);
    const r = await c2.resume(s.token, c.h);
    assert.equal(r.op, "resumed", `resumed after SIGTERM: ${JSON.stringify(r)}`);
    assert.ok(!r.fresh);
    await sending;
    await c2.next((o) => o.id === `${prefix}${N}`, `message ${N}`, 20000);
    const { duplicates } = checkSequence(bodies(c, c2), N, prefix);
    assert.equal(duplicates, 0, "a graceful handover duplicates nothing");
    c2.send({ op: "logout" });
    await c2.next((o) => o.op === "bye", "bye");
  }));

test("SIGKILL with stanzas the client never acked: only those come again, and none is missing",
  { timeout: 60000 }, guarded(() => env, async () => {
    const victim = await env.startGateway(OPTIONS);
    const prefix = `u${crypto.randomBytes(3).toString("hex")}-`;
    const c = await JsonClient.connect(victim.wsUrl, { autoAck: false });
    const s = await c.login("alice", USERS.alice, "unacked");
    assert.equal(s.resumable, true);
    await sendNumbered(s.jid, prefix, 1, 8, 0);
    await c.next((o) => o.id === `${prefix}8`, "message 8");
    c.ack(); // 1..8 acked, and persisted before the server hears of it
    await waitUntil(async () => Number((await env.redis.hgetall(`mxgw:json:${s.id}`)).up_in_h) >= 8,
      { timeoutMs: 10000, what: "the ack persisted" });
    await sendNumbered(s.jid, prefix, 9, 15, 0);
    await c.next((o) => o.id === `${prefix}15`, "message 15");
    victim.child.signal("SIGKILL"); // 9..15 were delivered but never acked
    await victim.child.exit;
    await c.closed;
    const sending = sendNumbered(s.jid, prefix, 16, 30, 10);
    const c2 = await JsonClient.connect(gw2.wsUrl);
    const r = await c2.resume(s.token, c.h);
    assert.equal(r.op, "resumed", JSON.stringify(r));
    await sending;
    await c2.next((o) => o.id === `${prefix}30`, "message 30", 20000);
    const { duplicates } = checkSequence(bodies(c, c2), 30, prefix);
    const again = c2.stanzas().map((m) => Number(m.id.slice(prefix.length))).filter((n) => n <= 15);
    assert.ok(again.every((n) => n >= 9), `only the unacked window (9..15) comes again, got ${again}`);
    console.log(`SIGKILL with 7 unacked: ${duplicates} duplicates, all of the unacked window`);
    c2.send({ op: "logout" });
    await c2.next((o) => o.op === "bye", "bye");
  }));

test("a long queue is sent to the resumed client as its socket drains, in order",
  { timeout: 60000 }, guarded(() => env, async () => {
    const tight = await env.startGateway({ ...OPTIONS, limit_queue_bytes: 20000 });
    const prefix = `q${crypto.randomBytes(3).toString("hex")}-`;
    const c = await JsonClient.connect(tight.wsUrl);
    const s = await c.login("alice", USERS.alice, "long");
    c.drop();
    await waitUntil(async () => (await env.redis.hgetall(`mxgw:json:${s.id}`)).state === "detached",
      { timeoutMs: 10000, what: "detached" });
    const N = 120;
    const pad = "x".repeat(600);
    for (let i = 1; i <= N; i++) {
      await bob.send(xml("message", { to: s.jid, type: "chat", id: `${prefix}${i}` },
        xml("body", {}, `${i} ${pad}`)));
    }
    await waitUntil(async () => Number((await env.redis.cmd("LLEN", `mxgw:jsonq:${s.id}`))[0]) === N,
      { timeoutMs: 15000, what: `${N} queued` });
    const c2 = await JsonClient.connect(tight.wsUrl);
    const r = await c2.resume(s.token, 0);
    assert.equal(r.op, "resumed");
    await c2.next((o) => o.id === `${prefix}${N}`, `message ${N}`, 30000);
    const { duplicates } = checkSequence(c2.stanzas(), N, prefix);
    assert.equal(duplicates, 0);
    assert.ok(c2.isOpen, "the client was not cut off for the size of its queue");
    c2.send({ op: "logout" });
    await c2.next((o) => o.op === "bye", "bye");
  }));

test("a pipelined resume: stanzas sent right behind it wait for it, then go in order (E4)",
  { timeout: 30000 }, guarded(() => env, async () => {
    const { c, s } = await loginAlice(gw1, "pipelined");
    c.drop();
    await waitUntil(async () => (await env.redis.hgetall(`mxgw:json:${s.id}`)).state === "detached",
      { timeoutMs: 10000, what: "detached" });
    const c2 = await JsonClient.connect(gw2.wsUrl);
    const tag = crypto.randomBytes(3).toString("hex");
    c2.send({ op: "resume", token: s.token, h: c.h });
    for (let i = 1; i <= 3; i++) c2.send({ to: bob.jid.toString(), id: `p${i}`, b: `pipelined ${tag} ${i}` });
    c2.send({ op: "r" });
    const r = await c2.next((o) => o.op === "resumed" || o.op === "error", "the resume answer");
    assert.equal(r.op, "resumed", JSON.stringify(r));
    for (let i = 1; i <= 3; i++) {
      await bob.waitFor((st) => st.is("message") && st.getChildText("body") === `pipelined ${tag} ${i}`,
        { what: `pipelined message ${i}` });
    }
    const a = await c2.next((o) => o.op === "a", "the ack of the pipelined stanzas");
    assert.ok(a.h >= 3, `the three stanzas counted after the resume's h (${r.h}): ${a.h}`);
    const bad = c2.all.findIndex((o) => o.op === "error");
    assert.equal(bad, -1, `no errors: ${JSON.stringify(c2.all)}`);
    c2.send({ op: "logout" });
    await c2.next((o) => o.op === "bye", "bye");
  }));
