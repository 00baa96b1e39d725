import { suite } from "uvu";
import * as assert from "uvu/assert";
import { request } from "node:http";
import { connect, type Socket } from "node:net";
import type { BridgeStatus, ConnectionState } from "../../src/bridge-status.js";
import { healthOf, startHealthServer, type HealthServer } from "../../src/health/health-server.js";
import { createPrometheusMetrics, prometheusName } from "../../src/health/prometheus-metrics.js";

interface Ctx {
  servers: HealthServer[];
}

const health = suite<Ctx>("health endpoint and Prometheus exposition (run --health-port)");

health.before.each((ctx) => {
  ctx.servers = [];
});

health.after.each(async (ctx) => {
  await Promise.all(ctx.servers.map((s) => s.close()));
});

function statusOf(state: ConnectionState, lastErrorCode?: string, idleReason: BridgeStatus["idleReason"] = null): BridgeStatus {
  return {
    state,
    idleReason,
    heartbeat: "waiting",
    attempt: 0,
    lastError: lastErrorCode === undefined ? null : ({ code: lastErrorCode, message: "x" } as BridgeStatus["lastError"]),
    clientId: "c",
    server: "http://127.0.0.1:1",
    counters: {} as BridgeStatus["counters"],
    dispatch: {} as BridgeStatus["dispatch"],
    timestamps: {},
  };
}

function call(url: string, method = "GET", host?: string): Promise<{ status: number; body: string; type: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, agent: false, ...(host === undefined ? {} : { headers: { host } }) }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body, type: String(res.headers["content-type"]) }));
    });
    req.on("error", reject);
    req.end();
  });
}

health(
  "healthy while streaming, connecting or backing off from a transient error; not when idle, stopping, stopped or failing on auth",
  () => {
    const cases: Array<[ConnectionState, string | undefined, boolean]> = [
      ["streaming", undefined, true],
      ["streaming", "unauthenticated", true],
      ["connecting", undefined, true],
      ["backoff", "unavailable", true],
      ["backoff", "deadline_exceeded", true],
      ["backoff", "unauthenticated", false],
      ["connecting", "permission_denied", false],
      ["backoff", "unimplemented", false],
      ["idle", undefined, false],
      ["idle", "insecure_token", false],
      ["stopping", undefined, false],
      ["stopped", undefined, false],
    ];
    for (const [state, code, healthy] of cases) assert.is(healthOf(statusOf(state, code)).healthy, healthy, `${state} ${code}`);
    assert.match(healthOf(statusOf("idle", "invalid_config")).reason, "refused to start: invalid_config");
    assert.is(
      healthOf(statusOf("idle", "invalid_config", "insecure_token")).reason,
      "refused to start: insecure_token",
      "idleReason names why",
    );
    assert.is(healthOf(statusOf("idle", undefined, "no_url")).healthy, false);
  },
);

health("serves /healthz with 200 or 503 and the status as JSON, on loopback by default; 404 and 405 otherwise", async (ctx) => {
  let state: ConnectionState = "streaming";
  const server = await startHealthServer({ port: 0, status: () => statusOf(state) });
  ctx.servers.push(server);
  assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  const ok = await call(`${server.url}/healthz`);
  assert.is(ok.status, 200);
  assert.is(ok.type, "application/json");
  assert.equal(JSON.parse(ok.body), { healthy: true, reason: "streaming", status: statusOf("streaming") });
  state = "stopped";
  const down = await call(`${server.url}/healthz?verbose=1`);
  assert.is(down.status, 503);
  assert.is((JSON.parse(down.body) as { healthy: boolean }).healthy, false);
  assert.is((await call(`${server.url}/metrics`)).status, 404, "no collector given");
  assert.is((await call(`${server.url}/healthz`, "POST")).status, 405);
  await server.close();
  await server.close();
});

health("a port in use is a BridgeError that names it", async (ctx) => {
  const first = await startHealthServer({ port: 0, status: () => statusOf("streaming") });
  ctx.servers.push(first);
  const err = await startHealthServer({ port: first.port, status: () => statusOf("streaming") }).catch((e: Error) => e);
  assert.instance(err, Error);
  assert.match((err as Error).message, /EADDRINUSE/);
});

health(
  "without @opentelemetry/sdk-metrics /healthz still answers and /metrics answers 501 naming the package, logged once",
  async (ctx) => {
    const metrics = await createPrometheusMetrics({ load: () => import("@opentelemetry/no-such-sdk" as string) });
    assert.match(String(metrics.unavailable?.message), /failed_precondition/);
    assert.match(String(metrics.unavailable?.message), "npm install @opentelemetry/sdk-metrics");
    metrics.meterProvider.getMeter("m").createCounter("c").add(1);
    const warned: string[] = [];
    const logger = { debug() {}, info() {}, warn: (_: object, msg?: string) => warned.push(String(msg)), error() {} };
    const server = await startHealthServer({ port: 0, status: () => statusOf("streaming"), metrics: metrics.collect, logger });
    ctx.servers.push(server);
    assert.is((await call(`${server.url}/healthz`)).status, 200);
    const scraped = await call(`${server.url}/metrics`);
    assert.is(scraped.status, 501);
    assert.match(scraped.body, "npm install @opentelemetry/sdk-metrics");
    assert.is((await call(`${server.url}/metrics`)).status, 501);
    assert.is(warned.length, 1);
    assert.match(warned[0]!, "@opentelemetry/sdk-metrics");
    const wrong = await createPrometheusMetrics({ load: async () => ({}) });
    assert.match(String(wrong.unavailable?.message), "@opentelemetry/sdk-metrics");
    await metrics.shutdown();
  },
);

health("refuses a Host header that is not loopback, an IP literal or the bound host with 403 (DNS rebinding)", async (ctx) => {
  const server = await startHealthServer({ port: 0, status: () => statusOf("streaming"), allowedHosts: ["sidecar.internal"] });
  ctx.servers.push(server);
  const p = server.port;
  for (const host of [
    `127.0.0.1:${p}`,
    `localhost:${p}`,
    `LOCALHOST:${p}`,
    `[::1]:${p}`,
    `10.1.2.3:${p}`,
    `[fd00::1]:${p}`,
    `sidecar.internal:${p}`,
  ]) {
    assert.is((await call(`${server.url}/healthz`, "GET", host)).status, 200, host);
  }
  for (const host of [
    `evil.example:${p}`,
    `localhost.evil.example:${p}`,
    `127.0.0.1.nip.io:${p}`,
    `localhost:${p + 1}`,
    "localhost",
    `10.1.2:${p}`,
    `[fd00::zz]:${p}`,
  ]) {
    const answer = await call(`${server.url}/metrics`, "GET", host);
    assert.is(answer.status, 403, host);
    assert.not.match(answer.body, "clientId");
  }
  assert.is(server.stats().hostRefused, 7);
});

/** Opens a raw TCP connection and resolves once connected. */
function rawSocket(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: "127.0.0.1" }, () => resolve(socket));
    socket.on("error", reject);
  });
}

health("closes a connection whose headers trickle in (slowloris) within about a second", async (ctx) => {
  const server = await startHealthServer({ port: 0, status: () => statusOf("streaming") });
  ctx.servers.push(server);
  const socket = await rawSocket(server.port);
  socket.on("error", () => {});
  const startedMs = performance.now();
  socket.write(`GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\n`);
  const trickle = setInterval(() => socket.write("x-slow: 1\r\n"), 100);
  const closed = await new Promise<boolean>((resolve) => {
    const giveUp = setTimeout(() => resolve(false), 3000);
    socket.once("close", () => {
      clearTimeout(giveUp);
      resolve(true);
    });
  });
  clearInterval(trickle);
  socket.destroy();
  assert.ok(closed, "still open after 3 s");
  assert.ok(performance.now() - startedMs < 2000, `closed after ${Math.round(performance.now() - startedMs)} ms`);
});

health("64 idle connections do not stall /healthz: a fresh probe answers within a second and idle sockets are shed", async (ctx) => {
  const server = await startHealthServer({ port: 0, status: () => statusOf("streaming") });
  ctx.servers.push(server);
  const idle = await Promise.all(Array.from({ length: 64 }, () => rawSocket(server.port)));
  for (const socket of idle) socket.on("error", () => {});
  try {
    for (let probe = 0; probe < 3; probe++) {
      const startedMs = performance.now();
      const answer = await call(`${server.url}/healthz`);
      assert.is(answer.status, 200);
      assert.ok(performance.now() - startedMs < 1000, `probe ${probe} took ${Math.round(performance.now() - startedMs)} ms`);
    }
    assert.ok(server.stats().connectionsShed >= 1, "an idle connection made room");
    assert.ok(server.stats().openConnections <= 64);
  } finally {
    for (const socket of idle) socket.destroy();
  }
});

health("writes counters, gauges and histograms in the Prometheus text format, with escaped labels", async (ctx) => {
  const metrics = await createPrometheusMetrics();
  const meter = metrics.meterProvider.getMeter("t");
  const counter = meter.createCounter("engram.test.calls", { description: "calls\nmade", unit: "{call}" });
  counter.add(2, { "error.type": 'bad "quote" \\ and\nnewline' });
  const updown = meter.createUpDownCounter("engram.test.level");
  updown.add(-3);
  const gauge = meter.createObservableGauge("engram.test.state");
  gauge.addCallback((r) => r.observe(1, { state: "streaming" }));
  const hist = meter.createHistogram("engram.test.latency", { unit: "ms", advice: { explicitBucketBoundaries: [1, 10] } });
  hist.record(0.5);
  hist.record(5);
  hist.record(50);
  const text = await metrics.collect();
  assert.match(text, "# HELP engram_test_calls_total calls\\nmade\n# TYPE engram_test_calls_total counter\n");
  assert.match(text, 'engram_test_calls_total{error_type="bad \\"quote\\" \\\\ and\\nnewline"} 2\n');
  assert.match(text, "# TYPE engram_test_level gauge\nengram_test_level -3\n");
  assert.match(text, 'engram_test_state{state="streaming"} 1\n');
  assert.match(text, "# TYPE engram_test_latency_milliseconds histogram\n");
  assert.match(
    text,
    'engram_test_latency_milliseconds_bucket{le="1"} 1\nengram_test_latency_milliseconds_bucket{le="10"} 2\nengram_test_latency_milliseconds_bucket{le="+Inf"} 3\n',
  );
  assert.match(text, "engram_test_latency_milliseconds_sum 55.5\nengram_test_latency_milliseconds_count 3\n");
  for (const line of text.trimEnd().split("\n"))
    assert.match(line, /^(# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .*|[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? -?[0-9.e+]+|.*\+Inf"\} \d+)$/, line);
  assert.is(prometheusName("9lives.x-y"), "_9lives_x_y");

  const server = await startHealthServer({ port: 0, status: () => statusOf("streaming"), metrics: metrics.collect });
  ctx.servers.push(server);
  const scraped = await call(`${server.url}/metrics`);
  assert.is(scraped.status, 200);
  assert.is(scraped.type, "text/plain; version=0.0.4; charset=utf-8");
  assert.match(scraped.body, "engram_test_calls_total");
  await metrics.shutdown();
});

health.run();
