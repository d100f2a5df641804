// Push registrations over REST (GET/PUT/DELETE /api/v1/users/{jid}/push), with a real HTTPS
// receiver standing in for push services: a webhook registration made by a backend pushes when
// its user's detached JSON session gets a message, and stops pushing once deleted; the list
// shows what a backend may see (provider, endpoint origin, a fingerprint, opt-ins, times) and
// never the token, the endpoint's path or the keys; the same validation as the JSON protocol's
// push.register, the per-account cap and the expiry apply; a REST renewal of a registration the
// app enabled for XEP-0357 keeps it working (the server's publish is still accepted); scopes,
// bad input and push = no get the documented problems.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { execFileSync } from "node:child_process";
import path from "node:path";
import {
  Env, USERS, DOMAIN, COMPONENT, guarded, xml, PushReceiver, verifyWebhook, webpushKeys,
  createApiKey, restCall, httpRequest, parseMetrics, waitUntil, waitForLog, delay,
} from "./lib/env.mjs";
import { JsonClient } from "./lib/json-client.mjs";

const SECRET = crypto.randomBytes(24).toString("hex");
const TTL_S = 7200;
let env, receiver, alice, gw, admin, reader, sender;

before(async () => {
  env = await Env.start({ prosodyOptions: { modules: ["offline", "cloud_notify"] } });
  receiver = await PushReceiver.start(env.certs);
  alice = await env.login({ service: env.prosody.tcpService, username: "alice", password: USERS.alice });
  const keyFile = path.join(env.dir, "vapid.pem");
  execFileSync("openssl", ["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", keyFile]);
  gw = await env.startGateway({
    push_webhook_url: receiver.url("/hook"),
    push_webhook_secret: SECRET,
    push_vapid_key_file: keyFile,
    push_vapid_subject: "mailto:ops@example.com",
    push_allowlist: `localhost:${receiver.port}`,
    push_ca_file: env.certs.ca.cert,
    push_quiet_window: "1s",
    push_max_per_account: 3,
    push_registration_ttl: `${TTL_S}s`,
    json_detach_timeout: "60s",
  });
  await waitForLog(gw, /event=component\.up/);
  admin = createApiKey(gw, { jids: [`ops@${COMPONENT.domain}`], ops: ["push.read", "push.write"] });
  reader = createApiKey(gw, { jids: [`ops@${COMPONENT.domain}`], ops: ["push.read"] });
  sender = createApiKey(gw, { jids: [`ops@${COMPONENT.domain}`], ops: ["messages"] });
}, { timeout: 90000 });

after(async () => {
  await receiver?.stop();
  await env?.stop();
});

const sha16 = (s) => crypto.createHash("sha256").update(s).digest("hex").slice(0, 16);
const pushPath = (user) => `/api/v1/users/${user}@${DOMAIN}/push`;
const put = (user, body, key = admin) => restCall(gw, "PUT", pushPath(user), { key: key.token, body });
const list = async (user, key = admin) => {
  const r = await restCall(gw, "GET", pushPath(user), { key: key.token });
  assert.equal(r.status, 200, r.text);
  return r.json.registrations;
};
const hooksFor = (reg) => receiver.on("/hook").filter((r) => JSON.parse(r.body).id === reg);

function assertProblem(r, status, slug) {
  assert.equal(r.status, status, r.text);
  assert.equal(r.headers["content-type"], "application/problem+json");
  assert.equal(r.json.type, `urn:mxgw:problem:${slug}`, r.text);
  assert.equal(r.json.status, status);
}

test("a webhook registration made over REST pushes for the user's detached JSON session, until it is deleted",
  { timeout: 120000 }, guarded(() => env, async () => {
    const token = `rest-phone-${crypto.randomBytes(6).toString("hex")}`;
    const before = Math.floor(Date.now() / 1000);
    const made = await put("bob", { provider: "webhook", token });
    assert.equal(made.status, 201, made.text);
    const reg = made.json;
    assert.match(reg.id, /^[0-9a-f]{32}$/);
    assert.equal(reg.provider, "webhook");
    assert.equal(reg.renewed, false);
    assert.equal(reg.fingerprint, sha16(token), "the fingerprint is SHA-256 of the token, 16 hex digits");
    assert.equal(reg.expires - reg.created, TTL_S, "push_registration_ttl sets the expiry");
    assert.ok(reg.created >= before - 1 && reg.created <= Math.floor(Date.now() / 1000) + 1);
    assert.ok(!made.text.includes(token), "the token is never shown");
    const metrics = parseMetrics((await httpRequest(gw, "GET", "/metrics")).text);
    assert.ok(metrics['mxgw_rest_requests_total{route="push",code="201"}'] >= 1, "201 is counted as 201");

    const listed = await list("bob");
    assert.deepEqual(listed.map((x) => x.id), [reg.id]);
    assert.deepEqual(listed[0], { id: reg.id, provider: "webhook", fingerprint: sha16(token), sender: false,
      body: false, groupchat: "mentions", rooms: [], created: reg.created, expires: reg.expires });

    // Bob's phone logs in over the JSON protocol and loses its network: the session is detached.
    const c = await JsonClient.connect(gw.wsUrl);
    const s = await c.login("bob", USERS.bob, "away");
    c.ack();
    c.drop();
    await waitUntil(async () => (await env.redis.hgetall(`mxgw:json:${s.id}`)).state === "detached",
      { timeoutMs: 10000, what: "the session to be detached" });

    const text = `hello ${crypto.randomBytes(4).toString("hex")}`;
    await alice.send(xml("message", { to: s.jid, type: "chat" }, xml("body", {}, text)));
    const rec = await waitUntil(() => hooksFor(reg.id)[0], { timeoutMs: 15000, what: "the push" });
    const payload = verifyWebhook(rec, SECRET);
    assert.equal(payload.token, token, "the push carries the device's token to the app's push service");
    assert.equal(payload.n, 1);
    assert.ok(!rec.body.toString().includes(text), "no body in the payload");

    // The same device again: renewed under its id, with the new choices.
    const again = await put("bob", { provider: "webhook", token, groupchat: "all" });
    assert.equal(again.status, 200, again.text);
    assert.equal(again.json.id, reg.id);
    assert.equal(again.json.renewed, true);
    assert.equal(again.json.groupchat, "all");
    assert.equal((await list("bob"))[0].groupchat, "all");

    // Deleted: the next message pushes nothing.
    const del = await restCall(gw, "DELETE", `${pushPath("bob")}?id=${reg.id}`, { key: admin.token });
    assert.equal(del.status, 204, del.text);
    assert.deepEqual(await list("bob"), []);
    const gone = await restCall(gw, "DELETE", `${pushPath("bob")}?id=${reg.id}`, { key: admin.token });
    assertProblem(gone, 404, "registration-not-found");
    const pushes = hooksFor(reg.id).length;
    await delay(1500); // past the quiet window
    await alice.send(xml("message", { to: s.jid, type: "chat" }, xml("body", {}, "after delete")));
    await delay(3000);
    assert.equal(hooksFor(reg.id).length, pushes, "a deleted registration gets no push");

    const back = await JsonClient.connect(gw.wsUrl);
    const resumed = await back.resume(s.token, c.h);
    assert.equal(resumed.op, "resumed", JSON.stringify(resumed));
    back.send({ op: "logout" });
    await back.next((o) => o.op === "bye", "bye");
  }));

test("Web Push registrations: the list shows the endpoint's origin and a fingerprint, never its path or keys",
  { timeout: 60000 }, guarded(() => env, async () => {
    const keys = webpushKeys();
    const endpoint = receiver.url(`/wp/${crypto.randomBytes(8).toString("hex")}`);
    const made = await put("carol", {
      provider: "webpush", endpoint, keys: { p256dh: keys.p256dh, auth: keys.authB64 },
      sender: true, groupchat: "none", rooms: [`team@conference.${DOMAIN}`],
    });
    assert.equal(made.status, 201, made.text);
    const [r] = await list("carol");
    assert.deepEqual(r, {
      id: made.json.id, provider: "webpush", origin: `https://localhost:${receiver.port}`,
      fingerprint: sha16(endpoint), sender: true, body: false, groupchat: "none",
      rooms: [`team@conference.${DOMAIN}`], created: made.json.created, expires: made.json.expires,
    });
    const text = JSON.stringify(r) + made.text;
    for (const secret of [new URL(endpoint).pathname, keys.p256dh, keys.authB64]) {
      assert.ok(!text.includes(secret), `${secret} must not be shown`);
    }
    // DELETE without id removes every registration of the account.
    const del = await restCall(gw, "DELETE", pushPath("carol"), { key: admin.token });
    assert.equal(del.status, 204, del.text);
    assert.deepEqual(await list("carol"), []);
  }));

test("the JSON protocol's validation, the per-account cap, bad JIDs and ids", { timeout: 60000 },
  guarded(() => env, async () => {
    const keys = webpushKeys();
    const good = { p256dh: keys.p256dh, auth: keys.authB64 };
    for (const body of [
      { provider: "carrier-pigeon" },
      { token: "no provider" },
      { provider: "webhook", token: "t", nope: 1 },
      { provider: "webhook", token: "t", sender: "yes" },
      { provider: "webhook", token: "t", groupchat: "some" },
      { provider: "webhook", token: "t", rooms: "room@conference.localhost" },
      { provider: "webhook", token: "t", rooms: ["not a jid"] },
      { provider: "webhook", token: "tab\there" },
      { provider: "webhook", endpoint: receiver.url("/x") },
      { provider: "webhook", token: "t", keys: good },
      { provider: "webpush", endpoint: receiver.url("/wp/k"), keys: { ...good, extra: "x" } },
      { provider: "webpush", endpoint: receiver.url("/wp/k"), keys: { p256dh: good.p256dh } },
      { provider: "webpush", endpoint: receiver.url("/wp/k"), keys: { ...good, auth: "c2hvcnQ" } },
      { provider: "webpush", endpoint: "http://10.1.2.3/push", keys: good },
      { provider: "webpush", endpoint: "https://127.0.0.1:9/push", keys: good },
      { provider: "webpush", keys: good },
    ]) {
      const r = await put("alice", body);
      assertProblem(r, 400, "bad-registration");
      assert.ok(r.json.detail.length > 0, "the detail says why");
    }
    let r = await restCall(gw, "PUT", pushPath("alice"), { key: admin.token, body: "{not json" });
    assertProblem(r, 400, "bad-registration");
    r = await restCall(gw, "PUT", pushPath("alice"), { key: admin.token, body: "[1]" });
    assertProblem(r, 400, "bad-registration");
    r = await restCall(gw, "PUT", pushPath("alice"), {
      key: admin.token, body: "token=x", headers: { "Content-Type": "application/x-www-form-urlencoded" },
    });
    assertProblem(r, 415, "unsupported-media-type");
    r = await restCall(gw, "GET", "/api/v1/users/not-a-jid/push", { key: admin.token });
    assertProblem(r, 400, "bad-jid");
    r = await restCall(gw, "DELETE", `${pushPath("alice")}?id=nothex`, { key: admin.token });
    assertProblem(r, 404, "registration-not-found");
    assert.deepEqual(await list("alice"), [], "nothing was stored by the refusals");

    // push_max_per_account = 3; one more is 409, renewing one of the three is still fine.
    const ids = [];
    for (let i = 0; i < 3; i++) {
      const ok = await put("alice", { provider: "webhook", token: `cap-${i}` });
      assert.equal(ok.status, 201, ok.text);
      ids.push(ok.json.id);
    }
    r = await put("alice", { provider: "webhook", token: "cap-3" });
    assertProblem(r, 409, "too-many-registrations");
    r = await put("alice", { provider: "webhook", token: "cap-1" });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.id, ids[1]);
    // Another account cannot remove them by id.
    r = await restCall(gw, "DELETE", `${pushPath("bob")}?id=${ids[0]}`, { key: admin.token });
    assertProblem(r, 404, "registration-not-found");
    assert.deepEqual((await list("alice")).map((x) => x.id).sort(), [...ids].sort());
    r = await restCall(gw, "DELETE", pushPath("alice"), { key: admin.token });
    assert.equal(r.status, 204, r.text);
    assert.deepEqual(await list("alice"), []);
    assert.deepEqual(await env.redis.smembers(`mxgw:push:acct:alice@${DOMAIN}`), []);
  }));

test("scopes: push.read lists, push.write is needed to change, other keys get 403", { timeout: 60000 },
  guarded(() => env, async () => {
    assert.deepEqual(await list("bob", reader), []);
    assertProblem(await put("bob", { provider: "webhook", token: "x" }, reader), 403, "operation-not-allowed");
    assertProblem(await restCall(gw, "DELETE", pushPath("bob"), { key: reader.token }), 403, "operation-not-allowed");
    assertProblem(await restCall(gw, "GET", pushPath("bob"), { key: sender.token }), 403, "operation-not-allowed");
    const r = await restCall(gw, "GET", pushPath("bob"), {});
    assertProblem(r, 401, "unauthorized");
    assert.deepEqual(await list("bob"), [], "nothing was stored by the refused calls");
  }));

test("a REST renewal keeps XEP-0357 working for a registration the app enabled", { timeout: 90000 },
  guarded(() => env, async () => {
    // The app registers over the JSON protocol: XEP-0357 is enabled on carol's account.
    const token = `app-${crypto.randomBytes(6).toString("hex")}`;
    const c = await JsonClient.connect(gw.wsUrl);
    await c.login("carol", USERS.carol, "phone");
    const r = await c.request({ op: "push.register", provider: "webhook", token, id: "r1" });
    assert.equal(r.op, "push.registered", JSON.stringify(r));
    assert.equal(r.server, true, "Prosody confirmed XEP-0357");
    c.send({ op: "logout" });
    await c.next((o) => o.op === "bye", "bye");

    // The backend renews it (say, to change its opt-ins).
    const renewed = await put("carol", { provider: "webhook", token, groupchat: "none" });
    assert.equal(renewed.status, 200, renewed.text);
    assert.equal(renewed.json.id, r.reg);

    // Carol has no session at all: Prosody stores the message and publishes to mxgw with the
    // secret it was enabled with, which mxgw still accepts.
    await alice.send(xml("message", { to: `carol@${DOMAIN}`, type: "chat" }, xml("body", {}, "while offline")));
    const rec = await waitUntil(() => hooksFor(r.reg)[0], { timeoutMs: 20000, what: "the XEP-0357 push" });
    assert.equal(verifyWebhook(rec, SECRET).token, token);
    assert.doesNotMatch(gw.log(), /event=push\.publish_refused/);
    assert.equal((await restCall(gw, "DELETE", pushPath("carol"), { key: admin.token })).status, 204);
  }));

test("push = no: the push resource answers 501", { timeout: 60000 }, guarded(() => env, async () => {
  const off = await env.startGateway({ push: "no", component: "off" });
  const r = await restCall(off, "GET", pushPath("bob"), { key: admin.token });
  assertProblem(r, 501, "not-implemented");
  await off.stop();
}));
