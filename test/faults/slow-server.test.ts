/**
 * Issue 21 item 4 on real sockets: a server whose handlers are slow (each
 * SyncProjectState answers past the bridge's deadline) but whose transport
 * answers is a slow server, not a dead link. The bridge asks with one HTTP/2
 * PING, keeps the healthy stream and slows its heartbeat down; removals
 * still arrive by stream. Short real timings on loopback.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createBridge, HandlerRegistry, SessionTracker, startDevServer, type Bridge, type DevServer } from "../../src/index.js";
import { capturingLogger, eventually, recordingHandler } from "../../src/testing/index.js";
import { type FaultProxy, type FaultProxyOptions, startFaultProxy } from "../helpers/fault-proxy.js";

interface Ctx {
  server: DevServer;
  bridge: Bridge | undefined;
}
const slow = suite<Ctx>("a slow server is not a dead link (issue 21)");
slow.before.each(async (ctx) => {
  ctx.server = await startDevServer({ port: 0 });
  ctx.bridge = undefined;
});
slow.after.each(async (ctx) => {
  await ctx.bridge?.stop();
  await ctx.server.close();
});

/**
 * A tracking bridge through `proxy` meets a slow server (one PING answered);
 * optionally the late round is answered; then the server is fast again, the
 * link dies, and the bridge finds it suspect.
 */
async function slowThenDead(ctx: Ctx, proxy: FaultProxy, o: { lateAnswerFirst: boolean }): Promise<Bridge> {
  const bridge = await startTrackingBridge(ctx, proxy.url);
  ctx.server.setSyncDelayMs(400);
  await eventually("a slow server seen (one PING answered)", () => bridge.status().counters.slowServer >= 1, 5000);
  if (o.lateAnswerFirst) await eventually("the late round answered", () => bridge.status().counters.syncs >= 2, 5000);
  ctx.server.setSyncDelayMs(0);
  assert.is(proxy.blackholeOpenLinks(), 1);
  await eventually("the dead link is suspect", () => bridge.status().counters.suspects >= 1, 8000);
  return bridge;
}

/** Runs `body` with a fault proxy in front of the server; stops the bridge and closes the proxy whatever happens. */
async function withProxy(ctx: Ctx, options: FaultProxyOptions, body: (proxy: FaultProxy) => Promise<void>): Promise<void> {
  const proxy = await startFaultProxy(options);
  try {
    await body(proxy);
  } finally {
    await ctx.bridge?.stop();
    ctx.bridge = undefined;
    await proxy.close();
  }
}

/**
 * A bridge tracking project "a" (created on the server) through `serverUrl`,
 * with short real timings (heartbeat 300 ms, deadline 200 ms, so a late call
 * runs on up to 600 ms), streaming with one sync done.
 */
async function startTrackingBridge(ctx: Ctx, serverUrl: string): Promise<Bridge> {
  ctx.server.createProject("a");
  const tracker = new SessionTracker();
  tracker.connect("a");
  const bridge = createBridge({
    registry: new HandlerRegistry(),
    tracker,
    serverUrl,
    logger: capturingLogger(),
    env: {},
    timing: { heartbeatMs: 300, heartbeatJitterMs: 0, syncTimeoutMs: 200, openConfirmMs: 50, backoffMinMs: 50, backoffMaxMs: 100 },
  });
  ctx.bridge = bridge;
  bridge.start();
  await eventually("streaming with a sync", () => bridge.status().state === "streaming" && bridge.status().counters.syncs >= 1, 5000);
  return bridge;
}

slow("heartbeats answered past their deadline keep the stream up: one PING answered, no suspect, the heartbeat slows down", async (ctx) => {
  const { server } = ctx;
  server.createProject("a");
  server.createProject("b");
  const tracker = new SessionTracker();
  tracker.connect("a");
  const handler = recordingHandler();
  const registry = new HandlerRegistry();
  registry.register(handler);
  const bridge = createBridge({
    registry,
    tracker,
    serverUrl: server.url,
    logger: capturingLogger(),
    env: {},
    // A late round may run on for two heartbeat periods (600 ms) from its start.
    timing: { heartbeatMs: 300, heartbeatJitterMs: 0, syncTimeoutMs: 150, openConfirmMs: 50 },
  });
  ctx.bridge = bridge;
  bridge.start();
  await eventually(
    "streaming with a completed sync",
    () => bridge.status().state === "streaming" && bridge.status().counters.syncs >= 1,
    5000,
  );
  // The server's handlers slow down: every sync answers after 350 ms, past the 150 ms deadline (and runs on).
  server.setSyncDelayMs(350);
  await eventually("a heartbeat missed its deadline and the link answered the probe", () => bridge.status().counters.slowServer >= 1, 5000);
  const s = bridge.status();
  assert.is(s.counters.suspects, 0, "no healthy stream torn down");
  assert.is(s.counters.streamsOpened, 1, "the stream stayed up");
  assert.is(s.state, "streaming");
  assert.is(bridge.actor.getSnapshot().context.heartbeatSlowdown >= 2, true, "the heartbeat slowed down");
  // The stream still delivers.
  server.removeProject("b");
  await eventually("removal by stream", () => handler.ids().includes("b"), 5000);
  // Back to speed: rounds answered in time bring the heartbeat back to its period.
  server.setSyncDelayMs(0);
  await eventually("the heartbeat is back to its period", () => bridge.actor.getSnapshot().context.heartbeatSlowdown === 1, 8000);
  assert.is(bridge.status().counters.suspects, 0);
});

slow(
  "a link that dies after a PING answered is not taken for a slow server: within the PING interval, no sign of life since means suspect (second review)",
  async (ctx) => {
    const { server } = ctx;
    await withProxy(ctx, { targetPort: server.port, http2Tap: true }, async (proxy) => {
      // The link dies before the late answer: no PING may be sent for five minutes, so the last answer must not stand.
      const bridge = await slowThenDead(ctx, proxy, { lateAnswerFirst: false });
      assert.is(proxy.stats().http2.clientPings, 1, "one PING on that connection, no more");
    });
  },
);

slow(
  "a link that dies after a slow round was answered is not taken for a slow server: the old PING answer is never reused (third review)",
  async (ctx) => {
    const { server } = ctx;
    await withProxy(ctx, { targetPort: server.port, http2Tap: true }, async (proxy) => {
      // The late answer comes (a sign of life after the PING), then the server is fast again and the link dies.
      const bridge = await slowThenDead(ctx, proxy, { lateAnswerFirst: true });
      const { counters } = bridge.status();
      assert.is(counters.slowServer, 1, "the round on the dead link was not taken for a slow server");
      assert.equal(proxy.stats().http2.goaways, [], "no GOAWAY too_many_pings");
    });
  },
);

slow(
  "a heartbeat period or deadline at the top of its range still makes calls: the transport deadline fits the grpc-timeout header (third review)",
  async (ctx) => {
    const { server } = ctx;
    server.createProject("a");
    const tracker = new SessionTracker();
    tracker.connect("a");
    for (const timing of [{ heartbeatMs: 2 ** 30 }, { heartbeatMs: 2 ** 31 - 1 }, { syncTimeoutMs: 2 ** 31 - 1 }]) {
      const bridge = createBridge({
        registry: new HandlerRegistry(),
        tracker,
        serverUrl: server.url,
        logger: capturingLogger(),
        env: {},
        timing,
      });
      ctx.bridge = bridge;
      bridge.start();
      await eventually("the first round ended", () => bridge.status().counters.syncs + bridge.status().counters.syncFailures >= 1, 5000);
      assert.is(bridge.status().counters.syncs, 1, `${JSON.stringify(timing)}: the round is answered`);
      assert.is(bridge.status().counters.syncFailures, 0);
      await bridge.stop();
      ctx.bridge = undefined;
    }
  },
);

slow(
  "a slow server that grants one concurrent stream per session is still a slow server: the probe asks the heartbeat's own session (fourth review)",
  async (ctx) => {
    await ctx.server.close();
    ctx.server = await startDevServer({ port: 0, maxConcurrentStreams: 1 });
    const { server } = ctx;
    const bridge = await startTrackingBridge(ctx, server.url);
    server.setSyncDelayMs(400); // every round is late, and answered within its run-on
    await eventually("three late rounds answered", () => bridge.status().counters.syncs >= 4, 10_000);
    const { counters } = bridge.status();
    assert.ok(counters.slowServer >= 3, `slowServer ${counters.slowServer}`);
    assert.is(counters.suspects, 0, "the healthy stream is kept");
    assert.is(counters.syncFailures, 0);
    assert.is(counters.streamsOpened, 1);
  },
);

slow(
  "a GOAWAY during a late heartbeat call is not taken for a dead link: the call runs on to its answer on the draining session (fifth review)",
  async (ctx) => {
    const { server } = ctx;
    await withProxy(ctx, { targetPort: server.port, http2Tap: true }, async (proxy) => {
      const bridge = await startTrackingBridge(ctx, proxy.url);
      server.setSyncDelayMs(450); // late at 200 ms, answered within the 600 ms run-on
      const syncsBefore = bridge.status().counters.syncs;
      const callsBefore = server.stats().syncCalls;
      let armed = true;
      server.onSyncCall(() => {
        if (!armed) return;
        armed = false;
        // The server shuts down gracefully while the call is in flight, before its deadline.
        setTimeout(() => proxy.goawayClients(), 100);
      });
      await eventually("the late call answered", () => bridge.status().counters.syncs > syncsBefore, 5000);
      const { counters } = bridge.status();
      assert.is(counters.suspects, 0, "a graceful shutdown is not a dead link");
      assert.is(counters.syncFailures, 0, "the late call was not abandoned");
      assert.ok(counters.goaways >= 1);
      assert.ok(server.stats().syncCalls - callsBefore <= 2, "no call sent again");
    });
  },
);

slow(
  "with one stream per session, a dead stream link beside a live heartbeat session is found when a late round asks both (fifth review)",
  async (ctx) => {
    await ctx.server.close();
    ctx.server = await startDevServer({ port: 0, maxConcurrentStreams: 1 });
    const { server } = ctx;
    await withProxy(ctx, { targetPort: server.port }, async (proxy) => {
      const bridge = await startTrackingBridge(ctx, proxy.url);
      await eventually("a second round on the heartbeat's own session", () => bridge.status().counters.syncs >= 2, 5000);
      server.setSyncDelayMs(400); // slow: every round is late, and its probe asks
      assert.ok(proxy.blackholeOpenLink(0), "the stream's link (the first opened) dies; the heartbeat's stays up");
      await eventually("the dead stream link is suspect", () => bridge.status().counters.suspects >= 1, 5000);
      await eventually("a fresh stream", () => bridge.status().counters.streamsOpened >= 2 && bridge.status().state === "streaming", 5000);
    });
  },
);

slow.run();
