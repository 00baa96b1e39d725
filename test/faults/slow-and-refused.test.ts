/**
 * A slow link (every chunk late) and a refused port, through the fault
 * proxy: a slow link within the sync deadline is not mistaken for a dead one,
 * and a refused port is retried with backoff until it listens again.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createBridge, HandlerRegistry, SessionTracker, startDevServer, type Bridge, type DevServer } from "../../src/index.js";
import { capturingLogger, eventually, fastTiming, recordingHandler } from "../helpers/e2e.js";
import { startFaultProxy, type FaultProxy } from "../helpers/fault-proxy.js";

interface Ctx {
  server: DevServer;
  proxy: FaultProxy;
  bridge: Bridge | undefined;
}

const slow = suite<Ctx>("slow and refused links");

slow.before.each(async (ctx) => {
  ctx.server = await startDevServer();
  ctx.proxy = await startFaultProxy({ targetPort: ctx.server.port });
  ctx.bridge = undefined;
});

slow.after.each(async (ctx) => {
  await ctx.bridge?.stop();
  await ctx.proxy.close();
  await ctx.server.close();
});

slow("a link 120 ms late each way delivers everything and is never taken for dead", async (ctx) => {
  await ctx.proxy.delay(120);
  const tracker = new SessionTracker();
  tracker.connect("hb");
  const registry = new HandlerRegistry();
  const handler = recordingHandler();
  registry.register(handler);
  const timing = { ...fastTiming, heartbeatMs: 300, heartbeatJitterMs: 0, syncTimeoutMs: 1000, openConfirmMs: 100 };
  const logger = capturingLogger();
  ctx.bridge = createBridge({ registry, tracker, serverUrl: ctx.proxy.url, env: {}, logger, timing, clientId: "slow" });
  ctx.bridge.start();
  await ctx.server.waitForStreams(1, 5000);
  await eventually("heartbeat removal over the slow link", () => handler.ids().includes("hb"), 5000);
  await eventually("streaming", () => ctx.bridge!.status().state === "streaming");
  ctx.server.createProject("late");
  const t0 = performance.now();
  ctx.server.removeProject("late");
  await eventually("stream removal", () => handler.ids().includes("late"), 5000);
  const latencyMs = handler.calls.find((c) => c.projectId === "late")!.atMs - t0;
  await eventually("several heartbeats", () => ctx.bridge!.status().counters.syncs >= 4, 5000);
  const c = ctx.bridge.status().counters;
  assert.equal(
    logger.at("warn").map((l) => l.text),
    [],
    "nothing went wrong on the slow link",
  );
  assert.ok(latencyMs >= 110, `latency ${latencyMs} ms through a 120 ms delay`);
  assert.is(c.suspects, 0);
  assert.is(c.syncFailures, 0);
  assert.is(c.streamFailures, 0);
  console.log(`# slow link (120 ms each way): stream removal after ${latencyMs.toFixed(0)} ms, ${c.syncs} heartbeats, 0 suspects`);
});

slow("a refused port is retried with backoff and the bridge connects once it listens", async (ctx) => {
  await ctx.proxy.refuse();
  const registry = new HandlerRegistry();
  const handler = recordingHandler();
  registry.register(handler);
  const logger = capturingLogger();
  ctx.bridge = createBridge({
    registry,
    serverUrl: ctx.proxy.url,
    env: {},
    logger,
    timing: { ...fastTiming, backoffMinMs: 20, backoffMaxMs: 100 },
    clientId: "refused",
  });
  ctx.bridge.start();
  await eventually("failures", () => ctx.bridge!.status().counters.streamFailures >= 4, 5000);
  assert.is(ctx.bridge.status().lastError?.code, "unavailable");
  assert.ok(
    logger.at("warn").some((l) => /ECONNREFUSED/.test(l.text)),
    "the cause is in the log",
  );
  const t0 = performance.now();
  await ctx.proxy.pass();
  await ctx.server.waitForStreams(1, 5000);
  const ms = performance.now() - t0;
  assert.ok(ms < 120 * 1.2 + 1000, `connected ${ms} ms after the port opened`);
  ctx.server.removeProject("after-refusal");
  await eventually("removal", () => handler.ids().includes("after-refusal"));
  console.log(`# refused port: connected ${ms.toFixed(0)} ms after it listened again (backoff cap 100 ms)`);
});

slow.run();
