// Drives a headless Chromium (via playwright-core; see test/helpers/chromium.ts
// for which one: CHROMIUM_PATH, a system chromium, else the build shipped in
// the @sparticuz/chromium devDependency) against the
// offline inspector page while a bridge runs against the dev server, and
// checks that the highlighted state follows the bridge through
// streaming → backoff → streaming. Saves test-artifacts/inspector.png.
import { mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Code } from "@connectrpc/connect";
import type { Browser, Page } from "playwright-core";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createBridge, HandlerRegistry, SessionTracker, startDevServer, type Bridge, type DevServer } from "../../src/index.js";
import { flattenConnection } from "../../src/bridge-status.js";
import { startInspector, type InspectorHandle } from "../../inspector/index.js";
import { launchChromium } from "../helpers/chromium.js";
import { capturingLogger, eventually, recordingHandler } from "../helpers/e2e.js";

const artifacts = fileURLToPath(new URL("../../test-artifacts/", import.meta.url));
const TOKEN = "browser-test-token-91c4d2f0a7";
/** Generous: the machine running the suite may be loaded. */
const uiTimeoutMs = 20_000;

interface Ctx {
  server: DevServer;
  inspector: InspectorHandle;
  bridge: Bridge;
  browser: Browser;
}

const browserSuite = suite<Ctx>("inspector in a real browser");

browserSuite.after.each(async (ctx) => {
  await ctx.browser?.close().catch(() => {});
  await ctx.bridge?.stop();
  await ctx.inspector?.close();
  await ctx.server?.close();
});

// Page-side code is passed as source text: it runs in the browser, not under
// this file's (DOM-less) TypeScript settings or tsx's transforms.

/** The connection state the page shows, and which leaf states are highlighted. */
async function shown(page: Page): Promise<{ connection: string; activeLeaves: string[] }> {
  return page.evaluate(`({
    connection: document.body.dataset.connection || "",
    activeLeaves: [...document.querySelectorAll("#diagram .sc-leaf.sc-active")].map((g) => g.getAttribute("data-state-path")),
  })`);
}

/**
 * Evaluates `expression` in the page until it is truthy and returns that
 * value. Polling from here rather than with waitForFunction, whose in-page
 * polling evaluates strings and so breaks the page's CSP (no 'unsafe-eval').
 */
async function pollPage<T>(page: Pick<Page, "evaluate">, expression: string, what: string): Promise<T> {
  const deadline = performance.now() + uiTimeoutMs;
  let lastError = "";
  for (;;) {
    // A frame that is still navigating throws; that is "not yet".
    const value = await page.evaluate<T | false | null>(expression).catch((err: unknown) => {
      lastError = ` (last error: ${String(err)})`;
      return false as const;
    });
    if (value) return value;
    if (performance.now() > deadline) throw new Error(`timed out after ${uiTimeoutMs} ms waiting for the page: ${what}${lastError}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Waits until the page shows `connection` with `path` highlighted and returns
 * the highlighted leaves of that same moment.
 */
function waitForHighlight(page: Page, path: string, connection: string): Promise<string[]> {
  return pollPage<string[]>(
    page,
    `(() => {
      const leaves = [...document.querySelectorAll("#diagram .sc-leaf.sc-active")].map((g) => g.getAttribute("data-state-path"));
      return document.body.dataset.connection === ${JSON.stringify(connection)} && leaves.includes(${JSON.stringify(path)}) ? leaves : false;
    })()`,
    `${path} highlighted while showing ${connection}`,
  );
}

/** Records every connection state the page shows, in order, in window.seenStates. */
const recordStates = `(() => {
  const seen = [];
  window.seenStates = seen;
  const note = () => {
    const s = document.body.dataset.connection || "";
    if (seen[seen.length - 1] !== s) seen.push(s);
  };
  note();
  new MutationObserver(note).observe(document.body, { attributes: true, attributeFilter: ["data-connection"] });
})()`;

const countRows = `(() => {
  const count = (sel) => document.querySelectorAll(sel).length;
  return { state: count("#log .kind-state"), event: count("#log .kind-event"), heartbeat: count("#log .kind-heartbeat"), emitted: count("#log .kind-emitted") };
})()`;

browserSuite("the page highlights the live state through streaming → backoff → streaming", async (ctx) => {
  mkdirSync(artifacts, { recursive: true });
  ctx.server = await startDevServer({ token: TOKEN });
  ctx.inspector = await startInspector();
  const registry = new HandlerRegistry();
  const handler = recordingHandler();
  registry.register(handler);
  const tracker = new SessionTracker();
  tracker.connect("p-kept");
  ctx.server.createProject("p-kept");
  ctx.bridge = createBridge({
    registry,
    tracker,
    serverUrl: ctx.server.url,
    token: TOKEN,
    env: {},
    logger: capturingLogger(),
    clientId: "browser-test",
    // Backoff long enough for a person (and the page) to see it.
    timing: {
      backoffMinMs: 400,
      backoffMaxMs: 800,
      openConfirmMs: 300,
      stableAfterMs: 60_000,
      heartbeatMs: 1500,
      heartbeatJitterMs: 0,
      syncTimeoutMs: 2000,
      stopTimeoutMs: 2000,
    },
    inspect: ctx.inspector.inspect,
  });

  const launched = await launchChromium();
  ctx.browser = launched.browser;
  const page = await ctx.browser.newPage({ viewport: { width: 1600, height: 1000 } });
  const problems: string[] = [];
  const external: string[] = [];
  const frames: string[] = [];
  page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
  page.on("console", (msg) => {
    if (msg.type() === "error") problems.push(`console error: ${msg.text()}`);
  });
  page.on("websocket", (ws) => ws.on("framereceived", (f) => frames.push(String(f.payload))));
  // Offline: anything not served by the inspector itself is blocked and counted.
  const inspectorOrigin = new URL(ctx.inspector.url).origin;
  await page.route("**/*", (route) => {
    const url = route.request().url();
    if (new URL(url).origin === inspectorOrigin) return route.continue();
    external.push(url);
    return route.abort();
  });

  await page.goto(ctx.inspector.url);
  await page.waitForSelector("#diagram svg [data-state-path='connection.idle']", { timeout: uiTimeoutMs });
  await pollPage(page, `document.body.dataset.socket === "open"`, "its socket open");
  await page.evaluate(recordStates);

  // What the bridge itself went through, to compare with what the page showed.
  const bridgeStates = [flattenConnection(ctx.bridge.actor.getSnapshot().value)];
  ctx.bridge.actor.subscribe((snapshot) => {
    const state = flattenConnection(snapshot.value);
    if (bridgeStates.at(-1) !== state) bridgeStates.push(state);
  });

  // 1. streaming
  ctx.bridge.start();
  await ctx.server.waitForStreams(1, uiTimeoutMs);
  await waitForHighlight(page, "connection.open.streaming", "streaming");
  assert.is(ctx.bridge.status().state, "streaming");
  ctx.server.createProject("p-gone");
  ctx.server.removeProject("p-gone", "deleted by owner");
  await page.waitForSelector("#log .row.kind-emitted.tone-removal", { timeout: uiTimeoutMs });
  assert.equal(handler.ids(), ["p-gone"]);
  await page.waitForSelector("#log .row.kind-heartbeat", { timeout: uiTimeoutMs });

  // 2. backoff: the server drops the stream and rejects new ones for a while.
  ctx.server.rejectStreams(Code.Unavailable);
  ctx.server.dropStreams();
  const during = await waitForHighlight(page, "connection.backoff", "backoff");
  assert.equal(
    during.filter((p) => p.startsWith("connection.")),
    ["connection.backoff"],
    "one connection state at a time",
  );
  assert.ok(ctx.bridge.status().counters.streamFailures >= 1);
  await page.waitForSelector("#last-error:not([hidden])", { timeout: uiTimeoutMs });
  // Keep rejecting until a reconnect attempt has been refused and the bridge is back in backoff.
  await eventually(
    "a refused reconnect",
    () => ctx.server.stats().streamsRejected >= 1 && ctx.bridge.status().counters.streamFailures >= 2,
    uiTimeoutMs,
  );
  await waitForHighlight(page, "connection.backoff", "backoff");
  await page.screenshot({ path: `${artifacts}inspector-backoff.png`, animations: "disabled" });

  // 3. streaming again once the server accepts streams.
  ctx.server.rejectStreams(undefined);
  await waitForHighlight(page, "connection.open.streaming", "streaming");
  await eventually("bridge streaming", () => ctx.bridge.status().state === "streaming", uiTimeoutMs);
  // Let heartbeats go by until the page has shown two, then the page and the bridge must agree.
  await pollPage(page, `document.querySelectorAll("#log .kind-heartbeat").length >= 2`, "two heartbeats in the log");
  const after = await shown(page);
  assert.is(after.connection, ctx.bridge.status().state);
  assert.equal(
    after.activeLeaves.filter((p) => p.startsWith("connection.")),
    ["connection.open.streaming"],
  );
  assert.is(after.activeLeaves.filter((p) => p.startsWith("heartbeat.")).length, 1, "one heartbeat state at a time");

  const seen = (await page.evaluate<string[]>(`window.seenStates`)).filter((s) => s !== "unknown");
  const order = ["streaming", "backoff", "streaming"];
  let at = 0;
  for (const s of seen) if (s === order[at]) at++;
  assert.is(at, order.length, `the page went streaming → backoff → streaming (saw ${seen.join(" → ")})`);
  assert.equal(seen, bridgeStates, "the page showed every connection state the bridge went through, in order");

  const rows = await page.evaluate<{ state: number; event: number; heartbeat: number; emitted: number }>(countRows);
  assert.ok(rows.state >= 4 && rows.event >= 4 && rows.heartbeat >= 2 && rows.emitted >= 2, `log rows ${JSON.stringify(rows)}`);

  await page.screenshot({ path: `${artifacts}inspector.png`, animations: "disabled" });

  // Nothing left the machine, the page broke no CSP rule, and no message carried the token.
  assert.equal(external, [], "the offline page requested something from outside");
  assert.equal(problems, []);
  assert.ok(frames.length > 20, `the page received ${frames.length} messages`);
  assert.equal(
    frames.filter((f) => f.includes(TOKEN)),
    [],
    "a message to the page carries the token",
  );
  console.log(
    `# browser (${launched.source}, ${launched.browser.version()}): page showed ${seen.join(" → ")}; ${frames.length} messages, 0 with the token; rows ${JSON.stringify(rows)}`,
  );
  console.log(`# screenshot: test-artifacts/inspector.png (and inspector-backoff.png)`);
});

browserSuite("the Stately page relays the session to the hosted inspector in its iframe", async (ctx) => {
  ctx.server = await startDevServer();
  ctx.inspector = await startInspector();
  ctx.bridge = createBridge({
    registry: new HandlerRegistry(),
    serverUrl: ctx.server.url,
    env: {},
    logger: capturingLogger(),
    timing: { openConfirmMs: 300, heartbeatMs: 60_000, heartbeatJitterMs: 0 },
    inspect: ctx.inspector.inspect,
  });
  ctx.bridge.start();
  await ctx.server.waitForStreams(1, uiTimeoutMs);
  ctx.browser = (await launchChromium()).browser;
  const page = await ctx.browser.newPage();
  // Stand in for stately.ai/inspect (no internet here): a receiver that says
  // it is connected, as @statelyai/inspect's browser receiver does, and keeps
  // what it gets.
  await page.route("https://stately.ai/**", (route) =>
    route.fulfill({
      contentType: "text/html",
      body: `<!doctype html><script>window.got = []; addEventListener("message", (e) => window.got.push(e.data)); parent.postMessage({ type: "@statelyai.connected" }, "*");</script>`,
    }),
  );
  await page.goto(ctx.inspector.statelyUrl);
  const frame = await (await page.waitForSelector("iframe#inspector", { timeout: uiTimeoutMs })).contentFrame();
  assert.ok(frame, "the Stately iframe exists");
  const got = await pollPage<Array<{ type: string; name?: string; parentId?: string }>>(
    frame!,
    `location.origin === "https://stately.ai" && Array.isArray(window.got) && window.got.some((m) => m.type === "@xstate.snapshot") && window.got`,
    "a snapshot relayed to the Stately frame",
  );
  assert.ok(
    got.every((m) => ["@xstate.actor", "@xstate.event", "@xstate.snapshot"].includes(m.type)),
    "only Stately's three message types",
  );
  assert.ok(
    got.some((m) => m.type === "@xstate.actor" && m.name === "bridge" && m.parentId === undefined),
    "the bridge actor was registered",
  );
});

browserSuite.run();
