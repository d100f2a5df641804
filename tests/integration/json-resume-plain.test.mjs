// Resuming on another node against a server that stores passwords in plaintext (Prosody's
// internal_plain, the shared test default): such a server draws a new SCRAM salt at every
// login, so the sealed SCRAM keys alone cannot log in again; with json_reauth_password (the
// default) the sealed password answers the new salt, and without it the resume fails cleanly.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { Env, USERS, guarded, xml } from "./lib/env.mjs";
import { JsonClient, checkSequence } from "./lib/json-client.mjs";

let env;
let bob;

before(async () => {
  env = await Env.start(); // internal_plain accounts
  bob = await env.login({ service: env.prosody.tcpService, username: "bob", password: USERS.bob });
}, { timeout: 60000 });

after(async () => {
  await env?.stop();
}, { timeout: 60000 });

async function dropAndResumeElsewhere(gwA, gwB, resource) {
  const prefix = `p${crypto.randomBytes(3).toString("hex")}-`;
  const c = await JsonClient.connect(gwA.wsUrl);
  const s = await c.login("alice", USERS.alice, resource);
  assert.equal(s.resumable, true, JSON.stringify(s));
  await bob.send(xml("message", { to: s.jid, type: "chat", id: `${prefix}1` },
    xml("body", {}, "before the drop")));
  await c.next((o) => o.id === `${prefix}1`, "the first message");
  c.drop();
  for (let i = 2; i <= 4; i++) {
    await bob.send(xml("message", { to: s.jid, type: "chat", id: `${prefix}${i}` },
      xml("body", {}, `while away ${i}`)));
  }
  const c2 = await JsonClient.connect(gwB.wsUrl);
  const r = await c2.resume(s.token, c.h);
  return { c, c2, r, prefix, s };
}

test("internal_plain server, json_reauth_password=yes: a resume on another node logs in again and loses nothing",
  { timeout: 60000 }, guarded(() => env, async () => {
    const gw1 = await env.startGateway({ json_handover_timeout: "2s" });
    const gw2 = await env.startGateway({ json_handover_timeout: "2s" });
    const { c, c2, r, prefix, s } = await dropAndResumeElsewhere(gw1, gw2, "plain-yes");
    assert.equal(r.op, "resumed", `resumed on the second node: ${JSON.stringify(r)}`);
    assert.ok(!r.fresh, "the XMPP stream itself was resumed");
    await c2.next((o) => o.id === `${prefix}4`, "the last message sent while away");
    checkSequence([...c.stanzas(), ...c2.stanzas()], 4, prefix);
    const rec = await env.redis.hgetall(`mxgw:json:${s.id}`);
    assert.ok(!JSON.stringify(rec).includes(USERS.alice), "the password is nowhere in clear");
    c2.send({ op: "logout" });
    await c2.next((o) => o.op === "bye", "bye");
  }));

test("internal_plain server, json_reauth_password=no: the resume on another node fails with item-not-found",
  { timeout: 60000 }, guarded(() => env, async () => {
    const opts = { json_handover_timeout: "2s", json_reauth_password: "no" };
    const gw1 = await env.startGateway(opts);
    const gw2 = await env.startGateway(opts);
    const { c2, r } = await dropAndResumeElsewhere(gw1, gw2, "plain-no");
    assert.equal(r.op, "error", JSON.stringify(r));
    assert.equal(r.cond, "item-not-found");
    assert.ok(!r.fatal, "the client may log in on the same connection");
    await c2.login("alice", USERS.alice, "plain-no-again");
    c2.send({ op: "logout" });
    await c2.next((o) => o.op === "bye", "bye");
  }));
