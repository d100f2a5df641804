// Run: cd tests/integration && npm ci && MXGW_BIN=../../build/mxgw N=300 node ../../bench/mem-probe.mjs
// Measures mxgw's resident memory per idle RFC 7395 session (logged in and bound), with the
// upstream stream over TLS as the harness configures it. Not a test: prints figures.
import { Env, RawWs, USERS } from "../tests/integration/lib/env.mjs";
import fs from "node:fs";

const N = Number(process.env.N || 300);
const rss = (pid) => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))[1]);
const env = await Env.start();
try {
  const gw = await env.startGateway({ log_level: "warn", limit_sessions_per_ip: N + 10 });
  const pid = gw.child.proc.pid;
  const clients = [];
  const warm = await RawWs.connect(gw.wsUrl);
  await warm.login("alice", USERS.alice);
  clients.push(warm);
  const before = rss(pid);
  for (let i = 0; i < N; i++) {
    const c = await RawWs.connect(gw.wsUrl);
    await c.login("alice", USERS.alice);
    clients.push(c);
  }
  await new Promise((r) => setTimeout(r, 500));
  const after = rss(pid);
  console.log(`mxgw RSS: ${before} KiB with 1 session, ${after} KiB with ${N + 1}: ` +
    `${((after - before) / N).toFixed(1)} KiB per idle session (TLS upstream)`);
  for (const c of clients) c.close();
} finally {
  await env.stop();
}
