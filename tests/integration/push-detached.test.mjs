// Push for sessions mxgw holds while their client is away (push source 1): a JSON client
// registers a device, its socket drops, and what arrives for the detached session is pushed
// (a message with a body at once, a burst merged, presence and chat states never), with a
// payload that says nothing it need not; the client then resumes and loses nothing. Prosody
// here has no mod_cloud_notify: every push comes from the detached session itself.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { Env, USERS, DOMAIN, guarded, xml, PushReceiver, verifyWebhook, waitUntil, waitForLog, delay } from "./lib/env.mjs";
import { JsonClient, checkSequence } from "./lib/json-client.mjs";

const SECRET = crypto.randomBytes(24).toString("hex");
let env, receiver, alice, gw;

before(async () => {
  env = await Env.start();
  receiver = await PushReceiver.start(env.certs);
  alice = await env.login({ service: env.prosody.tcpService, username: "alice", password: USERS.alice });
  gw = await env.startGateway({
    push_webhook_url: receiver.url("/hook"),
    push_webhook_secret: SECRET,
    push_allowlist: `localhost:${receiver.port}`,
    push_ca_file: env.certs.ca.cert,
    push_quiet_window: "3s",
    json_detach_timeout: "60s",
  });
  await waitForLog(gw, /event=component\.up/);
}, { timeout: 60000 });

after(async () => {
  await receiver?.stop();
  await env?.stop();
});

const pushesFor = (reg) => receiver.on("/hook").filter((r) => JSON.parse(r.body).id === reg);

test("a detached JSON session: a message pushes at once, a burst merges, presence and chat states never, nothing lost on resume",
  { timeout: 90000 }, guarded(() => env, async () => {
    const prefix = `pd${crypto.randomBytes(3).toString("hex")}-`;
    const c = await JsonClient.connect(gw.wsUrl);
    const s = await c.login("bob", USERS.bob, "away");
    c.send({ op: "push.register", provider: "webhook", token: "phone-1", id: "p1" });
    const r = await c.next((o) => o.id === "p1", "the registration");
    assert.equal(r.op, "push.registered", JSON.stringify(r));

    // Connected: nothing is pushed.
    await alice.send(xml("message", { to: s.jid, type: "chat", id: `${prefix}1` }, xml("body", {}, "hello")));
    await c.next((o) => o.id === `${prefix}1`, "the message while connected");
    c.ack();
    c.drop();
    await waitUntil(async () => (await env.redis.hgetall(`mxgw:json:${s.id}`)).state === "detached",
      { timeoutMs: 10000, what: "the session to be detached" });

    // Presence and a chat state: never a push.
    await alice.send(xml("presence", { to: s.jid }, xml("status", {}, "around")));
    await alice.send(xml("message", { to: s.jid, type: "chat", id: `${prefix}cs` },
      xml("composing", { xmlns: "http://jabber.org/protocol/chatstates" })));
    await delay(1000);
    assert.equal(pushesFor(r.reg).length, 0, "presence and chat states push nothing");

    // A message with a body: one push, at once, carrying no body, sender or account.
    const body = `secret ${crypto.randomBytes(4).toString("hex")}`;
    await alice.send(xml("message", { to: s.jid, type: "chat", id: `${prefix}2` }, xml("body", {}, body)));
    const first = await waitUntil(() => pushesFor(r.reg)[0], { timeoutMs: 10000, what: "the push" });
    const p = verifyWebhook(first, SECRET);
    assert.equal(p.n, 1);
    assert.equal(p.token, "phone-1");
    for (const leak of [body, "alice", "bob", DOMAIN]) {
      assert.ok(!first.body.toString().includes(leak), `the payload must not carry "${leak}"`);
    }

    // A burst of 20 inside the quiet window: at most one more push, counting the rest.
    for (let i = 3; i <= 22; i++) {
      await alice.send(xml("message", { to: s.jid, type: "chat", id: `${prefix}${i}` }, xml("body", {}, `burst ${i}`)));
    }
    await delay(5000);
    const all = pushesFor(r.reg);
    console.log(`# detached session: 21 messages → ${all.length} pushes`);
    assert.ok(all.length <= 2, `a burst costs at most one more push, got ${all.length}`);
    const counts = all.map((x) => verifyWebhook(x, SECRET).n);
    assert.equal(counts.reduce((a, b) => a + b, 0), 21, `the pushes count every message: ${counts}`);

    // Back: every message, once and in order.
    const c2 = await JsonClient.connect(gw.wsUrl);
    const back = await c2.resume(s.token, c.h);
    assert.equal(back.op, "resumed", JSON.stringify(back));
    await c2.next((o) => o.id === `${prefix}22`, "the last message");
    checkSequence([...c.stanzas(), ...c2.stanzas()].filter((o) => o.b), 22, prefix);
    c2.send({ op: "push.unregister", reg: r.reg, id: "p2" });
    await c2.next((o) => o.id === "p2", "the unregistration");
    c2.send({ op: "logout" });
    await c2.next((o) => o.op === "bye", "bye");
  }));
