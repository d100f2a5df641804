// The benchmark run (bench/run wraps it): starts Redis, then for each setup a fresh Prosody
// (and a fresh mxgw where the setup has one), runs the driver (mxgw-bench) against it, and
// prints one table, the mxgw/Prosody ratios and every budget with PASS or MISS (the CPU budgets
// at the fixed rate and at saturation).
//
// Setups, in this order, in one run:
//   prosody-ws    RFC 7395 clients on Prosody's own mod_websocket
//   prosody-bosh  BOSH clients on Prosody's own mod_bosh
//   relay-ws      RFC 7395 clients on mod_websocket through a null byte relay in mxgw's place
//                 (bench/relay.c): the floor, what any process there costs per message
//   mxgw-xmpp     RFC 7395 clients on mxgw, mxgw on Prosody's c2s port
//   mxgw-json     JSON-protocol clients on mxgw (mxgw logs in upstream for them)
//   mxgw-bosh     BOSH clients on mxgw's /http-bind, when this build serves it
//   capacity      mxgw-json again with --capacity sessions (100,000 by default)
// The fixed rate is half of what prosody-ws sustained at saturation (BOSH setups: half of
// prosody-bosh's), so every WebSocket setup is offered the same load.
//
// Options: --quick (CI: a few hundred sessions, a few seconds; nothing asserted),
// --sessions N, --capacity N (0: skip), --pairs P, --saturate S, --duration S, --body-len L,
// --no-aliases (JSON clients write JIDs out instead of using aliases),
// --prosody-config LINE (a global Prosody option, for experiments), --hold S (keep sessions S seconds after measuring, for inspection), --rate R (fixed rate instead of half of saturation), --only a,b (setups), --json FILE (all results), --markdown FILE (the tables),
// --socket-wait (trace with perf how long data waits in the sockets of mxgw or the relay before
// it reads, over the fixed-rate phase: the part of the latency mxgw adds that its own clock
// leaves out; bench/sockwait.mjs).
// Environment: MXGW_BIN (default build/mxgw), MXGW_BENCH_BIN (build/bench/mxgw-bench).
// Not a test: it asserts nothing about figures; it fails only when a setup cannot run at all.

import { spawn, execFileSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {
  Child, Redis, freePort, waitForPort, REPO_ROOT, delay,
} from "../tests/integration/lib/env.mjs";
import { phaseHistogram, quantiles, sumBound } from "./histogram.mjs";
import { socketWaitUnavailable, startSocketWait } from "./sockwait.mjs";

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : def;
};
const QUICK = args.includes("--quick");
// Every process started here inherits this shell's open-file limit (bench/run raised the soft
// limit to the hard one). mxgw holds two descriptors per session (client and upstream),
// Prosody and the driver one: the limit caps what one process can hold.
const FD_LIMIT = Number(execFileSync("sh", ["-c", "ulimit -n"]).toString().trim()) || 1024;
const FD_SESSIONS = Math.floor((FD_LIMIT - 300) / 2);
const N = Number(opt("sessions", QUICK ? 200 : Math.min(10000, FD_SESSIONS)));
const CAPACITY_WANTED = Number(opt("capacity", QUICK ? 0 : 100000));
const CAPACITY = Math.min(CAPACITY_WANTED, FD_SESSIONS);
const PAIRS = Number(opt("pairs", QUICK ? 20 : 100));
const SATURATE = Number(opt("saturate", QUICK ? 2 : 10));
const DURATION = Number(opt("duration", QUICK ? 2 : 20));
const BODY_LEN = Number(opt("body-len", 32));
const FIXED_RATE = Number(opt("rate", 0)); // overrides the rate derived from saturation
// JSON clients turn JID aliases on and address their peer by its number, as a mobile client
// written for mxgw does (docs/json-protocol.md, "Aliases"); --no-aliases writes every JID out.
const ALIASES = !args.includes("--no-aliases");
const JSON_ARGS = ALIASES ? ["--json-aliases"] : [];
const ONLY = opt("only", "") ? opt("only", "").split(",") : null;
const JSON_OUT = opt("json", "");
const MD_OUT = opt("markdown", "");
const MXGW_BIN = process.env.MXGW_BIN || path.join(REPO_ROOT, "build", "mxgw");
const DRIVER = process.env.MXGW_BENCH_BIN || path.join(REPO_ROOT, "build", "bench", "mxgw-bench");
const RELAY = process.env.MXGW_BENCH_RELAY || path.join(path.dirname(DRIVER), "mxgw-bench-relay");
const DOMAIN = "localhost";
const PASSWORD = crypto.randomBytes(9).toString("base64url");
const asRoot = process.getuid?.() === 0;

// Past ~28k connections to one server port, one source address runs out of ports: the driver
// binds its sockets to 127.0.0.2-6 in turn and mxgw its upstream sockets to 127.0.0.7-11
// (upstream_source). Always on, so that every run, the CI one included, exercises it.
// --no-sources turns it off (for comparing with a build that predates upstream_source).
const NO_SOURCES = args.includes("--no-sources");
const DRIVER_SOURCES = NO_SOURCES ? [] : ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6"];
const UPSTREAM_SOURCES = NO_SOURCES ? "" : "127.0.0.7,127.0.0.8,127.0.0.9,127.0.0.10,127.0.0.11";

for (const f of [MXGW_BIN, DRIVER, RELAY]) {
  if (!fs.existsSync(f)) {
    console.error(`bench: ${f} not found (run scripts/build)`);
    process.exit(2);
  }
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mxgw-bench-"));
fs.chmodSync(dir, 0o755);
const log = (...a) => console.log(...a);
// --socket-wait needs perf's tracepoints; without them the run goes on and says why not.
const SOCKET_WAIT = args.includes("--socket-wait");
const socketWaitWhyNot = SOCKET_WAIT ? socketWaitUnavailable(dir) : null;

// ---- Prosody: plain-password accounts as files, no TLS on loopback, warn-level logging ----

const maxUsers = Math.max(N, CAPACITY);
const pdir = path.join(dir, "prosody");
const accounts = path.join(pdir, "data", "localhost", "accounts");
fs.mkdirSync(accounts, { recursive: true });
const account = `return {\n\t["password"] = ${JSON.stringify(PASSWORD)};\n};\n`;
for (let i = 0; i < maxUsers; i++) fs.writeFileSync(path.join(accounts, `b${i}.dat`), account);

async function startProsody(tag) {
  const c2sPort = await freePort();
  const httpPort = await freePort();
  const conf = path.join(pdir, "prosody.cfg.lua");
  const L = JSON.stringify;
  fs.writeFileSync(conf, `-- Generated by mxgw bench/run.mjs
daemonize = false
pidfile = ${L(path.join(pdir, "prosody.pid"))}
data_path = ${L(path.join(pdir, "data"))}
log = { { levels = { min = "warn" }, to = "file", filename = ${L(path.join(pdir, `prosody-${tag}.log`))} } }
interfaces = { "127.0.0.1" }
local_interfaces = { "127.0.0.1" }
c2s_ports = { ${c2sPort} }
c2s_interfaces = { "127.0.0.1" }
c2s_direct_tls_ports = { }
component_ports = { }
s2s_ports = { }
http_ports = { ${httpPort} }
http_interfaces = { "127.0.0.1" }
https_ports = { }
https_interfaces = { }
authentication = "internal_plain"
storage = "internal"
allow_registration = false
-- Loopback benchmark: no TLS anywhere, so only XMPP and HTTP work is measured.
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
consider_websocket_secure = true
consider_bosh_secure = true
cross_domain_websocket = true
cross_domain_bosh = true
modules_enabled = { "roster"; "saslauth"; "disco"; "smacks"; "websocket"; "bosh"; "http"; }
modules_disabled = { "s2s"; "offline"; }
${PROSODY_EXTRA}
VirtualHost "localhost"
`);
  if (asRoot) execFileSync("chown", ["-R", "prosody:prosody", pdir]);
  const child = new Child("prosody", "prosody", ["--config", conf, "-F"], {
    logFile: path.join(pdir, `stdout-${tag}.log`), user: "prosody", cwd: pdir,
  });
  await waitForPort(c2sPort, { child, timeoutMs: 60000 });
  await waitForPort(httpPort, { child, timeoutMs: 60000 });
  return { child, c2sPort, httpPort };
}

// ---- mxgw ----

// The BOSH listener key, if this build has one: the key whose documented default is
// 127.0.0.1:5280 (ARCHITECTURE.md's HTTP default). Without it, mxgw's default URL is probed.
function httpListenKey() {
  const ex = fs.readFileSync(path.join(REPO_ROOT, "mxgw.conf.example"), "utf8");
  return /^(\w+)\s*=\s*127\.0\.0\.1:5280\s*$/m.exec(ex)?.[1] || null;
}

async function startMxgw(tag, prosody, redis, sessions) {
  const wsPort = await freePort();
  const httpKey = httpListenKey();
  const httpPort = httpKey ? await freePort() : 5280;
  const cfg = {
    ws_listen: `127.0.0.1:${wsPort}`,
    ws_path: "/xmpp-websocket",
    upstream: `127.0.0.1:${prosody.c2sPort}`,
    upstream_tls: "off",
    upstream_connect_timeout: "60s",
    redis: redis.url,
    node_id: `bench-${tag}`,
    limit_sessions_per_ip: 10000000,
    limit_sessions: Math.min(10000000, sessions + 1000),
    // BOSH clients hold two HTTP connections each (hold='1'), all from five source addresses.
    http_max_connections: Math.min(1000000, 2 * sessions + 1000),
    http_max_connections_per_ip: Math.min(1000000, 2 * sessions + 1000),
    preauth_timeout: "300s",
    // No JSON client rate limits (0: none). The pairs carry the traffic of many users between
    // them (CI's 20 pairs send hundreds of messages a second each), so a limit would measure
    // mxgw's pacing (reads paused), not its cost.
    json_rate_stanzas: 0,
    json_rate_bytes: 0,
    shutdown_timeout: "5s",
    log_level: "warn",
    log_file: path.join(dir, `mxgw-${tag}.log`),
  };
  if (UPSTREAM_SOURCES) cfg.upstream_source = UPSTREAM_SOURCES;
  if (httpKey) cfg[httpKey] = `127.0.0.1:${httpPort}`;
  for (const line of MXGW_EXTRA) {
    const m = /^\s*(\w+)\s*=\s*(.*?)\s*$/.exec(line);
    if (!m) throw new Error(`--mxgw-config: expected 'key = value', got '${line}'`);
    cfg[m[1]] = m[2];
  }
  const confFile = path.join(dir, `mxgw-${tag}.conf`);
  fs.writeFileSync(confFile, Object.entries(cfg).map(([k, v]) => `${k} = ${v}`).join("\n") + "\n");
  const child = new Child("mxgw", MXGW_BIN, ["-c", confFile], {
    logFile: path.join(dir, `mxgw-${tag}.out`),
    env: { ASAN_OPTIONS: process.env.ASAN_OPTIONS || "detect_leaks=1:halt_on_error=1" },
  });
  await waitForPort(wsPort, { child, timeoutMs: 30000 });
  return { child, wsUrl: `ws://127.0.0.1:${wsPort}/xmpp-websocket`, boshUrl: `http://127.0.0.1:${httpPort}/http-bind`,
    metricsUrl: `http://127.0.0.1:${httpPort}/metrics` };
}

// ---- the driver ----

// mxgw's histograms of the time from reading a message to handing what it caused to the kernel
// (mxgw_forward_seconds), and of its loop's lag, read from /metrics at the start and the end of
// the fixed-rate phase: the difference is that phase's.
async function scrapeMetrics(url) {
  try {
    const r = await fetch(url);
    return r.ok ? await r.text() : null;
  } catch {
    return null;
  }
}

// wait: { pid, listenPort, serverPort } of the process in mxgw's place, whose sockets
// --socket-wait traces over the fixed-rate phase (bench/sockwait.mjs).
function drive(proto, url, pids, extra = [], metricsUrl = null, wait = null) {
  const a = ["--proto", proto, "--url", url, "--domain", DOMAIN, "--users", "b",
    "--body-len", String(BODY_LEN), "--pairs", String(PAIRS), "--concurrency", "200"];
  for (const s of DRIVER_SOURCES) a.push("--source", s);
  for (const [name, pid] of Object.entries(pids)) a.push("--pid", `${name}=${pid}`);
  a.push(...extra);
  return new Promise((resolve, reject) => {
    const p = spawn(DRIVER, a, {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, BENCH_PASSWORD: PASSWORD, ASAN_OPTIONS: "detect_leaks=0" },
    });
    let out = "";
    const snaps = {};
    let tracer = null;
    let waits = null;
    const traced = SOCKET_WAIT && !socketWaitWhyNot && wait;
    p.stdout.on("data", (d) => (out += d));
    p.stderr.on("data", (d) => {
      process.stderr.write(`  ${d}`);
      if (/bench: fixed rate \d/.test(d)) {
        if (metricsUrl) snaps.start = scrapeMetrics(metricsUrl);
        if (traced) tracer = startSocketWait({ ...wait, file: path.join(dir, `perf-${proto}-${wait.pid}.data`) });
      }
      if (/bench: fixed rate done/.test(d)) {
        if (metricsUrl) snaps.end = scrapeMetrics(metricsUrl);
        if (tracer) waits = tracer.stop();
      }
    });
    p.on("error", reject);
    p.on("exit", async (code) => {
      const line = out.split("\n").find((l) => l.startsWith("RESULT "));
      if (!line) return reject(new Error(`driver exited ${code} without a result`));
      const r = JSON.parse(line.slice(7));
      const [a, b] = [await snaps.start, await snaps.end];
      const w = await waits;
      if (w) {
        // What clients sent waited in the listening socket (the crossing to the server), what
        // the server sent in the upstream one (the crossing to the client).
        r.socket_wait = { to_server: quantiles(w.client), to_client: quantiles(w.server) };
        r.socket_wait.p99_sum = sumBound([w.client, w.server], 0.99);
      }
      if (a && b) {
        const t = proto === "json" ? "ws-json" : proto === "xmpp" ? "ws-xmpp" : proto;
        const h = {};
        r.forward = {};
        for (const d of ["to_server", "to_client"]) {
          h[d] = phaseHistogram(a, b, "mxgw_forward_seconds", `transport="${t}",direction="${d}"`);
          r.forward[d] = quantiles(h[d]);
        }
        // The p99 of the two crossings' sum, bounded (bench/histogram.mjs); with the waits in
        // mxgw's sockets before each, when traced.
        r.forward.p99_sum = sumBound([h.to_server, h.to_client], 0.99);
        if (w) r.forward.p99_total = sumBound([w.client, h.to_server, w.server, h.to_client], 0.99);
        r.loop_lag = quantiles(phaseHistogram(a, b, "mxgw_loop_lag_seconds", ""));
      }
      resolve(r);
    });
  });
}

function probeBosh(url) {
  try {
    execFileSync(DRIVER, ["--proto", "bosh", "--url", url, "--domain", DOMAIN, "--probe"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

// ---- the run ----

const results = {};
const want = (name) => !ONLY || ONLY.includes(name);
const cpuInfo = (fs.readFileSync("/proc/cpuinfo", "utf8").match(/^model name\s*:\s*(.*)$/m) || [])[1] || "?";
const machine = `${os.cpus().length} cores (${cpuInfo}), ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, ` +
  `${fs.existsSync("/etc/debian_version") ? "Debian " + fs.readFileSync("/etc/debian_version", "utf8").trim() : os.release()}, ` +
  `kernel ${os.release()}`;
const load0 = os.loadavg().map((x) => x.toFixed(2)).join(" ");
log(`bench: ${machine}; load average ${load0}`);
log(`bench: ${N} sessions per setup, ${PAIRS} pairs, saturation ${SATURATE} s, fixed rate ${DURATION} s, ` +
  `body ${BODY_LEN} chars, capacity run ${CAPACITY || "skipped"}; open-file limit ${FD_LIMIT}; files in ${dir}`);
if (SOCKET_WAIT) {
  log(socketWaitWhyNot ? `bench: --socket-wait: not measured, ${socketWaitWhyNot}`
    : "bench: --socket-wait: perf traces the fixed-rate phases of relay-ws, mxgw-xmpp and mxgw-json, " +
      "so their CPU figures at the fixed rate include the tracing's cost");
}
if (CAPACITY < CAPACITY_WANTED) {
  log(`bench: the open-file limit (${FD_LIMIT}, hard limit of this environment) lets one mxgw hold at most ` +
    `${FD_SESSIONS} sessions (two descriptors each): the capacity run is cut from ${CAPACITY_WANTED} to ${CAPACITY}`);
}

const redis = await Redis.start(dir);
let failures = 0;

async function setup(name, fn) {
  if (!want(name)) return;
  log(`\n== ${name} ==`);
  const t0 = Date.now();
  try {
    const r = await fn();
    if (r) {
      results[name] = r;
      log(`   ${summary(r)} (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
    }
  } catch (err) {
    failures++;
    log(`   ${name} FAILED: ${err.message}`);
  }
}

function summary(r) {
  const f = r.flow || {};
  return `${r.ready}/${r.sessions} logged in in ${r.login_s.toFixed(2)} s; ` +
    (r.sat ? `saturation ${r.sat.msgs_per_s.toFixed(0)} msg/s; ` : "") +
    (f.rate ? `at ${f.rate.toFixed(0)} msg/s p99 ${(f.p99_us / 1000).toFixed(2)} ms` : "");
}

async function withServers(tag, sessions, useMxgw, fn) {
  await redis.cmd("FLUSHALL");
  const prosody = await startProsody(tag);
  let gw = null;
  try {
    if (useMxgw) gw = await startMxgw(tag, prosody, redis, sessions);
    return await fn(prosody, gw);
  } finally {
    if (gw) {
      const r = await gw.child.stop(15000);
      const out = gw.child.log();
      if (r.code !== 0 || r.signal || /ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:/.test(out)) {
        failures++;
        log(`   mxgw did not exit cleanly: ${JSON.stringify(r)}; see ${gw.child.logFile}\n${gw.child.logTail(30)}`);
      }
    }
    await prosody.child.stop(15000);
  }
}

const satArgs = ["--saturate", String(SATURATE), "--window", "16"];
const flowArgs = (rate) => ["--duration", String(DURATION), ...(rate ? ["--rate", String(rate)] : ["--rate-fraction", "0.5"])];
const TIMELINE = args.includes("--timeline") ? ["--timeline"] : [];
// --prosody-config 'lua line': appended to Prosody's global section (experiments only; the
// published run leaves Prosody at its defaults).
const PROSODY_EXTRA = opt("prosody-config", "");
// --mxgw-config 'key = value; key = value': added to (or replacing) the generated mxgw config.
const MXGW_EXTRA = opt("mxgw-config", "").split(";").map((l) => l.trim()).filter(Boolean);
const HOLD = opt("hold", "0"); // seconds the driver keeps its sessions after measuring
const sess = (n) => ["--sessions", String(n), "--settle", QUICK ? "1" : "3", "--hold", HOLD, ...TIMELINE];
let wsRate = FIXED_RATE;
let boshRate = FIXED_RATE;

await setup("prosody-ws", () => withServers("prosody-ws", N, false, async (p) => {
  const r = await drive("xmpp", `ws://127.0.0.1:${p.httpPort}/xmpp-websocket`, { prosody: p.child.pid },
    [...sess(N), ...satArgs, ...flowArgs(FIXED_RATE)]);
  wsRate = r.flow?.rate || 0;
  return r;
}));
await setup("prosody-bosh", () => withServers("prosody-bosh", N, false, async (p) => {
  const r = await drive("bosh", `http://127.0.0.1:${p.httpPort}/http-bind`, { prosody: p.child.pid },
    [...sess(N), ...satArgs, ...flowArgs(FIXED_RATE)]);
  boshRate = r.flow?.rate || 0;
  return r;
}));
// The floor: the same RFC 7395 traffic as prosody-ws, through a process that only moves bytes.
// Its CPU per message is what two loop wakeups with a read and a write each cost on this
// machine, the least any gateway in that place can spend.
await setup("relay-ws", () => withServers("relay-ws", N, false, async (p) => {
  const port = await freePort();
  const relay = new Child("relay", RELAY, [String(port), String(p.httpPort)], { logFile: path.join(dir, "relay.out") });
  try {
    await waitForPort(port, { child: relay, timeoutMs: 10000 });
    return await drive("xmpp", `ws://127.0.0.1:${port}/xmpp-websocket`, { relay: relay.pid, prosody: p.child.pid },
      [...sess(N), ...satArgs, ...flowArgs(wsRate)], null, { pid: relay.pid, listenPort: port, serverPort: p.httpPort });
  } finally {
    const r = await relay.stop(5000);
    if (r.code !== 0 || r.signal) {
      failures++;
      log(`   the relay did not exit cleanly: ${JSON.stringify(r)}; see ${relay.logFile}`);
    }
  }
}));
for (const [name, proto] of [["mxgw-xmpp", "xmpp"], ["mxgw-json", "json"]]) {
  await setup(name, () => withServers(name, N, true, (p, gw) =>
    drive(proto, gw.wsUrl, { mxgw: gw.child.pid, prosody: p.child.pid, redis: redis.child.pid },
      [...sess(N), ...satArgs, ...flowArgs(wsRate), ...(proto === "json" ? JSON_ARGS : [])], gw.metricsUrl,
      { pid: gw.child.pid, listenPort: Number(new URL(gw.wsUrl).port), serverPort: p.c2sPort })));
}
let mxgwBosh = "not run";
// Without a listener key mxgw would serve BOSH on its default port: make sure whatever answers
// there afterwards is this run's mxgw, not another process.
const defaultBoshTaken = !httpListenKey() && probeBosh("http://127.0.0.1:5280/http-bind");
// mxgw holds three descriptors per BOSH session (two HTTP connections and the upstream).
const N_BOSH = Math.min(N, Math.floor((FD_LIMIT - 300) / 3));
await setup("mxgw-bosh", () => withServers("mxgw-bosh", N_BOSH, true, async (p, gw) => {
  if (defaultBoshTaken) {
    mxgwBosh = "not measured: another process already serves http://127.0.0.1:5280/http-bind";
    log(`   mxgw BOSH: ${mxgwBosh}`);
    return null;
  }
  if (!probeBosh(gw.boshUrl)) {
    mxgwBosh = "not available in this build";
    log(`   mxgw BOSH: not available in this build (nothing answers ${gw.boshUrl})`);
    return null;
  }
  mxgwBosh = "measured";
  return drive("bosh", gw.boshUrl, { mxgw: gw.child.pid, prosody: p.child.pid, redis: redis.child.pid },
    [...sess(N_BOSH), ...satArgs, ...flowArgs(boshRate)]);
}));
if (CAPACITY > N) {
  await setup("capacity", () => withServers("capacity", CAPACITY, true, (p, gw) =>
    drive("json", gw.wsUrl, { mxgw: gw.child.pid, prosody: p.child.pid, redis: redis.child.pid },
      ["--sessions", String(CAPACITY), "--settle", "10", "--concurrency", "400",
        "--duration", String(DURATION), "--rate", String(wsRate || 1000), ...JSON_ARGS])));
}
await redis.stop();

// ---- report ----

const fmt = (v, d = 1) => (v === undefined || v === null || Number.isNaN(v) ? "–" : Number(v).toFixed(d));
const ms = (us) => (us === undefined || Number.isNaN(us) ? "–" : (us / 1000).toFixed(2));
const rows = [];
const head = ["setup", "sessions", "login s", "logins/s", "KiB/session mxgw", "KiB/session Prosody",
  "sat. msg/s", "rate msg/s", "p50 ms", "p99 ms", "p99.9 ms", "µs CPU/msg mxgw", "µs CPU/msg Prosody",
  "µs CPU/msg Redis",
  "driver CPU % (sat.)", "bytes/msg (msg frames)", "bytes/msg (all TCP)"];
// The process in mxgw's place: the relay's figures stand in mxgw's columns, marked.
const GW = (name) => (name === "relay-ws" ? "relay" : "mxgw");
const mark = (name, v) => (name === "relay-ws" && v !== "–" ? `(relay) ${v}` : v);
for (const [name, r] of Object.entries(results)) {
  const f = r.flow || {};
  rows.push([name, `${r.ready}/${r.sessions}`, fmt(r.login_s, 2), fmt(r.login_per_s, 0),
    mark(name, fmt(r.kib_per_session[GW(name)], 2)), fmt(r.kib_per_session.prosody, 2),
    fmt(r.sat?.msgs_per_s, 0), fmt(f.rate, 0), ms(f.p50_us), ms(f.p99_us), ms(f.p999_us),
    mark(name, fmt(f.cpu_us_per_msg?.[GW(name)], 2)), fmt(f.cpu_us_per_msg?.prosody, 2), fmt(f.cpu_us_per_msg?.redis, 2),
    fmt(r.sat?.cpu_pct?.driver, 0),
    r.proto === "bosh" ? "–" : fmt(f.msg_bytes_per_msg, 1), fmt(f.tcp_bytes_per_msg, 1)]);
}
const table = [`| ${head.join(" | ")} |`, `|${head.map(() => "---").join("|")}|`,
  ...rows.map((r) => `| ${r.join(" | ")} |`)].join("\n");

const R = results;
const ratio = (a, b) => (a > 0 && b > 0 ? a / b : NaN);
const pctS = (x) => (Number.isNaN(x) ? "–" : `${(100 * x).toFixed(1)}%`);
const cpu = (name, who) => R[name]?.flow?.cpu_us_per_msg?.[who];
// CPU per message at saturation: the same processes over the measured seconds of the closed
// loop, where each wakeup of a loop finds several messages, so what is fixed per wakeup
// (epoll_wait, a context switch, cold caches) is shared by them.
const satCpu = (name, who) => {
  const t = R[name]?.sat;
  return t?.msgs_per_s > 0 && t.cpu_pct?.[who] !== undefined ? (t.cpu_pct[who] * 1e4) / t.msgs_per_s : NaN;
};
const budgets = [];
function budget(what, value, pass, detail) {
  budgets.push({ what, value, verdict: pass === null ? "n/a" : pass ? "PASS" : "MISS", detail });
}
// The three CPU budgets, at the fixed rate and at saturation. At saturation every setup runs at
// the rate it sustains, so the direct setups' figures come from their own (lower) rates.
const phases = [
  { name: "at the fixed rate", sat: false, get: cpu, rate: () => "", direct: "direct" },
  { name: "at saturation", sat: true, get: satCpu, rate: (n) => ` at ${fmt(R[n]?.sat?.msgs_per_s, 0)} msg/s`,
    direct: "direct at its saturation" },
];
for (const p of phases) {
  const us = (n, who) => fmt(p.get(n, who), 2);
  const j = ratio(p.get("mxgw-json", "mxgw"), p.get("mxgw-json", "prosody"));
  budget(`mxgw CPU/msg over JSON ≤ 10% of Prosody's (target ≤ 5%), ${p.name}`, pctS(j), Number.isNaN(j) ? null : j <= 0.10,
    `${us("mxgw-json", "mxgw")} µs vs ${us("mxgw-json", "prosody")} µs` +
    (p.sat ? p.rate("mxgw-json") : " (Prosody c2s behind mxgw)") +
    `; vs Prosody's mod_websocket ${p.direct} ${pctS(ratio(p.get("mxgw-json", "mxgw"), p.get("prosody-ws", "prosody")))}` +
    (j <= 0.05 ? "; target met" : "; target ≤ 5% not met"));
  const x = ratio(p.get("mxgw-xmpp", "mxgw"), p.get("mxgw-xmpp", "prosody"));
  // The relay's own Prosody is mod_websocket; mxgw's is c2s: the floor is set against both.
  const floor = ratio(p.get("relay-ws", "relay"), p.get("relay-ws", "prosody"));
  const floorX = ratio(p.get("relay-ws", "relay"), p.get("mxgw-xmpp", "prosody"));
  budget(`mxgw CPU/msg over RFC 7395 ≤ 10% of Prosody's, ${p.name}`, pctS(x), Number.isNaN(x) ? null : x <= 0.10,
    `${us("mxgw-xmpp", "mxgw")} µs vs ${us("mxgw-xmpp", "prosody")} µs${p.rate("mxgw-xmpp")}; ` +
    `vs Prosody's mod_websocket ${p.direct} ${pctS(ratio(p.get("mxgw-xmpp", "mxgw"), p.get("prosody-ws", "prosody")))}` +
    (R["relay-ws"] ? `; floor (null relay in mxgw's place): ${us("relay-ws", "relay")} µs, ${pctS(floorX)} of Prosody's behind mxgw ` +
      `(${pctS(floor)} of its own mod_websocket's)` +
      `${p.rate("relay-ws")}; mxgw above the floor ${pctS(ratio(p.get("mxgw-xmpp", "mxgw") - p.get("relay-ws", "relay"), p.get("mxgw-xmpp", "prosody")))}` : ""));
  const b = ratio(p.get("mxgw-bosh", "mxgw"), p.get("prosody-bosh", "prosody"));
  budget(`mxgw BOSH CPU/msg ≤ 10% of Prosody's mod_bosh (direct), ${p.name}`, pctS(b), Number.isNaN(b) ? null : b <= 0.10,
    R["mxgw-bosh"]
      ? `${us("mxgw-bosh", "mxgw")} µs${p.rate("mxgw-bosh")} vs ${us("prosody-bosh", "prosody")} µs${p.rate("prosody-bosh")}` +
        (p.sat ? `; vs Prosody behind mxgw ${pctS(ratio(p.get("mxgw-bosh", "mxgw"), p.get("mxgw-bosh", "prosody")))}` : "")
      : `mxgw BOSH: ${mxgwBosh}` + (p.sat ? "" : `; Prosody mod_bosh direct: ${us("prosody-bosh", "prosody")} µs/msg`));
}
{
  const memSrc = R.capacity ? "capacity" : "mxgw-json";
  // (the capacity run is the mxgw-json run itself when the open-file limit allows no more)
  const m = R[memSrc]?.kib_per_session?.mxgw;
  budget("mxgw RSS per idle JSON session (upstream included) ≤ 8 KiB", m === undefined ? "–" : `${fmt(m, 2)} KiB`,
    m === undefined ? null : m <= 8, `${memSrc} run; Prosody per mod_websocket session ` +
    `${fmt(R["prosody-ws"]?.kib_per_session?.prosody, 2)} KiB, per c2s session behind mxgw ${fmt(R[memSrc]?.kib_per_session?.prosody, 2)} KiB`);
  const c = R.capacity || R["mxgw-json"];
  const capNote = CAPACITY < CAPACITY_WANTED
    ? `; NOT PROVEN: this environment's open-file hard limit (${FD_LIMIT}) caps one process at ${FD_SESSIONS} sessions`
    : "";
  budget("100,000 concurrent JSON sessions in one mxgw", c ? `${c.ready}` : "–",
    c && c.sessions >= 100000 ? c.ready >= 100000 && c.lost_after_login === 0 : null,
    (c ? `${c.ready} of ${c.sessions} logged in (${c.failed} failed, ${c.lost_after_login} lost), held ` +
      `${c.flow ? "through the fixed-rate phase" : "idle"}; projected RSS for 100,000: ` +
      `${fmt((c.kib_per_session.mxgw * 100000) / 1024, 0)} MiB mxgw`
      : "capacity run skipped") + capNote);
  const base = R["prosody-ws"]?.flow?.p99_us;
  const addJ = R["mxgw-json"]?.flow?.p99_us - base;
  const addX = R["mxgw-xmpp"]?.flow?.p99_us - base;
  // A difference of two p99s resolves 2 ms only when the direct path's own tail is short. When
  // Prosody's p99 is ten times the budget or more (its GC stalls, or queueing near its
  // saturation), the difference measures Prosody, not mxgw: no verdict then.
  const resolvable = base !== undefined && base <= 20000;
  const latOk = Number.isNaN(addJ) || Number.isNaN(addX) || !resolvable ? null : addJ <= 2000 && addX <= 2000;
  const p50 = (name) => R[name]?.flow?.p50_us - R["prosody-ws"]?.flow?.p50_us;
  // When the difference cannot resolve it, mxgw's own clock can: each message crosses mxgw
  // twice, and mxgw_forward_seconds times each crossing from the read to the kernel. A bound on
  // the p99 of their sum comes from the union bound (bench/histogram.mjs, sumBound: a quantile
  // of each term whose tails add up to 1%, the p99.5 of each or a better split), read off
  // bucket bounds, so it errs high. The clock starts at mxgw's read: before it, what arrived
  // waited in mxgw's socket, which --socket-wait traces (bench/sockwait.mjs) and adds as two
  // more terms. Without that the clock leaves part of the added latency out, so it can show a
  // miss but not a pass. Not in either: the loopback hops (microseconds).
  const q = (x) => (x === undefined || Number.isNaN(x) ? "–" : x === Infinity ? "> 1000" : (x / 1000).toFixed(3));
  const inside = (name) => R[name]?.forward?.p99_sum;
  const total = (name) => R[name]?.forward?.p99_total;
  const bound = (b) => b?.bound_us ?? NaN;
  const parts = (b, names) => (b ? ` (${b.parts_us.map((x, i) => `${q(x)} ${names[i]}`).join(" + ")})` : "");
  const CROSSINGS = ["to the server", "to the client"];
  const WAITS = ["waiting", "to the server", "waiting", "to the client"];
  const fmtQ = (h) => `${q(h?.p50_us)}/${q(h?.p99_us)}/${q(h?.p999_us)}`;
  const fwd = (name) => {
    const f = R[name]?.forward;
    const l = R[name]?.loop_lag;
    const w = R[name]?.socket_wait;
    return (f ? `${name}: to the server p50/p99/p99.9 ≤ ${fmtQ(f.to_server)} ms (${f.to_server?.n ?? 0} stanzas), ` +
      `to the client ≤ ${fmtQ(f.to_client)} ms (${f.to_client?.n ?? 0} frames), loop lag p99 ≤ ${q(l?.p99_us)} ms`
      : `${name}: not measured`) +
      (w ? `, waits in its sockets before it reads, by byte, ≤ ${fmtQ(w.to_server)} ms from clients (${w.to_server?.n ?? 0} B), ` +
        `≤ ${fmtQ(w.to_client)} ms from the server (${w.to_client?.n ?? 0} B)` : "");
  };
  const relayWait = R["relay-ws"]?.socket_wait;
  const floorNote = relayWait
    ? `; the floor: a null relay in mxgw's place, whose work between a read and its write is nothing, waits in its ` +
      `sockets ≤ ${fmtQ(relayWait.to_server)} ms from clients and ≤ ${fmtQ(relayWait.to_client)} ms from the server, ` +
      `p99 of both together ≤ ${q(bound(relayWait.p99_sum))} ms`
    : "";
  const traced = total("mxgw-json") && total("mxgw-xmpp");
  const clockJ = bound(inside("mxgw-json"));
  const clockX = bound(inside("mxgw-xmpp"));
  let latValue;
  let latVerdict;
  if (resolvable) {
    latValue = `JSON ${ms(addJ)} ms, RFC 7395 ${ms(addX)} ms`;
    latVerdict = latOk;
  } else if (traced) {
    latValue = `inside mxgw with the waits in its sockets: JSON ≤ ${q(bound(total("mxgw-json")))} ms` +
      `${parts(total("mxgw-json"), WAITS)}, RFC 7395 ≤ ${q(bound(total("mxgw-xmpp")))} ms${parts(total("mxgw-xmpp"), WAITS)}`;
    latVerdict = bound(total("mxgw-json")) <= 2000 && bound(total("mxgw-xmpp")) <= 2000;
  } else {
    latValue = `inside mxgw from its reads: JSON ≤ ${q(clockJ)} ms${parts(inside("mxgw-json"), CROSSINGS)}, ` +
      `RFC 7395 ≤ ${q(clockX)} ms${parts(inside("mxgw-xmpp"), CROSSINGS)}`;
    latVerdict = Number.isNaN(clockJ) || Number.isNaN(clockX) ? null : clockJ > 2000 || clockX > 2000 ? false : null;
  }
  budget("p99 latency added by mxgw at 50% of Prosody's saturation ≤ 2 ms", latValue, latVerdict,
    `p99 ${ms(R["mxgw-json"]?.flow?.p99_us)} / ${ms(R["mxgw-xmpp"]?.flow?.p99_us)} ms vs ${ms(base)} ms direct at ${fmt(wsRate, 0)} msg/s; ` +
    `p50 added: JSON ${ms(p50("mxgw-json"))} ms, RFC 7395 ${ms(p50("mxgw-xmpp"))} ms` +
    (resolvable || base === undefined ? ""
      : `; the difference is NOT RESOLVABLE: Prosody's own p99 (${ms(base)} ms) is over 20 ms, so it measures its stalls, not mxgw. ` +
        "The verdict is on mxgw's own clock instead (mxgw_forward_seconds, read to kernel), " +
        (traced ? "with the wait in its sockets before each read (--socket-wait): quantiles of the four terms whose tails add up to 1%, added"
          : "which leaves out the wait in its sockets before it reads (--socket-wait traces it), so it can show a miss but not a pass")) +
    `; ${fwd("mxgw-json")}; ${fwd("mxgw-xmpp")}${floorNote}`);
  const by = ratio(R["mxgw-json"]?.flow?.msg_bytes_per_msg, R["mxgw-xmpp"]?.flow?.msg_bytes_per_msg);
  budget("JSON bytes per chat message (sent + delivered) ≤ 45% of RFC 7395's", pctS(by), Number.isNaN(by) ? null : by <= 0.45,
    `${fmt(R["mxgw-json"]?.flow?.msg_bytes_per_msg)} B vs ${fmt(R["mxgw-xmpp"]?.flow?.msg_bytes_per_msg)} B, frame headers included, ` +
    `JID aliases ${R["mxgw-json"]?.json_aliases ? "on" : "off"}; ` +
    `with acks and all TCP payload: ${fmt(R["mxgw-json"]?.flow?.tcp_bytes_per_msg)} B vs ${fmt(R["mxgw-xmpp"]?.flow?.tcp_bytes_per_msg)} B`);
}
const btable = ["| budget | measured | verdict | detail |", "|---|---|---|---|",
  ...budgets.map((b) => `| ${b.what} | ${b.value} | ${b.verdict} | ${b.detail} |`)].join("\n");

const ratios = [];
for (const name of ["relay-ws", "mxgw-xmpp", "mxgw-json", "mxgw-bosh", "capacity"]) {
  const r = R[name];
  if (!r) continue;
  const directName = name === "mxgw-bosh" ? "prosody-bosh" : "prosody-ws";
  const direct = R[directName];
  const g = GW(name);
  ratios.push(`| ${name} | ${pctS(ratio(r.flow?.cpu_us_per_msg?.[g], r.flow?.cpu_us_per_msg?.prosody))} | ` +
    `${pctS(ratio(r.flow?.cpu_us_per_msg?.[g], direct?.flow?.cpu_us_per_msg?.prosody))} | ` +
    `${pctS(ratio(satCpu(name, g), satCpu(name, "prosody")))} | ` +
    `${pctS(ratio(satCpu(name, g), satCpu(directName, "prosody")))} | ` +
    `${pctS(ratio(r.kib_per_session?.[g], direct?.kib_per_session?.prosody))} | ` +
    `${pctS(ratio(r.sat?.msgs_per_s, direct?.sat?.msgs_per_s))} | ${pctS(ratio(r.login_s, direct?.login_s))} |`);
}
const rtable = ["| setup | mxgw CPU/msg ÷ Prosody's (same run), fixed rate | mxgw CPU/msg ÷ Prosody direct, fixed rate | " +
  "mxgw CPU/msg ÷ Prosody's (same run), saturation | mxgw CPU/msg ÷ Prosody direct, each at its saturation | " +
  "mxgw KiB/session ÷ Prosody direct | saturation ÷ Prosody direct | login time ÷ Prosody direct |",
  "|---|---|---|---|---|---|---|---|", ...ratios].join("\n");

// CPU per message above the idle load: what each process spends on the traffic itself, without
// what its sessions cost while idle (timers, keepalives) over the same seconds.
const marginal = (r, who) => {
  const f = r.flow;
  if (!f?.delivered || r.idle_cpu_pct?.[who] === undefined) return NaN;
  return ((f.cpu_pct[who] - r.idle_cpu_pct[who]) * f.seconds * 1e4) / f.delivered;
};
const ctable = ["| setup | idle CPU % mxgw | idle CPU % Prosody | µs/msg mxgw total | µs/msg mxgw over idle | " +
  "µs/msg Prosody total | µs/msg Prosody over idle | µs/msg driver | utime+stime µs/msg mxgw | utime+stime µs/msg Prosody |",
"|---|---|---|---|---|---|---|---|---|---|",
...Object.entries(R).map(([n, r]) => `| ${n} | ${mark(n, fmt(r.idle_cpu_pct?.[GW(n)], 2))} | ${fmt(r.idle_cpu_pct?.prosody, 2)} | ` +
  `${mark(n, fmt(r.flow?.cpu_us_per_msg?.[GW(n)], 2))} | ${mark(n, fmt(marginal(r, GW(n)), 2))} | ${fmt(r.flow?.cpu_us_per_msg?.prosody, 2)} | ` +
  `${fmt(marginal(r, "prosody"), 2)} | ${fmt(r.flow?.cpu_us_per_msg?.driver, 2)} | ${mark(n, fmt(r.flow?.ticks_us_per_msg?.[GW(n)], 2))} | ` +
  `${fmt(r.flow?.ticks_us_per_msg?.prosody, 2)} |`)].join("\n");

const stable = ["| setup | msg/s | µs/msg mxgw | µs/msg Prosody | µs/msg Redis | µs/msg driver |", "|---|---|---|---|---|---|",
  ...Object.entries(R).filter(([, r]) => r.sat).map(([n, r]) => `| ${n} | ${fmt(r.sat.msgs_per_s, 0)} | ` +
    `${mark(n, fmt(satCpu(n, GW(n)), 2))} | ${fmt(satCpu(n, "prosody"), 2)} | ${fmt(satCpu(n, "redis"), 2)} | ${fmt(satCpu(n, "driver"), 2)} |`)].join("\n");

const driverCpu = Object.entries(R).map(([n, r]) =>
  `${n}: ${fmt(r.sat?.cpu_pct?.driver, 0)}% at saturation (Prosody ${fmt(r.sat?.cpu_pct?.prosody, 0)}%` +
  (r.sat?.cpu_pct?.mxgw !== undefined ? `, mxgw ${fmt(r.sat.cpu_pct.mxgw, 0)}%` : "") + `), ` +
  `${fmt(r.flow?.cpu_pct?.driver, 0)}% at the fixed rate`).join("; ");

const load1 = os.loadavg().map((x) => x.toFixed(2)).join(" ");
const md = `Machine: ${machine}. Load average (1/5/15 min) ${load0} at the start, ${load1} at the end ` +
  `(the machine is shared). Command: \`bench/run ${args.join(" ")}\`.\n\n### Figures\n\n${table}\n\n` +
  `### CPU per message at the fixed rate\n\n${ctable}\n\n### CPU per message at saturation\n\n${stable}\n\n### Ratios\n\n${rtable}\n\n### Budgets\n\n${btable}\n\nDriver CPU (one core = 100%): ${driverCpu}.\n`;
log(`\n${md}`);
for (const b of budgets) log(`budget: ${b.verdict} ${b.what}: ${b.value}`);
log(`mxgw BOSH: ${mxgwBosh}`);
if (JSON_OUT) fs.writeFileSync(JSON_OUT, JSON.stringify({ machine, args, results, budgets }, null, 2));
if (MD_OUT) fs.writeFileSync(MD_OUT, md);
if (process.env.MXGW_BENCH_KEEP !== "1" && failures === 0) fs.rmSync(dir, { recursive: true, force: true });
else log(`bench: files kept in ${dir}`);
log(failures ? `bench: ${failures} setup(s) could not run` : "bench: done");
process.exit(failures ? 1 : 0);
