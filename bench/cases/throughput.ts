/**
 * Throughput: N REMOVED events buffered by the dev server (in its own process,
 * with a stream buffer large enough never to drop) and read by the bridge into
 * a counting handler, by a bare connect-node loop, and by a bare grpc-js loop.
 * Rate is measured from the first to the last event received; client CPU per
 * event from process.cpuUsage() over the same span.
 */
import { createBatchedBridge } from "../lib/batching-prototype.js";
import { createBenchBridge, defaultLogger } from "../lib/bridge-fixture.js";
import { summarizeCpuProfile, type ProfileSummary } from "../lib/cpu-profile.js";
import { profileDuring } from "../lib/profiler.js";
import { connectNodeLoop, grpcJsLoop, type StreamLoop } from "../lib/raw-clients.js";
import { startServerProcess, type ServerHandle } from "../lib/server-handle.js";
import { RunSet, type Spread } from "../lib/stats.js";

/** "bridge (batched prototype)" is bench/lib/batching-prototype.ts, not the shipped bridge. */
export type ThroughputClient = "bridge" | "connect-node" | "grpc-js" | "bridge (batched prototype)";

export interface ThroughputOptions {
  events: number;
  runs: number;
  warmupEvents: number;
  clients?: ThroughputClient[];
  /** After the measured rounds, one more bridge run under the V8 profiler, written here. */
  profileFile?: string;
  /** Events of the profiled run. Defaults to `events`. */
  profileEvents?: number;
}

export interface ThroughputResult {
  events: number;
  /** Events of the profiled run, when there was one. */
  profileEvents?: number;
  runs: number;
  /** Events per second, per client. */
  rate: Record<ThroughputClient, Spread>;
  /** Client CPU (user+system) µs per event, per client. */
  cpuUsPerEvent: Record<ThroughputClient, Spread>;
  /** Per run: bridge rate / connect-node rate (same round). */
  ratioVsConnect: Spread;
  ratioVsGrpcJs: Spread;
  cpuRatioVsConnect: Spread;
  /** Per run: batched prototype rate / connect-node rate. */
  batchedRatioVsConnect: Spread;
  /** Where the bridge's time goes (one extra, profiled run), if asked. */
  profile?: ProfileSummary;
  /** Checks that no event was lost: server sent and dropped, handler count. */
  verified: { sent: number; dropped: number; received: number; expected: number };
}

interface OneRun {
  rate: number;
  cpuUsPerEvent: number;
  received: number;
}

async function runOnce(server: ServerHandle, client: ThroughputClient, n: number, prefix: string): Promise<OneRun> {
  let received = 0;
  let firstAt = 0;
  let lastAt = 0;
  let cpuAtFirst: NodeJS.CpuUsage | undefined;
  let finish!: () => void;
  const finished = new Promise<void>((r) => (finish = r));
  const onEvent = (): boolean => {
    received++;
    if (received === 1) {
      firstAt = performance.now();
      cpuAtFirst = process.cpuUsage();
    }
    if (received === n) {
      lastAt = performance.now();
      finish();
      return true;
    }
    return false;
  };
  let loop: StreamLoop | undefined;
  let stopBridge: (() => Promise<void>) | undefined;
  if (client === "bridge") {
    const { bridge } = createBenchBridge({ url: server.url, onRemoval: () => void onEvent() });
    bridge.start();
    stopBridge = () => bridge.stop();
  } else if (client === "bridge (batched prototype)") {
    const bridge = createBatchedBridge({ url: server.url, logger: defaultLogger, onRemoval: () => void onEvent() });
    bridge.start();
    stopBridge = () => bridge.stop();
  } else {
    loop = (client === "connect-node" ? connectNodeLoop : grpcJsLoop)(server.url, onEvent);
  }
  await server.waitForStreams(1);
  await server.burst(n, prefix);
  await finished;
  const cpu = process.cpuUsage(cpuAtFirst);
  loop?.close();
  await loop?.done.catch(() => {});
  await stopBridge?.();
  await server.waitForStreamsClosed(0);
  const spanS = (lastAt - firstAt) / 1000;
  return { rate: (n - 1) / spanS, cpuUsPerEvent: (cpu.user + cpu.system) / (n - 1), received };
}

export async function runThroughput(options: ThroughputOptions): Promise<ThroughputResult> {
  const clients = options.clients ?? ["connect-node", "grpc-js", "bridge"];
  const server = await startServerProcess({ streamBufferSize: Math.max(options.events, options.warmupEvents) + 1 });
  const rate = new RunSet<ThroughputClient>();
  const cpu = new RunSet<ThroughputClient>();
  const ratios = new RunSet<"connect" | "grpcjs" | "cpuConnect" | "batched">();
  let received = 0;
  let expected = 0;
  try {
    for (const c of clients) await runOnce(server, c, options.warmupEvents, `warm-${c}-`);
    const before = await server.stats();
    for (let r = 0; r < options.runs; r++) {
      // Rotate the order each round so no client always runs first.
      const order = clients.map((_, i) => clients[(i + r) % clients.length] as ThroughputClient);
      const round = {} as Record<ThroughputClient, OneRun>;
      for (const c of order) {
        const one = await runOnce(server, c, options.events, `r${r}-${c}-`);
        round[c] = one;
        rate.add(c, one.rate);
        cpu.add(c, one.cpuUsPerEvent);
        received += one.received;
        expected += options.events;
      }
      if (round.bridge && round["connect-node"]) {
        ratios.add("connect", round.bridge.rate / round["connect-node"].rate);
        ratios.add("cpuConnect", round.bridge.cpuUsPerEvent / round["connect-node"].cpuUsPerEvent);
      }
      if (round.bridge && round["grpc-js"]) ratios.add("grpcjs", round.bridge.rate / round["grpc-js"].rate);
      const batched = round["bridge (batched prototype)"];
      if (batched && round["connect-node"]) ratios.add("batched", batched.rate / round["connect-node"].rate);
    }
    const after = await server.stats();
    let profile: ProfileSummary | undefined;
    if (options.profileFile !== undefined) {
      const file = options.profileFile;
      await profileDuring(file, () => runOnce(server, "bridge", options.profileEvents ?? options.events, "profiled-"));
      profile = summarizeCpuProfile(file, [
        /^send xstate/,
        /^macrostep xstate/,
        /^acceptStreamEvent|^admitRemovals/,
        /^drain src\/dispatcher/,
        /^dispatchRemoval/,
        /^createProjectEventsActor|src\/bridge-actors/,
      ]);
    }
    return {
      events: options.events,
      runs: options.runs,
      rate: rate.all() as Record<ThroughputClient, Spread>,
      cpuUsPerEvent: cpu.all() as Record<ThroughputClient, Spread>,
      ratioVsConnect: ratios.get("connect"),
      ratioVsGrpcJs: ratios.get("grpcjs"),
      cpuRatioVsConnect: ratios.get("cpuConnect"),
      batchedRatioVsConnect: ratios.get("batched"),
      ...(profile ? { profile, profileEvents: options.profileEvents ?? options.events } : {}),
      verified: {
        sent: after.eventsSent - before.eventsSent,
        dropped: after.eventsDropped - before.eventsDropped,
        received,
        expected,
      },
    };
  } finally {
    await server.close();
  }
}
