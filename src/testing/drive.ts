/**
 * Waiting without sleeping. On a SimulatedClock: `advance()` moves time
 * from one timer to the next and lets promise callbacks run after each, as
 * the event loop would; `runUntil()` does the same until a condition holds.
 * On real time (real sockets): `eventually()` polls a condition. `settle()`
 * lets what the last step started run to its end.
 */
import type { SimulatedClock } from "./simulated-clock.js";

/** Turns of the event loop `settle()` waits by default. */
export const SETTLE_TURNS = 3;

/** The most simulated time one advance or runUntil may cover: Node's timer limit (about 24.8 days). */
export const MAX_STEP_MS = 2 ** 31 - 1;

/**
 * Lets promise callbacks, `process.nextTick` callbacks and `setImmediate`
 * hops run: `turns` turns of the event loop (no timer of any clock).
 */
export async function settle(turns = SETTLE_TURNS): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/**
 * Moves `clock` on by `ms`, one timer at a time, settling after each one
 * (and once at the start), so that what a timer starts runs before the next
 * timer fires. Resolves at `clock.now()` = start + ms.
 */
export async function advance(clock: SimulatedClock, ms: number): Promise<void> {
  if (!Number.isFinite(ms) || ms > MAX_STEP_MS)
    throw new RangeError(`advance: ms must be a number in [0, ${MAX_STEP_MS}], got ${String(ms)}`);
  const until = clock.now() + Math.max(0, ms);
  await settle();
  while (clock.fireNext(until)) await settle();
  clock.set(until);
  await settle();
}

export interface RunUntilOptions {
  /** Names the wait in the error. Defaults to "condition". */
  what?: string;
  /** Give up after this much simulated time. Defaults to 60000. */
  timeoutMs?: number;
}

/**
 * Steps `clock` from timer to timer, settling after each, until `check`
 * returns something truthy, and returns it. Throws when `timeoutMs` of
 * simulated time pass first, or when no timer is left and the condition
 * still does not hold (nothing could ever change it).
 */
export async function runUntil<T>(clock: SimulatedClock, check: () => T | undefined | false, options: RunUntilOptions = {}): Promise<T> {
  const { what = "condition", timeoutMs = 60_000 } = options;
  if (!Number.isFinite(timeoutMs) || timeoutMs > MAX_STEP_MS) {
    throw new RangeError(`runUntil: timeoutMs must be a number up to ${MAX_STEP_MS}, got ${String(timeoutMs)}`);
  }
  const deadline = clock.now() + timeoutMs;
  await settle();
  for (;;) {
    const v = check();
    if (v) return v;
    const next = clock.nextDueMs();
    if (next === undefined)
      throw new Error(`runUntil: ${what} does not hold and no timer is pending (at +${timeoutMs - (deadline - clock.now())} ms)`);
    if (next > deadline) {
      clock.set(deadline);
      await settle();
      const last = check();
      if (last) return last;
      throw new Error(`runUntil: ${what} did not hold within ${timeoutMs} ms of simulated time`);
    }
    clock.fireNext(deadline);
    await settle();
  }
}

/** Real time: waits until `check` returns truthy, checking every few ms; fails with `what` after timeoutMs. */
export async function eventually<T>(what: string, check: () => T | undefined | false, timeoutMs = 5000): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const v = check();
    if (v) return v;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
