// The offline inspector page: draws the statechart (statechart.svg, laid out
// at build time), listens on events for inspection messages in the
// Stately inspector's protocol (@xstate.actor, @xstate.event, @xstate.snapshot,
// plus @xstate.action for emitted events), highlights the active states and
// the transitions just taken, and lists the events with their times.
// Plain browser JavaScript, no bundler, no network beyond this server. Every
// URL is relative: the page lives under the server's random key.
// Server data arrives cut to size: an array longer than 100 items ends with
// a { "…": n } marker for the n items left out (lengthOf counts them).
"use strict";

(() => {
  const MAX_ROWS = 400;
  /** Actors remembered for naming log rows; the oldest are forgotten first. */
  const MAX_ACTORS = 200;
  const TAKEN_MS = 1500;
  const kinds = [
    { id: "state", label: "states", on: true },
    { id: "event", label: "events", on: true },
    { id: "heartbeat", label: "heartbeats", on: true },
    { id: "emitted", label: "emitted", on: true },
    { id: "child", label: "children", on: false },
  ];

  const $ = (id) => document.getElementById(id);
  const el = (tag, className, text) => {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  };

  const state = {
    machineId: "",
    actors: new Map(), // sessionId -> { name, parentId }
    rootSession: undefined,
    active: new Set(),
    lastValueJson: "",
    counts: Object.fromEntries(kinds.map((k) => [k.id, 0])),
    messages: 0,
    takenTimer: undefined,
  };

  // ---- statechart -------------------------------------------------------

  async function loadDiagram() {
    const res = await fetch("statechart.svg", { cache: "no-store" });
    if (!res.ok) throw new Error(`statechart.svg: HTTP ${res.status}`);
    const doc = new DOMParser().parseFromString(await res.text(), "image/svg+xml");
    const svg = document.importNode(doc.documentElement, true);
    svg.removeAttribute("width");
    svg.removeAttribute("height");
    const holder = $("diagram");
    holder.replaceChildren(svg);
    state.machineId = svg.getAttribute("data-machine-id") || "";
    $("machine-id").textContent = state.machineId ? `#${state.machineId}` : "";
    applyActive();
  }

  /** Active state paths for a snapshot value: "connection", "connection.open", … (root left out). */
  function activePaths(value, prefix) {
    const out = [];
    const join = (key) => (prefix ? `${prefix}.${key}` : key);
    if (typeof value === "string") out.push(join(value));
    else if (value && typeof value === "object") {
      for (const [key, sub] of Object.entries(value)) out.push(join(key), ...activePaths(sub, join(key)));
    }
    return out;
  }

  function applyActive() {
    for (const g of document.querySelectorAll("#diagram [data-state-path]")) {
      const path = g.getAttribute("data-state-path");
      // The root and the regions of a parallel state are always active: not marked.
      const always = path === "" || g.classList.contains("sc-region");
      g.classList.toggle("sc-active", !always && state.active.has(path));
    }
  }

  function markTaken(eventType, before) {
    for (const node of document.querySelectorAll("#diagram .sc-taken")) node.classList.remove("sc-taken");
    clearTimeout(state.takenTimer);
    let any = false;
    for (const g of document.querySelectorAll("#diagram [data-events]")) {
      const events = (g.getAttribute("data-events") || "").split(" ");
      if (events.includes(eventType) && before.has(g.getAttribute("data-source"))) {
        g.classList.add("sc-taken");
        any = true;
      }
    }
    for (const line of document.querySelectorAll("#diagram text[data-event]")) {
      const owner = line.closest("[data-state-path]");
      if (line.getAttribute("data-event") === eventType && owner && before.has(owner.getAttribute("data-state-path"))) {
        line.classList.add("sc-taken");
        any = true;
      }
    }
    if (any) state.takenTimer = setTimeout(() => markTaken("", new Set()), TAKEN_MS);
  }

  // ---- status ---------------------------------------------------------------

  function connectionOf(value) {
    const c = value?.connection;
    if (typeof c === "string") return c === "open" ? "connecting" : c;
    if (c && typeof c === "object" && "open" in c) return c.open;
    return "unknown";
  }

  function heartbeatOf(value) {
    const h = value?.heartbeat;
    return typeof h === "string" ? h : "unknown";
  }

  function showStatus(snapshot) {
    const value = snapshot.value;
    const conn = snapshot.status === "done" || snapshot.status === "stopped" ? "stopped" : connectionOf(value);
    const hb = snapshot.status === "done" || snapshot.status === "stopped" ? "stopped" : heartbeatOf(value);
    document.body.dataset.connection = conn;
    document.body.dataset.heartbeat = hb;
    $("conn-state").textContent = conn;
    $("hb-state").textContent = hb;
    $("conn-pill").dataset.state = conn;
    $("hb-pill").dataset.state = hb;
    const ctx = snapshot.context;
    if (!ctx) return;
    $("attempt").textContent = String(ctx.attempt ?? "–");
    const c = ctx.counters || {};
    const rows = [
      ["streams opened", c.streamsOpened],
      ["reconnects", c.reconnects],
      ["stream failures", c.streamFailures],
      ["stream ends", c.streamEnds],
      ["events received", c.eventsReceived],
      ["heartbeats", c.syncs],
      ["heartbeat failures", c.syncFailures],
      ["removals (stream)", c.removalsFromStream],
      ["removals (heartbeat)", c.removalsFromHeartbeat],
      ["duplicates suppressed", c.duplicatesSuppressed],
      ["ignored events", c.ignoredEvents],
      ["suspect connections", c.suspects],
    ];
    const dl = $("status");
    dl.replaceChildren();
    for (const [label, n] of rows) {
      const item = el("div", "stat");
      item.append(el("dt", "", label), el("dd", n ? "" : "zero", String(n ?? 0)));
      dl.append(item);
    }
    const err = $("last-error");
    if (ctx.lastError) {
      err.hidden = false;
      err.replaceChildren(
        el("b", "", "last error "),
        el("code", "", ctx.lastError.code),
        document.createTextNode(` ${ctx.lastError.message}`),
      );
    } else {
      err.hidden = true;
    }
  }

  // ---- log ------------------------------------------------------------------

  function timeOf(createdAt) {
    const ms = Number(createdAt);
    const d = Number.isFinite(ms) ? new Date(ms) : new Date();
    const pad = (n, w = 2) => String(n).padStart(w, "0");
    return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
  }

  function shortEvent(type) {
    const after = /^xstate\.after\.([^.]+)\./.exec(type);
    if (after) return `after: ${after[1]}`;
    const done = /^xstate\.(done|error)\.actor\.(.+)$/.exec(type);
    if (done) return `${done[1]}: ${done[2]}`;
    return type;
  }

  function errorText(error) {
    if (!error || typeof error !== "object") return "";
    const code = error.code !== undefined ? String(error.code) : "";
    const message = error.message || error.rawMessage || "";
    return [code, message].filter(Boolean).join(": ");
  }

  /** Length of an array as sent, counting the items a trailing { "…": n } marker stands for. */
  function lengthOf(list) {
    if (!Array.isArray(list)) return 0;
    const last = list[list.length - 1];
    const cut = last && typeof last === "object" && typeof last["…"] === "number" ? last["…"] : undefined;
    return cut === undefined ? list.length : list.length - 1 + cut;
  }

  /** Remembers an actor's name, forgetting the oldest beyond MAX_ACTORS (never the root). */
  function rememberActor(sessionId, actor) {
    state.actors.delete(sessionId);
    state.actors.set(sessionId, actor);
    for (const id of state.actors.keys()) {
      if (state.actors.size <= MAX_ACTORS) break;
      if (id !== state.rootSession) state.actors.delete(id);
    }
  }

  function describeEvent(event) {
    const type = event.type || "";
    if (type === "stream.event" && event.event) {
      const e = event.event;
      return `project ${e.projectId || "''"} · type ${e.eventType} · id ${e.eventId}`;
    }
    if (type.startsWith("xstate.error.actor.")) return errorText(event.error);
    if (type === "xstate.done.actor.syncProjectState" && event.output) {
      const o = event.output;
      return `reported ${o.reported} · removed ${lengthOf(o.removed)} · unknown ${lengthOf(o.unknown)} · skew ${o.skewMs} ms`;
    }
    return "";
  }

  function describeEmitted(e) {
    switch (e.type) {
      case "projectRemoved":
        return `${e.projectId} · via ${e.info?.source}${e.info?.eventId ? ` · event ${e.info.eventId}` : ""}${e.info?.reason ? ` · ${e.info.reason}` : ""}`;
      case "duplicateSuppressed":
        return `${e.projectId} · via ${e.source}`;
      case "eventIgnored":
        return `${e.projectId || "''"} · ${e.why}`;
      case "streamFailed":
        return `${errorText(e.error)} · attempt ${e.attempt}${e.suspect ? " · suspect" : ""}`;
      case "streamEnded":
        return `attempt ${e.attempt}`;
      case "syncCompleted":
        return `removed ${lengthOf(e.result?.removed)} · unknown ${lengthOf(e.result?.unknown)}`;
      case "syncFailed":
        return `${errorText(e.error)}${e.suspect ? " · suspect" : ""}`;
      default:
        return "";
    }
  }

  function addRow(kind, createdAt, what, detail, tone) {
    state.counts[kind] = (state.counts[kind] || 0) + 1;
    updateFilterCounts();
    const row = el("li", `row kind-${kind}${tone ? ` tone-${tone}` : ""}`);
    row.dataset.kind = kind;
    const text = el("span", "text");
    text.append(el("span", "what", what));
    if (detail) text.append(el("span", "detail", detail));
    row.append(el("time", "", timeOf(createdAt)), el("span", "badge", kind), text);
    const log = $("log");
    log.prepend(row);
    while (log.children.length > MAX_ROWS) log.lastElementChild.remove();
  }

  function renderFilters() {
    const box = $("filters");
    box.replaceChildren();
    for (const k of kinds) {
      const chip = el("button", `chip kind-${k.id}${k.on ? " on" : ""}`);
      chip.type = "button";
      chip.dataset.kind = k.id;
      chip.append(el("span", "", k.label), el("span", "count", "0"));
      chip.addEventListener("click", () => {
        k.on = !k.on;
        chip.classList.toggle("on", k.on);
        applyFilters();
      });
      box.append(chip);
    }
    applyFilters();
  }

  function applyFilters() {
    const log = $("log");
    for (const k of kinds) log.classList.toggle(`hide-${k.id}`, !k.on);
  }

  function updateFilterCounts() {
    for (const chip of document.querySelectorAll("#filters .chip")) {
      chip.querySelector(".count").textContent = String(state.counts[chip.dataset.kind] || 0);
    }
  }

  // ---- protocol ---------------------------------------------------------------

  function isRoot(sessionId) {
    return sessionId !== undefined && sessionId === state.rootSession;
  }

  function onMessage(m) {
    state.messages++;
    switch (m.type) {
      case "@xstate.actor": {
        rememberActor(m.sessionId, { name: m.name, parentId: m.parentId });
        if (m.parentId === undefined && (!state.machineId || m.name === state.machineId)) {
          state.rootSession = m.sessionId;
          state.lastValueJson = "";
          $("session").textContent = `session ${m.sessionId}`;
          if (m.snapshot && m.snapshot.value !== undefined) onRootSnapshot(m.snapshot, { type: "(registered)" }, m.createdAt, false);
        } else {
          addRow("child", m.createdAt, `${m.name} started`, m.parentId ? `child of ${m.parentId}` : "");
        }
        return;
      }
      case "@xstate.event": {
        const event = m.event || {};
        if (!isRoot(m.sessionId)) {
          const actor = state.actors.get(m.sessionId);
          addRow("child", m.createdAt, `${actor ? actor.name : m.sessionId} ← ${event.type}`, "");
          return;
        }
        if (event.type === "xstate.init") return;
        const heartbeat = /^xstate\.(done|error)\.actor\.syncProjectState$/.test(event.type || "");
        const failed = /^xstate\.error\.actor\./.test(event.type || "");
        addRow(
          heartbeat ? "heartbeat" : "event",
          m.createdAt,
          shortEvent(event.type || "?"),
          describeEvent(event),
          failed ? "bad" : heartbeat ? "good" : "",
        );
        return;
      }
      case "@xstate.snapshot": {
        if (!isRoot(m.sessionId)) {
          const actor = state.actors.get(m.sessionId);
          if (m.snapshot && m.snapshot.status !== "active") {
            addRow("child", m.createdAt, `${actor ? actor.name : m.sessionId} ${m.snapshot.status}`, "");
            state.actors.delete(m.sessionId);
          }
          return;
        }
        onRootSnapshot(m.snapshot || {}, m.event || {}, m.createdAt, true);
        return;
      }
      case "@xstate.action": {
        const emitted = m.action && m.action.type === "xstate.emit" && m.action.params ? m.action.params.event : undefined;
        if (!emitted || !isRoot(m.sessionId)) return;
        const tone = emitted.type === "projectRemoved" ? "removal" : /Failed$/.test(emitted.type) ? "bad" : "";
        addRow("emitted", m.createdAt, emitted.type, describeEmitted(emitted), tone);
        return;
      }
      default:
        return;
    }
  }

  function onRootSnapshot(snapshot, event, createdAt, log) {
    const before = state.active;
    state.active = new Set(activePaths(snapshot.value, ""));
    applyActive();
    showStatus(snapshot);
    const valueJson = JSON.stringify(snapshot.value) + (snapshot.status || "");
    if (valueJson !== state.lastValueJson) {
      state.lastValueJson = valueJson;
      if (log) {
        const leaves = activePaths(snapshot.value, "").filter((p) => !activePaths(snapshot.value, "").some((q) => q.startsWith(`${p}.`)));
        addRow("state", createdAt, leaves.join("  ·  ") || String(snapshot.status), event.type ? `on ${shortEvent(event.type)}` : "");
      }
    }
    if (event.type) markTaken(event.type, before);
  }

  // ---- socket -----------------------------------------------------------------

  function connect() {
    const url = new URL("events", location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(url.href);
    socket.addEventListener("open", () => {
      document.body.dataset.socket = "open";
      $("live-text").textContent = "live";
      // The server replays its recent history on every (re)connect.
      $("log").replaceChildren();
      for (const k of kinds) state.counts[k.id] = 0;
      updateFilterCounts();
      state.actors.clear();
      state.rootSession = undefined;
      state.lastValueJson = "";
    });
    socket.addEventListener("message", (e) => {
      let m;
      try {
        m = JSON.parse(e.data);
      } catch {
        return;
      }
      if (m && typeof m === "object") onMessage(m);
    });
    socket.addEventListener("close", () => {
      document.body.dataset.socket = "closed";
      $("live-text").textContent = "disconnected · retrying";
      setTimeout(connect, 1000);
    });
  }

  $("zoom").addEventListener("click", () => {
    const fit = $("diagram").classList.toggle("fit");
    $("zoom").textContent = fit ? "actual size" : "fit";
  });

  renderFilters();
  loadDiagram()
    .catch((err) => {
      $("diagram").replaceChildren(el("p", "error", `Could not load the statechart: ${err.message}`));
    })
    .finally(connect);
})();
