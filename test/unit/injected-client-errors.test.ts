/**
 * An injected EventsClient signals a GOAWAY and its own deadline with the
 * error classes the package entry exports (issue 13 item 4): thrown from the
 * public import, they take the same paths as the built-in client's.
 */
import { create } from "@bufbuild/protobuf";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { SimulatedClock } from "xstate";
import { type SyncProjectStateResponse, SyncProjectStateResponseSchema } from "../../src/gen/engram/v1/engram_pb.js";
import { type Bridge, createBridge, type EventsClient, HandlerRegistry, ServerGoawayError, SyncDeadlineError } from "../../src/index.js";
import { capturingLogger, type CapturingLogger, eventually } from "../helpers/e2e.js";

interface Ctx {
  clock: SimulatedClock;
  logger: CapturingLogger;
  bridge: Bridge | undefined;
}

const injected = suite<Ctx>("injected client errors");

injected.before.each((ctx) => {
  ctx.clock = new SimulatedClock();
  ctx.logger = capturingLogger();
  ctx.bridge = undefined;
});

injected.after.each(async (ctx) => {
  const stopping = ctx.bridge?.stop();
  ctx.clock.increment(60_000);
  await stopping;
});

/** A stream that opens and then stays open until aborted. */
async function* openUntilAborted(opts: { signal: AbortSignal; onHeader?: (h: Headers) => void }): AsyncIterable<never> {
  opts.onHeader?.(new Headers());
  await new Promise((_, reject) => opts.signal.addEventListener("abort", () => reject(opts.signal.reason), { once: true }));
}

function make(ctx: Ctx, client: EventsClient): Bridge {
  ctx.bridge = createBridge({
    client,
    registry: new HandlerRegistry(),
    clock: ctx.clock,
    logger: ctx.logger,
    env: {},
    random: () => 0.5,
    timing: { backoffMinMs: 100, openConfirmMs: 10 },
  });
  return ctx.bridge;
}

const answered = () => Promise.resolve(create(SyncProjectStateResponseSchema, { serverTimeUnixMs: 0n }));

/** A bridge on the test clock tracking `ids` (SYNC_CHUNK_SIZE ids per call) through `client`. */
function makeTracking(ctx: Ctx, ids: readonly string[], client: EventsClient): Bridge {
  ctx.bridge = createBridge({
    client,
    tracker: { connectedProjectIds: () => ids },
    registry: new HandlerRegistry(),
    clock: ctx.clock,
    logger: ctx.logger,
    env: {},
    random: () => 0.5,
  });
  return ctx.bridge;
}

/** A SyncProjectState answer after `ms` on the test clock (never when undefined); the call's abort rejects it. */
function answerAfter(ctx: Ctx, ms: number | undefined, signal: AbortSignal): Promise<SyncProjectStateResponse> {
  return new Promise((resolve, reject) => {
    const t =
      ms === undefined
        ? undefined
        : ctx.clock.setTimeout(() => resolve(create(SyncProjectStateResponseSchema, { serverTimeUnixMs: 0n })), ms);
    signal.addEventListener(
      "abort",
      () => {
        if (t !== undefined) ctx.clock.clearTimeout(t);
        reject(signal.reason);
      },
      { once: true },
    );
  });
}

/** Steps the test clock by `stepMs` (letting the bridge's promises run between steps) until `done` or `steps` ran out. */
async function stepUntil(ctx: Ctx, stepMs: number, steps: number, done: () => boolean): Promise<void> {
  for (let s = 0; s < steps && !done(); s++) {
    ctx.clock.increment(stepMs);
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
  }
}

injected("a stream that throws the exported ServerGoawayError is reopened without counting a failure", async (ctx) => {
  let opens = 0;
  let goaway: (() => void) | undefined;
  const bridge = make(ctx, {
    projectEvents(_req, opts) {
      opens += 1;
      if (opens === 1) {
        return (async function* () {
          opts.onHeader?.(new Headers());
          // The GOAWAY comes once the open proved itself and stayed up stableAfterMs.
          await new Promise<void>((resolve) => (goaway = resolve));
          yield* [];
          throw new ServerGoawayError();
        })();
      }
      return openUntilAborted(opts);
    },
    syncProjectState: answered,
  });
  bridge.start();
  await eventually("streaming", () => bridge.status().state === "streaming");
  ctx.clock.increment(10_000);
  // The server's GOAWAY: the client's stream ends with the exported error.
  goaway?.();
  await eventually("the GOAWAY is seen", () => bridge.status().counters.goaways === 1);
  assert.is(bridge.status().state, "backoff", "a short wait before reopening");
  ctx.clock.increment(100);
  await eventually("reopened", () => opens === 2);
  ctx.clock.increment(10);
  await eventually("streaming again", () => bridge.status().state === "streaming");
  assert.is(bridge.status().counters.streamFailures, 0, "a GOAWAY is not a failure");
  assert.ok(ctx.logger.at("info").some((l) => /GOAWAY/.test(l.msg ?? "")));
});

injected(
  "a heartbeat the client never answers passes the bridge's own deadline: no PING to ask, so the connection is suspect",
  async (ctx) => {
    let syncs = 0;
    let opens = 0;
    const bridge = make(ctx, {
      projectEvents(_req, opts) {
        opens += 1;
        return openUntilAborted(opts);
      },
      syncProjectState(_req, opts) {
        syncs += 1;
        if (syncs > 1) return answered();
        return new Promise((_, reject) => opts.signal.addEventListener("abort", () => reject(opts.signal.reason), { once: true }));
      },
    });
    bridge.start();
    await eventually("the first round in flight", () => syncs === 1 && bridge.status().state === "streaming");
    ctx.clock.increment(10_000);
    await eventually("the heartbeat failed", () => bridge.status().counters.syncFailures === 1);
    assert.is(bridge.status().counters.suspects, 1, "its own deadline, and no way to ask the link, marks the connection suspect");
    ctx.clock.increment(1000);
    await eventually("a fresh stream after the suspect one", () => opens === 2);
  },
);

injected("a late heartbeat on a connection that answers the PING runs on: the stream is kept", async (ctx) => {
  let opens = 0;
  let answer: (() => void) | undefined;
  const bridge = make(ctx, {
    projectEvents(_req, opts) {
      opens += 1;
      return openUntilAborted(opts);
    },
    syncProjectState() {
      return new Promise((resolve) => (answer = () => resolve(create(SyncProjectStateResponseSchema, { serverTimeUnixMs: 0n }))));
    },
    checkConnection: () => Promise.resolve(true),
  });
  bridge.start();
  await eventually("the first round in flight", () => answer !== undefined && bridge.status().state === "streaming");
  ctx.clock.increment(10_000);
  await eventually("the server found slow", () => bridge.status().counters.slowServer === 1);
  assert.is(bridge.status().heartbeat, "syncing", "the round runs on");
  ctx.clock.increment(50_000);
  answer?.();
  await eventually("the late round completes", () => bridge.status().counters.syncs === 1);
  assert.is(bridge.status().counters.syncFailures, 0);
  assert.is(bridge.status().counters.suspects, 0);
  assert.is(opens, 1, "the stream was kept");
});

injected(
  "a heartbeat that rejects with the exported SyncDeadlineError fails the round: only the bridge's own deadline makes the link suspect",
  async (ctx) => {
    let syncs = 0;
    const bridge = make(ctx, {
      projectEvents: (_req, opts) => openUntilAborted(opts),
      syncProjectState() {
        syncs += 1;
        return syncs === 1 ? Promise.reject(new SyncDeadlineError(2000)) : answered();
      },
    });
    bridge.start();
    await eventually("the heartbeat failed", () => bridge.status().counters.syncFailures === 1);
    assert.is(bridge.status().counters.suspects, 0);
    assert.is(bridge.status().state, "streaming");
  },
);

injected(
  "each call of a round runs on at most two periods from its own start, and a stalled one makes the connection suspect (reviews of issue 21)",
  async (ctx) => {
    // 25,000 tracked ids: three chunks. The first is answered late (30 s, after the
    // link answered a PING); the second never is (the link died meanwhile).
    const ids = Array.from({ length: 25_000 }, (_, i) => `p${i}`);
    const calls: number[] = [];
    let opens = 0;
    let answerFirst: (() => void) | undefined;
    const bridge = makeTracking(ctx, ids, {
      projectEvents(_req, opts) {
        opens += 1;
        return openUntilAborted(opts);
      },
      syncProjectState(_req, opts) {
        calls.push(ctx.clock.now());
        return new Promise((resolve, reject) => {
          opts.signal.addEventListener("abort", () => reject(opts.signal.reason), { once: true });
          if (calls.length === 1) answerFirst = () => resolve(create(SyncProjectStateResponseSchema, { serverTimeUnixMs: 0n }));
        });
      },
      checkConnection: () => Promise.resolve(true),
    });
    bridge.start();
    await eventually("the first chunk in flight", () => calls.length === 1 && bridge.status().state === "streaming");
    ctx.clock.increment(10_000);
    await eventually("the server found slow", () => bridge.status().counters.slowServer === 1);
    ctx.clock.increment(20_000);
    answerFirst?.();
    await eventually("the second chunk in flight", () => calls.length === 2);
    const secondAt = calls[1]!;
    // The second chunk is late too (its deadline arms the run-on limit: one
    // step at a time, as xstate's SimulatedClock dates a timer set inside a
    // timer by the end of the increment).
    ctx.clock.increment(10_000);
    await new Promise((r) => setTimeout(r, 20));
    // Short of two periods from its own start (the answered first chunk proved the link): still running on.
    ctx.clock.increment(secondAt + 120_000 - 1 - ctx.clock.now());
    await new Promise((r) => setTimeout(r, 20));
    assert.is(bridge.status().counters.syncFailures, 0);
    ctx.clock.increment(1);
    await eventually("the stalled call gives up at two periods from its start", () => bridge.status().counters.syncFailures === 1);
    assert.is(bridge.status().counters.suspects, 1, "the link that answered long ago may be dead: suspect");
    ctx.clock.increment(2000);
    await eventually("a fresh stream", () => opens === 2);
  },
);

injected(
  "a round of several chunks on a slow but alive server completes, however long its chunks take together (third review of issue 21)",
  async (ctx) => {
    // 30,000 ids: three chunks, each answered after 50 s (150 s in all, past two periods).
    const ids = Array.from({ length: 30_000 }, (_, i) => `p${i}`);
    let calls = 0;
    let opens = 0;
    const bridge = makeTracking(ctx, ids, {
      projectEvents(_req, opts) {
        opens += 1;
        return openUntilAborted(opts);
      },
      syncProjectState(_req, opts) {
        calls += 1;
        return answerAfter(ctx, 50_000, opts.signal);
      },
      checkConnection: () => Promise.resolve(true),
    });
    bridge.start();
    await eventually("streaming", () => bridge.status().state === "streaming");
    await stepUntil(ctx, 1000, 400, () => bridge.status().counters.syncs > 0);
    const { counters } = bridge.status();
    assert.is(counters.syncs, 1, "the round completed");
    assert.is(calls, 3, "each chunk asked once");
    assert.is(counters.syncFailures, 0);
    assert.is(counters.suspects, 0, "a slow server is not a dead link");
    assert.is(opens, 1);
  },
);

injected(
  "a chunk that goes late near the end of a long round still asks the link, and a dead one is suspect (third review of issue 21)",
  async (ctx) => {
    // 13 chunks: the first 12 are answered in time (9.5 s each, deadline 10 s);
    // the 13th, sent at 114 s, never is (the link died).
    const ids = Array.from({ length: 130_000 }, (_, i) => `p${i}`);
    let calls = 0;
    let probes = 0;
    let opens = 0;
    const bridge = makeTracking(ctx, ids, {
      projectEvents(_req, opts) {
        opens += 1;
        return openUntilAborted(opts);
      },
      syncProjectState(_req, opts) {
        calls += 1;
        return answerAfter(ctx, calls < 13 ? 9_500 : undefined, opts.signal);
      },
      checkConnection: () => {
        probes += 1;
        return Promise.resolve(false);
      },
    });
    bridge.start();
    await eventually("streaming", () => bridge.status().state === "streaming");
    await stepUntil(ctx, 100, 1400, () => bridge.status().counters.suspects > 0);
    assert.is(calls, 13);
    assert.is(probes, 1, "the late 13th chunk asked the link");
    assert.is(bridge.status().counters.suspects, 1, "no answer to the PING: suspect");
    assert.ok(ctx.clock.now() <= 114_000 + 10_000 + 5_000 + 200, `found at ${ctx.clock.now()} ms`);
    ctx.clock.increment(2000);
    await eventually("a fresh stream", () => opens === 2);
  },
);

for (const c of [
  // The heartbeat period shorter than the deadline: the run-on limit is at least twice the deadline.
  { name: "a heartbeat period shorter than its deadline", heartbeatMs: 2000, probeAnswers: false },
  // Two periods shorter than the deadline plus the probe's half deadline: the probe still has its time.
  { name: "a run-on limit near the deadline and a probe that never answers", heartbeatMs: 6000, probeAnswers: undefined },
]) {
  injected(`a dead link is still suspect with ${c.name} (second review of issue 21)`, async (ctx) => {
    let opens = 0;
    ctx.bridge = createBridge({
      client: {
        signalsSent: true,
        projectEvents(_req, opts) {
          opens += 1;
          opts.onSent?.();
          return openUntilAborted(opts);
        },
        // A dead link: no sync is ever answered.
        syncProjectState(_req, opts) {
          opts.onSent?.();
          return new Promise((_, reject) => opts.signal.addEventListener("abort", () => reject(opts.signal.reason), { once: true }));
        },
        checkConnection: (opts) =>
          c.probeAnswers === false
            ? Promise.resolve(false)
            : new Promise<boolean>((resolve) => opts.signal.addEventListener("abort", () => resolve(false), { once: true })),
      },
      registry: new HandlerRegistry(),
      clock: ctx.clock,
      logger: ctx.logger,
      env: {},
      random: () => 0.5,
      timing: { heartbeatMs: c.heartbeatMs, heartbeatJitterMs: 0, syncTimeoutMs: 10_000, backoffMinMs: 100 },
    });
    const bridge = ctx.bridge;
    bridge.start();
    await eventually("streaming", () => bridge.status().state === "streaming");
    // Small steps: xstate's SimulatedClock dates a timer set inside a timer by the end of the increment.
    for (let t = 0; t < 30_000 && bridge.status().counters.suspects === 0; t += 250) {
      ctx.clock.increment(250);
      await new Promise((r) => setImmediate(r));
    }
    assert.is(bridge.status().counters.suspects, 1, "the dead link is suspect");
    assert.ok(opens >= 1);
  });
}

injected.run();
