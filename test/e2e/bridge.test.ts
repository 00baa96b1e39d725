import { suite } from "uvu";
import * as assert from "uvu/assert";
import { Code } from "@connectrpc/connect";
import { ProjectEventType } from "../../src/gen/engram/v1/engram_pb.js";
import { HandlerRegistry, SessionTracker, startDevServer, type DevServer } from "../../src/index.js";
import { createBridgeFixture, dropAndReconnect, eventually, fastTiming, type BridgeFixture } from "../helpers/e2e.js";
import { startFaultProxy } from "../helpers/fault-proxy.js";

interface Ctx {
  server: DevServer;
  bridges: BridgeFixture;
  make: BridgeFixture["make"];
}

const e2e = suite<Ctx>("bridge end to end");

e2e.before.each(async (ctx) => {
  ctx.server = await startDevServer();
  ctx.bridges = createBridgeFixture(() => ({ serverUrl: ctx.server.url, clientId: "e2e" }));
  ctx.make = ctx.bridges.make;
});

e2e.after.each(async (ctx) => {
  await ctx.bridges.stopAll();
  await ctx.server.close();
});

e2e("a removal reaches the handler well under a second", async (ctx) => {
  const { bridge, handler } = ctx.make();
  ctx.server.createProject("p1");
  bridge.start();
  await ctx.server.waitForStreams(1);
  await eventually("streaming", () => bridge.status().state === "streaming");
  const t0 = performance.now();
  ctx.server.removeProject("p1", "deleted by owner");
  await eventually("handler call", () => handler.calls.length === 1);
  const latencyMs = handler.calls[0]!.atMs - t0;
  console.log(`# delivery latency on loopback: ${latencyMs.toFixed(2)} ms`);
  assert.ok(latencyMs < 250, `latency ${latencyMs} ms`);
  assert.is(handler.calls[0]!.projectId, "p1");
  assert.is(handler.calls[0]!.info.source, "stream");
  assert.is(handler.calls[0]!.info.reason, "deleted by owner");
  assert.ok(handler.calls[0]!.info.eventId);
});

e2e("reconnects after the server drops the stream", async (ctx) => {
  await dropAndReconnect(ctx.server, ctx.make());
});

e2e("reconnects after the server shuts down and comes back on the same port", async (ctx) => {
  const { bridge, handler, logger } = ctx.make();
  ctx.server.createProject("p3");
  bridge.start();
  await ctx.server.waitForStreams(1);
  const { port, store } = ctx.server;
  await ctx.server.close();
  await eventually("backoff", () => bridge.status().state === "backoff" || bridge.status().counters.streamFailures > 0);
  ctx.server = await startDevServer({ port, store });
  await ctx.server.waitForStreams(1, 5000);
  await eventually("streaming", () => bridge.status().state === "streaming");
  ctx.server.removeProject("p3");
  await eventually("removal after restart", () => handler.ids().includes("p3"));
  const failure = logger.lines.find((l) => /ProjectEvents failed/.test(l.msg ?? ""));
  assert.ok(failure, "the shutdown was seen as a failure, not as our own stop");
  console.log(
    `# code seen on server shutdown: ${bridge.status().lastError?.code ?? "?"} (first failure: ${JSON.stringify((failure!.obj as { err?: unknown }).err)})`,
  );
});

e2e("deduplicates a removal seen on both the stream and the heartbeat", async (ctx) => {
  const tracker = new SessionTracker();
  tracker.connect("dup");
  const { bridge, handler } = ctx.make({ tracker });
  ctx.server.createProject("dup");
  bridge.start();
  await ctx.server.waitForStreams(1);
  await ctx.server.waitForSyncCalls(1);
  await eventually("first sync done", () => bridge.status().counters.syncs >= 1);
  ctx.server.removeProject("dup");
  await eventually("stream removal", () => handler.ids().length === 1);
  bridge.syncNow();
  await eventually("second sync", () => bridge.status().counters.syncs >= 2);
  assert.equal(handler.ids(), ["dup"]);
  assert.ok(bridge.status().counters.duplicatesSuppressed >= 1);
});

e2e("the heartbeat delivers a removal the stream never carried", async (ctx) => {
  const tracker = new SessionTracker();
  tracker.connect("quiet");
  tracker.connect("never-existed");
  ctx.server.createProject("quiet");
  const { bridge, handler } = ctx.make({ tracker });
  // Removed before the bridge connects: no stream will ever carry it.
  ctx.server.removeProject("quiet");
  bridge.start();
  await eventually("heartbeat removals", () => handler.ids().length === 2);
  assert.equal(handler.ids().sort(), ["never-existed", "quiet"]);
  assert.ok(handler.calls.every((c) => c.info.source === "heartbeat"));
});

e2e("a throwing, a rejecting and a hanging handler do not keep a healthy one from hearing", async (ctx) => {
  const registry = new HandlerRegistry();
  const order: string[] = [];
  registry.register({
    name: "thrower",
    onProjectRemoved: () => {
      order.push("thrower");
      throw new Error("boom");
    },
  });
  registry.register({
    name: "rejecter",
    onProjectRemoved: async () => {
      order.push("rejecter");
      throw new Error("nope");
    },
  });
  registry.register({
    name: "hanger",
    onProjectRemoved: () => {
      order.push("hanger");
      return new Promise<void>(() => {});
    },
  });
  const { bridge, handler, logger } = ctx.make({ registry, timing: { ...fastTiming, handlerTimeoutMs: 100 } });
  ctx.server.createProject("iso");
  bridge.start();
  await ctx.server.waitForStreams(1);
  ctx.server.removeProject("iso");
  await eventually("healthy handler", () => handler.ids().includes("iso"));
  assert.equal(order, ["thrower", "rejecter", "hanger"]);
  const s = bridge.status().counters;
  assert.is(s.handlerErrors, 2);
  assert.is(s.handlerTimeouts, 1);
  for (const name of ["thrower", "rejecter", "hanger"]) {
    assert.ok(
      logger.lines.some((l) => l.text.includes(name) && (l.level === "warn" || l.level === "error")),
      `${name} logged`,
    );
  }
  assert.is(bridge.status().state, "streaming");
});

e2e("stop is clean: nothing stays open", async (ctx) => {
  const before = process.getActiveResourcesInfo().filter((r) => r !== "TTYWrap").length;
  const { bridge } = ctx.make();
  bridge.start();
  await ctx.server.waitForStreams(1);
  await eventually("streaming", () => bridge.status().state === "streaming");
  const t0 = performance.now();
  await bridge.stop();
  const stopMs = performance.now() - t0;
  assert.ok(stopMs < 500, `stop took ${stopMs} ms`);
  assert.is(bridge.status().state, "stopped");
  await ctx.server.waitForStreamsClosed(0);
  await eventually("handles released", () => process.getActiveResourcesInfo().filter((r) => r !== "TTYWrap").length <= before);
  await bridge.stop();
});

e2e("the token reaches the server on both RPC kinds and nowhere else", async (ctx) => {
  await ctx.server.close();
  const token = "s3cr3t-token-value";
  ctx.server = await startDevServer({ token });
  const tracker = new SessionTracker();
  tracker.connect("t1");
  const inspected: string[] = [];
  const { bridge, logger } = ctx.make({
    token,
    tracker,
    inspect: (ev) => inspected.push(JSON.stringify(ev, (_k, v) => (typeof v === "bigint" ? v.toString() : v))),
  });
  ctx.server.createProject("t1");
  bridge.start();
  await ctx.server.waitForStreams(1);
  await ctx.server.waitForSyncCalls(1);
  await eventually("sync answered", () => bridge.status().counters.syncs >= 1);
  ctx.server.removeProject("t1");
  await eventually("removal", () => bridge.status().counters.dispatched >= 1);
  const seen = ctx.server.stats().tokensSeen;
  assert.equal(seen.projectEvents, [token]);
  assert.equal(seen.syncProjectState, [token]);
  assert.is(ctx.server.stats().authFailures, 0);
  assert.not.ok(JSON.stringify(bridge.status()).includes(token), "status");
  assert.not.ok(
    logger.lines.some((l) => l.text.includes(token)),
    "logs",
  );
  assert.ok(inspected.length > 10);
  assert.not.ok(
    inspected.some((t) => t.includes(token)),
    "inspection events",
  );
});

e2e("15,000 tracked ids are synced in chunks without INVALID_ARGUMENT", async (ctx) => {
  const tracker = new SessionTracker();
  for (let i = 0; i < 15_000; i++) {
    tracker.connect(`p${i}`);
    ctx.server.createProject(`p${i}`);
  }
  ctx.server.removeProject("p14999");
  const { bridge, handler, logger } = ctx.make({ tracker });
  bridge.start();
  await eventually("sync done", () => bridge.status().counters.syncs >= 1);
  assert.is(ctx.server.stats().syncCalls, 2, "two chunks");
  assert.is(ctx.server.stats().syncIdsReported, 15_000);
  assert.is(bridge.status().counters.syncFailures, 0);
  await eventually("heartbeat removal", () => handler.ids().includes("p14999"));
  assert.not.ok(logger.lines.some((l) => l.text.includes("invalid_argument")));
});

e2e("empty project ids and non-REMOVED event types are ignored", async (ctx) => {
  const { bridge, handler } = ctx.make();
  bridge.start();
  await ctx.server.waitForStreams(1);
  ctx.server.emitEvent({ projectId: "" });
  ctx.server.emitEvent({ projectId: "c", eventType: ProjectEventType.CREATED });
  ctx.server.emitEvent({ projectId: "r", eventType: ProjectEventType.RENAMED });
  ctx.server.emitEvent({ projectId: "u", eventType: 42 as ProjectEventType });
  ctx.server.emitEvent({ projectId: "real" });
  await eventually("real removal", () => handler.ids().includes("real"));
  assert.equal(handler.ids(), ["real"]);
  assert.is(bridge.status().counters.ignoredEvents, 4);
});

e2e("a wrong token is logged once per streak while the bridge keeps backing off", async (ctx) => {
  await ctx.server.close();
  ctx.server = await startDevServer({ token: "right" });
  const { bridge, logger } = ctx.make({ token: "wrong" });
  bridge.start();
  await eventually("several failures", () => bridge.status().counters.streamFailures >= 4, 5000);
  const errors = logger.at("error").filter((l) => l.text.includes("unauthenticated"));
  // One for the stream's streak and at most one for the heartbeat's.
  assert.is(errors.filter((l) => /ProjectEvents failed/.test(l.msg ?? "")).length, 1, "one error line for the streak");
  assert.ok(errors.filter((l) => /heartbeat failed/.test(l.msg ?? "")).length <= 1, "the heartbeat's streak is one line too");
  assert.ok(bridge.status().attempt >= 4);
  assert.ok(["backoff", "connecting"].includes(bridge.status().state));
  assert.not.ok(logger.lines.some((l) => l.text.includes("wrong") && !l.text.includes("wrong token")));
});

e2e("a server that accepts each stream and fails it at once cannot pin retries at the minimum", async (ctx) => {
  // connect-node sends headers and then the error status, so each attempt
  // does reach streaming; only a first message or stableAfterMs resets the attempt.
  ctx.server.rejectStreams(Code.Unavailable);
  const { bridge } = ctx.make();
  const waits: number[] = [];
  bridge.actor.subscribe(() => {
    const s = bridge.status();
    if (s.state === "backoff" && s.timestamps.nextRetryAtMs !== undefined && waits.length < s.attempt) {
      waits.push(s.timestamps.nextRetryAtMs - Date.now());
    }
  });
  bridge.start();
  await eventually("four refusals", () => bridge.status().counters.streamFailures >= 4);
  assert.ok(bridge.status().attempt >= 4, `attempt ${bridge.status().attempt}`);
  // 20 ms doubling (±20 %): the fourth wait is at least 4 × 20 × 0.8 ms.
  assert.ok(waits.length >= 4 && waits[3]! >= 64 - 5, `waits ${waits.map((w) => w.toFixed(0)).join(", ")}`);
  ctx.server.rejectStreams(undefined);
  ctx.server.createProject("after-refusals");
  await eventually("streaming once allowed", () => bridge.status().state === "streaming" && ctx.server.stats().openStreams === 1);
  ctx.server.removeProject("after-refusals");
  await eventually("attempt reset by the first message", () => bridge.status().attempt === 0);
});

e2e("a server restart while the stream's first sync is in flight leaves no dead stream behind", async (ctx) => {
  // connect-node leaves a ProjectEvents call pending forever when its HTTP/2
  // stream closes with NO_ERROR before the trailers (here: GOAWAY while a
  // sync is in flight on the same session). Without the stream-close watch
  // the bridge sat in streaming with no stream, 15 times out of 15.
  const tracker = new SessionTracker();
  tracker.connect("a");
  const { bridge, handler } = ctx.make({ tracker, timing: { ...fastTiming, openConfirmMs: 50 } });
  const { port, store } = ctx.server;
  ctx.server.setSyncDelayMs(20);
  const restarted = new Promise<void>((resolve) => {
    const off = ctx.server.onSyncCall(() => {
      off();
      void ctx.server.close().then(async () => {
        ctx.server = await startDevServer({ port, store });
        resolve();
      });
    });
  });
  bridge.start();
  await restarted;
  await ctx.server.waitForStreams(1, 5000);
  await eventually("streaming on the new server", () => bridge.status().state === "streaming" && ctx.server.stats().openStreams === 1);
  ctx.server.createProject("after-restart");
  ctx.server.removeProject("after-restart");
  await eventually("a removal on the new stream", () => handler.ids().includes("after-restart"));
});

e2e("STOP sent through the exposed actor closes the HTTP/2 session at once (issue 10 item 12)", async (ctx) => {
  const proxy = await startFaultProxy({ targetPort: ctx.server.port });
  try {
    const { bridge } = ctx.make({ serverUrl: proxy.url });
    bridge.start();
    await ctx.server.waitForStreams(1);
    await eventually("streaming", () => bridge.status().state === "streaming");
    assert.is(proxy.stats().open, 1);
    bridge.actor.send({ type: "STOP" });
    await eventually("the session is closed", () => proxy.stats().open === 0, 1500);
    await eventually("stopped", () => bridge.status().state === "stopped");
    await ctx.server.waitForStreamsClosed(0);
  } finally {
    await proxy.close();
  }
});

e2e("heartbeat auth failures are logged at error once per streak, not a warning per round (issue 10 item 10)", async (ctx) => {
  const { bridge, logger } = ctx.make();
  bridge.start();
  await eventually("streaming with a first sync", () => bridge.status().state === "streaming" && bridge.status().counters.syncs === 1);
  ctx.server.failNextSyncs(4, Code.Unauthenticated);
  for (let i = 1; i <= 4; i++) {
    bridge.syncNow();
    await eventually(`failed sync ${i}`, () => bridge.status().counters.syncFailures === i);
  }
  const heartbeatLines = logger.lines.filter((l) => /heartbeat failed/.test(l.msg ?? ""));
  assert.equal(
    heartbeatLines.map((l) => l.level),
    ["error", "debug", "debug", "debug"],
  );
  assert.ok(/unauthenticated/.test(heartbeatLines[0]!.msg ?? ""));
  bridge.syncNow();
  await eventually("a sync succeeds again", () => bridge.status().counters.syncs === 2);
  ctx.server.failNextSyncs(1, Code.Unauthenticated);
  bridge.syncNow();
  await eventually("a new streak", () => bridge.status().counters.syncFailures === 5);
  assert.is(logger.at("error").filter((l) => /heartbeat failed/.test(l.msg ?? "")).length, 2, "a new streak is loud again");
});

e2e("the reconnect log line says how long the bridge waits (issue 12 item 7)", async (ctx) => {
  const { bridge, logger } = ctx.make({ timing: { ...fastTiming, backoffJitter: 0 } });
  bridge.start();
  await ctx.server.waitForStreams(1);
  await eventually("streaming", () => bridge.status().state === "streaming");
  ctx.server.dropStreams();
  await eventually("the failure logged", () => logger.at("warn").find((l) => /ProjectEvents failed/.test(l.msg ?? "")));
  const line = logger.at("warn").find((l) => /ProjectEvents failed/.test(l.msg ?? ""))!;
  assert.is((line.obj as { retryInMs?: number }).retryInMs, 20, "the line carries the wait");
  assert.match(line.text, /"retryInMs":20/);
});

e2e("status() says why a bridge that refused to start is idle (issue 12 item 7)", async (ctx) => {
  const cases = [
    { opts: { serverUrl: "" }, reason: "no_url" },
    { opts: { serverUrl: "http://exa mple:1" }, reason: "invalid_url" },
    { opts: { serverUrl: "http://10.1.2.3:50051", token: "t0ken" }, reason: "insecure_token" },
  ] as const;
  for (const { opts, reason } of cases) {
    const { bridge } = ctx.make(opts);
    bridge.start();
    const s = bridge.status();
    assert.is(s.state, "idle");
    assert.is(s.idleReason, reason);
    assert.ok(s.lastError?.message, `${reason}: lastError says more`);
  }
  const { bridge } = ctx.make();
  bridge.start();
  assert.is(bridge.status().idleReason, null, "a bridge that started has no idle reason");
});

e2e.run();
