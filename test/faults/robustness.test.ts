/**
 * Issue 19's seven reproduced defects, one test each (each fails with the
 * fix reverted): a token function that never settles, a project removed,
 * re-created and removed again, heartbeats re-queueing removals still
 * waiting, an unbounded dispatch queue, free GOAWAY churn, an inspect
 * observer that throws, and a server that grants one concurrent stream.
 * The in-memory server (src/testing) runs everything on the simulated clock;
 * the token and concurrency cases need the real gRPC client and the dev
 * server on loopback.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createBridge, type Bridge, HandlerRegistry, type ProjectRemovalAware, SessionTracker, startDevServer } from "../../src/index.js";
import {
  advance,
  capturingLogger,
  createMemoryServer,
  eventually,
  recordingHandler,
  runUntil,
  SimulatedClock,
} from "../../src/testing/index.js";

interface Ctx {
  closers: Array<() => Promise<unknown> | unknown>;
}
const robust = suite<Ctx>("issue 19: robustness");
robust.before.each((ctx) => {
  ctx.closers = [];
});
robust.after.each(async (ctx) => {
  for (const close of ctx.closers.reverse()) await close();
});

function stopLater(ctx: Ctx, bridge: Bridge, clock?: SimulatedClock): void {
  ctx.closers.push(async () => {
    const stopped = bridge.stop();
    if (clock) await advance(clock, 10_000);
    await stopped;
  });
}

robust(
  "item 1: a token function that never settles: the stream is never called streaming, and the call fails after the token timeout",
  async (ctx) => {
    const server = await startDevServer({ port: 0, token: "tok" });
    ctx.closers.push(() => server.close());
    // Real time, short timings: the token read is bounded by syncTimeoutMs.
    const bridge = createBridge({
      registry: new HandlerRegistry(),
      serverUrl: server.url,
      token: () => new Promise<string>(() => {}),
      logger: capturingLogger(),
      env: {},
      timing: { openConfirmMs: 50, syncTimeoutMs: 400, backoffMinMs: 60_000, backoffMaxMs: 60_000 },
    });
    ctx.closers.push(() => bridge.stop());
    bridge.start();
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.is(bridge.status().state, "connecting", "openConfirm never promotes a call whose request was not sent");
    assert.is(server.stats().streamsOpened ?? 0, 0, "no stream on the server");
    await eventually("the call failed after the token timeout", () => bridge.status().state === "backoff", 5000);
    const status = bridge.status();
    assert.is(status.lastError?.code, "unauthenticated");
    assert.match(status.lastError?.message ?? "", /did not settle/);
  },
);

robust(
  "item 1: a heartbeat whose transport never settles and ignores the abort still ends at its deadline, and the next round runs",
  async (ctx) => {
    const clock = new SimulatedClock();
    const server = createMemoryServer({ clock, projects: ["a"] });
    const tracker = new SessionTracker();
    tracker.connect("a");
    const bridge = createBridge({
      registry: new HandlerRegistry(),
      tracker,
      client: server.client(),
      clock,
      logger: capturingLogger(),
      env: {},
    });
    stopLater(ctx, bridge, clock);
    bridge.start();
    await runUntil(clock, () => bridge.status().counters.syncs >= 1);
    server.hang({ ignoreAbort: true });
    bridge.syncNow();
    await runUntil(clock, () => bridge.status().counters.syncFailures >= 1, { what: "the hung round failed", timeoutMs: 20_000 });
    // The deadline passed while streaming: the link probe (no answer from a hung server) ends it too.
    await runUntil(clock, () => bridge.status().heartbeat === "waiting", { what: "the round and its probe ended", timeoutMs: 20_000 });
    server.unhang();
    server.heal();
    const before = bridge.status().counters.syncs;
    await runUntil(clock, () => bridge.status().counters.syncs > before, { what: "a later round completed", timeoutMs: 120_000 });
  },
);

robust(
  "item 2: a project removed, re-created and removed again is delivered twice, once per life, from the stream and from the heartbeat",
  async (ctx) => {
    const clock = new SimulatedClock();
    const server = createMemoryServer({ clock, projects: ["p"] });
    const handler = recordingHandler("h", () => clock.now());
    const registry = new HandlerRegistry();
    registry.register(handler);
    const tracker = new SessionTracker();
    tracker.connect("p");
    const bridge = createBridge({ registry, tracker, client: server.client(), clock, logger: capturingLogger(), env: {} });
    stopLater(ctx, bridge, clock);
    bridge.start();
    await runUntil(clock, () => bridge.status().state === "streaming" && bridge.status().counters.syncs >= 1);
    server.removeProject("p");
    await runUntil(clock, () => handler.calls.length === 1);
    server.createProject("p");
    server.removeProject("p");
    await runUntil(clock, () => handler.calls.length === 2, { what: "the second life's removal by stream" });
    // A third life while the stream is down: only the heartbeat can tell.
    server.goDown();
    server.createProject("p");
    await advance(clock, 1000);
    server.comeBack();
    await runUntil(clock, () => bridge.status().counters.newLives >= 2, { what: "the heartbeat saw p live again", timeoutMs: 200_000 });
    server.goDown();
    server.removeProject("p");
    await advance(clock, 1000);
    server.comeBack();
    await runUntil(clock, () => handler.calls.length === 3, { what: "the third life's removal by heartbeat", timeoutMs: 200_000 });
    assert.equal(
      handler.calls.map((c) => c.info.source),
      ["stream", "stream", "heartbeat"],
    );
    await advance(clock, 300_000);
    assert.is(handler.calls.length, 3, "never again in the same life");
  },
);

robust(
  "item 3: slow handlers and more removals than the window: every tracked removal is handled once, however many heartbeats pass",
  async (ctx) => {
    const clock = new SimulatedClock();
    const ids = Array.from({ length: 600 }, (_, i) => `t${i}`);
    const server = createMemoryServer({ clock, projects: ids });
    const tracker = new SessionTracker();
    for (const id of ids) tracker.connect(id);
    let calls = 0;
    const slow: ProjectRemovalAware = {
      name: "slow",
      onProjectRemoved: (id) =>
        new Promise<void>((resolve) =>
          clock.setTimeout(() => {
            calls += 1;
            tracker.disconnect(id);
            resolve();
          }, 100),
        ),
    };
    const registry = new HandlerRegistry();
    registry.register(slow);
    const bridge = createBridge({
      registry,
      tracker,
      client: server.client(),
      clock,
      logger: capturingLogger(),
      env: {},
      timing: { heartbeatMs: 5000 },
    });
    stopLater(ctx, bridge, clock);
    bridge.start();
    await runUntil(clock, () => bridge.status().counters.syncs >= 1);
    // Removed while the stream is down: only the heartbeat tells, round after round while handlers work.
    server.goDown();
    for (const id of ids) server.removeProject(id);
    server.comeBack();
    await runUntil(clock, () => calls >= ids.length, { what: "every removal handled", timeoutMs: 300_000 });
    await advance(clock, 60_000);
    assert.is(calls, ids.length, "one handler call per removal, none re-queued");
    assert.ok(bridge.status().counters.syncs >= 5, "several heartbeats ran meanwhile");
  },
);

robust(
  "item 4: a flood of unique stream removals faster than handlers: the queue stays within its bound and the stream read pauses",
  async (ctx) => {
    const clock = new SimulatedClock();
    const server = createMemoryServer({ clock });
    const registry = new HandlerRegistry();
    registry.register({ name: "slow", onProjectRemoved: () => new Promise<void>((resolve) => clock.setTimeout(() => resolve(), 50)) });
    const bridge = createBridge({
      registry,
      client: server.client(),
      clock,
      logger: capturingLogger(),
      env: {},
      maxQueuedRemovals: 100,
    });
    stopLater(ctx, bridge, clock);
    bridge.start();
    await runUntil(clock, () => bridge.status().state === "streaming");
    server.flood(5000);
    let most = 0;
    let paused = false;
    for (let i = 0; i < 200; i++) {
      await advance(clock, 50);
      const d = bridge.status().dispatch;
      most = Math.max(most, d.queued);
      paused ||= d.streamPaused;
    }
    assert.ok(most <= 100, `at most maxQueuedRemovals queued (saw ${most})`);
    assert.ok(paused, "status() showed the stream paused");
    assert.ok(bridge.status().counters.dispatched > 100, "dispatch went on");
  },
);

robust("item 5: GOAWAY churn (max_connection_age) backs off and never cancels a heartbeat round", async (ctx) => {
  const clock = new SimulatedClock();
  const server = createMemoryServer({ clock, projects: ["a"] });
  const tracker = new SessionTracker();
  tracker.connect("a");
  const bridge = createBridge({
    registry: new HandlerRegistry(),
    tracker,
    client: server.client(),
    clock,
    logger: capturingLogger(),
    env: {},
  });
  stopLater(ctx, bridge, clock);
  bridge.start();
  await runUntil(clock, () => bridge.status().state === "streaming");
  server.slowSyncs(2000);
  const syncsBefore = server.stats().syncCalls;
  for (let t = 0; t < 60_000; t += 300) {
    server.goaway();
    await advance(clock, 300);
  }
  const s = bridge.status();
  assert.ok(s.counters.syncs >= 1, "heartbeat rounds complete although the server recycles every 300 ms");
  const syncs = server.stats().syncCalls - syncsBefore;
  assert.ok(syncs <= 20, `syncs in a minute of churn: ${syncs} (was 69 full syncs a minute)`);
  assert.ok(s.counters.reconnects + s.counters.streamsOpened < 100, `opens in a minute: ${s.counters.streamsOpened}`);
});

robust("item 6: an inspect observer that throws loses no removal", async (ctx) => {
  const clock = new SimulatedClock();
  const server = createMemoryServer({ clock, projects: ["a", "b"] });
  const handler = recordingHandler("h", () => clock.now());
  const registry = new HandlerRegistry();
  registry.register(handler);
  const logger = capturingLogger();
  const bridge = createBridge({
    registry,
    client: server.client(),
    clock,
    logger,
    env: {},
    inspect: () => {
      throw new Error("observer failed");
    },
  });
  stopLater(ctx, bridge, clock);
  bridge.start();
  await runUntil(clock, () => bridge.status().state === "streaming");
  server.removeProject("a");
  server.removeProject("b");
  await runUntil(clock, () => handler.calls.length === 2, { what: "both removals" });
  assert.equal(handler.ids(), ["a", "b"]);
  assert.is(bridge.status().state, "streaming");
  assert.ok(logger.at("warn").some((l) => /inspect observer threw/.test(l.msg ?? "")));
});

robust("item 7: a server that grants one concurrent stream: heartbeats complete and the stream is never torn down", async (ctx) => {
  const server = await startDevServer({ port: 0, maxConcurrentStreams: 1 });
  ctx.closers.push(() => server.close());
  server.createProject("a");
  const tracker = new SessionTracker();
  tracker.connect("a");
  const bridge = createBridge({
    registry: new HandlerRegistry(),
    tracker,
    serverUrl: server.url,
    logger: capturingLogger(),
    env: {},
    timing: { heartbeatMs: 300, heartbeatJitterMs: 0, syncTimeoutMs: 250, openConfirmMs: 100 },
  });
  ctx.closers.push(() => bridge.stop());
  bridge.start();
  await eventually("three heartbeats", () => bridge.status().counters.syncs >= 3, 8000);
  const s = bridge.status();
  assert.is(s.counters.suspects, 0, "no heartbeat taken for a dead link");
  assert.is(s.counters.streamsOpened, 1, "the one stream stayed up");
});

robust.run();
