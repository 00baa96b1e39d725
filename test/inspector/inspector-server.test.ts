import { suite } from "uvu";
import * as assert from "uvu/assert";
import { WebSocket } from "ws";
import { createActor, emit, setup } from "xstate";
import { BridgeError } from "../../src/errors.js";
import { startInspector, type InspectorHandle } from "../../inspector/index.js";
import { eventually } from "../helpers/e2e.js";

const server = suite<{ inspector: InspectorHandle }>("inspector server");

server.after.each(async (ctx) => {
  await ctx.inspector?.close();
});

interface Viewer {
  ws: WebSocket;
  messages: Array<{ type: string; sessionId: string; name?: string; event?: { type: string }; snapshot?: { value?: unknown } }>;
  closeCode: Promise<number>;
}

function openViewer(url: string): Promise<Viewer> {
  const ws = new WebSocket(`${url.replace(/^http/, "ws")}events`, { origin: new URL(url).origin });
  const messages: Viewer["messages"] = [];
  ws.on("message", (data) => messages.push(JSON.parse(String(data)) as Viewer["messages"][number]));
  const closeCode = new Promise<number>((resolve) => ws.once("close", (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    ws.once("open", () => resolve({ ws, messages, closeCode }));
    ws.once("error", reject);
  });
}

const toggle = setup({}).createMachine({
  id: "toggle",
  initial: "off",
  states: { off: { on: { FLIP: "on" } }, on: { on: { FLIP: "off" } } },
});

server("serves the offline page, its assets and the diagram with a strict CSP", async (ctx) => {
  ctx.inspector = await startInspector();
  const { url } = ctx.inspector;
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/[A-Za-z0-9_-]{24}\/$/);
  const page = await fetch(url);
  assert.is(page.status, 200);
  const csp = page.headers.get("content-security-policy") ?? "";
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /script-src 'self'(;|$)/);
  assert.match(csp, /connect-src 'self' ws:\/\/127\.0\.0\.1:\d+/);
  assert.is(page.headers.get("x-frame-options"), "DENY");
  const html = await page.text();
  assert.match(html, /<script src="inspector\.js" defer><\/script>/);
  assert.not.match(html, /https?:\/\/(?!127)/, "the offline page references nothing on the internet");
  for (const [path, type] of [
    ["inspector.js", "text/javascript"],
    ["inspector.css", "text/css"],
    ["statechart.svg", "image/svg+xml"],
  ] as const) {
    const res = await fetch(`${url}${path}`);
    assert.is(res.status, 200, path);
    assert.ok(res.headers.get("content-type")?.startsWith(type), `${path} is ${type}`);
    const body = await res.text();
    assert.not.match(body, /(src|href)=["']https?:/, `${path} loads nothing from elsewhere`);
  }
  const svg = await (await fetch(`${url}statechart.svg`)).text();
  assert.ok(svg.includes('data-machine-id="bridge"') && svg.includes('data-state-path="connection.backoff"'));
  assert.is((await fetch(`${url}nope`)).status, 404);
  assert.is((await fetch(url, { method: "POST", body: "x" })).status, 405);
  assert.is((await fetch(url, { method: "HEAD" })).status, 200);
});

server("the Stately page embeds the hosted inspector and may frame only it", async (ctx) => {
  ctx.inspector = await startInspector({ statelyUrl: "https://inspect.example/live?x=1&y=2" });
  const res = await fetch(ctx.inspector.statelyUrl);
  assert.is(res.status, 200);
  assert.match(res.headers.get("content-security-policy") ?? "", /frame-src https:\/\/inspect\.example(;|$)/);
  const html = await res.text();
  assert.match(
    html,
    /<iframe id="inspector" title="Stately inspector" data-src="https:\/\/inspect\.example\/live\?x=1&amp;y=2" data-origin="https:\/\/inspect\.example">/,
  );
  const js = await (await fetch(`${ctx.inspector.url}stately.js`)).text();
  assert.match(js, /@statelyai\.connected/);
  assert.match(js, /postMessage\(message, origin\)/, "messages go to the inspector's origin only");
});

server("relays inspection messages to every page, with history for late pages", async (ctx) => {
  ctx.inspector = await startInspector({ machine: toggle, historySize: 6 });
  const early = await openViewer(ctx.inspector.url);
  const actor = createActor(toggle, { inspect: ctx.inspector.inspect });
  actor.start();
  for (let i = 0; i < 10; i++) actor.send({ type: "FLIP" });
  await eventually(
    "ten FLIPs relayed",
    () => early.messages.filter((m) => m.event?.type === "FLIP" && m.type === "@xstate.event").length === 10,
  );
  const root = early.messages.find((m) => m.type === "@xstate.actor");
  assert.ok(root, "the actor registration came first");
  assert.is(root!.name, "toggle");
  assert.is(early.messages[0]!.type, "@xstate.actor");

  // A page that connects now gets the registration and the latest snapshot
  // even though they fell out of the 6-message history, then the history.
  const late = await openViewer(ctx.inspector.url);
  await eventually("late page replay", () => late.messages.length >= 7);
  assert.is(late.messages[0]!.type, "@xstate.actor");
  assert.is(late.messages[0]!.sessionId, root!.sessionId);
  const snapshots = late.messages.filter((m) => m.type === "@xstate.snapshot");
  assert.equal(snapshots.at(-1)!.snapshot!.value, actor.getSnapshot().value);
  assert.is(late.messages.length, 6 + 1, "registration + the history (the latest snapshot is in it)");
  actor.stop();
  const stats = ctx.inspector.stats();
  assert.is(stats.viewers, 2);
  assert.is(stats.inspectionErrors, 0);

  await ctx.inspector.close();
  assert.is(await early.closeCode, 1001, "pages are told the inspector is going away");
  assert.is(await late.closeCode, 1001);
  await ctx.inspector.close(); // idempotent
  await fetch(ctx.inspector.url).then(
    () => assert.unreachable("still listening after close()"),
    () => {},
  );
});

server("relays what the machine emits, which the Stately format leaves out", async (ctx) => {
  // The bridge emits with enqueue.emit(); emit() is the same action.
  const machine = setup({ types: { emitted: {} as { type: "projectRemoved"; projectId: string } } }).createMachine({
    id: "emitter",
    on: { GO: { actions: emit({ type: "projectRemoved", projectId: "p9" }) } },
  });
  ctx.inspector = await startInspector({ machine });
  const viewer = await openViewer(ctx.inspector.url);
  const actor = createActor(machine, { inspect: ctx.inspector.inspect });
  actor.start();
  actor.send({ type: "GO" });
  await eventually("emitted message", () => viewer.messages.find((m) => m.type === "@xstate.action"));
  const m = viewer.messages.find((x) => x.type === "@xstate.action") as unknown as {
    action: { type: string; params: { event: unknown } };
    sessionId: string;
  };
  assert.equal(m.action, { type: "xstate.emit", params: { event: { type: "projectRemoved", projectId: "p9" } } });
  const goAt = viewer.messages.findIndex((x) => x.type === "@xstate.event" && x.event?.type === "GO");
  const emitAt = viewer.messages.findIndex((x) => x.type === "@xstate.action");
  assert.ok(goAt >= 0 && goAt < emitAt, "in order: the event, then what it emitted");
  actor.stop();
});

server("a busy port is a BridgeError, and aborting the signal closes the inspector", async (ctx) => {
  const controller = new AbortController();
  ctx.inspector = await startInspector({ signal: controller.signal });
  try {
    await startInspector({ port: ctx.inspector.port });
    assert.unreachable("two inspectors on one port");
  } catch (err) {
    assert.instance(err, BridgeError);
    assert.is((err as BridgeError).code, "unavailable");
  }
  const viewer = await openViewer(ctx.inspector.url);
  controller.abort();
  assert.is(await viewer.closeCode, 1001);
  await eventually("listener closed", () => ctx.inspector.stats().viewers === 0);
});

server.run();
