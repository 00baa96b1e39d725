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
  /** Deadline of one SyncProjectState call. Defaults to 10000. */
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

/** Attempt n (1-based) waits min(max, min·2^(n-1)), scaled by a factor in [1-j, 1+j]. */
export function backoffDelayMs(attempt: number, timing: BridgeTiming, random: number): number {
  const n = Math.max(1, attempt);
  const base = Math.min(timing.backoffMaxMs, timing.backoffMinMs * 2 ** Math.min(n - 1, 52));
  const factor = 1 - timing.backoffJitter + 2 * timing.backoffJitter * clamp01(random);
  return Math.max(0, Math.round(base * factor));
}

/** Each heartbeat wait is uniform in [heartbeatMs - jitter, heartbeatMs + jitter]. */
export function heartbeatDelayMs(timing: BridgeTiming, random: number): number {
  const ms = timing.heartbeatMs - timing.heartbeatJitterMs + 2 * timing.heartbeatJitterMs * clamp01(random);
  return Math.max(0, Math.round(ms));
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
  return Math.max(0, Math.round(timing.heartbeatJitterMs + timing.heartbeatMs * clamp01(random)));
}
