/**
 * The core end-to-end scenarios against an independent server: an
 * engram.v1.EngramService built on @grpc/grpc-js + @grpc/proto-loader from
 * the .proto file (test/helpers/grpc-js-server.ts), with grpc-js defaults.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import * as grpc from "@grpc/grpc-js";
import { SessionTracker } from "../../src/index.js";
import { eventually, fastTiming, createBridgeFixture, dropAndReconnect, type BridgeFixture } from "../helpers/e2e.js";
import { startGrpcJsServer, type GrpcJsServer } from "../helpers/grpc-js-server.js";

interface Ctx {
  server: GrpcJsServer;
  bridges: BridgeFixture;
  make: BridgeFixture["make"];
}

const interop = suite<Ctx>("interop with a grpc-js server");

interop.before.each(async (ctx) => {
  ctx.server = await startGrpcJsServer();
  ctx.bridges = createBridgeFixture(() => ({ serverUrl: ctx.server.url, clientId: "interop" }));
  ctx.make = ctx.bridges.make;
});

interop.after.each(async (ctx) => {
  await ctx.bridges.stopAll();
  await ctx.server.close();
});

interop("a removal reaches the handler with its reason and event id", async (ctx) => {
  const { bridge, handler } = ctx.make();
  ctx.server.createProject("p1");
  bridge.start();
  await ctx.server.waitForStreams(1);
  await eventually("streaming", () => bridge.status().state === "streaming");
  const t0 = performance.now();
  ctx.server.removeProject("p1", "deleted by owner");
  await eventually("handler call", () => handler.calls.length === 1);
  console.log(`# grpc-js delivery latency on loopback: ${(handler.calls[0]!.atMs - t0).toFixed(2)} ms`);
  assert.is(handler.calls[0]!.projectId, "p1");
  assert.is(handler.calls[0]!.info.source, "stream");
  assert.is(handler.calls[0]!.info.reason, "deleted by owner");
  assert.ok(handler.calls[0]!.info.eventId);
  assert.is(bridge.status().lastError, null);
});

interop("a server that sends headers only with the first message is confirmed open after openConfirmMs", async (ctx) => {
  const { bridge } = ctx.make({ timing: { ...fastTiming, openConfirmMs: 600 } });
  bridge.start();
  await ctx.server.waitForStreams(1);
  const t0 = performance.now();
  assert.is(bridge.status().state, "connecting", "grpc-js sends no headers before the first message");
  await eventually("streaming", () => bridge.status().state === "streaming", 5000);
  const waitedMs = performance.now() - t0;
  assert.ok(waitedMs > 300, `confirmed after ${waitedMs} ms`);
  await ctx.server.close();
  ctx.server = await startGrpcJsServer({ headersOnOpen: true });
  const eager = ctx.make({ timing: { ...fastTiming, openConfirmMs: 10_000 } }).bridge;
  eager.start();
  await ctx.server.waitForStreams(1);
  await eventually("streaming on headers", () => eager.status().state === "streaming", 3000);
});

interop("reconnects after the server drops the stream with UNAVAILABLE", async (ctx) => {
  await dropAndReconnect(ctx.server, ctx.make());
});

interop("reconnects after a clean end of the stream", async (ctx) => {
  const { bridge, logger } = ctx.make();
  bridge.start();
  await ctx.server.waitForStreams(1);
  assert.is(ctx.server.endStreams(), 1);
  await eventually("second stream", () => ctx.server.stats().streamsOpened === 2 && ctx.server.stats().openStreams === 1);
  assert.is(bridge.status().counters.streamEnds, 1);
  assert.ok(logger.at("warn").some((l) => /ended the ProjectEvents stream/.test(l.msg ?? "")));
});

interop("reconnects after the server is shut down and restarted on the same port", async (ctx) => {
  const tracker = new SessionTracker();
  tracker.connect("p3");
  const { bridge, handler } = ctx.make({ tracker });
  ctx.server.createProject("p3");
  bridge.start();
  await ctx.server.waitForStreams(1);
  await eventually("first sync", () => bridge.status().counters.syncs >= 1);
  const { port } = ctx.server;
  await ctx.server.close();
  await eventually("failure seen", () => bridge.status().counters.streamFailures >= 1);
  ctx.server = await startGrpcJsServer({ port });
  // The restarted server has never heard of p3: the sync on reconnect reports it removed.
  await ctx.server.waitForStreams(1, 5000);
  await eventually("removal after restart", () => handler.ids().includes("p3"));
  assert.is(handler.calls[0]!.info.source, "heartbeat");
});

interop("the heartbeat delivers removals the stream never carried, once each", async (ctx) => {
  const tracker = new SessionTracker();
  for (const id of ["quiet", "never-existed", "alive"]) tracker.connect(id);
  ctx.server.createProject("quiet");
  ctx.server.createProject("alive");
  ctx.server.removeProject("quiet");
  const { bridge, handler } = ctx.make({ tracker });
  bridge.start();
  await eventually("heartbeat removals", () => handler.ids().length === 2);
  assert.equal(handler.ids().sort(), ["never-existed", "quiet"]);
  assert.ok(handler.calls.every((c) => c.info.source === "heartbeat"));
  bridge.syncNow();
  await eventually("second sync", () => bridge.status().counters.syncs >= 2);
  assert.is(handler.calls.length, 2, "no second delivery");
  assert.is(ctx.server.stats().syncIdsReported >= 6, true);
});

interop("the token reaches grpc-js on both RPC kinds; a wrong one is logged once per streak", async (ctx) => {
  await ctx.server.close();
  const token = "interop-token-value";
  ctx.server = await startGrpcJsServer({ token });
  const tracker = new SessionTracker();
  tracker.connect("t1");
  const good = ctx.make({ token, tracker });
  good.bridge.start();
  await ctx.server.waitForStreams(1);
  await eventually("sync answered", () => good.bridge.status().counters.syncs >= 1);
  assert.equal(ctx.server.stats().tokensSeen, { projectEvents: [token], syncProjectState: [token] });
  assert.is(ctx.server.stats().authFailures, 0);
  assert.not.ok(good.logger.lines.some((l) => l.text.includes(token)));

  const bad = ctx.make({ token: "not-the-token", clientId: "bad" });
  bad.bridge.start();
  await eventually("several failures", () => bad.bridge.status().counters.streamFailures >= 4, 5000);
  assert.is(bad.bridge.status().lastError?.code, "unauthenticated");
  assert.is(bad.logger.at("error").filter((l) => l.text.includes("unauthenticated")).length, 1);
  assert.not.ok(bad.logger.lines.some((l) => l.text.includes("not-the-token")));
});

interop("a token rotated on the server is picked up by a token function without a restart", async (ctx) => {
  await ctx.server.close();
  ctx.server = await startGrpcJsServer({ token: "v1" });
  let current = "v1";
  const { bridge, handler } = ctx.make({ token: () => current });
  bridge.start();
  await ctx.server.waitForStreams(1);
  ctx.server.setToken("v2");
  current = "v2";
  ctx.server.dropStreams(grpc.status.UNAVAILABLE);
  await eventually(
    "reconnected with v2",
    () => ctx.server.stats().tokensSeen.projectEvents.includes("v2") && ctx.server.stats().openStreams === 1,
  );
  ctx.server.createProject("r");
  ctx.server.removeProject("r");
  await eventually("removal", () => handler.ids().includes("r"));
  assert.is(ctx.server.stats().authFailures, 0);
});

interop.run();
