// The component link going down and coming back: while it is down, send calls get 503 with
// Retry-After (and /readyz still answers 200: the link is reported, not required); the link
// reconnects by itself (backoff with jitter) and sends work again. The link runs through a TCP
// relay that the test cuts and restores on the same port.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import {
  Env, USERS, COMPONENT, guarded, componentOptions, createApiKey, restCall, httpRequest,
  waitUntil, TcpRelay, xml,
} from "./lib/env.mjs";

let env;
let gw;
let key;
let relay;
let bob;

before(async () => {
  env = await Env.start();
  relay = await TcpRelay.start(env.prosody.componentPort);
  gw = await env.startGateway(componentOptions(env, relay.port));
  key = createApiKey(gw, { jids: [`orders@${COMPONENT.domain}`], ops: ["messages", "stanzas"] });
  bob = await env.login({ service: env.prosody.tcpService, username: "bob", password: USERS.bob });
  await bob.send(xml("presence"));
}, { timeout: 90000 });

after(async () => {
  await relay?.down().catch(() => {});
  await env?.stop();
}, { timeout: 60000 });

const linkIs = (state) => async () => (await httpRequest(gw, "GET", "/readyz")).json?.component === state;

test("Link down: 503 with Retry-After; back up: sends work again", { timeout: 120000 }, guarded(() => env, async () => {
  await waitUntil(linkIs("up"), { timeoutMs: 20000, what: "the link up" });
  const ok = await restCall(gw, "POST", "/api/v1/messages", { key: key.token, body: { to: "bob@localhost", b: "before" } });
  assert.equal(ok.status, 202, ok.text);
  await bob.waitFor((s) => s.is("message") && s.getChildText("body") === "before");

  await relay.down();
  await waitUntil(linkIs("down"), { timeoutMs: 20000, what: "the link down" });
  for (const [path, body] of [["/api/v1/messages", { to: "bob@localhost", b: "while down" }],
    ["/api/v1/stanzas", { t: "iq", to: "localhost", type: "get", id: "p", x: [{ n: "ping", ns: "urn:xmpp:ping" }] }]]) {
    const r = await restCall(gw, "POST", path, { key: key.token, body });
    assert.equal(r.status, 503, r.text);
    assert.equal(r.json.type, "urn:mxgw:problem:component-unavailable");
    assert.ok(Number(r.headers["retry-after"]) >= 1, `Retry-After: ${r.headers["retry-after"]}`);
  }
  const ready = await httpRequest(gw, "GET", "/readyz");
  assert.equal(ready.status, 200, ready.text);
  assert.equal(ready.json.component, "down");

  await relay.up();
  await waitUntil(linkIs("up"), { timeoutMs: 60000, what: "the link back up" });
  const text = `after ${crypto.randomBytes(3).toString("hex")}`;
  const again = await restCall(gw, "POST", "/api/v1/messages", { key: key.token, body: { to: "bob@localhost", b: text } });
  assert.equal(again.status, 202, again.text);
  await bob.waitFor((s) => s.is("message") && s.getChildText("body") === text);
  assert.match(gw.log(), /event=component\.down .*retry_ms=\d+/);
}));
