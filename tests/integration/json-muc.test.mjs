// Multi-user chat through the JSON protocol against Prosody's MUC component (conference.localhost):
// a JSON user creates and joins a room and gets its own occupant presence in short form, talks
// in groupchat with a user on Prosody directly, invites a second JSON user who gets the invite
// in short form and declines, changes affiliations and roles (muc#admin) and sees the result in
// short form, and an invite that Prosody refuses comes back to the JSON client as the mapped
// stanza error. Prosody (muc.lib.lua, "muc-pre-invite") refuses an invite from someone whose
// default role in the room is below visitor, such as an outcast, with <forbidden/> of type auth
// and no legacy code; that is the refusal asserted here.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { Env, USERS, MUC_DOMAIN, guarded, xml } from "./lib/env.mjs";
import { JsonClient } from "./lib/json-client.mjs";

const MUC_NS = "http://jabber.org/protocol/muc";
const MUC_USER = "http://jabber.org/protocol/muc#user";

let env;
let gw;
let bob;

before(async () => {
  env = await Env.start();
  gw = await env.startGateway();
  bob = await env.login({ service: env.prosody.tcpService, username: "bob", password: USERS.bob });
}, { timeout: 60000 });

after(async () => {
  await env?.stop();
}, { timeout: 60000 });

/** The presence of nick in room, as alice's client sees it. */
const presenceOf = (room, nick) => (o) => o.t === "p" && o.f === `${room}/${nick}`;

test("MUC: join, groupchat, invite and decline, affiliation and role changes, a refused invite",
  { timeout: 90000 }, guarded(() => env, async () => {
    const room = `room-${crypto.randomBytes(4).toString("hex")}@${MUC_DOMAIN}`;
    const alice = await JsonClient.connect(gw.wsUrl);
    const carol = await JsonClient.connect(gw.wsUrl);
    try {
      const aliceJid = (await alice.login("alice", USERS.alice, "phone")).jid;
      const carolJid = (await carol.login("carol", USERS.carol, "tablet")).jid;
      carol.send({ t: "p" });

      // Join (creates the room): our own occupant presence, in short form, with affiliation,
      // role, our real JID and the status codes 110 (self) and 201 (new room).
      alice.send({ t: "p", to: `${room}/alice`, join: { hist: { maxstanzas: 0 } } });
      const self = await alice.next(presenceOf(room, "alice"), "alice's own presence in the room");
      assert.equal(self.type, undefined);
      assert.equal(self.x, undefined, `nothing left in element form: ${JSON.stringify(self)}`);
      assert.equal(self.muc.aff, "owner");
      assert.equal(self.muc.role, "moderator");
      assert.equal(self.muc.jid, aliceJid);
      assert.deepEqual([...self.muc.codes].sort(), [110, 201]);

      // A new room is locked until its owner configures it: accept the defaults (an instant
      // room, XEP-0045 §10.1.2), sent in the element form.
      const cfg = await alice.request({
        t: "iq", type: "set", id: "cfg1", to: room,
        x: [{ n: "query", ns: "http://jabber.org/protocol/muc#owner",
          c: [{ n: "x", ns: "jabber:x:data", a: { type: "submit" } }] }],
      }, "the room configuration result");
      assert.equal(cfg.type, "result", JSON.stringify(cfg));

      // bob joins from Prosody directly; alice sees his presence in short form, with his real
      // JID since she is a moderator of a semi-anonymous room.
      await bob.send(xml("presence", { to: `${room}/bob` }, xml("x", { xmlns: MUC_NS })));
      const bobPres = await alice.next(presenceOf(room, "bob"), "bob's presence");
      assert.deepEqual(bobPres.muc, { aff: "none", role: "participant", jid: bob.jid.toString() });
      await bob.waitFor((s) => s.is("presence") && s.attrs.from === `${room}/bob`,
        { what: "bob's own room presence" });

      // Groupchat both ways.
      const hello = `hello room ${crypto.randomBytes(3).toString("hex")}`;
      alice.send({ to: room, type: "groupchat", id: "g1", b: hello });
      const atBob = await bob.waitFor((s) => s.is("message") && s.getChildText("body") === hello,
        { what: "alice's groupchat message at bob" });
      assert.equal(atBob.attrs.from, `${room}/alice`);
      assert.equal(atBob.attrs.type, "groupchat");
      const echo = await alice.next((o) => o.b === hello, "the room's echo of alice's message");
      assert.equal(echo.f, `${room}/alice`);
      assert.equal(echo.type, "groupchat");
      const reply = `hi alice ${crypto.randomBytes(3).toString("hex")}`;
      await bob.send(xml("message", { to: room, type: "groupchat" }, xml("body", {}, reply)));
      const fromBob = await alice.next((o) => o.b === reply, "bob's groupchat message");
      assert.equal(fromBob.f, `${room}/bob`);
      assert.equal(fromBob.type, "groupchat");

      // Mediated invite (XEP-0045 §7.8.2) to carol, a second JSON user: it reaches her in short
      // form, from the room, naming alice as the inviter (by her room JID: the room is
      // semi-anonymous and carol no moderator; Prosody's whois.lib.lua).
      alice.send({ to: room, id: "inv1", muc: { inv: { to: "carol@localhost", reason: "join us" } } });
      const invite = await carol.next((o) => o.muc?.inv, "the invite at carol");
      assert.equal(invite.f, room);
      assert.equal(invite.type, undefined, "an invitation is a normal message, said by no type");
      assert.deepEqual(invite.muc.inv, { f: `${room}/alice`, reason: "join us" });

      // carol declines; alice gets the decline in short form.
      carol.send({ to: room, muc: { dec: { to: aliceJid, reason: "busy right now" } } });
      const decline = await alice.next((o) => o.muc?.dec, "the decline at alice");
      assert.equal(decline.f, room);
      assert.deepEqual(decline.muc.dec, { f: carolJid, reason: "busy right now" });

      // Affiliation change round trip: carol becomes a member, and the member list says so.
      const set = await alice.request({ t: "iq", type: "set", id: "aff1", to: room,
        admin: [{ aff: "member", jid: "carol@localhost", reason: "welcome" }] }, "the member set");
      assert.equal(set.type, "result", JSON.stringify(set));
      assert.equal(set.f, room);
      const list = await alice.request({ t: "iq", type: "get", id: "aff2", to: room,
        admin: [{ aff: "member" }] }, "the member list");
      assert.equal(list.type, "result", JSON.stringify(list));
      assert.deepEqual(list.admin.map((i) => [i.aff, i.jid]), [["member", "carol@localhost"]]);

      // Role change: bob becomes a visitor; his new presence arrives in short form.
      const role = await alice.request({ t: "iq", type: "set", id: "role1", to: room,
        admin: [{ role: "visitor", nick: "bob" }] }, "the role change");
      assert.equal(role.type, "result", JSON.stringify(role));
      const demoted = await alice.next((o) => presenceOf(room, "bob")(o) && o.muc?.role === "visitor",
        "bob's presence as a visitor");
      assert.equal(demoted.muc.aff, "none");
      assert.equal(demoted.muc.jid, bob.jid.toString());

      // carol is banned; an invite from her is refused by Prosody, and the refusal reaches her
      // as the mapped stanza error.
      const ban = await alice.request({ t: "iq", type: "set", id: "ban1", to: room,
        admin: [{ aff: "outcast", jid: "carol@localhost", reason: "no" }] }, "the ban");
      assert.equal(ban.type, "result", JSON.stringify(ban));
      carol.send({ to: room, id: "inv2", muc: { inv: { to: "bob@localhost" } } });
      const refused = await carol.next((o) => o.id === "inv2", "the refused invite");
      assert.deepEqual(refused, {
        f: room, from: room, id: "inv2", type: "error",
        err: { type: "auth", cond: "forbidden" },
      });

      // Leave: unavailable presence; the room confirms with our own unavailable presence.
      alice.send({ t: "p", to: `${room}/alice`, type: "unavailable" });
      const left = await alice.next((o) => presenceOf(room, "alice")(o) && o.type === "unavailable",
        "alice's own unavailable presence");
      assert.ok(left.muc.codes.includes(110), JSON.stringify(left));
    } finally {
      alice.close();
      carol.close();
    }
  }));

test("MUC with aliases on: the room's JIDs become numbers and a groupchat goes to an alias",
  { timeout: 60000 }, guarded(() => env, async () => {
    const room = `alias-${crypto.randomBytes(4).toString("hex")}@${MUC_DOMAIN}`;
    const alice = await JsonClient.connect(gw.wsUrl);
    try {
      await alice.login("alice", USERS.alice, "aliased");
      await alice.alias();
      const n = await alice.alias(room);
      alice.send({ t: "p", to: `${room}/alice`, join: {} });
      await alice.next((o) => o.t === "p" && o.from === `${room}/alice`, "the own presence");
      await alice.request({ t: "iq", type: "set", id: "cfg", to: n, x: [{
        n: "query", ns: "http://jabber.org/protocol/muc#owner",
        c: [{ n: "x", ns: "jabber:x:data", a: { type: "submit" } }] }] }, "the configuration");
      const body = `numbered ${crypto.randomBytes(3).toString("hex")}`;
      alice.send({ to: n, type: "groupchat", b: body });
      const first = await alice.next((o) => o.b === body, "the echo");
      // The first message from room/alice introduces its number; the next one uses it.
      assert.equal(first.f, `${room}/alice`);
      assert.equal(typeof first.fa, "number");
      alice.send({ to: n, type: "groupchat", b: `${body} again` });
      const second = await alice.next((o) => o.b === `${body} again`, "the second echo");
      assert.equal(second.f, first.fa);
      assert.equal(second.from, `${room}/alice`);
    } finally {
      alice.close();
    }
  }));
