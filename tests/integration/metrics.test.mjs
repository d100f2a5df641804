// /metrics, /healthz and /readyz on a live gateway: promtool (Debian's prometheus package)
// accepts the exposition, the series named in the README exist, and the counters move as
// traffic flows (REST requests by route and status, stanzas and bytes by transport, sessions by
// transport and state, store round trips); /readyz turns 503 with its reasons when Redis stops.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  Env, USERS, COMPONENT, guarded, componentOptions, createApiKey, restCall, httpRequest,
  waitUntil, parseMetrics,
} from "./lib/env.mjs";
import { JsonClient } from "./lib/json-client.mjs";

let env;
let gw;
let key;

before(async () => {
  env = await Env.start();
  gw = await env.startGateway({ ...componentOptions(env), ready_probe_interval: "1s" });
  key = createApiKey(gw, { jids: [`orders@${COMPONENT.domain}`], ops: ["*"] });
}, { timeout: 90000 });

after(async () => {
  await env?.stop();
}, { timeout: 60000 });

async function scrape() {
  const r = await httpRequest(gw, "GET", "/metrics");
  assert.equal(r.status, 200);
  assert.match(r.headers["content-type"], /^text\/plain; version=0\.0\.4/);
  return r.text;
}

test("promtool accepts /metrics and the counters move with traffic", { timeout: 90000 }, guarded(() => env, async () => {
  // The loop-lag timer has run at least once.
  await waitUntil(async () => parseMetrics(await scrape()).mxgw_loop_lag_seconds_count > 0,
    { timeoutMs: 10000, what: "a loop-lag sample" });
  const health = await httpRequest(gw, "GET", "/healthz");
  assert.equal(health.status, 200);
  await waitUntil(async () => (await httpRequest(gw, "GET", "/readyz")).status === 200,
    { timeoutMs: 20000, what: "ready" });
  const before = parseMetrics(await scrape());

  const c = await JsonClient.connect(gw.wsUrl);
  await c.login("alice", USERS.alice, "m");
  c.send({ t: "p" });
  for (let i = 0; i < 3; i++) {
    const r = await restCall(gw, "POST", "/api/v1/messages", { key: key.token, body: { to: "alice@localhost/m", b: `m${i}` } });
    assert.equal(r.status, 202, r.text);
    await c.next((o) => o.b === `m${i}`, `message ${i}`);
  }
  assert.equal((await restCall(gw, "POST", "/api/v1/messages", { body: {} })).status, 401);

  const text = await scrape();
  const res = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" });
  assert.equal(res.status, 0, `promtool: ${res.stdout}${res.stderr}`);
  const after = parseMetrics(text);
  const delta = (name) => (after[name] ?? NaN) - (before[name] ?? 0);
  assert.equal(delta('mxgw_rest_requests_total{route="messages",code="202"}'), 3);
  assert.equal(delta('mxgw_rest_requests_total{route="messages",code="401"}'), 1);
  assert.ok(delta('mxgw_upstream_stanzas_total{transport="ws-json",direction="received"}') >= 3);
  assert.ok(delta('mxgw_upstream_stanzas_total{transport="ws-json",direction="sent"}') >= 1);
  assert.ok(delta('mxgw_client_messages_total{transport="ws-json",direction="out"}') >= 4);
  assert.ok(delta('mxgw_client_bytes_total{transport="ws-json",direction="in"}') > 0);
  assert.equal(after['mxgw_sessions{transport="ws-json",state="bound"}'], 1);
  assert.ok(delta("mxgw_store_command_seconds_count") > 0);
  assert.equal(after.mxgw_component_up, 1);
  assert.equal(after.mxgw_upstream_connections, 1);
  assert.ok(after.mxgw_loop_lag_seconds_count > 0);
  assert.ok(delta('mxgw_component_stanzas_total{direction="out"}') >= 3);
  assert.ok(delta('mxgw_logins_total{transport="ws-json",result="ok"}') >= 1, "the JSON login counted");
  for (const name of ['mxgw_logins_total{transport="bosh",result="failed"}', 'mxgw_resumes_total{result="resumed"}',
    'mxgw_store_errors_total{error="timeout"}', 'mxgw_http_bytes_total{route="bosh",direction="in"}',
    'mxgw_queue_bytes{queue="ws"}', 'mxgw_queue_bytes{queue="upstream"}', "mxgw_ready"]) {
    assert.ok(name in after, `${name} missing`);
  }
  c.close();
}));

test("/readyz says 503 with a reason while Redis is down", { timeout: 90000 }, guarded(() => env, async () => {
  await env.redis.stop();
  await waitUntil(async () => (await httpRequest(gw, "GET", "/readyz")).status === 503,
    { timeoutMs: 30000, what: "not ready" });
  const r = await httpRequest(gw, "GET", "/readyz");
  assert.equal(r.json.ready, false);
  assert.ok(r.json.reasons.includes("store unavailable"), r.text);
  // API keys cannot be checked: fail closed (the key was never used on this node: no cache).
  const k = await restCall(gw, "GET", "/api/v1/sessions?jid=alice%40localhost", { key: key.token.replace(/.{4}$/, "abcd") });
  assert.equal(k.status, 503, k.text);
  assert.ok(Number(k.headers["retry-after"]) >= 1);
  // A key verified before the outage is still served from the cache (rest_key_cache), with
  // the stricter local rate limit; the store is down, so the lookup itself answers 503.
  const cached = await restCall(gw, "GET", "/api/v1/sessions?jid=alice%40localhost", { key: key.token });
  assert.equal(cached.status, 503, cached.text);
  assert.equal(cached.json.type, "urn:mxgw:problem:store-unavailable");
  assert.match(gw.log(), /event=rest\.key_cached/);
  const m = parseMetrics(await scrape());
  assert.equal(m.mxgw_ready, 0);
  assert.ok(m['mxgw_store_errors_total{error="unavailable"}'] > 0);
}));
