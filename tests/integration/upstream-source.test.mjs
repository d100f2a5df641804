// upstream_source: upstream connections bind to the configured local addresses, in turn, so a
// gateway can hold more than the ~28k connections one source address gets to one server port
// (the benchmark relies on it). A fake upstream records the address each connection came from;
// a real session through Prosody proves a bound connection still carries a working stream.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Env, USERS, RawWs, guarded, openFrame, waitUntil, exchangeMessages } from "./lib/env.mjs";

let env;

before(async () => {
  env = await Env.start();
}, { timeout: 60000 });

after(async () => {
  await env?.stop();
}, { timeout: 60000 });

test("upstream connections bind to the upstream_source addresses in turn", { timeout: 30000 },
  guarded(() => env, async () => {
    const fake = await env.startFakeUpstream();
    const gw = await env.startGateway({
      upstream: `127.0.0.1:${fake.port}`,
      upstream_tls: "off",
      upstream_source: "127.0.0.7, 127.0.0.8",
    });
    const seen = [];
    const clients = [];
    for (let i = 0; i < 3; i++) {
      const { conn } = fake.expect(async (c) => c.closed);
      const c = await RawWs.connect(gw.wsUrl);
      clients.push(c);
      c.send(openFrame());
      const up = await conn;
      seen.push(up.socket.remoteAddress);
    }
    assert.deepEqual(seen, ["127.0.0.7", "127.0.0.8", "127.0.0.7"]);
    for (const c of clients) c.close();
    await waitUntil(() => fake.sockets.size === 0, { timeoutMs: 10000, what: "upstream sockets closed" });
  }));

test("a session over a bound upstream connection works end to end", { timeout: 30000 },
  guarded(() => env, async () => {
    const gw = await env.startGateway({ upstream_source: "127.0.0.9" });
    const alice = await env.login({ service: gw.wsUrl, username: "alice", password: USERS.alice });
    const bob = await env.login({ service: env.prosody.tcpService, username: "bob", password: USERS.bob });
    await exchangeMessages(alice, bob, "bound");
  }));

test("a bad upstream_source stops mxgw with a clear error", { timeout: 30000 },
  guarded(() => env, async () => {
    await assert.rejects(env.startGateway({ upstream_source: "127.0.0.1,not-an-address" }),
      /upstream_source/);
  }));
