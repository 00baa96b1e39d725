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
  ctx.server.setSyncResponder(() => ({
    removed: ["", "a", "a", "", "b", "a", "b", "c", ""],
    unknown: ["", "u"],
    serverTimeUnixMs: String(Date.now()),
  }));
  const tracker = new SessionTracker();
  for (const id of ["a", "b", "c"]) tracker.connect(id);
  const { seen, registry } = counting();
  const logger = capturingLogger();
  ctx.bridge = createBridge({ registry, tracker, serverUrl: ctx.server.url, env: {}, logger, timing: fastTiming, clientId: "odd" });
  ctx.bridge.start();
  await eventually("sync", () => ctx.bridge!.status().counters.syncs >= 1);
  await eventually("dispatched", () => seen.size === 3);
  assert.equal(
    [...seen],
    [
      ["a", 1],
      ["b", 1],
      ["c", 1],
    ],
  );
  const c = ctx.bridge.status().counters;
  assert.is(c.ignoredEvents, 3, "empty ids");
  assert.is(c.duplicatesSuppressed, 3);
  assert.ok(
    logger.at("info").some((l) => /unknown/.test(l.msg ?? "")),
    "unknown ids are logged",
  );
});

input("a removed list of 10,000 entries is delivered once each without blocking the event loop for long", async (ctx) => {
  // 10,000: one server chunk. 100,000 run in the soak
  // (test/soak/bulk-removals.soak.ts): they block the loop for seconds, see
  // the README's reliability section.
  const ids = Array.from({ length: 10_000 }, (_, i) => `bulk-${i}`);
  let answered = 0;
  ctx.server.setSyncResponder(() =>
    answered++ === 0 ? { removed: ids, unknown: [], serverTimeUnixMs: String(Date.now()) } : { removed: [], unknown: [] },
  );
  const tracker = new SessionTracker();
  // The server answers only for ids it was told (others are dropped: issue 11 item 2).
  for (const id of ids) tracker.connect(id);
  const { seen, registry } = counting();
  ctx.bridge = createBridge({
    registry,
    tracker,
    serverUrl: ctx.server.url,
    env: {},
    logger: capturingLogger(),
    timing: fastTiming,
    clientId: "bulk",
  });
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const t0 = performance.now();
  ctx.bridge.start();
  let ms = Number.NaN;
  try {
    await eventually("10,000 removals dispatched", () => seen.size === ids.length, 30_000);
    ms = performance.now() - t0;
  } finally {
    // The monitor records a block only when its own timer fires after it: wait for one more sample.
    const samples = loop.count;
    await eventually("one more event-loop delay sample", () => loop.count > samples, 1000).finally(() => loop.disable());
  }
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
  assert.equal(
    ignored.map((l) => (l.obj as { eventType: number }).eventType),
    [42, 2_147_483_647, -1, 0, 2, 3],
  );
  assert.is(ctx.bridge.status().state, "streaming");
});

input("a metadata map of 10,000 entries is taken in stride", async (ctx) => {
  const { seen, registry } = counting();
  ctx.bridge = createBridge({
    registry,
    serverUrl: ctx.server.url,
    env: {},
    logger: capturingLogger(),
    timing: fastTiming,
    clientId: "meta",
  });
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

input("removed ids the bridge never reported are dropped, counted and logged without being handed on (issue 11 item 2)", async (ctx) => {
  ctx.server.setSyncResponder(() => ({ removed: ["mine", "someone-elses", "-rf"], unknown: [], serverTimeUnixMs: String(Date.now()) }));
  const tracker = new SessionTracker();
  tracker.connect("mine");
  const { seen, registry } = counting();
  const logger = capturingLogger();
  ctx.bridge = createBridge({ registry, tracker, serverUrl: ctx.server.url, env: {}, logger, timing: fastTiming, clientId: "unreported" });
  ctx.bridge.start();
  await eventually("sync", () => ctx.bridge!.status().counters.syncs >= 1);
  await eventually("dispatched", () => seen.size === 1);
  assert.equal([...seen.keys()], ["mine"]);
  assert.is(ctx.bridge.status().counters.unreportedRemovals, 2);
  const line = logger.at("warn").find((l) => /never reported/.test(l.msg ?? ""));
  assert.ok(line, "logged at warn");
  assert.equal((line!.obj as { preview: string[] }).preview, ["someone-elses", "-rf"]);
});

input(
  "hostile ids, reasons and event ids are bounded where they enter: refused ids never reach a handler, the dedup window or a log whole (issue 11 item 1)",
  async (ctx) => {
    const { seen, registry } = counting();
    const calls: Array<{ id: string; reason?: string; eventId?: string }> = [];
    registry.register({
      name: "info",
      onProjectRemoved: (id, info) =>
        void calls.push({ id, ...(info.reason ? { reason: info.reason } : {}), ...(info.eventId ? { eventId: info.eventId } : {}) }),
    });
    const logger = capturingLogger();
    ctx.bridge = createBridge({ registry, serverUrl: ctx.server.url, env: {}, logger, timing: fastTiming, clientId: "hostile" });
    ctx.bridge.start();
    await ctx.server.waitForStreams(1);
    const huge = "x".repeat(1024 * 1024);
    ctx.server.emitEvent({ eventType: 1, projectId: huge });
    ctx.server.emitEvent({ eventType: 1, projectId: "--upload-pack=touch pwned;false\n" });
    ctx.server.emitEvent({ eventType: 1, projectId: "ok", reason: "r".repeat(200_000), eventId: "9".repeat(5000) });
    await eventually("the good one", () => seen.has("ok"));
    assert.equal([...seen.keys()], ["ok"]);
    assert.ok(calls[0]!.reason!.length <= 1024, "reason cut to 1 KiB");
    assert.ok(calls[0]!.eventId!.length <= 128, "event id cut");
    const s = ctx.bridge.status();
    assert.is(s.counters.refusedIds, 2);
    const ctxJson = JSON.stringify(ctx.bridge.actor.getSnapshot().context);
    assert.ok(ctxJson.length < 20_000, `machine context stays small (${ctxJson.length})`);
    const logged = logger.lines.map((l) => l.text).join("\n");
    assert.not.ok(logged.includes(huge.slice(0, 200)), "the huge id is not logged whole");
    assert.not.ok(logged.includes("pwned;false\n"), "control characters are escaped in logs");
    assert.ok(logger.at("warn").some((l) => /refused 1 project id/.test(l.msg ?? "")));
  },
);

input.run();
