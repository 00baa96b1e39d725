/**
 * Options fuzzing for every timing field (issue 10 item 9): arbitrary
 * numbers (and a few non-numbers) for each, and the bridge either refuses
 * them with a config error that names the field, the value and the allowed
 * range, or every timer it then arms, through failures, backoff, streaming,
 * heartbeats, sync deadlines and stop(), lies within the documented bounds
 * (at most 2^31−1 ms, Node's limit; never negative or NaN).
 * Seeded: PROPERTY_SEED=<n> replays a run.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { Code } from "@connectrpc/connect";
import { createBridge, type Bridge } from "../../src/bridge.js";
import { BridgeError } from "../../src/errors.js";
import { HandlerRegistry } from "../../src/handler-registry.js";
import { noopLogger } from "../../src/logger.js";
import { SessionTracker } from "../../src/session-tracker.js";
import { STREAM_CLOSE_GRACE_MS } from "../../src/stream-close-watch.js";
import { defaultBridgeTiming, MAX_TIMER_MS, timingBounds, type BridgeTiming } from "../../src/timing.js";
import { createCountingClock, settle } from "../helpers/graph-world.js";
import { createScriptedServer } from "../helpers/graph-server.js";
import { seededRandom } from "../helpers/seeded-random.js";

const seed = Number(process.env.PROPERTY_SEED ?? 20_261_130);
const numRuns = Number(process.env.PROPERTY_RUNS ?? 150);
const fields = Object.keys(defaultBridgeTiming) as (keyof BridgeTiming)[];

/** Anything a careless operator or a bad config file could put in a timing field. */
const wildValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.double({ min: -1e10, max: 1e10, noNaN: false }) },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      0,
      -0,
      1,
      0.5,
      0.999_999,
      10,
      99,
      100,
      2 ** 31 - 2,
      2 ** 31 - 1,
      2 ** 31,
      3e9,
      1e300,
      -1,
      Infinity,
      -Infinity,
      NaN,
    ),
  },
  { weight: 1, arbitrary: fc.constantFrom("1000", null, true, {}, []) },
);

/** Mostly plausible values (so many sets are accepted and their timers exercised), sometimes anything. */
const valueFor = (field: keyof BridgeTiming): fc.Arbitrary<unknown> =>
  fc.oneof(
    {
      weight: 6,
      arbitrary:
        field === "backoffJitter"
          ? fc.double({ min: 0, max: 0.99, noNaN: true })
          : field === "backoffMinMs" || field === "heartbeatJitterMs"
            ? fc.integer({ min: 0, max: 5000 })
            : fc.oneof(fc.integer({ min: 5000, max: 200_000 }), fc.integer({ min: 2 ** 31 - 1000, max: 2 ** 31 - 1 })),
    },
    { weight: 1, arbitrary: wildValue },
  );

const timingArb = fc.record(Object.fromEntries(fields.map((f) => [f, valueFor(f)])) as Record<keyof BridgeTiming, fc.Arbitrary<unknown>>, {
  requiredKeys: [],
});

/** Independent of src/timing.ts's checker: the documented ranges, written out. */
function inRange(t: Record<string, unknown>, field: keyof BridgeTiming): boolean {
  const v = t[field];
  if (typeof v !== "number" || !Number.isFinite(v)) return false;
  const n = (k: keyof BridgeTiming) => t[k] as number;
  switch (field) {
    case "backoffJitter":
      return v >= 0 && v < 1;
    case "backoffMaxMs":
      return v >= Math.max(1, n("backoffMinMs")) && v <= MAX_TIMER_MS;
    case "heartbeatJitterMs":
      return v >= 0 && v <= Math.min(n("heartbeatMs"), MAX_TIMER_MS);
    default:
      return v >= timingBounds[field].min && v <= MAX_TIMER_MS;
  }
}

/**
 * DESIGN "Timing defaults", written out: a field not set is derived from a
 * related one that was set to a finite number (issue 22 item 5), within its
 * own range.
 */
function deriveUnset(t: Record<string, unknown>, set: Partial<Record<keyof BridgeTiming, unknown>>): void {
  const given = (k: keyof BridgeTiming) => (typeof set[k] === "number" && Number.isFinite(set[k]) ? (set[k] as number) : undefined);
  const clamp = (k: keyof BridgeTiming, v: number) => Math.min(MAX_TIMER_MS, Math.max(timingBounds[k].min, v));
  const heartbeat = given("heartbeatMs");
  const jitter = given("heartbeatJitterMs");
  const min = given("backoffMinMs");
  const max = given("backoffMaxMs");
  if (set.heartbeatJitterMs === undefined && heartbeat !== undefined)
    t["heartbeatJitterMs"] = clamp("heartbeatJitterMs", Math.floor(heartbeat / 12));
  if (set.heartbeatMs === undefined && jitter !== undefined) t["heartbeatMs"] = clamp("heartbeatMs", Math.max(60_000, jitter));
  if (set.backoffMaxMs === undefined && min !== undefined) t["backoffMaxMs"] = clamp("backoffMaxMs", Math.max(60_000, min));
  if (set.backoffMinMs === undefined && max !== undefined) t["backoffMinMs"] = clamp("backoffMinMs", Math.min(1000, max));
}

/** The longest timer the bridge may arm with `t`, by DESIGN's formulas, clamped to Node's limit. */
function longestTimerMs(t: BridgeTiming): number {
  return Math.min(
    MAX_TIMER_MS,
    Math.max(
      Math.round(t.backoffMaxMs * (1 + t.backoffJitter)),
      Math.round(t.heartbeatMs + t.heartbeatJitterMs),
      t.openConfirmMs,
      t.stableAfterMs,
      t.syncTimeoutMs,
      t.handlerTimeoutMs,
      t.stopTimeoutMs,
      STREAM_CLOSE_GRACE_MS,
    ),
  );
}

const options = suite("timing options");

options("every timing field: a clear config error, or every armed timer within the documented bounds", async () => {
  let accepted = 0;
  await fc.assert(
    fc.asyncProperty(timingArb, fc.integer({ min: 0, max: 2 ** 31 - 1 }), async (overrides, jitterSeed) => {
      const resolved: Record<string, unknown> = { ...defaultBridgeTiming };
      for (const [k, v] of Object.entries(overrides)) if (v !== undefined) resolved[k] = v;
      deriveUnset(resolved, overrides);
      const firstBad = fields.find((f) => !inRange(resolved, f));

      const { clock, sim, nextDue } = createCountingClock();
      const armed: number[] = [];
      const recording = {
        ...clock,
        setTimeout: (fn: (...args: unknown[]) => void, ms: number) => {
          armed.push(ms);
          return clock.setTimeout(fn, ms);
        },
      };
      let syncs = 0;
      const server = createScriptedServer({
        now: () => sim.now(),
        // The first opens fail (backoff grows), later ones stay open with headers.
        onStream: (call) => (call.index < 6 ? call.fail(Code.Unavailable) : call.sendHeaders()),
        // Every third sync hangs until its deadline; the others are answered.
        onSync: (call) => (++syncs % 3 === 0 ? undefined : call.answer({ removed: [] })),
      });
      const tracker = new SessionTracker();
      tracker.connect("p");
      let bridge: Bridge | undefined;
      try {
        bridge = createBridge({
          registry: new HandlerRegistry(),
          tracker,
          client: server.client,
          clock: recording,
          random: seededRandom(jitterSeed),
          logger: noopLogger,
          env: {},
          timing: overrides as Partial<BridgeTiming>,
        });
      } catch (error) {
        assert.ok(firstBad !== undefined, `refused a valid timing ${JSON.stringify(resolved)}: ${String(error)}`);
        assert.ok(error instanceof BridgeError, "a BridgeError");
        assert.is((error as BridgeError).code, "invalid_config");
        const message = (error as BridgeError).rawMessage;
        const named = /^timing\.(\w+) must be a number in [[(].+[\])] \(ms\), got (.+)$/.exec(message);
        assert.ok(named, `the message names field, range and value: ${message}`);
        const field = named![1] as keyof BridgeTiming;
        assert.not.ok(inRange(resolved, field), `${field} really is out of range: ${message}`);
        const shown = resolved[field];
        if (typeof shown === "number") assert.ok(named![2]!.startsWith(String(shown).slice(0, 20)), `the value is shown: ${message}`);
        return;
      }
      accepted += 1;
      assert.is(firstBad, undefined, `accepted ${String(firstBad)} = ${String(firstBad && resolved[firstBad])}`);
      const t = resolved as unknown as BridgeTiming;
      const longest = longestTimerMs(t);

      bridge.start();
      for (let step = 0; step < 30; step++) {
        await settle();
        const due = nextDue();
        if (due === undefined) break;
        sim.increment(Math.max(0, due - sim.now()));
      }
      const stopped = bridge.stop();
      for (let step = 0; step < 5; step++) {
        await settle();
        const due = nextDue();
        if (due === undefined) break;
        sim.increment(Math.max(0, due - sim.now()));
      }
      await stopped;
      assert.ok(armed.length > 0, "the bridge armed timers");
      for (const ms of armed) {
        assert.ok(Number.isFinite(ms) && ms >= 0, `a timer of ${ms} ms`);
        assert.ok(ms <= MAX_TIMER_MS, `a timer of ${ms} ms exceeds Node's limit`);
        assert.ok(ms <= longest, `a timer of ${ms} ms exceeds the documented bound ${longest} ms for ${JSON.stringify(t)}`);
      }
    }),
    { seed, numRuns, endOnFailure: true },
  );
  console.log(`# ${numRuns} timing option sets, ${accepted} accepted and run, the rest refused`);
  assert.ok(accepted >= numRuns / 8, `enough accepted sets to exercise the timers (${accepted})`);
});

options("the review's cases: heartbeatMs 3e9 and a backoffMaxMs that overflows after jitter", () => {
  const make = (timing: Partial<BridgeTiming>) => () =>
    createBridge({ registry: new HandlerRegistry(), logger: noopLogger, env: {}, timing });
  assert.throws(make({ heartbeatMs: 3e9 }), /timing\.heartbeatMs must be a number in \[100, 2147483647\] \(ms\), got 3000000000/);
  assert.throws(make({ backoffJitter: 1 }), /timing\.backoffJitter must be a number in \[0, 1\) \(ms\), got 1/);
  assert.throws(make({ syncTimeoutMs: Number.NaN }), /timing\.syncTimeoutMs .* got NaN/);
  assert.throws(make({ heartbeatMS: 1000 } as Partial<BridgeTiming>), /timing\.heartbeatMS is not a timing option/);
  // Allowed, and every computed wait is clamped after jitter.
  createBridge({
    registry: new HandlerRegistry(),
    logger: noopLogger,
    env: {},
    timing: { backoffMaxMs: MAX_TIMER_MS, backoffJitter: 0.5 },
  });
});

options.run();
