// The REST API's refusals, each with its documented status and an RFC 9457 problem body:
// missing, malformed, unknown, wrong and revoked keys (one uniform 401 body), scope violations
// (sender and operation), a key in the query string, encoded-path tricks, oversized bodies,
// wrong media types, an Accept that excludes JSON, wrong methods, and per-key rate limits
// (429 with Retry-After). Then mxgw's log is searched for every secret the run used.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import {
  Env, USERS, COMPONENT, guarded, componentOptions, createApiKey, keyCommand, restCall,
  httpRequest, waitUntil,
} from "./lib/env.mjs";
import { JsonClient } from "./lib/json-client.mjs";

const SENDER = `orders@${COMPONENT.domain}`;
const RATE_LIMIT = 40;

let env;
let gw;
let key;
let narrow;
const secretsUsed = [];

before(async () => {
  env = await Env.start();
  gw = await env.startGateway({ ...componentOptions(env), rest_rate_limit: RATE_LIMIT, rest_body_bytes: 4096 });
  key = createApiKey(gw, { jids: [SENDER], ops: ["*"] });
  narrow = createApiKey(gw, { jids: [`notify-*@${COMPONENT.domain}`], ops: ["messages"] });
  secretsUsed.push(key.token, narrow.token, COMPONENT.secret);
  await waitUntil(async () => (await httpRequest(gw, "GET", "/readyz")).json?.component === "up",
    { timeoutMs: 20000, what: "the component link" });
}, { timeout: 90000 });

after(async () => {
  await env?.stop();
}, { timeout: 60000 });

function assertProblem(r, status, slug) {
  assert.equal(r.status, status, `${r.status} ${r.text}`);
  assert.match(r.headers["content-type"], /^application\/problem\+json/);
  assert.equal(r.json.status, status);
  assert.equal(r.json.type, `urn:mxgw:problem:${slug}`, r.text);
  assert.equal(typeof r.json.title, "string");
  assert.equal(r.json.request_id, r.headers["x-request-id"]);
}

const msg = { to: "bob@localhost", b: "hi" };

test("Authentication failures: one 401 body whatever was wrong", { timeout: 60000 }, guarded(() => env, async () => {
  const wrongSecret = key.token.slice(0, -4) + (key.token.endsWith("0000") ? "1111" : "0000");
  const unknownId = `mxgw_${"0123456789abcdef"}_${key.token.slice(-64)}`;
  const revoked = createApiKey(gw, { jids: [SENDER], ops: ["*"], name: "to-revoke" });
  secretsUsed.push(revoked.token, wrongSecret, unknownId);
  // It works before it is revoked.
  const before = await restCall(gw, "POST", "/api/v1/messages", { key: revoked.token, body: msg });
  assert.equal(before.status, 202, before.text);
  const rv = await keyCommand(gw, "revoke", revoked.id);
  assert.equal(rv.code, 0, rv.stderr);
  const list = await keyCommand(gw, "list");
  assert.equal(list.code, 0, list.stderr);
  assert.match(list.stdout, new RegExp(key.id));
  assert.doesNotMatch(list.stdout, new RegExp(revoked.id));
  assert.doesNotMatch(list.stdout, /mxgw_[0-9a-f]{16}_/); // secrets are never listed

  const cases = [
    ["no header", {}],
    ["not Bearer", { headers: { Authorization: `Basic ${Buffer.from("a:b").toString("base64")}` } }],
    ["malformed", { key: "mxgw_nope" }],
    ["unknown id", { key: unknownId }],
    ["wrong secret", { key: wrongSecret }],
    ["revoked", { key: revoked.token }],
  ];
  const bodies = new Set();
  for (const [what, opts] of cases) {
    const r = await restCall(gw, "POST", "/api/v1/messages", { body: msg, ...opts });
    assertProblem(r, 401, "unauthorized");
    assert.match(r.headers["www-authenticate"], /^Bearer/, what);
    const { request_id: _, ...rest } = r.json;
    bodies.add(JSON.stringify(rest));
  }
  assert.equal(bodies.size, 1, `401 bodies differ: ${[...bodies].join(" | ")}`);
}));

test("Scope: a sender outside the key's JIDs, an operation outside its operations", { timeout: 30000 }, guarded(() => env, async () => {
  let r = await restCall(gw, "POST", "/api/v1/messages", { key: key.token, body: { ...msg, f: `admin@${COMPONENT.domain}` } });
  assertProblem(r, 403, "sender-not-allowed");
  r = await restCall(gw, "POST", "/api/v1/messages", { key: key.token, body: { ...msg, f: "bob@localhost" } });
  assertProblem(r, 403, "sender-not-allowed");
  r = await restCall(gw, "POST", "/api/v1/stanzas", {
    key: key.token, headers: { "Content-Type": "application/xml" },
    body: `<message to='bob@localhost' from='boss@${COMPONENT.domain}'><body>x</body></message>`,
  });
  assertProblem(r, 403, "sender-not-allowed");
  // The narrow key: only notify-* senders, only messages; it names no single sender.
  r = await restCall(gw, "POST", "/api/v1/messages", { key: narrow.token, body: msg });
  assertProblem(r, 400, "sender-required");
  r = await restCall(gw, "POST", "/api/v1/messages", { key: narrow.token, body: { ...msg, f: `notify-x@${COMPONENT.domain}` } });
  assert.equal(r.status, 202, r.text);
  r = await restCall(gw, "POST", "/api/v1/messages", { key: narrow.token, body: { ...msg, f: `notify@${COMPONENT.domain}` } });
  assertProblem(r, 403, "sender-not-allowed");
  r = await restCall(gw, "POST", "/api/v1/stanzas", { key: narrow.token, body: { ...msg, f: `notify-x@${COMPONENT.domain}` } });
  assertProblem(r, 403, "operation-not-allowed");
  r = await restCall(gw, "GET", "/api/v1/sessions?jid=bob%40localhost", { key: narrow.token });
  assertProblem(r, 403, "operation-not-allowed");
  r = await restCall(gw, "DELETE", `/api/v1/sessions/${"a".repeat(32)}`, { key: narrow.token });
  assertProblem(r, 403, "operation-not-allowed");
}));

test("A key in the query string is refused and never logged", { timeout: 30000 }, guarded(() => env, async () => {
  for (const q of [`api_key=${key.token}`, `access_token=${key.token}`, `token=${key.token}`, `key=x`]) {
    const r = await restCall(gw, "GET", `/api/v1/sessions?jid=bob%40localhost&${q}`, { key: key.token });
    assertProblem(r, 400, "credentials-in-url");
  }
  const r = await restCall(gw, "GET", `/api/v1/sessions?jid=${key.token}`, {});
  assertProblem(r, 400, "credentials-in-url");
}));

test("Encoded-path tricks are refused before anything else", { timeout: 30000 }, guarded(() => env, async () => {
  const tricks = [
    "/api/v1/%2e%2e/v1/messages", "/api/v1/messages/..", "/api/v1/./messages", "/api/v1//messages",
    "/api/v1/%c0%ae%c0%ae/messages", "/api/v1/%c0%afmessages", "/api/v1/users/alice%2flocalhost/push",
    "/api/v1/%u002e%u002e/messages", "/api/v1/mess%00ages", "/api/v1/messages%5c",
  ];
  for (const p of tricks) {
    const r = await restCall(gw, "POST", p, { key: key.token, body: msg });
    assertProblem(r, 400, "malformed-path");
  }
  // Outside the API's prefix the front end answers in its own (text) form.
  const outside = await httpRequest(gw, "POST", "//api/v1/messages", {});
  assert.equal(outside.status, 400);
  // Unknown resources below the prefix: 404 problem, checked before the key.
  assertProblem(await restCall(gw, "GET", "/api/v1/nothing", {}), 404, "not-found");
  assertProblem(await restCall(gw, "GET", "/api/v1/sessions/x/y", {}), 404, "not-found");
}));

test("Sizes, media types, Accept and methods", { timeout: 30000 }, guarded(() => env, async () => {
  const big = { ...msg, b: "x".repeat(5000) };
  let r = await restCall(gw, "POST", "/api/v1/messages", { key: key.token, body: big });
  assertProblem(r, 413, "body-too-large");
  // Chunked (no Content-Length): still refused at the cap.
  r = await restCall(gw, "POST", "/api/v1/messages", {
    key: key.token, body: JSON.stringify(big), headers: { "Transfer-Encoding": "chunked", "Content-Length": undefined },
  });
  assertProblem(r, 413, "body-too-large");
  for (const ct of ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
    "application/json; charset=latin1"]) {
    r = await restCall(gw, "POST", "/api/v1/messages", { key: key.token, body: JSON.stringify(msg), headers: { "Content-Type": ct } });
    assertProblem(r, 415, "unsupported-media-type");
  }
  // XML is for /stanzas only.
  r = await restCall(gw, "POST", "/api/v1/messages", {
    key: key.token, headers: { "Content-Type": "application/xml" }, body: "<message to='bob@localhost'/>",
  });
  assertProblem(r, 415, "unsupported-media-type");
  r = await restCall(gw, "POST", "/api/v1/messages", { key: key.token, body: msg, headers: { Accept: "text/html" } });
  assertProblem(r, 406, "not-acceptable");
  r = await restCall(gw, "POST", "/api/v1/messages", { key: key.token, body: msg, headers: { Accept: "application/json;q=0, text/html" } });
  assertProblem(r, 406, "not-acceptable");
  r = await restCall(gw, "POST", "/api/v1/messages", { key: key.token, body: msg, headers: { Accept: "text/html, */*;q=0.1" } });
  assert.equal(r.status, 202, r.text);
  for (const [method, path, allow] of [["GET", "/api/v1/messages", "POST"], ["DELETE", "/api/v1/stanzas", "POST"],
    ["POST", "/api/v1/sessions", "GET"], ["GET", `/api/v1/sessions/${"a".repeat(32)}`, "DELETE"],
    ["POST", "/api/v1/users/bob@localhost/push", "PUT"]]) {
    r = await restCall(gw, method, path, { key: key.token, body: method === "POST" ? msg : undefined });
    assertProblem(r, 405, "method-not-allowed");
    assert.match(r.headers.allow, new RegExp(allow));
  }
  // Bad bodies: not JSON, an unknown key, a bad JID, an empty body.
  for (const body of ["{not json", JSON.stringify({ to: "bob@localhost", b: "x", nope: 1 }),
    JSON.stringify({ to: "bob@@localhost", b: "x" }), JSON.stringify({ b: "no to" }), JSON.stringify({ t: "p" })]) {
    r = await restCall(gw, "POST", "/api/v1/messages", { key: key.token, body });
    assertProblem(r, 400, "bad-stanza");
  }
  r = await restCall(gw, "POST", "/api/v1/messages", { key: key.token, body: "" });
  assertProblem(r, 400, "bad-request");
  r = await restCall(gw, "POST", "/api/v1/stanzas", {
    key: key.token, headers: { "Content-Type": "application/xml" },
    body: "<!DOCTYPE x [<!ENTITY a 'b'>]><message to='bob@localhost'><body>&a;</body></message>",
  });
  assertProblem(r, 400, "bad-stanza");
  // Push registrations: a bad body for PUT (push = no, 501, is in rest-push.test.mjs).
  r = await restCall(gw, "PUT", "/api/v1/users/bob@localhost/push", { key: key.token, body: { provider: "webhook", x: 1 } });
  assertProblem(r, 400, "bad-registration");
}));

test("Per-key rate limit: 429 with Retry-After past the limit, other keys unaffected", { timeout: 60000 }, guarded(() => env, async () => {
  const k = createApiKey(gw, { jids: [SENDER], ops: ["sessions.read"] });
  secretsUsed.push(k.token);
  let limited = null;
  for (let i = 0; i < RATE_LIMIT + 5 && !limited; i++) {
    const r = await restCall(gw, "GET", "/api/v1/sessions?jid=bob%40localhost", { key: k.token });
    if (r.status === 429) limited = { r, i };
    else assert.equal(r.status, 200, r.text);
  }
  assert.ok(limited, "no 429 within the limit + 5 requests");
  // The window may roll over during the loop, so the limit may come later, never sooner.
  assert.ok(limited.i >= RATE_LIMIT, `limited after ${limited.i} requests`);
  assertProblem(limited.r, 429, "rate-limited");
  const retry = Number(limited.r.headers["retry-after"]);
  assert.ok(retry >= 1 && retry <= 60, `Retry-After ${limited.r.headers["retry-after"]}`);
  const other = await restCall(gw, "GET", "/api/v1/sessions?jid=bob%40localhost", { key: key.token });
  assert.equal(other.status, 200, other.text);
}));

test("No secret reaches mxgw's log: keys, passwords, message bodies", { timeout: 60000 }, guarded(() => env, async () => {
  // A login and a message body through mxgw, at log_level debug.
  const c = await JsonClient.connect(gw.wsUrl);
  await c.login("carol", USERS.carol, "phone");
  const body = `secret body ${crypto.randomBytes(8).toString("hex")}`;
  const r = await restCall(gw, "POST", "/api/v1/messages", { key: key.token, body: { to: "carol@localhost/phone", b: body } });
  assert.equal(r.status, 202, r.text);
  await c.next((o) => o.b === body, "the message");
  c.close();
  const log = gw.log();
  assert.match(log, /event=rest\.request/); // the log is there and has REST lines
  for (const s of [...secretsUsed, USERS.carol, body, key.token.slice(5 + 17)]) {
    assert.ok(!log.includes(s), `mxgw's log holds a secret (${s.slice(0, 12)}…)`);
  }
}));
