/**
 * stop() under pressure: in every connection state, during a sync, during a
 * hung handler, twice at once, before start(), and at the very moment a
 * failure is reported. It always resolves within stopTimeoutMs, closes the
 * session it owns (the fault proxy sees the link go), and says what it left
 * undone.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { createBridge, HandlerRegistry, SessionTracker, startDevServer, type Bridge, type DevServer } from "../../src/index.js";
import type { BridgeTiming } from "../../src/timing.js";
import { capturingLogger, eventually, fastTiming, recordingHandler, createBridgeFixture, type BridgeFixture } from "../helpers/e2e.js";
import { startFaultProxy, type FaultProxy } from "../helpers/fault-proxy.js";

const STOP_TIMEOUT_MS = 500;
/** Slack for a loaded machine on top of the budget. */
const SLACK_MS = 300;
const timing: Partial<BridgeTiming> = { ...fastTiming, stopTimeoutMs: STOP_TIMEOUT_MS };

interface Ctx {
  server: DevServer;
  proxy: FaultProxy;
  bridges: BridgeFixture;
  make: BridgeFixture["make"];
}

const stop = suite<Ctx>("stop under pressure");

stop.before.each(async (ctx) => {
  ctx.server = await startDevServer();
  ctx.proxy = await startFaultProxy({ targetPort: ctx.server.port });
  ctx.bridges = createBridgeFixture(() => ({ serverUrl: ctx.proxy.url, timing, clientId: "stop" }));
  ctx.make = ctx.bridges.make;
});

stop.after.each(async (ctx) => {
  await ctx.bridges.stopAll();
  await ctx.proxy.close();
  await ctx.server.close();
});

/** Stops, checks the budget and that the owned session is gone; returns the time taken. */
async function stopWithinBudget(ctx: Ctx, bridge: Bridge): Promise<number> {
  const t0 = performance.now();
  await bridge.stop();
  const ms = performance.now() - t0;
  assert.ok(ms <= STOP_TIMEOUT_MS + SLACK_MS, `stop took ${ms} ms`);
  assert.is(bridge.status().state, "stopped");
  await eventually("the owned session is closed", () => ctx.proxy.stats().open === 0, 2000);
  return ms;
}

stop("before start(): resolves at once, opens nothing, and start() afterwards stays stopped", async (ctx) => {
  const { bridge, logger } = ctx.make();
  await stopWithinBudget(ctx, bridge);
  bridge.start();
  await new Promise((r) => setTimeout(r, 50));
  assert.is(ctx.proxy.stats().accepted, 0);
  assert.is(bridge.status().state, "stopped");
  assert.ok(logger.at("warn").some((l) => /does not restart/.test(l.msg ?? "")));
});

stop("idle without a URL", async (ctx) => {
  const { bridge } = ctx.make({ serverUrl: undefined as unknown as string, env: {} });
  bridge.start();
  assert.is(bridge.status().state, "idle");
  await stopWithinBudget(ctx, bridge);
});

stop("while connecting (a black link that never answers)", async (ctx) => {
  await ctx.proxy.blackhole();
  const { bridge } = ctx.make({ timing: { ...timing, openConfirmMs: 60_000 } });
  bridge.start();
  await ctx.proxy.waitForAccepted(1);
  assert.is(bridge.status().state, "connecting");
  await stopWithinBudget(ctx, bridge);
  assert.is(ctx.proxy.stats().deadClosedByClient, 1, "the bridge closed the dead link itself");
});

stop("while streaming", async (ctx) => {
  const { bridge } = ctx.make();
  bridge.start();
  await ctx.server.waitForStreams(1);
  await eventually("streaming", () => bridge.status().state === "streaming");
  const ms = await stopWithinBudget(ctx, bridge);
  await ctx.server.waitForStreamsClosed(0);
  console.log(`# stop() while streaming: ${ms.toFixed(1)} ms`);
});

stop("while backing off", async (ctx) => {
  await ctx.proxy.refuse();
  const { bridge } = ctx.make({ timing: { ...timing, backoffMinMs: 30_000, backoffMaxMs: 60_000 } });
  bridge.start();
  await eventually("backoff", () => bridge.status().state === "backoff");
  await stopWithinBudget(ctx, bridge);
});

stop("during a sync that the server holds", async (ctx) => {
  ctx.server.setSyncDelayMs(60_000);
  const tracker = new SessionTracker();
  tracker.connect("p");
  const { bridge } = ctx.make({ tracker, timing: { ...timing, syncTimeoutMs: 60_000 } });
  bridge.start();
  await ctx.server.waitForSyncCalls(1);
  assert.is(bridge.status().heartbeat, "syncing");
  await stopWithinBudget(ctx, bridge);
  assert.is(bridge.status().counters.syncs, 0);
});

stop("during a hung handler: gives up at the budget and names what was left", async (ctx) => {
  const registry = new HandlerRegistry();
  const started: string[] = [];
  registry.register({
    name: "hung",
    onProjectRemoved: (id) => {
      started.push(id);
      return new Promise<void>(() => {});
    },
  });
  const { bridge, logger } = ctx.make({ registry, timing: { ...timing, handlerTimeoutMs: 60_000 } });
  bridge.start();
  await ctx.server.waitForStreams(1);
  for (const id of ["first", "second", "third"]) ctx.server.removeProject(id);
  await eventually(
    "the first removal is in the hung handler",
    () => started.length === 1 && bridge.status().counters.pendingDispatch === 3,
  );
  const ms = await stopWithinBudget(ctx, bridge);
  assert.ok(ms >= STOP_TIMEOUT_MS * 0.8, `stop waited ${ms} ms for the handler`);
  const line = logger.at("warn").find((l) => /stop\(\) ran out of budget/.test(l.msg ?? ""));
  assert.ok(line, "stop says what it left undone");
  assert.equal((line!.obj as { inHandler?: string }).inHandler, "first");
  assert.equal((line!.obj as { projectIds?: string[] }).projectIds, ["second", "third"]);
  assert.match(line!.msg ?? "", /handler was still running for first/);
  assert.is(bridge.status().counters.droppedOnStop, 2);
  console.log(`# stop() with a hung handler: ${ms.toFixed(0)} ms (budget ${STOP_TIMEOUT_MS} ms); ${line!.msg}`);
});

stop("a slow handler that finishes within the budget is awaited, and nothing is reported lost", async (ctx) => {
  const registry = new HandlerRegistry();
  const handler = recordingHandler();
  registry.register({ name: "slow", onProjectRemoved: () => new Promise<void>((r) => setTimeout(r, 150)) });
  registry.register(handler);
  const { bridge, logger } = ctx.make({ registry });
  bridge.start();
  await ctx.server.waitForStreams(1);
  ctx.server.removeProject("slow-one");
  await eventually("dispatch started", () => bridge.status().counters.dispatched === 1);
  await stopWithinBudget(ctx, bridge);
  assert.equal(handler.ids(), ["slow-one"]);
  assert.not.ok(logger.at("warn").some((l) => /ran out of budget/.test(l.msg ?? "")));
});

stop("twice at once, and again after: one stop, every promise resolves", async (ctx) => {
  const { bridge, logger } = ctx.make();
  bridge.start();
  await ctx.server.waitForStreams(1);
  const a = bridge.stop();
  const b = bridge.stop();
  assert.is(a, b, "the same promise");
  const t0 = performance.now();
  await Promise.all([a, b, bridge[Symbol.asyncDispose]()]);
  assert.ok(performance.now() - t0 <= STOP_TIMEOUT_MS + SLACK_MS);
  await stopWithinBudget(ctx, bridge);
  assert.is(logger.lines.filter((l) => l.msg === "bridge stopped").length, 1);
});

stop("stop() from inside the log line of a failure does not crash the process (HTTP/1.1 peer)", async (ctx) => {
  const h1 = http.createServer((_req, res) => res.end("not grpc"));
  await new Promise<void>((r) => h1.listen(0, "127.0.0.1", () => r()));
  try {
    const url = `http://127.0.0.1:${(h1.address() as AddressInfo).port}`;
    for (let i = 0; i < 20; i++) {
      const logger = capturingLogger();
      let bridge: Bridge | undefined;
      let stopping: Promise<void> | undefined;
      bridge = createBridge({
        registry: new HandlerRegistry(),
        serverUrl: url,
        env: {},
        timing,
        logger: {
          ...logger,
          warn(obj, msg) {
            logger.warn(obj, msg);
            // The connect-node session is destroyed but has not emitted its error yet.
            if (/ProjectEvents failed/.test(msg ?? "")) stopping ??= bridge!.stop();
          },
        },
      });
      ctx.bridges.adopt(bridge);
      bridge.start();
      await eventually("a failure and the stop it triggered", () => stopping !== undefined, 3000);
      await stopping;
    }
    await new Promise((r) => setTimeout(r, 100));
  } finally {
    h1.closeAllConnections();
    await new Promise<void>((r) => h1.close(() => r()));
  }
});

stop.run();
