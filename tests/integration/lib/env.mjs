// Integration-test harness: temp dirs, a test CA, Redis, Prosody, mxgw, XMPP clients, a raw
// WebSocket client and a fake upstream XMPP server, all on loopback and all torn down by the test.
//
// Every child process is started through `setpriv --pdeathsig KILL`, so it dies with the test
// process even when the runner kills that process; stop() also ends them explicitly (SIGTERM,
// then SIGKILL after a timeout). Readiness is waited for by polling the port a child must open,
// always with a deadline; no test relies on a sleep to assert anything.
//
// MXGW_BIN picks the binary (default: build-asan/mxgw at the repository root).
// MXGW_IT_TARGET=prosody points the WebSocket clients at Prosody's own mod_websocket instead of
// mxgw; that proves the harness (Prosody, certificates, users, client libraries) on its own.
// MXGW_IT_KEEP=1 keeps each run's temp dir (configs, certificates, all logs) for inspection.

import { spawn, execFile, execFileSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";
import crypto from "node:crypto";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { setTimeout as delay } from "node:timers/promises";
import WebSocket from "ws";
import { parse as parseXml } from "ltx";
import { client as xmppClient, xml } from "@xmpp/client";

export { xml, parseXml, delay };

export const NS = {
  client: "jabber:client",
  stream: "http://etherx.jabber.org/streams",
  streams: "urn:ietf:params:xml:ns:xmpp-streams",
  framing: "urn:ietf:params:xml:ns:xmpp-framing",
  sasl: "urn:ietf:params:xml:ns:xmpp-sasl",
  tls: "urn:ietf:params:xml:ns:xmpp-tls",
  bind: "urn:ietf:params:xml:ns:xmpp-bind",
};

export const DOMAIN = "localhost";
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
export const MXGW_BIN = process.env.MXGW_BIN || path.join(REPO_ROOT, "build-asan", "mxgw");
export const TARGET_PROSODY = process.env.MXGW_IT_TARGET === "prosody";

// @xmpp/websocket uses the WHATWG WebSocket global, which Node 20 only has behind a flag.
if (!globalThis.WebSocket) globalThis.WebSocket = WebSocket;

// @xmpp/starttls and @xmpp/tls call tls.connect() without a way to pass a CA, and
// NODE_EXTRA_CA_CERTS is only read at process start, before the harness made its CA. Add the
// test CA to every tls.connect() that does not choose its own; verification stays on.
const extraCAs = [];
const tlsConnect = tls.connect;
tls.connect = function connectWithTestCA(...args) {
  const opts = args[0];
  if (extraCAs.length && opts && typeof opts === "object" && !opts.ca) {
    args[0] = { ...opts, ca: [...tls.rootCertificates, ...extraCAs] };
  }
  return tlsConnect.apply(this, args);
};

// ---------------------------------------------------------------------------------------------
// Processes

const children = new Set();
function killAllChildren() {
  for (const c of children) c.kill("SIGKILL");
}
process.on("exit", killAllChildren);
for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, () => {
    killAllChildren();
    process.exit(128 + os.constants.signals[sig]);
  });
}

const asRoot = typeof process.getuid === "function" && process.getuid() === 0;

/** A child process whose stdout and stderr go to one log file. */
export class Child {
  constructor(name, cmd, args, { logFile, env = {}, cwd, user } = {}) {
    this.name = name;
    this.logFile = logFile;
    const fd = fs.openSync(logFile, "a");
    const wrap = ["--pdeathsig", "KILL"];
    if (user && asRoot) wrap.push(`--reuid=${user}`, `--regid=${user}`, "--init-groups");
    this.proc = spawn("setpriv", [...wrap, "--", cmd, ...args], {
      stdio: ["ignore", fd, fd],
      env: { ...process.env, ...env },
      cwd,
    });
    fs.closeSync(fd);
    this.exited = null;
    children.add(this.proc);
    this.exit = new Promise((resolve) => {
      const done = (code, signal, error) => {
        if (this.exited) return;
        this.exited = { code, signal, error: error?.message };
        children.delete(this.proc);
        resolve(this.exited);
      };
      this.proc.on("exit", (code, signal) => done(code, signal));
      this.proc.on("error", (err) => done(null, null, err));
    });
  }

  get pid() {
    return this.proc.pid;
  }

  get running() {
    return this.exited === null;
  }

  log() {
    try {
      return fs.readFileSync(this.logFile, "utf8");
    } catch {
      return "";
    }
  }

  logTail(lines = 80) {
    return this.log().split("\n").slice(-lines).join("\n");
  }

  signal(sig) {
    if (this.running) this.proc.kill(sig);
  }

  /** Waits for the process to exit by itself; null when it has not within timeoutMs. */
  async waitExit(timeoutMs) {
    let timer;
    const timeout = new Promise((resolve) => {
      timer = setTimeout(() => resolve(null), timeoutMs);
    });
    try {
      return await Promise.race([this.exit, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** SIGTERM, then SIGKILL after timeoutMs. Returns { code, signal }. */
  async stop(timeoutMs = 5000) {
    if (!this.running) return this.exited;
    this.proc.kill("SIGTERM");
    const r = await this.waitExit(timeoutMs);
    if (r) return r;
    this.proc.kill("SIGKILL");
    return this.exit;
  }
}

// Ports freePort() has handed out in this process: the kernel may give a port it just freed
// again (seen: mxgw's WebSocket and HTTP listeners handed the same port, so mxgw could not
// start), and each one given out is meant for a different listener.
const portsGiven = new Set();

export async function freePort() {
  for (;;) {
    const srv = net.createServer();
    await new Promise((resolve, reject) => {
      srv.once("error", reject);
      srv.listen(0, "127.0.0.1", resolve);
    });
    const { port } = srv.address();
    await new Promise((resolve) => srv.close(resolve));
    if (!portsGiven.has(port)) {
      portsGiven.add(port);
      return port;
    }
  }
}

function canConnect(port, host = "127.0.0.1") {
  return new Promise((resolve) => {
    const s = net.connect({ port, host });
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

export async function isPortFree(port) {
  return !(await canConnect(port));
}

/** Polls until something accepts on port; fails early if child exits, and at the deadline. */
export async function waitForPort(port, { child, timeoutMs = 20000, what } = {}) {
  const deadline = Date.now() + timeoutMs;
  const label = what || child?.name || `port ${port}`;
  for (;;) {
    if (child && !child.running) {
      throw new Error(
        `${label} exited (${JSON.stringify(child.exited)}) before listening on ${port}:\n` +
          child.logTail(),
      );
    }
    if (await canConnect(port)) return;
    if (Date.now() > deadline) {
      throw new Error(`${label} not listening on ${port} after ${timeoutMs} ms` +
        (child ? `:\n${child.logTail()}` : ""));
    }
    await delay(50);
  }
}

/** Polls fn() until it returns a truthy value, or throws describing what was awaited. */
export async function waitUntil(fn, { timeoutMs = 5000, what = "condition" } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(50);
  }
}

export async function withTimeout(promise, ms, what) {
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, t]);
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------------------------
// Certificates

function openssl(...args) {
  execFileSync("openssl", args, { stdio: ["ignore", "pipe", "pipe"] });
}

function makeCA(dir, name, cn) {
  const key = path.join(dir, `${name}.key`);
  const cert = path.join(dir, `${name}.pem`);
  openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
    "-keyout", key, "-out", cert, "-days", "3", "-subj", `/CN=${cn}`,
    "-addext", "basicConstraints=critical,CA:TRUE",
    "-addext", "keyUsage=critical,keyCertSign,cRLSign");
  return { key, cert };
}

function makeLeaf(dir, name, dnsName, ca) {
  const key = path.join(dir, `${name}.key`);
  const csr = path.join(dir, `${name}.csr`);
  const cert = path.join(dir, `${name}.pem`);
  const ext = path.join(dir, `${name}.ext`);
  fs.writeFileSync(ext, [
    "basicConstraints=critical,CA:FALSE",
    "keyUsage=critical,digitalSignature",
    "extendedKeyUsage=serverAuth",
    `subjectAltName=DNS:${dnsName}`,
    "",
  ].join("\n"));
  openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
    "-keyout", key, "-out", csr, "-subj", `/CN=${dnsName}`);
  openssl("x509", "-req", "-in", csr, "-CA", ca.cert, "-CAkey", ca.key,
    "-set_serial", `0x${crypto.randomBytes(8).toString("hex")}`, "-days", "3",
    "-out", cert, "-extfile", ext);
  return { key, cert, name: dnsName };
}

/**
 * ca: the test CA (mxgw's upstream_ca_file); localhost: a server certificate for "localhost";
 * wrongName: signed by the same CA for "wrong.example"; rogue: a "localhost" certificate signed
 * by a CA nobody trusts.
 */
export function makeCerts(dir) {
  fs.mkdirSync(dir, { recursive: true });
  const ca = makeCA(dir, "ca", "mxgw test CA");
  const rogueCA = makeCA(dir, "rogue-ca", "untrusted test CA");
  return {
    ca,
    localhost: makeLeaf(dir, "localhost", "localhost", ca),
    wrongName: makeLeaf(dir, "wrong-name", "wrong.example", ca),
    rogue: makeLeaf(dir, "rogue-localhost", "localhost", rogueCA),
  };
}

// ---------------------------------------------------------------------------------------------
// Redis

export class Redis {
  static async start(dir) {
    const r = new Redis();
    r.port = await freePort();
    r.dir = path.join(dir, "redis");
    fs.mkdirSync(r.dir, { recursive: true });
    r.child = new Child("redis", "redis-server", [
      "--port", String(r.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
      "--dir", r.dir, "--daemonize", "no", "--logfile", "", "--protected-mode", "yes",
    ], { logFile: path.join(dir, "redis.log") });
    await waitForPort(r.port, { child: r.child });
    return r;
  }

  get url() {
    return `redis://127.0.0.1:${this.port}/0`;
  }

  /** Runs one command through redis-cli; returns the reply lines (--raw). */
  cmd(...args) {
    return new Promise((resolve, reject) => {
      execFile("redis-cli", ["-h", "127.0.0.1", "-p", String(this.port), "--raw", ...args],
        { timeout: 5000 }, (err, stdout, stderr) => {
          if (err) return reject(new Error(`redis-cli ${args.join(" ")}: ${err.message} ${stderr}`));
          const lines = stdout.split("\n");
          if (lines.at(-1) === "") lines.pop();
          resolve(lines);
        });
    });
  }

  async hgetall(key) {
    const lines = await this.cmd("HGETALL", key);
    const obj = {};
    for (let i = 0; i + 1 < lines.length; i += 2) obj[lines[i]] = lines[i + 1];
    return obj;
  }

  async smembers(key) {
    return (await this.cmd("SMEMBERS", key)).filter((l) => l !== "");
  }

  async exists(key) {
    return Number((await this.cmd("EXISTS", key))[0]) === 1;
  }

  async ttl(key) {
    return Number((await this.cmd("TTL", key))[0]);
  }

  async keys(pattern) {
    return (await this.cmd("KEYS", pattern)).filter((l) => l !== "");
  }

  stop() {
    return this.child.stop();
  }
}

// ---------------------------------------------------------------------------------------------
// Prosody

export const USERS = {
  alice: "alice-" + crypto.randomBytes(6).toString("hex"),
  bob: "bob-" + crypto.randomBytes(6).toString("hex"),
  carol: "carol-" + crypto.randomBytes(6).toString("hex"),
};

function luaString(s) {
  return JSON.stringify(s); // a JSON string of printable ASCII is a valid Lua string
}

/** Writes a Prosody config for "localhost" with plain-file accounts; returns its path. */
/** The external component (XEP-0114) mxgw connects as, and its secret. */
export const COMPONENT = { domain: "mxgw.localhost", secret: crypto.randomBytes(12).toString("hex") };
/** The MUC service on the test Prosody. */
export const MUC_DOMAIN = "conference.localhost";

export function writeProsodyConfig(pdir, { c2sPort, httpPort, componentPort, cert, users, logFile,
  authentication = "internal_plain", modules = [], extraConfig = "" }) {
  const data = path.join(pdir, "data");
  const accounts = path.join(data, "localhost", "accounts"); // "localhost" needs no encoding
  fs.mkdirSync(accounts, { recursive: true });
  fs.mkdirSync(path.join(pdir, "certs"), { recursive: true });
  for (const [user, password] of Object.entries(users)) {
    fs.writeFileSync(path.join(accounts, `${user}.dat`),
      `return {\n\t["password"] = ${luaString(password)};\n};\n`);
  }
  const crt = path.join(pdir, "localhost.crt");
  const key = path.join(pdir, "localhost.key");
  fs.copyFileSync(cert.cert, crt);
  fs.copyFileSync(cert.key, key);
  const conf = path.join(pdir, "prosody.cfg.lua");
  fs.writeFileSync(conf, `-- Generated by mxgw tests/integration/lib/env.mjs
daemonize = false
pidfile = ${luaString(path.join(pdir, "prosody.pid"))}
data_path = ${luaString(data)}
log = { { levels = { min = "debug" }, to = "file", filename = ${luaString(logFile)} } }
interfaces = { "127.0.0.1" }
local_interfaces = { "127.0.0.1" }
c2s_ports = { ${c2sPort} }
c2s_interfaces = { "127.0.0.1" }
c2s_direct_tls_ports = { }
component_ports = { ${componentPort} }
component_interfaces = { "127.0.0.1" }
s2s_ports = { }
s2s_interfaces = { }
http_ports = { ${httpPort} }
http_interfaces = { "127.0.0.1" }
https_ports = { }
https_interfaces = { }
authentication = ${luaString(authentication)}
storage = "internal"
allow_registration = false
c2s_require_encryption = true
s2s_require_encryption = true
consider_websocket_secure = true
consider_bosh_secure = true
cross_domain_websocket = true
cross_domain_bosh = true
certificates = ${luaString(path.join(pdir, "certs"))}
ssl = { certificate = ${luaString(crt)}, key = ${luaString(key)} }
modules_enabled = {
  "roster"; "saslauth"; "tls"; "disco"; "ping"; "carbons"; "smacks"; "time"; "version";
  "websocket"; "bosh"; "http";${modules.map((m) => ` ${luaString(m)};`).join("")}
}
modules_disabled = { "s2s";${modules.includes("offline") ? "" : ` "offline";`} }
${extraConfig}
VirtualHost "localhost"
  ssl = { certificate = ${luaString(crt)}, key = ${luaString(key)} }
Component ${luaString(MUC_DOMAIN)} "muc"
  restrict_room_creation = false
Component ${luaString(COMPONENT.domain)}
  component_secret = ${luaString(COMPONENT.secret)}
`);
  return conf;
}

export class Prosody {
  /**
   * options: { auth: Prosody's authentication provider ("internal_hashed" keeps a stable SCRAM
   * salt; default internal_plain), modules: extra modules to enable (e.g. ["offline",
   * "cloud_notify"]), extraConfig: global Lua config lines (e.g. "smacks_hibernation_time = 3") };
   * the default module list stays as it is.
   */
  static async start(dir, certs, users = USERS, options = {}) {
    const p = new Prosody();
    p.users = users;
    p.dir = path.join(dir, "prosody");
    fs.mkdirSync(p.dir, { recursive: true });
    p.c2sPort = await freePort();
    p.httpPort = await freePort();
    p.componentPort = await freePort();
    p.logFile = path.join(p.dir, "prosody.log");
    const conf = writeProsodyConfig(p.dir, {
      c2sPort: p.c2sPort, httpPort: p.httpPort, componentPort: p.componentPort, cert: certs.localhost, users, logFile: p.logFile,
      authentication: options.auth, modules: options.modules, extraConfig: options.extraConfig,
    });
    if (asRoot) execFileSync("chown", ["-R", "prosody:prosody", p.dir]);
    p.child = new Child("prosody", "prosody", ["--config", conf, "-F"], {
      logFile: path.join(p.dir, "stdout.log"),
      user: "prosody",
      cwd: p.dir,
    });
    await waitForPort(p.c2sPort, { child: p.child });
    await waitForPort(p.httpPort, { child: p.child });
    await waitForPort(p.componentPort, { child: p.child });
    return p;
  }

  get tcpService() {
    return `xmpp://127.0.0.1:${this.c2sPort}`;
  }

  get wsUrl() {
    return `ws://127.0.0.1:${this.httpPort}/xmpp-websocket`;
  }

  log() {
    try {
      return fs.readFileSync(this.logFile, "utf8");
    } catch {
      return "";
    }
  }

  stop() {
    return this.child.stop();
  }
}

// ---------------------------------------------------------------------------------------------
// mxgw

const SANITIZER_RE = /ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:/;

export class Gateway {
  /** Starts mxgw with a generated config; options override config keys. */
  static async start(env, options = {}) {
    const g = new Gateway();
    g.n = ++env.gatewayCount;
    g.wsPort = options.ws_port ?? (await freePort());
    g.httpPort = options.http_port ?? (await freePort());
    g.nodeId = options.node_id ?? `it-node-${g.n}-${crypto.randomBytes(3).toString("hex")}`;
    const cfg = {
      ws_listen: `127.0.0.1:${g.wsPort}`,
      ws_path: "/xmpp-websocket",
      upstream: `127.0.0.1:${env.prosody ? env.prosody.c2sPort : 5222}`,
      upstream_tls: "required",
      upstream_ca_file: env.certs.ca.cert,
      upstream_verify_cert: "yes",
      upstream_verify_hostname: "yes",
      upstream_connect_timeout: "5s",
      node_id: g.nodeId,
      session_ttl: "5m",
      limit_stanza_bytes: 16384,
      shutdown_timeout: "5s",
      log_level: "debug",
      log_file: "-",
      http_listen: `127.0.0.1:${g.httpPort}`,
      // The readiness probe's TCP connects would reach fake upstreams as unexpected
      // connections; tests of /readyz turn it on.
      ready_probe_interval: "0s",
    };
    if (env.redis) cfg.redis = env.redis.url;
    if (env.prosody) {
      cfg.component = `127.0.0.1:${env.prosody.componentPort}`;
      cfg.component_domain = COMPONENT.domain;
      cfg.component_secret = COMPONENT.secret;
    } else {
      cfg.component = "off";
    }
    for (const [k, v] of Object.entries(options)) {
      if (k === "ws_port" || k === "http_port") continue;
      if (v === undefined || v === null) delete cfg[k];
      else cfg[k] = v;
    }
    g.config = cfg;
    g.confFile = path.join(env.dir, `mxgw-${g.n}.conf`);
    fs.writeFileSync(g.confFile, "# Generated by tests/integration/lib/env.mjs\n" +
      Object.entries(cfg).map(([k, v]) => `${k} = ${v}`).join("\n") + "\n");
    if (!fs.existsSync(MXGW_BIN)) {
      throw new Error(`mxgw binary not found at ${MXGW_BIN} (build it with scripts/build --sanitize or set MXGW_BIN)`);
    }
    g.child = new Child("mxgw", MXGW_BIN, ["-c", g.confFile], {
      logFile: path.join(env.dir, `mxgw-${g.n}.log`),
      env: {
        ASAN_OPTIONS: process.env.ASAN_OPTIONS ||
          "abort_on_error=0:halt_on_error=1:detect_leaks=1:strict_string_checks=1",
        UBSAN_OPTIONS: process.env.UBSAN_OPTIONS || "print_stacktrace=1:halt_on_error=1",
      },
    });
    env.gateways.push(g);
    await waitForPort(g.wsPort, { child: g.child });
    await waitForPort(g.httpPort, { child: g.child });
    return g;
  }

  get wsUrl() {
    return `ws://127.0.0.1:${this.wsPort}/xmpp-websocket`;
  }

  /** The HTTP listener (BOSH, the demo page). */
  get httpUrl() {
    return `http://127.0.0.1:${this.httpPort}`;
  }

  get boshUrl() {
    return `${this.httpUrl}${this.config.bosh_path ?? "/http-bind"}`;
  }

  /** The bytes waiting in one of mxgw's write queues ("ws", "upstream"), from /metrics. */
  async queuedBytes(queue) {
    const r = await fetch(`${this.httpUrl}/metrics`);
    const m = new RegExp(`^mxgw_queue_bytes\\{queue="${queue}"\\} (\\d+)`, "m").exec(await r.text());
    return m ? Number(m[1]) : NaN;
  }

  get running() {
    return this.child.running;
  }

  log() {
    return this.child.log();
  }

  /** The first sanitizer report in mxgw's output, or null. */
  sanitizerReport() {
    const log = this.log();
    const m = SANITIZER_RE.exec(log);
    if (!m) return null;
    return log.slice(Math.max(0, m.index - 200), m.index + 6000);
  }

  stop(timeoutMs = 8000) {
    return this.child.stop(timeoutMs);
  }
}

// ---------------------------------------------------------------------------------------------
// The environment: one temp dir, certificates, Redis, Prosody, any number of gateways.

export class Env {
  /**
   * opts: { redis: bool (default true), prosody: bool (default true), prosodyOptions (see
   * Prosody.start); prosodyAuth and prosodyExtra are short for prosodyOptions.auth and
   * .extraConfig }
   */
  static async start(opts = {}) {
    const env = new Env();
    env.dir = fs.mkdtempSync(path.join(os.tmpdir(), "mxgw-it-"));
    fs.chmodSync(env.dir, 0o755); // Prosody runs as its own user and must reach its subdir
    env.gateways = [];
    env.gatewayCount = 0;
    env.clients = new Set();
    env.fakes = [];
    env.redis = null;
    env.prosody = null;
    try {
      env.certs = makeCerts(path.join(env.dir, "certs"));
      extraCAs.push(fs.readFileSync(env.certs.ca.cert, "utf8"));
      if (opts.redis !== false) env.redis = await Redis.start(env.dir);
      if (opts.prosody !== false) {
        const po = { ...opts.prosodyOptions };
        if (opts.prosodyAuth) po.auth = opts.prosodyAuth;
        if (opts.prosodyExtra) po.extraConfig = [po.extraConfig, opts.prosodyExtra].filter(Boolean).join("\n");
        env.prosody = await Prosody.start(env.dir, env.certs, USERS, po);
      }
    } catch (err) {
      await env.stop().catch(() => {});
      throw err;
    }
    return env;
  }

  startGateway(options) {
    return Gateway.start(this, options);
  }

  async startFakeUpstream(options = {}) {
    const f = await FakeUpstream.start({ certs: this.certs, ...options });
    this.fakes.push(f);
    return f;
  }

  /** Logs in an @xmpp/client user; tracked so stop() ends it. */
  async login(opts) {
    const u = await XmppUser.connect(opts);
    this.clients.add(u);
    return u;
  }

  /** Fails if any gateway printed a sanitizer report. */
  assertNoSanitizerReports() {
    for (const g of this.gateways) {
      const r = g.sanitizerReport();
      if (r) throw new Error(`mxgw-${g.n} sanitizer report:\n${r}`);
    }
  }

  /** Text to append to a failure: the tails of every gateway's log and Prosody's. */
  diagnostics(lines = 60) {
    let out = "";
    for (const g of this.gateways) {
      out += `\n--- mxgw-${g.n} (${g.running ? "running" : JSON.stringify(g.child.exited)}) ` +
        `${g.child.logFile} ---\n${g.child.logTail(lines)}`;
    }
    return out;
  }

  /**
   * Stops everything. Throws afterwards if a gateway printed a sanitizer report (leaks are
   * reported at exit) or did not exit with status 0 on SIGTERM.
   */
  async stop() {
    for (const u of this.clients) await u.stop().catch(() => {});
    this.clients.clear();
    const problems = [];
    for (const g of this.gateways) {
      const wasRunning = g.running;
      const r = await g.stop().catch((err) => ({ error: err.message }));
      if (wasRunning && (r.code !== 0 || r.signal)) {
        problems.push(`mxgw-${g.n} did not exit cleanly on SIGTERM: ${JSON.stringify(r)}\n${g.child.logTail(40)}`);
      }
      const report = g.sanitizerReport();
      if (report) problems.push(`mxgw-${g.n} sanitizer report:\n${report}`);
    }
    await this.stopServices(problems.length > 0);
    if (problems.length) throw new Error(`${problems.join("\n\n")}\n(files kept in ${this.dir})`);
  }

  async stopServices(keepDir = false) {
    for (const f of this.fakes) await f.stop().catch(() => {});
    if (this.prosody) await this.prosody.stop().catch(() => {});
    if (this.redis) await this.redis.stop().catch(() => {});
    if (this.certs) {
      const ca = fs.readFileSync(this.certs.ca.cert, "utf8");
      const i = extraCAs.indexOf(ca);
      if (i >= 0) extraCAs.splice(i, 1);
    }
    if (this.dir && !keepDir && process.env.MXGW_IT_KEEP !== "1") {
      fs.rmSync(this.dir, { recursive: true, force: true });
    }
  }
}

/**
 * Wraps a test body: on failure the gateway logs are appended to the error; after the body,
 * any sanitizer report from any gateway fails the test.
 */
export function guarded(getEnv, fn) {
  return async (t) => {
    const env = getEnv();
    try {
      await fn(t);
      env?.assertNoSanitizerReports();
    } catch (err) {
      if (env) {
        const d = env.diagnostics();
        if (err instanceof Error) err.message += `\n${d}`;
      }
      throw err;
    }
  };
}

// ---------------------------------------------------------------------------------------------
// @xmpp/client users

export class XmppUser {
  /**
   * Connects and logs in. service: ws://… or xmpp://…; mechanism: the SASL mechanism to insist
   * on (the login fails if it is not offered). Resolves once the resource is bound.
   */
  static async connect({ service, username, password, resource, mechanism = "SCRAM-SHA-1",
    timeoutMs = 15000 }) {
    const u = new XmppUser();
    u.username = username;
    u.features = [];
    u.sent = [];
    u.stanzas = [];
    u.waiters = new Set();
    u.errors = [];
    const xmpp = xmppClient({
      service,
      domain: DOMAIN,
      resource: resource || `it-${crypto.randomBytes(4).toString("hex")}`,
      credentials: async (authenticate, mechanisms) => {
        u.offeredMechanisms = mechanisms;
        if (!mechanisms.includes(mechanism)) {
          throw new Error(`${mechanism} not offered (offered: ${mechanisms.join(", ")})`);
        }
        u.mechanism = mechanism;
        await authenticate({ username, password }, mechanism);
      },
    });
    u.xmpp = xmpp;
    xmpp.reconnect.stop();
    xmpp.on("error", (err) => u.errors.push(err));
    xmpp.on("send", (el) => u.sent.push(el));
    xmpp.on("element", (el) => {
      if (el.is("features", NS.stream)) u.features.push(el);
    });
    xmpp.on("stanza", (s) => {
      u.stanzas.push(s);
      for (const w of u.waiters) w();
    });
    try {
      u.jid = await withTimeout(xmpp.start(), timeoutMs, `login of ${username} via ${service}`);
    } catch (err) {
      await u.stop();
      if (u.errors.length) err.message += ` (client errors: ${u.errors.map((e) => e.message).join("; ")})`;
      throw err;
    }
    return u;
  }

  get socket() {
    return this.xmpp.socket?.socket;
  }

  send(el) {
    return this.xmpp.send(el);
  }

  /** Resolves with (and removes) the first received stanza matching pred. */
  waitFor(pred, { timeoutMs = 10000, what = "a stanza" } = {}) {
    return new Promise((resolve, reject) => {
      const check = () => {
        const i = this.stanzas.findIndex(pred);
        if (i < 0) return false;
        const [s] = this.stanzas.splice(i, 1);
        this.waiters.delete(check);
        clearTimeout(timer);
        resolve(s);
        return true;
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`${this.username}: no ${what} within ${timeoutMs} ms ` +
          `(status ${this.xmpp.status}; got ${this.stanzas.map((s) => s.toString()).join(" ")})`));
      }, timeoutMs);
      if (!check()) this.waiters.add(check);
    });
  }

  async stop(timeoutMs = 5000) {
    if (this.stopped) return;
    this.stopped = true;
    try {
      await withTimeout(this.xmpp.stop(), timeoutMs, `stop of ${this.username}`);
    } catch {
      try {
        this.socket?.destroy?.();
        this.socket?.terminate?.();
      } catch {
        /* already gone */
      }
    }
  }
}

/**
 * Sends a chat message from a to b's full JID and back, asserting both arrive with the exact
 * body and sender. Proves both sessions still work.
 */
export async function exchangeMessages(a, b, tag = "ping", timeoutMs = 10000) {
  for (const [from, to] of [[a, b], [b, a]]) {
    const body = `${tag} ${from.username}->${to.username} ${crypto.randomBytes(6).toString("hex")} <&>`;
    const id = crypto.randomBytes(6).toString("hex");
    await from.send(xml("message", { to: to.jid.toString(), type: "chat", id }, xml("body", {}, body)));
    const got = await to.waitFor(
      (s) => s.is("message") && s.getChildText("body") === body,
      { timeoutMs, what: `message "${body}"` },
    );
    assert.equal(got.attrs.from, from.jid.toString(), "sender of the relayed message");
    assert.equal(got.attrs.type, "chat");
  }
}

// ---------------------------------------------------------------------------------------------
// Raw RFC 7395 WebSocket client

export function openFrame(to = DOMAIN) {
  return `<open xmlns="${NS.framing}" to="${to}" version="1.0"/>`;
}

export const CLOSE_FRAME = `<close xmlns="${NS.framing}"/>`;

/** Parses one WebSocket message; null when it is not well-formed XML. */
export function tryParse(text) {
  try {
    return parseXml(text);
  } catch {
    return null;
  }
}

export function isStreamError(el) {
  return !!el && el.getName() === "error" && el.getNS() === NS.stream;
}

export function streamErrorCondition(el) {
  const c = el.children.find((ch) => typeof ch === "object" && ch.getNS?.() === NS.streams &&
    ch.getName() !== "text");
  return c ? c.getName() : null;
}

export class RawWs {
  /**
   * Opens a WebSocket. protocols: the subprotocols to ask for (default ["xmpp"]).
   * Rejects with err.status set when the upgrade is refused with an HTTP response.
   */
  static connect(url, { protocols = ["xmpp"], localAddress, timeoutMs = 10000, headers } = {}) {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, protocols, {
        localAddress, headers, handshakeTimeout: timeoutMs, perMessageDeflate: false,
      });
      const c = new RawWs(ws);
      ws.once("open", () => resolve(c));
      ws.once("unexpected-response", (req, res) => {
        const err = new Error(`upgrade refused: HTTP ${res.statusCode}`);
        err.status = res.statusCode;
        res.resume();
        req.destroy();
        reject(err);
      });
      ws.once("error", reject);
    });
  }

  constructor(ws) {
    this.ws = ws;
    this.events = [];
    this.transcript = [];
    this.wake = null;
    this.closeInfo = null;
    ws.on("error", (err) => {
      this.error = err;
    });
    ws.on("message", (data, isBinary) => {
      const ev = { type: "message", binary: isBinary, data: isBinary ? data : data.toString("utf8") };
      this.transcript.push(isBinary ? `[binary ${data.length}]` : ev.data);
      this.push(ev);
    });
    ws.on("close", (code, reason) => {
      this.closeInfo = { code, reason: reason.toString() };
      this.transcript.push(`[close ${code} ${reason}]`);
      this.push({ type: "close", ...this.closeInfo });
    });
  }

  push(ev) {
    this.events.push(ev);
    if (this.wake) this.wake();
  }

  get isOpen() {
    return this.ws.readyState === WebSocket.OPEN;
  }

  /** The next event: { type: "message", data, binary } or { type: "close", code, reason }. */
  async next(timeoutMs = 10000) {
    const deadline = Date.now() + timeoutMs;
    while (this.events.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(`no WebSocket event within ${timeoutMs} ms; transcript: ${this.describe()}`);
      }
      await new Promise((resolve) => {
        const t = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.wake = null;
    }
    const ev = this.events.shift();
    if (ev.type === "close") this.events.unshift(ev); // the close stays visible to later calls
    return ev;
  }

  /** The next message as text; fails if the socket closes first. */
  async nextText(timeoutMs = 10000) {
    const ev = await this.next(timeoutMs);
    if (ev.type === "close") {
      throw new Error(`WebSocket closed (${ev.code} ${ev.reason}) while a message was expected; ` +
        `transcript: ${this.describe()}`);
    }
    assert.equal(ev.binary, false, "mxgw must send text frames");
    return ev.data;
  }

  /** The next message parsed as exactly one element. */
  async nextElement(timeoutMs = 10000) {
    const text = await this.nextText(timeoutMs);
    const el = tryParse(text);
    assert.ok(el, `message is not one well-formed element: ${text}`);
    return el;
  }

  /** Waits for the close and returns { code, reason, messages } (messages seen before it). */
  async waitClose(timeoutMs = 10000) {
    const messages = [];
    for (;;) {
      const ev = await this.next(timeoutMs);
      if (ev.type === "close") return { code: ev.code, reason: ev.reason, messages };
      messages.push(ev.data);
    }
  }

  send(text) {
    this.ws.send(text);
  }

  sendBinary(buf) {
    this.ws.send(buf, { binary: true });
  }

  /** Sends bytes in a text frame without checking they are UTF-8. */
  sendTextBytes(buf) {
    this.ws.send(buf, { binary: false });
  }

  describe() {
    return JSON.stringify(this.transcript).slice(0, 4000);
  }

  close() {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) {
      this.ws.terminate();
    }
  }

  /** Sends <open/> and reads the <open/> answer and the <stream:features/>. */
  async openStream(to = DOMAIN, timeoutMs = 10000) {
    this.send(openFrame(to));
    const open = await this.nextElement(timeoutMs);
    assert.ok(open.is("open", NS.framing), `expected <open/>, got ${open}`);
    const features = await this.nextElement(timeoutMs);
    assert.ok(features.is("features", NS.stream), `expected <stream:features/>, got ${features}`);
    return { open, features };
  }

  /** Logs in with SASL PLAIN and binds a resource, all as raw frames; returns the full JID. */
  async login(username, password, timeoutMs = 10000) {
    const { features } = await this.openStream(DOMAIN, timeoutMs);
    const mechs = features.getChild("mechanisms", NS.sasl);
    assert.ok(mechs, `no SASL mechanisms in ${features}`);
    const auth = Buffer.from(`\0${username}\0${password}`).toString("base64");
    this.send(`<auth xmlns="${NS.sasl}" mechanism="PLAIN">${auth}</auth>`);
    const result = await this.nextElement(timeoutMs);
    assert.ok(result.is("success", NS.sasl), `SASL PLAIN failed: ${result}`);
    const { features: f2 } = await this.openStream(DOMAIN, timeoutMs);
    assert.ok(f2.getChild("bind", NS.bind), `no bind feature in ${f2}`);
    this.send(`<iq xmlns="${NS.client}" type="set" id="bind1"><bind xmlns="${NS.bind}">` +
      `<resource>raw-${crypto.randomBytes(4).toString("hex")}</resource></bind></iq>`);
    const iq = await this.nextElement(timeoutMs);
    assert.equal(iq.attrs.type, "result", `bind failed: ${iq}`);
    this.jid = iq.getChild("bind", NS.bind).getChildText("jid");
    return this.jid;
  }
}

/**
 * Reads until a <stream:error/>, asserting its condition, then a <close/>, then the WebSocket
 * close. Before the error only <open/> and <stream:features/> may appear. Returns
 * { error, closeCode }.
 */
export async function expectStreamError(c, condition, { timeoutMs = 10000, closeCode } = {}) {
  const deadline = Date.now() + timeoutMs;
  const left = () => Math.max(1, deadline - Date.now());
  let error;
  for (;;) {
    const ev = await c.next(left());
    if (ev.type === "close") {
      assert.fail(`WebSocket closed (${ev.code} "${ev.reason}") without a <stream:error> ` +
        `<${condition}/>; transcript: ${c.describe()}`);
    }
    const el = tryParse(ev.data);
    assert.ok(el, `not well-formed XML from mxgw: ${ev.data}`);
    if (isStreamError(el)) {
      error = el;
      break;
    }
    assert.ok(el.is("open", NS.framing) || el.is("features", NS.stream),
      `unexpected message before the stream error: ${ev.data}`);
  }
  assert.equal(streamErrorCondition(error), condition,
    `stream error condition (got ${error.toString()})`);
  const close = await c.next(left());
  assert.equal(close.type, "message", `expected <close/> after the stream error, got close ` +
    `${close.code}; transcript: ${c.describe()}`);
  const closeEl = tryParse(close.data);
  assert.ok(closeEl?.is("close", NS.framing), `expected <close/> after the stream error, got ${close.data}`);
  const end = await c.next(left());
  assert.equal(end.type, "close", `expected the WebSocket to close after <close/>, got ${end.data}`);
  assert.notEqual(end.code, 1006, "the WebSocket must be closed with a close frame, not dropped");
  if (closeCode !== undefined) assert.equal(end.code, closeCode, "WebSocket close code");
  return { error, closeCode: end.code };
}

// ---------------------------------------------------------------------------------------------
// Fake upstream XMPP server

const STREAM_HEADER = `<?xml version='1.0'?><stream:stream xmlns='jabber:client' ` +
  `xmlns:stream='${NS.stream}' from='localhost' version='1.0' id=`;

export function streamHeader() {
  return `${STREAM_HEADER}'${crypto.randomBytes(8).toString("hex")}'>`;
}

export const FEATURES_STARTTLS = `<stream:features><starttls xmlns='${NS.tls}'><required/>` +
  `</starttls></stream:features>`;
export const FEATURES_SASL_PLAIN = `<stream:features><mechanisms xmlns='${NS.sasl}'>` +
  `<mechanism>PLAIN</mechanism></mechanisms></stream:features>`;
export const FEATURES_BIND = `<stream:features><bind xmlns='${NS.bind}'/></stream:features>`;

/** One upstream connection seen by the fake server, in plain text or after STARTTLS. */
export class FakeConn {
  constructor(socket, certs) {
    this.certs = certs;
    this.received = ""; // all plaintext received, across TLS
    this.attach(socket);
    this.closed = new Promise((resolve) => {
      this.onClosed = resolve;
    });
  }

  attach(socket) {
    this.socket = socket;
    this.buf = "";
    socket.setEncoding?.("utf8");
    socket.on("data", (d) => {
      const s = typeof d === "string" ? d : d.toString("utf8");
      this.buf += s;
      this.received += s;
      this.wake?.();
    });
    socket.on("error", (err) => {
      this.error = err;
      this.wake?.();
    });
    socket.on("close", () => {
      if (socket === this.socket) {
        this.ended = true;
        this.onClosed?.();
        this.wake?.();
      }
    });
  }

  /** Waits until the unread input matches re; consumes input up to the end of the match. */
  async read(re, timeoutMs = 10000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = re.exec(this.buf);
      if (m) {
        this.buf = this.buf.slice(m.index + m[0].length);
        return m;
      }
      if (this.ended) throw new Error(`fake upstream: connection ended waiting for ${re}; got ${this.received}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`fake upstream: no ${re} within ${timeoutMs} ms; got ${this.received}`);
      await new Promise((resolve) => {
        const t = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.wake = null;
    }
  }

  write(s) {
    this.socket.write(s);
  }

  /** Reads a stream header and answers with our own plus features. */
  async openStream(features) {
    const m = await this.read(/<stream:stream[^>]*>/);
    this.lastHeader = m[0];
    this.write(streamHeader() + features);
    return m[0];
  }

  /**
   * Plays the server's side of a login as mxgw runs it: STARTTLS with cert, SASL PLAIN (any
   * password succeeds), then features (bind, perhaps sm) and a bind result giving jid.
   */
  async acceptLogin(cert, jid, features = FEATURES_BIND) {
    await this.openStream(FEATURES_STARTTLS);
    const tlsResult = await this.startTls(cert);
    if (tlsResult !== "secure") throw new Error(`fake upstream: TLS ${tlsResult}`);
    await this.openStream(FEATURES_SASL_PLAIN);
    await this.read(/<auth[^>]*>[^<]*<\/auth>/);
    this.write(`<success xmlns='${NS.sasl}'/>`);
    await this.openStream(features);
    const iq = await this.read(/<iq[^>]*\sid=["']([^"']+)["'][^>]*>[\s\S]*?<\/iq>/);
    this.write(`<iq type='result' id='${iq[1]}'><bind xmlns='${NS.bind}'><jid>${jid}</jid></bind></iq>`);
  }

  /** Answers <starttls/> with <proceed/> and starts TLS as the server with cert. */
  async startTls(cert) {
    await this.read(/<starttls[^>]*\/>|<starttls[^>]*>\s*<\/starttls>/);
    this.write(`<proceed xmlns='${NS.tls}'/>`);
    const raw = this.socket;
    raw.removeAllListeners("data");
    const tlsSock = new tls.TLSSocket(raw, {
      isServer: true,
      secureContext: tls.createSecureContext({
        cert: fs.readFileSync(cert.cert), key: fs.readFileSync(cert.key),
      }),
    });
    this.tlsResult = new Promise((resolve) => {
      tlsSock.once("secure", () => resolve("secure"));
      tlsSock.once("error", (err) => resolve(`error: ${err.code || err.message}`));
      tlsSock.once("close", () => resolve("closed"));
    });
    this.attach(tlsSock);
    return this.tlsResult;
  }

  end() {
    this.socket.end();
  }

  destroy() {
    this.socket.destroy();
  }
}

/**
 * A TCP server standing in for the XMPP server. Each accepted connection is handed to the next
 * queued scenario (an async function of a FakeConn); with none queued it is piped to proxyTo
 * (the real Prosody) when given, or closed. So a test can make exactly one upstream stream
 * misbehave while the other sessions keep talking to Prosody through the same address.
 */
export class FakeUpstream {
  static async start({ certs, proxyTo } = {}) {
    const f = new FakeUpstream();
    f.certs = certs;
    f.proxyTo = proxyTo;
    f.queue = [];
    f.sockets = new Set();
    f.accepted = 0;
    f.server = net.createServer((sock) => f.onConnection(sock));
    await new Promise((resolve, reject) => {
      f.server.once("error", reject);
      f.server.listen(0, "127.0.0.1", resolve);
    });
    f.port = f.server.address().port;
    return f;
  }

  /**
   * Queues a scenario for the next upstream connection. Returns { conn, done }: conn resolves
   * with the FakeConn once connected; done resolves with the scenario's result (or its error).
   */
  expect(scenario) {
    let connResolve;
    const conn = new Promise((resolve) => {
      connResolve = resolve;
    });
    const entry = { scenario, connResolve };
    entry.done = new Promise((resolve) => {
      entry.resolveDone = resolve;
    });
    this.queue.push(entry);
    return { conn, done: entry.done };
  }

  onConnection(sock) {
    this.accepted++;
    this.sockets.add(sock);
    sock.on("close", () => this.sockets.delete(sock));
    const entry = this.queue.shift();
    if (entry) {
      const c = new FakeConn(sock, this.certs);
      entry.connResolve(c);
      Promise.resolve()
        .then(() => entry.scenario(c))
        .then((r) => entry.resolveDone({ ok: true, value: r, conn: c }),
          (err) => entry.resolveDone({ ok: false, error: err, conn: c }));
      return;
    }
    if (this.proxyTo) {
      const up = net.connect({ port: this.proxyTo, host: "127.0.0.1" });
      this.sockets.add(up);
      up.on("close", () => this.sockets.delete(up));
      sock.pipe(up);
      up.pipe(sock);
      sock.on("error", () => up.destroy());
      up.on("error", () => sock.destroy());
      sock.on("close", () => up.destroy());
      up.on("close", () => sock.destroy());
      return;
    }
    sock.destroy();
  }

  async stop() {
    for (const s of this.sockets) s.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

// ---------------------------------------------------------------------------------------------
// Redis restarts (session-continuity tests)

/** Starts a stopped Redis again, on the same port and directory, with an empty dataset. */
export async function restartRedis(redis) {
  if (redis.child.running) return;
  redis.child = new Child("redis", "redis-server", [
    "--port", String(redis.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
    "--dir", redis.dir, "--daemonize", "no", "--logfile", "", "--protected-mode", "yes",
  ], { logFile: path.join(redis.dir, "..", "redis.log") });
  await waitForPort(redis.port, { child: redis.child });
}

// ---------------------------------------------------------------------------------------------
// REST API and operations (web/rest*.c, web/ops.c)

/** Config keys that connect a gateway to the test Prosody's component (XEP-0114). */
export function componentOptions(env, port) {
  return {
    component: `127.0.0.1:${port ?? env.prosody.componentPort}`,
    component_domain: COMPONENT.domain,
    component_secret: COMPONENT.secret,
  };
}

/**
 * Creates an API key with `mxgw key create` against the gateway's config (its store must be
 * Redis). Returns { token, id }.
 */
export function createApiKey(gw, { jids = [`orders@${COMPONENT.domain}`], ops = ["*"], name = "it" } = {}) {
  const args = ["key", "create", "-c", gw.confFile, "--name", name];
  for (const j of jids) args.push("--jid", j);
  for (const o of ops) args.push("--op", o);
  const out = execFileSync(MXGW_BIN, args, {
    encoding: "utf8", timeout: 20000,
    env: { ...process.env, ASAN_OPTIONS: "detect_leaks=1" },
  }).trim();
  const m = /^mxgw_([0-9a-f]{16})_[0-9a-f]{64}$/.exec(out);
  if (!m) throw new Error(`mxgw key create printed ${JSON.stringify(out)}`);
  return { token: out, id: m[1] };
}

/** Runs `mxgw key ARGS… -c FILE`; returns { code, stdout, stderr }. */
export function keyCommand(gw, ...args) {
  return new Promise((resolve) => {
    execFile(MXGW_BIN, ["key", ...args, "-c", gw.confFile], { timeout: 20000 },
      (err, stdout, stderr) => resolve({ code: err ? err.code : 0, stdout, stderr }));
  });
}

/**
 * One raw HTTP request to a gateway (node:http, so the path is sent exactly as given: no URL
 * normalisation). Returns { status, headers, text, json }.
 */
export function httpRequest(gw, method, path, { headers = {}, body, timeoutMs = 20000 } = {}) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined
      : typeof body === "string" || Buffer.isBuffer(body) ? body : JSON.stringify(body);
    const h = { ...headers };
    // A header given as undefined is left out (Content-Length: undefined sends a chunked body).
    if (data !== undefined && !("Content-Length" in h)) h["Content-Length"] = Buffer.byteLength(data);
    for (const k of Object.keys(h)) if (h[k] === undefined || h[k] === null) delete h[k];
    const req = http.request({ host: "127.0.0.1", port: gw.httpPort, method, path, headers: h }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let json;
        try {
          json = text ? JSON.parse(text) : undefined;
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode, headers: res.headers, text, json });
      });
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${path}: no answer in ${timeoutMs} ms`)));
    req.on("error", reject);
    if (data !== undefined) req.write(data);
    req.end();
  });
}

/** A REST call with a Bearer key and a JSON body. */
export function restCall(gw, method, path, { key, body, headers = {}, ...rest } = {}) {
  const h = { Accept: "application/json", ...headers };
  if (key) h.Authorization = `Bearer ${key}`;
  if (body !== undefined && !h["Content-Type"]) h["Content-Type"] = "application/json";
  return httpRequest(gw, method, path, { headers: h, body, ...rest });
}

/**
 * A TCP relay from a local port to target, which can be cut (connections dropped, port closed)
 * and restored on the same port: a component link that goes down and comes back.
 */
export class TcpRelay {
  static async start(targetPort) {
    const r = new TcpRelay();
    r.targetPort = targetPort;
    r.sockets = new Set();
    r.port = await freePort();
    await r.up();
    return r;
  }

  up() {
    this.server = net.createServer((client) => {
      const upstream = net.connect(this.targetPort, "127.0.0.1");
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on("close", () => this.sockets.delete(s));
        s.on("error", () => {});
      }
      client.pipe(upstream);
      upstream.pipe(client);
      client.on("close", () => upstream.destroy());
      upstream.on("close", () => client.destroy());
    });
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(this.port, "127.0.0.1", resolve);
    });
  }

  down() {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** Parses Prometheus text into { "name{labels}": value }. */
export function parseMetrics(text) {
  const out = {};
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const i = line.lastIndexOf(" ");
    out[line.slice(0, i)] = Number(line.slice(i + 1));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Push: an HTTPS receiver standing in for push services, a JSON-protocol client, Web Push
// decryption and VAPID verification written here with Node's own crypto (independent of mxgw's
// mbedTLS code), and a Prosody restart on the same ports.

import https from "node:https";

/** An HTTPS server with a certificate from the test CA, recording every request. */
export class PushReceiver {
  static async start(certs, { cert = certs.localhost } = {}) {
    const r = new PushReceiver();
    r.requests = [];
    r.connections = 0;
    r.waiters = new Set();
    r.routes = [];
    r.held = [];
    r.server = https.createServer({
      cert: fs.readFileSync(cert.cert), key: fs.readFileSync(cert.key),
    }, (req, res) => r.handle(req, res));
    r.server.on("secureConnection", () => r.connections++);
    r.server.on("connection", () => r.tcpConnections = (r.tcpConnections || 0) + 1);
    await new Promise((resolve, reject) => {
      r.server.once("error", reject);
      r.server.listen(0, "127.0.0.1", resolve);
    });
    r.port = r.server.address().port;
    return r;
  }

  /** The URL of path on this receiver, by name (localhost) as mxgw must reach it. */
  url(path) {
    return `https://localhost:${this.port}${path}`;
  }

  /** Answers requests whose path starts with prefix: fn(rec) → { status, headers, body } or a
   *  status, or { hold: true } to leave the request unanswered. */
  route(prefix, fn) {
    this.routes.unshift({ prefix, fn });
  }

  handle(req, res) {
    const chunks = [];
    let size = 0;
    req.on("data", (c) => {
      size += c.length;
      if (size <= 65536) chunks.push(c);
    });
    req.on("end", () => {
      const rec = {
        method: req.method, path: req.url, headers: req.headers, body: Buffer.concat(chunks),
        at: Date.now(), hr: process.hrtime.bigint(),
      };
      this.requests.push(rec);
      const route = this.routes.find((x) => req.url.startsWith(x.prefix));
      let out = route ? route.fn(rec) : 201;
      if (typeof out === "number") out = { status: out };
      for (const w of [...this.waiters]) w();
      if (out.hold) { // never answered: the client is left waiting
        this.held.push(res);
        return;
      }
      res.writeHead(out.status, out.headers || {});
      res.end(out.body || "");
    });
  }

  /** Requests whose path starts with prefix. */
  on(prefix) {
    return this.requests.filter((r) => r.path.startsWith(prefix));
  }

  /** Resolves with the n-th (1-based) request whose path starts with prefix. */
  waitFor(prefix, { n = 1, timeoutMs = 15000 } = {}) {
    return withTimeout(new Promise((resolve) => {
      const check = () => {
        const got = this.on(prefix);
        if (got.length >= n) {
          this.waiters.delete(check);
          resolve(got[n - 1]);
        }
      };
      this.waiters.add(check);
      check();
    }), timeoutMs, `push request #${n} to ${prefix} (got ${this.on(prefix).length})`);
  }

  stop() {
    for (const res of this.held) res.destroy();
    this.server.closeAllConnections?.();
    return new Promise((resolve) => this.server.close(resolve));
  }
}

/** A client of the JSON protocol (docs/json-protocol.md). */
export class JsonSession {
  static async connect(url) {
    const c = new JsonSession();
    c.ws = new WebSocket(url, ["mxgw.json.v1"]);
    c.inbox = [];
    c.waiters = new Set();
    c.closed = new Promise((resolve) => c.ws.on("close", (code) => resolve(code)));
    c.ws.on("message", (data) => {
      c.inbox.push(JSON.parse(data.toString()));
      for (const w of [...c.waiters]) w();
    });
    await new Promise((resolve, reject) => {
      c.ws.once("open", resolve);
      c.ws.once("error", reject);
    });
    return c;
  }

  send(obj) {
    this.ws.send(JSON.stringify(obj));
  }

  /** Resolves with (and removes) the first object matching pred. */
  next(pred, what = "a message", timeoutMs = 15000) {
    return withTimeout(new Promise((resolve) => {
      const check = () => {
        const i = this.inbox.findIndex(pred);
        if (i >= 0) {
          this.waiters.delete(check);
          resolve(this.inbox.splice(i, 1)[0]);
        }
      };
      this.waiters.add(check);
      check();
    }), timeoutMs, `${what}; inbox: ${JSON.stringify(this.inbox).slice(0, 2000)}`);
  }

  /** Sends an op with a fresh id and waits for the answer carrying that id. */
  async request(obj, timeoutMs = 15000) {
    const id = crypto.randomBytes(4).toString("hex");
    this.send({ ...obj, id });
    return this.next((o) => o.id === id, `the answer to ${obj.op}`, timeoutMs);
  }

  async login(user, password, resource = "phone") {
    this.send({ op: "login", jid: `${user}@${DOMAIN}`, password, resource });
    const s = await this.next((o) => o.op === "session" || o.op === "error", "the login answer");
    assert.equal(s.op, "session", `login failed: ${JSON.stringify(s)}`);
    return s.jid;
  }

  async logout() {
    this.send({ op: "logout" });
    await withTimeout(this.closed, 10000, "the close after logout");
  }

  close() {
    this.ws.terminate();
  }
}

/** A Web Push subscription's keys, as a browser makes them. */
export function webpushKeys() {
  const ecdh = crypto.createECDH("prime256v1");
  ecdh.generateKeys();
  const auth = crypto.randomBytes(16);
  return {
    ecdh, auth,
    publicKey: ecdh.getPublicKey(),
    p256dh: ecdh.getPublicKey().toString("base64url"),
    authB64: auth.toString("base64url"),
  };
}

/**
 * Decrypts an RFC 8291 aes128gcm body with the subscription's keys (RFC 8188 record layer,
 * one record). Returns { plaintext, record, rs } where record is the padded record length.
 */
export function webpushDecrypt(body, keys) {
  const salt = body.subarray(0, 16);
  const rs = body.readUInt32BE(16);
  const idlen = body[20];
  assert.equal(idlen, 65, "keyid must be the sender's 65-byte public key");
  const asPublic = body.subarray(21, 86);
  const ct = body.subarray(86);
  assert.ok(ct.length <= rs, "one record of at most rs bytes");
  const secret = keys.ecdh.computeSecret(asPublic);
  const info = Buffer.concat([Buffer.from("WebPush: info\0"), keys.publicKey, asPublic]);
  const ikm = Buffer.from(crypto.hkdfSync("sha256", secret, keys.auth, info, 32));
  const cek = Buffer.from(crypto.hkdfSync("sha256", ikm, salt,
    Buffer.from("Content-Encoding: aes128gcm\0"), 16));
  const nonce = Buffer.from(crypto.hkdfSync("sha256", ikm, salt,
    Buffer.from("Content-Encoding: nonce\0"), 12));
  const d = crypto.createDecipheriv("aes-128-gcm", cek, nonce);
  d.setAuthTag(ct.subarray(ct.length - 16));
  const record = Buffer.concat([d.update(ct.subarray(0, ct.length - 16)), d.final()]);
  let end = record.length - 1;
  while (end >= 0 && record[end] === 0) end--;
  assert.equal(record[end], 2, "the last record ends in delimiter 2 before its padding");
  return { plaintext: record.subarray(0, end), record: record.length, rs };
}

/**
 * Checks an RFC 8292 Authorization header: "vapid t=<JWT>, k=<key>", an ES256 signature that
 * verifies with k, and the claims. Returns { jwt, claims, key }.
 */
export function verifyVapid(header, { audience, subject }) {
  const m = /^vapid t=([^,\s]+),\s*k=([A-Za-z0-9_-]+)$/.exec(header || "");
  assert.ok(m, `Authorization is not "vapid t=…, k=…": ${header}`);
  const [, jwt, k] = m;
  const [h, c, s] = jwt.split(".");
  const head = JSON.parse(Buffer.from(h, "base64url"));
  assert.deepEqual(head, { typ: "JWT", alg: "ES256" });
  const claims = JSON.parse(Buffer.from(c, "base64url"));
  const pub = Buffer.from(k, "base64url");
  assert.equal(pub.length, 65);
  const key = crypto.createPublicKey({
    key: { kty: "EC", crv: "P-256", x: pub.subarray(1, 33).toString("base64url"),
      y: pub.subarray(33).toString("base64url") },
    format: "jwk",
  });
  const ok = crypto.verify("sha256", Buffer.from(`${h}.${c}`),
    { key, dsaEncoding: "ieee-p1363" }, Buffer.from(s, "base64url"));
  assert.ok(ok, "the VAPID JWT signature must verify with k");
  const now = Math.floor(Date.now() / 1000);
  assert.equal(claims.aud, audience, "aud is the push service's origin");
  assert.equal(claims.sub, subject, "sub is the configured contact");
  assert.ok(claims.exp > now && claims.exp <= now + 24 * 3600, `exp within 24 h: ${claims.exp}`);
  return { jwt, claims, key: k };
}

/** Checks a webhook request's signature; returns the parsed payload. */
export function verifyWebhook(rec, secret, { maxAgeS = 120 } = {}) {
  const ts = rec.headers["x-mxgw-timestamp"];
  const sig = rec.headers["x-mxgw-signature"];
  assert.ok(ts && sig, "webhook requests carry X-Mxgw-Timestamp and X-Mxgw-Signature");
  const want = "sha256=" + crypto.createHmac("sha256", secret)
    .update(`${ts}.`).update(rec.body).digest("hex");
  assert.equal(sig, want, "the webhook signature must verify");
  assert.ok(Math.abs(Date.now() / 1000 - Number(ts)) < maxAgeS, "the timestamp is fresh");
  assert.equal(rec.headers["content-type"], "application/json");
  return JSON.parse(rec.body);
}

/** Stops Prosody and starts it again on the same ports and config. */
export async function restartProsody(p) {
  await p.stop();
  p.child = new Child("prosody", "prosody", ["--config", path.join(p.dir, "prosody.cfg.lua"), "-F"], {
    logFile: path.join(p.dir, "stdout.log"),
    user: "prosody",
    cwd: p.dir,
  });
  await waitForPort(p.c2sPort, { child: p.child });
  await waitForPort(p.componentPort, { child: p.child });
}

/** Waits until the gateway's log matches re (a RegExp); returns the match. */
export function waitForLog(g, re, { timeoutMs = 15000, what } = {}) {
  return waitUntil(() => re.exec(g.log()), { timeoutMs, what: what || `${re} in mxgw's log` });
}
