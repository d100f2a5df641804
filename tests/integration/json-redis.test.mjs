// The JSON protocol with Redis unavailable (issue 3, behaviour 7; CHECKLIST 1G/1L): live
// sessions keep flowing and are told they are no longer resumable; a resume fails cleanly and
// at once with item-not-found; a new login works and says it is not resumable; a frozen Redis
// (SIGSTOP) only costs the command deadline; nothing crashes. After a restart, new logins are
// resumable again.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { Env, USERS, guarded, xml, waitUntil, restartRedis } from "./lib/env.mjs";
import { JsonClient } from "./lib/json-client.mjs";

let env;
let gw;
let bob;

before(async () => {
  env = await Env.start({ prosodyAuth: "internal_hashed" });
  gw = await env.startGateway({ json_detach_timeout: "60s", redis_timeout: "500ms" });
  bob = await env.login({ service: env.prosody.tcpService, username: "bob", password: USERS.bob });
}, { timeout: 60000 });

after(async () => {
  await env?.stop();
}, { timeout: 60000 });

async function exchange(c, jid, tag) {
  const id = `${tag}-${crypto.randomBytes(3).toString("hex")}`;
  await bob.send(xml("message", { to: jid, type: "chat", id }, xml("body", {}, tag)));
  await c.next((o) => o.id === id, `bob's message ${tag}`);
  const body = `${tag} back ${crypto.randomBytes(3).toString("hex")}`;
  c.send({ to: bob.jid.toString(), b: body });
  await bob.waitFor((st) => st.is("message") && st.getChildText("body") === body,
    { what: `alice's message ${tag}` });
}

test("Redis down: live sessions flow, resume fails with item-not-found, new logins are " +
  "non-resumable; Redis back: new logins are resumable", { timeout: 90000 },
  guarded(() => env, async () => {
    const c = await JsonClient.connect(gw.wsUrl);
    const s = await c.login("alice", USERS.alice, "redis-live");
    assert.equal(s.resumable, true);
    await exchange(c, s.jid, "before");

    await env.redis.stop();
    for (let i = 0; i < 5; i++) await exchange(c, s.jid, `down${i}`);
    const st = await c.next((o) => o.op === "status", "the notice that resumption is off", 15000);
    assert.equal(st.resumable, false);

    const r = await JsonClient.connect(gw.wsUrl);
    const t0 = Date.now();
    const ans = await r.resume(s.token, c.h);
    assert.equal(ans.op, "error");
    assert.equal(ans.cond, "item-not-found");
    assert.ok(Date.now() - t0 < 5000, "the refusal does not wait on a dead store");
    // and that connection may log in instead, without resumption
    const fresh = await r.login("alice", USERS.alice, "redis-new");
    assert.equal(fresh.resumable, false, "a login while the store is down is not resumable");
    assert.equal(fresh.token, undefined, "and gets no token");
    await exchange(r, fresh.jid, "new-while-down");
    await exchange(c, s.jid, "still");

    await restartRedis(env.redis);
    let again;
    await waitUntil(async () => {
      const n = await JsonClient.connect(gw.wsUrl);
      const a = await n.login("alice", USERS.alice, `redis-back-${crypto.randomBytes(2).toString("hex")}`);
      if (a.resumable) {
        again = { n, a };
        return true;
      }
      n.send({ op: "logout" });
      return false;
    }, { timeoutMs: 30000, what: "a resumable login once Redis is back" });
    assert.match(again.a.token, /^[0-9a-f]{32}\.[0-9a-f]{64}$/);
    again.n.drop();
    const back = await JsonClient.connect(gw.wsUrl);
    const rr = await back.resume(again.a.token, 0);
    assert.equal(rr.op, "resumed", JSON.stringify(rr));
    back.send({ op: "logout" });
    c.send({ op: "logout" });
    r.send({ op: "logout" });
    await back.next((o) => o.op === "bye", "bye");
    assert.ok(gw.running, "mxgw never stopped");
  }));

test("a frozen Redis (SIGSTOP) costs a resume its deadline, not the loop", { timeout: 60000 },
  guarded(() => env, async () => {
    const c = await JsonClient.connect(gw.wsUrl);
    const s = await c.login("alice", USERS.alice, "frozen");
    assert.equal(s.resumable, true);
    env.redis.child.signal("SIGSTOP");
    try {
      const r = await JsonClient.connect(gw.wsUrl);
      const ans = await r.resume(s.token, 0);
      assert.equal(ans.op, "error");
      assert.equal(ans.cond, "item-not-found");
      r.close();
      // the loop kept serving the live session meanwhile
      await exchange(c, s.jid, "frozen");
    } finally {
      env.redis.child.signal("SIGCONT");
    }
    c.send({ op: "logout" });
    await c.next((o) => o.op === "bye", "bye");
  }));
