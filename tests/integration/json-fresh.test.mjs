// When the XMPP server has let the old stream go (its XEP-0198 hibernation expired), a resume
// on another node still succeeds but says "fresh": mxgw binds a new resource, and the stanzas
// it had kept in its own queue are still delivered. And with the in-process store (no Redis),
// sessions resume on the same node; a shutdown then ends them, since nothing survives it.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { Env, USERS, guarded, xml, waitUntil } from "./lib/env.mjs";
import { JsonClient, checkSequence } from "./lib/json-client.mjs";

let env;
let bob;

before(async () => {
  env = await Env.start({ prosodyAuth: "internal_hashed", prosodyExtra: "smacks_hibernation_time = 2" });
  bob = await env.login({ service: env.prosody.tcpService, username: "bob", password: USERS.bob });
}, { timeout: 60000 });

after(async () => {
  await env?.stop();
}, { timeout: 60000 });

test("the server forgot the stream: the resume is fresh, the kept stanzas still come", { timeout: 60000 },
  guarded(() => env, async () => {
    const gwA = await env.startGateway({ json_detach_timeout: "60s" });
    const gwB = await env.startGateway({ json_detach_timeout: "60s" });
    const prefix = `f${crypto.randomBytes(3).toString("hex")}-`;
    const c = await JsonClient.connect(gwA.wsUrl);
    const s = await c.login("alice", USERS.alice, "fresh");
    c.drop();
    await waitUntil(async () => (await env.redis.hgetall(`mxgw:json:${s.id}`)).state === "detached",
      { timeoutMs: 10000, what: "detached" });
    for (let i = 1; i <= 3; i++) {
      await bob.send(xml("message", { to: s.jid, type: "chat", id: `${prefix}${i}` }, xml("body", {}, `${i}`)));
    }
    await waitUntil(async () => (await env.redis.cmd("LLEN", `mxgw:jsonq:${s.id}`))[0] === "3",
      { timeoutMs: 10000, what: "three queued" });
    gwA.child.signal("SIGKILL");
    await gwA.child.exit;
    await waitUntil(() => env.prosody.log().includes("Destroying session for hibernating too long"),
      { timeoutMs: 20000, what: "Prosody to let the hibernated stream go" });
    const c2 = await JsonClient.connect(gwB.wsUrl);
    const r = await c2.resume(s.token, c.h);
    assert.equal(r.op, "resumed", JSON.stringify(r));
    assert.equal(r.fresh, true, "the client is told the XMPP stream is new");
    assert.equal(r.resumable, true);
    checkSequence([
      await c2.next((o) => o.id === `${prefix}1`, "kept 1"),
      await c2.next((o) => o.id === `${prefix}2`, "kept 2"),
      await c2.next((o) => o.id === `${prefix}3`, "kept 3"),
    ], 3, prefix);
    const id = `after-${crypto.randomBytes(3).toString("hex")}`;
    await bob.send(xml("message", { to: r.jid, type: "chat", id }, xml("body", {}, "new stream")));
    await c2.next((o) => o.id === id, "a message on the new stream");
    c2.send({ op: "logout" });
    await c2.next((o) => o.op === "bye", "bye");
  }));

test("the in-process store: resume on the same node; a shutdown ends sessions without a resume promise",
  { timeout: 60000 }, guarded(() => env, async () => {
    const gw = await env.startGateway({ redis: null, json_detach_timeout: "60s" });
    const prefix = `m${crypto.randomBytes(3).toString("hex")}-`;
    const c = await JsonClient.connect(gw.wsUrl);
    const s = await c.login("alice", USERS.alice, "memory");
    assert.equal(s.resumable, true, "resumable on this node");
    c.drop();
    await waitUntil(() => gw.log().includes(`json.detach session=${s.id}`), { what: "detached" });
    for (let i = 1; i <= 3; i++) {
      await bob.send(xml("message", { to: s.jid, type: "chat", id: `${prefix}${i}` }, xml("body", {}, `${i}`)));
    }
    const c2 = await JsonClient.connect(gw.wsUrl);
    const r = await c2.resume(s.token, c.h);
    assert.equal(r.op, "resumed", JSON.stringify(r));
    await c2.next((o) => o.id === `${prefix}3`, "message 3");
    checkSequence(c2.stanzas(), 3, prefix);
    gw.child.signal("SIGTERM");
    const e = await c2.next((o) => o.op === "error", "the shutdown notice");
    assert.equal(e.cond, "system-shutdown");
    assert.notEqual(e.resumable, true, "no resume is promised: the in-process store is going");
    const exit = await gw.child.waitExit(10000);
    assert.equal(exit?.code, 0);
  }));
