// The page scripts' own buffers are bounded (issue 11 item 11): stately.js
// while the Stately iframe is not listening yet, and the actor names that
// inspector.js remembers. The scripts run in a vm context with a minimal fake
// DOM and WebSocket; the real browser run is inspector-browser.test.ts.
import { readFileSync } from "node:fs";
import { runInNewContext } from "node:vm";
import { suite } from "uvu";
import * as assert from "uvu/assert";

const pageDir = new URL("../../inspector/page/", import.meta.url);
const pageUrl = "http://127.0.0.1:4000/k3yK3yK3yK3yK3yK3yK3yK3y/";

type Listener = (event: unknown) => void;

/** The sockets a page script opened, with a way to play messages into them. */
class FakeSocket {
  static opened: FakeSocket[] = [];
  readonly listeners = new Map<string, Listener[]>();
  constructor(readonly url: string) {
    FakeSocket.opened.push(this);
  }
  addEventListener(type: string, fn: Listener): void {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), fn]);
  }
  fire(type: string, event: unknown = {}): void {
    for (const fn of this.listeners.get(type) ?? []) fn(event);
  }
  message(m: unknown): void {
    this.fire("message", { data: JSON.stringify(m) });
  }
}

/** Just enough of an element for the page scripts. */
class FakeElement {
  children: FakeElement[] = [];
  dataset: Record<string, string> = {};
  className = "";
  textContent = "";
  hidden = false;
  type = "";
  classList = { toggle: () => false, add: () => {}, remove: () => {}, contains: () => false };
  constructor(readonly tag = "div") {}
  append(...nodes: FakeElement[]): void {
    this.children.push(...nodes);
  }
  prepend(node: FakeElement): void {
    this.children.unshift(node);
  }
  replaceChildren(...nodes: FakeElement[]): void {
    this.children = [...nodes];
  }
  get lastElementChild(): { remove(): void } {
    return { remove: () => void this.children.pop() };
  }
  addEventListener(): void {}
  querySelector(): FakeElement {
    return new FakeElement();
  }
  querySelectorAll(): FakeElement[] {
    return [];
  }
  getAttribute(): null {
    return null;
  }
  setAttribute(): void {}
  removeAttribute(): void {}
  get text(): string {
    return this.textContent + this.children.map((c) => c.text).join(" ");
  }
}

function runPage(file: string, extra: Record<string, unknown> = {}): { byId: Map<string, FakeElement>; windowListeners: Listener[] } {
  FakeSocket.opened = [];
  const byId = new Map<string, FakeElement>();
  const windowListeners: Listener[] = [];
  const document = {
    body: new FakeElement("body"),
    getElementById: (id: string) => {
      if (!byId.has(id)) byId.set(id, new FakeElement());
      return byId.get(id);
    },
    createElement: (tag: string) => new FakeElement(tag),
    createTextNode: (text: string) => Object.assign(new FakeElement("#text"), { textContent: text }),
    querySelectorAll: () => [],
    importNode: () => new FakeElement(),
  };
  runInNewContext(readFileSync(new URL(file, pageDir), "utf8"), {
    document,
    window: { addEventListener: (_type: string, fn: Listener) => windowListeners.push(fn) },
    location: { href: `${pageUrl}${file === "stately.js" ? "stately" : ""}`, protocol: "http:", host: "127.0.0.1:4000" },
    WebSocket: FakeSocket,
    URL,
    setTimeout: () => 0,
    clearTimeout: () => {},
    fetch: () => Promise.reject(new Error("offline")),
    DOMParser: class {},
    ...extra,
  });
  return { byId, windowListeners };
}

const flush = () => new Promise((resolve) => setImmediate(resolve));

const page = suite("page-side buffers");

page("stately.js posts at most the bounded queues once the iframe listens", () => {
  const posted: Array<{ type: string; sessionId: string; event?: { type: string } }> = [];
  const iframe = Object.assign(new FakeElement("iframe"), {
    contentWindow: { postMessage: (m: (typeof posted)[number], origin: string) => origin === "https://stately.example" && posted.push(m) },
  });
  iframe.dataset.origin = "https://stately.example";
  iframe.dataset.src = "https://stately.example/live";
  let listenersWhenLoaded = -1;
  let loadedSrc = "";
  Object.defineProperty(iframe, "src", {
    set(value: string) {
      loadedSrc = value;
      listenersWhenLoaded = windowListenersRef.length;
    },
  });
  const windowListeners: Listener[] = [];
  const windowListenersRef = windowListeners;
  runPage("stately.js", {
    document: {
      getElementById: (id: string) => (id === "inspector" ? iframe : new FakeElement()),
    },
    window: { addEventListener: (_type: string, fn: Listener) => windowListeners.push(fn) },
  });
  assert.is(loadedSrc, "https://stately.example/live", "the iframe is loaded by the script");
  assert.is(listenersWhenLoaded, 1, "only once the message listener exists (its one connected message is not lost)");
  const socket = FakeSocket.opened[0]!;
  assert.is(socket.url, `${pageUrl.replace(/^http/, "ws")}events`, "the socket lives under the page's key");
  socket.message({ type: "@xstate.actor", sessionId: "root", name: "bridge" });
  for (let i = 0; i < 500; i++) socket.message({ type: "@xstate.actor", sessionId: `child-${i}`, parentId: "root" });
  for (let i = 0; i < 20_000; i++) socket.message({ type: "@xstate.event", sessionId: "root", event: { type: `E${i}` } });
  socket.message({ type: "@xstate.bogus", sessionId: "root" });
  assert.is(posted.length, 0, "nothing before the iframe listens");
  // A message from another origin does not open the gate.
  for (const fn of windowListeners) fn({ origin: "https://evil.example", data: { type: "@statelyai.connected" } });
  assert.is(posted.length, 0);
  for (const fn of windowListeners) fn({ origin: "https://stately.example", data: { type: "@statelyai.connected" } });
  assert.ok(posted.length <= 8 + 100 + 1000, `${posted.length} messages posted`);
  // (Objects from the page's realm: compared as JSON.)
  assert.is(
    JSON.stringify(posted[0]),
    JSON.stringify({ type: "@xstate.actor", sessionId: "root", name: "bridge" }),
    "the root registration survives the flood, first",
  );
  assert.is(posted.at(-1)!.event!.type, "E19999", "the latest messages are kept");
  assert.not.ok(posted.some((m) => m.type === "@xstate.bogus"));
  // Once listening, messages go straight through.
  socket.message({ type: "@xstate.event", sessionId: "root", event: { type: "LIVE" } });
  assert.is(posted.at(-1)!.event!.type, "LIVE");
});

page("inspector.js forgets the oldest actors beyond its bound, never the root", async () => {
  const { byId } = runPage("inspector.js");
  await flush(); // the diagram fetch fails, then the page connects
  const socket = FakeSocket.opened[0]!;
  assert.is(socket.url, `${pageUrl.replace(/^http/, "ws")}events`, "the socket lives under the page's key");
  socket.fire("open");
  socket.message({
    type: "@xstate.actor",
    sessionId: "root",
    name: "bridge",
    snapshot: { value: { connection: "idle", heartbeat: "waiting" }, status: "active", context: {} },
  });
  for (let i = 0; i < 1000; i++) socket.message({ type: "@xstate.actor", sessionId: `child-${i}`, name: `sync-${i}`, parentId: "root" });
  const lastRow = () => byId.get("log")!.children[0]!.text;
  socket.message({ type: "@xstate.event", sessionId: "child-999", event: { type: "PING" } });
  assert.match(lastRow(), /sync-999 ← PING/, "a recent actor is named");
  socket.message({ type: "@xstate.event", sessionId: "child-0", event: { type: "PING" } });
  assert.match(lastRow(), /child-0 ← PING/, "the oldest was forgotten: shown by its session id");
  // A child that finished is forgotten at once.
  socket.message({ type: "@xstate.snapshot", sessionId: "child-998", snapshot: { status: "done" } });
  assert.match(lastRow(), /sync-998 done/);
  socket.message({ type: "@xstate.event", sessionId: "child-998", event: { type: "PING" } });
  assert.match(lastRow(), /child-998 ← PING/);
  // The root is still the root: its events are logged as the bridge's.
  socket.message({ type: "@xstate.event", sessionId: "root", event: { type: "START" } });
  assert.match(lastRow(), /START/);
  assert.not.match(lastRow(), /←/);
  // Counts of cut arrays include what was left out.
  socket.message({
    type: "@xstate.event",
    sessionId: "root",
    event: { type: "xstate.done.actor.syncProjectState", output: { reported: 3, removed: ["a", { "…": 59_999 }], unknown: [], skewMs: 0 } },
  });
  assert.match(lastRow(), /removed 60000 · unknown 0/);
});

page.run();
