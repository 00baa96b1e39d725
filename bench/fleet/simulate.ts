/**
 * One fleet scenario: N full bridges (createBridge with an injected client
 * each) on one simulated clock against one SimServer, started at random
 * times, optionally with the server down for a while, and removals made
 * while it is down. Time jumps from one timer to the next; after each jump
 * the microtask queue is drained, so promise-based actors run as they would.
 */
import { createBridge, HandlerRegistry, type Bridge, type BridgeOptions, type BridgeTiming, type Logger } from "../../src/index.js";
import { createBridgeOn } from "../../src/bridge.js";
import { sharedBridgeMachine } from "../../src/bridge-machine-shared.js";
import { seededRandom } from "../../test/helpers/seeded-random.js";
import { HeapSimulatedClock } from "./heap-clock.js";
import { SimServer } from "./sim-server.js";

/**
 * - bridge: the shipped policy (defaults: jitter ±20 %, 1 s → 60 s, reset on
 *   first message or after 10 s streaming, immediate resync on every open);
 * - seed: the seed's policy: no jitter (timing.backoffJitter 0), 1 s → 60 s,
 *   attempt counter reset as soon as the stream is open (timing.stableAfterMs
 *   0), and no resync on (re)connect (the machine's `requestSync` action
 *   provided as a no-op on the shared machine, once).
 */
export type FleetPolicy = "bridge" | "seed";

export interface FleetScenario {
  policy: FleetPolicy;
  bridges: number;
  /** Bridges start at uniform random times in [0, startSpreadMs). */
  startSpreadMs: number;
  /** When the server goes down, and for how long; none if undefined. */
  outage?: { atMs: number; forMs: number };
  /** Projects removed at random times while the server is down. */
  removalsDuringOutage: number;
  /** Project ids each bridge tracks (heartbeat), drawn from a pool of bridges/2. */
  projectsPerBridge: number;
  endMs: number;
  rttMs: number;
  seed: number;
}

export interface Delivery {
  bridge: number;
  projectId: string;
  source: "stream" | "heartbeat";
  /** Sim ms at which the handler was called. */
  atMs: number;
}

export interface FleetRun {
  scenario: FleetScenario;
  /** ProjectEvents calls per simulated second. */
  streamCalls: number[];
  /** SyncProjectState calls per simulated second. */
  syncCalls: number[];
  /** Each (bridge, removed tracked project) the handler heard, first time only. */
  deliveries: Delivery[];
  /** (bridge, project) pairs that should be delivered: removed during the outage and tracked. */
  expectedDeliveries: number;
  /** Per bridge: sim ms of the ProjectEvents call that the server accepted last, and of its acceptance. */
  lastCallAtMs: number[];
  lastAcceptedAtMs: number[];
  /** Bridges streaming at the end. */
  streamingAtEnd: number;
  wallS: number;
  heapUsedMB: number;
  /** Timer jumps the simulation made. */
  steps: number;
  /** Lines the bridges logged at warn or error. */
  warnLines: number;
}

const seedTiming: Partial<BridgeTiming> = { backoffJitter: 0, stableAfterMs: 0 };

const seedMachine = sharedBridgeMachine.provide({ actions: { requestSync: () => {} } });

export async function simulateFleet(scenario: FleetScenario, onProgress?: (simMs: number) => void): Promise<FleetRun> {
  const wall0 = performance.now();
  const clock = new HeapSimulatedClock();
  const server = new SimServer({ clock, rttMs: scenario.rttMs });
  const rnd = seededRandom(scenario.seed);
  let warnLines = 0;
  const logger: Logger = {
    debug() {},
    info() {},
    warn: () => void warnLines++,
    error: () => void warnLines++,
  };
  const pool = Math.max(1, Math.floor(scenario.bridges / 2));
  const removedDuringOutage = new Set<string>();
  if (scenario.outage) {
    while (removedDuringOutage.size < Math.min(pool, scenario.removalsDuringOutage))
      removedDuringOutage.add(`proj-${Math.floor(rnd() * pool)}`);
  }
  const deliveries: Delivery[] = [];
  const bridges: Bridge[] = [];
  let expectedDeliveries = 0;
  for (let i = 0; i < scenario.bridges; i++) {
    const tracked: string[] = [];
    while (tracked.length < scenario.projectsPerBridge) {
      const id = `proj-${Math.floor(rnd() * pool)}`;
      if (!tracked.includes(id)) tracked.push(id);
    }
    for (const id of tracked) if (removedDuringOutage.has(id)) expectedDeliveries++;
    const registry = new HandlerRegistry();
    const seen = new Set<string>();
    registry.register({
      name: "fleet-recorder",
      onProjectRemoved(projectId, info) {
        if (seen.has(projectId)) return;
        seen.add(projectId);
        deliveries.push({ bridge: i, projectId, source: info.source, atMs: clock.now() });
      },
    });
    const options: BridgeOptions = {
      registry,
      tracker: { connectedProjectIds: () => tracked },
      client: server.clientFor(i),
      clock,
      random: seededRandom(scenario.seed * 100_003 + i),
      logger,
      env: {},
      clientId: `daemon-${i}`,
      ...(scenario.policy === "seed" ? { timing: seedTiming } : {}),
    };
    const bridge = scenario.policy === "seed" ? createBridgeOn(seedMachine, options) : createBridge(options);
    bridges.push(bridge);
    clock.setTimeout(() => bridge.start(), Math.floor(rnd() * scenario.startSpreadMs));
  }
  if (scenario.outage) {
    const { atMs, forMs } = scenario.outage;
    clock.setTimeout(() => server.goDown(), atMs);
    clock.setTimeout(() => server.comeBack(), atMs + forMs);
    for (const id of removedDuringOutage) clock.setTimeout(() => server.removeProject(id), atMs + 1 + Math.floor(rnd() * (forMs - 2)));
  }

  let steps = 0;
  let lastProgress = 0;
  for (;;) {
    const next = clock.nextDueMs();
    if (next === undefined || next > scenario.endMs) break;
    clock.set(next);
    steps++;
    await new Promise<void>((r) => setImmediate(r));
    if (onProgress && next - lastProgress >= 60_000) {
      lastProgress = next;
      onProgress(next);
    }
  }
  clock.set(scenario.endMs);
  await new Promise<void>((r) => setImmediate(r));
  const streamingAtEnd = bridges.filter((b) => b.status().state === "streaming").length;
  // Live heap: garbage left by the run would otherwise count, as much as the
  // GC happened to leave at this moment (the child runs with --expose-gc).
  (globalThis as { gc?: () => void }).gc?.();
  const heapUsedMB = process.memoryUsage().heapUsed / 2 ** 20;

  // Stop every bridge on the simulated clock.
  const stops = bridges.map((b) => b.stop());
  for (let i = 0; i < 100 && clock.nextDueMs() !== undefined; i++) {
    clock.increment(100);
    await new Promise<void>((r) => setImmediate(r));
  }
  await Promise.all(stops);

  const lastCallAtMs: number[] = [];
  const lastAcceptedAtMs: number[] = [];
  for (let i = 0; i < scenario.bridges; i++) {
    lastCallAtMs.push(server.acceptedCallAt.get(i) ?? Number.NaN);
    lastAcceptedAtMs.push(server.acceptedAt.get(i) ?? Number.NaN);
  }
  const seconds = Math.ceil(scenario.endMs / 1000);
  return {
    scenario,
    streamCalls: Array.from({ length: seconds }, (_, s) => server.streamCalls.at(s)),
    syncCalls: Array.from({ length: seconds }, (_, s) => server.syncCalls.at(s)),
    deliveries,
    expectedDeliveries,
    lastCallAtMs,
    lastAcceptedAtMs,
    streamingAtEnd,
    wallS: (performance.now() - wall0) / 1000,
    heapUsedMB,
    steps,
    warnLines,
  };
}
