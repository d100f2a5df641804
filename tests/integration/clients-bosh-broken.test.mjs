// What browsers do to a BOSH session besides the happy path: the page reloads, or the network
// drops, while mxgw holds a request (XEP-0124 §14.3 "Broken Connections"). converse.js does it
// on a page reload (clients-converse.test.mjs): Strophe.js restores sid and rid and carries on
// with the next rid at once, while the old request's connection is gone. mxgw must notice the
// closed connection of a held request (libmicrohttpd does not watch suspended connections),
// stop counting it as outstanding (else the next empty request, within 'polling' of the last,
// is "overactivity", §11, and ends the session), and not answer it with what the server sends
// next (that would be lost on a dead socket). The first test drops a raw socket; the second
// shows that Chromium closes a held request's connection when the page reloads.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
import { Env, USERS, NS, xml, guarded, waitUntil } from "./lib/env.mjs";
import { RawBosh, wrapper, payloads, terminalCondition, tcpConnect } from "./lib/bosh.mjs";

const CHROMIUM = process.env.MXGW_CHROMIUM || "/usr/bin/chromium";

let env;
let gw;
let bob;

before(async () => {
  env = await Env.start({ redis: false });
  gw = await env.startGateway({}); // bosh_polling 2s: a request back within it would be "too fast"
  bob = await env.login({ service: env.prosody.tcpService, username: "bob", password: USERS.bob });
}, { timeout: 60000 });

after(async () => {
  await env?.stop();
}, { timeout: 60000 });

/** Sends one BOSH request on its own TCP connection and leaves it open (with end, closes the
 * sending side right behind the request: the FIN may reach mxgw before it holds the request);
 * returns the socket. */
async function holdOnRawSocket(raw, rid, { end = false } = {}) {
  const url = new URL(gw.boshUrl);
  const body = wrapper({ sid: raw.sid, rid });
  const s = await tcpConnect(Number(url.port));
  s.on("error", () => {});
  const request = `POST ${url.pathname} HTTP/1.1\r\nHost: ${url.host}\r\n` +
    `Content-Type: text/xml; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
  if (end) s.end(request);
  else s.write(request);
  return s;
}

/** bob writes to jid; raw, back with the next rid, gets it. */
async function bobReaches(raw, jid, label) {
  const text = `${label} ${crypto.randomBytes(4).toString("hex")}`;
  await bob.send(xml("message", { to: jid, type: "chat" }, xml("body", {}, text)));
  return raw.pollFor((e) => e.is("message", NS.client) && e.getChildText("body") === text,
    { what: "bob's message" });
}

/** No response of raw's session ended it. */
function assertNotEnded(raw) {
  for (const r of raw.responses) {
    assert.equal(terminalCondition(r.el), undefined, `no response ended the session: ${r.text}`);
  }
}

test("a held BOSH request whose client hangs up is answered at once: the client that comes " +
  "back with the next rid is not overactive, gets the next message, and may resend the old rid",
{ timeout: 60000 }, guarded(() => env, async () => {
  const raw = new RawBosh(gw.boshUrl);
  const jid = await raw.login("alice", USERS.alice);
  try {
    const dropped = raw.rid++;
    const sock = await holdOnRawSocket(raw, dropped);
    await waitUntil(() => gw.log().includes(`event=bosh.request rid=${dropped} `),
      { what: `mxgw to hold request ${dropped}` });
    sock.destroy(); // the page goes away with its request
    await waitUntil(() => gw.log().includes("event=http.hangup "),
      { timeoutMs: 10000, what: "mxgw to notice that the held request's client hung up" });

    // The client resends the request it lost (§14.3): the kept, empty answer, no error.
    const again = await raw.request("", { rid: dropped });
    assert.equal(again.status, 200);
    assert.equal(terminalCondition(again.el), undefined, `resent rid ${dropped}: ${again.text}`);
    assert.deepEqual(payloads(again.el), [], "nothing was sent into the closed connection");

    // bob writes; the client is back at once with the next rid (well within 'polling').
    const got = await bobReaches(raw, jid, "after the hang-up");
    assert.equal(got.attrs.from, bob.jid.toString());
    assertNotEnded(raw);
  } finally {
    await raw.terminate();
  }
}));

test("a held request whose client closed its side right behind the request is noticed too, " +
  "before its wait ends", { timeout: 60000 }, guarded(() => env, async () => {
  const raw = new RawBosh(gw.boshUrl);
  await raw.create({ wait: 60 });
  const jid = await raw.login("alice", USERS.alice);
  // Our watch reports it (http.hangup), or libmicrohttpd itself reads the end of the stream
  // before the request is held and ends it (http.incomplete): either way, not at the deadline.
  const ended = () => (gw.log().match(/event=http\.(hangup|incomplete) /g) || []).length;
  try {
    for (let i = 0; i < 3; i++) {
      const hangups = ended();
      const dropped = raw.rid++;
      const sock = await holdOnRawSocket(raw, dropped, { end: true });
      // Noticed within 10 s, while the session's wait is 60 s.
      await waitUntil(() => ended() > hangups,
        { timeoutMs: 10000, what: `mxgw to notice that request ${dropped}'s client hung up` });
      sock.destroy();
      await bobReaches(raw, jid, `after the half-close ${i}`);
    }
    assertNotEnded(raw);
  } finally {
    await raw.terminate();
  }
}));

test("in Chromium: reloading the page while mxgw holds its BOSH request closes that request's " +
  "connection, and mxgw notices", { timeout: 60000 }, guarded(() => env, async () => {
  const raw = new RawBosh(gw.boshUrl);
  const jid = await raw.login("alice", USERS.alice);
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "mxgw-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      "--disable-dev-shm-usage"],
  });
  try {
    const p = await context.newPage();
    await p.goto(`${gw.httpUrl}/`); // the demo page: same origin as /http-bind
    const held = raw.rid++;
    const hangups = () => (gw.log().match(/event=http\.hangup /g) || []).length;
    const before = hangups();
    // The page's own request, as a BOSH library would send it; mxgw holds it (nothing to say).
    await p.evaluate(([url, body]) => {
      fetch(url, { method: "POST", body, headers: { "Content-Type": "text/xml; charset=utf-8" } })
        .catch(() => {});
    }, [gw.boshUrl, wrapper({ sid: raw.sid, rid: held })]);
    await waitUntil(() => gw.log().includes(`event=bosh.request rid=${held} `),
      { what: `mxgw to hold the page's request ${held}` });
    await p.reload();
    await waitUntil(() => hangups() > before, { timeoutMs: 10000,
      what: "mxgw to notice that the reloaded page's held request is gone" });
    // The page (here the raw client) carries on at once with the next rid.
    await bobReaches(raw, jid, "after the reload");
    assertNotEnded(raw);
  } finally {
    await context.close().catch(() => {});
    fs.rmSync(profile, { recursive: true, force: true });
    await raw.terminate();
  }
}));
