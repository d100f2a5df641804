// BOSH sessions whose upstream misbehaves, and the gateway-session rules applied to BOSH. A fake
// XMPP server (lib/env.mjs FakeUpstream) plays one session's upstream while every other
// connection is passed through to the real Prosody, so the misbehaviour touches one session.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Env, USERS, NS, DOMAIN, guarded, withTimeout, waitUntil, FEATURES_STARTTLS,
  FEATURES_SASL_PLAIN } from "./lib/env.mjs";
import { RawBosh, post, wrapper, payloads, terminalCondition } from "./lib/bosh.mjs";

let env;
let fake;
let gw;

before(async () => {
  env = await Env.start({ redis: false });
  fake = await env.startFakeUpstream({ proxyTo: env.prosody.c2sPort });
  gw = await env.startGateway({ upstream: `127.0.0.1:${fake.port}`, bosh_max_wait: "5s" });
}, { timeout: 60000 });

after(async () => {
  await env?.stop();
}, { timeout: 60000 });

/** A bystander through the same gateway (passed through to Prosody) still logs in. */
async function checkOthers() {
  const raw = new RawBosh(gw.boshUrl);
  await raw.login("alice", USERS.alice);
  await raw.terminate();
}

function upstreamTest(name, fn) {
  test(name, { timeout: 45000 }, guarded(() => env, async () => {
    await fn();
    await checkOthers();
  }));
}

/** Sends an empty request and resolves (with its pending answer) once mxgw holds it. */
async function held(raw, g = gw) {
  const rid = raw.rid;
  const answer = raw.request("");
  await waitUntil(() => g.log().includes(`event=bosh.request rid=${rid} `), { what: `request ${rid} held` });
  return { answer };
}

/** The fake server's side up to SASL features, after STARTTLS with a good certificate. */
async function openSecure(conn) {
  await conn.openStream(FEATURES_STARTTLS);
  assert.equal(await conn.startTls(env.certs.localhost), "secure");
  await conn.openStream(FEATURES_SASL_PLAIN);
}

upstreamTest("the upstream's stream error reaches the client inside remote-stream-error, after " +
  "what was queued", async () => {
  const text = "fake upstream: replaced by a new connection";
  let go;
  const ready = new Promise((resolve) => {
    go = resolve;
  });
  const up = fake.expect(async (conn) => {
    await openSecure(conn);
    await ready;
    conn.write(`<message xmlns='${NS.client}' from='bob@localhost' to='x@localhost'><body>last words</body></message>` +
      `<stream:error><conflict xmlns='${NS.streams}'/><text xmlns='${NS.streams}'>${text}</text>` +
      `</stream:error></stream:stream>`);
    await withTimeout(conn.closed, 10000, "the upstream connection to close");
  });
  const raw = new RawBosh(gw.boshUrl);
  const created = await raw.create();
  assert.ok(payloads(created.el).some((e) => e.is("features", NS.stream)), created.text);
  const { answer } = await held(raw);
  go();
  const r = await answer;
  assert.equal(terminalCondition(r.el), "remote-stream-error", r.text);
  const [msg, err] = payloads(r.el);
  assert.equal(msg?.getChildText("body"), "last words", "the queued stanza comes first");
  assert.ok(err?.is("error", NS.stream), `the upstream's <stream:error/> itself: ${r.text}`);
  assert.ok(err.getChild("conflict", NS.streams));
  assert.equal(err.getChildText("text", NS.streams), text);
  const after = await raw.request("");
  assert.equal(terminalCondition(after.el), "item-not-found", "the session is over");
  await withTimeout(up.done, 15000, "the fake upstream scenario");
});

upstreamTest("garbage XML from the upstream gives remote-stream-error with undefined-condition",
  async () => {
    let go;
    const ready = new Promise((resolve) => {
      go = resolve;
    });
    fake.expect(async (conn) => {
      await openSecure(conn);
      await ready;
      conn.write("<message><<<>");
    });
    const raw = new RawBosh(gw.boshUrl);
    await raw.create();
    const { answer } = await held(raw);
    go();
    const r = await answer;
    assert.equal(terminalCondition(r.el), "remote-stream-error", r.text);
    const err = payloads(r.el).find((e) => e.is("error", NS.stream));
    assert.ok(err?.getChild("undefined-condition", NS.streams), r.text);
  });

upstreamTest("an upstream certificate for the wrong name gives remote-connection-failed", async () => {
  fake.expect(async (conn) => {
    await conn.openStream(FEATURES_STARTTLS);
    return conn.startTls(env.certs.wrongName);
  });
  const r = await post(gw.boshUrl, wrapper({ rid: 50, to: DOMAIN, wait: 5, ver: "1.11" }));
  assert.equal(terminalCondition(r.el), "remote-connection-failed", r.text);
});

upstreamTest("everything the server sends at once leaves in one response", async () => {
  let go;
  const ready = new Promise((resolve) => {
    go = resolve;
  });
  fake.expect(async (conn) => {
    await openSecure(conn);
    await ready;
    let burst = "";
    for (let i = 0; i < 50; i++) {
      burst += `<message xmlns='${NS.client}' from='bob@localhost' to='x@localhost'><body>burst ${i}</body></message>`;
    }
    conn.write(burst);
    await conn.read(/<\/stream:stream>/, 20000).catch(() => {});
  });
  const raw = new RawBosh(gw.boshUrl);
  await raw.create();
  const { answer } = await held(raw);
  go();
  const r = await answer;
  const bodies = payloads(r.el).map((e) => e.getChildText("body"));
  assert.equal(bodies.length, 50, `one response carries all 50: ${r.text.slice(0, 300)}`);
  assert.deepEqual(bodies, Array.from({ length: 50 }, (_, i) => `burst ${i}`), "in order");
  await raw.terminate();
});

test("limit_sessions_per_ip and preauth_timeout apply to BOSH sessions", { timeout: 45000 },
  guarded(() => env, async () => {
    const g = await env.startGateway({ upstream: `127.0.0.1:${env.prosody.c2sPort}`,
      limit_sessions_per_ip: 2, preauth_timeout: "2s", bosh_max_wait: "10s" });
    try {
      const a = new RawBosh(g.boshUrl);
      await a.create();
      const b = new RawBosh(g.boshUrl);
      await b.create();
      const third = await post(g.boshUrl, wrapper({ rid: 7, to: DOMAIN, wait: 5, ver: "1.11" }));
      assert.equal(terminalCondition(third.el), "policy-violation", third.text);
      // Neither authenticates: within preauth_timeout each is told, in XMPP terms.
      const [ra, rb] = await Promise.all([a.request(""), b.request("")]);
      for (const r of [ra, rb]) {
        assert.equal(terminalCondition(r.el), "remote-stream-error", r.text);
        const err = payloads(r.el).find((e) => e.is("error", NS.stream));
        assert.ok(err?.getChild("connection-timeout", NS.streams), r.text);
      }
      // The slots are free again.
      const c = new RawBosh(g.boshUrl);
      await c.login("carol", USERS.carol);
      await c.terminate();
    } finally {
      await g.stop();
    }
  }));
