// Push through the XEP-0357 app-server role, end to end: bob registers a device over the JSON
// protocol (mxgw enables XEP-0357 on his account), logs out, and Prosody with mod_offline and
// mod_cloud_notify publishes to mxgw's component when alice's messages are stored offline; mxgw
// delivers to a real HTTPS receiver (the "app's push service") with a signed webhook.
//
// Covered here: the signature, privacy by default (no body, no sender, no account JID, even
// though this Prosody is configured to hand both to the app server), both opt-ins together,
// the quiet window (a burst of 20 costs at most 2 pushes; the figure is printed), what never
// pushes even when Prosody forwards it (chat states, receipts, markers), push.info, the
// registration cap and renewal, unregistering, and the delay from a publish's arrival to the
// start of its HTTP request (p50/p99 printed).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import {
  Env, USERS, COMPONENT, DOMAIN, guarded, xml, PushReceiver, JsonSession, verifyWebhook,
  waitForLog, waitUntil, delay,
} from "./lib/env.mjs";

const SECRET = crypto.randomBytes(24).toString("hex");
let env, receiver, alice, gw;

before(async () => {
  env = await Env.start({
    prosodyOptions: {
      modules: ["offline", "cloud_notify"],
      // Prosody hands body and sender to the app server: mxgw must still keep them to itself.
      extraConfig: "push_notification_with_body = true\npush_notification_with_sender = true\n",
    },
  });
  receiver = await PushReceiver.start(env.certs);
  alice = await env.login({ service: env.prosody.tcpService, username: "alice", password: USERS.alice });
}, { timeout: 60000 });

after(async () => {
  await receiver?.stop();
  await env?.stop();
});

/** (Re)starts the one gateway holding the component, with push options. */
async function gateway(options = {}) {
  if (gw?.running) await gw.stop();
  gw = await env.startGateway({
    push_webhook_url: receiver.url("/hook"),
    push_webhook_secret: SECRET,
    push_allowlist: `localhost:${receiver.port}`,
    push_ca_file: env.certs.ca.cert,
    push_quiet_window: "3s",
    ...options,
  });
  await waitForLog(gw, /event=component\.up/);
  return gw;
}

/** bob logs in over JSON, registers a webhook device, logs out; returns the answer. */
async function register(fields, { user = "bob" } = {}) {
  const c = await JsonSession.connect(gw.wsUrl);
  await c.login(user, USERS[user]);
  const r = await c.request({ op: "push.register", provider: "webhook", ...fields });
  await c.logout();
  return r;
}

async function unregister(reg, user = "bob") {
  const c = await JsonSession.connect(gw.wsUrl);
  await c.login(user, USERS[user]);
  const r = await c.request({ op: "push.unregister", reg });
  await c.logout();
  return r;
}

function message(body, extra = []) {
  return xml("message", { to: `bob@${DOMAIN}`, type: "chat", id: crypto.randomBytes(6).toString("hex") },
    ...(body === null ? [] : [xml("body", {}, body)]), ...extra);
}

/** The webhook requests for one registration id. */
function pushesFor(reg) {
  return receiver.on("/hook").filter((r) => JSON.parse(r.body).id === reg);
}

test("a user with no session gets a signed push that says nothing it need not", { timeout: 90000 },
  guarded(() => env, async () => {
    await gateway();
    const r = await register({ token: "device-token-1" });
    assert.equal(r.op, "push.registered", JSON.stringify(r));
    assert.match(r.reg, /^[0-9a-f]{32}$/);
    assert.equal(r.server, true, "Prosody confirmed XEP-0357 enable");
    assert.ok(r.expires > Date.now() / 1000 + 86400, "the registration lasts");
    // The registration lives in Redis under the account.
    assert.deepEqual(await env.redis.smembers(`mxgw:push:acct:bob@${DOMAIN}`), [r.reg]);

    const body = `the secret plan ${crypto.randomBytes(4).toString("hex")}`;
    const before = Date.now();
    await alice.send(message(body));
    const rec = await waitUntil(() => pushesFor(r.reg)[0], { timeoutMs: 15000, what: "the push" });
    const payload = verifyWebhook(rec, SECRET);
    assert.deepEqual(Object.keys(payload).sort(), ["id", "n", "token", "ts", "v"]);
    assert.equal(payload.n, 1);
    assert.equal(payload.token, "device-token-1");
    const raw = rec.body.toString();
    for (const leak of [body, "alice", "bob", DOMAIN]) {
      assert.ok(!raw.includes(leak), `the payload must not carry "${leak}": ${raw}`);
    }
    console.log(`# xep-0357: message sent → push received in ${rec.at - before} ms`);
  }));

test("sender and body only when the server and the registration both opt in", { timeout: 90000 },
  guarded(() => env, async () => {
    await gateway({ push_include_sender: "yes", push_include_body: "yes" });
    const both = await register({ token: "opted-in", sender: true, body: true });
    const none = await register({ token: "opted-out" });
    const body = `hello ${crypto.randomBytes(4).toString("hex")}`;
    await alice.send(message(body));
    const a = await waitUntil(() => pushesFor(both.reg)[0], { what: "the opted-in push" });
    const b = await waitUntil(() => pushesFor(none.reg)[0], { what: "the opted-out push" });
    const pa = verifyWebhook(a, SECRET);
    const pb = verifyWebhook(b, SECRET);
    assert.equal(pa.from, `alice@${DOMAIN}`, "the sender, as a bare JID");
    assert.equal(pa.body, body);
    assert.equal(pb.from, undefined);
    assert.equal(pb.body, undefined);
    // The server side alone does not suffice either: a gateway without the opt-in.
    await gateway();
    const body2 = `again ${crypto.randomBytes(4).toString("hex")}`;
    await delay(3100); // let the quiet window of the first push pass
    await alice.send(message(body2));
    const c = await waitUntil(() => pushesFor(both.reg)[1], { what: "the second push" });
    const pc = verifyWebhook(c, SECRET);
    assert.equal(pc.from, undefined);
    assert.equal(pc.body, undefined);
    await unregister(both.reg);
    await unregister(none.reg);
  }));

test("a burst of 20 messages within the quiet window costs at most 2 pushes", { timeout: 90000 },
  guarded(() => env, async () => {
    await gateway({ push_quiet_window: "4s" });
    const r = await register({ token: "burst" });
    for (let i = 0; i < 20; i++) await alice.send(message(`burst ${i}`));
    await waitUntil(() => {
      const got = pushesFor(r.reg).map((x) => JSON.parse(x.body).n);
      return got.reduce((a, b) => a + b, 0) >= 20;
    }, { timeoutMs: 30000, what: "pushes covering all 20 messages" });
    await delay(5000); // nothing more may come after the window
    const counts = pushesFor(r.reg).map((x) => JSON.parse(x.body).n);
    console.log(`# burst: 20 messages → ${counts.length} pushes (counts ${counts.join(" + ")})`);
    assert.ok(counts.length <= 2, `at most 2 pushes, got ${counts.length}: ${counts}`);
    assert.equal(counts.reduce((a, b) => a + b, 0), 20, "the counts add up to the messages");
    await unregister(r.reg);
  }));

test("chat states, receipts and markers never push, though Prosody forwards them", { timeout: 90000 },
  guarded(() => env, async () => {
    await gateway({ push_quiet_window: "0s" });
    const r = await register({ token: "quiet" });
    const publishes = () => (gw.log().match(/event=push\.publish_ignored/g) || []).length;
    const seen = publishes();
    await alice.send(message(null, [xml("composing", { xmlns: "http://jabber.org/protocol/chatstates" })]));
    await alice.send(message(null, [xml("received", { xmlns: "urn:xmpp:receipts", id: "m1" })]));
    await alice.send(message(null, [xml("displayed", { xmlns: "urn:xmpp:chat-markers:0", id: "m1" })]));
    // Prosody did publish each of them (answered, then ignored by mxgw's policy)…
    await waitUntil(() => publishes() - seen >= 3, { timeoutMs: 15000, what: "3 ignored publishes" });
    // …and a real message right after is the first and only push, with a count of 1.
    await alice.send(message("now something real"));
    const rec = await waitUntil(() => pushesFor(r.reg)[0], { what: "the real push" });
    assert.equal(JSON.parse(rec.body).n, 1);
    await delay(1000);
    assert.equal(pushesFor(r.reg).length, 1, "exactly one push");
    await unregister(r.reg);
  }));

test("push.info, the per-account cap, renewal and unregistering", { timeout: 90000 },
  guarded(() => env, async () => {
    await gateway({ push_max_per_account: "2" });
    const c = await JsonSession.connect(gw.wsUrl);
    const early = await c.request({ op: "push.register", provider: "webhook", token: "x" });
    assert.equal(early.op, "error");
    assert.equal(early.cond, "not-authorized");
    await c.login("carol", USERS.carol);
    const info = await c.request({ op: "push.info" });
    assert.deepEqual(info.providers, ["webhook", "unifiedpush"]);
    assert.equal(info.jid, COMPONENT.domain);
    assert.equal(info.window, 3);
    assert.equal(info.max, 2);
    const a = await c.request({ op: "push.register", provider: "webhook", token: "one" });
    const b = await c.request({ op: "push.register", provider: "webhook", token: "two" });
    assert.equal(a.op, "push.registered");
    assert.equal(b.op, "push.registered");
    const again = await c.request({ op: "push.register", provider: "webhook", token: "one" });
    assert.equal(again.reg, a.reg, "the same device renews its registration");
    assert.equal(again.renewed, true);
    const third = await c.request({ op: "push.register", provider: "webhook", token: "three" });
    assert.equal(third.op, "error");
    assert.equal(third.cond, "policy-violation");
    for (const bad of [
      { provider: "fcm", token: "x" },
      { provider: "webhook", token: 5 },
      { provider: "webhook", endpoint: "https://example.com/x" },
      { provider: "webhook", token: "x", groupchat: "some" },
      { provider: "webhook", token: "x", extra: 1 },
      { provider: "webpush", endpoint: "https://example.com/x" },
    ]) {
      const e = await c.request({ op: "push.register", ...bad });
      assert.equal(e.op, "error", `refused: ${JSON.stringify(bad)}`);
      assert.ok(["bad-request", "not-acceptable"].includes(e.cond), JSON.stringify(e));
    }
    const gone = await c.request({ op: "push.unregister", reg: a.reg });
    assert.equal(gone.op, "push.unregistered");
    assert.equal(gone.server, true, "Prosody confirmed XEP-0357 disable");
    assert.equal(await env.redis.exists(`mxgw:push:reg:${a.reg}`), false);
    const twice = await c.request({ op: "push.unregister", reg: a.reg });
    assert.equal(twice.cond, "item-not-found");
    // Someone else's registration cannot be removed.
    const d = await JsonSession.connect(gw.wsUrl);
    await d.login("alice", USERS.alice, "other");
    const foreign = await d.request({ op: "push.unregister", reg: b.reg });
    assert.equal(foreign.cond, "item-not-found");
    await d.logout();
    await c.request({ op: "push.unregister", reg: b.reg });
    await c.logout();
  }));

test("delay from a publish's arrival to the start of its HTTP request", { timeout: 180000 },
  guarded(() => env, async () => {
    await gateway({ push_quiet_window: "0s" });
    const r = await register({ token: "latency" });
    const n = 40;
    const e2e = [];
    for (let i = 0; i < n; i++) {
      const t0 = Date.now();
      await alice.send(message(`latency ${i}`));
      await waitUntil(() => pushesFor(r.reg)[i], { timeoutMs: 15000, what: `push ${i}` });
      e2e.push(pushesFor(r.reg)[i].at - t0);
    }
    const inside = [...gw.log().matchAll(/event=push\.sent provider=webhook reg=(\w+) .*delay_ms=([\d.]+)/g)]
      .filter((m) => r.reg.startsWith(m[1])).map((m) => Number(m[2]));
    assert.equal(inside.length, n, "every push was unmerged and measured");
    const pct = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil(p * xs.length) - 1)];
    console.log(`# push delay, publish arrival → HTTP request start (n=${n}): ` +
      `p50 ${pct(inside, 0.5).toFixed(2)} ms, p99 ${pct(inside, 0.99).toFixed(2)} ms`);
    console.log(`# push end to end, XMPP send → receiver (through Prosody): ` +
      `p50 ${pct(e2e, 0.5)} ms, p99 ${pct(e2e, 0.99)} ms`);
    await unregister(r.reg);
  }));
