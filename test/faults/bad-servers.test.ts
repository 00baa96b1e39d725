/**
 * Servers that answer wrongly: an HTTP/1.1 server, HTTP/2 servers answering
 * 404, 500, HTML or gRPC garbage, a message over the 4 MiB cap, a stream
 * that ends cleanly at once. Each must give a clear log line and leave the
 * bridge backing off: no crash, no stall, no spin.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import * as http from "node:http";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { SimulatedClock } from "xstate";
import { createBridge, HandlerRegistry, SessionTracker, type EventsClient } from "../../src/index.js";
import type { BridgeOptions } from "../../src/bridge-options.js";
import { backoffDelayMs, defaultBridgeTiming } from "../../src/timing.js";
import {
  capturingLogger,
  eventually,
  fastTiming,
  type CapturedLine,
  createBridgeFixture,
  type BridgeFixture,
  type TestBridge,
} from "../helpers/e2e.js";
import { startGrpcJsServer } from "../helpers/grpc-js-server.js";

type Closable = { close(): Promise<void> };

interface Ctx {
  bridges: BridgeFixture;
  closables: Closable[];
  make(serverUrl: string, opts?: Partial<BridgeOptions>): TestBridge;
}

const bad = suite<Ctx>("bad servers");

bad.before.each((ctx) => {
  ctx.bridges = createBridgeFixture(() => ({ clientId: "bad" }));
  ctx.closables = [];
  ctx.make = (serverUrl, opts = {}) => ctx.bridges.make({ serverUrl, ...opts });
});

bad.after.each(async (ctx) => {
  await ctx.bridges.stopAll();
  for (const c of ctx.closables) await c.close();
});

async function listen(ctx: Ctx, server: http.Server | http2.Http2Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const sockets = new Set<import("node:net").Socket>();
  server.on("connection", (s: import("node:net").Socket) => {
    sockets.add(s);
    s.once("close", () => sockets.delete(s));
  });
  ctx.closables.push({
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function h2Server(answer: (stream: http2.ServerHttp2Stream) => void): http2.Http2Server {
  const server = http2.createServer();
  server.on("session", (s) => s.on("error", () => {}));
  server.on("stream", (stream) => {
    stream.on("error", () => {});
    answer(stream);
  });
  return server;
}

/** The first warn/error line about the failure, as text. */
function failureLine(lines: CapturedLine[]): string {
  const line = lines.find((l) => (l.level === "warn" || l.level === "error") && /ProjectEvents failed/.test(l.msg ?? ""));
  return line ? line.text : "";
}

/**
 * Runs a bridge against `url` until it failed `n` times; checks it keeps
 * backing off (attempt grows, never streaming for long) and returns the log.
 */
async function expectBackoff(ctx: Ctx, url: string, n = 4) {
  const { bridge, logger } = ctx.make(url);
  bridge.start();
  const t0 = performance.now();
  await eventually(`${n} failures`, () => bridge.status().counters.streamFailures >= n, 8000);
  const elapsedMs = performance.now() - t0;
  const s = bridge.status();
  assert.ok(s.attempt >= n, `attempt ${s.attempt}`);
  assert.ok(["backoff", "connecting"].includes(s.state), s.state);
  // Backoff, not spin: n failures need at least the first n-1 waits at their shortest.
  let minWaits = 0;
  for (let a = 1; a < n; a++) minWaits += backoffDelayMs(a, { ...defaultBridgeTiming, ...fastTiming }, 0);
  assert.ok(elapsedMs >= minWaits * 0.9, `${n} failures in ${elapsedMs} ms < ${minWaits} ms of backoff`);
  const t1 = performance.now();
  await bridge.stop();
  assert.ok(performance.now() - t1 < 1000, "stop is prompt");
  return { line: failureLine(logger.lines), status: s, logger };
}

bad("a plain HTTP/1.1 server at the URL", async (ctx) => {
  const url = await listen(
    ctx,
    http.createServer((_req, res) => res.end("hello")),
  );
  const { line, status } = await expectBackoff(ctx, url);
  assert.match(line, /does not speak HTTP\/2/);
  assert.match(line, /ENGRAM_URL/);
  console.log(`# HTTP/1.1 server: ${line}`);
  assert.is(status.lastError?.code, "internal");
});

bad("an HTTP/2 server answering 404", async (ctx) => {
  const url = await listen(
    ctx,
    h2Server((s) => {
      s.respond({ ":status": 404 });
      s.end("not found");
    }),
  );
  const { logger, status } = await expectBackoff(ctx, url);
  const errors = logger.at("error");
  assert.is(errors.length, 1, "once per streak");
  assert.match(errors[0]!.text, /no gRPC service answers at this URL \(HTTP 404\): check ENGRAM_URL/);
  assert.is(status.lastError?.code, "unimplemented");
  console.log(`# HTTP/2 404: ${errors[0]!.text}`);
});

bad("an HTTP/2 server answering 500", async (ctx) => {
  const url = await listen(
    ctx,
    h2Server((s) => {
      s.respond({ ":status": 500, "content-type": "text/plain" });
      s.end("oops");
    }),
  );
  const { line } = await expectBackoff(ctx, url);
  assert.match(line, /HTTP 500/);
});

bad("an HTTP/2 server answering HTML", async (ctx) => {
  const url = await listen(
    ctx,
    h2Server((s) => {
      s.respond({ ":status": 200, "content-type": "text/html" });
      s.end("<html>hello</html>");
    }),
  );
  const { line } = await expectBackoff(ctx, url);
  assert.match(line, /unsupported content type text\/html/);
});

bad("an HTTP/2 server answering gRPC garbage: a bogus frame length, bad protobuf, no status", async (ctx) => {
  const answers: Array<[string, (s: http2.ServerHttp2Stream) => void, RegExp]> = [
    [
      "bogus length",
      (s) => {
        s.respond({ ":status": 200, "content-type": "application/grpc" });
        s.end(Buffer.from([0x7f, 0xff, 0xff, 0xff, 0xff, 1, 2, 3]));
      },
      /larger than configured readMaxBytes 4194304/,
    ],
    [
      "bad protobuf",
      (s) => {
        s.respond({ ":status": 200, "content-type": "application/grpc" });
        s.end(Buffer.from([0, 0, 0, 0, 4, 0xff, 0xff, 0xff, 0xff]));
      },
      /premature EOF|invalid|parse/i,
    ],
    [
      "no status",
      (s) => {
        s.respond({ ":status": 200, "content-type": "application/grpc" });
        s.end();
      },
      /missing status/,
    ],
  ];
  for (const [name, answer, expected] of answers) {
    const url = await listen(ctx, h2Server(answer));
    const { line } = await expectBackoff(ctx, url, 3);
    assert.match(line, expected, name);
  }
});

bad("a stream message over 4 MiB is refused and logged; the next stream works", async (ctx) => {
  const server = await startGrpcJsServer();
  ctx.closables.push(server);
  const { bridge, logger, handler } = ctx.make(server.url);
  bridge.start();
  await server.waitForStreams(1);
  server.emitEvent({ eventType: 1, projectId: "huge", reason: "x".repeat(5 * 1024 * 1024) });
  await eventually("failure", () => bridge.status().counters.streamFailures === 1);
  assert.is(bridge.status().lastError?.code, "resource_exhausted");
  assert.match(failureLine(logger.lines), /larger than configured readMaxBytes 4194304/);
  await eventually("reconnected", () => server.stats().openStreams === 1 && server.stats().streamsOpened === 2);
  server.emitEvent({ eventType: 1, projectId: "huge-metadata", metadata: { blob: "y".repeat(4 * 1024 * 1024 + 10) } });
  await eventually("second failure", () => bridge.status().counters.streamFailures === 2);
  await eventually("reconnected again", () => server.stats().openStreams === 1 && server.stats().streamsOpened === 3);
  server.removeProject("small");
  await eventually("a normal removal still arrives", () => handler.ids().includes("small"));
  assert.not.ok(handler.ids().includes("huge"));
});

bad("a heartbeat answer over 4 MiB fails the heartbeat only", async (ctx) => {
  const server = await startGrpcJsServer();
  ctx.closables.push(server);
  server.setSyncResponder(() => ({
    removed: Array.from({ length: 150_000 }, (_, i) => `project-with-a-long-id-${i}`),
    unknown: [],
    serverTimeUnixMs: "0",
  }));
  const tracker = new SessionTracker();
  tracker.connect("x");
  const { bridge, logger, handler } = ctx.make(server.url, { tracker });
  bridge.start();
  await eventually("sync failure", () => bridge.status().counters.syncFailures >= 1);
  const line = logger.at("warn").find((l) => l.msg === "heartbeat failed");
  assert.ok(line, "logged");
  assert.match(line!.text, /resource_exhausted/);
  assert.is(handler.calls.length, 0);
  assert.is(bridge.status().counters.streamFailures, 0, "the stream is untouched");
});

bad("a server that ends every stream cleanly at once: backoff, not a spin (real time)", async (ctx) => {
  const server = await startGrpcJsServer();
  ctx.closables.push(server);
  server.setEndStreamsAtOnce(true);
  const timing = { ...fastTiming, backoffMinMs: 50, backoffMaxMs: 400 };
  const { bridge, logger } = ctx.make(server.url, { timing });
  bridge.start();
  // Waits of 50, 100, 200, 400 … ms, each at least ×0.8: the fifth end cannot come before the shortest four waits.
  const ends = 5;
  await eventually("the first clean end", () => bridge.status().counters.streamEnds >= 1, 5000);
  const firstEndAt = performance.now();
  await eventually(`${ends} clean ends`, () => bridge.status().counters.streamEnds >= ends, 5000);
  const windowMs = performance.now() - firstEndAt;
  let leastMs = 0;
  for (let a = 1; a < ends; a++) leastMs += backoffDelayMs(a, { ...defaultBridgeTiming, ...timing }, 0);
  assert.ok(windowMs >= leastMs - 10, `${ends} clean ends within ${windowMs.toFixed(0)} ms (backoff needs at least ${leastMs} ms)`);
  assert.is(server.stats().streamsOpened, ends + (bridge.status().state === "backoff" ? 0 : 1));
  assert.ok(logger.at("warn").some((l) => /ended the ProjectEvents stream/.test(l.msg ?? "")));
  console.log(`# clean end at once: ${ends} attempts in ${windowMs.toFixed(0)} ms of real time (backoff 50..400 ms)`);
});

bad("a server that ends every stream cleanly at once: backoff, not a spin (10 simulated minutes, default timings)", async () => {
  const clock = new SimulatedClock();
  let calls = 0;
  const client: EventsClient = {
    projectEvents: () => {
      calls++;
      return (async function* () {})();
    },
    syncProjectState: () => Promise.reject(new Error("not in this test")),
  };
  const bridge = createBridge({ registry: new HandlerRegistry(), client, clock, random: () => 0.5, env: {}, logger: capturingLogger() });
  bridge.start();
  const settle = async () => {
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  };
  await settle();
  for (let t = 0; t < 600_000; t += 500) {
    clock.increment(500);
    await settle();
  }
  await bridge.stop();
  // Waits of 1, 2, 4, 8, 16, 32 s, then 60 s each: 15 calls in 600 s (plus the first).
  console.log(`# clean end at once: ${calls} calls in 10 simulated minutes with the default backoff`);
  assert.ok(calls >= 14 && calls <= 17, `${calls} calls`);
});

bad.run();
