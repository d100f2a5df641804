// Web Push and UnifiedPush end to end: a subscription made here with Node's crypto (as a
// browser makes one), registered over the JSON protocol, then a message stored offline by
// Prosody: the receiver (standing in for the push service) decrypts the RFC 8291 payload with
// its own implementation, checks the RFC 8030 headers and padding, and verifies the RFC 8292
// VAPID token (ES256 signature with the key mxgw publishes through push.info, aud, exp, sub), and
// that the token is reused for the next push.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import {
  Env, USERS, DOMAIN, guarded, xml, PushReceiver, JsonSession, webpushKeys, webpushDecrypt,
  verifyVapid, waitForLog, waitUntil, delay,
} from "./lib/env.mjs";

const SUBJECT = "mailto:push-ops@example.com";
let env, receiver, alice, gw, vapidPublic;

before(async () => {
  env = await Env.start({ prosodyOptions: { modules: ["offline", "cloud_notify"] } });
  receiver = await PushReceiver.start(env.certs);
  alice = await env.login({ service: env.prosody.tcpService, username: "alice", password: USERS.alice });
  // The VAPID key, made as the README says.
  const keyFile = path.join(env.dir, "vapid.pem");
  execFileSync("openssl", ["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", keyFile]);
  vapidPublic = execFileSync("openssl", ["ec", "-in", keyFile, "-pubout", "-outform", "DER"],
    { stdio: ["ignore", "pipe", "ignore"] }).subarray(-65).toString("base64url");
  gw = await env.startGateway({
    push_vapid_key_file: keyFile,
    push_vapid_subject: SUBJECT,
    push_allowlist: `localhost:${receiver.port}`,
    push_ca_file: env.certs.ca.cert,
    push_quiet_window: "1s",
  });
  await waitForLog(gw, /event=component\.up/);
}, { timeout: 60000 });

after(async () => {
  await receiver?.stop();
  await env?.stop();
});

async function register(provider, keys, endpoint) {
  const c = await JsonSession.connect(gw.wsUrl);
  await c.login("bob", USERS.bob);
  const info = await c.request({ op: "push.info" });
  const r = await c.request({
    op: "push.register", provider, endpoint, keys: { p256dh: keys.p256dh, auth: keys.authB64 },
  });
  await c.logout();
  assert.equal(r.op, "push.registered", JSON.stringify(r));
  return { r, info };
}

function send(body) {
  return alice.send(xml("message", { to: `bob@${DOMAIN}`, type: "chat" }, xml("body", {}, body)));
}

test("Web Push: decrypted by the receiver, headers and VAPID checked", { timeout: 90000 },
  guarded(() => env, async () => {
    const keys = webpushKeys();
    const endpoint = receiver.url(`/wp/${crypto.randomBytes(8).toString("hex")}`);
    const { r, info } = await register("webpush", keys, endpoint);
    assert.ok(info.providers.includes("webpush"));
    assert.equal(info.vapid, vapidPublic, "push.info gives the VAPID public key");

    await send("first");
    const rec = await receiver.waitFor(new URL(endpoint).pathname);
    assert.equal(rec.headers["content-encoding"], "aes128gcm");
    assert.equal(rec.headers["content-type"], "application/octet-stream");
    assert.equal(rec.headers.ttl, "86400");
    assert.equal(rec.headers.urgency, "normal");
    assert.equal(rec.headers.topic, "mxgw");
    const { plaintext, record, rs } = webpushDecrypt(rec.body, keys);
    assert.equal(rs, 4096);
    assert.equal(record % 256, 0, `the record is padded to whole blocks, got ${record}`);
    assert.equal(rec.body.length, 86 + record + 16, "one record");
    const doc = JSON.parse(plaintext);
    assert.deepEqual(doc, { v: 1, id: r.reg, n: 1 }, "only the id and a count");
    const v1 = verifyVapid(rec.headers.authorization,
      { audience: `https://localhost:${receiver.port}`, subject: SUBJECT });
    assert.equal(v1.key, vapidPublic);

    await delay(1100);
    await send("second");
    const rec2 = await receiver.waitFor(new URL(endpoint).pathname, { n: 2 });
    const v2 = verifyVapid(rec2.headers.authorization,
      { audience: `https://localhost:${receiver.port}`, subject: SUBJECT });
    assert.equal(v2.jwt, v1.jwt, "the token is reused while it is fresh");
    assert.notDeepEqual(rec2.body, rec.body, "every message has its own salt and key");
    assert.equal(JSON.parse(webpushDecrypt(rec2.body, keys).plaintext).n, 1);
  }));

test("UnifiedPush: the distributor's endpoint gets the same encrypted push", { timeout: 90000 },
  guarded(() => env, async () => {
    const keys = webpushKeys();
    const endpoint = receiver.url(`/up/${crypto.randomBytes(8).toString("hex")}`);
    const { r } = await register("unifiedpush", keys, endpoint);
    await send("hello distributor");
    const rec = await receiver.waitFor(new URL(endpoint).pathname);
    const doc = JSON.parse(webpushDecrypt(rec.body, keys).plaintext);
    assert.equal(doc.id, r.reg);
    assert.equal(doc.n, 1);
    verifyVapid(rec.headers.authorization,
      { audience: `https://localhost:${receiver.port}`, subject: SUBJECT });
  }));

test("bad subscription keys are refused at registration", { timeout: 60000 },
  guarded(() => env, async () => {
    const c = await JsonSession.connect(gw.wsUrl);
    await c.login("bob", USERS.bob);
    const good = webpushKeys();
    const endpoint = receiver.url("/wp/bad");
    const offCurve = Buffer.from(good.publicKey);
    offCurve[64] ^= 1;
    for (const keys of [
      { p256dh: offCurve.toString("base64url"), auth: good.authB64 },
      { p256dh: good.publicKey.subarray(0, 33).toString("base64url"), auth: good.authB64 },
      { p256dh: good.p256dh, auth: crypto.randomBytes(8).toString("base64url") },
      { p256dh: good.p256dh },
      { p256dh: "not base64!", auth: good.authB64 },
    ]) {
      const e = await c.request({ op: "push.register", provider: "webpush", endpoint, keys });
      assert.equal(e.op, "error", JSON.stringify(keys));
      assert.ok(["not-acceptable", "bad-request"].includes(e.cond), JSON.stringify(e));
    }
    await c.logout();
  }));

test("the VAPID key file is checked at start", { timeout: 60000 }, guarded(() => env, async () => {
  const bad = path.join(env.dir, "not-a-key.pem");
  fs.writeFileSync(bad, "hello\n");
  const g = await env.startGateway({ push_vapid_key_file: bad, push_vapid_subject: SUBJECT })
    .catch((err) => err);
  const exited = await waitUntil(() => env.gateways.at(-1).child.exited, { timeoutMs: 10000 });
  assert.equal(exited.code, 1, `mxgw must refuse to start: ${g}`);
  assert.match(env.gateways.at(-1).log(), /event=start\.failed what=push detail=".*not a readable P-256/);
}));
