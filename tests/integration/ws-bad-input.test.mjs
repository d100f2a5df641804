// Bad input on the RFC 7395 front end. Each test sends one kind of bad input on a fresh
// WebSocket and checks the exact answer (stream-error condition, <close/>, WebSocket close code
// or refused upgrade); then it proves that a bystander session that logged in earlier through
// the same mxgw (alice, @xmpp/client over WebSocket) still exchanges messages with bob (connected
// to Prosody directly). If mxgw died, the next test restarts it, so one crash fails one test.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import {
  Env, USERS, NS, RawWs, guarded, exchangeMessages, expectStreamError, tryParse,
  isStreamError, streamErrorCondition, waitUntil,
} from "./lib/env.mjs";

const LIMIT = 16384; // limit_stanza_bytes in the test config

let env;
let gw; // the main gateway
let alice; // bystander through gw
let bob; // direct to Prosody
let limited; // a gateway with small per-IP and pre-auth limits
let limitedAlice;

async function mainGateway() {
  if (!gw || !gw.running) {
    gw = await env.startGateway({ limit_stanza_bytes: LIMIT });
    alice = null;
  }
  if (!alice || alice.xmpp.status !== "online") {
    alice = await env.login({ service: gw.wsUrl, username: "alice", password: USERS.alice });
  }
  return gw;
}

async function checkBystander() {
  assert.ok(gw.running, "mxgw is still running");
  await exchangeMessages(alice, bob, "bystander");
}

/** A fresh connection to the main gateway with the stream opened (pre-auth). */
async function openedClient() {
  await mainGateway();
  const c = await RawWs.connect(gw.wsUrl);
  await c.openStream();
  return c;
}

before(async () => {
  env = await Env.start();
  bob = await env.login({ service: env.prosody.tcpService, username: "bob", password: USERS.bob });
  await mainGateway();
}, { timeout: 60000 });

after(async () => {
  await env?.stop();
}, { timeout: 60000 });

function badInputTest(name, fn) {
  test(name, { timeout: 30000 }, guarded(() => env, async () => {
    await mainGateway();
    await fn();
    await checkBystander();
  }));
}

/** Sends one bad frame after <open/> and expects the stream error `condition`. */
function streamErrorTest(name, frame, condition) {
  badInputTest(name, async () => {
    const c = await openedClient();
    try {
      c.send(frame);
      await expectStreamError(c, condition);
    } finally {
      c.close();
    }
  });
}

/** Reads to the WebSocket close; the only messages allowed before it are a stream error with
 *  `condition` (when given) and <close/>. Returns the close code. */
async function expectWsClose(c, { condition } = {}) {
  const { code, messages } = await c.waitClose(10000);
  for (const m of messages) {
    const el = tryParse(m);
    assert.ok(el, `not well-formed XML from mxgw: ${m}`);
    if (isStreamError(el)) {
      if (condition) assert.equal(streamErrorCondition(el), condition, `stream error ${el}`);
      continue;
    }
    assert.ok(el.is("close", NS.framing), `unexpected message before the close: ${m}`);
  }
  return code;
}

// --- The WebSocket handshake ------------------------------------------------------------------

badInputTest("an upgrade without any subprotocol is refused with an HTTP error", async () => {
  const err = await RawWs.connect(gw.wsUrl, { protocols: [] }).then(
    (c) => {
      c.close();
      return null;
    },
    (e) => e,
  );
  assert.ok(err, "the upgrade must be refused, but a WebSocket was opened");
  assert.ok(err.status >= 400 && err.status < 600, `an HTTP error status, got ${err.message}`);
});

// libwebsockets 4.1 refuses an upgrade whose Sec-WebSocket-Protocol names none of ours before
// any application callback runs (the only earlier hook, HTTP_CONFIRM_UPGRADE, is the one behind
// CVE-2025-11677, which mxgw stays away from): the connection is closed without a 101. That is
// a refusal too; what matters is that no WebSocket opens and that mxgw stays up.
badInputTest("an upgrade naming only an unknown subprotocol is refused", async () => {
  const err = await RawWs.connect(gw.wsUrl, { protocols: ["bogus-protocol"] }).then(
    (c) => {
      c.close();
      return null;
    },
    (e) => e,
  );
  assert.ok(err, "the upgrade must be refused, but a WebSocket was opened");
  const refused = (err.status >= 400 && err.status < 600) || /socket hang up|ECONNRESET/.test(err.message);
  assert.ok(refused, `an HTTP error or a closed connection without 101, got ${err.message}`);
});

badInputTest("an upgrade on another path is refused with an HTTP error", async () => {
  const err = await RawWs.connect(`ws://127.0.0.1:${gw.wsPort}/not-xmpp`).then(
    (c) => {
      c.close();
      return null;
    },
    (e) => e,
  );
  assert.ok(err, "the upgrade must be refused, but a WebSocket was opened");
  assert.ok(err.status >= 400 && err.status < 600, `an HTTP error status, got ${err.message}`);
});

// --- Frames -----------------------------------------------------------------------------------

badInputTest("a binary frame closes the WebSocket with 1003", async () => {
  const c = await openedClient();
  try {
    c.sendBinary(Buffer.from(`<message xmlns="jabber:client" to="bob@localhost"><body>hi</body></message>`));
    assert.equal(await expectWsClose(c), 1003, "close code for a binary frame");
  } finally {
    c.close();
  }
});

badInputTest("a text frame that is not UTF-8 closes the WebSocket with 1007", async () => {
  const c = await openedClient();
  try {
    const bytes = Buffer.concat([
      Buffer.from(`<message xmlns="jabber:client" to="bob@localhost"><body>`),
      Buffer.from([0xc3, 0x28, 0xed, 0xa0, 0x80, 0xff]), // bad 2-byte seq, a surrogate, 0xFF
      Buffer.from(`</body></message>`),
    ]);
    c.sendTextBytes(bytes);
    assert.equal(await expectWsClose(c), 1007, "close code for invalid UTF-8");
  } finally {
    c.close();
  }
});

badInputTest(`a frame larger than limit_stanza_bytes (${LIMIT}) closes the WebSocket with 1009`, async () => {
  const c = await openedClient();
  try {
    const body = "y".repeat(LIMIT + 1000);
    c.send(`<message xmlns="jabber:client" to="bob@localhost"><body>${body}</body></message>`);
    assert.equal(await expectWsClose(c, { condition: "policy-violation" }), 1009,
      "close code for an oversized message");
  } finally {
    c.close();
  }
});

badInputTest("an oversized frame from a logged-in session ends that session, not only the frame", async () => {
  await mainGateway();
  const c = await RawWs.connect(gw.wsUrl);
  try {
    await c.login("carol", USERS.carol);
    c.send(`<message xmlns="jabber:client" to="${bob.jid}"><body>${"z".repeat(LIMIT * 2)}</body></message>`);
    assert.equal(await expectWsClose(c, { condition: "policy-violation" }), 1009);
    // The upstream stream is gone too: Prosody has no carol session left.
    await waitUntil(() => /Unbinding resource for carol@localhost|carol@localhost\S* closed/.test(env.prosody.log()),
      { timeoutMs: 10000, what: "Prosody to end carol's session" });
  } finally {
    c.close();
  }
});

// --- Not exactly one element ------------------------------------------------------------------

streamErrorTest("two elements in one frame give not-well-formed",
  `<presence xmlns="jabber:client"/><presence xmlns="jabber:client"/>`, "not-well-formed");

streamErrorTest("text that is not XML gives not-well-formed",
  "hello, this is not XML", "not-well-formed");

streamErrorTest("an unclosed element gives not-well-formed",
  `<message xmlns="jabber:client"><body>unclosed`, "not-well-formed");

streamErrorTest("a whitespace-only frame gives not-well-formed", "  \n\t ", "not-well-formed");

streamErrorTest("text after the element gives not-well-formed",
  `<presence xmlns="jabber:client"/> trailing`, "not-well-formed");

// --- Restricted XML (RFC 6120 §11.1) ----------------------------------------------------------

streamErrorTest("a DOCTYPE gives restricted-xml",
  `<!DOCTYPE message SYSTEM "http://127.0.0.1:9/evil.dtd"><message xmlns="jabber:client" to="bob@localhost"><body>hi</body></message>`,
  "restricted-xml");

streamErrorTest("entity declarations (billion laughs) give restricted-xml",
  `<!DOCTYPE m [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">` +
  `<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>` +
  `<message xmlns="jabber:client" to="bob@localhost"><body>&d;&d;&d;&d;</body></message>`,
  "restricted-xml");

streamErrorTest("an external entity (XXE) gives restricted-xml",
  `<!DOCTYPE m [<!ENTITY x SYSTEM "file:///etc/passwd">]><message xmlns="jabber:client" to="bob@localhost"><body>&x;</body></message>`,
  "restricted-xml");

streamErrorTest("a comment gives restricted-xml",
  `<message xmlns="jabber:client" to="bob@localhost"><!-- a comment --><body>hi</body></message>`,
  "restricted-xml");

streamErrorTest("a processing instruction gives restricted-xml",
  `<message xmlns="jabber:client" to="bob@localhost"><?evil pi?><body>hi</body></message>`,
  "restricted-xml");

// --- Structural limits ------------------------------------------------------------------------

streamErrorTest("nesting deeper than limit_xml_depth (64) gives policy-violation",
  `<message xmlns="jabber:client" to="bob@localhost">${"<x>".repeat(100)}${"</x>".repeat(100)}</message>`,
  "policy-violation");

streamErrorTest("more attributes than limit_xml_attrs (64) gives policy-violation",
  `<message xmlns="jabber:client" to="bob@localhost" ${Array.from({ length: 100 }, (_, i) => `a${i}="v"`).join(" ")}><body>hi</body></message>`,
  "policy-violation");

streamErrorTest("many namespace declarations on one element give policy-violation",
  `<message xmlns="jabber:client" to="bob@localhost" ${Array.from({ length: 100 }, (_, i) => `xmlns:p${i}="urn:x:${i}"`).join(" ")}><body>hi</body></message>`,
  "policy-violation");

// --- Admission limits (own gateway: limit_sessions_per_ip = 2, preauth_timeout = 3s) ----------

async function limitedGateway() {
  if (!limited || !limited.running) {
    limited = await env.startGateway({ limit_sessions_per_ip: 2, preauth_timeout: "3s" });
    limitedAlice = null;
  }
  if (!limitedAlice || limitedAlice.xmpp.status !== "online") {
    limitedAlice = await env.login({ service: limited.wsUrl, username: "alice", password: USERS.alice });
  }
}

test("the per-IP session limit refuses the excess connection and frees the slot on close",
  { timeout: 30000 }, guarded(() => env, async () => {
    await limitedGateway();
    // All from 127.0.0.5 so that the bystanders on 127.0.0.1 do not count against the limit.
    const opts = { localAddress: "127.0.0.5" };
    const c1 = await RawWs.connect(limited.wsUrl, opts);
    const c2 = await RawWs.connect(limited.wsUrl, opts);
    const extra = [];
    try {
      await c1.openStream();
      await c2.openStream();
      const third = await RawWs.connect(limited.wsUrl, opts).then((c) => c, (e) => e);
      if (third instanceof Error) {
        assert.ok(third.status >= 400 && third.status < 600,
          `the third connection is refused with an HTTP error, got ${third.message}`);
      } else {
        // Either a policy-violation stream error (with <close/>) or, before any XMPP was
        // spoken, WebSocket close 1008 (policy violation); never a usable stream.
        extra.push(third);
        if (third.isOpen) third.send(`<open xmlns="${NS.framing}" to="localhost" version="1.0"/>`);
        const { code, messages } = await third.waitClose(10000);
        const els = messages.map(tryParse);
        assert.ok(!els.some((el) => el?.is("open", NS.framing)),
          `the excess connection must not get a stream: ${third.describe()}`);
        const err = els.find(isStreamError);
        if (err) {
          assert.equal(streamErrorCondition(err), "policy-violation", `stream error ${err}`);
          assert.ok(els.at(-1)?.is("close", NS.framing), `<close/> after the stream error: ${third.describe()}`);
          assert.notEqual(code, 1006, "closed with a close frame");
        } else {
          assert.equal(code, 1008, `without a stream error the close code is 1008: ${third.describe()}`);
        }
      }
      // The first two are untouched.
      assert.ok(c1.isOpen && c2.isOpen, "the sessions within the limit stay open");
      // Closing one frees a slot: a new connection from the same IP gets a stream again.
      c1.close();
      const c4 = await waitUntil(async () => {
        const c = await RawWs.connect(limited.wsUrl, opts).catch(() => null);
        if (!c) return null;
        extra.push(c);
        c.send(`<open xmlns="${NS.framing}" to="localhost" version="1.0"/>`);
        const ev = await c.next(5000);
        if (ev.type === "message" && tryParse(ev.data)?.is("open", NS.framing)) return c;
        c.close();
        return null;
      }, { timeoutMs: 10000, what: "a slot to free up after closing one session" });
      assert.ok(c4);
      await exchangeMessages(limitedAlice, bob, "per-ip bystander");
      await checkBystander();
    } finally {
      for (const c of [c1, c2, ...extra]) c.close();
    }
  }));

test("a client that does not authenticate within preauth_timeout gets connection-timeout",
  { timeout: 30000 }, guarded(() => env, async () => {
    await limitedGateway();
    const c = await RawWs.connect(limited.wsUrl, { localAddress: "127.0.0.6" });
    try {
      const t0 = Date.now();
      await c.openStream();
      await expectStreamError(c, "connection-timeout", { timeoutMs: 15000 });
      const elapsed = Date.now() - t0;
      assert.ok(elapsed >= 2500, `not before the 3 s pre-auth timeout (after ${elapsed} ms)`);
      // The bound bystander on the same gateway (logged in longer than 3 s ago by now) is fine.
      await exchangeMessages(limitedAlice, bob, "preauth bystander");
      await checkBystander();
    } finally {
      c.close();
    }
  }));

test("a client that opens the WebSocket but never sends <open/> is also timed out",
  { timeout: 30000 }, guarded(() => env, async () => {
    await limitedGateway();
    const c = await RawWs.connect(limited.wsUrl, { localAddress: "127.0.0.7" });
    try {
      const { code, messages } = await c.waitClose(15000);
      assert.notEqual(code, 1006, `closed with a close frame (transcript ${c.describe()})`);
      const err = messages.map(tryParse).find(isStreamError);
      if (err) assert.equal(streamErrorCondition(err), "connection-timeout");
      await exchangeMessages(limitedAlice, bob, "silent bystander");
    } finally {
      c.close();
    }
  }));
