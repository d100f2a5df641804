// /metrics, /healthz and /readyz on a live gateway: promtool (Debian's prometheus package)
// accepts the exposition, the series named in the README exist, and the counters move as
// traffic flows (REST requests by route and status, stanzas and bytes by transport, sessions by
// transport and state, store round trips); /readyz turns 503 with its reasons when Redis stops.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  Env, USERS, COMPONENT, guarded, componentOptions, createApiKey, restCall, httpRequest,
  waitUntil, parseMetrics, exchangeMessages, xml,
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

// mxgw_forward_seconds{transport,direction}: the time from reading a message to handing what it
// caused to the kernel. A client's stanza is observed once it is written to the server, so by
// the time the other side has it, it has been counted.
test("mxgw_forward_seconds times each forwarded stanza and frame, by transport and direction",
  { timeout: 90000 }, guarded(() => env, async () => {
    const bob = await env.login({ service: gw.wsUrl, username: "bob", password: USERS.bob });
    const carol = await env.login({ service: gw.wsUrl, username: "carol", password: USERS.carol });
    const alice = await JsonClient.connect(gw.wsUrl);
    await alice.login("alice", USERS.alice, "f");
    const before = parseMetrics(await scrape());

    const N = 5;
    for (let i = 0; i < N; i++) await exchangeMessages(bob, carol, `fwd${i}`);
    alice.send({ t: "m", to: bob.jid.toString(), b: "json to rfc 7395" });
    await bob.waitFor((s) => s.is("message") && s.getChildText("body") === "json to rfc 7395",
      { what: "alice's JSON message" });
    await bob.send(xml("message", { to: "alice@localhost/f", type: "chat" }, xml("body", {}, "back")));
    await alice.next((o) => o.b === "back", "bob's message over JSON");

    const after = parseMetrics(await scrape());
    const series = (t, d, part, le) =>
      `mxgw_forward_seconds_${part}{transport="${t}",direction="${d}"${le ? `,le="${le}"` : ""}}`;
    const delta = (name) => (after[name] ?? NaN) - (before[name] ?? 0);
    // The RFC 7395 clients sent 2N messages and nothing else that is a stanza (their stream
    // management elements are not). What they received includes Prosody's <r/> as well.
    assert.equal(delta(series("ws-xmpp", "to_server", "count")), 2 * N + 1,
      "each stanza from an RFC 7395 client is timed once (2N messages and bob's reply)");
    assert.ok(delta(series("ws-xmpp", "to_client", "count")) >= 2 * N + 1, "deliveries timed");
    assert.ok(delta(series("ws-json", "to_server", "count")) >= 1, "alice's message timed");
    assert.ok(delta(series("ws-json", "to_client", "count")) >= 1, "bob's reply to alice timed");
    for (const [t, d] of [["ws-xmpp", "to_server"], ["ws-xmpp", "to_client"], ["ws-json", "to_server"],
      ["ws-json", "to_client"]]) {
      const n = after[series(t, d, "count")];
      assert.equal(after[series(t, d, "bucket", "+Inf")], n, `${t} ${d}: +Inf holds every observation`);
      const mean = after[series(t, d, "sum")] / n;
      // Times from the read, not from some other origin: a mean of a second would mean that
      // the clock or the origin is wrong (these are loopback hops on an idle gateway).
      assert.ok(mean > 0 && mean < 1, `${t} ${d}: mean forwarding time ${mean} s`);
      let last = 0;
      for (const le of ["1e-05", "0.001", "0.002", "1", "+Inf"]) {
        const v = after[series(t, d, "bucket", le)];
        assert.ok(v >= last, `${t} ${d}: buckets are cumulative (le=${le})`);
        last = v;
      }
    }
    alice.close();
    await bob.stop();
    await carol.stop();
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
