/** Every timing of the bridge, in milliseconds. See DESIGN.md "Timing defaults". */
export interface BridgeTiming {
  /** First backoff wait. Defaults to 1000. */
  backoffMinMs: number;
  /** Cap of the backoff wait. Defaults to 60000. */
  backoffMaxMs: number;
  /** Each backoff wait is scaled by a uniform factor in [1-j, 1+j]. Defaults to 0.2. */
  backoffJitter: number;
  /** A call alive this long without headers or messages counts as open. Defaults to 2000. */
  openConfirmMs: number;
  /** Streaming this long resets the backoff attempt counter. Defaults to 10000. */
  stableAfterMs: number;
  /** Mean heartbeat period. Defaults to 60000. */
  heartbeatMs: number;
  /** Each heartbeat wait is uniform in [heartbeatMs - j, heartbeatMs + j]. Defaults to 5000. */
  heartbeatJitterMs: number;
  /** Deadline of one SyncProjectState call (each 10,000-id chunk of a round has its own). Defaults to 10000. */
  syncTimeoutMs: number;
  /** One handler's budget for one removal. Defaults to 10000. */
  handlerTimeoutMs: number;
  /** stop() always resolves within this. Defaults to 5000. */
  stopTimeoutMs: number;
}

export const defaultBridgeTiming: Readonly<BridgeTiming> = Object.freeze({
  backoffMinMs: 1000,
  backoffMaxMs: 60000,
  backoffJitter: 0.2,
  openConfirmMs: 2000,
  stableAfterMs: 10000,
  heartbeatMs: 60000,
  heartbeatJitterMs: 5000,
  syncTimeoutMs: 10000,
  handlerTimeoutMs: 10000,
  stopTimeoutMs: 5000,
});

/**
 * The longest timer Node arms as asked: a longer one fires after 1 ms
 * (with a TimeoutOverflowWarning), so `heartbeatMs: 3e9` would sync
 * hundreds of times a second. Every timing option and every computed delay
 * stays at or below it.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** The allowed range of one timing option; `max` may depend on other fields. */
export interface TimingBound {
  min: number;
  max: number;
  /** Whether `max` itself is excluded (backoffJitter < 1). */
  maxExclusive?: boolean;
  /** Read this field's value as the upper bound instead of `max` (heartbeatJitterMs <= heartbeatMs). */
  maxField?: keyof BridgeTiming;
  /** Read this field's value as the lower bound instead of `min` (backoffMaxMs >= backoffMinMs). */
  minField?: keyof BridgeTiming;
}

/**
 * The documented range of every timing option (DESIGN "Timing defaults").
 * Minimums keep a careless value from turning the bridge into a busy loop:
 * a heartbeat at least every 100 ms, a sync deadline of at least 10 ms.
 */
export const timingBounds: Readonly<Record<keyof BridgeTiming, TimingBound>> = Object.freeze({
  backoffMinMs: { min: 1, max: MAX_TIMER_MS },
  backoffMaxMs: { min: 1, max: MAX_TIMER_MS, minField: "backoffMinMs" },
  backoffJitter: { min: 0, max: 1, maxExclusive: true },
  openConfirmMs: { min: 1, max: MAX_TIMER_MS },
  stableAfterMs: { min: 0, max: MAX_TIMER_MS },
  heartbeatMs: { min: 100, max: MAX_TIMER_MS },
  heartbeatJitterMs: { min: 0, max: MAX_TIMER_MS, maxField: "heartbeatMs" },
  syncTimeoutMs: { min: 10, max: MAX_TIMER_MS },
  handlerTimeoutMs: { min: 1, max: MAX_TIMER_MS },
  stopTimeoutMs: { min: 1, max: MAX_TIMER_MS },
});

/**
 * "[1, 2147483647]", "[0, 1)", "[backoffMinMs = 5, 2147483647]": how an error
 * names a range. A bound read from another field is named only when that
 * field is in `given` (the user set it); otherwise the unset field was derived
 * to fit, and the range shown is the field's own.
 */
export function describeTimingRange(
  name: keyof BridgeTiming,
  timing: Partial<BridgeTiming> = {},
  given: ReadonlySet<keyof BridgeTiming> = new Set(Object.keys(timing) as (keyof BridgeTiming)[]),
): string {
  const b = timingBounds[name];
  const lo = b.minField !== undefined && given.has(b.minField) ? `${b.minField} = ${String(timing[b.minField] ?? b.min)}` : String(b.min);
  const hi = b.maxField !== undefined && given.has(b.maxField) ? `${b.maxField} = ${String(timing[b.maxField] ?? b.max)}` : String(b.max);
  return `[${lo}, ${hi}${b.maxExclusive ? ")" : "]"}`;
}

/**
 * The first timing field outside its range, with a message that names the
 * field, the value and the range; undefined when every field is in range.
 * Fields are checked in the order of `timingBounds` (so a bound read from
 * another field is only used once that field passed). `given` is the set of
 * fields the user set (defaults to all): the message names a second field
 * only when the user set it too.
 */
export function timingViolation(
  timing: BridgeTiming,
  given: ReadonlySet<keyof BridgeTiming> = new Set(Object.keys(timingBounds) as (keyof BridgeTiming)[]),
): { field: keyof BridgeTiming; message: string } | undefined {
  for (const field of Object.keys(timingBounds) as (keyof BridgeTiming)[]) {
    const value: unknown = timing[field];
    const b = timingBounds[field];
    const lo = b.minField !== undefined ? Math.max(b.min, timing[b.minField]) : b.min;
    const hi = b.maxField !== undefined ? Math.min(b.max, timing[b.maxField]) : b.max;
    const ok = typeof value === "number" && Number.isFinite(value) && value >= lo && (b.maxExclusive ? value < hi : value <= hi);
    if (!ok) {
      const shown =
        typeof value === "number" ? String(value) : `${(JSON.stringify(value) ?? String(value)).slice(0, 40)} (${typeof value})`;
      return { field, message: `timing.${field} must be a number in ${describeTimingRange(field, timing, given)} (ms), got ${shown}` };
    }
  }
  return undefined;
}

/** The default heartbeat jitter as a fraction of the period (5 s of 60 s). */
export const HEARTBEAT_JITTER_RATIO = 1 / 12;

/**
 * The full timing from the fields a user set: each field not set takes its
 * default, except where that default would not fit a field that was set
 * (DESIGN "Timing defaults"):
 *
 * - `heartbeatJitterMs` not set, `heartbeatMs` set: heartbeatMs/12 (floored);
 * - `heartbeatMs` not set, `heartbeatJitterMs` set: at least the jitter;
 * - `backoffMaxMs` not set, `backoffMinMs` set: at least backoffMinMs;
 * - `backoffMinMs` not set, `backoffMaxMs` set: at most backoffMaxMs.
 *
 * A derived value stays in its own field's range; a value that was set is
 * never changed (validation reports it). Fields set to undefined count as
 * not set.
 */
export function resolveTiming(overrides: Partial<BridgeTiming>): BridgeTiming {
  const timing: BridgeTiming = { ...defaultBridgeTiming };
  for (const [name, value] of Object.entries(overrides)) {
    if (value !== undefined) timing[name as keyof BridgeTiming] = value;
  }
  const set = (field: keyof BridgeTiming): number | undefined => {
    const v: unknown = overrides[field];
    return typeof v === "number" && Number.isFinite(v) ? v : undefined;
  };
  const within = (field: keyof BridgeTiming, v: number): number => Math.min(timingBounds[field].max, Math.max(timingBounds[field].min, v));
  const heartbeatMs = set("heartbeatMs");
  const jitterMs = set("heartbeatJitterMs");
  if (overrides.heartbeatJitterMs === undefined && heartbeatMs !== undefined) {
    timing.heartbeatJitterMs = within("heartbeatJitterMs", Math.floor(heartbeatMs * HEARTBEAT_JITTER_RATIO));
  }
  if (overrides.heartbeatMs === undefined && jitterMs !== undefined) {
    timing.heartbeatMs = within("heartbeatMs", Math.max(defaultBridgeTiming.heartbeatMs, jitterMs));
  }
  const minMs = set("backoffMinMs");
  const maxMs = set("backoffMaxMs");
  if (overrides.backoffMaxMs === undefined && minMs !== undefined) {
    timing.backoffMaxMs = within("backoffMaxMs", Math.max(defaultBridgeTiming.backoffMaxMs, minMs));
  }
  if (overrides.backoffMinMs === undefined && maxMs !== undefined) {
    timing.backoffMinMs = within("backoffMinMs", Math.min(defaultBridgeTiming.backoffMinMs, maxMs));
  }
  return timing;
}

/** A computed delay as a timer may take it: an integer in [0, MAX_TIMER_MS]; NaN becomes 0. */
export function clampTimerMs(ms: number): number {
  if (Number.isNaN(ms)) return 0;
  return Math.min(MAX_TIMER_MS, Math.max(0, Math.round(ms)));
}

/** Attempt n (1-based) waits min(max, min·2^(n-1)), scaled by a factor in [1-j, 1+j], clamped to a timer's range. */
export function backoffDelayMs(attempt: number, timing: BridgeTiming, random: number): number {
  const n = Math.max(1, attempt);
  const base = Math.min(timing.backoffMaxMs, timing.backoffMinMs * 2 ** Math.min(n - 1, 52));
  const factor = 1 - timing.backoffJitter + 2 * timing.backoffJitter * clamp01(random);
  return clampTimerMs(base * factor);
}

/** Each heartbeat wait is uniform in [heartbeatMs - jitter, heartbeatMs + jitter]. */
export function heartbeatDelayMs(timing: BridgeTiming, random: number): number {
  const ms = timing.heartbeatMs - timing.heartbeatJitterMs + 2 * timing.heartbeatJitterMs * clamp01(random);
  return clampTimerMs(ms);
}

/**
 * The wait before reopening after the server's GOAWAY: uniform in
 * [0, backoffMinMs] (0-1 s by default). Short, because the server asked
 * politely and a new instance is usually up; jittered, so a fleet that
 * all got the same GOAWAY does not reconnect to the next instance in one
 * burst. It is not a failure: the attempt counter does not move.
 */
export function goawayReopenDelayMs(timing: BridgeTiming, random: number): number {
  return clampTimerMs(timing.backoffMinMs * clamp01(random));
}

function clamp01(x: number): number {
  if (!Number.isFinite(x)) return 0.5;
  return Math.min(1, Math.max(0, x));
}

/**
 * The wait after a sync that a stream (re)open started: uniform in
 * [heartbeatJitterMs, heartbeatMs + heartbeatJitterMs] (5-65 s by default).
 * A fleet that reconnects together after a server restart would otherwise
 * keep heartbeating together (each regular wait only drifts by
 * ±heartbeatJitterMs); one draw over a whole period spreads the fleet's
 * phases at once. The longest wait stays heartbeatMs + heartbeatJitterMs, so
 * a half-open link is still found within one heartbeat plus syncTimeoutMs.
 */
export function heartbeatSpreadDelayMs(timing: BridgeTiming, random: number): number {
  return clampTimerMs(timing.heartbeatJitterMs + timing.heartbeatMs * clamp01(random));
}

/**
 * The most a slow server slows the heartbeat down: two periods between
 * rounds (half the load it puts on the server). It bounds how late the
 * heartbeat catches up once the server is fast again: a wait drawn while it
 * was slow lasts at most two periods, so a fleet is back to its steady
 * heartbeat within about two minutes of a slow period's end (with four
 * periods it took over five). Stream removals are not delayed by it.
 */
export const MAX_HEARTBEAT_SLOWDOWN = 2;

/**
 * How long a sync call whose request reached the wire may run on past
 * syncTimeoutMs once the connection answered a PING (a slow server, not a
 * dead link): the slowest heartbeat's period, MAX_HEARTBEAT_SLOWDOWN ×
 * heartbeatMs (2 minutes by default), and never less than twice
 * syncTimeoutMs: a late call always gets its probe (half a deadline) and a
 * run-on, whatever the heartbeat period.
 * Abandoning it earlier would only send it again at the back of the
 * server's queue: on a saturated server every abandoned call is work wasted
 * and a new call added, which is how retry storms feed on themselves. A
 * stream that reopens meanwhile gives it up for its own resync.
 */
export function syncRunOnMs(timing: BridgeTiming): number {
  return clampTimerMs(Math.max(2 * timing.syncTimeoutMs, MAX_HEARTBEAT_SLOWDOWN * timing.heartbeatMs));
}
