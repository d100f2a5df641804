// The HTTP front end (web/http.c, libmicrohttpd on mxgw's loop): routing and path
// canonicalisation through the real server, CORS, size and time limits, connection limits,
// and the demo page. Raw TCP where an HTTP client library would refuse to send the input.
// Each test checks that mxgw still serves BOSH afterwards, with a session logged in before.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import { execFileSync } from "node:child_process";
import { Env, USERS, NS, xml, guarded, waitUntil, parseMetrics } from "./lib/env.mjs";
import { RawBosh, post, wrapper, payloads, terminalCondition, tcpConnect, readUntilClose } from "./lib/bosh.mjs";

let env;
let gw; // timeouts short enough to test, limits small enough to reach
let bob;
let carol; // a raw BOSH session on gw, logged in before the tests

const MAX_CONNECTIONS = 12;

before(async () => {
  env = await Env.start({ redis: false });
  gw = await env.startGateway({
    http_connection_timeout: "2s",
    http_max_connections: MAX_CONNECTIONS,
    http_max_connections_per_ip: 8,
    http_connections_per_daemon: 3, // the per-IP limit counts across daemons
    http_body_bytes: 65536,
    http_cors_origins: "http://app.example https://chat.example:8443",
    bosh_max_wait: "5s",
  });
  bob = await env.login({ service: env.prosody.tcpService, username: "bob", password: USERS.bob });
  carol = new RawBosh(gw.boshUrl);
  await carol.login("carol", USERS.carol);
}, { timeout: 60000 });

after(async () => {
  await carol?.terminate();
  await env?.stop();
}, { timeout: 60000 });

/** carol's session still works both ways: the daemon and the other sessions survived. */
async function checkBosh() {
  assert.ok(gw.running, "mxgw is still running");
  const text = `still here ${crypto.randomBytes(4).toString("hex")}`;
  const next = carol.request(`<message xmlns="${NS.client}" to="${bob.jid}" type="chat"><body>${text}</body></message>`);
  await bob.waitFor((s) => s.is("message") && s.getChildText("body") === text);
  const back = `and back ${crypto.randomBytes(4).toString("hex")}`;
  await bob.send(xml("message", { to: carol.jid, type: "chat" }, xml("body", {}, back)));
  const r = await next;
  assert.ok(payloads(r.el).some((e) => e.getChildText?.("body") === back), r.text);
}

function httpTest(name, fn) {
  test(name, { timeout: 45000 }, guarded(() => env, async () => {
    await fn();
    await checkBosh();
  }));
}

/** Sends raw bytes on a new connection; resolves with the status line and what came back. */
async function rawRequest(text, { port = gw.httpPort, timeoutMs = 10000 } = {}) {
  const s = await tcpConnect(port);
  s.write(text);
  const { data, closedBy } = await readUntilClose(s, timeoutMs);
  s.destroy();
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(data);
  return { status: status ? Number(status[1]) : null, data, closedBy };
}

httpTest("unknown paths get 404; non-canonical paths get 400 before routing", async () => {
  assert.equal((await fetch(`${gw.httpUrl}/nope`)).status, 404);
  assert.equal((await fetch(`${gw.httpUrl}/http-bindx`)).status, 404);
  for (const target of ["/%2e%2e/http-bind", "//http-bind", "/http-bind%2f", "/x/../http-bind",
    "/%u002e%u002e/http-bind", "/http-bind%00", "/%c0%ae%c0%ae/http-bind", "/a%5c..%5chttp-bind"]) {
    const r = await rawRequest(`GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    assert.equal(r.status, 400, `${target}: ${r.data.slice(0, 200)}`);
  }
  // A trailing slash names the same resource; so does a query string.
  const slash = await post(`${gw.boshUrl}/`, wrapper({ sid: "nosuch", rid: 5 }));
  assert.equal(terminalCondition(slash.el), "item-not-found", slash.text);
  const query = await fetch(`${gw.boshUrl}?x=%2F..`);
  assert.equal(query.status, 200);
});

httpTest("OPTIONS: CORS preflight for allowed origins, 403 for others, Allow without Origin",
  async () => {
    const ok = await fetch(gw.boshUrl, {
      method: "OPTIONS",
      headers: { Origin: "https://chat.example:8443", "Access-Control-Request-Method": "POST" },
    });
    assert.equal(ok.status, 204);
    assert.equal(ok.headers.get("access-control-allow-origin"), "https://chat.example:8443");
    assert.match(ok.headers.get("access-control-allow-methods"), /POST/);
    assert.equal(ok.headers.get("access-control-allow-headers"), "Content-Type");
    assert.ok(Number(ok.headers.get("access-control-max-age")) > 0);
    assert.equal(ok.headers.get("access-control-allow-credentials"), null, "never credentials");
    const bad = await fetch(gw.boshUrl, { method: "OPTIONS", headers: { Origin: "https://evil.example" } });
    assert.equal(bad.status, 403);
    assert.equal(bad.headers.get("access-control-allow-origin"), null);
    const plain = await fetch(gw.boshUrl, { method: "OPTIONS" });
    assert.equal(plain.status, 204);
    assert.equal(plain.headers.get("allow"), "GET, HEAD, POST, OPTIONS");
    // Actual requests: the allowed origin is echoed, others get no CORS header.
    const from = async (origin) => post(gw.boshUrl, wrapper({ sid: "nosuch", rid: 5 }), { headers: { Origin: origin } });
    const a = await from("http://app.example");
    assert.equal(a.headers.get("access-control-allow-origin"), "http://app.example");
    assert.match(a.headers.get("vary") ?? "", /Origin/);
    const b = await from("http://evil.example");
    assert.equal(b.headers.get("access-control-allow-origin"), null);
  });

test("without http_cors_origins no CORS header is sent at all", { timeout: 45000 },
  guarded(() => env, async () => {
    const g = await env.startGateway({});
    try {
      const r = await fetch(g.boshUrl, { method: "OPTIONS", headers: { Origin: "http://app.example" } });
      assert.equal(r.status, 403);
      const p = await post(g.boshUrl, wrapper({ sid: "nosuch", rid: 5 }), { headers: { Origin: "http://app.example" } });
      assert.equal(p.headers.get("access-control-allow-origin"), null);
    } finally {
      await g.stop();
    }
  }));

httpTest("a body over http_body_bytes gets 413 before it is read (Content-Length or chunked)",
  async () => {
    // Only the headers are sent: the answer must not wait for a body that never comes.
    const r = await rawRequest(`POST /http-bind HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n` +
      `Content-Type: text/xml\r\n\r\n`);
    assert.equal(r.status, 413, r.data.slice(0, 200));
    const s = await tcpConnect(gw.httpPort);
    s.write("POST /http-bind HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
    const chunk = "x".repeat(16384);
    for (let i = 0; i < 6; i++) s.write(`${chunk.length.toString(16)}\r\n${chunk}\r\n`);
    s.write("0\r\n\r\n");
    const { data } = await readUntilClose(s, 10000);
    s.destroy();
    assert.match(data, /^HTTP\/1\.1 413/, data.slice(0, 200));
  });

httpTest("a request with 7 KiB of headers (a big cookie) is served at the default connection memory",
  async () => {
    const r = await rawRequest(`GET /healthz HTTP/1.1\r\nHost: x\r\nCookie: s=${"a".repeat(7168)}\r\n` +
      "Connection: close\r\n\r\n");
    assert.equal(r.status, 200, r.data.slice(0, 200));
  });

httpTest("headers larger than the connection's memory are refused", async () => {
  const r = await rawRequest(`GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(40000)}\r\n\r\n`);
  assert.ok(r.status === 431 || r.status === 413 || r.status === 400 || r.closedBy,
    `expected a refusal, got ${r.data.slice(0, 200)}`);
  assert.notEqual(r.status, 200);
});

httpTest("slow headers and a body that never ends are cut off by http_connection_timeout",
  async () => {
    const slow = await tcpConnect(gw.httpPort);
    slow.write("POST /http-bind HTTP/1.1\r\nHost: x\r\n"); // and never the rest
    const stuck = await tcpConnect(gw.httpPort);
    stuck.write("POST /http-bind HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n<body");
    const [a, b] = await Promise.all([readUntilClose(slow, 20000), readUntilClose(stuck, 20000)]);
    assert.ok(a.closedBy, "mxgw closed the connection with slow headers");
    assert.ok(b.closedBy, "mxgw closed the connection with an unfinished body");
    slow.destroy();
    stuck.destroy();
  });

httpTest("held BOSH requests are not idle connections: they outlive http_connection_timeout",
  async () => {
    // carol's next request is held up to wait = 5 s, longer than the 2 s connection timeout.
    const started = Date.now();
    const r = await carol.request("");
    assert.equal(r.status, 200);
    assert.equal(terminalCondition(r.el), undefined, r.text);
    assert.ok(Date.now() - started >= 4000, "it was held for 'wait', not cut at the timeout");
  });

/** GET path over a new connection from localAddress; resolves with the raw answer. */
async function getFrom(port, localAddress, path = "/demo/config.json") {
  const s = await new Promise((resolve, reject) => {
    const c = net.connect({ port, host: "127.0.0.1", localAddress });
    c.once("connect", () => resolve(c));
    c.once("error", reject);
  });
  s.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
  const r = await readUntilClose(s, 10000);
  s.destroy();
  return r;
}

httpTest("too many connections from one address: the extra ones are closed, other addresses " +
  "and later connections are served", async () => {
  const conns = [];
  try {
    // Fill 127.0.0.2's share (http_max_connections_per_ip = 8).
    for (let i = 0; i < 8; i++) {
      conns.push(await new Promise((resolve, reject) => {
        const c = net.connect({ port: gw.httpPort, host: "127.0.0.1", localAddress: "127.0.0.2" });
        c.once("connect", () => resolve(c));
        c.once("error", reject);
      }));
    }
    const refused = await getFrom(gw.httpPort, "127.0.0.2");
    assert.ok(refused.closedBy && !/^HTTP\/1\.1 200/.test(refused.data),
      `the connection over the per-IP limit was refused: ${JSON.stringify(refused)}`);
    const m = parseMetrics(await (await fetch(`${gw.httpUrl}/metrics`)).text());
    assert.ok(m['mxgw_http_refused_total{reason="per_ip"}'] >= 1, "the refusal is counted");
    // Another address is not affected by 127.0.0.2's count.
    const other = await getFrom(gw.httpPort, "127.0.0.3");
    assert.match(other.data, /^HTTP\/1\.1 200/, "from 127.0.0.3");
  } finally {
    for (const c of conns) c.destroy();
  }
  await waitUntil(async () => /^HTTP\/1\.1 200/.test((await getFrom(gw.httpPort, "127.0.0.2")).data),
    { what: "service after the connections closed" });
});

test("at the total connection limit new connections wait unaccepted until one closes",
  { timeout: 45000 }, guarded(() => env, async () => {
    // One connection per daemon: the limit counts the connections of all daemons together.
    const g = await env.startGateway({
      http_max_connections: 4, http_max_connections_per_ip: 4, http_connections_per_daemon: 1,
    });
    const conns = [];
    try {
      for (let i = 0; i < 4; i++) conns.push(await tcpConnect(g.httpPort));
      // From another address, so the per-IP limit plays no part.
      const waiting = await new Promise((resolve, reject) => {
        const c = net.connect({ port: g.httpPort, host: "127.0.0.1", localAddress: "127.0.0.4" });
        c.once("connect", () => resolve(c));
        c.once("error", reject);
      });
      waiting.write("GET /demo/config.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
      const answer = readUntilClose(waiting, 20000);
      const early = await Promise.race([answer, new Promise((r) => setTimeout(() => r(null), 1500))]);
      assert.equal(early, null, `no answer while the limit is reached: ${JSON.stringify(early)}`);
      for (const c of conns.splice(0)) c.destroy();
      const r = await answer;
      assert.match(r.data, /^HTTP\/1\.1 200/, "served once a connection closed");
      waiting.destroy();
    } finally {
      for (const c of conns) c.destroy();
      await g.stop();
    }
  }));

test("connections spread over several libmicrohttpd daemons, and BOSH works across them", { timeout: 60000 }, guarded(() => env, async () => {
  const g = await env.startGateway({ http_connections_per_daemon: 2, bosh_max_wait: "5s" });
  const sessions = [];
  try {
    const alice = new RawBosh(g.boshUrl);
    await alice.login("alice", USERS.alice);
    const carol2 = new RawBosh(g.boshUrl);
    await carol2.login("carol", USERS.carol);
    sessions.push(alice, carol2);
    // Three more sessions, each holding a request on a connection of its own.
    const held = [];
    for (let i = 0; i < 3; i++) {
      const r = new RawBosh(g.boshUrl);
      await r.create();
      sessions.push(r);
      held.push(r.request(""));
    }
    await waitUntil(async () => {
      const m = parseMetrics(await (await fetch(`${g.httpUrl}/metrics`)).text());
      return m.mxgw_http_daemons >= 2 && m.mxgw_http_connections >= 4;
    }, { what: "the held requests' connections counted in several daemons" });
    // Messages both ways while those requests are held. Each message goes out in a request
    // that is then held for the answer coming back.
    let waiting = alice.request("");
    const sent = [];
    for (let i = 0; i < 4; i++) {
      const text = `across daemons ${i} ${crypto.randomBytes(4).toString("hex")}`;
      const [from, to] = i % 2 ? [alice, carol2] : [carol2, alice];
      const next = from.request(`<message xmlns="${NS.client}" to="${to.jid}" type="chat"><body>${text}</body></message>`);
      const r = await waiting;
      assert.ok(payloads(r.el).some((e) => e.getChildText?.("body") === text), r.text);
      waiting = next;
    }
    sent.push(waiting);
    for (const r of await Promise.all([...held, ...sent])) {
      assert.equal(r.status, 200, r.text);
      assert.equal(terminalCondition(r.el), undefined, r.text);
    }
    const m = parseMetrics(await (await fetch(`${g.httpUrl}/metrics`)).text());
    assert.ok(m.mxgw_http_daemons >= 3, `daemons started as connections arrived: ${m.mxgw_http_daemons}`);
  } finally {
    for (const r of sessions) await r.terminate().catch(() => {});
    await g.stop();
  }
}));

test("out of file descriptors, mxgw pauses accepting instead of spinning, and serves the " +
  "connections waiting in the backlog once it has descriptors again", { timeout: 45000 },
guarded(() => env, async () => {
  const g = await env.startGateway({});
  const pid = String(g.child.proc.pid); // setpriv execs mxgw: the same process
  const limit = execFileSync("prlimit", ["--pid", pid, "--nofile", "--raw", "--noheadings",
    "--output=SOFT,HARD"]).toString().trim().split(/\s+/);
  const failures = () => (g.log().match(/event=http\.accept_failed /g) || []).length;
  const conns = [];
  try {
    const open = fs.readdirSync(`/proc/${pid}/fd`).length;
    execFileSync("prlimit", ["--pid", pid, `--nofile=${open + 2}:${limit[1]}`]);
    for (let i = 0; i < 6; i++) conns.push(await tcpConnect(g.httpPort));
    await waitUntil(() => failures() > 0, { what: "accept() to fail for want of descriptors" });
    // It retries every 100 ms rather than spinning on a listener that stays readable.
    const before = failures();
    await new Promise((r) => setTimeout(r, 1000));
    const during = failures() - before;
    assert.ok(during <= 30, `${during} failed accepts in 1 s`);
    assert.ok(g.running, "mxgw is still running");
    const last = conns[conns.length - 1];
    last.write("GET /demo/config.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    const answer = readUntilClose(last, 20000);
    execFileSync("prlimit", ["--pid", pid, `--nofile=${limit[0]}:${limit[1]}`]);
    assert.match((await answer).data, /^HTTP\/1\.1 200/, "served once descriptors were free");
  } finally {
    for (const c of conns) c.destroy();
    await g.stop();
  }
}));

httpTest("the demo page and its library are served by mxgw itself", async () => {
  const page = await fetch(`${gw.httpUrl}/`);
  assert.equal(page.status, 200);
  assert.match(page.headers.get("content-type"), /^text\/html/);
  assert.match(page.headers.get("content-security-policy"), /default-src 'self'/);
  const html = await page.text();
  assert.match(html, /<script src="\/demo\/strophe\.umd\.min\.js">/);
  const lib = await fetch(`${gw.httpUrl}/demo/strophe.umd.min.js`);
  assert.equal(lib.status, 200);
  assert.match(lib.headers.get("content-type"), /^text\/javascript/);
  assert.match(await lib.text(), /http:\/\/jabber\.org\/protocol\/httpbind/, "it is Strophe.js");
  const cfg = await (await fetch(`${gw.httpUrl}/demo/config.json`)).json();
  assert.equal(cfg.bosh, "/http-bind");
  assert.equal(cfg.websocket, `ws://127.0.0.1:${gw.wsPort}/xmpp-websocket`);
  assert.equal((await fetch(`${gw.httpUrl}/demo/nothing.js`)).status, 404);
  assert.equal((await fetch(`${gw.httpUrl}/`, { method: "POST", body: "x" })).status, 405);
});

httpTest("many held requests at once cost nothing to the others", async () => {
  const sessions = [];
  for (let i = 0; i < 4; i++) {
    const r = new RawBosh(gw.boshUrl);
    await r.create({ wait: 5 });
    sessions.push(r);
  }
  const held = sessions.map((r) => r.request(""));
  for (let i = 0; i < 10; i++) {
    assert.equal((await fetch(`${gw.httpUrl}/demo/config.json`)).status, 200);
  }
  for (const r of await Promise.all(held)) assert.equal(terminalCondition(r.el), undefined, r.text);
  for (const r of sessions) await r.terminate();
});
