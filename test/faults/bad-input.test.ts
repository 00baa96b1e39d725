/**
 * Odd but well-formed data from an independent (grpc-js) server: `removed`
 * lists with empty strings, duplicates and 10,000 entries (100,000 in
 * the soak), unknown enum
 * values, a metadata map of 10,000 entries. No crash, no stall, each removal
 * once, the oddities counted and logged.
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createBridge, HandlerRegistry, SessionTracker, type Bridge } from "../../src/index.js";
import { capturingLogger, eventually, fastTiming } from "../helpers/e2e.js";
import { startGrpcJsServer, type GrpcJsServer } from "../helpers/grpc-js-server.js";

interface Ctx {
  server: GrpcJsServer;
  bridge: Bridge | undefined;
}

const input = suite<Ctx>("bad input");

input.before.each(async (ctx) => {
  ctx.server = await startGrpcJsServer();
  ctx.bridge = undefined;
});

input.after.each(async (ctx) => {
  await ctx.bridge?.stop();
  await ctx.server.close();
});

function counting() {
  const seen = new Map<string, number>();
  const registry = new HandlerRegistry();
  registry.register({ name: "counter", onProjectRemoved: (id) => void seen.set(id, (seen.get(id) ?? 0) + 1) });
  return { seen, registry };
}

input("removed lists with empty strings and duplicates: each real id once, the rest counted", async (ctx) => {
  ctx.server.setSyncResponder(() => ({ removed: ["", "a", "a", "", "b", "a", "b", "c", ""], unknown: ["", "u"], serverTimeUnixMs: String(Date.now()) }));
  const tracker = new SessionTracker();
  tracker.connect("a");
  const { seen, registry } = counting();
  const logger = capturingLogger();
  ctx.bridge = createBridge({ registry, tracker, serverUrl: ctx.server.url, env: {}, logger, timing: fastTiming, clientId: "odd" });
  ctx.bridge.start();
  await eventually("sync", () => ctx.bridge!.status().counters.syncs >= 1);
  await eventually("dispatched", () => seen.size === 3);
  assert.equal([...seen], [["a", 1], ["b", 1], ["c", 1]]);
  const c = ctx.bridge.status().counters;
  assert.is(c.ignoredEvents, 3, "empty ids");
  assert.is(c.duplicatesSuppressed, 3);
  assert.ok(logger.at("warn").some((l) => /unknown/.test(l.msg ?? "")), "unknown ids are logged");
});

input("a removed list of 10,000 entries is delivered once each without blocking the event loop for long", async (ctx) => {
  // 10,000: one server chunk. 100,000 run in the soak
  // (test/soak/bulk-removals.soak.ts): they block the loop for seconds, see
  // the README's reliability section.
  const ids = Array.from({ length: 10_000 }, (_, i) => `bulk-${i}`);
  let answered = 0;
  ctx.server.setSyncResponder(() => (answered++ === 0 ? { removed: ids, unknown: [], serverTimeUnixMs: String(Date.now()) } : { removed: [], unknown: [] }));
  const tracker = new SessionTracker();
  tracker.connect("whatever");
  const { seen, registry } = counting();
  ctx.bridge = createBridge({ registry, tracker, serverUrl: ctx.server.url, env: {}, logger: capturingLogger(), timing: fastTiming, clientId: "bulk" });
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const t0 = performance.now();
  ctx.bridge.start();
  try {
    await eventually("10,000 removals dispatched", () => seen.size === ids.length, 30_000);
  } finally {
    // Let the monitor's own timer run once more: it records a block only when it fires after it.
    await new Promise((r) => setTimeout(r, 50));
    loop.disable();
  }
  const ms = performance.now() - t0 - 50;
  const blockMs = loop.max / 1e6;
  assert.ok([...seen.values()].every((n) => n === 1));
  assert.is(ctx.bridge.status().counters.removalsFromHeartbeat, ids.length);
  assert.ok(blockMs < 1000, `the event loop was blocked for ${blockMs} ms`);
  // Still alive: a stream removal behind it is delivered.
  await ctx.server.waitForStreams(1);
  await eventually("streaming", () => ctx.bridge!.status().state === "streaming");
  ctx.server.removeProject("after-bulk");
  await eventually("removal after the bulk", () => seen.has("after-bulk"));
  console.log(`# 10,000 heartbeat removals: all dispatched in ${ms.toFixed(0)} ms; longest event-loop block ${blockMs.toFixed(0)} ms`);
});

input("unknown enum values are ignored and logged at debug; a real removal after them arrives", async (ctx) => {
  const { seen, registry } = counting();
  const logger = capturingLogger();
  ctx.bridge = createBridge({ registry, serverUrl: ctx.server.url, env: {}, logger, timing: fastTiming, clientId: "enum" });
  ctx.bridge.start();
  await ctx.server.waitForStreams(1);
  for (const eventType of [42, 2_147_483_647, -1, 0, 2, 3]) ctx.server.emitEvent({ eventType, projectId: `t${eventType}` });
  ctx.server.removeProject("real");
  await eventually("real removal", () => seen.has("real"));
  assert.equal([...seen.keys()], ["real"]);
  assert.is(ctx.bridge.status().counters.ignoredEvents, 6);
  const ignored = logger.at("debug").filter((l) => l.msg === "project event ignored");
  assert.equal(ignored.map((l) => (l.obj as { eventType: number }).eventType), [42, 2_147_483_647, -1, 0, 2, 3]);
  assert.is(ctx.bridge.status().state, "streaming");
});

input("a metadata map of 10,000 entries is taken in stride", async (ctx) => {
  const { seen, registry } = counting();
  ctx.bridge = createBridge({ registry, serverUrl: ctx.server.url, env: {}, logger: capturingLogger(), timing: fastTiming, clientId: "meta" });
  ctx.bridge.start();
  await ctx.server.waitForStreams(1);
  const metadata: Record<string, string> = {};
  for (let i = 0; i < 10_000; i++) metadata[`key-${i}`] = `value-${i}`;
  const t0 = performance.now();
  ctx.server.emitEvent({ eventType: 1, projectId: "meta", reason: "with a big map", metadata });
  await eventually("removal with the big map", () => seen.has("meta"));
  console.log(`# event with 10,000 metadata entries delivered in ${(performance.now() - t0).toFixed(1)} ms`);
  assert.is(ctx.bridge.status().counters.streamFailures, 0);
});

input.run();
