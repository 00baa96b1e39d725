/**
 * A half-open link: the stream's TCP connection goes silent (the fault
 * proxy's blackhole) while the bridge believes it is streaming. The bridge
 * must find out from the heartbeat deadline, reopen on a fresh HTTP/2
 * session, and recover the removal that was lost in the dead link, within
 * one heartbeat period plus syncTimeoutMs (65 s + 10 s with the defaults).
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { SimulatedClock } from "xstate";
import { createBridge, HandlerRegistry, SessionTracker, startDevServer, type Bridge, type DevServer } from "../../src/index.js";
import { defaultBridgeTiming } from "../../src/timing.js";
import { capturingLogger, eventually, fastTiming, recordingHandler } from "../helpers/e2e.js";
import { startFaultProxy, type FaultProxy } from "../helpers/fault-proxy.js";

interface Ctx {
  server: DevServer;
  proxy: FaultProxy;
  bridges: Bridge[];
}

const blackhole = suite<Ctx>("blackhole (half-open link)");

blackhole.before.each(async (ctx) => {
  // Headers only with the first event, as the engram server (grpc-go) sends them: the bridge confirms its stream by openConfirmMs.
  ctx.server = await startDevServer({ headersOnOpen: false });
  ctx.proxy = await startFaultProxy({ targetPort: ctx.server.port });
  ctx.bridges = [];
});

blackhole.after.each(async (ctx) => {
  await Promise.all(ctx.bridges.map((b) => b.stop()));
  await ctx.proxy.close();
  await ctx.server.close();
});

blackhole("with the default timings, detection takes at most 65 s + 10 s of bridge time and the lost removal arrives", async (ctx) => {
  const clock = new SimulatedClock();
  const tracker = new SessionTracker();
  tracker.connect("bh");
  ctx.server.createProject("bh");
  const registry = new HandlerRegistry();
  const handler = recordingHandler();
  registry.register(handler);
  const logger = capturingLogger();
  // random → 1: the longest heartbeat wait (65 s) and the longest backoff.
  const bridge = createBridge({
    registry,
    tracker,
    serverUrl: ctx.proxy.url,
    env: {},
    logger,
    clock,
    random: () => 0.999_999,
    clientId: "sim",
  });
  ctx.bridges.push(bridge);
  bridge.start();
  await ctx.server.waitForStreams(1);
  clock.increment(defaultBridgeTiming.openConfirmMs); // no headers before the first event (headersOnOpen: false)
  assert.is(bridge.status().state, "streaming");
  await eventually("first sync", () => bridge.status().counters.syncs === 1);

  // The worst case: the link dies right after a heartbeat answered.
  const t0 = clock.now();
  assert.is(ctx.proxy.blackholeOpenLinks(), 1);
  ctx.server.removeProject("bh", "lost in the dead link");
  const step = async (ms: number) => {
    clock.increment(ms);
    await new Promise((r) => setTimeout(r, 20));
  };
  await step(defaultBridgeTiming.heartbeatMs + defaultBridgeTiming.heartbeatJitterMs - 1);
  assert.is(bridge.status().heartbeat, "waiting", "no heartbeat before its longest wait");
  await step(1);
  assert.is(bridge.status().heartbeat, "syncing");
  await step(defaultBridgeTiming.syncTimeoutMs - 1);
  assert.is(bridge.status().state, "streaming", "the sync deadline has not passed yet");
  clock.increment(1);
  await eventually("suspect", () => bridge.status().state === "backoff");
  const detectedMs = clock.now() - t0;
  assert.is(bridge.status().counters.suspects, 1);
  assert.is(detectedMs, 75_000);
  assert.ok(
    logger.at("warn").some((l) => /fresh HTTP\/2 session/.test(l.msg ?? "")),
    "logged as suspect",
  );

  await step(1200); // backoff attempt 1 at its longest: 1 s × 1.2
  // (The server still counts the old stream as open: nothing told it the link died.)
  await eventually("the new stream reached the server", () => ctx.server.stats().streamsOpened === 2);
  assert.is(ctx.proxy.stats().accepted, 2, "a new TCP connection: a fresh HTTP/2 session");
  clock.increment(defaultBridgeTiming.openConfirmMs);
  await eventually("lost removal recovered by the reopen sync", () => handler.ids().includes("bh"));
  const recoveredMs = clock.now() - t0;
  assert.is(handler.calls[0]!.info.source, "heartbeat");
  await eventually("old link released", () => ctx.proxy.stats().deadClosedByClient === 1);
  console.log(
    `# blackhole, default timings (bridge clock): detected after ${detectedMs / 1000} s (bound 65 s + 10 s), stream reopened after ${(detectedMs + 1200) / 1000} s, removal recovered at ${recoveredMs / 1000} s incl. openConfirm`,
  );
});

blackhole("with short real timings the bridge recovers within heartbeat + syncTimeoutMs + backoff", async (ctx) => {
  const timing = {
    ...fastTiming,
    heartbeatMs: 600,
    heartbeatJitterMs: 0,
    syncTimeoutMs: 400,
    openConfirmMs: 100,
    backoffMinMs: 20,
    backoffMaxMs: 100,
  };
  const tracker = new SessionTracker();
  tracker.connect("rt");
  ctx.server.createProject("rt");
  const registry = new HandlerRegistry();
  const handler = recordingHandler();
  registry.register(handler);
  const bridge = createBridge({ registry, tracker, serverUrl: ctx.proxy.url, env: {}, logger: capturingLogger(), timing, clientId: "rt" });
  ctx.bridges.push(bridge);
  bridge.start();
  await ctx.server.waitForStreams(1);
  await eventually("first sync", () => bridge.status().counters.syncs >= 1);
  const figures: number[] = [];
  for (let round = 0; round < 3; round++) {
    const opened = ctx.server.stats().streamsOpened;
    const id = `rt-${round}`;
    tracker.connect(id);
    ctx.server.createProject(id);
    const t0 = performance.now();
    ctx.proxy.blackholeOpenLinks();
    ctx.server.removeProject(id);
    await eventually("stream reopened", () => ctx.server.stats().streamsOpened > opened && ctx.server.stats().openStreams >= 1, 5000);
    const reopenedMs = performance.now() - t0;
    await eventually("removal recovered", () => handler.ids().includes(id), 5000);
    figures.push(reopenedMs);
    // Bound: the longest heartbeat wait + the sync deadline + backoff, with slack for a loaded machine.
    const bound = timing.heartbeatMs + timing.syncTimeoutMs + timing.backoffMaxMs * 1.2;
    assert.ok(reopenedMs >= timing.syncTimeoutMs * 0.9, `reopened after ${reopenedMs} ms: before the deadline could pass?`);
    assert.ok(reopenedMs < bound + 1500, `reopened after ${reopenedMs} ms (bound ${bound} ms)`);
  }
  assert.is(bridge.status().counters.suspects, 3);
  assert.is(ctx.proxy.stats().accepted, 4);
  await eventually("dead links released", () => ctx.proxy.stats().deadClosedByClient === 3);
  console.log(
    `# blackhole, heartbeat 600 ms + deadline 400 ms (real time): reopened after ${figures.map((f) => f.toFixed(0)).join(", ")} ms`,
  );
});

blackhole("a link that stays black keeps the bridge cycling, never stalled, until it heals", async (ctx) => {
  const timing = {
    ...fastTiming,
    heartbeatMs: 5000,
    heartbeatJitterMs: 0,
    syncTimeoutMs: 200,
    openConfirmMs: 100,
    backoffMinMs: 20,
    backoffMaxMs: 100,
  };
  const registry = new HandlerRegistry();
  const handler = recordingHandler();
  registry.register(handler);
  const bridge = createBridge({ registry, serverUrl: ctx.proxy.url, env: {}, logger: capturingLogger(), timing, clientId: "black" });
  ctx.bridges.push(bridge);
  await ctx.proxy.blackhole();
  bridge.start();
  // Every new session is black too: the open-confirm sync times out, the bridge reopens.
  await eventually("several fresh sessions", () => ctx.proxy.stats().accepted >= 3, 5000);
  assert.ok(bridge.status().counters.suspects >= 2);
  await ctx.proxy.pass();
  await ctx.server.waitForStreams(1, 5000);
  ctx.server.createProject("healed");
  ctx.server.removeProject("healed");
  await eventually("removal after healing", () => handler.ids().includes("healed"), 5000);
});

blackhole.run();
