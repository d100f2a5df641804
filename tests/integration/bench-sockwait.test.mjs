// bench/sockwait.mjs: the wait in a gateway's sockets before it reads, traced with perf, for
// bench/run --socket-wait. The parser must pair each read with its own buffer's arrival, keep
// the two sides apart, and not take another socket's buffer at a reused address for one of
// them; and traced for real, a read held back for a known time must show that wait.

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { socketWaitUnavailable, startSocketWait, waitParser } from "../../bench/sockwait.mjs";

const LISTEN = 5290;
const SERVER = 5222;
const side = (src, dest) => (src === LISTEN ? "client" : dest === SERVER ? "server" : null);
const probe = (t, src, dest, skb) =>
  `${t}: tcp:tcp_probe: family=AF_INET src=127.0.0.1:${src} dest=127.0.0.2:${dest} mark=0 data_len=40 ` +
  `snd_nxt=0x1 snd_una=0x1 snd_cwnd=10 ssthresh=2147483647 snd_wnd=65536 srtt=20 rcv_wnd=65536 sock_cookie=1 ` +
  `skbaddr=${skb} skaddr=0xffff888100000000`;
const copy = (t, skb, len = 40) => `${t}: skb:skb_copy_datagram_iovec: skbaddr=${skb} len=${len}`;

test("waitParser pairs each read with its buffer's arrival, by side", () => {
  const p = waitParser(side);
  const lines = [
    probe("100.000100000", LISTEN, 40001, "0xa1"), // a client's frame
    probe("100.000200000", 40002, SERVER, "0xb1"), // the server's stanza
    copy("100.000350000", "0xa1"), // read 250 µs after it arrived
    copy("100.001200000", "0xb1"), // 1,000 µs
    // A later segment appended to a buffer still queued arrives in a buffer of its own, which
    // TCP then frees: the read copies the first buffer, so its wait is the oldest bytes'.
    probe("100.002000000", LISTEN, 40001, "0xa2"),
    probe("100.002500000", LISTEN, 40001, "0xa3"),
    copy("100.003000000", "0xa2"),
    // A read that takes part of a buffer, and one that takes the rest later: both waited from
    // its arrival.
    probe("100.004000000", 40002, SERVER, "0xb2"),
    copy("100.004010000", "0xb2", 1000),
    copy("100.004090000", "0xb2", 7),
    // A buffer at an address a client's data used before, now holding Redis's reply: not a
    // client's wait.
    probe("100.005000000", 40003, 6379, "0xa1"),
    copy("100.005500000", "0xa1"),
    // A read of a buffer whose arrival was not traced counts for nothing.
    copy("100.006000000", "0xc9"),
    "unrelated line",
  ];
  for (const l of lines) p.line(l);
  const w = p.waits();
  const round = (xs) => xs.map((x) => Math.round(x));
  assert.deepEqual(round(w.client.us), [250, 1000]);
  assert.deepEqual(w.client.bytes, [40, 40]);
  assert.deepEqual(round(w.server.us), [1000, 10, 90]);
  assert.deepEqual(w.server.bytes, [40, 1000, 7], "each wait counts the bytes its read copied");
});

// A process (the child) with a socket from its listening port and a connection to a "server"
// port, neither read until told: then each is read a known time later.
const CHILD = `
const net = require("node:net");
const [serverPort, clientDelay, serverDelay] = process.argv.slice(1).map(Number);
let client = null;
const srv = net.createServer({ pauseOnConnect: true }, (s) => {
  client = s;
  s.on("data", () => { s.destroy(); srv.close(); });
});
srv.listen(0, "127.0.0.1", () => {
  const up = net.connect(serverPort, "127.0.0.1");
  up.pause();
  up.on("data", () => up.destroy());
  process.stdin.once("data", () => {
    setTimeout(() => client.resume(), clientDelay);
    setTimeout(() => up.resume(), serverDelay);
    process.stdin.destroy();
  });
  process.stdout.write(srv.address().port + "\\n");
});
`;

test("startSocketWait measures a read held back for a known time", { timeout: 60000 }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mxgw-sockwait-"));
  const why = socketWaitUnavailable(dir);
  if (why) {
    t.skip(why);
    return;
  }
  const server = net.createServer();
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const serverPort = server.address().port;
  const child = spawn(process.execPath, ["-e", CHILD, String(serverPort), "300", "150"],
    { stdio: ["pipe", "pipe", "inherit"] });
  try {
    const listenPort = await new Promise((resolve) => child.stdout.once("data", (d) => resolve(Number(d))));
    const upstream = new Promise((r) => server.once("connection", r));
    const tracer = startSocketWait({ pid: child.pid, listenPort, serverPort, file: path.join(dir, "t.data") });
    await new Promise((r) => setTimeout(r, 1500)); // perf is tracing
    const up = await upstream;
    up.write("stanza from the server");
    const c = net.connect(listenPort, "127.0.0.1");
    await new Promise((r) => c.once("connect", r));
    c.write("frame from a client");
    await new Promise((r) => setTimeout(r, 50)); // both wait in the child's sockets
    child.stdin.write("go\n");
    await new Promise((r) => child.once("exit", r));
    const w = await tracer.stop();
    assert.ok(w, "perf traced");
    assert.equal(w.client.n, "frame from a client".length, "the client's bytes, read once");
    assert.equal(w.server.n, "stanza from the server".length, "the server's bytes, read once");
    // The one read's bucket: at least the delay (timers fire late, never early), and not far
    // past it.
    const at = (h) => h.cum.find(([, n]) => n === h.n)[0];
    assert.ok(at(w.client) >= 300000 && at(w.client) <= 1000000, `client wait ${at(w.client)} µs`);
    assert.ok(at(w.server) >= 150000 && at(w.server) <= 1000000, `server wait ${at(w.server)} µs`);
    c.destroy();
  } finally {
    child.kill();
    server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
