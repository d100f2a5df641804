// Bad input on the BOSH endpoint (CHECKLIST 1C, C1-C11, and the list): each test sends
// one kind of bad input and checks the XEP's answer (terminal condition, recoverable error,
// HTTP status), that a session the XEP says must end has ended, and that a bystander - alice
// logged in through the same mxgw with Strophe.js - still exchanges messages with bob on
// Prosody. If mxgw died, the next test starts a new one, so one crash fails one test.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { Env, USERS, NS, DOMAIN, xml, guarded, waitUntil } from "./lib/env.mjs";
import {
  StropheUser, RawBosh, post, wrapper, payloads, terminalCondition, NS_HTTPBIND,
} from "./lib/bosh.mjs";

let env;
let gw;
let alice; // bystander (Strophe over gw)
let bob; // on Prosody directly

async function mainGateway() {
  if (!gw || !gw.running) {
    gw = await env.startGateway({ bosh_max_wait: "5s", bosh_max_pause: "30s" });
    alice = null;
  }
  if (!alice || alice.disconnected || !alice.conn.connected) {
    alice = await StropheUser.connect({ url: gw.boshUrl, username: "alice", password: USERS.alice });
  }
  return gw;
}

async function checkBystander() {
  assert.ok(gw.running, "mxgw is still running");
  const toAlice = `bystander ${crypto.randomBytes(4).toString("hex")}`;
  await bob.send(xml("message", { to: alice.jid, type: "chat" }, xml("body", {}, toAlice)));
  await alice.waitForMessage(toAlice);
  const toBob = `bystander back ${crypto.randomBytes(4).toString("hex")}`;
  alice.sendMessage(bob.jid.toString(), toBob);
  await bob.waitFor((s) => s.is("message") && s.getChildText("body") === toBob);
}

before(async () => {
  env = await Env.start({ redis: false });
  bob = await env.login({ service: env.prosody.tcpService, username: "bob", password: USERS.bob });
  await mainGateway();
}, { timeout: 60000 });

after(async () => {
  await alice?.disconnect().catch(() => {});
  await env?.stop();
}, { timeout: 60000 });

function badInputTest(name, fn) {
  test(name, { timeout: 45000 }, guarded(() => env, async () => {
    await mainGateway();
    await fn();
    await checkBystander();
  }));
}

const B = (a, payload) => wrapper(a, payload);

function assertTerminal(r, condition, what = "") {
  assert.equal(r.status, 200, `${what} HTTP status: ${r.status} ${r.text}`);
  assert.equal(r.headers.get("content-type"), "text/xml; charset=utf-8");
  assert.ok(r.el?.is("body", NS_HTTPBIND), `${what} a BOSH wrapper: ${r.text}`);
  assert.equal(terminalCondition(r.el), condition, `${what} terminal condition: ${r.text}`);
}

/** A logged-in raw session (SASL PLAIN, restart, bind) on the main gateway. */
async function session(user = "carol") {
  const raw = new RawBosh(gw.boshUrl);
  await raw.login(user, USERS[user]);
  return raw;
}

/** The session is over: its next request in order finds nothing. */
async function assertEnded(raw) {
  const r = await post(gw.boshUrl, B({ sid: raw.sid, rid: raw.rid }));
  assertTerminal(r, "item-not-found", "after the end:");
}

// ---- the wrapper itself ---------------------------------------------------------------------

for (const [name, text] of [
  ["malformed XML", `<body xmlns="${NS_HTTPBIND}" rid="5" sid="x"><message></body>`],
  ["a truncated wrapper", `<body xmlns="${NS_HTTPBIND}" rid="5"`],
  ["two roots", `<body xmlns="${NS_HTTPBIND}" rid="5"/><body xmlns="${NS_HTTPBIND}" rid="6"/>`],
  ["a DOCTYPE with entities (billion laughs)", `<?xml version="1.0"?><!DOCTYPE body [<!ENTITY a "aaaaaaaaaa">` +
    `<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>` +
    `<body xmlns="${NS_HTTPBIND}" rid="5" to="&c;" wait="60"/>`],
  ["an external entity (XXE)", `<!DOCTYPE body [<!ENTITY x SYSTEM "file:///etc/passwd">]>` +
    `<body xmlns="${NS_HTTPBIND}" rid="5" to="&x;" wait="60"/>`],
  ["a comment", `<body xmlns="${NS_HTTPBIND}" rid="5" to="localhost" wait="60"><!-- hi --></body>`],
  ["a processing instruction", `<body xmlns="${NS_HTTPBIND}" rid="5" to="localhost" wait="60"><?x y?></body>`],
  ["the wrong root element", `<bod xmlns="${NS_HTTPBIND}" rid="5" to="localhost" wait="60"/>`],
  ["the wrong namespace", `<body xmlns="jabber:client" rid="5" to="localhost" wait="60"/>`],
  ["character data in the wrapper", `<body xmlns="${NS_HTTPBIND}" rid="5" to="localhost" wait="60">hello</body>`],
  ["invalid UTF-8", Buffer.concat([Buffer.from(`<body xmlns="${NS_HTTPBIND}" rid="5" to="loc`),
    Buffer.from([0xc0, 0xaf]), Buffer.from(`alhost" wait="60"/>`)])],
]) {
  badInputTest(`a body with ${name} gets bad-request`, async () => {
    const r = await post(gw.boshUrl, text);
    assertTerminal(r, "bad-request");
  });
}

badInputTest("a body nested deeper than limit_xml_depth gets policy-violation", async () => {
  const deep = "<a>".repeat(80) + "</a>".repeat(80);
  const r = await post(gw.boshUrl, B({ rid: 5, to: DOMAIN, wait: 60 }, deep));
  assertTerminal(r, "policy-violation");
});

badInputTest("a stanza larger than limit_stanza_bytes ends the session with policy-violation",
  async () => {
    const raw = await session();
    const big = "x".repeat(300000); // limit_stanza_bytes is 16384 in the tests; the body cap 1 MiB
    const r = await raw.request(`<message xmlns="${NS.client}" to="${bob.jid}"><body>${big}</body></message>`);
    assertTerminal(r, "policy-violation");
    await assertEnded(raw);
  });

badInputTest("an empty POST gets HTTP 400", async () => {
  for (const body of ["", "   \r\n"]) {
    const r = await post(gw.boshUrl, body);
    assert.equal(r.status, 400, `empty POST: ${r.status} ${r.text}`);
    assert.equal(terminalCondition(r.el), "bad-request");
  }
});

badInputTest("GET gets the information page, PUT and DELETE get 405 with Allow", async () => {
  const g = await fetch(gw.boshUrl);
  assert.equal(g.status, 200);
  assert.match(g.headers.get("content-type"), /^text\/html/);
  assert.match(await g.text(), /BOSH/);
  const h = await fetch(gw.boshUrl, { method: "HEAD" });
  assert.equal(h.status, 200);
  for (const method of ["PUT", "DELETE", "PATCH"]) {
    const r = await fetch(gw.boshUrl, { method, body: method === "DELETE" ? undefined : "<x/>" });
    assert.equal(r.status, 405, method);
    assert.equal(r.headers.get("allow"), "GET, HEAD, POST, OPTIONS");
    await r.text();
  }
});

badInputTest("Content-Type is ignored (XEP-0124 §5) and 'content' sets the responses' type",
  async () => {
    for (const type of ["text/plain", "application/x-www-form-urlencoded", "application/json", null]) {
      const headers = type ? { "Content-Type": type } : { "Content-Type": "" };
      const r = await post(gw.boshUrl, B({ rid: 77, to: DOMAIN, wait: 5, ver: "1.11",
        content: "text/html; charset=utf-8" }), { headers });
      assert.equal(r.status, 200, `${type}: ${r.text}`);
      assert.equal(r.headers.get("content-type"), "text/html; charset=utf-8");
      assert.equal(terminalCondition(r.el), undefined, r.text);
      await post(gw.boshUrl, B({ sid: r.el.attrs.sid, rid: 78, type: "terminate" }));
    }
  });

// ---- session creation (C1) ------------------------------------------------------------------

badInputTest("a 'to' the server does not serve gets host-unknown", async () => {
  const r = await post(gw.boshUrl, B({ rid: 10, to: "nosuch.example", wait: 60, ver: "1.11" }));
  assertTerminal(r, "host-unknown");
});

badInputTest("no 'to' gets improper-addressing; a 'to' that is not a domain gets host-unknown",
  async () => {
    assertTerminal(await post(gw.boshUrl, B({ rid: 10, wait: 60 })), "improper-addressing");
    assertTerminal(await post(gw.boshUrl, B({ rid: 10, to: "", wait: 60 })), "improper-addressing");
    assertTerminal(await post(gw.boshUrl, B({ rid: 10, to: "alice@localhost", wait: 60 })),
      "host-unknown");
    assertTerminal(await post(gw.boshUrl, B({ rid: 10, to: "a..b", wait: 60 })), "host-unknown");
  });

badInputTest("a bad 'wait', 'hold' or 'rid' in the creation request gets bad-request", async () => {
  for (const a of [
    { wait: "1.5" }, { wait: "-1" }, { wait: "soon" }, { wait: undefined }, { hold: "one" },
    { rid: "abc" }, { rid: "0" }, { rid: "9007199254740992" }, { rid: "1e6" }, { rid: undefined },
    { ver: "x" },
  ]) {
    const r = await post(gw.boshUrl, B({ rid: 42, to: DOMAIN, wait: 60, ver: "1.11", ...a }));
    assertTerminal(r, "bad-request", JSON.stringify(a));
  }
});

badInputTest("a huge 'wait' is clamped and 'hold' is at most 1, with 'requests' 2", async () => {
  const raw = new RawBosh(gw.boshUrl);
  const r = await raw.create({ wait: "99999999999999999999", hold: "5" });
  assert.equal(r.el.attrs.wait, "5", "clamped to bosh_max_wait");
  assert.equal(r.el.attrs.hold, "1");
  assert.equal(r.el.attrs.requests, "2");
  await raw.terminate();
});

badInputTest("a 'route' that is not allowlisted is ignored", async () => {
  // Were it honoured, mxgw would connect to this dead loopback port and fail.
  const raw = new RawBosh(gw.boshUrl);
  const r = await raw.create({ route: "xmpp:127.0.0.1:1" });
  assert.ok(payloads(r.el).some((e) => e.is("features", NS.stream)), r.text);
  await raw.login("carol", USERS.carol);
  await raw.terminate();
});

test("a 'route' in bosh_route_allowlist is used (and only then)", { timeout: 45000 },
  guarded(() => env, async () => {
    const route = `xmpp:127.0.0.1:${env.prosody.c2sPort}`;
    // This gateway's own upstream is a dead port: only the allowlisted route reaches Prosody.
    const g = await env.startGateway({ upstream: "127.0.0.1:1", bosh_route_allowlist: route });
    try {
      const plain = await post(g.boshUrl, B({ rid: 9, to: DOMAIN, wait: 5, ver: "1.11" }));
      assertTerminal(plain, "remote-connection-failed", "without route:");
      const raw = new RawBosh(g.boshUrl);
      await raw.create({ route });
      await raw.login("carol", USERS.carol);
      await raw.terminate();
    } finally {
      await g.stop();
    }
  }));

// ---- within a session -----------------------------------------------------------------------

badInputTest("an unknown sid gets item-not-found (C6)", async () => {
  for (const sid of ["0".repeat(32), crypto.randomBytes(16).toString("hex"), "x", "' or 1=1"]) {
    assertTerminal(await post(gw.boshUrl, B({ sid, rid: 100 })), "item-not-found", sid);
  }
});

badInputTest("a rid above the window gets item-not-found and ends the session (C2)", async () => {
  const raw = await session();
  const r = await raw.request("", { rid: raw.rid + 5 });
  assertTerminal(r, "item-not-found");
  await assertEnded(raw);
});

badInputTest("a rid below the window gets the same item-not-found (C2)", async () => {
  const raw = await session();
  const r = await raw.request("", { rid: raw.rid - 10 });
  assertTerminal(r, "item-not-found");
  await assertEnded(raw);
});

badInputTest("a bad rid inside a session gets bad-request and ends it", async () => {
  const raw = await session();
  const r = await post(gw.boshUrl, B({ sid: raw.sid, rid: "next" }));
  assertTerminal(r, "bad-request");
});

badInputTest("a request repeated while held: the old one gets a recoverable error, the new one " +
  "its answer (C3)", async () => {
  const raw = await session();
  const rid = raw.rid++;
  const first = raw.request("", { rid });
  await new Promise((resolve) => setTimeout(resolve, 200)); // let the first one be held
  const again = raw.request("", { rid });
  const a = await first;
  assert.equal(a.status, 200);
  assert.equal(a.el.attrs.type, "error", `recoverable error for the replaced request: ${a.text}`);
  const text = `for the held request ${crypto.randomBytes(3).toString("hex")}`;
  await bob.send(xml("message", { to: raw.jid, type: "chat" }, xml("body", {}, text)));
  const b = await again;
  assert.ok(payloads(b.el).some((e) => e.getChildText?.("body") === text), b.text);
  await raw.terminate();
});

badInputTest("a flood of repeated requests gets policy-violation (C3)", async () => {
  const raw = await session();
  const last = raw.rid - 1; // answered, kept: each repeat is a replay
  let r;
  for (let i = 0; i < 12; i++) {
    r = await post(gw.boshUrl, B({ sid: raw.sid, rid: last }));
    if (terminalCondition(r.el) !== undefined) break;
  }
  assertTerminal(r, "policy-violation");
  await assertEnded(raw);
});

badInputTest("more simultaneous requests than 'requests' get policy-violation (C5)", async () => {
  const raw = await session();
  const rid = raw.rid;
  raw.rid += 3;
  const held = raw.request("", { rid }); // held
  await new Promise((resolve) => setTimeout(resolve, 200));
  const ahead = raw.request(`<presence xmlns="${NS.client}"/>`, { rid: rid + 2 }); // waits for rid+1
  await waitUntil(() => gw.log().includes(`event=bosh.ahead rid=${rid + 2} `), { what: "ahead" });
  const third = await raw.request(`<presence xmlns="${NS.client}"/>`, { rid: rid + 3 });
  assertTerminal(third, "policy-violation");
  assertTerminal(await held, "policy-violation", "held request:");
  assertTerminal(await ahead, "policy-violation", "waiting request:");
});

badInputTest("empty polls faster than 'polling' get policy-violation (C5)", async () => {
  const raw = await session();
  const first = raw.request(""); // held
  await new Promise((resolve) => setTimeout(resolve, 200));
  const second = await raw.request(""); // a second empty one at once
  assertTerminal(second, "policy-violation");
  assertTerminal(await first, "policy-violation", "held request:");
  await assertEnded(raw);
});

badInputTest("a pause longer than 'maxpause' gets policy-violation (C7)", async () => {
  const raw = await session();
  assert.equal(raw.created.attrs.maxpause, "30");
  const r = await raw.request("", { pause: 31 });
  assertTerminal(r, "policy-violation");
  await assertEnded(raw);
});

badInputTest("a restart request's payload is ignored (C9)", async () => {
  const raw = new RawBosh(gw.boshUrl);
  await raw.create();
  const auth = Buffer.from(`\0carol\0${USERS.carol}`).toString("base64");
  await raw.request(`<auth xmlns="${NS.sasl}" mechanism="PLAIN">${auth}</auth>`);
  const ignored = `not to be sent ${crypto.randomBytes(3).toString("hex")}`;
  const restarted = await raw.request(
    `<message xmlns="${NS.client}" to="${bob.jid}" type="chat"><body>${ignored}</body></message>`,
    { "xmpp:restart": "true", to: DOMAIN });
  assert.ok(payloads(restarted.el).some((e) => e.is("features", NS.stream)), restarted.text);
  const bound = await raw.request(`<iq xmlns="${NS.client}" type="set" id="b"><bind xmlns="${NS.bind}"/></iq>`);
  assert.ok(payloads(bound.el).some((e) => e.is("iq") && e.attrs.type === "result"), bound.text);
  const sent = `sent ${crypto.randomBytes(3).toString("hex")}`;
  const next = raw.request(`<message xmlns="${NS.client}" to="${bob.jid}" type="chat"><body>${sent}</body></message>`);
  await bob.waitFor((s) => s.is("message") && s.getChildText("body") === sent);
  assert.ok(!bob.stanzas.some((s) => s.getChildText?.("body") === ignored), "the restart's payload was dropped");
  await raw.request("");
  await next;
  await raw.terminate();
});

/** K(n) chain: K(1) = hex(sha1(seed)), K(i) = hex(sha1(K(i-1))); returns [K(1) .. K(n)]. */
function keyChain(n) {
  const keys = [];
  let k = crypto.randomBytes(16).toString("hex");
  for (let i = 0; i < n; i++) {
    k = crypto.createHash("sha1").update(k).digest("hex");
    keys.push(k);
  }
  return keys;
}

badInputTest("key sequencing: the right keys work, switching works, a wrong key gets " +
  "item-not-found and ends the session (C11)", async () => {
  const chain = keyChain(4);
  const raw = new RawBosh(gw.boshUrl);
  await raw.create({ newkey: chain[3] });
  const auth = Buffer.from(`\0carol\0${USERS.carol}`).toString("base64");
  const ok = await raw.request(`<auth xmlns="${NS.sasl}" mechanism="PLAIN">${auth}</auth>`, { key: chain[2] });
  assert.ok(payloads(ok.el).some((e) => e.is("success", NS.sasl)), ok.text);
  // Switch to a new sequence at the last key of the old one.
  const next = keyChain(3);
  const restarted = await raw.request("", { key: chain[1], "xmpp:restart": "true", to: DOMAIN });
  assert.equal(terminalCondition(restarted.el), undefined, restarted.text);
  const bound = await raw.request(`<iq xmlns="${NS.client}" type="set" id="b"><bind xmlns="${NS.bind}"/></iq>`,
    { key: chain[0], newkey: next[2] });
  assert.ok(payloads(bound.el).some((e) => e.is("iq")), bound.text);
  const good = raw.request(`<message xmlns="${NS.client}" to="${bob.jid}"><body>k</body></message>`,
    { key: next[1] }); // held: nothing comes back for it
  await new Promise((resolve) => setTimeout(resolve, 200));
  const wrong = await raw.request(`<presence xmlns="${NS.client}"/>`, { key: chain[2] }); // an old key
  assertTerminal(wrong, "item-not-found");
  assertTerminal(await good, "item-not-found", "held request:");
  await assertEnded(raw);
  // Without a key when one is expected: the same.
  const raw2 = new RawBosh(gw.boshUrl);
  await raw2.create({ newkey: keyChain(2)[1] });
  assertTerminal(await raw2.request(""), "item-not-found");
});

badInputTest("a legacy client (no 'ver') gets the old HTTP statuses with the conditions", async () => {
  const raw = new RawBosh(gw.boshUrl);
  await raw.create({ ver: undefined });
  const r = await raw.request("", { rid: raw.rid + 9 });
  assert.equal(r.status, 404, r.text);
  assert.equal(terminalCondition(r.el), "item-not-found");
  const c = await post(gw.boshUrl, B({ rid: 5, to: DOMAIN })); // no 'wait'
  assert.equal(c.status, 400, c.text);
});

badInputTest("acknowledgements: ack='1' is honoured, and a missing response is reported", async () => {
  const raw = new RawBosh(gw.boshUrl);
  const created = await raw.create({ ack: 1 });
  assert.equal(created.el.attrs.ack, String(created.rid), "the creation response acks its rid");
  const auth = Buffer.from(`\0carol\0${USERS.carol}`).toString("base64");
  const a = await raw.request(`<auth xmlns="${NS.sasl}" mechanism="PLAIN">${auth}</auth>`,
    { ack: created.rid });
  assert.equal(a.el.attrs.ack, undefined, "no ack when it equals the rid answered");
  // Pretend the answer to a was lost: ack the rid before it, after a while.
  await new Promise((resolve) => setTimeout(resolve, 2500));
  const r = await raw.request("", { ack: created.rid });
  assert.equal(r.el.attrs.report, String(a.rid), `report names the lost response: ${r.text}`);
  assert.ok(Number(r.el.attrs.time) >= 2000, `time since it was sent: ${r.text}`);
  // The client asks for it again and gets it.
  const again = await post(gw.boshUrl, B({ sid: raw.sid, rid: a.rid, ack: created.rid }));
  assert.equal(again.text, a.text);
  await raw.terminate();
});

badInputTest("on SIGTERM a held request gets system-shutdown and mxgw exits 0", async () => {
  const g = await env.startGateway({});
  const raw = new RawBosh(g.boshUrl);
  await raw.login("carol", USERS.carol);
  const held = raw.request(""); // held
  await new Promise((resolve) => setTimeout(resolve, 300));
  g.child.signal("SIGTERM");
  assertTerminal(await held, "system-shutdown", "held request:");
  const r = await g.child.waitExit(15000);
  assert.equal(r?.code, 0, `exit: ${JSON.stringify(r)}`);
});
