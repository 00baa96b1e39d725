/**
 * Throughput: N REMOVED events sent by a server in its own process and read
 * by the bridge into a counting handler, by a bare connect-node loop, and by
 * a bare grpc-js loop. Rate is measured from the first to the last event
 * received; client CPU per event from process.cpuUsage() over the same span.
 *
 * Two servers, each a full comparison of its own: the dev server (with a
 * stream buffer large enough never to drop), which is slower than the raw
 * loops, and the fast bench server (bench/lib/fast-server-process.ts: frames
 * encoded once and written straight to the HTTP/2 stream), which is not the
 * bottleneck, so its rows measure the client.
 */
import { createBenchBridge } from "../lib/bridge-fixture.js";
import { summarizeCpuProfile, type ProfileSummary } from "../lib/cpu-profile.js";
import { profileDuring } from "../lib/profiler.js";
import { connectNodeMachineLoop } from "../lib/machine-loop.js";
import { connectNodeLoop, grpcJsLoop, type StreamLoop } from "../lib/raw-clients.js";
import { startServerProcess, type BenchServerKind, type ServerHandle } from "../lib/server-handle.js";
import { RunSet, type Spread } from "../lib/stats.js";

/**
 * "connect-node+machine": the floor of the design, a bare connect-node loop
 * that hands each turn's messages to the bridge statechart as one
 * `stream.events` (as the bridge does) and counts the emitted
 * `projectRemoved`: the transport plus the machine, nothing else.
 */
export type ThroughputClient = "bridge" | "connect-node" | "grpc-js" | "connect-node+machine";

export interface ThroughputOptions {
  events: number;
  runs: number;
  warmupEvents: number;
  clients?: ThroughputClient[];
  /** After the measured rounds, one more bridge run under the V8 profiler, written here. */
  profileFile?: string;
  /** Events of the profiled run. Defaults to `events`. */
  profileEvents?: number;
  /**
   * The servers to run the comparison on, each in turn. The top-level figures
   * of the result are the first server's; `byServer` holds each. The profiled
   * run uses the fast server when it is listed. Defaults to ["dev"].
   */
  servers?: BenchServerKind[];
}

/** One server's comparison. */
export interface ThroughputRows {
  server: BenchServerKind;
  /** Events per second, per client. */
  rate: Record<ThroughputClient, Spread>;
  /** Client CPU (user+system) µs per event, per client. */
  cpuUsPerEvent: Record<ThroughputClient, Spread>;
  /** Per run: bridge rate / connect-node rate (same round). */
  ratioVsConnect: Spread;
  ratioVsGrpcJs: Spread;
  cpuRatioVsConnect: Spread;
  /** Per run: the floor client's rate and CPU per event against connect-node's, when it ran. */
  floor?: { ratioVsConnect: Spread; cpuRatioVsConnect: Spread };
  /** Checks that no event was lost: server sent and dropped, handler count. */
  verified: { sent: number; dropped: number; received: number; expected: number };
}

export interface ThroughputResult extends ThroughputRows {
  events: number;
  /** Events of the profiled run, when there was one. */
  profileEvents?: number;
  /** The server the profiled run read from. */
  profileServer?: BenchServerKind;
  runs: number;
  /** Where the bridge's time goes (one extra, profiled run), if asked. */
  profile?: ProfileSummary;
  /** Every server's comparison (the top-level figures are the first's). */
  byServer?: Partial<Record<BenchServerKind, ThroughputRows>>;
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
  } else if (client === "connect-node+machine") {
    loop = connectNodeMachineLoop(server.url, onEvent, { batchPerTurn: true });
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

async function compareOn(
  kind: BenchServerKind,
  options: ThroughputOptions,
  profileFile: string | undefined,
): Promise<{ rows: ThroughputRows; profile?: ProfileSummary }> {
  const clients = options.clients ?? ["connect-node", "grpc-js", "bridge"];
  const server = await startServerProcess({ kind, streamBufferSize: Math.max(options.events, options.warmupEvents) + 1 });
  const rate = new RunSet<ThroughputClient>();
  const cpu = new RunSet<ThroughputClient>();
  const ratios = new RunSet<"connect" | "grpcjs" | "cpuConnect" | "floorConnect" | "floorCpuConnect">();
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
      const floor = round["connect-node+machine"];
      if (floor && round["connect-node"]) {
        ratios.add("floorConnect", floor.rate / round["connect-node"].rate);
        ratios.add("floorCpuConnect", floor.cpuUsPerEvent / round["connect-node"].cpuUsPerEvent);
      }
    }
    const after = await server.stats();
    let profile: ProfileSummary | undefined;
    if (profileFile !== undefined) {
      await profileDuring(profileFile, () => runOnce(server, "bridge", options.profileEvents ?? options.events, "profiled-"));
      profile = summarizeCpuProfile(profileFile, [
        /^send xstate/,
        /^macrostep xstate/,
        /^acceptStreamEvents|^admitRemovals/,
        /^drain src\/dispatcher/,
        /^fanOut|^dispatchRemoval/,
        /^createProjectEventsActor|src\/bridge-actors/,
      ]);
    }
    const rows: ThroughputRows = {
      server: kind,
      rate: rate.all() as Record<ThroughputClient, Spread>,
      cpuUsPerEvent: cpu.all() as Record<ThroughputClient, Spread>,
      ratioVsConnect: ratios.get("connect"),
      ratioVsGrpcJs: ratios.get("grpcjs"),
      cpuRatioVsConnect: ratios.get("cpuConnect"),
      ...(clients.includes("connect-node+machine")
        ? { floor: { ratioVsConnect: ratios.get("floorConnect"), cpuRatioVsConnect: ratios.get("floorCpuConnect") } }
        : {}),
      verified: {
        sent: after.eventsSent - before.eventsSent,
        dropped: after.eventsDropped - before.eventsDropped,
        received,
        expected,
      },
    };
    return profile ? { rows, profile } : { rows };
  } finally {
    await server.close();
  }
}

export async function runThroughput(options: ThroughputOptions): Promise<ThroughputResult> {
  const servers = options.servers ?? ["dev"];
  const profileOn = servers.includes("fast") ? "fast" : servers[0];
  const byServer: Partial<Record<BenchServerKind, ThroughputRows>> = {};
  let profile: ProfileSummary | undefined;
  for (const kind of servers) {
    const r = await compareOn(kind, options, kind === profileOn ? options.profileFile : undefined);
    byServer[kind] = r.rows;
    if (r.profile) profile = r.profile;
  }
  const first = byServer[servers[0] as BenchServerKind] as ThroughputRows;
  return {
    ...first,
    events: options.events,
    runs: options.runs,
    ...(profile && profileOn ? { profile, profileEvents: options.profileEvents ?? options.events, profileServer: profileOn } : {}),
    byServer,
  };
}
