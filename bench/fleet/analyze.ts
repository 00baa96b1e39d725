/** Turns a FleetRun into the figures the report shows. */
import type { FleetRun } from "./simulate.js";

export interface Wave {
  /** First and last second (inclusive) of a run of seconds with connection attempts. */
  fromS: number;
  toS: number;
  attempts: number;
  peakPerS: number;
  meanPerS: number;
  peakOverMean: number;
}

export interface OutageFigures {
  policy: string;
  bridges: number;
  downAtS: number;
  upAtS: number;
  /** Waves of ProjectEvents calls from the outage on. */
  waves: Wave[];
  /** The recovery: from the server's return until every bridge streams again. */
  recovery: { fromS: number; toS: number; attempts: number; peakPerS: number; meanPerS: number; peakOverMean: number };
  /** The wave that meets the returning server (the first wave whose calls succeed). */
  returnWave: Wave | undefined;
  /** Peak ProjectEvents calls in one second over the whole run, and SyncProjectState calls. */
  peakStreamCallsPerS: number;
  peakSyncCallsPerS: number;
  /** Sync calls per second in the minute after the return: peak and mean. */
  syncAfterReturn: { peakPerS: number; meanPerS: number };
  delivery: {
    expected: number;
    delivered: number;
    /** ms from the server's return to delivery: p50, p99, max. */
    afterReturnMs: { p50: number; p99: number; max: number };
    /** ms from the bridge's successful ProjectEvents call to delivery, max, and in round trips. */
    afterReconnectCallMaxMs: number;
    afterReconnectCallMaxRtts: number;
    /** Deliveries later than their bridge's reconnect call + 2 round trips (open + sync) + 1 ms. */
    lateBeyondBound: number;
    bySource: Record<string, number>;
  };
  streamingAtEnd: number;
  simulatedS: number;
  wallS: number;
  heapUsedMB: number;
}

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number;
}

export function findWaves(series: number[], fromS: number, toS = series.length - 1): Wave[] {
  const waves: Wave[] = [];
  let s = fromS;
  while (s <= toS) {
    if ((series[s] ?? 0) === 0) {
      s++;
      continue;
    }
    const start = s;
    let attempts = 0;
    let peak = 0;
    while (s <= toS && (series[s] ?? 0) > 0) {
      attempts += series[s] as number;
      peak = Math.max(peak, series[s] as number);
      s++;
    }
    const span = s - start;
    waves.push({ fromS: start, toS: s - 1, attempts, peakPerS: peak, meanPerS: attempts / span, peakOverMean: peak / (attempts / span) });
  }
  return waves;
}

export function analyzeOutage(run: FleetRun): OutageFigures {
  const outage = run.scenario.outage;
  if (!outage) throw new Error("analyzeOutage: the scenario has no outage");
  const downAtS = outage.atMs / 1000;
  const upAtMs = outage.atMs + outage.forMs;
  const upAtS = upAtMs / 1000;
  const waves = findWaves(run.streamCalls, Math.floor(downAtS));
  // Recovery: from the return to the last second in which a bridge's accepted call was made.
  const reconnectCalls = run.lastCallAtMs.filter((t) => t >= upAtMs);
  const lastS = Math.floor(Math.max(upAtMs, ...reconnectCalls) / 1000);
  const fromS = Math.floor(upAtS);
  let attempts = 0;
  let peak = 0;
  for (let s = fromS; s <= lastS; s++) {
    attempts += run.streamCalls[s] ?? 0;
    peak = Math.max(peak, run.streamCalls[s] ?? 0);
  }
  const span = lastS - fromS + 1;
  const returnWave = waves.find((w) => w.toS >= fromS);

  const afterReturn: number[] = [];
  const afterCall: number[] = [];
  let late = 0;
  const bySource: Record<string, number> = {};
  const rtt = run.scenario.rttMs;
  for (const d of run.deliveries) {
    if (d.atMs < upAtMs) continue;
    bySource[d.source] = (bySource[d.source] ?? 0) + 1;
    afterReturn.push(d.atMs - upAtMs);
    const callAt = run.lastCallAtMs[d.bridge] ?? Number.NaN;
    const lag = d.atMs - callAt;
    afterCall.push(lag);
    if (!(lag <= 2 * rtt + 1)) late++;
  }
  afterReturn.sort((a, b) => a - b);
  afterCall.sort((a, b) => a - b);
  const minuteAfter = run.syncCalls.slice(fromS, fromS + 60);
  const maxCall = afterCall[afterCall.length - 1] ?? Number.NaN;
  return {
    policy: run.scenario.policy,
    bridges: run.scenario.bridges,
    downAtS,
    upAtS,
    waves,
    recovery: { fromS, toS: lastS, attempts, peakPerS: peak, meanPerS: attempts / span, peakOverMean: peak / (attempts / span) },
    returnWave,
    peakStreamCallsPerS: Math.max(...run.streamCalls),
    peakSyncCallsPerS: Math.max(...run.syncCalls),
    syncAfterReturn: {
      peakPerS: Math.max(...minuteAfter),
      meanPerS: minuteAfter.reduce((a, b) => a + b, 0) / Math.max(1, minuteAfter.length),
    },
    delivery: {
      expected: run.expectedDeliveries,
      delivered: afterReturn.length,
      afterReturnMs: { p50: pct(afterReturn, 50), p99: pct(afterReturn, 99), max: afterReturn[afterReturn.length - 1] ?? Number.NaN },
      afterReconnectCallMaxMs: maxCall,
      afterReconnectCallMaxRtts: maxCall / rtt,
      lateBeyondBound: late,
      bySource,
    },
    streamingAtEnd: run.streamingAtEnd,
    simulatedS: run.scenario.endMs / 1000,
    wallS: run.wallS,
    heapUsedMB: run.heapUsedMB,
  };
}

export interface HeartbeatFigures {
  bridges: number;
  /** N/60: the expected calls per second. */
  expectedPerS: number;
  fromS: number;
  toS: number;
  minPerS: number;
  maxPerS: number;
  meanPerS: number;
  /** Share of seconds within ±20 % of N/60. */
  withinShare: number;
  /** Largest deviation from N/60 of a 10-second average, in percent. */
  maxDeviation10sPct: number;
  /** Largest deviation of one second, in percent. */
  maxDeviation1sPct: number;
}

export function analyzeHeartbeat(syncCalls: number[], bridges: number, fromS: number, toS: number): HeartbeatFigures {
  const s = syncCalls.slice(fromS, toS + 1);
  const expected = bridges / 60;
  const within = s.filter((x) => Math.abs(x - expected) <= 0.2 * expected).length;
  let max10 = 0;
  for (let i = 0; i + 10 <= s.length; i++) {
    const avg = s.slice(i, i + 10).reduce((a, b) => a + b, 0) / 10;
    max10 = Math.max(max10, Math.abs(avg - expected) / expected);
  }
  const max1 = Math.max(...s.map((x) => Math.abs(x - expected) / expected));
  return {
    bridges,
    expectedPerS: expected,
    fromS,
    toS,
    minPerS: Math.min(...s),
    maxPerS: Math.max(...s),
    meanPerS: s.reduce((a, b) => a + b, 0) / Math.max(1, s.length),
    withinShare: within / Math.max(1, s.length),
    maxDeviation10sPct: 100 * max10,
    maxDeviation1sPct: 100 * max1,
  };
}
