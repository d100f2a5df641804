// The roster (RFC 6121 §2) through the JSON protocol against Prosody: get, set and the pushes
// that follow, all in short form, and a roster push from a stranger that a client must not
// believe never arriving in short form.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Env, USERS, guarded, xml } from "./lib/env.mjs";
import { JsonClient } from "./lib/json-client.mjs";

let env;
let gw;

before(async () => {
  env = await Env.start();
  gw = await env.startGateway();
}, { timeout: 60000 });

after(async () => {
  await env?.stop();
}, { timeout: 60000 });

const isPush = (o) => o.t === "iq" && o.type === "set" && o.roster;

test("roster get, set and push in short form", { timeout: 60000 },
  guarded(() => env, async () => {
    const a = await JsonClient.connect(gw.wsUrl);
    const a2 = await JsonClient.connect(gw.wsUrl);
    try {
      await a.login("alice", USERS.alice, "roster1");
      await a2.login("alice", USERS.alice, "roster2");

      // Get: an empty roster (Prosody names its version in every answer).
      const empty = await a.request({ t: "iq", type: "get", id: "r1", roster: {} }, "the roster");
      assert.equal(empty.type, "result", JSON.stringify(empty));
      assert.deepEqual(Object.keys(empty.roster), ["ver"], JSON.stringify(empty));
      assert.equal(empty.x, undefined);
      // The second resource asks too, so it is an interested resource that gets pushes.
      const versioned = await a2.request({ t: "iq", type: "get", id: "r1b", roster: { ver: "" } },
        "the versioned roster");
      assert.equal(versioned.type, "result");
      assert.equal(typeof versioned.roster.ver, "string", JSON.stringify(versioned));

      // Set: add bob with a name and two groups.
      const set = await a.request({ t: "iq", type: "set", id: "r2", roster: { items: [
        { jid: "bob@localhost", name: "Bob", groups: ["Friends", "Work"] }] } }, "the set result");
      assert.equal(set.type, "result", JSON.stringify(set));

      // The push, to both resources, in short form, from the account itself (no "from").
      for (const c of [a, a2]) {
        const push = await c.next(isPush, "the roster push");
        assert.equal(push.f, undefined, "a push comes from the account itself");
        assert.equal(push.x, undefined, "nothing left in element form");
        // Prosody keeps an item's groups in a hash: their order is not the one set.
        push.roster.items.forEach((i) => i.groups?.sort());
        assert.deepEqual(push.roster.items, [
          { jid: "bob@localhost", name: "Bob", sub: "none", groups: ["Friends", "Work"] }]);
        c.send({ t: "iq", type: "result", id: push.id }); // RFC 6121 §2.1.6: answer the push
      }

      // Get again: the item is there.
      const full = await a.request({ t: "iq", type: "get", id: "r3", roster: {} }, "the roster");
      full.roster.items.forEach((i) => i.groups?.sort());
      assert.deepEqual(full.roster.items, [
        { jid: "bob@localhost", name: "Bob", sub: "none", groups: ["Friends", "Work"] }]);

      // Remove: the push says so.
      const rm = await a.request({ t: "iq", type: "set", id: "r4", roster: { items: [
        { jid: "bob@localhost", sub: "remove" }] } }, "the remove result");
      assert.equal(rm.type, "result", JSON.stringify(rm));
      const push = await a.next((o) => isPush(o) && o.roster.items?.[0]?.sub === "remove",
        "the remove push");
      assert.deepEqual(push.roster.items, [{ jid: "bob@localhost", sub: "remove" }]);
    } finally {
      a.close();
      a2.close();
    }
  }));

test("a roster push from a stranger stays in the element form", { timeout: 60000 },
  guarded(() => env, async () => {
    const a = await JsonClient.connect(gw.wsUrl);
    const bob = await env.login({ service: env.prosody.tcpService, username: "bob",
      password: USERS.bob });
    try {
      const jid = await a.login("alice", USERS.alice, "spoofed");
      a.send({ t: "p" });
      // An iq set with a roster query, from bob to alice's full JID: what a forged push looks
      // like (RFC 6121 §2.1.6 says a client must ignore it). Prosody routes it to alice.
      await bob.send(xml("iq", { to: jid, type: "set", id: "forged" },
        xml("query", { xmlns: "jabber:iq:roster" },
          xml("item", { jid: "bob@localhost", subscription: "both" }))));
      const got = await a.next((o) => o.id === "forged", "the forged push");
      assert.equal(got.f, bob.jid.toString());
      assert.equal(got.roster, undefined, "not in the roster short form");
      assert.equal(got.x[0].n, "query");
      assert.equal(got.x[0].ns, "jabber:iq:roster");
    } finally {
      a.close();
      await bob.stop();
    }
  }));
