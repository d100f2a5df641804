// Ending JSON sessions and refusing resumes (docs/json-protocol.md, "Sessions"): logout, a queue
// that overflows while the client is away, the detach timeout, wrong tokens and unknown
// sessions (item-not-found), a count that is too high (handled-count-too-high), the cap on
// failed attempts per connection, and a resume error that leaves the connection usable.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { Env, USERS, guarded, xml, waitUntil, delay } from "./lib/env.mjs";
import { JsonClient } from "./lib/json-client.mjs";

let env;
let gw;
let small;
let brief;
let bob;

before(async () => {
  env = await Env.start({ prosodyAuth: "internal_hashed" });
  gw = await env.startGateway({ json_detach_timeout: "60s" });
  small = await env.startGateway({ json_detach_timeout: "60s", json_queue_stanzas: 5 });
  brief = await env.startGateway({ json_detach_timeout: "2s" });
  bob = await env.login({ service: env.prosody.tcpService, username: "bob", password: USERS.bob });
}, { timeout: 60000 });

after(async () => {
  await env?.stop();
}, { timeout: 60000 });

async function login(g, resource) {
  const c = await JsonClient.connect(g.wsUrl);
  const s = await c.login("alice", USERS.alice, resource);
  assert.equal(s.resumable, true);
  return { c, s };
}

async function expectResumeError(g, token, h, cond) {
  const c = await JsonClient.connect(g.wsUrl);
  const r = await c.resume(token, h);
  assert.equal(r.op, "error", `expected an error, got ${JSON.stringify(r)}`);
  assert.equal(r.cond, cond, JSON.stringify(r));
  assert.ok(!r.fatal, "a failed resume leaves the connection open");
  return c;
}

const gone = (sid) => waitUntil(async () => !(await env.redis.exists(`mxgw:json:${sid}`)) &&
  !(await env.redis.exists(`mxgw:jsonq:${sid}`)), { timeoutMs: 15000, what: "the records deleted" });

test("logout ends the session: bye, records deleted, the token no longer resumes", { timeout: 30000 },
  guarded(() => env, async () => {
    const { c, s } = await login(gw, "logout");
    c.send({ op: "logout" });
    await c.next((o) => o.op === "bye", "bye");
    assert.equal(await c.closed, 1000);
    await gone(s.id);
    (await expectResumeError(gw, s.token, 0, "item-not-found")).close();
  }));

test("wrong token, unknown session, garbage → item-not-found; h too high → handled-count-too-high; " +
  "the connection can still log in; too many failures close it", { timeout: 30000 },
  guarded(() => env, async () => {
    const { c, s } = await login(gw, "tokens");
    c.drop();
    await waitUntil(async () => (await env.redis.hgetall(`mxgw:json:${s.id}`)).state === "detached",
      { timeoutMs: 10000, what: "detached" });
    const [sid, secret] = s.token.split(".");
    const flipped = secret.slice(0, -1) + (secret.endsWith("0") ? "1" : "0");
    const c1 = await expectResumeError(gw, `${sid}.${flipped}`, 0, "item-not-found");
    // the same connection may log in after a failed resume
    const fresh = await c1.login("alice", USERS.alice, "tokens-2");
    assert.equal(fresh.op, "session");
    c1.send({ op: "logout" });
    (await expectResumeError(gw, `${crypto.randomBytes(16).toString("hex")}.${secret}`, 0,
      "item-not-found")).close();
    (await expectResumeError(gw, "not-a-token", 0, "item-not-found")).close();
    (await expectResumeError(gw, s.token, 1000000, "handled-count-too-high")).close();
    // … judged from the store's ceiling when another node takes the session
    (await expectResumeError(small, s.token, 1000000, "handled-count-too-high")).close();
    // failures are capped per connection (json_auth_failures = 3)
    const c3 = await JsonClient.connect(gw.wsUrl);
    for (let i = 0; i < 2; i++) assert.equal((await c3.resume("bad", 0)).cond, "item-not-found");
    c3.send({ op: "resume", token: "bad", h: 0 });
    const last = await c3.next((o) => o.op === "error" && o.fatal, "the fatal error");
    assert.equal(last.cond, "policy-violation");
    await c3.closed;
    // the session itself is untouched by all this and still resumes
    const c4 = await JsonClient.connect(gw.wsUrl);
    const r = await c4.resume(s.token, c.h);
    assert.equal(r.op, "resumed", JSON.stringify(r));
    c4.send({ op: "logout" });
    await c4.next((o) => o.op === "bye", "bye");
  }));

test("a queue that overflows while the client is away ends the session cleanly", { timeout: 30000 },
  guarded(() => env, async () => {
    const { c, s } = await login(small, "overflow");
    c.drop();
    await waitUntil(async () => (await env.redis.hgetall(`mxgw:json:${s.id}`)).state === "detached",
      { timeoutMs: 10000, what: "detached" });
    for (let i = 1; i <= 8; i++) {
      await bob.send(xml("message", { to: s.jid, type: "chat", id: `o${i}` }, xml("body", {}, `o ${i}`)));
    }
    await gone(s.id);
    assert.match(small.log(), new RegExp(`json.queue_full session=${s.id}`));
    assert.match(small.log(), new RegExp(`json.end session=${s.id}`));
    (await expectResumeError(small, s.token, 0, "item-not-found")).close();
    assert.ok(small.running, "the gateway keeps running");
  }));

test("the detach timeout ends a session whose client does not come back", { timeout: 30000 },
  guarded(() => env, async () => {
    const { c, s } = await login(brief, "expiry");
    c.drop();
    await waitUntil(() => /json\.expired/.test(brief.log()) &&
      brief.log().includes(`json.expired session=${s.id}`), { timeoutMs: 15000, what: "expiry" });
    await gone(s.id);
    (await expectResumeError(brief, s.token, 0, "item-not-found")).close();
  }));

test("a live ack above what was sent ends the session with handled-count-too-high", { timeout: 30000 },
  guarded(() => env, async () => {
    const { c, s } = await login(gw, "too-high");
    await bob.send(xml("message", { to: s.jid, type: "chat", id: "th1" }, xml("body", {}, "x")));
    await c.next((o) => o.id === "th1", "the message");
    c.send({ op: "a", h: 5 });
    const e = await c.next((o) => o.op === "error", "the error");
    assert.equal(e.cond, "undefined-condition");
    assert.equal(e.text, "handled-count-too-high");
    assert.equal(e.fatal, true);
    await c.closed;
    await gone(s.id);
  }));
