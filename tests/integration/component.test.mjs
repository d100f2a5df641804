// The XEP-0114 component link against a real Prosody: it comes up, answers disco#info and ping
// for its domain, comes back after Prosody restarts, keeps retrying (with growing gaps) when the
// secret is wrong, and a second gateway configured as the same component waits as a standby
// and takes over when the first one stops.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Env, USERS, COMPONENT, guarded, xml, waitForLog, restartProsody } from "./lib/env.mjs";

let env;
let alice;

before(async () => {
  env = await Env.start();
  alice = await env.login({ service: env.prosody.tcpService, username: "alice", password: USERS.alice });
}, { timeout: 60000 });

after(async () => {
  await env?.stop();
});

async function iq(user, child, id) {
  await user.send(xml("iq", { type: "get", to: COMPONENT.domain, id }, child));
  return user.waitFor((s) => s.is("iq") && s.attrs.id === id, { what: `the answer to ${id}` });
}

test("the link comes up and answers disco#info and ping for its domain", { timeout: 60000 },
  guarded(() => env, async () => {
    const gw = await env.startGateway();
    await waitForLog(gw, /event=component\.up domain=mxgw\.localhost/);
    const info = await iq(alice, xml("query", { xmlns: "http://jabber.org/protocol/disco#info" }), "d1");
    assert.equal(info.attrs.type, "result", `disco: ${info}`);
    const q = info.getChild("query");
    const ident = q.getChild("identity");
    assert.equal(ident?.attrs.category, "pubsub");
    assert.equal(ident?.attrs.type, "push");
    const vars = q.getChildren("feature").map((f) => f.attrs.var);
    assert.ok(vars.includes("urn:xmpp:push:0"), `features: ${vars}`);
    const pong = await iq(alice, xml("ping", { xmlns: "urn:xmpp:ping" }), "p1");
    assert.equal(pong.attrs.type, "result");
    const other = await iq(alice, xml("query", { xmlns: "jabber:iq:version" }), "v1");
    assert.equal(other.attrs.type, "error");
    assert.ok(other.getChild("error").getChild("service-unavailable"), `${other}`);
    await gw.stop();
  }));

test("the link comes back after Prosody restarts", { timeout: 90000 }, guarded(() => env, async () => {
  const gw = await env.startGateway();
  await waitForLog(gw, /event=component\.up/);
  await alice.stop();
  env.clients.delete(alice);
  await restartProsody(env.prosody);
  await waitForLog(gw, /event=component\.down/, { timeoutMs: 10000 });
  await waitUntilCount(gw, /event=component\.up/g, 2, 45000);
  alice = await env.login({ service: env.prosody.tcpService, username: "alice", password: USERS.alice });
  const pong = await iq(alice, xml("ping", { xmlns: "urn:xmpp:ping" }), "p2");
  assert.equal(pong.attrs.type, "result");
  await gw.stop();
}));

test("a wrong secret is refused and retried with growing gaps", { timeout: 60000 },
  guarded(() => env, async () => {
    const gw = await env.startGateway({ component_secret: "not-the-secret" });
    await waitUntilCount(gw, /event=component\.failed .*retry_ms=(\d+)/g, 3, 30000);
    const delays = [...gw.log().matchAll(/event=component\.failed .*retry_ms=(\d+)/g)].map((m) => Number(m[1]));
    assert.match(gw.log(), /event=component\.auth_failed/);
    assert.doesNotMatch(gw.log(), /event=component\.up/);
    assert.doesNotMatch(gw.log(), /not-the-secret/, "the secret is never logged");
    // Backoff doubles from 0.5 s with jitter in [d/2, d]: the third wait exceeds the first.
    assert.ok(delays[2] > delays[0], `retry delays should grow: ${delays}`);
    await gw.stop();
  }));

test("a second gateway is a standby and takes over", { timeout: 120000 }, guarded(() => env, async () => {
  const first = await env.startGateway();
  await waitForLog(first, /event=component\.up/);
  const second = await env.startGateway();
  await waitForLog(second, /event=component\.standby/);
  assert.doesNotMatch(second.log(), /event=component\.up/);
  await first.stop();
  await waitForLog(second, /event=component\.up/, { timeoutMs: 45000 });
  const pong = await iq(alice, xml("ping", { xmlns: "urn:xmpp:ping" }), "p3");
  assert.equal(pong.attrs.type, "result");
  await second.stop();
}));

async function waitUntilCount(gw, re, n, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const count = [...gw.log().matchAll(re)].length;
    if (count >= n) return count;
    if (Date.now() > deadline) throw new Error(`only ${count} of ${n} ${re} in mxgw's log`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
