// mxgw demo chat: log in over BOSH (or WebSocket) with Strophe.js, list who writes to you,
// read and send one-to-one messages. Everything here runs in the browser; mxgw only relays.
"use strict";

(function () {
  // The UMD build of Strophe.js puts Strophe, $msg and $pres on the window.
  const { Strophe, $msg, $pres } = window;
  const $ = (id) => document.getElementById(id);
  Strophe.setLogLevel(Strophe.LogLevel.WARN);

  let conn = null;
  let config = { bosh: "/http-bind", websocket: null };
  const threads = new Map(); // bare JID -> { messages: [{ mine, text, at }], unread }
  let current = null; // bare JID shown on the right

  function setStatus(el, text, error = false) {
    el.textContent = text;
    el.classList.toggle("error", error);
  }

  function bare(jid) {
    return Strophe.getBareJidFromJid(jid || "");
  }

  function thread(jid) {
    if (!threads.has(jid)) threads.set(jid, { messages: [], unread: 0 });
    return threads.get(jid);
  }

  function time(at) {
    return at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function renderContacts() {
    const list = $("contacts");
    list.replaceChildren();
    for (const [jid, t] of threads) {
      const li = document.createElement("li");
      li.dataset.jid = jid;
      li.dataset.testid = "contact";
      li.classList.toggle("active", jid === current);
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = jid;
      li.append(name);
      if (t.unread > 0) {
        const badge = document.createElement("span");
        badge.className = "badge";
        badge.textContent = String(t.unread);
        li.append(badge);
      }
      li.addEventListener("click", () => select(jid));
      list.append(li);
    }
    $("no-contacts").hidden = threads.size > 0;
  }

  function renderThread() {
    const list = $("messages");
    list.replaceChildren();
    if (!current) return;
    for (const m of thread(current).messages) {
      const li = document.createElement("li");
      li.className = m.mine ? "mine" : "theirs";
      li.dataset.testid = m.mine ? "message-mine" : "message-theirs";
      const bubble = document.createElement("div");
      bubble.className = "bubble";
      bubble.textContent = m.text;
      const meta = document.createElement("div");
      meta.className = "meta";
      meta.textContent = `${m.mine ? "you" : current} · ${time(m.at)}`;
      li.append(bubble, meta);
      list.append(li);
    }
    list.scrollTop = list.scrollHeight;
  }

  function select(jid) {
    current = jid;
    $("to").value = jid;
    thread(jid).unread = 0;
    renderContacts();
    renderThread();
  }

  function onMessage(stanza) {
    const body = stanza.getElementsByTagName("body")[0];
    const type = stanza.getAttribute("type") || "normal";
    if (!body || type === "error" || type === "groupchat") return true;
    const from = bare(stanza.getAttribute("from"));
    const t = thread(from);
    t.messages.push({ mine: false, text: Strophe.getText(body), at: new Date() });
    if (!current) current = from;
    if (from === current) {
      $("to").value = from;
    } else {
      t.unread++;
    }
    renderContacts();
    renderThread();
    return true; // keep the handler
  }

  function showChat(jid, via) {
    $("login-view").hidden = true;
    $("chat-view").hidden = false;
    $("who").hidden = false;
    $("who-jid").textContent = jid;
    $("who-via").textContent = `via ${via}`;
    renderContacts();
    $("to").focus();
  }

  function showLogin(text, error) {
    $("chat-view").hidden = true;
    $("who").hidden = true;
    $("login-view").hidden = false;
    $("connect").disabled = false;
    setStatus($("login-status"), text || "", error);
  }

  const STATUS = Strophe.Status;

  function onStatus(via) {
    return (status, condition) => {
      switch (status) {
        case STATUS.CONNECTING:
          setStatus($("login-status"), `Connecting over ${via}…`);
          break;
        case STATUS.AUTHENTICATING:
          setStatus($("login-status"), "Authenticating…");
          break;
        case STATUS.CONNECTED:
          conn.addHandler(onMessage, null, "message", null, null, null);
          conn.send($pres()); // available: messages to the bare JID reach us
          showChat(bare(conn.jid), via);
          break;
        case STATUS.AUTHFAIL:
          showLogin("Wrong address or password.", true);
          break;
        case STATUS.CONNFAIL:
          showLogin(`Connection failed${condition ? `: ${condition}` : ""}.`, true);
          break;
        case STATUS.DISCONNECTED:
          if (!$("chat-view").hidden) showLogin("Logged out.");
          else if (!$("login-status").classList.contains("error")) showLogin("Disconnected.");
          conn = null;
          break;
        default:
          break;
      }
    };
  }

  function serviceUrl(transport) {
    if (transport === "websocket" && config.websocket) return config.websocket;
    return new URL(config.bosh, window.location.href).toString();
  }

  $("login-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const jid = $("jid").value.trim();
    const password = $("password").value;
    const transport = $("transport").value;
    const via = transport === "websocket" ? "WebSocket" : "BOSH";
    $("connect").disabled = true;
    setStatus($("login-status"), "");
    conn = new Strophe.Connection(serviceUrl(transport));
    conn.connect(jid, password, onStatus(via));
  });

  $("compose-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const to = $("to").value.trim();
    const text = $("text").value;
    if (!conn || !to || !text.trim()) return;
    if (!to.includes("@")) {
      setStatus($("chat-status"), "Write the address as name@domain.", true);
      return;
    }
    conn.send($msg({ to, type: "chat" }).c("body").t(text));
    const jid = bare(to);
    thread(jid).messages.push({ mine: true, text, at: new Date() });
    $("text").value = "";
    setStatus($("chat-status"), "");
    select(jid);
  });

  $("logout").addEventListener("click", () => {
    if (conn) {
      conn.send($pres({ type: "unavailable" }));
      conn.disconnect("logout");
    }
  });

  fetch("/demo/config.json")
    .then((r) => r.json())
    .then((c) => {
      config = c;
      if (!c.websocket) $("transport").querySelector("[value=websocket]").disabled = true;
    })
    .catch(() => setStatus($("login-status"), "Could not read /demo/config.json; using BOSH."));
}());
