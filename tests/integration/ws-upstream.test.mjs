// Upstream faults and graceful shutdown. mxgw is pointed at a fake upstream (lib/env.mjs
// FakeUpstream) that pipes every connection to the real Prosody unless a test queued a
// misbehaving scenario for the next one; so one upstream stream can fail while a bystander
// session (alice through mxgw, bob direct to Prosody) keeps exchanging messages.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import {
  Env, USERS, NS, RawWs, guarded, exchangeMessages, expectStreamError, streamErrorCondition,
  waitUntil, withTimeout, freePort, streamHeader, FEATURES_STARTTLS, FEATURES_SASL_PLAIN,
  openFrame,
} from "./lib/env.mjs";

let env;
let fake; // switchboard in front of Prosody
let gw; // mxgw whose upstream is the switchboard
let alice;
let bob;

async function gateway() {
  if (!gw || !gw.running) {
    gw = await env.startGateway({ upstream: `127.0.0.1:${fake.port}` });
    alice = null;
  }
  if (!alice || alice.xmpp.status !== "online") {
    alice = await env.login({ service: gw.wsUrl, username: "alice", password: USERS.alice });
  }
}

async function checkBystander() {
  assert.ok(gw.running, "mxgw is still running");
  await exchangeMessages(alice, bob, "bystander");
}

before(async () => {
  env = await Env.start();
  fake = await env.startFakeUpstream({ proxyTo: env.prosody.c2sPort });
  bob = await env.login({ service: env.prosody.tcpService, username: "bob", password: USERS.bob });
  await gateway();
}, { timeout: 60000 });

after(async () => {
  await env?.stop();
}, { timeout: 60000 });

function upstreamTest(name, fn) {
  test(name, { timeout: 30000 }, guarded(() => env, async () => {
    await gateway();
    await fn();
    await checkBystander();
  }));
}

/** Opens a client stream whose upstream connection gets `scenario`; returns { c, up }. */
async function clientWithScenario(scenario) {
  const up = fake.expect(scenario);
  const c = await RawWs.connect(gw.wsUrl);
  c.send(openFrame());
  return { c, up };
}

test("an upstream that refuses the TCP connection gives remote-connection-failed", { timeout: 30000 },
  guarded(() => env, async () => {
    const closedPort = await freePort(); // nothing listens there
    const lonely = await env.startGateway({ upstream: `127.0.0.1:${closedPort}` });
    for (let i = 0; i < 2; i++) {
      const c = await RawWs.connect(lonely.wsUrl);
      try {
        c.send(openFrame());
        await expectStreamError(c, "remote-connection-failed");
      } finally {
        c.close();
      }
    }
    assert.ok(lonely.running, "mxgw keeps running after failed upstream connections");
    const r = await lonely.stop();
    assert.equal(r.code, 0, `exit status after SIGTERM: ${JSON.stringify(r)}`);
  }));

upstreamTest("a certificate for the wrong name gives remote-connection-failed", async () => {
  const { c, up } = await clientWithScenario(async (conn) => {
    await conn.openStream(FEATURES_STARTTLS);
    return conn.startTls(env.certs.wrongName);
  });
  try {
    await expectStreamError(c, "remote-connection-failed");
    const r = await withTimeout(up.done, 10000, "the fake upstream's TLS handshake to end");
    assert.notEqual(r.value, "secure", "mxgw must not complete a handshake with a wrong-name cert");
    assert.doesNotMatch(r.conn.received, /<auth/, "nothing was authenticated over that stream");
  } finally {
    c.close();
  }
});

upstreamTest("a certificate from an untrusted CA gives remote-connection-failed", async () => {
  const { c, up } = await clientWithScenario(async (conn) => {
    await conn.openStream(FEATURES_STARTTLS);
    return conn.startTls(env.certs.rogue);
  });
  try {
    await expectStreamError(c, "remote-connection-failed");
    const r = await withTimeout(up.done, 10000, "the fake upstream's TLS handshake to end");
    assert.notEqual(r.value, "secure", "mxgw must not complete a handshake with an untrusted cert");
  } finally {
    c.close();
  }
});

upstreamTest("an upstream that does not offer STARTTLS (upstream_tls = required) gives remote-connection-failed",
  async () => {
    const { c, up } = await clientWithScenario(async (conn) => {
      await conn.openStream(FEATURES_SASL_PLAIN);
      await withTimeout(conn.closed, 10000, "mxgw to close the plaintext upstream stream");
      return conn.received;
    });
    try {
      await expectStreamError(c, "remote-connection-failed");
      const r = await withTimeout(up.done, 15000, "the fake upstream connection to end");
      assert.ok(r.ok, `fake upstream: ${r.error?.message}`);
      assert.doesNotMatch(r.value, /<auth|<iq|<message|<presence/,
        "nothing but the stream header may be sent in plaintext");
    } finally {
      c.close();
    }
  });

upstreamTest("garbage XML from the upstream gives undefined-condition", async () => {
  const { c, up } = await clientWithScenario(async (conn) => {
    await conn.openStream(FEATURES_STARTTLS);
    assert.equal(await conn.startTls(env.certs.localhost), "secure");
    await conn.openStream(FEATURES_SASL_PLAIN);
    conn.write("<message from='x'><<<this is not XML>>></message>");
    await withTimeout(conn.closed, 10000, "mxgw to close the broken upstream stream");
  });
  try {
    await expectStreamError(c, "undefined-condition");
    const r = await withTimeout(up.done, 15000, "the fake upstream connection to end");
    assert.ok(r.ok, `fake upstream: ${r.error?.message}`);
  } finally {
    c.close();
  }
});

upstreamTest("the upstream's own stream error is relayed to the client", async () => {
  const text = "fake upstream says: replaced by a new connection";
  const { c, up } = await clientWithScenario(async (conn) => {
    await conn.openStream(FEATURES_STARTTLS);
    assert.equal(await conn.startTls(env.certs.localhost), "secure");
    await conn.openStream(FEATURES_SASL_PLAIN);
    conn.write(`<stream:error><conflict xmlns='${NS.streams}'/><text xmlns='${NS.streams}'>${text}</text>` +
      `</stream:error></stream:stream>`);
    await withTimeout(conn.closed, 10000, "the upstream connection to close");
  });
  try {
    const { error } = await expectStreamError(c, "conflict");
    assert.equal(error.getChildText("text", NS.streams), text, "the upstream's <text/> is relayed too");
    await withTimeout(up.done, 15000, "the fake upstream connection to end");
  } finally {
    c.close();
  }
});

upstreamTest("Prosody's host-unknown for a domain it does not serve is relayed", async () => {
  const c = await RawWs.connect(gw.wsUrl);
  try {
    c.send(openFrame("no-such-domain.example"));
    await expectStreamError(c, "host-unknown");
  } finally {
    c.close();
  }
});

upstreamTest("a server that stops reading gets every stanza, whole and in order, once it reads " +
  "again (TLS)", async () => {
  // Once the server's socket is full, mbedTLS holds the record it could not send, and mxgw's
  // queue grows behind it (past half its cap mxgw stops reading the client). The record must be
  // finished before anything else is written, and nothing may be lost or repeated.
  const N = 3000;
  const pad = (i) => "p".repeat(2000 + (i * 37) % 1500);
  const sent = (i) => `<message xmlns='jabber:client' to='bob@localhost' type='chat' id='s${i}'>` +
    `<body>${i} ${pad(i)}</body></message>`;
  let stopped;
  const readingStopped = new Promise((resolve) => {
    stopped = resolve;
  });
  let resume;
  const resumed = new Promise((resolve) => {
    resume = resolve;
  });
  const up = fake.expect(async (conn) => {
    await conn.acceptLogin(env.certs.localhost, "dave@localhost/fake");
    conn.socket.pause(); // TLS socket: Node stops reading the TCP socket under it
    stopped();
    await resumed;
    conn.socket.resume();
    await waitUntil(() => conn.received.includes(`id='s${N - 1}'`),
      { timeoutMs: 30000, what: "the last stanza at the fake upstream" });
    return conn.received;
  });
  const c = await RawWs.connect(gw.wsUrl);
  try {
    assert.equal(await c.login("dave", "any"), "dave@localhost/fake");
    await readingStopped;
    for (let i = 0; i < N; i++) c.send(sent(i));
    // The socket is full and mxgw's queue past half its cap (1 MiB by default).
    await waitUntil(async () => (await gw.queuedBytes("upstream")) > 512 * 1024,
      { timeoutMs: 30000, what: "mxgw's upstream queue to fill" });
    resume();
    const r = await withTimeout(up.done, 40000, "the fake upstream to read everything");
    assert.ok(r.ok, `fake upstream: ${r.error?.message}`);
    const got = [...r.value.matchAll(/<message\b[^>]*\bid=["']s(\d+)["'][^>]*>(.*?)<\/message>/gs)];
    assert.equal(got.length, N, "each stanza once");
    got.forEach((m, i) => {
      assert.equal(Number(m[1]), i, "in order");
      assert.equal(m[2], `<body>${i} ${pad(i)}</body>`, `stanza s${i} whole`);
    });
  } finally {
    c.close();
  }
});

test("SIGTERM: every client gets system-shutdown, <close/> and WebSocket close 1001; upstream gets </stream:stream>; exit 0",
  { timeout: 30000 }, guarded(() => env, async () => {
    const sw = await env.startFakeUpstream({ proxyTo: env.prosody.c2sPort });
    const dying = await env.startGateway({ upstream: `127.0.0.1:${sw.port}`, shutdown_timeout: "5s" });
    const clients = [];
    try {
      // 1: logged in to Prosody through mxgw.
      const viaProsody = await RawWs.connect(dying.wsUrl);
      clients.push(viaProsody);
      await viaProsody.login("alice", USERS.alice);
      // 2: logged in to a fake upstream that records what mxgw sends it.
      const up = sw.expect(async (conn) => {
        await conn.acceptLogin(env.certs.localhost, "dave@localhost/fake");
        await conn.read(/<\/stream:stream>/, 25000);
        return "got </stream:stream>";
      });
      const viaFake = await RawWs.connect(dying.wsUrl);
      clients.push(viaFake);
      assert.equal(await viaFake.login("dave", "any"), "dave@localhost/fake");
      // 3: not authenticated yet.
      const preauth = await RawWs.connect(dying.wsUrl);
      clients.push(preauth);
      await preauth.openStream();
      // And an @xmpp/client user, to see a real library handle it.
      const lib = await env.login({ service: dying.wsUrl, username: "alice", password: USERS.alice });
      const libClosed = new Promise((resolve) => lib.xmpp.on("disconnect", resolve));

      const closesBefore = (env.prosody.log().match(/Received <\/stream:stream>/g) || []).length;
      dying.child.signal("SIGTERM");

      for (const c of clients) {
        const { error } = await expectStreamError(c, "system-shutdown", { closeCode: 1001 });
        assert.equal(streamErrorCondition(error), "system-shutdown");
      }
      await withTimeout(libClosed, 10000, "@xmpp/client to see the disconnect");

      const r = await withTimeout(up.done, 10000, "the fake upstream to receive </stream:stream>");
      assert.ok(r.ok, `fake upstream: ${r.error?.message}`);
      assert.equal(r.value, "got </stream:stream>");
      // viaProsody, preauth and lib have upstream streams to Prosody: each must be closed with
      // </stream:stream> rather than dropped.
      await waitUntil(() => (env.prosody.log().match(/Received <\/stream:stream>/g) || []).length >= closesBefore + 3,
        { timeoutMs: 10000, what: "Prosody to receive </stream:stream> on the three streams" });

      const exit = await dying.child.waitExit(10000);
      assert.ok(exit, "mxgw exits after SIGTERM within shutdown_timeout");
      assert.deepEqual({ code: exit.code, signal: exit.signal }, { code: 0, signal: null },
        "mxgw exits with status 0");

      // The other gateway and its session are untouched.
      await gateway();
      await checkBystander();
    } finally {
      for (const c of clients) c.close();
    }
  }));

test("an upstream that accepts the connection but never speaks gives remote-connection-failed",
  { timeout: 30000 }, guarded(() => env, async () => {
    const quick = await env.startGateway({ upstream: `127.0.0.1:${fake.port}`,
      upstream_connect_timeout: "1s" });
    const silent = fake.expect((conn) => conn.closed); // reads, never answers
    const c = await RawWs.connect(quick.wsUrl);
    try {
      const started = Date.now();
      c.send(openFrame());
      await expectStreamError(c, "remote-connection-failed");
      assert.ok(Date.now() - started < 10000, "the negotiation deadline ends the wait");
      const { ok } = await withTimeout(silent.done, 5000, "mxgw closing the silent upstream");
      assert.ok(ok, "the silent upstream's connection was closed by mxgw");
    } finally {
      c.close();
    }
    assert.ok(quick.running, "mxgw keeps running");
  }));
