// A client of mxgw's JSON protocol (docs/json-protocol.md) for the tests: it keeps every object
// it receives, resolves JID aliases as the protocol says a client must, counts the bytes its
// socket moved (frame headers and, with permessage-deflate, compression included), and offers
// permessage-deflate only when asked to.

import assert from "node:assert/strict";
import WebSocket from "ws";
import { withTimeout } from "./env.mjs";

export const SUBPROTOCOL = "mxgw.json.v1";

export class JsonClient {
  /**
   * Opens a WebSocket with the JSON subprotocol. deflate: offer permessage-deflate, compressing
   * every message (ws's default threshold would leave small ones uncompressed).
   */
  static async connect(url, { deflate = false } = {}) {
    const c = new JsonClient();
    c.ws = new WebSocket(url, [SUBPROTOCOL], {
      perMessageDeflate: deflate ? { threshold: 0 } : false,
    });
    c.inbox = [];
    c.all = [];
    c.waiters = [];
    c.aliases = new Map(); // number -> JID, as assigned by the server on this connection
    c.closeInfo = null;
    c.closed = new Promise((resolve) => c.ws.on("close", (code, reason) => {
      c.closeInfo = { code, reason: reason.toString() };
      resolve(code);
    }));
    c.ws.on("message", (data) => {
      const text = data.toString();
      const obj = JSON.parse(text);
      c.resolveAliases(obj);
      c.inbox.push(obj);
      c.all.push(obj);
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

  send(obj) {
    this.ws.send(typeof obj === "string" ? obj : JSON.stringify(obj));
  }

  /** Resolves with the first received object matching pred (and removes it). */
  next(pred, what = "a message", timeoutMs = 15000) {
    return withTimeout(new Promise((resolve) => {
      const check = () => {
        const i = this.inbox.findIndex(pred);
        if (i >= 0) {
          const [obj] = this.inbox.splice(i, 1);
          this.waiters = this.waiters.filter((w) => w !== check);
          resolve(obj);
        }
      };
      this.waiters.push(check);
      check();
    }), timeoutMs, `${what} (received: ${JSON.stringify(this.inbox).slice(0, 1500)})`);
  }

  /** Sends a stanza with an id and waits for the stanza (or error op) that answers it. */
  async request(obj, what = "the answer") {
    this.send(obj);
    return this.next((o) => o.id === obj.id && (o.op === "error" || o.t === obj.t ||
      (o.t === undefined && obj.t === undefined)), what);
  }

  async login(user, password, resource = "phone", domain = "localhost") {
    this.send({ op: "login", jid: `${user}@${domain}`, password, resource });
    const s = await this.next((o) => o.op === "session" || o.op === "error", "the login answer");
    assert.equal(s.op, "session", `login failed: ${JSON.stringify(s)}`);
    this.jid = s.jid;
    return s.jid;
  }

  /** Turns aliases on; with jid, also asks for that JID's number and returns it. */
  async alias(jid) {
    this.send(jid ? { op: "alias", jid } : { op: "alias" });
    const a = await this.next((o) => o.op === "alias" || o.op === "error", "the alias answer");
    assert.equal(a.op, "alias", `alias refused: ${JSON.stringify(a)}`);
    return jid ? a.n : a.max;
  }

  /** Acknowledges everything received so far (the protocol's "a" op). */
  ackAll() {
    this.send({ op: "a", h: this.all.filter((o) => o.op === undefined).length });
  }

  close() {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) {
      this.ws.close();
    }
  }
}
