/**
 * Delivery latency at one event per millisecond: the dev server (own process)
 * stamps each event with the machine-wide monotonic clock when it emits it;
 * the receiver (bridge handler, or the body of a bare connect-node loop)
 * subtracts that from its own reading. Runs alternate bridge and raw.
 */
import { PerformanceObserver } from "node:perf_hooks";
import { createBenchBridge, waitForState } from "../lib/bridge-fixture.js";
import { connectNodeLoop } from "../lib/raw-clients.js";
import { startServerProcess, type BenchServerKind, type ServerHandle } from "../lib/server-handle.js";
import { percentile, RunSet, type Spread } from "../lib/stats.js";

export type LatencyClient = "bridge" | "connect-node";

export interface LatencyOptions {
  /** Events per run (one per ms). */
  events: number;
  runs: number;
  warmupEvents: number;
  /** The servers to run the comparison on, each in turn; the top-level figures are the first's. Defaults to ["dev"]. */
  servers?: BenchServerKind[];
}

export interface LatencyFigures {
  p50: Spread;
  p99: Spread;
  max: Spread;
}

export interface LatencyResult extends LatencyRows {
  events: number;
  runs: number;
  /** Every server's comparison (the top-level figures are the first's). */
  byServer?: Partial<Record<BenchServerKind, LatencyRows>>;
}

/** One server's comparison. */
export interface LatencyRows {
  server: BenchServerKind;
  /** Microseconds from emit to the receiver, per client. */
  latencyUs: Record<LatencyClient, LatencyFigures>;
  /** Garbage-collection pauses in the client process during the measured runs, per client: count per 1,000 events, longest (ms). */
  gc: Record<LatencyClient, { perThousandEvents: number; maxMs: number; totalMs: number }>;
  /** Per round: bridge p50 minus raw p50, µs. */
  addedP50Us: Spread;
  /** Per round: bridge p99 / raw p99. */
  p99Ratio: Spread;
  verified: { received: number; expected: number };
}

interface GcTally {
  count: number;
  totalMs: number;
  maxMs: number;
}

async function runOnce(server: ServerHandle, client: LatencyClient, n: number, prefix: string, gc?: GcTally): Promise<Float64Array> {
  const samples = new Float64Array(n);
  let received = 0;
  let finish!: () => void;
  const finished = new Promise<void>((r) => (finish = r));
  const onEvent = (reason: string | undefined): boolean => {
    const now = process.hrtime.bigint();
    if (received < n) samples[received] = Number(now - BigInt(reason ?? "0")) / 1000;
    received++;
    if (received === n) {
      finish();
      return true;
    }
    return false;
  };
  let close: () => Promise<void>;
  if (client === "bridge") {
    // openConfirmMs short: the dev server sends headers only with the first message.
    const { bridge } = createBenchBridge({
      url: server.url,
      timing: { openConfirmMs: 10 },
      onRemoval: (_id, reason) => void onEvent(reason),
    });
    bridge.start();
    await waitForState(bridge, "streaming");
    close = () => bridge.stop();
  } else {
    const loop = connectNodeLoop(server.url, (_id, reason) => onEvent(reason));
    close = async () => {
      loop.close();
      await loop.done.catch(() => {});
    };
  }
  await server.waitForStreams(1);
  const observer = new PerformanceObserver((list) => {
    if (!gc) return;
    for (const e of list.getEntries()) {
      gc.count++;
      gc.totalMs += e.duration;
      gc.maxMs = Math.max(gc.maxMs, e.duration);
    }
  });
  observer.observe({ entryTypes: ["gc"] });
  await server.paced(n, 1, prefix);
  await finished;
  observer.disconnect();
  await close();
  await server.waitForStreamsClosed(0);
  if (received !== n) throw new Error(`latency: ${client} received ${received} of ${n}`);
  return samples.sort();
}

export async function runLatency(options: LatencyOptions): Promise<LatencyResult> {
  const servers = options.servers ?? ["dev"];
  const byServer: Partial<Record<BenchServerKind, LatencyRows>> = {};
  for (const kind of servers) byServer[kind] = await compareOn(kind, options);
  return { ...(byServer[servers[0] as BenchServerKind] as LatencyRows), events: options.events, runs: options.runs, byServer };
}

async function compareOn(kind: BenchServerKind, options: LatencyOptions): Promise<LatencyRows> {
  const server = await startServerProcess({ kind, streamBufferSize: options.events + 1 });
  const sets = { bridge: new RunSet<"p50" | "p99" | "max">(), "connect-node": new RunSet<"p50" | "p99" | "max">() };
  const added = new RunSet<"p50" | "p99ratio">();
  let received = 0;
  const gc: Record<LatencyClient, GcTally> = {
    bridge: { count: 0, totalMs: 0, maxMs: 0 },
    "connect-node": { count: 0, totalMs: 0, maxMs: 0 },
  };
  try {
    await runOnce(server, "connect-node", options.warmupEvents, "warm-raw-");
    await runOnce(server, "bridge", options.warmupEvents, "warm-bridge-");
    for (let r = 0; r < options.runs; r++) {
      const order: LatencyClient[] = r % 2 === 0 ? ["connect-node", "bridge"] : ["bridge", "connect-node"];
      const round = {} as Record<LatencyClient, Float64Array>;
      for (const c of order) {
        const s = await runOnce(server, c, options.events, `r${r}-${c}-`, gc[c]);
        round[c] = s;
        received += s.length;
        sets[c].add("p50", percentile(s, 50));
        sets[c].add("p99", percentile(s, 99));
        sets[c].add("max", s[s.length - 1] as number);
      }
      added.add("p50", percentile(round.bridge, 50) - percentile(round["connect-node"], 50));
      added.add("p99ratio", percentile(round.bridge, 99) / percentile(round["connect-node"], 99));
    }
  } finally {
    await server.close();
  }
  const figures = (set: RunSet<"p50" | "p99" | "max">): LatencyFigures => ({
    p50: set.get("p50"),
    p99: set.get("p99"),
    max: set.get("max"),
  });
  return {
    server: kind,
    latencyUs: { bridge: figures(sets.bridge), "connect-node": figures(sets["connect-node"]) },
    gc: {
      bridge: {
        perThousandEvents: (1000 * gc.bridge.count) / (options.events * options.runs),
        maxMs: gc.bridge.maxMs,
        totalMs: gc.bridge.totalMs,
      },
      "connect-node": {
        perThousandEvents: (1000 * gc["connect-node"].count) / (options.events * options.runs),
        maxMs: gc["connect-node"].maxMs,
        totalMs: gc["connect-node"].totalMs,
      },
    },
    addedP50Us: added.get("p50"),
    p99Ratio: added.get("p99ratio"),
    verified: { received, expected: options.events * options.runs * 2 },
  };
}
