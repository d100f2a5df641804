// The mobile JSON protocol (docs/json-protocol.md) through mxgw to a real Prosody: login, a
// message each way with a user connected to Prosody directly, acks, chat states and receipts,
// bad JSON that gets an error without losing the connection, permessage-deflate only when both
// the config and the client want it with the inflated size capped, and the bytes a chat message
// costs against RFC 7395, with and without aliases and compression.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import WebSocket from "ws";
import { Env, USERS, RawWs, guarded, xml } from "./lib/env.mjs";
import { JsonClient } from "./lib/json-client.mjs";

let env;
let gw;
let gwDeflate;
let bob;

before(async () => {
  env = await Env.start();
  gw = await env.startGateway();
  gwDeflate = await env.startGateway({ ws_deflate: "yes" });
  bob = await env.login({ service: env.prosody.tcpService, username: "bob", password: USERS.bob });
}, { timeout: 60000 });

after(async () => {
  await env?.stop();
}, { timeout: 60000 });

test("login, presence and a message each way with a user on Prosody directly", { timeout: 30000 },
  guarded(() => env, async () => {
    const c = await JsonClient.connect(gw.wsUrl);
    try {
      const jid = (await c.login("alice", USERS.alice)).jid;
      assert.equal(jid, "alice@localhost/phone");
      c.send({ t: "p" });
      // bob → alice, arriving as the compact short form
      const body = `hello alice ${crypto.randomBytes(4).toString("hex")} <&> "quotes" ünïcode`;
      await bob.send(xml("message", { to: jid, type: "chat", id: "m1" }, xml("body", {}, body)));
      const got = await c.next((o) => o.b === body, "bob's message");
      assert.equal(got.f, bob.jid.toString());
      assert.equal(got.id, "m1");
      assert.equal(got.to, undefined, "our own JID is not repeated");
      assert.equal(got.type, undefined, "chat is the default type");
      assert.equal(got.t, undefined, "message is the default stanza kind");
      // alice → bob, with a spoofed "f" that must not be used
      const reply = `hi bob ${crypto.randomBytes(4).toString("hex")}`;
      c.send({ to: bob.jid.toString(), id: "r1", b: reply, f: "mallory@localhost/x", rq: true });
      const s = await bob.waitFor((st) => st.is("message") && st.getChildText("body") === reply,
        { what: "alice's reply" });
      assert.equal(s.attrs.from, jid, "from comes from the session, not the JSON");
      assert.ok(s.getChild("request", "urn:xmpp:receipts"), "the receipt request is carried");
      // acks: the client acks what it got; it asks for mxgw's count of what it sent
      c.send({ op: "a", h: 1 });
      c.send({ op: "r" });
      const a = await c.next((o) => o.op === "a", "mxgw's ack");
      assert.ok(a.h >= 2, `mxgw acks alice's presence and message, got h=${a.h}`);
    } finally {
      c.close();
    }
  }));

test("an iq round trip: a roster get comes back as a result", { timeout: 30000 },
  guarded(() => env, async () => {
    const c = await JsonClient.connect(gw.wsUrl);
    try {
      await c.login("alice", USERS.alice, "roster");
      // The query sent in the element form; the answer comes back in the roster short form.
      c.send({ t: "iq", type: "get", id: "ro1", x: [{ n: "query", ns: "jabber:iq:roster" }] });
      const r = await c.next((o) => o.id === "ro1", "the roster result");
      assert.equal(r.t, "iq");
      assert.equal(r.type, "result");
      assert.equal(typeof r.roster, "object", JSON.stringify(r));
    } finally {
      c.close();
    }
  }));

test("chat states, receipts and markers in short form, both ways", { timeout: 30000 },
  guarded(() => env, async () => {
    const c = await JsonClient.connect(gw.wsUrl);
    try {
      const jid = (await c.login("alice", USERS.alice, "states")).jid;
      c.send({ t: "p" });
      await bob.send(xml("message", { to: jid, type: "chat", id: "cs1" },
        xml("composing", { xmlns: "http://jabber.org/protocol/chatstates" }),
        xml("markable", { xmlns: "urn:xmpp:chat-markers:0" }),
        xml("request", { xmlns: "urn:xmpp:receipts" }),
        xml("body", {}, "typing done")));
      const got = await c.next((o) => o.id === "cs1", "bob's message");
      assert.deepEqual(got, { f: bob.jid.toString(), from: bob.jid.toString(), id: "cs1",
        cs: "composing", markable: true, rq: true, b: "typing done" });
      c.send({ to: bob.jid.toString(), id: "rc1", rcv: "cs1", mk: { n: "displayed", id: "cs1" },
        cs: "active" });
      const s = await bob.waitFor((st) => st.is("message") && st.attrs.id === "rc1",
        { what: "the receipt" });
      assert.equal(s.getChild("received", "urn:xmpp:receipts").attrs.id, "cs1");
      assert.equal(s.getChild("displayed", "urn:xmpp:chat-markers:0").attrs.id, "cs1");
      assert.ok(s.getChild("active", "http://jabber.org/protocol/chatstates"));
      assert.equal(s.attrs.type, "chat");
    } finally {
      c.close();
    }
  }));

test("a burst of short messages around the 125/126-byte frame boundary arrives whole and in order",
  { timeout: 30000 }, guarded(() => env, async () => {
    // mxgw frames what it writes to a client itself (RFC 6455 §5.2), several frames per write
    // when one loop iteration produces them: a length of up to 125 bytes fits the first header
    // byte, 126 and more take two more. Probes give the frame length of a one-byte body.
    const c = await JsonClient.connect(gw.wsUrl);
    try {
      const jid = (await c.login("alice", USERS.alice, "frames")).jid;
      c.send({ t: "p" });
      const tag = crypto.randomBytes(3).toString("hex");
      const id = (i) => `${tag}-${String(i).padStart(2, "0")}`;
      const msg = (i, body) => xml("message", { to: jid, type: "chat", id: id(i) }, xml("body", {}, body));
      const size = (o) => c.frameBytes[c.all.indexOf(o)];
      await bob.send(msg(0, "p")); // the first from bob may define an alias for his JID
      await c.next((o) => o.id === id(0), "the first probe");
      await bob.send(msg(1, "p"));
      const probe = size(await c.next((o) => o.id === id(1), "the second probe"));
      assert.ok(probe <= 120, `a probe frame of ${probe} bytes`);
      const sent = [122, 123, 124, 125, 126, 127, 128, 129, 125, 126].map((n, i) =>
        ({ i: i + 2, n, body: "z".repeat(1 + n - probe) }));
      await Promise.all(sent.map((m) => bob.send(msg(m.i, m.body))));
      let last = -1;
      for (const m of sent) {
        const o = await c.next((x) => x.id === id(m.i), `message ${id(m.i)}`);
        assert.ok(c.all.indexOf(o) > last, "in order");
        last = c.all.indexOf(o);
        assert.equal(o.b, m.body);
        assert.equal(size(o), m.n, `frame ${id(m.i)} is ${m.n} bytes`);
      }
    } finally {
      c.close();
    }
  }));

test("a burst of 240 messages sent at once reaches the recipient, in order", { timeout: 60000 },
  guarded(() => env, async () => {
    // Within the default rate burst (50 stanzas a second for 5 s), and past the 128 stanzas
    // the server may leave unacked before mxgw stops reading the client: mxgw must keep asking
    // the server for acks (it answers requests only), or the client stays paused for good.
    const c = await JsonClient.connect(gw.wsUrl);
    try {
      await c.login("alice", USERS.alice, "burst");
      const tag = crypto.randomBytes(3).toString("hex");
      const N = 240;
      for (let i = 0; i < N; i++) c.send({ to: bob.jid.toString(), id: `${tag}-${i}`, b: `burst ${i}` });
      for (let i = 0; i < N; i++) {
        const s = await bob.waitFor((st) => st.is("message") && st.attrs.id?.startsWith(`${tag}-`),
          { what: `burst message ${i}`, timeoutMs: 15000 });
        assert.equal(s.attrs.id, `${tag}-${i}`, "the next of the burst, in order");
        assert.equal(s.getChildText("body"), `burst ${i}`);
      }
      c.send({ op: "r" });
      const a = await c.next((o) => o.op === "a", "mxgw's ack");
      assert.ok(a.h >= N, `the server took all ${N}, got h=${a.h}`);
    } finally {
      c.close();
    }
  }));

test("bad JSON gets an error and the connection stays usable", { timeout: 60000 },
  guarded(() => env, async () => {
    const c = await JsonClient.connect(gw.wsUrl);
    try {
      await c.login("alice", USERS.alice, "bad");
      const to = "bob@localhost";
      const cases = [
        // Not JSON, not one object.
        ["not json", "bad-request"],
        ["[1,2]", "bad-request"],
        ['{"b":"x"} {"b":"y"}', "bad-request"],
        // Values XML cannot carry: NUL and other C0 controls, lone surrogates, U+FFFE/U+FFFF.
        [`{"b":"nul \\u0000 here","to":"${to}"}`, "bad-request"],
        [`{"b":"control \\u0001","to":"${to}"}`, "bad-request"],
        [`{"b":"escape \\u001b","to":"${to}"}`, "bad-request"],
        [`{"b":"lone \\ud800 surrogate","to":"${to}"}`, "bad-request"],
        [`{"b":"lone \\udc00 surrogate","to":"${to}"}`, "bad-request"],
        [`{"b":"\\uffff","to":"${to}"}`, "bad-request"],
        [`{"b":"\\ufffe","to":"${to}"}`, "bad-request"],
        [`{"b":"raw \ufffe","to":"${to}"}`, "bad-request"],
        // I-JSON: duplicate keys, numbers beyond 2^53 or not integers.
        [`{"b":"x","b":"y","to":"${to}"}`, "bad-request"],
        ['{"op":"a","h":9007199254740993}', "bad-request"],
        [`{"t":"p","pri":1.5}`, "bad-request"],
        // Too deep, too large (as JSON, and as the XML it would become).
        [JSON.stringify({ x: [JSON.parse("[".repeat(40) + "]".repeat(40))] }), "bad-request"],
        [`{"to":"${to}","b":"${"x".repeat(20000)}"}`, "policy-violation"],
        [`{"to":"${to}","b":"${"<".repeat(5000)}"}`, "policy-violation"],
        // Names XML cannot carry: element, attribute, error condition, marker, chat state; a
        // namespace declaration in disguise; a name expat refuses outside ASCII.
        ['{"t":"x","xml":{"n":"message x=\'1\'"}}', "bad-request"],
        [`{"to":"${to}","x":[{"n":"a b"}]}`, "bad-request"],
        [`{"to":"${to}","x":[{"n":"a\u060fb"}]}`, "bad-request"],
        [`{"to":"${to}","x":[{"n":"x","a":{"a<b":"1"}}]}`, "bad-request"],
        [`{"to":"${to}","x":[{"n":"body","a":{"xmlns":"urn:evil"}}]}`, "bad-request"],
        [`{"to":"${to}","type":"error","err":{"type":"modify","cond":"not acceptable"}}`,
          "bad-request"],
        ['{"type":"rror","err":{"type":"modify","cond":"nJJJJJJ\u060fJJJot-_cce0tfromable",' +
          '"code":406,"te-xt":"no"}}', "bad-request"],
        [`{"to":"${to}","mk":{"n":"seen","id":"1"}}`, "bad-request"],
        [`{"to":"${to}","cs":"typing"}`, "bad-request"],
        // Keys and values the protocol does not have; JIDs and aliases that are not.
        [`{"to":"${to}","body":"x"}`, "bad-request"],
        [`{"to":"${to}","b":5}`, "bad-request"],
        ['{"to":"not a jid@@","b":"x"}', "jid-malformed"],
        ['{"to":42,"b":"x"}', "item-not-found"],
        ['{"op":"alias","jid":"@@"}', "jid-malformed"],
        // The element form carries stanzas, not stream management or SASL.
        ['{"t":"x","xml":{"n":"a","ns":"urn:xmpp:sm:3","a":{"h":"99"}}}', "bad-request"],
        ['{"op":"nope"}', "bad-request"],
      ];
      for (const [text, cond] of cases) {
        c.send(text);
        const e = await c.next((o) => o.op === "error", `the error for ${text.slice(0, 40)}`);
        assert.equal(e.cond, cond, `${text.slice(0, 60)} → ${JSON.stringify(e)}`);
        assert.ok(e.text, `an error says why: ${JSON.stringify(e)}`);
        assert.ok(!e.fatal, "a bad message does not end the session");
      }
      // An error about a stanza echoes its id.
      c.send({ to, id: "bad-1", cs: "typing" });
      const withId = await c.next((o) => o.op === "error", "the error with an id");
      assert.equal(withId.id, "bad-1");
      // Still alive: a message goes through, and nothing before it reached bob.
      const body = `still here ${crypto.randomBytes(3).toString("hex")}`;
      c.send({ to: bob.jid.toString(), b: body });
      const got = await bob.waitFor((st) => st.is("message") && st.getChildText("body") === body,
        { what: "the message after the bad input" });
      assert.equal(got.attrs.from, c.jid);
      assert.ok(!bob.stanzas.some((st) => st.is("message") && st.attrs.from === c.jid),
        "none of the refused messages reached bob");
      assert.equal(c.ws.readyState, 1, "the connection is still open");
    } finally {
      c.close();
    }
  }));

test("a wrong password ends the login with not-authorized", { timeout: 30000 },
  guarded(() => env, async () => {
    const c = await JsonClient.connect(gw.wsUrl);
    c.send({ op: "login", jid: "alice@localhost", password: "wrong" });
    const e = await c.next((o) => o.op === "error", "the login error");
    assert.equal(e.cond, "not-authorized");
    assert.equal(e.fatal, true);
    assert.equal(await c.closed, 1000);
  }));

test("an empty password is refused before the server is asked; one SASL cannot carry is not-authorized",
  { timeout: 30000 }, guarded(() => env, async () => {
    const c = await JsonClient.connect(gw.wsUrl);
    c.send({ op: "login", jid: "alice@localhost", password: "" });
    const e = await c.next((o) => o.op === "error", "the empty-password error");
    assert.equal(e.cond, "bad-request");
    assert.ok(!e.fatal, "the client may try again on the same connection");
    c.send({ op: "login", jid: "alice@localhost", password: "tab\there" });
    const e2 = await c.next((o) => o.op === "error", "the control-character error");
    assert.equal(e2.cond, "not-authorized", JSON.stringify(e2));
    assert.equal(e2.fatal, true);
    assert.equal(await c.closed, 1000);
  }));

test("permessage-deflate only when the config allows it and the client offers it", { timeout: 30000 },
  guarded(() => env, async () => {
    const PMD = "permessage-deflate";
    const offered = await JsonClient.connect(gw.wsUrl, { deflate: true });
    const plain = await JsonClient.connect(gwDeflate.wsUrl);
    const both = await JsonClient.connect(gwDeflate.wsUrl, { deflate: true });
    try {
      assert.ok(!offered.extensions.includes(PMD), "off by default, even when offered");
      assert.ok(!plain.extensions.includes(PMD), "not used when the client does not offer it");
      assert.ok(both.extensions.includes(PMD), `negotiated: "${both.extensions}"`);
      // Compressed both ways: login and a message each way.
      const jid = (await both.login("alice", USERS.alice, "deflate")).jid;
      both.send({ t: "p" });
      const body = `compressed ${crypto.randomBytes(4).toString("hex")}`;
      await bob.send(xml("message", { to: jid, type: "chat" }, xml("body", {}, body)));
      assert.equal((await both.next((o) => o.b === body, "bob's message")).f, bob.jid.toString());
      both.send({ to: bob.jid.toString(), b: `${body} back` });
      await bob.waitFor((s) => s.is("message") && s.getChildText("body") === `${body} back`,
        { what: "the compressed message from alice" });
    } finally {
      offered.close();
      plain.close();
      both.close();
    }
  }));

test("the inflated size is capped: a compressed message over the limit closes with 1009",
  { timeout: 30000 }, guarded(() => env, async () => {
    const c = await JsonClient.connect(gwDeflate.wsUrl, { deflate: true });
    try {
      await c.login("alice", USERS.alice, "bomb");
      // 1 MB of one letter: a few KB compressed, 64 times the stanza limit once inflated.
      c.send({ to: "bob@localhost", b: "x".repeat(1 << 20) });
      assert.equal(await c.closed, 1009);
      assert.ok(c.wire.out < 16384, `sent ${c.wire.out} bytes: compressed, under the limit`);
    } finally {
      c.close();
    }
    // The gateway is fine: a new connection logs in.
    const d = await JsonClient.connect(gwDeflate.wsUrl, { deflate: true });
    try {
      await d.login("alice", USERS.alice, "after-bomb");
    } finally {
      d.close();
    }
  }));

// Bytes on the wire of a typical one-to-one chat message, sent and delivered: what the sender's
// socket writes plus what the recipient's socket reads, so WebSocket frame headers (and, with
// permessage-deflate, compression) count as they are. Two sessions on each side, resources of
// the same length (12 characters) for JSON and RFC 7395, six messages of each length in a row;
// the figure is the mean of messages 2 to 6, a conversation under way (with aliases on, the
// first message also carries the sender's JID and its number). Byte counts are deterministic
// for given bodies, so the budget can be asserted.
const BODIES = {
  short: ["See you at noon!", "On my way home..", "Call me later ok", "Running 10m late",
    "Dinner at 8 pm ?", "Got it, thanks!!"],
  long: [
    "Hey, are we still on for lunch at noon? I can bring the slides.",
    "I moved the meeting to Thursday; the room is booked from 3 to 4",
    "Can you send me the address again? My phone lost your message..",
    "Train is delayed by twenty minutes, start without me, I will go",
    "Great news about the offer! Let us celebrate it this weekend!!!",
    "Reminder: the plumber comes tomorrow between 8 and 10 am, okay?",
  ],
};

const hex = () => crypto.randomBytes(4).toString("hex");
const mean = (xs) => xs.reduce((s, x) => s + x, 0) / xs.length;

async function jsonExchange(url, bodies, { deflate = false, aliases = false } = {}) {
  const a = await JsonClient.connect(url, { deflate });
  const b = await JsonClient.connect(url, { deflate });
  try {
    await a.login("alice", USERS.alice, `jsn-${hex()}`);
    const bjid = (await b.login("carol", USERS.carol, `jsn-${hex()}`)).jid;
    let to = bjid;
    if (aliases) {
      await a.alias();
      await b.alias();
      to = await a.alias(bjid);
    }
    const bytes = [];
    for (const [i, body] of bodies.entries()) {
      const out0 = a.wire.out;
      const in0 = b.wire.in;
      a.send({ to, id: `a1b2c3${String(i).padStart(2, "0")}`, b: body });
      const got = await b.next((o) => o.b === body, "the JSON message");
      assert.equal(got.from, a.jid);
      bytes.push(a.wire.out - out0 + (b.wire.in - in0));
      b.ack();
    }
    return bytes;
  } finally {
    a.close();
    b.close();
  }
}

async function rawConnect(url, deflate) {
  const ws = new WebSocket(url, ["xmpp"], { perMessageDeflate: deflate ? { threshold: 0 } : false });
  await new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  return new RawWs(ws);
}

async function xmlExchange(url, bodies, { deflate = false } = {}) {
  const r = await rawConnect(url, deflate);
  const r2 = await rawConnect(url, deflate);
  try {
    await r.login("alice", USERS.alice);
    const rjid = await r2.login("carol", USERS.carol);
    const bytes = [];
    for (const [i, body] of bodies.entries()) {
      const out0 = r.ws._socket.bytesWritten;
      const in0 = r2.ws._socket.bytesRead;
      r.send(`<message xmlns='jabber:client' to='${rjid}' type='chat' ` +
        `id='a1b2c3${String(i).padStart(2, "0")}'><body>${body}</body></message>`);
      for (;;) {
        if ((await r2.nextText()).includes(body)) break;
      }
      bytes.push(r.ws._socket.bytesWritten - out0 + (r2.ws._socket.bytesRead - in0));
    }
    return bytes;
  } finally {
    r.close();
    r2.close();
  }
}

test("bytes on the wire for a chat message, sent and delivered: JSON against RFC 7395",
  { timeout: 120000 }, guarded(() => env, async () => {
    for (const [name, bodies] of Object.entries(BODIES)) {
      const len = bodies[0].length;
      assert.ok(bodies.every((b) => b.length === len), `${name} bodies have one length`);
      const xmlPlain = await xmlExchange(gw.wsUrl, bodies);
      const jsonPlain = await jsonExchange(gw.wsUrl, bodies);
      const jsonAlias = await jsonExchange(gw.wsUrl, bodies, { aliases: true });
      const xmlDeflate = await xmlExchange(gwDeflate.wsUrl, bodies, { deflate: true });
      const jsonDeflate = await jsonExchange(gwDeflate.wsUrl, bodies, { deflate: true, aliases: true });
      const steady = (xs) => mean(xs.slice(1));
      const x = steady(xmlPlain);
      const pct = (v) => `${((v / x) * 100).toFixed(1)}%`;
      console.log(`bytes per chat message with a ${len}-character body, sent + delivered ` +
        `(mean of messages 2-6; first message in brackets): ` +
        `RFC 7395 ${x.toFixed(0)} [${xmlPlain[0]}]; ` +
        `JSON ${steady(jsonPlain).toFixed(0)} (${pct(steady(jsonPlain))}) [${jsonPlain[0]}]; ` +
        `JSON with aliases ${steady(jsonAlias).toFixed(0)} (${pct(steady(jsonAlias))}) ` +
        `[${jsonAlias[0]}]; with permessage-deflate: RFC 7395 ${steady(xmlDeflate).toFixed(0)} ` +
        `(${pct(steady(xmlDeflate))}) [${xmlDeflate[0]}], JSON with aliases ` +
        `${steady(jsonDeflate).toFixed(0)} (${pct(steady(jsonDeflate))}) [${jsonDeflate[0]}]`);
      // The protocol's budget: at most 45% of RFC 7395 for a typical (short) message in a
      // conversation, and under half for a long one, whose body (the same bytes in both
      // encodings) dominates.
      const budget = name === "short" ? 0.45 : 0.5;
      assert.ok(steady(jsonAlias) <= budget * x,
        `JSON with aliases costs ${pct(steady(jsonAlias))} of RFC 7395`);
      // Without aliases (a client that ignores them) it still costs well under RFC 7395.
      assert.ok(steady(jsonPlain) <= 0.65 * x, `JSON costs ${pct(steady(jsonPlain))}`);
    }
  }));
