// Sends from any node: two mxgw processes share one Redis and are configured as the same
// component; Prosody lets one hold the link, the other waits as a standby. A backend calling
// the standby gets its message delivered, an iq's answer back and a room joined, all through
// the node that holds the link (the holder advertises itself in the store); refusals made by
// the holder come back unchanged; a node configured with the component's domain but no link of
// its own (component = off) forwards every send. When the holder stops (SIGTERM), and later when the next
// holder is killed (kill -9, its record left behind), a standby takes the link over on demand
// and sends work again; while no node holds it, sends get 503 with Retry-After.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import {
  Env, USERS, MUC_DOMAIN, COMPONENT, guarded, xml, componentOptions, createApiKey, restCall,
  httpRequest, parseMetrics, waitUntil, waitForLog,
} from "./lib/env.mjs";

const MUC_NS = "http://jabber.org/protocol/muc";
const SENDER = `orders@${COMPONENT.domain}`;
const HOLDER_KEY = `mxgw:component:${COMPONENT.domain}`;

let env, gw1, gw2, gw4, key, bob;

before(async () => {
  env = await Env.start();
  gw1 = await env.startGateway(componentOptions(env));
  await waitForLog(gw1, /event=rest\.holder /, { timeoutMs: 30000 });
  gw2 = await env.startGateway(componentOptions(env));
  await waitForLog(gw2, /event=component\.standby/, { timeoutMs: 30000 });
  gw4 = await env.startGateway({ component: "off", component_domain: COMPONENT.domain });
  key = createApiKey(gw1, { jids: [SENDER, `other@${COMPONENT.domain}`], ops: ["messages", "stanzas"] });
  bob = await env.login({ service: env.prosody.tcpService, username: "bob", password: USERS.bob });
  await bob.send(xml("presence"));
}, { timeout: 120000 });

after(async () => {
  await env?.stop();
}, { timeout: 60000 });

const send = (gw, body) => restCall(gw, "POST", "/api/v1/messages", { key: key.token, body });
const component = async (gw) => (await httpRequest(gw, "GET", "/readyz")).json?.component;
const metric = async (gw, name) => parseMetrics((await httpRequest(gw, "GET", "/metrics")).text)[name] ?? 0;

async function delivered(gw, to = "bob@localhost") {
  const text = `via ${gw.nodeId} ${crypto.randomBytes(4).toString("hex")}`;
  const r = await send(gw, { to, b: text, id: `f-${crypto.randomBytes(3).toString("hex")}` });
  assert.equal(r.status, 202, r.text);
  const m = await bob.waitFor((s) => s.is("message") && s.getChildText("body") === text, { what: text });
  assert.equal(m.attrs.from, SENDER);
  return r;
}

test("the standby forwards sends to the holder: messages, iq answers, rooms, refusals", { timeout: 120000 },
  guarded(() => env, async () => {
    assert.equal(await component(gw1), "up");
    assert.equal(await component(gw2), "down");
    const rec = await env.redis.hgetall(HOLDER_KEY);
    assert.equal(rec.node, gw1.nodeId, "the holder advertises itself");
    const ttl = await env.redis.ttl(HOLDER_KEY);
    assert.ok(ttl > 0 && ttl <= 15, `the record has a TTL: ${ttl}`);

    // A message through the standby, with the caller's request id kept end to end.
    const rid = `fwd-${crypto.randomBytes(4).toString("hex")}`;
    const text = `forwarded ${crypto.randomBytes(4).toString("hex")}`;
    const r = await restCall(gw2, "POST", "/api/v1/messages", {
      key: key.token, body: { to: "bob@localhost", b: text, id: "fw-1" }, headers: { "X-Request-Id": rid },
    });
    assert.equal(r.status, 202, r.text);
    assert.deepEqual(r.json, { id: "fw-1", from: SENDER, to: "bob@localhost" });
    assert.equal(r.headers["x-request-id"], rid);
    const m = await bob.waitFor((s) => s.is("message") && s.getChildText("body") === text);
    assert.equal(m.attrs.from, SENDER);
    assert.equal(m.attrs.id, "fw-1");
    assert.match(gw2.log(), new RegExp(`event=rest\\.forward rid=${rid} route=messages node=${gw1.nodeId}`));
    assert.match(gw1.log(), new RegExp(`event=rest\\.forward_served rid=${rid} node=${gw2.nodeId} route=messages status=202`));

    // An iq: the server's answer comes back through the holder, in JSON and XML forms.
    const iq = await restCall(gw2, "POST", "/api/v1/stanzas", {
      key: key.token,
      body: { t: "iq", to: "localhost", type: "get", id: "v1", x: [{ n: "query", ns: "jabber:iq:version" }] },
    });
    assert.equal(iq.status, 200, iq.text);
    assert.equal(iq.json.id, "v1");
    assert.equal(iq.json.type, "result");
    assert.ok(iq.json.stanza.x[0].c.some((c) => c.n === "name" && c.c[0] === "Prosody"), iq.text);
    assert.match(iq.json.xml, /jabber:iq:version.*Prosody/);
    const xmlIq = await restCall(gw2, "POST", "/api/v1/stanzas", {
      key: key.token, headers: { "Content-Type": "application/xml" },
      body: `<iq type='get' to='localhost' from='other@${COMPONENT.domain}' id='d1'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`,
    });
    assert.equal(xmlIq.status, 200, xmlIq.text);
    assert.equal(xmlIq.json.type, "result");
    assert.match(xmlIq.json.xml, /disco#info/);
    const err = await restCall(gw2, "POST", "/api/v1/stanzas", {
      key: key.token, body: { t: "iq", to: "localhost", type: "get", id: "u1", x: [{ n: "query", ns: "urn:example:nothing" }] },
    });
    assert.equal(err.status, 200, err.text);
    assert.equal(err.json.stanza.err.cond, "service-unavailable");

    // A room: joined by the holder, as the sender.
    const room = `fwd-${crypto.randomBytes(4).toString("hex")}@${MUC_DOMAIN}`;
    await bob.send(xml("presence", { to: `${room}/bob` }, xml("x", { xmlns: MUC_NS })));
    await bob.waitFor((s) => s.is("presence") && s.attrs.from === `${room}/bob`, { what: "bob's room presence" });
    await bob.send(xml("iq", { type: "set", to: room, id: "cfg" },
      xml("query", { xmlns: `${MUC_NS}#owner` }, xml("x", { xmlns: "jabber:x:data", type: "submit" }))));
    await bob.waitFor((s) => s.is("iq") && s.attrs.id === "cfg", { what: "the room configuration" });
    const gc = `room notice ${crypto.randomBytes(4).toString("hex")}`;
    const g = await send(gw2, { to: room, type: "groupchat", b: gc });
    assert.equal(g.status, 202, g.text);
    const atBob = await bob.waitFor((s) => s.is("message") && s.getChildText("body") === gc, { what: "the groupchat" });
    assert.equal(atBob.attrs.from, `${room}/orders`);
    assert.match(gw1.log(), new RegExp(`event=rest\\.room_joined room=${room}`));
    assert.doesNotMatch(gw2.log(), /event=rest\.room_join/);

    // The holder's refusal comes back as it made it: a room nobody made.
    const ghost = await send(gw2, { to: `ghost-${crypto.randomBytes(4).toString("hex")}@${MUC_DOMAIN}`, type: "groupchat", b: "?" });
    assert.equal(ghost.status, 404, ghost.text);
    assert.equal(ghost.json.type, "urn:mxgw:problem:room-not-found");
    assert.equal(ghost.json.request_id, ghost.headers["x-request-id"]);
    // The standby's own checks still come first.
    const bad = await send(gw2, { to: "bob@localhost", b: "x", f: `intruder@${COMPONENT.domain}` });
    assert.equal(bad.status, 403, bad.text);

    // A node with no link of its own forwards too.
    assert.equal(await component(gw4), "off");
    await delivered(gw4);
    const ping = await restCall(gw4, "POST", "/api/v1/stanzas", {
      key: key.token, body: { t: "iq", to: "localhost", type: "get", id: "p4", x: [{ n: "ping", ns: "urn:xmpp:ping" }] },
    });
    assert.equal(ping.status, 200, ping.text);
    assert.equal(ping.json.type, "result");

    assert.ok(await metric(gw2, 'mxgw_rest_forwards_total{result="answered"}') >= 6);
    assert.ok(await metric(gw1, "mxgw_rest_forwards_served_total") >= 6);
    assert.equal(await metric(gw2, 'mxgw_rest_stanzas_total{kind="message"}'), 0, "the holder sent them");
  }));

test("the holder stops: the standby takes the link over on demand and sends work again", { timeout: 120000 },
  guarded(() => env, async () => {
    await gw1.stop();
    const t0 = Date.now();
    // Until the standby holds the link, sends get 503 with Retry-After; each such call also
    // tells its link to try now rather than at the end of its backoff.
    const seen = [];
    await waitUntil(async () => {
      const r = await send(gw2, { to: "bob@localhost", b: `probe ${seen.length}` });
      seen.push(r.status);
      if (r.status === 503) {
        assert.equal(r.json.type, "urn:mxgw:problem:component-unavailable", r.text);
        assert.ok(Number(r.headers["retry-after"]) >= 1, r.text);
      } else {
        assert.equal(r.status, 202, r.text);
      }
      return r.status === 202;
    }, { timeoutMs: 60000, what: "a send through the new holder" });
    console.log(`# takeover after SIGTERM: ${Date.now() - t0} ms, ${seen.length} calls until the standby held the link (${seen.join(",")})`);
    if (seen.length > 1) assert.match(gw2.log(), /event=component\.retry_soon/, "a 503 asks the link to try now");
    assert.equal(await component(gw2), "up");
    await waitUntil(async () => (await env.redis.hgetall(HOLDER_KEY)).node === gw2.nodeId,
      { timeoutMs: 10000, what: "gw2's holder record" });
    await delivered(gw2);
    const iq = await restCall(gw2, "POST", "/api/v1/stanzas", {
      key: key.token, body: { t: "iq", to: "localhost", type: "get", id: "p1", x: [{ n: "ping", ns: "urn:xmpp:ping" }] },
    });
    assert.equal(iq.status, 200, iq.text);
    assert.equal(iq.json.type, "result");
  }));

test("a holder killed with its record left behind: the stale record is found out, a standby takes over", { timeout: 150000 },
  guarded(() => env, async () => {
    const gw3 = await env.startGateway(componentOptions(env));
    await waitForLog(gw3, /event=component\.standby/, { timeoutMs: 30000 });
    await delivered(gw3); // forwarded to gw2
    gw2.child.signal("SIGKILL");
    await gw2.child.exit;
    assert.equal((await env.redis.hgetall(HOLDER_KEY)).node, gw2.nodeId, "kill -9 leaves the record");
    const t0 = Date.now();
    const seen = [];
    await waitUntil(async () => {
      const r = await send(gw3, { to: "bob@localhost", b: `probe ${seen.length}` });
      seen.push(r.status);
      if (r.status !== 202) assert.equal(r.status, 503, r.text);
      return r.status === 202;
    }, { timeoutMs: 60000, what: "a send through gw3" });
    console.log(`# takeover after kill -9: ${Date.now() - t0} ms, ${seen.length} calls until gw3 held the link (${seen.join(",")})`);
    assert.match(gw3.log(), new RegExp(`event=rest\\.holder_gone node=${gw2.nodeId}`));
    await waitUntil(async () => (await env.redis.hgetall(HOLDER_KEY)).node === gw3.nodeId,
      { timeoutMs: 10000, what: "gw3's holder record" });
    await delivered(gw3);
    // A holder that stops withdraws its record (best effort: the store may close before the
    // delete is written); at worst the record's TTL ends it.
    await gw3.stop();
    await waitUntil(async () => Object.keys(await env.redis.hgetall(HOLDER_KEY)).length === 0,
      { timeoutMs: 20000, what: "the holder record gone" });
  }));
