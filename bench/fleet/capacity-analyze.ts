/** Turns a FleetRun at a server of finite capacity into the figures of issue 21. */
import type { FleetRun } from "./simulate.js";

export interface CapacityFigures {
  /** When the trigger ended (the server's return, the restart, the end of the slow period), s. */
  returnS: number;
  /** Seconds from the return until 99 % of the bridges had a stream the server served; undefined if never. */
  to99StreamingS: number | undefined;
  /** Seconds from the return until every removal made around the trigger was delivered (negative: before it); undefined if some never were. */
  toAllDeliveredS: number | undefined;
  delivered: number;
  expectedDeliveries: number;
  /** The later of the two, or undefined. */
  recoveredS: number | undefined;
  /** Calls the server received (opens + syncs, refused ones included) from the return until recovery (or the end) ÷ 2N; NaN when there was nothing to recover. */
  amplification: number;
  callsReceived: number;
  /** Streams the server had served that the bridges aborted while it was up. */
  streamsTornDown: number;
  abandonedQueued: number;
  abandonedInService: number;
  refused: number;
  /** Largest queue after the trigger began. */
  peakQueue: number;
  waitMs: { p50: number; p99: number; max: number };
  /** Seconds from the return until steady state (every bridge streaming, 30-s heartbeat average within ±20 % of N/60) held to the end; undefined if it did not. */
  toSteadyS: number | undefined;
  /** Streams open at the server at the end. */
  openAtEnd: number;
  streamingAtEnd: number;
  simulatedS: number;
  wallS: number;
}

const sum = (a: number[], from: number, to: number): number => {
  let t = 0;
  for (let i = from; i < to && i < a.length; i++) t += a[i] ?? 0;
  return t;
};

/**
 * `triggerAtS`: when the trigger began (the restart, the outage, the slow
 * period); `returnS`: when it ended.
 */
export function analyzeCapacity(run: FleetRun, triggerAtS: number, returnS: number): CapacityFigures {
  const cap = run.capacity;
  if (!cap) throw new Error("analyzeCapacity: the run had no capacity model");
  const n = run.scenario.bridges;
  const seconds = cap.openStreams.length;
  let to99: number | undefined;
  // Never below 99 % from the trigger on (a slow period, steady state): 0.
  let dropped = false;
  for (let s = Math.floor(triggerAtS); s < seconds; s++) {
    const ok = (cap.openStreams[s] ?? 0) >= 0.99 * n;
    if (!ok) dropped = true;
    if (ok && s >= Math.floor(returnS)) {
      to99 = dropped ? Math.max(0, s + 1 - returnS) : 0;
      break;
    }
  }
  const delivered = run.deliveries.length;
  const toAll =
    delivered >= run.expectedDeliveries ? run.deliveries.reduce((m, d) => Math.max(m, d.atMs / 1000), triggerAtS) - returnS : undefined;
  const recovered = to99 !== undefined && toAll !== undefined ? Math.max(to99, toAll) : undefined;
  const from = Math.floor(returnS);
  const to = recovered !== undefined ? Math.ceil(returnS + recovered) : seconds;
  // Nothing to recover (the streams never dropped, nothing left to deliver): no amplification.
  const callsReceived = to > from ? sum(run.streamCalls, from, to) + sum(run.syncCalls, from, to) : 0;
  const expected = n / 60;
  const steadyAt = (s: number): boolean => {
    if ((cap.openStreams[s] ?? 0) < n) return false;
    const avg = sum(run.syncCalls, s, s + 30) / 30;
    return Math.abs(avg - expected) <= 0.2 * expected;
  };
  let toSteady: number | undefined;
  for (let s = seconds - 31; s >= from; s--) {
    if (!steadyAt(s)) {
      toSteady = s + 1 < seconds - 30 ? s + 1 - returnS : undefined;
      break;
    }
    if (s === from) toSteady = 0;
  }
  if (toSteady !== undefined && toSteady < 0) toSteady = 0;
  return {
    returnS,
    to99StreamingS: to99,
    toAllDeliveredS: toAll,
    delivered,
    expectedDeliveries: run.expectedDeliveries,
    recoveredS: recovered,
    amplification: to > from ? callsReceived / (2 * n) : Number.NaN,
    callsReceived,
    streamsTornDown: cap.streamsAbortedByClient,
    abandonedQueued: cap.abandonedQueued,
    abandonedInService: cap.abandonedInService,
    refused: sum(cap.refusedCalls, 0, seconds),
    peakQueue: cap.queueMax.slice(Math.floor(triggerAtS)).reduce((m, x) => Math.max(m, x), 0),
    waitMs: cap.waitMs,
    toSteadyS: toSteady,
    openAtEnd: cap.openStreams[seconds - 1] ?? 0,
    streamingAtEnd: run.streamingAtEnd,
    simulatedS: run.scenario.endMs / 1000,
    wallS: run.wallS,
  };
}
