/**
 * Keepalive enforcement: a default gRPC server allows a client PING once per
 * 5 minutes without data (`grpc.http2.min_ping_interval_without_data_ms`)
 * and answers the third early one (`grpc.http2.max_ping_strikes` = 2) with
 * GOAWAY ENHANCE_YOUR_CALM "too_many_pings". The bridge sends no PINGs by
 * design; these tests scale the enforcement window down to milliseconds and
 * prove it by counting the HTTP/2 frames on the wire.
 *
 * @grpc/grpc-js 1.14 accepts these server options but does not enforce them
 * (only gRPC core does), so the fault proxy in front of the grpc-js server
 * enforces gRPC core's policy on the frames it forwards (see
 * test/helpers/fault-proxy.ts). The first test shows the enforcement bites a
 * client that does ping.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import * as http2 from "node:http2";
import { create } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { EngramService, ProjectEventsRequestSchema } from "../../src/gen/engram/v1/engram_pb.js";
import { createBridge, HandlerRegistry, SessionTracker, type Bridge } from "../../src/index.js";
import { capturingLogger, eventually, fastTiming, recordingHandler } from "../helpers/e2e.js";
import { startFaultProxy, type FaultProxy, type PingPolicy } from "../helpers/fault-proxy.js";
import { startGrpcJsServer, type GrpcJsServer } from "../helpers/grpc-js-server.js";

const ENHANCE_YOUR_CALM = 0xb;
/** The enforcement window, scaled from 5 minutes down to 200 ms. */
const policy: Required<PingPolicy> = { minPingIntervalWithoutDataMs: 200, maxPingStrikes: 2, permitWithoutCalls: false };

interface Ctx {
  server: GrpcJsServer;
  proxy: FaultProxy;
  bridges: Bridge[];
}

const keepalive = suite<Ctx>("keepalive enforcement");

keepalive.before.each(async (ctx) => {
  ctx.server = await startGrpcJsServer({
    serverOptions: {
      "grpc.http2.min_ping_interval_without_data_ms": policy.minPingIntervalWithoutDataMs,
      "grpc.http2.max_ping_strikes": policy.maxPingStrikes,
      "grpc.keepalive_permit_without_calls": 0,
    },
  });
  ctx.proxy = await startFaultProxy({ targetPort: ctx.server.port, pingPolicy: policy });
  ctx.bridges = [];
});

keepalive.after.each(async (ctx) => {
  await Promise.all(ctx.bridges.map((b) => b.stop()));
  await ctx.proxy.close();
  await ctx.server.close();
});

keepalive("the enforcement answers a client that pings too often with GOAWAY ENHANCE_YOUR_CALM", async (ctx) => {
  // Control: connect-node configured to ping every 30 ms while a stream is open.
  const manager = new Http2SessionManager(ctx.proxy.url, { pingIntervalMs: 30, pingTimeoutMs: 2000 });
  const client = createClient(EngramService, createGrpcTransport({ baseUrl: ctx.proxy.url, sessionManager: manager }));
  const abort = new AbortController();
  let failure: unknown;
  const call = (async () => {
    try {
      for await (const _ of client.projectEvents(create(ProjectEventsRequestSchema, { clientId: "pinger" }), { signal: abort.signal })) {
        // no events are sent
      }
    } catch (err) {
      failure = err;
    }
  })();
  await eventually("GOAWAY sent", () => ctx.proxy.stats().http2.goaways.some((g) => g.errorCode === ENHANCE_YOUR_CALM), 5000);
  await call;
  abort.abort();
  manager.abort();
  const stats = ctx.proxy.stats().http2;
  assert.ok(stats.clientPings > policy.maxPingStrikes, `pings: ${stats.clientPings}`);
  assert.ok(String(failure).length > 0, "the pinging call failed");
  console.log(
    `# control client: ${stats.clientPings} PINGs, GOAWAY ENHANCE_YOUR_CALM after ${stats.pingStrikes} strikes; it saw: ${String(failure)}`,
  );

  // The same with raw pings on an idle connection (no call open: one per 2 hours allowed).
  const session = http2.connect(ctx.proxy.url);
  session.on("error", () => {});
  const goaway = new Promise<number>((resolve) => session.once("goaway", (code) => resolve(code)));
  await new Promise<void>((resolve) => session.once("connect", () => resolve()));
  for (let i = 0; i < 4 && !session.destroyed; i++) session.ping(() => {});
  assert.is(await goaway, ENHANCE_YOUR_CALM);
  session.destroy();
});

keepalive("the bridge never pings: no GOAWAY through reconnects, heartbeats and quiet streaming", async (ctx) => {
  const tracker = new SessionTracker();
  tracker.connect("hb-1");
  const registry = new HandlerRegistry();
  const handler = recordingHandler();
  registry.register(handler);
  const logger = capturingLogger();
  // Bridge defaults apart from the time scale: the heartbeat comes every
  // 100 ms against a 200 ms enforcement window, as 60 s does against 5 min.
  const bridge = createBridge({
    registry,
    tracker,
    serverUrl: ctx.proxy.url,
    env: {},
    logger,
    clientId: "no-pings",
    timing: { ...fastTiming, heartbeatMs: 100, heartbeatJitterMs: 10, openConfirmMs: 100 },
  });
  ctx.bridges.push(bridge);
  bridge.start();
  await ctx.server.waitForStreams(1);
  const quietUntil = performance.now() + 1200;
  let drops = 0;
  while (performance.now() < quietUntil) {
    await new Promise((r) => setTimeout(r, 300));
    drops += ctx.server.dropStreams();
    await ctx.server.waitForStreams(1, 5000);
  }
  // One more session: a cut forces a fresh connection.
  await ctx.proxy.cut();
  await ctx.proxy.pass();
  await eventually("second session", () => ctx.proxy.stats().accepted >= 2 && ctx.server.stats().openStreams === 1, 5000);
  await new Promise((r) => setTimeout(r, 500));
  ctx.server.createProject("late");
  ctx.server.removeProject("late");
  await eventually("removal still delivered", () => handler.ids().includes("late"));
  const s = ctx.proxy.stats().http2;
  const counters = bridge.status().counters;
  console.log(
    `# bridge over ${ctx.proxy.stats().accepted} sessions, ${counters.syncs} heartbeats, ${drops + 1} reconnects: ` +
      `${s.clientPings} PINGs sent, ${s.goaways.length} GOAWAYs; frames from the bridge: ${JSON.stringify(s.framesFromClient)}`,
  );
  assert.ok(counters.syncs >= 10, `heartbeats: ${counters.syncs}`);
  assert.ok(drops >= 3);
  assert.ok((s.framesFromClient["HEADERS"] ?? 0) >= counters.syncs, "the tap saw the calls");
  assert.is(s.clientPings, 0, "the bridge sent PING frames");
  assert.is(s.pingStrikes, 0);
  assert.equal(
    s.goaways.filter((g) => g.errorCode === ENHANCE_YOUR_CALM),
    [],
  );
  assert.not.ok(logger.lines.some((l) => /too_many_pings|ENHANCE_YOUR_CALM/i.test(l.text)));
});

keepalive.run();
