// The REST API's sends against a real Prosody through mxgw's component link: a backend posts a
// message to a user logged in over the JSON protocol and to a user on Prosody directly, both
// get it from the key's sender JID; a groupchat message joins the room as the sender and both
// occupants get it from room/nick; an iq through /stanzas (JSON and XML forms) returns the
// server's answer; ids are kept or made; sessions are listed from the store.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import {
  Env, USERS, MUC_DOMAIN, COMPONENT, guarded, xml, componentOptions, createApiKey, restCall,
  waitUntil, httpRequest,
} from "./lib/env.mjs";
import { JsonClient } from "./lib/json-client.mjs";

const MUC_NS = "http://jabber.org/protocol/muc";
const SENDER = `orders@${COMPONENT.domain}`;

let env;
let gw;
let key;
let bob;
let carol;

before(async () => {
  env = await Env.start();
  gw = await env.startGateway(componentOptions(env));
  key = createApiKey(gw, { jids: [SENDER, `notify-*@${COMPONENT.domain}`], ops: ["messages", "stanzas", "sessions.read"] });
  bob = await env.login({ service: env.prosody.tcpService, username: "bob", password: USERS.bob });
  carol = await JsonClient.connect(gw.wsUrl);
  await carol.login("carol", USERS.carol, "phone");
  // Available, so that messages to the bare JIDs are delivered (RFC 6121 §8.5.2).
  carol.send({ t: "p" });
  await bob.send(xml("presence"));
  // The link is up once a send is accepted.
  await waitUntil(async () => (await httpRequest(gw, "GET", "/readyz")).json?.component === "up",
    { timeoutMs: 20000, what: "the component link" });
}, { timeout: 90000 });

after(async () => {
  carol?.close();
  await env?.stop();
}, { timeout: 60000 });

test("POST /messages reaches a JSON-protocol user and a user on Prosody, from the key's JID",
  { timeout: 60000 }, guarded(() => env, async () => {
    const text1 = `order 1 shipped ${crypto.randomBytes(4).toString("hex")} <&>`;
    const r1 = await restCall(gw, "POST", "/api/v1/messages", { key: key.token, body: { to: "carol@localhost", b: text1, id: "ord-1" } });
    assert.equal(r1.status, 202, r1.text);
    assert.equal(r1.json.id, "ord-1");
    assert.equal(r1.json.from, SENDER);
    assert.match(r1.headers["x-request-id"], /^[0-9a-f]{32}$/);
    const got = await carol.next((o) => o.b === text1, "the REST message at carol");
    assert.equal(got.from, SENDER);
    assert.equal(got.id, "ord-1");

    // To bob on Prosody, from a wildcard-scoped sender named in "f", with a thread and subject;
    // no id given: mxgw makes one and says which.
    const text2 = `notice ${crypto.randomBytes(4).toString("hex")}`;
    const r2 = await restCall(gw, "POST", "/api/v1/messages", {
      key: key.token,
      body: { f: `notify-billing@${COMPONENT.domain}`, to: "bob@localhost", type: "normal", s: "Billing", th: "t-42", b: text2 },
      headers: { "X-Request-Id": "backend-req-7" },
    });
    assert.equal(r2.status, 202, r2.text);
    assert.equal(r2.headers["x-request-id"], "backend-req-7");
    assert.match(r2.json.id, /^[0-9a-f]{32}$/);
    const atBob = await bob.waitFor((s) => s.is("message") && s.getChildText("body") === text2);
    assert.equal(atBob.attrs.from, `notify-billing@${COMPONENT.domain}`);
    assert.equal(atBob.attrs.id, r2.json.id);
    assert.equal(atBob.attrs.type, "normal");
    assert.equal(atBob.getChildText("subject"), "Billing");
    assert.equal(atBob.getChildText("thread"), "t-42");

    // Extra elements in the element form travel too.
    const r3 = await restCall(gw, "POST", "/api/v1/messages", {
      key: key.token,
      body: { to: "bob@localhost", b: "with extra", x: [{ n: "order", ns: "urn:example:orders", a: { no: "77" } }] },
    });
    assert.equal(r3.status, 202, r3.text);
    const atBob3 = await bob.waitFor((s) => s.is("message") && s.getChildText("body") === "with extra");
    assert.equal(atBob3.getChild("order", "urn:example:orders").attrs.no, "77");
  }));

test("A groupchat message joins the room as the sender; both occupants get it from room/nick",
  { timeout: 90000 }, guarded(() => env, async () => {
    const room = `rest-${crypto.randomBytes(4).toString("hex")}@${MUC_DOMAIN}`;
    // bob (on Prosody) creates the room and makes it an instant room.
    await bob.send(xml("presence", { to: `${room}/bob` }, xml("x", { xmlns: MUC_NS })));
    await bob.waitFor((s) => s.is("presence") && s.attrs.from === `${room}/bob`, { what: "bob's room presence" });
    await bob.send(xml("iq", { type: "set", to: room, id: "cfg" },
      xml("query", { xmlns: `${MUC_NS}#owner` }, xml("x", { xmlns: "jabber:x:data", type: "submit" }))));
    await bob.waitFor((s) => s.is("iq") && s.attrs.id === "cfg", { what: "the room configuration result" });
    // carol (JSON protocol) joins.
    carol.send({ t: "p", to: `${room}/carol`, join: { hist: { maxstanzas: 0 } } });
    await carol.next((o) => o.t === "p" && o.from === `${room}/carol`, "carol's own room presence");

    const text = `room notice ${crypto.randomBytes(4).toString("hex")}`;
    const r = await restCall(gw, "POST", "/api/v1/messages", { key: key.token, body: { to: room, type: "groupchat", b: text } });
    assert.equal(r.status, 202, r.text);
    const atBob = await bob.waitFor((s) => s.is("message") && s.getChildText("body") === text, { what: "the groupchat at bob" });
    assert.equal(atBob.attrs.from, `${room}/orders`);
    assert.equal(atBob.attrs.type, "groupchat");
    const atCarol = await carol.next((o) => o.b === text, "the groupchat at carol");
    assert.equal(atCarol.from, `${room}/orders`);
    // The second message finds the room joined.
    const r2 = await restCall(gw, "POST", "/api/v1/messages", { key: key.token, body: { to: room, type: "groupchat", b: `${text} again` } });
    assert.equal(r2.status, 202, r2.text);
    await bob.waitFor((s) => s.is("message") && s.getChildText("body") === `${text} again`);
    assert.match(gw.log(), /event=rest\.room_joined room=rest-/);

    // A room nobody made is not created by REST: 404, and the room is gone again.
    const ghost = `ghost-${crypto.randomBytes(4).toString("hex")}@${MUC_DOMAIN}`;
    const r3 = await restCall(gw, "POST", "/api/v1/messages", { key: key.token, body: { to: ghost, type: "groupchat", b: "hello?" } });
    assert.equal(r3.status, 404, r3.text);
    assert.equal(r3.json.type, "urn:mxgw:problem:room-not-found");
  }));

test("POST /stanzas: an iq returns the server's answer, in JSON and in XML; other stanzas are sent",
  { timeout: 60000 }, guarded(() => env, async () => {
    const r = await restCall(gw, "POST", "/api/v1/stanzas", {
      key: key.token,
      body: { t: "iq", to: "localhost", type: "get", id: "v1", x: [{ n: "query", ns: "jabber:iq:version" }] },
    });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.id, "v1");
    assert.equal(r.json.type, "result");
    assert.equal(r.json.stanza.t, "iq");
    assert.equal(r.json.stanza.id, "v1");
    const q = r.json.stanza.x[0];
    assert.equal(q.ns, "jabber:iq:version");
    assert.ok(q.c.some((c) => c.n === "name" && c.c[0] === "Prosody"), JSON.stringify(q));
    assert.match(r.json.xml, /^<iq .*jabber:iq:version.*Prosody/);

    // The XML form: disco#info of the server, with from in XML.
    const x = await restCall(gw, "POST", "/api/v1/stanzas", {
      key: key.token,
      headers: { "Content-Type": "application/xml" },
      body: `<iq xmlns='jabber:client' type='get' to='localhost' from='${SENDER}' id='d1'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`,
    });
    assert.equal(x.status, 200, x.text);
    assert.equal(x.json.type, "result");
    assert.match(x.json.xml, /http:\/\/jabber.org\/protocol\/disco#info/);
    assert.match(x.json.xml, /id="d1"|id='d1'/);

    // An iq error from the server is an answer too (200, type error).
    const e = await restCall(gw, "POST", "/api/v1/stanzas", {
      key: key.token,
      body: { t: "iq", to: "localhost", type: "get", id: "u1", x: [{ n: "query", ns: "urn:example:nothing" }] },
    });
    assert.equal(e.status, 200, e.text);
    assert.equal(e.json.type, "error");
    assert.equal(e.json.stanza.err.cond, "service-unavailable");

    // A message in XML form through /stanzas.
    const body = `xml form ${crypto.randomBytes(3).toString("hex")}`;
    const m = await restCall(gw, "POST", "/api/v1/stanzas", {
      key: key.token,
      headers: { "Content-Type": "application/xml; charset=utf-8" },
      body: `<message to='bob@localhost' type='chat'><body>${body}</body></message>`,
    });
    assert.equal(m.status, 202, m.text);
    const atBob = await bob.waitFor((s) => s.is("message") && s.getChildText("body") === body);
    assert.equal(atBob.attrs.from, SENDER);
  }));

test("GET /sessions lists a user's sessions from the store", { timeout: 30000 }, guarded(() => env, async () => {
  const r = await restCall(gw, "GET", "/api/v1/sessions?jid=carol%40localhost", { key: key.token });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.jid, "carol@localhost");
  assert.equal(r.json.sessions.length, 1, r.text);
  const s = r.json.sessions[0];
  assert.equal(s.transport, "ws-json");
  assert.equal(s.state, "bound");
  assert.equal(s.node, gw.nodeId);
  assert.equal(s.jid, "carol@localhost");
  assert.ok(s.since > 0 && s.last_activity >= s.since, r.text);
  const none = await restCall(gw, "GET", "/api/v1/sessions?jid=nobody%40localhost", { key: key.token });
  assert.equal(none.status, 200);
  assert.deepEqual(none.json.sessions, []);
}));
