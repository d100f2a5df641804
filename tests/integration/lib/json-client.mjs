// A client of mxgw's JSON protocol (docs/json-protocol.md) for the integration tests: it
// collects every object the gateway sends, counts the stanzas it received (its XEP-0198-style
// h), can answer the gateway's ack requests, and can drop its socket the way a phone loses its
// network (no close frame).

import assert from "node:assert/strict";
import WebSocket from "ws";
import { withTimeout } from "./env.mjs";

export const SUBPROTOCOL = "mxgw.json.v1";

export class JsonClient {
  /** Opens a connection; autoAck answers {"op":"r"} with the current count. */
  static async connect(url, { autoAck = true } = {}) {
    const c = new JsonClient();
    c.ws = new WebSocket(url, [SUBPROTOCOL], { perMessageDeflate: false });
    c.inbox = [];
    c.all = [];
    c.waiters = [];
    c.h = 0;
    c.autoAck = autoAck;
    c.closeInfo = null;
    c.closed = new Promise((resolve) => c.ws.on("close", (code, reason) => {
      c.closeInfo = { code, reason: reason.toString() };
      for (const w of [...c.waiters]) w();
      resolve(code);
    }));
    c.ws.on("error", () => {});
    c.ws.on("message", (data) => {
      const obj = JSON.parse(data.toString());
      if (obj.op === undefined) c.h++;
      c.inbox.push(obj);
      c.all.push(obj);
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
    return c;
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

  /** Sends login and returns the answer (asserting it is a session). */
  async login(user, password, resource = "phone") {
    this.send({ op: "login", jid: `${user}@localhost`, password, resource });
    const s = await this.next((o) => o.op === "session" || o.op === "error", "the login answer");
    assert.equal(s.op, "session", `login failed: ${JSON.stringify(s)}`);
    return s;
  }

  /** Sends resume and returns the answer: {"op":"resumed"} or {"op":"error"}. */
  async resume(token, h) {
    this.send({ op: "resume", token, h });
    return this.next((o) => o.op === "resumed" || o.op === "error", "the resume answer");
  }

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
