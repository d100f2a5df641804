// A client of mxgw's JSON protocol (docs/json-protocol.md) for the integration tests: it
// collects every object the gateway sends, resolves JID aliases as the protocol says a client
// must, counts the stanzas it received (its XEP-0198-style h), can answer the gateway's ack
// requests, counts the bytes its socket moved (frame headers and, with permessage-deflate,
// compression included), offers permessage-deflate only when asked to, and can drop its socket
// the way a phone loses its network (no close frame).

import assert from "node:assert/strict";
import WebSocket from "ws";
import { withTimeout } from "./env.mjs";

export const SUBPROTOCOL = "mxgw.json.v1";

export class JsonClient {
  /**
   * Opens a WebSocket with the JSON subprotocol. deflate: offer permessage-deflate, compressing
   * every message (ws's default threshold would leave small ones uncompressed). autoAck: answer
   * {"op":"r"} with the current count.
   */
  static async connect(url, { deflate = false, autoAck = true } = {}) {
    const c = new JsonClient();
    c.ws = new WebSocket(url, [SUBPROTOCOL], {
      perMessageDeflate: deflate ? { threshold: 0 } : false,
    });
    c.inbox = [];
    c.all = [];
    c.frameBytes = []; // the length of each message in c.all, as it arrived
    c.waiters = [];
    c.h = 0;
    c.autoAck = autoAck;
    c.aliases = new Map(); // number -> JID, as assigned by the server on this connection
    c.closeInfo = null;
    c.closed = new Promise((resolve) => c.ws.on("close", (code, reason) => {
      c.closeInfo = { code, reason: reason.toString() };
      for (const w of [...c.waiters]) w();
      resolve(code);
    }));
    c.ws.on("error", () => {});
    c.ws.on("message", (data) => {
      const obj = JSON.parse(data.toString());
      c.resolveAliases(obj);
      if (obj.op === undefined) c.h++;
      c.inbox.push(obj);
      c.all.push(obj);
      c.frameBytes.push(data.length);
      if (obj.op === "r" && c.autoAck && c.ws.readyState === WebSocket.OPEN) {
        c.send({ op: "a", h: c.h });
      }
      for (const w of [...c.waiters]) w();
    });
    await new Promise((resolve, reject) => {
      c.ws.once("open", resolve);
      c.ws.once("error", reject);
    });
    assert.equal(c.ws.protocol, SUBPROTOCOL);
    c.extensions = c.ws.extensions;
    return c;
  }

  /** The aliases rule: "fa"/"ta" define a number, a number in "f"/"to" means its JID. */
  resolveAliases(o) {
    if (o.op === "alias" && o.n !== undefined) this.aliases.set(o.n, o.jid);
    for (const [key, akey, out] of [["f", "fa", "from"], ["to", "ta", "toJid"]]) {
      if (o[key] === undefined) continue;
      if (typeof o[key] === "number") {
        assert.ok(this.aliases.has(o[key]), `alias ${o[key]} used before it was defined`);
        o[out] = this.aliases.get(o[key]);
      } else {
        o[out] = o[key];
        if (o[akey] !== undefined) this.aliases.set(o[akey], o[key]);
      }
    }
  }

  /** Bytes the socket wrote and read so far (TCP payload: WebSocket frames). */
  get wire() {
    const s = this.ws._socket;
    return { out: s.bytesWritten, in: s.bytesRead };
  }

  get isOpen() {
    return this.ws.readyState === WebSocket.OPEN;
  }

  send(obj) {
    this.ws.send(typeof obj === "string" ? obj : JSON.stringify(obj));
  }

  /** Resolves with the first received object matching pred (and removes it from the inbox). */
  next(pred, what = "a message", timeoutMs = 15000) {
    return withTimeout(new Promise((resolve, reject) => {
      const check = () => {
        const i = this.inbox.findIndex(pred);
        if (i >= 0) {
          const [obj] = this.inbox.splice(i, 1);
          this.waiters = this.waiters.filter((w) => w !== check);
          resolve(obj);
        } else if (this.closeInfo) {
          this.waiters = this.waiters.filter((w) => w !== check);
          reject(new Error(`closed (${this.closeInfo.code}) while waiting for ${what}; got ` +
            JSON.stringify(this.all).slice(0, 2000)));
        }
      };
      this.waiters.push(check);
      check();
    }), timeoutMs, `${what}; got ${JSON.stringify(this.all).slice(-1500)}`);
  }

  /** The stanzas (objects without "op") received so far. */
  stanzas() {
    return this.all.filter((o) => o.op === undefined);
  }

  /** Sends a stanza with an id and waits for the stanza (or error op) that answers it. */
  async request(obj, what = "the answer") {
    this.send(obj);
    return this.next((o) => o.id === obj.id && (o.op === "error" || o.t === obj.t ||
      (o.t === undefined && obj.t === undefined)), what);
  }

  /** Sends login and returns the answer (asserting it is a session); this.jid is the bound JID. */
  async login(user, password, resource = "phone", domain = "localhost") {
    this.send({ op: "login", jid: `${user}@${domain}`, password, resource });
    const s = await this.next((o) => o.op === "session" || o.op === "error", "the login answer");
    assert.equal(s.op, "session", `login failed: ${JSON.stringify(s)}`);
    this.jid = s.jid;
    return s;
  }

  /** Sends resume and returns the answer: {"op":"resumed"} or {"op":"error"}. */
  async resume(token, h) {
    this.send({ op: "resume", token, h });
    return this.next((o) => o.op === "resumed" || o.op === "error", "the resume answer");
  }

  /** Turns aliases on; with jid, also asks for that JID's number and returns it. */
  async alias(jid) {
    this.send(jid ? { op: "alias", jid } : { op: "alias" });
    const a = await this.next((o) => o.op === "alias" || o.op === "error", "the alias answer");
    assert.equal(a.op, "alias", `alias refused: ${JSON.stringify(a)}`);
    return jid ? a.n : a.max;
  }

  /** Acknowledges everything received so far (the protocol's "a" op). */
  ack() {
    this.send({ op: "a", h: this.h });
  }

  /** Drops the socket without a close frame, like a phone losing its network. */
  drop() {
    this.ws.terminate();
  }

  close() {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) {
      this.ws.close();
    }
  }
}

/**
 * Checks a received sequence against the numbered messages sent: every number once after
 * de-duplication by id, in order; duplicates only of messages received before the last drop
 * (the unacked window). Returns { unique, duplicates }.
 */
export function checkSequence(received, count, prefix) {
  const seen = new Set();
  const order = [];
  let duplicates = 0;
  for (const m of received) {
    if (typeof m.id !== "string" || !m.id.startsWith(prefix)) continue;
    if (seen.has(m.id)) {
      duplicates++;
      continue;
    }
    seen.add(m.id);
    order.push(Number(m.id.slice(prefix.length)));
  }
  const missing = [];
  for (let i = 1; i <= count; i++) if (!seen.has(`${prefix}${i}`)) missing.push(i);
  assert.deepEqual(missing, [], `messages missing: ${missing.join(",")}`);
  for (let i = 1; i < order.length; i++) {
    assert.ok(order[i] > order[i - 1], `out of order: ${order[i - 1]} then ${order[i]} in ${order.join(",")}`);
  }
  return { unique: order.length, duplicates };
}
