// The command line and process signals: --version, --check-config (good file, unknown key, bad
// value, each error naming file, line and key), and SIGHUP reopening the log file so that log
// rotation works.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { spawnSync } from "node:child_process";
import { Env, MXGW_BIN, REPO_ROOT, RawWs, USERS, guarded, waitUntil } from "./lib/env.mjs";

let env;

before(async () => {
  env = await Env.start();
}, { timeout: 60000 });

after(async () => {
  await env?.stop();
}, { timeout: 60000 });

function mxgw(...args) {
  return spawnSync(MXGW_BIN, args, { encoding: "utf8" });
}

test("--version prints the version and exits 0", () => {
  const r = mxgw("--version");
  assert.equal(r.status, 0);
  assert.match(r.stdout, /^mxgw \d+\.\d+\.\d+\n$/);
});

test("--check-config accepts mxgw.conf.example and refuses bad files naming file, line and key", () => {
  const example = path.join(REPO_ROOT, "mxgw.conf.example");
  let r = mxgw("--check-config", "-c", example);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /: ok$/m);
  const bad = path.join(env.dir, "bad.conf");
  fs.writeFileSync(bad, "log_level = info\n\nno_such_key = 1\n");
  r = mxgw("--check-config", "-c", bad);
  assert.equal(r.status, 2);
  assert.equal(r.stderr.trim(), `mxgw: ${bad}:3: key 'no_such_key': unknown key`);
  fs.writeFileSync(bad, "upstream_tls = sometimes\n");
  r = mxgw("--check-config", "-c", bad);
  assert.equal(r.status, 2);
  assert.equal(r.stderr.trim(), `mxgw: ${bad}:1: key 'upstream_tls': expected off, starttls or required`);
  r = mxgw("-c");
  assert.equal(r.status, 2, "a missing argument is a usage error");
});

test("SIGHUP reopens the log file (rotation)", { timeout: 30000 }, guarded(() => env, async () => {
  const log = path.join(env.dir, "rotate.log");
  const gw = await env.startGateway({ log_file: log, log_level: "info" });
  await waitUntil(() => fs.existsSync(log) && fs.readFileSync(log, "utf8").includes("event=start"),
    { what: "the start line in the log file" });
  fs.renameSync(log, `${log}.1`);
  gw.child.signal("SIGHUP");
  await waitUntil(() => fs.existsSync(log), { what: "a new log file after SIGHUP" });
  const c = await RawWs.connect(gw.wsUrl);
  await c.login("alice", USERS.alice);
  c.close();
  await waitUntil(() => fs.readFileSync(log, "utf8").includes("event=session.open"),
    { what: "new events in the new file" });
  assert.ok(!fs.readFileSync(`${log}.1`, "utf8").includes("event=session.open"),
    "nothing is written to the rotated file after SIGHUP");
  assert.ok(fs.readFileSync(log, "utf8").includes("event=log.reopen"), "the reopen is logged");
}));
