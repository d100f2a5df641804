// Sessions across nodes: two mxgw processes share one Redis; a session lookup through either
// node sees the user's sessions on both (transport, state, node), and DELETE ends a session on
// the node that was asked and on the other node (over the node bus), after which the client's
// connection is closed and the records are gone. A kick of an unknown session is 404.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import {
  Env, USERS, COMPONENT, guarded, componentOptions, createApiKey, restCall, waitUntil,
} from "./lib/env.mjs";
import { JsonClient } from "./lib/json-client.mjs";

let env;
let gw1;
let gw2;
let key;

before(async () => {
  env = await Env.start();
  gw1 = await env.startGateway(componentOptions(env));
  gw2 = await env.startGateway(); // no component link: sessions and kicks need none
  key = createApiKey(gw1, { jids: [`ops@${COMPONENT.domain}`], ops: ["sessions.read", "sessions.kick"] });
}, { timeout: 90000 });

after(async () => {
  await env?.stop();
}, { timeout: 60000 });

async function sessionsOf(gw, jid) {
  const r = await restCall(gw, "GET", `/api/v1/sessions?jid=${encodeURIComponent(jid)}`, { key: key.token });
  assert.equal(r.status, 200, r.text);
  return r.json.sessions;
}

test("A lookup sees sessions of both nodes; kicks end them here and there", { timeout: 90000 }, guarded(() => env, async () => {
  const a = await JsonClient.connect(gw1.wsUrl);
  const b = await JsonClient.connect(gw2.wsUrl);
  await a.login("alice", USERS.alice, "one");
  await b.login("alice", USERS.alice, "two");
  let list;
  await waitUntil(async () => (list = await sessionsOf(gw2, "alice@localhost")).length === 2,
    { timeoutMs: 10000, what: "two sessions" });
  const nodes = list.map((s) => s.node).sort();
  assert.deepEqual(nodes, [gw1.nodeId, gw2.nodeId].sort());
  for (const s of list) {
    assert.equal(s.transport, "ws-json");
    assert.equal(s.state, "bound");
    assert.match(s.id, /^[0-9a-f]{32}$/);
  }
  const on1 = list.find((s) => s.node === gw1.nodeId);
  const on2 = list.find((s) => s.node === gw2.nodeId);
  // Case and a resource in the query do not matter.
  assert.equal((await sessionsOf(gw1, "Alice@LOCALHOST/whatever")).length, 2);

  // Asked on node 1, the session on node 2 ends (over the node bus).
  let r = await restCall(gw1, "DELETE", `/api/v1/sessions/${on2.id}`, { key: key.token });
  assert.equal(r.status, 204, r.text);
  await b.closed;
  assert.match(gw1.log(), /event=rest\.kick_remote/);
  assert.match(gw2.log(), new RegExp(`event=session\\.kick session=${on2.id}`));
  // Asked on node 1, its own session ends.
  r = await restCall(gw1, "DELETE", `/api/v1/sessions/${on1.id}`, { key: key.token });
  assert.equal(r.status, 204, r.text);
  await a.closed;
  await waitUntil(async () => (await sessionsOf(gw1, "alice@localhost")).length === 0,
    { timeoutMs: 10000, what: "no sessions left" });
  r = await restCall(gw1, "DELETE", `/api/v1/sessions/${on1.id}`, { key: key.token });
  assert.equal(r.status, 404, r.text);
  assert.equal(r.json.type, "urn:mxgw:problem:session-not-found");
  r = await restCall(gw2, "DELETE", "/api/v1/sessions/not-an-id", { key: key.token });
  assert.equal(r.status, 404, r.text);
}));
