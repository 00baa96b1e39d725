/**
 * Connection events for embedders (issue 22 item 2): bridge.on("connection"),
 * bridge.changes() and bridge.ready(), on an injected client and a
 * simulated clock, plus the log lines the policy writes from the same
 * changes (one info line per change, item 2) and from the heartbeat's
 * `unknown` answer (item 4).
 */
import { create } from "@bufbuild/protobuf";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { SimulatedClock } from "xstate";
import { CONNECTION_CHANGES_BUFFER, createBridgeConnectionEvents } from "../../src/bridge-connection-events.js";
import { ProjectEventSchema, ProjectEventType, SyncProjectStateResponseSchema } from "../../src/gen/engram/v1/engram_pb.js";
import {
  type Bridge,
  type BridgeOptions,
  type ConnectionChange,
  createBridge,
  type EventsClient,
  HandlerRegistry,
} from "../../src/index.js";
import { logConnectionStates } from "../../src/cli/state-log.js";
import { noopLogger } from "../../src/logger.js";
import { capturingLogger, type CapturingLogger, eventually } from "../helpers/e2e.js";

interface Ctx {
  clock: SimulatedClock;
  logger: CapturingLogger;
  bridge: Bridge | undefined;
}

const events = suite<Ctx>("connection events");

events.before.each((ctx) => {
  ctx.clock = new SimulatedClock();
  ctx.logger = capturingLogger();
  ctx.bridge = undefined;
});

events.after.each(async (ctx) => {
  const stopping = ctx.bridge?.stop();
  ctx.clock.increment(60_000);
  await stopping?.catch(() => {});
});

/** A stream that opens (headers at once) and then stays open until aborted. */
async function* openUntilAborted(opts: { signal: AbortSignal; onHeader?: (h: Headers) => void }): AsyncIterable<never> {
  opts.onHeader?.(new Headers());
  await new Promise((_, reject) => opts.signal.addEventListener("abort", () => reject(opts.signal.reason), { once: true }));
}

/** A stream that fails with UNAVAILABLE before it opens. */
async function* refused(): AsyncIterable<never> {
  yield* [];
  throw Object.assign(new Error("connection refused"), { code: 14 });
}

/** A client whose stream fails on the opens listed in `failing` (1-based) and otherwise stays open. */
function client(options: { failing?: number[]; unknown?: string[]; syncs?: { count: number } } = {}): EventsClient {
  let opens = 0;
  return {
    projectEvents(_req, opts) {
      opens += 1;
      return options.failing?.includes(opens) ? refused() : openUntilAborted(opts);
    },
    syncProjectState() {
      if (options.syncs) options.syncs.count += 1;
      return Promise.resolve(create(SyncProjectStateResponseSchema, { serverTimeUnixMs: 0n, unknown: options.unknown ?? [] }));
    },
  };
}

function make(ctx: Ctx, c: EventsClient, extra: Partial<BridgeOptions> = {}): Bridge {
  ctx.bridge = createBridge({
    client: c,
    registry: new HandlerRegistry(),
    clock: ctx.clock,
    logger: ctx.logger,
    env: {},
    random: () => 0.5,
    timing: { backoffMinMs: 100, openConfirmMs: 10 },
    ...extra,
  });
  return ctx.bridge;
}

const brief = (c: ConnectionChange) => ({
  state: c.state,
  previous: c.previous,
  attempt: c.attempt,
  ...(c.error ? { code: c.error.code } : {}),
  ...(c.retryInMs !== undefined ? { retryInMs: c.retryInMs } : {}),
});

events("on('connection') hears the failure with its error and wait, and the recovery", async (ctx) => {
  const bridge = make(ctx, client({ failing: [1] }));
  const seen: ConnectionChange[] = [];
  bridge.on("connection", (c) => void seen.push(c));
  bridge.start();
  await eventually("in backoff", () => seen.some((c) => c.state === "backoff"));
  ctx.clock.increment(100);
  await eventually("streaming again", () => seen.some((c) => c.state === "streaming"));
  assert.equal(seen.map(brief), [
    { state: "connecting", previous: "idle", attempt: 0 },
    { state: "backoff", previous: "connecting", attempt: 1, code: "unavailable", retryInMs: 100 },
    { state: "connecting", previous: "backoff", attempt: 1 },
    { state: "streaming", previous: "connecting", attempt: 1 },
  ]);
  assert.is(seen[1]?.atMs, 0, "atMs is on the bridge clock");
  assert.is(seen[3]?.atMs, 100);
});

events("the log policy writes one info line per connection change, with err and retryInMs in backoff", async (ctx) => {
  const bridge = make(ctx, client({ failing: [1] }));
  bridge.start();
  await eventually("in backoff", () => bridge.status().state === "backoff");
  ctx.clock.increment(100);
  await eventually("streaming again", () => bridge.status().state === "streaming");
  const lines = ctx.logger.at("info").filter((l) => l.msg?.startsWith("connection "));
  assert.equal(
    lines.map((l) => l.msg),
    ["connection connecting", "connection backoff", "connection connecting", "connection streaming"],
  );
  const backoff = lines[1]?.obj as { state: string; previous: string; attempt: number; retryInMs: number; err: { code: string } };
  assert.equal([backoff.state, backoff.previous, backoff.attempt, backoff.retryInMs], ["backoff", "connecting", 1, 100]);
  assert.is(backoff.err.code, "unavailable");
  assert.instance(backoff.err, Error, "a real Error under err (item 8)");
});

events("a listener that throws, rejects or never settles does not hurt the bridge, and is logged once", async (ctx) => {
  const bridge = make(ctx, client({ failing: [1] }));
  let calls = 0;
  bridge.on("connection", () => {
    calls += 1;
    throw new Error("listener bug");
  });
  bridge.on("connection", () => Promise.reject(new Error("async listener bug")));
  bridge.on("connection", () => new Promise<void>(() => {}));
  const heard: string[] = [];
  bridge.on("connection", (c) => void heard.push(c.state));
  bridge.start();
  await eventually("in backoff", () => bridge.status().state === "backoff");
  ctx.clock.increment(100);
  await eventually("streaming again", () => bridge.status().state === "streaming");
  await eventually("every change heard", () => heard.length === 4);
  assert.is(calls, 4, "a throwing listener is still called for every change");
  const complaints = ctx.logger.at("warn").filter((l) => /connection listener failed/.test(l.msg ?? ""));
  assert.is(complaints.length, 2, "once per failing listener");
});

events("the function on() returns unsubscribes", async (ctx) => {
  const bridge = make(ctx, client());
  const heard: string[] = [];
  const off = bridge.on("connection", (c) => void heard.push(c.state));
  bridge.start();
  await eventually("streaming", () => bridge.status().state === "streaming");
  await eventually("heard streaming", () => heard.includes("streaming"));
  off();
  const stopping = bridge.stop();
  ctx.clock.increment(10_000);
  await stopping;
  await Promise.resolve();
  assert.equal(heard, ["connecting", "streaming"]);
});

events("changes() yields each change and ends after stopped", async (ctx) => {
  const bridge = make(ctx, client());
  const got: string[] = [];
  const loop = (async () => {
    for await (const c of bridge.changes()) got.push(c.state);
  })();
  bridge.start();
  await eventually("streaming", () => bridge.status().state === "streaming");
  const stopping = bridge.stop();
  ctx.clock.increment(10_000);
  await stopping;
  await loop;
  assert.equal(got, ["connecting", "streaming", "stopping", "stopped"]);
});

events("changes(signal) ends when the signal aborts", async (ctx) => {
  const bridge = make(ctx, client());
  const ac = new AbortController();
  const iterator = bridge.changes(ac.signal);
  const next = iterator.next();
  ac.abort();
  assert.equal(await next, { value: undefined, done: true });
  bridge.start();
  await eventually("streaming", () => bridge.status().state === "streaming");
  assert.equal(await iterator.next(), { value: undefined, done: true });
});

events("a changes() consumer that never reads holds at most the latest CONNECTION_CHANGES_BUFFER changes", async () => {
  let t = 0;
  const conn = createBridgeConnectionEvents({ now: () => t, retryInMs: () => 5, logger: noopLogger });
  const iterator = conn.changes();
  const states = ["connecting", "backoff"] as const;
  for (let i = 0; i < 1000; i++) {
    t = i;
    conn.changed(states[i % 2] as (typeof states)[number], { attempt: i, lastError: null });
  }
  conn.stopped();
  // Let the microtask deliveries land: 1001 changes, none read yet.
  await new Promise((r) => setTimeout(r, 0));
  const got: ConnectionChange[] = [];
  for await (const c of { [Symbol.asyncIterator]: () => iterator }) got.push(c);
  assert.is(got.length, CONNECTION_CHANGES_BUFFER, "the oldest are dropped");
  assert.is(got[0]?.attempt, 1000 - CONNECTION_CHANGES_BUFFER + 1, "the latest are kept, in order");
  assert.is(got[got.length - 1]?.state, "stopped", "the stopped change is last, and ends the iteration");
});

events("ready() resolves once streaming and the first heartbeat are done, and at once afterwards", async (ctx) => {
  const syncs = { count: 0 };
  const bridge = make(ctx, client({ syncs }));
  let resolved = false;
  const ready = bridge.ready().then(() => {
    resolved = true;
  });
  await Promise.resolve();
  assert.not.ok(resolved, "not before start()");
  bridge.start();
  await ready;
  assert.is(bridge.status().state, "streaming");
  assert.is(syncs.count >= 1, true, "a heartbeat completed");
  assert.ok(bridge.status().timestamps.lastSyncAtMs !== undefined);
  await bridge.ready();
});

events("ready() waits through failures, and rejects on stop or when its signal aborts", async (ctx) => {
  const bridge = make(ctx, client({ failing: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] }));
  bridge.start();
  const ac = new AbortController();
  const aborted = bridge.ready(ac.signal);
  const stopped = bridge.ready();
  await eventually("in backoff", () => bridge.status().state === "backoff");
  ac.abort(new Error("gave up"));
  await aborted.then(
    () => assert.unreachable("resolved"),
    (e: Error) => assert.is(e.message, "gave up"),
  );
  const stopping = bridge.stop();
  ctx.clock.increment(10_000);
  await stopping;
  await stopped.then(
    () => assert.unreachable("resolved"),
    (e: { code?: string }) => assert.is(e.code, "stopped"),
  );
  await bridge.ready().then(
    () => assert.unreachable("resolved"),
    (e: { code?: string }) => assert.is(e.code, "stopped", "after stop too"),
  );
});

events("ready() rejects with the configuration error when start() stays idle", async (ctx) => {
  ctx.bridge = createBridge({ registry: new HandlerRegistry(), logger: ctx.logger, env: {}, clock: ctx.clock });
  const ready = ctx.bridge.ready();
  ctx.bridge.start();
  await ready.then(
    () => assert.unreachable("resolved"),
    (e: { code?: string }) => assert.is(e.code, "invalid_config"),
  );
});

events("the server's unknown ids are logged once at info with a count and a few ids, then at debug, never at warn", async (ctx) => {
  const unknown = Array.from({ length: 12 }, (_, i) => `quiet-${i}`);
  const bridge = make(ctx, client({ unknown }), { timing: { backoffMinMs: 100, openConfirmMs: 10, heartbeatMs: 1000 } });
  bridge.start();
  await eventually("first heartbeat", () => bridge.status().counters.syncs >= 1);
  for (let i = 0; i < 3; i++) {
    const before = bridge.status().counters.syncs;
    ctx.clock.increment(2000);
    await eventually("another heartbeat", () => bridge.status().counters.syncs > before);
  }
  const about = (level: "debug" | "info" | "warn") => ctx.logger.at(level).filter((l) => /unknown/.test(l.msg ?? ""));
  assert.is(about("warn").length, 0, "no warn");
  assert.is(about("info").length, 1, "one info line");
  assert.equal(about("info")[0]?.obj, { count: 12, preview: unknown.slice(0, 5) });
  assert.ok(about("debug").filter((l) => "preview" in l.obj).length >= 3, "later heartbeats at debug");
});

events("the sidecar's connection log: one 'bridge ready' line after the first heartbeat, on the public ready()", async (ctx) => {
  const bridge = make(ctx, client({ failing: [1] }));
  const sidecarLog = capturingLogger();
  logConnectionStates(bridge, sidecarLog);
  bridge.start();
  await eventually("in backoff", () => bridge.status().state === "backoff");
  ctx.clock.increment(100);
  await bridge.ready();
  await eventually("the ready line", () => sidecarLog.lines.length > 0);
  assert.equal(
    sidecarLog.lines.map((l) => [l.level, l.msg]),
    [["info", "bridge ready: streaming and synced once"]],
  );
  assert.is((sidecarLog.lines[0]?.obj as { attempt?: number } | undefined)?.attempt, 1);
});

events("the sidecar's connection log stops with the function it returns", async (ctx) => {
  const bridge = make(ctx, client());
  const sidecarLog = capturingLogger();
  logConnectionStates(bridge, sidecarLog)();
  bridge.start();
  await bridge.ready();
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(sidecarLog.lines, []);
});

events("a stream removal of a project nobody tracks reaches every handler (README: Writing a handler)", async (ctx) => {
  const registry = new HandlerRegistry();
  const heard: string[] = [];
  registry.register({ name: "a", onProjectRemoved: (id) => void heard.push(`a:${id}`) });
  registry.register({ name: "b", onProjectRemoved: (id) => void heard.push(`b:${id}`) });
  const bridge = make(
    ctx,
    {
      async *projectEvents(_req, opts) {
        opts.onHeader?.(new Headers());
        yield create(ProjectEventSchema, {
          eventId: "1",
          eventType: ProjectEventType.REMOVED,
          projectId: "never-tracked",
          reason: "deleted",
        });
        await new Promise((_, reject) => opts.signal.addEventListener("abort", () => reject(opts.signal.reason), { once: true }));
      },
      syncProjectState: () => Promise.resolve(create(SyncProjectStateResponseSchema, { serverTimeUnixMs: 0n })),
    },
    { registry, tracker: { connectedProjectIds: () => ["tracked"] } },
  );
  bridge.start();
  await eventually("both handlers heard it", () => heard.length === 2);
  assert.equal(heard, ["a:never-tracked", "b:never-tracked"]);
});

events.run();
