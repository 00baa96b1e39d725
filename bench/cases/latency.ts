/**
 * Delivery latency at one event per millisecond: the dev server (own process)
 * stamps each event with the machine-wide monotonic clock when it emits it;
 * the receiver (bridge handler, or the body of a bare connect-node loop)
 * subtracts that from its own reading. Runs alternate bridge and raw.
 */
import { PerformanceObserver } from "node:perf_hooks";
import { createBenchBridge, waitForState } from "../lib/bridge-fixture.js";
import { connectNodeMachineLoop } from "../lib/machine-loop.js";
import { connectNodeLoop } from "../lib/raw-clients.js";
import { startServerProcess, type BenchServerKind, type ServerHandle } from "../lib/server-handle.js";
import { percentile, RunSet, type Spread } from "../lib/stats.js";

/**
 * "connect-node+machine" is the floor of the design: the raw loop plus one
 * step of the bridge statechart per message, nothing else, timed to the
 * emitted `projectRemoved` (bench/lib/machine-loop.ts).
 * "connect-node, machine after": the same loop timed in its body, before the
 * step: the transport's receive path with the machine's code beside it.
 */
export type LatencyClient = "bridge" | "connect-node" | "connect-node+machine" | "connect-node, machine after";
type FloorClient = "connect-node+machine" | "connect-node, machine after";

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
  /** Microseconds from emit to the receiver, per client (the machine floor only in runs that measured it). */
  latencyUs: Record<"bridge" | "connect-node", LatencyFigures> & Partial<Record<FloorClient, LatencyFigures>>;
  /** Garbage-collection pauses in the client process during the measured runs, per client: count per 1,000 events, longest (ms). */
  gc: Record<"bridge" | "connect-node", GcFigures> & Partial<Record<FloorClient, GcFigures>>;
  /** Per round: bridge p50 minus raw p50, µs. */
  addedP50Us: Spread;
  /** Per round: bridge p99 / raw p99. */
  p99Ratio: Spread;
  /**
   * Per round, the machine floor: (raw + one machine step) p50 minus raw p50,
   * µs, and its p99 / raw p99; and the receive path's p50 with the machine
   * beside it minus raw p50 (the cold-cache share).
   */
  machineFloor?: { addedP50Us: Spread; p99Ratio: Spread; receiveAddedP50Us: Spread };
  verified: { received: number; expected: number };
}

export interface GcFigures {
  perThousandEvents: number;
  maxMs: number;
  totalMs: number;
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
    const receiver = (_id: string, reason: string) => onEvent(reason);
    const loop =
      client === "connect-node"
        ? connectNodeLoop(server.url, receiver)
        : connectNodeMachineLoop(server.url, receiver, { receiveOnly: client === "connect-node, machine after" });
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
  const clients: LatencyClient[] = ["connect-node", "bridge", "connect-node+machine", "connect-node, machine after"];
  const sets = Object.fromEntries(clients.map((c) => [c, new RunSet<"p50" | "p99" | "max">()])) as Record<
    LatencyClient,
    RunSet<"p50" | "p99" | "max">
  >;
  const added = new RunSet<"p50" | "p99ratio" | "floorP50" | "floorP99ratio" | "receiveP50">();
  let received = 0;
  const gc = Object.fromEntries(clients.map((c) => [c, { count: 0, totalMs: 0, maxMs: 0 }])) as Record<LatencyClient, GcTally>;
  try {
    for (const c of clients) await runOnce(server, c, options.warmupEvents, `warm-${c}-`);
    for (let r = 0; r < options.runs; r++) {
      // Each round rotates the order, so no client always runs first.
      const order = clients.map((_, i) => clients[(i + r) % clients.length] as LatencyClient);
      const round = {} as Record<LatencyClient, Float64Array>;
      for (const c of order) {
        const s = await runOnce(server, c, options.events, `r${r}-${c}-`, gc[c]);
        round[c] = s;
        received += s.length;
        sets[c].add("p50", percentile(s, 50));
        sets[c].add("p99", percentile(s, 99));
        sets[c].add("max", s[s.length - 1] as number);
      }
      const raw = round["connect-node"];
      added.add("p50", percentile(round.bridge, 50) - percentile(raw, 50));
      added.add("p99ratio", percentile(round.bridge, 99) / percentile(raw, 99));
      added.add("floorP50", percentile(round["connect-node+machine"], 50) - percentile(raw, 50));
      added.add("floorP99ratio", percentile(round["connect-node+machine"], 99) / percentile(raw, 99));
      added.add("receiveP50", percentile(round["connect-node, machine after"], 50) - percentile(raw, 50));
    }
  } finally {
    await server.close();
  }
  const figures = (set: RunSet<"p50" | "p99" | "max">): LatencyFigures => ({
    p50: set.get("p50"),
    p99: set.get("p99"),
    max: set.get("max"),
  });
  const gcFigures = (t: GcTally): GcFigures => ({
    perThousandEvents: (1000 * t.count) / (options.events * options.runs),
    maxMs: t.maxMs,
    totalMs: t.totalMs,
  });
  return {
    server: kind,
    latencyUs: {
      bridge: figures(sets.bridge),
      "connect-node": figures(sets["connect-node"]),
      "connect-node+machine": figures(sets["connect-node+machine"]),
      "connect-node, machine after": figures(sets["connect-node, machine after"]),
    },
    gc: {
      bridge: gcFigures(gc.bridge),
      "connect-node": gcFigures(gc["connect-node"]),
      "connect-node+machine": gcFigures(gc["connect-node+machine"]),
      "connect-node, machine after": gcFigures(gc["connect-node, machine after"]),
    },
    addedP50Us: added.get("p50"),
    p99Ratio: added.get("p99ratio"),
    machineFloor: { addedP50Us: added.get("floorP50"), p99Ratio: added.get("floorP99ratio"), receiveAddedP50Us: added.get("receiveP50") },
    verified: { received, expected: options.events * options.runs * clients.length },
  };
}
