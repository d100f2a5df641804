// Push faults, end to end through Prosody's mod_cloud_notify to a real HTTPS receiver that
// misbehaves on purpose: Retry-After on 429 (seconds) and 503 (an HTTP-date) is honoured to the
// second, 410 deletes the registration at once (and the server's next publish gets
// item-not-found), 500 is retried with backoff and then given up on (with the metric), endpoints
// the policy forbids are refused (a loopback IP, plain http, a name that resolves to loopback
// on a port the allowlist does not name: refused at connect time, the server never sees a
// connection), a redirect is not followed, a certificate from an untrusted CA fails the TLS
// handshake (retried, then given up on); and queued pushes survive mxgw restarting, both
// after SIGTERM and after kill -9 with the request in flight.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import {
  Env, USERS, DOMAIN, guarded, xml, PushReceiver, JsonSession, webpushKeys, webpushDecrypt,
  waitForLog, waitUntil, delay,
} from "./lib/env.mjs";

let env, receiver, other, rogue, alice, gw;
const OPTIONS = () => ({
  push_allowlist: `localhost:${receiver.port} localhost:${rogue.port}`,
  push_ca_file: env.certs.ca.cert,
  push_quiet_window: "0s",
  push_max_attempts: "3",
  push_retry_min: "300ms",
  push_retry_max: "600ms",
  push_http_timeout: "2s",
});

before(async () => {
  env = await Env.start({ prosodyOptions: { modules: ["offline", "cloud_notify"] } });
  receiver = await PushReceiver.start(env.certs);
  other = await PushReceiver.start(env.certs); // on a port the allowlist does not name
  rogue = await PushReceiver.start(env.certs, { cert: env.certs.rogue }); // an untrusted CA
  alice = await env.login({ service: env.prosody.tcpService, username: "alice", password: USERS.alice });
  gw = await startGateway();
}, { timeout: 60000 });

after(async () => {
  await receiver?.stop();
  await other?.stop();
  await rogue?.stop();
  await env?.stop();
});

async function startGateway() {
  const g = await env.startGateway(OPTIONS());
  await waitForLog(g, /event=component\.up/, { timeoutMs: 45000 });
  return g;
}

/** Registers a UnifiedPush device of bob at endpoint; returns { reg, keys } or the error. */
async function register(endpoint, { expectError = false } = {}) {
  const keys = webpushKeys();
  const c = await JsonSession.connect(gw.wsUrl);
  await c.login("bob", USERS.bob);
  const r = await c.request({
    op: "push.register", provider: "unifiedpush", endpoint,
    keys: { p256dh: keys.p256dh, auth: keys.authB64 },
  });
  await c.logout();
  if (expectError) return r;
  assert.equal(r.op, "push.registered", JSON.stringify(r));
  return { reg: r.reg, keys };
}

async function unregister(reg) {
  const c = await JsonSession.connect(gw.wsUrl);
  await c.login("bob", USERS.bob);
  await c.request({ op: "push.unregister", reg });
  await c.logout();
}

function send(body = `m ${crypto.randomBytes(3).toString("hex")}`) {
  return alice.send(xml("message", { to: `bob@${DOMAIN}`, type: "chat" }, xml("body", {}, body)));
}

function path(name) {
  return `/${name}/${crypto.randomBytes(6).toString("hex")}`;
}

test("429 with Retry-After: nothing is sent before the deadline", { timeout: 60000 },
  guarded(() => env, async () => {
    const p = path("f429");
    receiver.route(p, () => (receiver.on(p).length === 1
      ? { status: 429, headers: { "Retry-After": "3" } } : 201));
    const { reg } = await register(receiver.url(p));
    await send();
    const first = await receiver.waitFor(p);
    const second = await receiver.waitFor(p, { n: 2, timeoutMs: 20000 });
    const waited = second.at - first.at;
    console.log(`# 429 Retry-After: 3 → retried after ${waited} ms`);
    assert.ok(waited >= 3000, `retried after ${waited} ms, before the 3 s deadline`);
    await delay(500);
    assert.equal(receiver.on(p).length, 2, "one retry, then done");
    await unregister(reg);
  }));

test("503 with an HTTP-date Retry-After is honoured too", { timeout: 60000 },
  guarded(() => env, async () => {
    const p = path("f503");
    let until;
    receiver.route(p, () => {
      if (receiver.on(p).length > 1) return 201;
      until = Math.ceil((Date.now() + 3000) / 1000) * 1000;
      return { status: 503, headers: { "Retry-After": new Date(until).toUTCString() } };
    });
    const { reg } = await register(receiver.url(p));
    await send();
    await receiver.waitFor(p);
    const second = await receiver.waitFor(p, { n: 2, timeoutMs: 20000 });
    assert.ok(second.at >= until, `retried ${until - second.at} ms before the date`);
    await unregister(reg);
  }));

test("410 deletes the registration at once", { timeout: 60000 }, guarded(() => env, async () => {
  const p = path("f410");
  receiver.route(p, () => 410);
  const { reg } = await register(receiver.url(p));
  assert.ok(await env.redis.exists(`mxgw:push:reg:${reg}`));
  await send();
  await receiver.waitFor(p);
  await waitUntil(async () => !(await env.redis.exists(`mxgw:push:reg:${reg}`)),
    { timeoutMs: 5000, what: "the registration deleted" });
  assert.ok(!(await env.redis.smembers(`mxgw:push:acct:bob@${DOMAIN}`)).includes(reg));
  // Prosody still has the XEP-0357 registration: its next publish is refused as unknown.
  const seen = (gw.log().match(/event=push\.publish_unknown/g) || []).length;
  await send();
  await waitUntil(() => (gw.log().match(/event=push\.publish_unknown/g) || []).length > seen,
    { what: "item-not-found for the dead node" });
  await delay(500);
  assert.equal(receiver.on(p).length, 1, "nothing more was sent to the dead endpoint");
}));

test("500 is retried with backoff, then given up on and counted", { timeout: 60000 },
  guarded(() => env, async () => {
    const p = path("f500");
    receiver.route(p, () => 500);
    const { reg } = await register(receiver.url(p));
    await send();
    await receiver.waitFor(p, { n: 3, timeoutMs: 20000 });
    await waitForLog(gw, new RegExp(`event=push\\.failed provider=unifiedpush reg=${reg.slice(0, 8)} ` +
      `reason="HTTP 500" attempts=3`));
    const gaps = receiver.on(p).slice(1).map((r, i) => r.at - receiver.on(p)[i].at);
    console.log(`# 500: 3 attempts, gaps ${gaps.join(" ms, ")} ms, then given up`);
    assert.ok(gaps.every((g) => g >= 150), `backoff between attempts: ${gaps}`);
    await delay(1500);
    assert.equal(receiver.on(p).length, 3, "no attempt beyond push_max_attempts");
    // The counters, as the module reports them when it stops.
    await gw.stop();
    const stats = /event=push\.stats provider=unifiedpush sent=\d+ merged=\d+ failed=(\d+) retried=(\d+)/
      .exec(gw.log());
    assert.ok(stats && Number(stats[1]) >= 1 && Number(stats[2]) >= 2, `stats: ${stats?.[0]}`);
    gw = await startGateway();
    await unregister(reg);
  }));

test("endpoints the policy forbids are refused, redirects are not followed", { timeout: 90000 },
  guarded(() => env, async () => {
    const loopbackIp = await register(`https://127.0.0.1:${receiver.port}/x`, { expectError: true });
    assert.equal(loopbackIp.cond, "not-acceptable");
    assert.match(loopbackIp.text, /loopback/);
    const plain = await register("http://push.example.com/x", { expectError: true });
    assert.equal(plain.cond, "not-acceptable");
    assert.match(plain.text, /http/);

    // A name is only resolved when connecting: localhost on a port the allowlist does not name
    // is refused there, before any connection is made.
    const { reg } = await register(`https://localhost:${other.port}/x`);
    const before = other.tcpConnections || 0;
    await send();
    await waitForLog(gw, new RegExp(`event=push\\.refused provider=unifiedpush reg=${reg.slice(0, 8)} ` +
      `reason="resolves to a loopback address"`));
    assert.equal(other.tcpConnections || 0, before, "no connection reached the refused endpoint");
    await unregister(reg);

    const p = path("redir");
    receiver.route(p, () => ({ status: 302, headers: { Location: receiver.url("/target") } }));
    const redirected = await register(receiver.url(p));
    await send();
    await receiver.waitFor(p);
    await waitForLog(gw, /event=push\.failed provider=unifiedpush .*reason="redirect \(not followed\)"/);
    await delay(500);
    assert.equal(receiver.on("/target").length, 0, "the redirect was not followed");
    await unregister(redirected.reg);
  }));

test("a certificate nobody vouches for is refused", { timeout: 60000 }, guarded(() => env, async () => {
  const { reg } = await register(`https://localhost:${rogue.port}/x`);
  const before = rogue.tcpConnections || 0;
  await send();
  await waitForLog(gw, new RegExp(`event=push\\.failed provider=unifiedpush reg=${reg.slice(0, 8)} ` +
    `reason="tls error" attempts=3`), { timeoutMs: 20000 });
  assert.ok((rogue.tcpConnections || 0) > before, "mxgw did connect…");
  assert.equal(rogue.requests.length, 0, "…but sent nothing over an unverified connection");
  await unregister(reg);
}));

test("queued pushes survive a restart (SIGTERM)", { timeout: 120000 }, guarded(() => env, async () => {
  const p = path("restart");
  let open = false;
  receiver.route(p, () => (open ? 201 : { status: 503, headers: { "Retry-After": "4" } }));
  const { reg, keys } = await register(receiver.url(p));
  await send("one");
  const first = await receiver.waitFor(p);
  await send("two");
  await send("three");
  await waitUntil(() => (gw.log().match(new RegExp(`event=push\\.queued .*reg=${reg.slice(0, 8)}`, "g")) || [])
    .length >= 3, { what: "the later messages queued" });
  await gw.stop(); // before the Retry-After deadline
  open = true;
  gw = await startGateway();
  const second = await receiver.waitFor(p, { n: 2, timeoutMs: 30000 });
  const doc = JSON.parse(webpushDecrypt(second.body, keys).plaintext);
  console.log(`# restart: queued push delivered ${second.at - first.at} ms after the 503, count ${doc.n}`);
  assert.equal(doc.n, 3, "all three messages are in the push sent after the restart");
  assert.ok(second.at - first.at >= 4000, "and not before the Retry-After deadline");
  await unregister(reg);
}));

test("a push in flight when mxgw is killed is sent once its lease runs out", { timeout: 120000 },
  guarded(() => env, async () => {
    const p = path("killed");
    let hold = true;
    // The first request never gets an answer: mxgw is killed while it waits.
    receiver.route(p, () => (hold ? { hold: true } : 201));
    const { reg, keys } = await register(receiver.url(p));
    await send("in flight");
    await receiver.waitFor(p);
    gw.child.signal("SIGKILL");
    await gw.child.exit;
    hold = false;
    const t0 = Date.now();
    gw = await startGateway();
    const again = await receiver.waitFor(p, { n: 2, timeoutMs: 30000 });
    console.log(`# kill -9: the push came again ${again.at - t0} ms after the restart (lease 7 s)`);
    assert.equal(JSON.parse(webpushDecrypt(again.body, keys).plaintext).n, 1);
    await unregister(reg);
  }));
