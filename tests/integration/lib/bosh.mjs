// BOSH test clients: Strophe.js running in Node (the real library, over XMLHttpRequest from
// npm), and a raw client that writes <body/> wrappers itself, for what a library would hide
// (chosen rids, repeats, pauses, broken requests).

import net from "node:net";
import crypto from "node:crypto";
import assert from "node:assert/strict";
import { parse as parseXml } from "ltx";
import { DOMAIN, NS, withTimeout, waitUntil } from "./env.mjs";

// Strophe's BOSH transport uses the browser's XMLHttpRequest; its Node entry brings the DOM
// (@xmldom/xmldom, as the global DOMParser) and ws itself. Node has fetch but no
// XMLHttpRequest, and the npm polyfill (xmlhttprequest-ssl 4.0.0) throws an uncaught TypeError
// when a request it aborted reports its socket's hang-up (its error handler reads the request
// it has just set to null) — which Strophe's disconnect triggers at random. So the tests carry
// the part of XMLHttpRequest that Strophe uses, over Node's own fetch, with a browser's
// readyState sequence and abort(); Strophe 5.0.0 reads responseXML, parsed as a browser would.
class NodeXHR {
  constructor() {
    this.readyState = 0;
    this.status = 0;
    this.responseText = "";
    this.responseXML = null;
    this.withCredentials = false;
    this.onreadystatechange = null;
    this.headers = {};
    this.responseHeaders = "";
  }

  open(method, url) {
    this.method = method;
    this.url = url;
    this.state(1);
  }

  setRequestHeader(name, value) {
    this.headers[name] = value;
  }

  overrideMimeType() {}

  getAllResponseHeaders() {
    return this.responseHeaders;
  }

  state(s) {
    this.readyState = s;
    this.onreadystatechange?.();
  }

  send(body) {
    this.sent = true;
    this.ctl = new AbortController();
    fetch(this.url, { method: this.method, headers: this.headers, body, signal: this.ctl.signal })
      .then(async (res) => {
        if (this.aborted) return;
        this.status = res.status;
        this.responseHeaders = [...res.headers].map(([k, v]) => `${k}: ${v}`).join("\r\n");
        this.state(2);
        const text = await res.text();
        if (this.aborted) return;
        this.responseText = text;
        if (text) this.responseXML = new globalThis.DOMParser().parseFromString(text, "text/xml");
        this.state(4);
      })
      .catch(() => {
        if (this.aborted) return;
        this.status = 0; // a network error, as a browser reports it
        this.state(4);
      });
  }

  abort() {
    this.aborted = true;
    this.ctl?.abort();
    // As a browser: a request under way ends in DONE (one readystatechange), then UNSENT.
    if (this.sent && this.readyState !== 4) this.state(4);
    this.readyState = 0;
  }
}
globalThis.XMLHttpRequest = NodeXHR;
const strophe = await import("strophe.js");
export const { Strophe, $msg, $pres, $iq } = strophe;
Strophe.setLogLevel?.(Strophe.LogLevel.FATAL);

export const NS_HTTPBIND = "http://jabber.org/protocol/httpbind";
export const NS_XBOSH = "urn:xmpp:xbosh";

// ---------------------------------------------------------------------------------------------
// Strophe.js

/** A Strophe.js connection with the events tests wait on. */
export class StropheUser {
  /**
   * Connects and logs in (SASL, restart, bind) through url. Resolves once CONNECTED; rejects
   * with the Strophe status and condition otherwise. opts.wait/hold go to connect().
   */
  static async connect({ url, username, password, wait = 10, hold = 1, timeoutMs = 20000 }) {
    const u = new StropheUser(url);
    u.username = username;
    await withTimeout(new Promise((resolve, reject) => {
      u.conn.connect(`${username}@${DOMAIN}/strophe-${crypto.randomBytes(3).toString("hex")}`,
        password, (status, condition) => {
          u.statuses.push({ status, condition });
          if (status === Strophe.Status.CONNECTED) resolve();
          if (status === Strophe.Status.AUTHFAIL || status === Strophe.Status.CONNFAIL ||
            (status === Strophe.Status.DISCONNECTED && !u.connected)) {
            reject(new Error(`Strophe: status ${status} condition ${condition}`));
          }
          if (status === Strophe.Status.CONNECTED) u.connected = true;
          if (status === Strophe.Status.DISCONNECTED) u.disconnected = { condition };
        }, wait, hold);
    }), timeoutMs, `Strophe login of ${username} via ${url}`);
    u.jid = u.conn.jid;
    return u;
  }

  /** Attaches to a session someone else opened (XEP-0124 pause and resume, page changes). */
  static async attach({ url, jid, sid, rid, wait = 10, hold = 1, timeoutMs = 10000 }) {
    const u = new StropheUser(url);
    await withTimeout(new Promise((resolve, reject) => {
      u.conn.attach(jid, sid, rid, (status, condition) => {
        u.statuses.push({ status, condition });
        if (status === Strophe.Status.ATTACHED) {
          u.connected = true;
          resolve();
        } else if (status === Strophe.Status.DISCONNECTED || status === Strophe.Status.CONNFAIL) {
          u.disconnected = { condition };
          reject(new Error(`Strophe attach: status ${status} condition ${condition}`));
        }
      }, wait, hold);
    }), timeoutMs, "Strophe attach");
    u.jid = jid;
    return u;
  }

  constructor(url) {
    this.conn = new Strophe.Connection(url);
    this.statuses = [];
    this.stanzas = [];
    this.sent = [];
    this.received = [];
    this.waiters = new Set();
    this.conn.xmlOutput = (el) => this.sent.push(Strophe.serialize(el));
    this.conn.xmlInput = (el) => this.received.push(Strophe.serialize(el));
    this.conn.addHandler((st) => {
      this.stanzas.push(st);
      for (const w of this.waiters) w();
      return true;
    }, null, "message", null, null, null);
  }

  get sid() {
    return this.conn._proto.sid;
  }

  get rid() {
    return this.conn._proto.rid;
  }

  send(stanza) {
    this.conn.send(stanza);
    this.conn.flush();
  }

  sendMessage(to, body) {
    this.send($msg({ to, type: "chat" }).c("body").t(body));
  }

  /** Resolves with the first received <message/> whose body is text. */
  waitForMessage(text, timeoutMs = 10000) {
    return new Promise((resolve, reject) => {
      const check = () => {
        const st = this.stanzas.find((s) => s.getElementsByTagName("body")[0] &&
          Strophe.getText(s.getElementsByTagName("body")[0]) === xmlEscapeText(text));
        if (!st) return false;
        this.waiters.delete(check);
        clearTimeout(timer);
        resolve(st);
        return true;
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`Strophe ${this.username}: no message "${text}" within ${timeoutMs} ms`));
      }, timeoutMs);
      if (!check()) this.waiters.add(check);
    });
  }

  /** Waits until Strophe reports DISCONNECTED; returns its condition. */
  async waitDisconnected(timeoutMs = 15000) {
    await waitUntil(() => this.disconnected || this.statuses.some(
      (s) => s.status === Strophe.Status.DISCONNECTED), { timeoutMs, what: "Strophe disconnect" });
    return this.statuses.filter((s) => s.condition).map((s) => s.condition);
  }

  async disconnect(timeoutMs = 10000) {
    if (!this.connected || this.statuses.some((s) => s.status === Strophe.Status.DISCONNECTED)) {
      return;
    }
    this.conn.disconnect("test over");
    await this.waitDisconnected(timeoutMs).catch(() => this.conn.reset());
  }
}

// Strophe.getText() returns the text XML-escaped.
function xmlEscapeText(s) {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
    .replace(/'/g, "&apos;").replace(/"/g, "&quot;");
}

// ---------------------------------------------------------------------------------------------
// Raw BOSH

/** One HTTP POST; resolves with { status, headers, text, el } (el: the parsed wrapper or null). */
export async function post(url, body, { headers = {}, method = "POST", timeoutMs = 30000 } = {}) {
  const ctl = new AbortController();
  const t = setTimeout(() => ctl.abort(), timeoutMs);
  try {
    const r = await fetch(url, {
      method, body, signal: ctl.signal,
      headers: { "Content-Type": "text/xml; charset=utf-8", ...headers },
    });
    const text = await r.text();
    let el = null;
    try {
      el = text ? parseXml(text) : null;
    } catch {
      el = null;
    }
    return { status: r.status, headers: r.headers, text, el };
  } finally {
    clearTimeout(t);
  }
}

function attrs(obj) {
  return Object.entries(obj).filter(([, v]) => v !== undefined && v !== null)
    .map(([k, v]) => ` ${k}="${String(v).replace(/&/g, "&amp;").replace(/"/g, "&quot;")
      .replace(/</g, "&lt;")}"`).join("");
}

/** A <body/> wrapper with these attributes and payload text. */
export function wrapper(a, payload = "") {
  return `<body xmlns="${NS_HTTPBIND}" xmlns:xmpp="${NS_XBOSH}"${attrs(a)}>${payload}</body>`;
}

/** The wrapper's terminal condition: undefined if not terminal, null for a normal end. */
export function terminalCondition(el) {
  if (!el || el.attrs.type !== "terminate") return undefined;
  return el.attrs.condition ?? null;
}

/** Payload elements of a response wrapper. */
export function payloads(el) {
  return el ? el.children.filter((c) => typeof c === "object") : [];
}

export class RawBosh {
  constructor(url) {
    this.url = url;
    this.rid = 1000000 + crypto.randomInt(1000000000);
    this.responses = [];
  }

  /** POSTs a wrapper with sid and the next rid (or opts.rid) plus extra attributes. */
  async request(payload = "", extra = {}, opts = {}) {
    const rid = extra.rid ?? this.rid++;
    const a = { sid: this.sid, rid, ...extra };
    const r = await post(this.url, wrapper(a, payload), opts);
    r.rid = rid;
    this.responses.push(r);
    return r;
  }

  /** The session creation request; resolves with its response (features when the server sent them). */
  async create(extra = {}) {
    const rid = this.rid++;
    const r = await post(this.url, wrapper({
      to: DOMAIN, rid, wait: 10, hold: 1, ver: "1.11", "xmpp:version": "1.0", "xml:lang": "en",
      ...extra,
    }));
    r.rid = rid;
    assert.equal(r.status, 200, `session creation: HTTP ${r.status} ${r.text}`);
    assert.equal(terminalCondition(r.el), undefined, `session creation refused: ${r.text}`);
    this.sid = r.el.attrs.sid;
    this.created = r.el;
    this.features = payloads(r.el).find((e) => e.is("features", NS.stream));
    return r;
  }

  /** Logs in with SASL PLAIN, restarts the stream and binds; returns the full JID. */
  async login(username, password) {
    if (!this.sid) await this.create();
    if (!this.features) {
      const r = await this.request();
      this.features = payloads(r.el).find((e) => e.is("features", NS.stream));
    }
    assert.ok(this.features?.getChild("mechanisms", NS.sasl), `no SASL mechanisms: ${this.created}`);
    const auth = Buffer.from(`\0${username}\0${password}`).toString("base64");
    const ok = await this.request(`<auth xmlns="${NS.sasl}" mechanism="PLAIN">${auth}</auth>`);
    assert.ok(payloads(ok.el).some((e) => e.is("success", NS.sasl)), `SASL failed: ${ok.text}`);
    const restarted = await this.request("", { "xmpp:restart": "true", to: DOMAIN, "xml:lang": "en" });
    const f2 = payloads(restarted.el).find((e) => e.is("features", NS.stream));
    assert.ok(f2?.getChild("bind", NS.bind), `no bind feature after restart: ${restarted.text}`);
    const bound = await this.request(`<iq xmlns="${NS.client}" type="set" id="bind1">` +
      `<bind xmlns="${NS.bind}"><resource>raw-${crypto.randomBytes(3).toString("hex")}</resource>` +
      `</bind></iq>`);
    const iq = payloads(bound.el).find((e) => e.is("iq"));
    assert.equal(iq?.attrs.type, "result", `bind failed: ${bound.text}`);
    this.jid = iq.getChild("bind", NS.bind).getChildText("jid");
    return this.jid;
  }

  /**
   * Polls (empty requests, each held up to 'wait') until pred matches a payload of any response
   * so far; returns it. Call with no request outstanding, as a client would (two empty requests
   * at once are overactivity, XEP-0124 §11).
   */
  async pollFor(pred, { timeoutMs = 15000, what = "a payload" } = {}) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (const r of this.responses) {
        const found = payloads(r.el).find(pred);
        if (found) return found;
      }
      if (Date.now() > deadline) {
        throw new Error(`no ${what} within ${timeoutMs} ms; got ${this.responses.map((r) => r.text).join("\n")}`);
      }
      await this.request("", {}, { timeoutMs: Math.max(1000, deadline - Date.now()) });
    }
  }

  async terminate() {
    if (!this.sid) return null;
    return this.request(`<presence xmlns="${NS.client}" type="unavailable"/>`, { type: "terminate" })
      .catch(() => null);
  }
}

// ---------------------------------------------------------------------------------------------
// Raw TCP, for HTTP the libraries refuse to write

/** Opens a TCP connection to port and resolves once connected. */
export function tcpConnect(port, host = "127.0.0.1") {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host });
    s.once("connect", () => resolve(s));
    s.once("error", reject);
  });
}

/** Resolves with { data, closedBy } once the peer closes s (or after timeoutMs: closedBy null). */
export function readUntilClose(s, timeoutMs = 10000) {
  return new Promise((resolve) => {
    let data = "";
    const t = setTimeout(() => resolve({ data, closedBy: null }), timeoutMs);
    s.on("data", (d) => {
      data += d.toString("latin1");
    });
    const done = (why) => {
      clearTimeout(t);
      resolve({ data, closedBy: why });
    };
    s.once("end", () => done("end"));
    s.once("close", () => done("close"));
    s.once("error", (e) => done(e.code || "error"));
  });
}
