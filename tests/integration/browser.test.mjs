// The demo page in a real browser: Debian's Chromium driven by playwright-core loads the page
// from mxgw, logs in over BOSH (and, in a second test, over WebSocket), receives a message that
// bob sends from Prosody directly, and replies; bob gets the reply. A screenshot of each run is
// kept under build-asan/artifacts/ for a person to look at.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
import { Env, USERS, REPO_ROOT, xml, guarded } from "./lib/env.mjs";

const CHROMIUM = process.env.MXGW_CHROMIUM || "/usr/bin/chromium";
const ARTIFACTS = path.join(REPO_ROOT, "build-asan", "artifacts");

let env;
let gw;
let bob;

before(async () => {
  env = await Env.start({ redis: false });
  gw = await env.startGateway({});
  bob = await env.login({ service: env.prosody.tcpService, username: "bob", password: USERS.bob });
  await bob.send(xml("presence")); // available: the page writes to his bare JID
  fs.mkdirSync(ARTIFACTS, { recursive: true });
}, { timeout: 60000 });

after(async () => {
  await env?.stop();
}, { timeout: 60000 });

/** A fresh Chromium profile, no network but loopback, no background traffic. */
async function launch() {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "mxgw-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1100, height: 720 },
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      "--disable-dev-shm-usage"],
  });
  return {
    context,
    async close() {
      await context.close().catch(() => {});
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

async function chatRoundTrip(transport, shot) {
  const browser = await launch();
  const errors = [];
  try {
    const page = await browser.context.newPage();
    page.on("pageerror", (e) => errors.push(e.message));
    page.on("console", (m) => {
      if (m.type() === "error") errors.push(m.text());
    });
    await page.goto(`${gw.httpUrl}/`);
    assert.equal(await page.title(), "mxgw demo chat");
    await page.fill("[data-testid=jid]", "alice@localhost");
    await page.fill("[data-testid=password]", USERS.alice);
    await page.selectOption("[data-testid=transport]", transport);
    await page.click("[data-testid=connect]");
    await page.waitForSelector("[data-testid=who]:not([hidden])", { timeout: 20000 });
    assert.equal(await page.textContent("#who-jid"), "alice@localhost");

    // bob writes from Prosody; the page shows him as a conversation and his message.
    const hello = `Hello from bob on Prosody ${crypto.randomBytes(3).toString("hex")}`;
    await bob.send(xml("message", { to: "alice@localhost", type: "chat" }, xml("body", {}, hello)));
    await page.waitForSelector(`[data-testid=message-theirs] .bubble:text-is("${hello}")`, { timeout: 15000 });
    const contacts = await page.locator("[data-testid=contact] .name").allTextContents();
    assert.deepEqual(contacts, ["bob@localhost"]);
    assert.equal(await page.inputValue("[data-testid=to]"), "bob@localhost");

    // alice replies from the page; bob gets it from her BOSH (or WebSocket) session.
    const reply = `Hi bob, this is alice in Chromium over ${transport} <&>`;
    await page.fill("[data-testid=text]", reply);
    await page.click("[data-testid=send]");
    const got = await bob.waitFor((s) => s.is("message") && s.getChildText("body") === reply,
      { timeoutMs: 15000, what: "alice's reply" });
    assert.match(got.attrs.from, /^alice@localhost\//);
    await page.waitForSelector("[data-testid=message-mine]");

    const file = path.join(ARTIFACTS, shot);
    await page.screenshot({ path: file, fullPage: true });
    console.log(`screenshot: ${file}`);
    await page.click("[data-testid=logout]");
    await page.waitForSelector("[data-testid=login-status]:text-is('Logged out.')", { timeout: 15000 });
    assert.deepEqual(errors, [], "no script errors on the page");
  } finally {
    await browser.close();
  }
}

test("Chromium: the demo page logs in over BOSH, shows bob's message, and bob gets the reply",
  { timeout: 90000 }, guarded(() => env, () => chatRoundTrip("bosh", "demo-chat-bosh.png")));

test("Chromium: the same over WebSocket (RFC 7395)",
  { timeout: 90000 }, guarded(() => env, () => chatRoundTrip("websocket", "demo-chat-websocket.png")));
