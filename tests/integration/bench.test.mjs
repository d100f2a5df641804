// The benchmark in its small configuration (bench/run --quick: a few hundred sessions, a few
// seconds per setup), to prove that the driver and the run script still work end to end against
// the real Prosody, Redis and mxgw. It asserts what the run did (every setup ran, every session
// logged in, every message sent was delivered, each budget was evaluated, mxgw exited cleanly),
// never a timing or a budget's verdict: figures belong to docs/performance.md.

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { REPO_ROOT, MXGW_BIN } from "./lib/env.mjs";
import { socketWaitUnavailable } from "../../bench/sockwait.mjs";

test("bench/run --quick runs every setup end to end and prints figures and budgets", { timeout: 600000 },
  async () => {
    const driver = process.env.MXGW_BENCH_BIN ||
      path.join(path.dirname(MXGW_BIN), "bench", "mxgw-bench");
    assert.ok(fs.existsSync(driver), `driver not built at ${driver}`);
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "mxgw-bench-it-"));
    const jsonFile = path.join(tmp, "r.json");
    // --socket-wait traces with perf where perf can (scripts/deps installs it; tracing needs root)
    const noPerf = socketWaitUnavailable(tmp);
    const out = await new Promise((resolve, reject) => {
      const p = spawn(path.join(REPO_ROOT, "bench", "run"), ["--quick", "--socket-wait", "--json", jsonFile], {
        env: { ...process.env, MXGW_BIN, MXGW_BENCH_BIN: driver },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let text = "";
      p.stdout.on("data", (d) => (text += d));
      p.stderr.on("data", (d) => (text += d));
      p.on("error", reject);
      p.on("exit", (code) => (code === 0 ? resolve(text) : reject(new Error(`bench/run exited ${code}:\n${text}`))));
    });
    console.log(out.split("\n").filter((l) => l.startsWith("|") || l.startsWith("budget:")).join("\n"));
    assert.match(out, /### Figures/);
    assert.match(out, /mxgw BOSH: (not available in this build|measured)/);
    const { results, budgets } = JSON.parse(fs.readFileSync(jsonFile, "utf8"));
    for (const name of ["prosody-ws", "prosody-bosh", "relay-ws", "mxgw-xmpp", "mxgw-json"]) {
      const r = results[name];
      assert.ok(r, `setup ${name} produced a result`);
      assert.equal(r.ready, r.sessions, `${name}: every session logged in`);
      assert.equal(r.lost_after_login, 0, `${name}: no session lost`);
      assert.ok(r.sat.msgs_per_s > 0, `${name}: messages flowed at saturation`);
      assert.ok(r.flow.sent > 0, `${name}: messages were sent at the fixed rate`);
      assert.equal(r.flow.delivered, r.flow.sent, `${name}: every message sent was delivered`);
      assert.equal(r.flow.dropped, 0, `${name}: the driver dropped nothing`);
      assert.equal(r.flow.bad, 0, `${name}: every delivered body was readable`);
    }
    // mxgw's own forwarding times over the fixed-rate phase (read from its /metrics at the
    // phase's start and end): one per stanza to the server (the start is read a moment after the
    // phase began, hence the slack below), and at least one per delivered message to the client.
    for (const name of ["mxgw-xmpp", "mxgw-json"]) {
      const { forward, flow } = results[name];
      assert.ok(forward?.to_server && forward?.to_client, `${name}: forwarding times were read`);
      assert.ok(forward.to_server.n >= flow.sent / 2 && forward.to_server.n <= flow.sent,
        `${name}: ${forward.to_server.n} stanzas timed to the server for ${flow.sent} sent`);
      assert.ok(forward.to_client.n >= flow.delivered / 2,
        `${name}: ${forward.to_client.n} frames timed to the client for ${flow.delivered} delivered`);
      assert.ok(forward.to_server.p99_us > 0 && forward.to_client.p99_us > 0, `${name}: quantiles computed`);
    }
    assert.ok(results["relay-ws"].flow.cpu_us_per_msg.relay > 0, "the floor's CPU was measured");
    assert.match(budgets.find((b) => /RFC 7395/.test(b.what)).detail, /floor \(null relay in mxgw's place\)/);
    // The waits in the sockets of the process in mxgw's place, by byte read: with perf, for both
    // sides of the relay and of mxgw, and the latency verdict adds them to mxgw's clock; without
    // perf, the run says why, and mxgw's clock alone cannot pass the budget.
    const latency = budgets.find((b) => /latency added/.test(b.what));
    if (noPerf) {
      assert.match(out, /--socket-wait: not measured, /);
      assert.notEqual(latency.verdict, "PASS", "the clock alone leaves out the waits");
    } else {
      for (const name of ["relay-ws", "mxgw-xmpp", "mxgw-json"]) {
        const w = results[name].socket_wait;
        assert.ok(w, `${name}: socket waits traced`);
        for (const d of ["to_server", "to_client"])
          assert.ok(w[d].n >= results[name].flow.delivered * 20, `${name}: ${w[d].n} bytes read ${d} for ` +
            `${results[name].flow.delivered} messages (each over 20 bytes)`);
        assert.ok(w.p99_sum.bound_us > 0, `${name}: the waits' p99 bounded`);
      }
      for (const name of ["mxgw-xmpp", "mxgw-json"]) {
        const t = results[name].forward.p99_total;
        assert.equal(t.parts_us.length, 4, `${name}: two waits and two crossings`);
        assert.ok(t.bound_us >= results[name].forward.p99_sum.bound_us, `${name}: the waits only add`);
      }
      if (!/NOT RESOLVABLE/.test(latency.detail)) assert.match(latency.value, /JSON .* ms, RFC 7395 .* ms/);
      else assert.match(latency.value, /^inside mxgw with the waits in its sockets: /);
    }
    assert.equal(budgets.length, 10, "every budget is evaluated");
    for (const b of budgets) assert.match(b.verdict, /^(PASS|MISS|n\/a)$/, b.what);
    fs.rmSync(tmp, { recursive: true, force: true });
  });
