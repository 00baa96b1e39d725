/**
 * The simulation's prediction checked on real sockets at small scale
 * (issue 21): N real bridges (createBridge, connect-node over loopback, one
 * process) against the dev server; a graceful restart (shutdown: GOAWAY to
 * every stream) into a dev server with the capacity model
 * (src/dev-server/call-capacity.ts on real timers) on the same port, at
 * once; the time until 99 % of the bridges hold a stream the server served,
 * sampled each second. The simulation runs the same N, C and timeline
 * (bench/fleet/capacity-study.ts, case graceful FIFO).
 */
import { createBridge, HandlerRegistry, type Bridge, type Logger } from "../../src/index.js";
import { createBridgeOn } from "../../src/bridge.js";
import { type DevServer, startDevServer } from "../../src/dev-server/index.js";
import { seededRandom } from "../../test/helpers/seeded-random.js";
import { analyzeCapacity } from "./capacity-analyze.js";
import { capacityScenario } from "./capacity-study.js";
import { seedMachine, seedTiming, simulateFleet } from "./simulate.js";

export interface RealCheckOptions {
  bridges: number;
  callsPerSecond: number;
  policy: "bridge" | "seed";
  /** Bridges start at uniform random times over this span (the simulation's 60 s). */
  startSpreadMs: number;
  /** How long to watch after the restart, ms. */
  watchMs: number;
  seed: number;
}

export interface RealCheckResult {
  /** "seed", "bridge", or (an earlier run relabelled) "old bridge". */
  policy: string;
  bridges: number;
  callsPerSecond: number;
  /** Seconds from the restart until 99 % streaming, real sockets; undefined if not within the watch. */
  realTo99S: number | undefined;
  /** The same in the simulation. */
  simTo99S: number | undefined;
  /** Streams open at the server each second after the restart (real). */
  realOpen: number[];
  watchS: number;
}

const silent: Logger = { debug() {}, info() {}, warn() {}, error() {} };
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function realCheck(o: RealCheckOptions): Promise<RealCheckResult> {
  const rnd = seededRandom(o.seed);
  // Every bridge comes from 127.0.0.1: lift the per-client session cap (64 by default).
  const limits = { maxSessionsPerClient: 4 * o.bridges + 16, maxSessions: 4 * o.bridges + 16 };
  let server: DevServer = await startDevServer(limits);
  const pool = Math.max(1, Math.floor(o.bridges / 2));
  const bridges: Bridge[] = [];
  for (let i = 0; i < o.bridges; i++) {
    const tracked = Array.from({ length: 4 }, () => `proj-${Math.floor(rnd() * pool)}`);
    const options = {
      registry: new HandlerRegistry(),
      tracker: { connectedProjectIds: () => tracked },
      serverUrl: server.url,
      env: {},
      clientId: `daemon-${i}`,
      logger: silent,
      random: seededRandom(o.seed * 100_003 + i),
      ...(o.policy === "seed" ? { timing: seedTiming } : {}),
    };
    bridges.push(o.policy === "seed" ? createBridgeOn(seedMachine, options) : createBridge(options));
  }
  const starts = bridges.map((b) => setTimeout(() => b.start(), Math.floor(rnd() * o.startSpreadMs)));
  try {
    await sleep(o.startSpreadMs);
    await server.waitForStreams(Math.ceil(o.bridges * 0.99), 30_000).catch(() => {});
    // Graceful restart: GOAWAY to every stream; the next instance listens at once on the same port.
    const old = server;
    const stopped = old.shutdown({ timeoutMs: 1000 });
    server = await startDevServer({ ...limits, port: old.port, store: old.store, capacity: { callsPerSecond: o.callsPerSecond } });
    const t0 = performance.now();
    const realOpen: number[] = [];
    let to99: number | undefined;
    for (let s = 1; s * 1000 <= o.watchMs; s++) {
      await sleep(t0 + s * 1000 - performance.now());
      const open = server.stats().openStreams;
      realOpen.push(open);
      if (to99 === undefined && open >= 0.99 * o.bridges) {
        to99 = s;
        break;
      }
    }
    await stopped;
    return {
      policy: o.policy,
      bridges: o.bridges,
      callsPerSecond: o.callsPerSecond,
      realTo99S: to99,
      simTo99S: undefined,
      realOpen,
      watchS: o.watchMs / 1000,
    };
  } finally {
    for (const t of starts) clearTimeout(t);
    await Promise.all(bridges.map((b) => b.stop()));
    await server.close();
  }
}

/** The real check and the simulation at the same N, C and timeline, for one policy. */
export async function realVersusSim(o: RealCheckOptions): Promise<RealCheckResult> {
  const real = await realCheck(o);
  const c = { id: "real-check", kind: "graceful" as const, server: "FIFO", callsPerSecond: o.callsPerSecond, discipline: "fifo" as const };
  const { scenario, triggerAtS, returnS } = capacityScenario(c, o.policy, o.bridges, o.watchMs / 1000);
  const sim = analyzeCapacity(await simulateFleet({ ...scenario, seed: o.seed }), triggerAtS, returnS);
  return { ...real, simTo99S: sim.to99StreamingS };
}
