// How a JSON session answers the server's XEP-0198 ack requests, seen from a fake upstream
// (lib/env.mjs FakeUpstream) that logs the session in (STARTTLS, PLAIN, bind, enable) and then
// asks <r/> after its stanzas, as Prosody does by default. mxgw acknowledges a stanza to the
// server only once the client has acked it; an <r/> that comes when there is nothing new to
// report is answered with the next progress (the client's ack), or after a short delay when
// none comes - never withheld for good (XEP-0198 §4 allows waiting for a timeout only).
// The other way, mxgw keeps asking the server about the client's stanzas while a burst of them
// lasts, since the server acks only when asked.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import {
  Env, NS, guarded, JsonSession,
} from "./lib/env.mjs";
import { JsonClient } from "./lib/json-client.mjs";

let env;
let fake;
let gw;

before(async () => {
  env = await Env.start();
  fake = await env.startFakeUpstream({ proxyTo: env.prosody.c2sPort });
  // No rate limit on what the client sends: one test sends a thousand stanzas at once.
  gw = await env.startGateway({
    upstream: `127.0.0.1:${fake.port}`, json_rate_stanzas: 0, json_rate_bytes: 0,
  });
}, { timeout: 60000 });

after(async () => {
  await env?.stop();
}, { timeout: 60000 });

const FEATURES_BIND_SM = `<stream:features><bind xmlns='${NS.bind}'/>` +
  `<sm xmlns='urn:xmpp:sm:3'/></stream:features>`;

/** A logged-in upstream stream for dave: returns once mxgw has enabled stream management. */
async function loginUpstream(conn) {
  await conn.acceptLogin(env.certs.localhost, "dave@localhost/phone", FEATURES_BIND_SM);
  await conn.read(/<enable[^>]*\/>/);
  conn.write("<enabled xmlns='urn:xmpp:sm:3' id='fake-sm-1' resume='true' max='300'/>");
}

const ackH = async (conn) => Number((await conn.read(/<a xmlns=["']urn:xmpp:sm:3["'] h=["'](\d+)["']\/>/))[1]);

/**
 * Logs dave in through the fake upstream with a client of class Client (JsonSession, or
 * JsonClient, which answers the gateway's ack requests) and runs body(conn, c). The stream's
 * end is read only once body has finished reading: FakeConn has one reader.
 */
async function asDave(Client, body) {
  let ready;
  const upReady = new Promise((resolve) => {
    ready = resolve;
  });
  let bodyDone;
  const bodyFinished = new Promise((resolve) => {
    bodyDone = resolve;
  });
  const up = fake.expect(async (conn) => {
    await loginUpstream(conn);
    ready(conn);
    await bodyFinished;
    await conn.read(/<\/stream:stream>/);
  });
  const c = await Client.connect(gw.wsUrl);
  try {
    c.send({ op: "login", jid: "dave@localhost", password: "any", resource: "phone" });
    const s = await c.next((o) => o.op === "session" || o.op === "error", "the login answer");
    assert.equal(s.op, "session", JSON.stringify(s));
    await body(await upReady, c);
  } finally {
    bodyDone();
    c.send({ op: "logout" });
    await up.done;
    c.close();
  }
}

test("the server's <r/> is answered with the client's ack when it comes, and anyway when it " +
  "does not", { timeout: 60000 }, guarded(() => env, () => asDave(JsonSession, async (conn, c) => {
  // 1. A stanza and a request at once: when the request arrives nothing is acked yet. The
  //    answer reports the client's ack once it has come (unless a second went by first, in
  //    which case it may say 0: waiting longer is not allowed).
  const asked = Date.now();
  conn.write("<message from='bob@localhost/x' to='dave@localhost/phone' type='chat' id='m1'>" +
    "<body>one</body></message><r xmlns='urn:xmpp:sm:3'/>");
  const m1 = await c.next((o) => o.b === "one", "the first message");
  assert.equal(m1.id, "m1");
  c.send({ op: "a", h: 1 });
  const first = await ackH(conn);
  assert.ok(first === 1 || (first === 0 && Date.now() - asked >= 900),
    `the answer waits for the client's ack rather than saying 0 at once (got h=${first})`);
  if (first === 0) assert.equal(await ackH(conn), 1, "the ack follows");

  // 2. A request with nothing new to report, and no ack from the client: still answered.
  conn.write("<message from='bob@localhost/x' to='dave@localhost/phone' type='chat' id='m2'>" +
    "<body>two</body></message><r xmlns='urn:xmpp:sm:3'/>");
  await c.next((o) => o.b === "two", "the second message");
  assert.equal(await ackH(conn), 1, "the request is answered although the client is silent");

  // 3. The client acks: the server hears of it without asking.
  c.send({ op: "a", h: 2 });
  assert.equal(await ackH(conn), 2, "an ack from the client is passed on at once");
})));

test("a thousand stanzas in one write from the server reach the client whole, once each and in " +
  "order", { timeout: 90000 }, guarded(() => env, () => asDave(JsonClient, async (conn, c) => {
  // One read of the server holds dozens of stanzas for the client and the iteration that
  // handles them runs long: its frames leave in several writes (web/ws.c writes the waiting
  // batches once they have waited long enough), and the window pauses the reading on the way.
  const N = 1000;
  let burst = "";
  for (let i = 0; i < N; i++) {
    burst += `<message from='bob@localhost/x' to='dave@localhost/phone' type='chat' id='b${i}'>` +
      `<body>burst ${i} ${"y".repeat(i % 89)}</body></message>`;
  }
  conn.write(burst);
  for (let i = 0; i < N; i++) {
    const o = await c.next((x) => typeof x.id === "string" && /^b\d+$/.test(x.id), `burst message ${i}`, 20000);
    assert.equal(o.id, `b${i}`, "the next message of the burst, in order");
    assert.equal(o.b, `burst ${i} ${"y".repeat(i % 89)}`);
  }
  assert.equal(c.all.filter((x) => typeof x.id === "string" && /^b\d+$/.test(x.id)).length, N, "each once");
})));

test("a thousand stanzas sent at once by the client reach the server whole, once each and in " +
  "order", { timeout: 90000 }, guarded(() => env, () => asDave(JsonClient, async (conn, c) => {
  // The client's frames are read in long iterations, each queueing many stanzas for the
  // stream: xmpp/upstream.c writes the queue before the iteration ends once it has waited
  // long enough, and must neither lose nor repeat nor reorder anything doing so (through TLS
  // here: the fake upstream does STARTTLS).
  const N = 1000;
  const body = (i) => `up ${i} ${"z".repeat(i % 97)}`;
  for (let i = 0; i < N; i++) c.send({ to: "bob@localhost", id: `u${i}`, b: body(i) });
  // mxgw keeps what the server has not acked for resumption and asks for acks (<r/>) as it
  // goes: answered here as a server would, with the count of stanzas handled.
  const next = /<message\b[^>]*>.*?<\/message>|<r xmlns=["']urn:xmpp:sm:3["']\/>/s;
  for (let i = 0; i < N;) {
    const m = await conn.read(next, 20000);
    if (m[0].startsWith("<r")) {
      conn.write(`<a xmlns='urn:xmpp:sm:3' h='${i}'/>`);
      continue;
    }
    assert.equal(/\bid=["']([^"']*)["']/.exec(m[0])?.[1], `u${i}`, "the next stanza, in order");
    assert.ok(m[0].includes(`<body>${body(i)}</body>`), `stanza u${i} whole: ${m[0]}`);
    i++;
  }
  const sent = conn.received.match(/<message\b/g).length;
  assert.equal(sent, N, "each once");
})));
