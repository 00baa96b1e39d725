/**
 * One fleet scenario: N full bridges (createBridge with an injected client
 * each) on one simulated clock against one SimServer, started at random
 * times, optionally with the server down for a while, and removals made
 * while it is down. Time jumps from one timer to the next; after each jump
 * the microtask queue is drained, so promise-based actors run as they would.
 */
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { fromPromise } from "xstate";
import type { ProbeLinkInput } from "../../machines/bridge.types.js";
import * as localBridge from "../../src/bridge.js";
import * as localShared from "../../src/bridge-machine-shared.js";
import * as localErrors from "../../src/call-errors.js";
import * as localIndex from "../../src/index.js";
import type { Bridge, BridgeOptions, BridgeTiming, Logger } from "../../src/index.js";
import { seededRandom } from "../../test/helpers/seeded-random.js";
import { HeapSimulatedClock } from "./heap-clock.js";
import { SimServer, type SimServerOptions } from "./sim-server.js";

/**
 * The bridge code a policy runs: this checkout's, or another checkout's
 * (`--bridge-root`), so that one run can compare an older bridge with this one.
 */
export interface BridgeImpl {
  /** "this checkout" or the other checkout's path. */
  label: string;
  createBridge(options: BridgeOptions): Bridge;
  // biome-ignore lint/suspicious/noExplicitAny: another checkout's machine type is not this one's
  createBridgeOn(machine: any, options: BridgeOptions): Bridge;
  // biome-ignore lint/suspicious/noExplicitAny: another checkout's machine type is not this one's
  sharedBridgeMachine: any;
  HandlerRegistry: typeof localIndex.HandlerRegistry;
  ServerGoawayError: new () => Error;
}

export const localBridgeImpl: BridgeImpl = {
  label: "this checkout",
  createBridge: localIndex.createBridge,
  createBridgeOn: localBridge.createBridgeOn,
  sharedBridgeMachine: localShared.sharedBridgeMachine,
  HandlerRegistry: localIndex.HandlerRegistry,
  ServerGoawayError: localErrors.ServerGoawayError,
};

/** Loads src/bridge.ts and friends from another checkout (it needs its own node_modules). */
export async function loadBridgeImpl(root: string): Promise<BridgeImpl> {
  const load = (rel: string) => import(pathToFileURL(join(root, rel)).href);
  const [bridge, shared, errors, index] = await Promise.all([
    load("src/bridge.ts"),
    load("src/bridge-machine-shared.ts"),
    load("src/call-errors.ts"),
    load("src/index.ts"),
  ]);
  return {
    label: root,
    createBridge: index.createBridge,
    createBridgeOn: bridge.createBridgeOn,
    sharedBridgeMachine: shared.sharedBridgeMachine,
    HandlerRegistry: index.HandlerRegistry,
    ServerGoawayError: errors.ServerGoawayError,
  };
}

/**
 * - bridge: the shipped policy (defaults: jitter ±20 %, 1 s → 60 s, reset on
 *   first message or after 10 s streaming, immediate resync on every open);
 * - seed: the seed's policy: no jitter (timing.backoffJitter 0), 1 s → 60 s,
 *   attempt counter reset as soon as the stream is open (timing.stableAfterMs
 *   0), no resync on (re)connect (the machine's `requestSync` action
 *   provided as a no-op on the shared machine, once), and no link probe (a
 *   heartbeat past its deadline makes the link suspect at once, as before
 *   issue 21).
 */
export type FleetPolicy = "bridge" | "seed";

/** Per-second series and totals at a server of finite capacity. */
export interface CapacityRun {
  /** Calls refused at once (the bound), per second. */
  refusedCalls: number[];
  /** Calls whose work was done, per second. */
  servedCalls: number[];
  /** Largest queue in each second (FIFO: waiting; processor sharing: in service). */
  queueMax: number[];
  /** Streams open at the server at the end of each second. */
  openStreams: number[];
  /** Wait of served calls beyond their own service time, ms: p50, p99, max. */
  waitMs: { p50: number; p99: number; max: number };
  streamsServed: number;
  /** Streams the server had served that the bridge aborted while the server was up. */
  streamsAbortedByClient: number;
  abandonedQueued: number;
  abandonedInService: number;
}

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
  /** The server's capacity model, switched on at `fromMs` (the fleet starts against an unlimited server). */
  capacity?: (NonNullable<SimServerOptions["capacity"]> & { fromMs: number }) | undefined;
  /** A graceful restart (GOAWAY to every stream, next instance ready at once) at this time. */
  restartAtMs?: number | undefined;
  /** The capacity drops to `callsPerSecond` for a while, then comes back. */
  slowPeriod?: { atMs: number; forMs: number; callsPerSecond: number } | undefined;
  /** Projects removed at random times in [fromMs, toMs) instead of during the outage. */
  removals?: { fromMs: number; toMs: number; count: number } | undefined;
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
  /** Present when the scenario has a capacity model. */
  capacity?: CapacityRun;
}

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number;
}

export const seedTiming: Partial<BridgeTiming> = { backoffJitter: 0, stableAfterMs: 0 };

/** The seed's policy always runs on this checkout's machine. */
export const seedMachine = localShared.sharedBridgeMachine.provide({
  actions: { requestSync: () => {} },
  // The seed has no link probe: a heartbeat past its deadline makes the link suspect at once.
  actors: { probeLink: fromPromise<boolean, ProbeLinkInput>(() => Promise.resolve(false)) },
});

export async function simulateFleet(
  scenario: FleetScenario,
  onProgress?: (simMs: number) => void,
  impl: BridgeImpl = localBridgeImpl,
): Promise<FleetRun> {
  const wall0 = performance.now();
  const clock = new HeapSimulatedClock();
  const server = new SimServer({
    clock,
    rttMs: scenario.rttMs,
    capacity: scenario.capacity,
    goawayError: () => new (scenario.policy === "seed" ? localErrors.ServerGoawayError : impl.ServerGoawayError)(),
  });
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
  if (scenario.outage || scenario.removals) {
    const count = scenario.removals?.count ?? scenario.removalsDuringOutage;
    while (removedDuringOutage.size < Math.min(pool, count)) removedDuringOutage.add(`proj-${Math.floor(rnd() * pool)}`);
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
    const registry = new (scenario.policy === "seed" ? localIndex.HandlerRegistry : impl.HandlerRegistry)();
    const seen = new Set<string>();
    registry.register({
      name: "fleet-recorder",
      onProjectRemoved(projectId, info) {
        // Every open stream hears every REMOVED event; only tracked projects count as deliveries.
        if (seen.has(projectId) || !tracked.includes(projectId)) return;
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
    const bridge = scenario.policy === "seed" ? localBridge.createBridgeOn(seedMachine, options) : impl.createBridge(options);
    bridges.push(bridge);
    clock.setTimeout(() => bridge.start(), Math.floor(rnd() * scenario.startSpreadMs));
  }
  if (scenario.outage) {
    const { atMs, forMs } = scenario.outage;
    clock.setTimeout(() => server.goDown(), atMs);
    clock.setTimeout(() => server.comeBack(), atMs + forMs);
    if (!scenario.removals)
      for (const id of removedDuringOutage) clock.setTimeout(() => server.removeProject(id), atMs + 1 + Math.floor(rnd() * (forMs - 2)));
  }
  if (scenario.removals) {
    const { fromMs, toMs } = scenario.removals;
    for (const id of removedDuringOutage) clock.setTimeout(() => server.removeProject(id), fromMs + Math.floor(rnd() * (toMs - fromMs)));
  }
  if (scenario.capacity) clock.setTimeout(() => (server.capacityOn = true), scenario.capacity.fromMs);
  if (scenario.restartAtMs !== undefined) clock.setTimeout(() => server.restart(), scenario.restartAtMs);
  if (scenario.slowPeriod && server.capacity) {
    const { atMs, forMs, callsPerSecond } = scenario.slowPeriod;
    const capacity = server.capacity;
    const normal = capacity.callsPerSecond;
    clock.setTimeout(() => capacity.setCallsPerSecond(callsPerSecond), atMs);
    clock.setTimeout(() => capacity.setCallsPerSecond(normal), atMs + forMs);
  }
  const openStreams: number[] = [];
  if (scenario.capacity) {
    const sample = () => {
      openStreams.push(server.openStreams);
      if (clock.now() + 1000 <= scenario.endMs) clock.setTimeout(sample, 1000);
    };
    clock.setTimeout(sample, 999);
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
  server.counting = false;
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
  let capacity: CapacityRun | undefined;
  if (server.capacity) {
    const waits = server.waitsMs.slice().sort((a, b) => a - b);
    capacity = {
      refusedCalls: Array.from({ length: seconds }, (_, s) => server.refusedCalls.at(s)),
      servedCalls: Array.from({ length: seconds }, (_, s) => server.servedCalls.at(s)),
      queueMax: Array.from({ length: seconds }, (_, s) => server.queueMax.at(s)),
      openStreams,
      waitMs: { p50: pct(waits, 50), p99: pct(waits, 99), max: waits[waits.length - 1] ?? 0 },
      streamsServed: server.streamsServed,
      streamsAbortedByClient: server.streamsAbortedByClient,
      abandonedQueued: server.capacity.counters.abandonedQueued,
      abandonedInService: server.capacity.counters.abandonedInService,
    };
  }
  return {
    ...(capacity ? { capacity } : {}),
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
