import { suite } from "uvu";
import * as assert from "uvu/assert";
import { metrics } from "@opentelemetry/api";
import { AggregationTemporality, DataPointType, MeterProvider, MetricReader, type MetricData } from "@opentelemetry/sdk-metrics";
import { ProjectEventType } from "../../src/gen/engram/v1/engram_pb.js";
import {
  bridgeMetricNames as names,
  createBridge,
  HandlerRegistry,
  SessionTracker,
  startDevServer,
  type Bridge,
  type DevServer,
} from "../../src/index.js";
import { capturingLogger, eventually, fastTiming, recordingHandler } from "../helpers/e2e.js";

/**
 * A reader the test collects from on demand. Delta temporality: each
 * collection holds what happened since the previous one, and a gauge shows
 * only what its callbacks observed this time.
 */
class CollectingReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.DELTA });
  }
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
  async metricsByName(): Promise<Map<string, MetricData>> {
    const { resourceMetrics, errors } = await this.collect();
    assert.equal(errors, []);
    const out = new Map<string, MetricData>();
    for (const scope of resourceMetrics.scopeMetrics) {
      if (scope.scope.name !== "engram-serverevents") continue;
      for (const m of scope.metrics) out.set(m.descriptor.name, m);
    }
    return out;
  }
}

type Attrs = Record<string, string>;

function matches(pointAttrs: Record<string, unknown>, want: Attrs): boolean {
  return Object.entries(want).every(([k, v]) => pointAttrs[k] === v);
}

/** Sum of a counter's points whose attributes include `want` (0 when the metric has none). */
function counterValue(all: Map<string, MetricData>, name: string, want: Attrs = {}): number {
  const m = all.get(name);
  if (m === undefined) return 0;
  assert.is(m.dataPointType, DataPointType.SUM, `${name} is a counter`);
  let total = 0;
  for (const p of m.dataPoints) if (matches(p.attributes, want)) total += p.value as number;
  return total;
}

function histogram(all: Map<string, MetricData>, name: string, want: Attrs): { count: number; sum: number; max: number } {
  const m = all.get(name);
  assert.ok(m, `${name} recorded`);
  assert.is(m.dataPointType, DataPointType.HISTOGRAM);
  const point = m.dataPoints.find((p) => matches(p.attributes, want));
  assert.ok(point, `${name} has a point for ${JSON.stringify(want)}`);
  const v = point.value as { count: number; sum?: number; max?: number };
  return { count: v.count, sum: v.sum ?? NaN, max: v.max ?? NaN };
}

function gauge(all: Map<string, MetricData>, name: string): Record<string, number> {
  const m = all.get(name);
  const out: Record<string, number> = {};
  if (m === undefined) return out;
  assert.is(m.dataPointType, DataPointType.GAUGE);
  for (const p of m.dataPoints) out[String(p.attributes["state"])] = p.value as number;
  return out;
}

interface Ctx {
  server: DevServer;
  provider: MeterProvider;
  reader: CollectingReader;
  bridges: Bridge[];
}

const test = suite<Ctx>("bridge metrics");

test.before.each(async (ctx) => {
  ctx.server = await startDevServer();
  ctx.reader = new CollectingReader();
  ctx.provider = new MeterProvider({ readers: [ctx.reader] });
  ctx.bridges = [];
});

test.after.each(async (ctx) => {
  await Promise.all(ctx.bridges.map((b) => b.stop()));
  await ctx.server.close();
  await ctx.provider.shutdown();
  metrics.disable();
});

test("a scripted run against the dev server shows in every instrument", async (ctx) => {
  assert.ok(metrics.setGlobalMeterProvider(ctx.provider), "global meter provider installed");
  const registry = new HandlerRegistry();
  const recorder = recordingHandler("recorder");
  registry.register(recorder);
  registry.register({
    name: "thrower",
    onProjectRemoved() {
      throw new Error("this handler always fails");
    },
  });
  registry.register({
    name: "sleeper",
    onProjectRemoved: (projectId) => (projectId === "slow" ? new Promise<void>(() => {}) : undefined),
  });
  const sessions = new SessionTracker();
  sessions.connect("p1");
  sessions.connect("ghost"); // unknown to the server: the heartbeat reports it removed
  const bridge = createBridge({
    registry,
    tracker: sessions,
    serverUrl: ctx.server.url,
    env: {},
    logger: capturingLogger(),
    timing: { ...fastTiming, handlerTimeoutMs: 150 },
    clientId: "metrics",
  });
  ctx.bridges.push(bridge);
  ctx.server.createProject("p1");
  ctx.server.createProject("slow");
  bridge.start();

  // Sync on open: ghost arrives from the heartbeat.
  await eventually("ghost delivered", () => recorder.ids().includes("ghost"));
  await eventually("streaming", () => bridge.status().state === "streaming");
  // Stream: one removal, its duplicate, a non-removal and an empty id.
  ctx.server.removeProject("p1", "gone");
  await eventually("p1 delivered", () => recorder.ids().includes("p1"));
  ctx.server.emitEvent({ eventType: ProjectEventType.REMOVED, projectId: "p1" });
  ctx.server.emitEvent({ eventType: ProjectEventType.CREATED, projectId: "p9" });
  ctx.server.emitEvent({ eventType: ProjectEventType.REMOVED, projectId: "" });
  await eventually("4 events", () => bridge.status().counters.eventsReceived === 4);
  // A heartbeat that fails, then one that reports p1 and ghost again (both duplicates).
  ctx.server.failNextSyncs(1);
  bridge.syncNow();
  await eventually("sync failure", () => bridge.status().counters.syncFailures === 1);
  bridge.syncNow();
  await eventually("second sync", () => bridge.status().counters.syncs === 2);
  // A drop: one stream failure, one reconnect, and the sync on reopen (two more duplicates).
  ctx.server.dropStreams();
  await eventually("reconnected and synced", () => bridge.status().counters.reconnects === 1 && bridge.status().counters.syncs === 3);
  await eventually("streaming again", () => bridge.status().state === "streaming");
  // A removal whose handler hangs past its budget.
  ctx.server.removeProject("slow");
  await eventually(
    "slow dispatched",
    () => bridge.status().counters.handlerTimeouts === 1 && bridge.status().counters.pendingDispatch === 0,
  );

  const status = bridge.status();
  const all = await ctx.reader.metricsByName();
  assert.is(counterValue(all, names.eventsReceived), 5);
  assert.is(counterValue(all, names.eventsReceived), status.counters.eventsReceived);
  assert.is(counterValue(all, names.eventsIgnored, { source: "stream", reason: "not_removed" }), 1);
  assert.is(counterValue(all, names.eventsIgnored, { source: "stream", reason: "empty_project_id" }), 1);
  assert.is(counterValue(all, names.eventsIgnored), status.counters.ignoredEvents);
  assert.is(counterValue(all, names.duplicatesSuppressed, { source: "stream" }), 1);
  assert.is(counterValue(all, names.duplicatesSuppressed, { source: "heartbeat" }), 4);
  assert.is(counterValue(all, names.duplicatesSuppressed), status.counters.duplicatesSuppressed);
  assert.is(counterValue(all, names.removalsDelivered, { source: "stream" }), 2);
  assert.is(counterValue(all, names.removalsDelivered, { source: "heartbeat" }), 1);
  assert.is(counterValue(all, names.handlerErrors, { handler: "thrower" }), 3);
  assert.is(counterValue(all, names.handlerErrors, { handler: "sleeper" }), 0);
  assert.is(counterValue(all, names.handlerTimeouts, { handler: "sleeper" }), 1);
  assert.is(counterValue(all, names.handlerTimeouts), status.counters.handlerTimeouts);
  assert.is(counterValue(all, names.streamFailures, { "error.type": "unavailable" }), 1);
  assert.is(counterValue(all, names.reconnects), 1);
  assert.is(counterValue(all, names.syncCalls), 4);
  assert.is(counterValue(all, names.syncFailures, { "error.type": "unavailable" }), 1);
  assert.is(counterValue(all, names.syncFailures), status.counters.syncFailures);

  const stream = histogram(all, names.deliveryLatency, { source: "stream" });
  const heartbeat = histogram(all, names.deliveryLatency, { source: "heartbeat" });
  assert.is(stream.count, 2);
  assert.is(heartbeat.count, 1);
  // The hanging handler held "slow" for its whole 150 ms budget.
  assert.ok(stream.max >= 140 && stream.max < 2000, `slowest stream delivery ${stream.max} ms`);
  assert.is(all.get(names.deliveryLatency)?.descriptor.unit, "ms");
  console.log(
    `# delivery latency: stream n=${stream.count} max ${stream.max.toFixed(1)} ms; heartbeat n=${heartbeat.count} ${heartbeat.sum.toFixed(2)} ms`,
  );

  assert.equal(gauge(all, names.connectionState), { idle: 0, connecting: 0, streaming: 1, backoff: 0, stopping: 0, stopped: 0 });

  await bridge.stop();
  const after = await ctx.reader.metricsByName();
  assert.equal(gauge(after, names.connectionState), {}, "a stopped bridge no longer observes the gauge");
  assert.is(counterValue(after, names.eventsReceived), 0, "nothing was received since the last collection");
});

test("an injected meterProvider is used without touching the global one", async (ctx) => {
  const registry = new HandlerRegistry();
  const recorder = recordingHandler();
  registry.register(recorder);
  const bridge = createBridge({
    registry,
    serverUrl: ctx.server.url,
    env: {},
    logger: capturingLogger(),
    timing: fastTiming,
    meterProvider: ctx.provider,
  });
  ctx.bridges.push(bridge);
  ctx.server.createProject("a");
  bridge.start();
  await ctx.server.waitForStreams(1);
  await eventually("streaming", () => bridge.status().state === "streaming");
  ctx.server.removeProject("a");
  await eventually("delivered", () => recorder.ids().includes("a") && bridge.status().counters.pendingDispatch === 0);
  const all = await ctx.reader.metricsByName();
  assert.is(counterValue(all, names.removalsDelivered, { source: "stream" }), 1);
  assert.is(gauge(all, names.connectionState)["streaming"], 1);
});

test("without an SDK the bridge records into the no-op meter and still works", async (ctx) => {
  const registry = new HandlerRegistry();
  const recorder = recordingHandler();
  registry.register(recorder);
  const bridge = createBridge({ registry, serverUrl: ctx.server.url, env: {}, logger: capturingLogger(), timing: fastTiming });
  ctx.bridges.push(bridge);
  ctx.server.createProject("b");
  bridge.start();
  await eventually("streaming", () => bridge.status().state === "streaming");
  ctx.server.removeProject("b");
  await eventually("delivered", () => recorder.ids().includes("b"));
  const all = await ctx.reader.metricsByName();
  assert.is(all.size, 0, "nothing reached a provider that was never installed");
});

test.run();
