// Run: cd tests/integration && npm ci && MXGW_BIN=../../build/mxgw N=100 [BODY=8000] \
//   node ../../bench/deflate-mem.mjs
// Measures what permessage-deflate costs per JSON connection: mxgw's resident memory with N
// sessions that each sent and received a message, once with ws_deflate off and once with it
// on (the clients offering it), so that both zlib streams of every compressed connection exist.
// Not a test: prints figures.
import crypto from "node:crypto";
import fs from "node:fs";
import { Env, USERS } from "../tests/integration/lib/env.mjs";
import { JsonClient } from "../tests/integration/lib/json-client.mjs";

const N = Number(process.env.N || 100);
// BODY=n: each message carries n characters of random text (touching more of the buffers).
const BODY = Number(process.env.BODY || 0);
const rss = (pid) => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))[1]);

async function probe(env, deflate) {
  const gw = await env.startGateway({ log_level: "warn", limit_sessions_per_ip: N + 10,
    ws_deflate: deflate ? "yes" : "no" });
  const pid = gw.child.proc.pid;
  const clients = [];
  const open = async (i) => {
    const c = await JsonClient.connect(gw.wsUrl, { deflate });
    const jid = await c.login("alice", USERS.alice, `mem-${i}-${crypto.randomBytes(3).toString("hex")}`);
    const body = `a message to warm both directions up ${i} ` +
      crypto.randomBytes(BODY).toString("base64").slice(0, BODY);
    c.send({ to: jid, id: `m${i}`, b: body });
    await c.next((o) => o.b === body, "the echo");
    clients.push(c);
  };
  await open(0);
  const before = rss(pid);
  for (let i = 1; i <= N; i++) await open(i);
  await new Promise((r) => setTimeout(r, 500));
  const after = rss(pid);
  const negotiated = clients.filter((c) => c.extensions.includes("permessage-deflate")).length;
  for (const c of clients) c.close();
  await gw.stop();
  return { per: (after - before) / N, before, after, negotiated };
}

const env = await Env.start({ redis: false });
try {
  const off = await probe(env, false);
  const on = await probe(env, true);
  console.log(`mxgw RSS per JSON session (TLS upstream, one message each way), N=${N}: ` +
    `without permessage-deflate ${off.per.toFixed(1)} KiB; with it ${on.per.toFixed(1)} KiB ` +
    `(${on.negotiated}/${N + 1} negotiated); compression costs ${(on.per - off.per).toFixed(1)} KiB ` +
    `per connection (messages of ${BODY + 40} characters)`);
} finally {
  await env.stop();
}
