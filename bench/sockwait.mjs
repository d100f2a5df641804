// How long what arrives for the process in mxgw's place (mxgw, or the null relay) waits in its
// sockets before that process reads it, for bench/run --socket-wait. mxgw's own clock
// (mxgw_forward_seconds) starts at its read, so this is the part of the latency a gateway adds
// that the clock leaves out. While the process runs, it is the rest of the loop iteration; while
// it sleeps, the time the kernel takes to schedule it, which on cores shared with busy
// processes can be most of it.
//
// Measured with two of the kernel's tracepoints, through perf (root, or perf_event_paranoid
// at -1 or lower): tcp:tcp_probe fires when a segment with data reaches the receiving socket (on
// loopback, inside the sender's system call), with the socket's ports and the address of the
// buffer that holds the data; skb:skb_copy_datagram_iovec fires when a read copies from a
// buffer. The wait is the time between the two for the same buffer, and it counts once per byte
// copied, so that a read of many queued messages weighs as much as those messages, and a small
// ack little. TCP appends later segments to a buffer still queued; a copy from it counts every
// byte with the oldest bytes' wait, so the figures err high.

import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import readline from "node:readline";
import { histogramOf } from "./histogram.mjs";

// Bucket bounds (µs): 10 µs apart up to 1 ms, 50 µs up to 3 ms, 250 µs up to 10 ms, then coarse.
export const WAIT_BOUNDS_US = [
  ...Array.from({ length: 100 }, (_, i) => 10 * (i + 1)),
  ...Array.from({ length: 40 }, (_, i) => 1000 + 50 * (i + 1)),
  ...Array.from({ length: 28 }, (_, i) => 3000 + 250 * (i + 1)),
  20000, 50000, 100000, 200000, 500000, 1000000,
];

// null when perf can trace both events system-wide here, else why not.
export function socketWaitUnavailable(dir) {
  const out = `${dir}/perf-probe.data`;
  const r = spawnSync("perf", ["record", "-q", "-a", "-o", out, "-e", "tcp:tcp_probe",
    "-e", "skb:skb_copy_datagram_iovec", "--", "true"],
    { stdio: ["ignore", "ignore", "pipe"], encoding: "utf8" });
  fs.rmSync(out, { force: true });
  if (r.error) return `perf not available (${r.error.code})`;
  if (r.status !== 0) return `perf cannot trace here: ${(r.stderr || "").trim().split("\n")[0] || `exit ${r.status}`}`;
  return null;
}

// Reads `perf script -F time,event,trace` lines. side(srcPort, destPort) names the socket a
// segment arrived at ("client": the process's listening port; "server": its connections to the
// server), or null for any other socket; reads are only the traced process's (the record's
// filter). waits() gives the samples by side: each copy's wait in µs and its bytes.
export function waitParser(side) {
  const arrived = new Map(); // buffer address -> [time in µs, side]
  const samples = { client: { us: [], bytes: [] }, server: { us: [], bytes: [] } };
  const probe = /^\s*([\d.]+):\s+tcp:tcp_probe:.* src=\S*:(\d+) dest=\S*:(\d+) .*\bskbaddr=(0x[0-9a-f]+)/;
  const copy = /^\s*([\d.]+):\s+skb:skb_copy_datagram_iovec:\s+skbaddr=(0x[0-9a-f]+) len=(\d+)/;
  return {
    line(l) {
      let m = copy.exec(l);
      if (m) {
        const a = arrived.get(m[2]);
        if (a) {
          samples[a[1]].us.push(Number(m[1]) * 1e6 - a[0]);
          samples[a[1]].bytes.push(Number(m[3]));
        }
        return;
      }
      m = probe.exec(l);
      if (!m) return;
      const s = side(Number(m[2]), Number(m[3]));
      // A buffer freed and reused for another socket's data is seen arriving again first.
      if (s) arrived.set(m[4], [Number(m[1]) * 1e6, s]);
      else arrived.delete(m[4]);
    },
    waits: () => samples,
  };
}

// Starts tracing reads by process pid of what arrives at its port listenPort (from clients) and
// from serverPort (the server). stop() ends it and resolves to { client, server } histograms
// (bench/histogram.mjs's form, µs, counted in bytes), or null when perf failed. Every segment with data is traced,
// whatever its socket: a buffer the process reads from another socket (Redis, say) may sit at an
// address that held a client's data before, and only its own arrival tells them apart.
export function startSocketWait({ pid, listenPort, serverPort, file }) {
  const perf = spawn("perf", ["record", "-q", "-a", "-o", file,
    "-e", "tcp:tcp_probe", "--filter", "data_len > 0",
    "-e", "skb:skb_copy_datagram_iovec", "--filter", `common_pid == ${pid}`],
  { stdio: ["ignore", "ignore", "pipe"] });
  let err = "";
  perf.stderr.on("data", (d) => (err += d));
  const exited = new Promise((resolve) => {
    perf.on("exit", (code, signal) => resolve({ code, signal }));
    perf.on("error", (e) => resolve({ code: -1, error: e }));
  });
  return {
    async stop() {
      perf.kill("SIGINT");
      const r = await exited;
      if (r.error || (r.code !== 0 && r.signal !== "SIGINT")) {
        process.stderr.write(`  socket wait: perf record failed (${r.error?.message || `exit ${r.code}`}): ${err.trim()}\n`);
        return null;
      }
      const parser = waitParser((src, dest) =>
        (src === listenPort ? "client" : dest === serverPort ? "server" : null));
      const script = spawn("perf", ["script", "-i", file, "-F", "time,event,trace", "--ns"],
        { stdio: ["ignore", "pipe", "ignore"] });
      for await (const l of readline.createInterface({ input: script.stdout })) parser.line(l);
      fs.rmSync(file, { force: true });
      const w = parser.waits();
      const hist = (x) => histogramOf(x.us, WAIT_BOUNDS_US, x.bytes);
      return { client: hist(w.client), server: hist(w.server) };
    },
  };
}
