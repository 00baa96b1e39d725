/**
 * Where the bridge's per-event time goes, without a network: each layer of
 * the stream path timed alone, back to back (warm) and one event per
 * millisecond, the process idle in between (as in the latency benchmark,
 * where every event runs alone on a cold CPU).
 *
 * - machine: bridgeMachine.send(stream.events, one message each) in `streaming`, fake actors;
 * - dedup: admitRemovals() on a full window (the machine calls it per event);
 * - dispatcher: createDispatcher() enqueue → handler called;
 * - bridge: createBridge() with an injected in-memory client whose stream
 *   yields the events: everything the bridge adds on top of the transport.
 */
import { create } from "@bufbuild/protobuf";
import { assign, createActor, setup } from "xstate";
import type { StreamEvent } from "../../machines/bridge.types.js";
import { admitRemovals, removalKey } from "../../machines/dedup-window.js";
import { createDispatcher } from "../../src/dispatcher.js";
import { ProjectEventSchema, SyncProjectStateResponseSchema, type ProjectEvent } from "../../src/gen/engram/v1/engram_pb.js";
import { createBridge, HandlerRegistry, type EventsClient } from "../../src/index.js";
import { realClock } from "../../src/bridge-options.js";
import { defaultLogger } from "../lib/bridge-fixture.js";
import { startStreamingMachine } from "../lib/machine-loop.js";
import { RunSet, type Spread } from "../lib/stats.js";

export interface BreakdownOptions {
  events: number;
  /** Events of the one-per-millisecond measurements. */
  isolatedEvents: number;
  runs: number;
  /** Events per allocation measurement (batches of 100). Defaults to 5,000. */
  allocationEvents?: number;
}

export type Layer = "machine send" | "dedup (admitRemovals)" | "dispatcher" | "bridge, in-memory client";

/** What allocation is measured for: the layers, and XState itself on a one-state machine. */
export type AllocationLayer = Layer | "xstate alone (one state, one assign)";

export interface BreakdownResult {
  events: number;
  isolatedEvents: number;
  runs: number;
  /** µs per event, back to back. */
  warmUs: Record<Layer, Spread>;
  /** µs per event, one event per millisecond (idle in between). */
  isolatedUs: Record<Layer, Spread>;
  /** Bytes allocated per lone event (median over batches in which no GC ran). */
  allocBytes?: Record<AllocationLayer, Spread>;
  verified: { bridgeDelivered: number; expected: number };
}

/** Between two events: 1 ms idle, as at one event per millisecond (the CPU goes idle, caches go cold). */
const nextMacrotask = () => new Promise<void>((r) => setTimeout(r, 1));

function streamEvent(i: number): StreamEvent {
  return { eventId: String(i), eventType: 1, projectId: `p${i}`, timestampUnixMs: 0, reason: "", receivedAtMs: 0 };
}

async function machineLayer(n: number, isolated: boolean): Promise<number> {
  let removed = 0;
  const { parent, stop } = await startStreamingMachine(() => removed++);
  const t0 = process.hrtime.bigint();
  let spent = 0n;
  for (let i = 0; i < n; i++) {
    if (isolated) {
      await nextMacrotask();
      const a = process.hrtime.bigint();
      parent.send({ type: "stream.events", events: [streamEvent(i)] });
      spent += process.hrtime.bigint() - a;
    } else parent.send({ type: "stream.events", events: [streamEvent(i)] });
  }
  const total = isolated ? spent : process.hrtime.bigint() - t0;
  stop();
  if (removed !== n) throw new Error(`breakdown: machine emitted ${removed} of ${n}`);
  return Number(total) / 1000 / n;
}

async function dedupLayer(n: number, isolated: boolean): Promise<number> {
  let window: string[] = Array.from({ length: 256 }, (_, i) => removalKey(`w${i}`));
  let spent = 0n;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    if (isolated) {
      await nextMacrotask();
      const a = process.hrtime.bigint();
      window = admitRemovals(window, [`p${i}`], 256).keys;
      spent += process.hrtime.bigint() - a;
    } else window = admitRemovals(window, [`p${i}`], 256).keys;
  }
  return Number(isolated ? spent : process.hrtime.bigint() - t0) / 1000 / n;
}

async function dispatcherLayer(n: number, isolated: boolean): Promise<number> {
  const registry = new HandlerRegistry();
  let called = 0;
  let waiter: (() => void) | undefined;
  registry.register({
    name: "count",
    onProjectRemoved() {
      called++;
      waiter?.();
    },
  });
  const dispatcher = createDispatcher({ registry, clock: realClock, logger: defaultLogger, handlerTimeoutMs: 10_000 });
  let spent = 0n;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    if (isolated) {
      await nextMacrotask();
      const a = process.hrtime.bigint();
      const seen = new Promise<void>((r) => (waiter = r));
      dispatcher.enqueue(`p${i}`, { source: "stream", eventId: String(i) });
      await seen;
      spent += process.hrtime.bigint() - a;
    } else dispatcher.enqueue(`p${i}`, { source: "stream", eventId: String(i) });
  }
  await dispatcher.idle();
  const total = isolated ? spent : process.hrtime.bigint() - t0;
  dispatcher.close();
  if (called !== n) throw new Error(`breakdown: dispatcher called ${called} of ${n}`);
  return Number(total) / 1000 / n;
}

/** An EventsClient whose stream yields `events` when `go()` is called, one per `pace()` tick. */
function memoryClient(events: ProjectEvent[], isolated: boolean, onEmit: (i: number) => void) {
  let go!: () => void;
  const started = new Promise<void>((r) => (go = r));
  let opened!: () => void;
  const isOpen = new Promise<void>((r) => (opened = r));
  const client: EventsClient = {
    async *projectEvents(_req, opts) {
      opts.onHeader?.(new Headers());
      opened();
      await started;
      for (let i = 0; i < events.length; i++) {
        if (isolated) await nextMacrotask();
        onEmit(i);
        yield events[i] as ProjectEvent;
      }
      await new Promise<void>((r) => opts.signal.addEventListener("abort", () => r(), { once: true }));
    },
    async syncProjectState() {
      return create(SyncProjectStateResponseSchema, {});
    },
  };
  return { client, go, isOpen };
}

async function bridgeLayer(n: number, isolated: boolean): Promise<{ us: number; delivered: number }> {
  const events = Array.from({ length: n }, (_, i) => create(ProjectEventSchema, { eventId: String(i), eventType: 1, projectId: `p${i}` }));
  let delivered = 0;
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  let spent = 0n;
  let emittedAt = 0n;
  const registry = new HandlerRegistry();
  registry.register({
    name: "count",
    onProjectRemoved() {
      delivered++;
      if (isolated) spent += process.hrtime.bigint() - emittedAt;
      if (delivered === n) done();
    },
  });
  const mem = memoryClient(events, isolated, () => (emittedAt = process.hrtime.bigint()));
  const bridge = createBridge({ registry, client: mem.client, env: {}, logger: defaultLogger, clientId: "mem" });
  bridge.start();
  await mem.isOpen;
  const t0 = process.hrtime.bigint();
  mem.go();
  await finished;
  const total = isolated ? spent : process.hrtime.bigint() - t0;
  await bridge.stop();
  return { us: Number(total) / 1000 / n, delivered };
}

/**
 * Bytes allocated per call of `step`: the heap's growth over batches of 100
 * calls, keeping only batches in which no GC ran (a GC shrinks the heap, so
 * such a batch shows no growth and is dropped); the median of the rest.
 */
async function allocationPerEvent(step: (i: number) => Promise<void> | void, n: number): Promise<number> {
  for (let i = 0; i < 1000; i++) await step(i);
  const perEvent: number[] = [];
  for (let b = 0; b < n / 100; b++) {
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < 100; i++) await step(1_000_000 + b * 100 + i);
    const after = process.memoryUsage().heapUsed;
    if (after > before) perEvent.push((after - before) / 100);
  }
  perEvent.sort((a, b) => a - b);
  if (perEvent.length === 0) throw new Error("breakdown: every allocation batch ran a GC");
  return perEvent[perEvent.length >> 1] as number;
}

/** A one-state machine whose one event runs one assign: XState's own cost per event. */
const bareMachine = setup({}).createMachine({ context: { n: 0 }, on: { E: { actions: assign({ n: ({ context }) => context.n + 1 }) } } });

/** One step per layer, each on a fresh setup, for allocationPerEvent. */
async function allocationSteps(): Promise<{
  steps: Record<AllocationLayer, (i: number) => Promise<void> | void>;
  close: () => Promise<void>;
}> {
  const machine = await startStreamingMachine();
  let window: string[] = Array.from({ length: 256 }, (_, i) => removalKey(`w${i}`));
  const registry = new HandlerRegistry();
  let handled: (() => void) | undefined;
  registry.register({ name: "count", onProjectRemoved: () => handled?.() });
  const dispatcher = createDispatcher({ registry, clock: realClock, logger: defaultLogger, handlerTimeoutMs: 10_000 });
  const bare = createActor(bareMachine);
  bare.start();
  const bridge = await pushBridge();
  const steps: Record<AllocationLayer, (i: number) => Promise<void> | void> = {
    "machine send": (i) => void machine.parent.send({ type: "stream.events", events: [streamEvent(i)] }),
    "dedup (admitRemovals)": (i) => void (window = admitRemovals(window, [`p${i}`], 256).keys),
    dispatcher: (i) =>
      new Promise<void>((resolve) => {
        handled = resolve;
        dispatcher.enqueue(`p${i}`, { source: "stream", eventId: String(i) });
      }),
    "bridge, in-memory client": bridge.step,
    "xstate alone (one state, one assign)": () => void bare.send({ type: "E" }),
  };
  const close = async () => {
    machine.stop();
    bare.stop();
    dispatcher.close();
    await bridge.stop();
  };
  return { steps, close };
}

/** createBridge() on an in-memory client that yields one message per step; a step resolves when the handler ran. */
async function pushBridge(): Promise<{ step: (i: number) => Promise<void>; stop: () => Promise<void> }> {
  const queue: ProjectEvent[] = [];
  let wake: (() => void) | undefined;
  let handled: (() => void) | undefined;
  const client: EventsClient = {
    async *projectEvents(_req, opts) {
      opts.onHeader?.(new Headers());
      while (!opts.signal.aborted) {
        const ev = queue.shift();
        if (ev !== undefined) yield ev;
        else await new Promise<void>((r) => (wake = r));
      }
    },
    async syncProjectState() {
      return create(SyncProjectStateResponseSchema, {});
    },
  };
  const registry = new HandlerRegistry();
  registry.register({ name: "count", onProjectRemoved: () => handled?.() });
  const bridge = createBridge({ registry, client, env: {}, logger: defaultLogger, clientId: "alloc" });
  bridge.start();
  await nextMacrotask();
  return {
    step: (i) =>
      new Promise<void>((resolve) => {
        handled = resolve;
        queue.push(create(ProjectEventSchema, { eventId: String(i), eventType: 1, projectId: `p${i}` }));
        const w = wake;
        wake = undefined;
        w?.();
      }),
    stop: async () => {
      await bridge.stop();
      wake?.();
    },
  };
}

export async function runBreakdown(options: BreakdownOptions): Promise<BreakdownResult> {
  const warm = new RunSet<Layer>();
  const iso = new RunSet<Layer>();
  let delivered = 0;
  const isolatedN = options.isolatedEvents;
  // warm-up
  await machineLayer(2000, false);
  await dispatcherLayer(2000, false);
  await dedupLayer(2000, false);
  await bridgeLayer(2000, false);
  for (let r = 0; r < options.runs; r++) {
    warm.add("machine send", await machineLayer(options.events, false));
    warm.add("dedup (admitRemovals)", await dedupLayer(options.events, false));
    warm.add("dispatcher", await dispatcherLayer(options.events, false));
    const b = await bridgeLayer(options.events, false);
    warm.add("bridge, in-memory client", b.us);
    delivered += b.delivered;
    iso.add("machine send", await machineLayer(isolatedN, true));
    iso.add("dedup (admitRemovals)", await dedupLayer(isolatedN, true));
    iso.add("dispatcher", await dispatcherLayer(isolatedN, true));
    iso.add("bridge, in-memory client", (await bridgeLayer(isolatedN, true)).us);
  }
  const alloc = new RunSet<AllocationLayer>();
  for (let r = 0; r < options.runs; r++) {
    const { steps, close } = await allocationSteps();
    for (const [layer, step] of Object.entries(steps) as Array<[AllocationLayer, (i: number) => Promise<void> | void]>) {
      alloc.add(layer, await allocationPerEvent(step, options.allocationEvents ?? 5000));
    }
    await close();
  }
  return {
    events: options.events,
    isolatedEvents: isolatedN,
    runs: options.runs,
    warmUs: warm.all() as Record<Layer, Spread>,
    isolatedUs: iso.all() as Record<Layer, Spread>,
    allocBytes: alloc.all() as Record<AllocationLayer, Spread>,
    verified: { bridgeDelivered: delivered, expected: options.events * options.runs },
  };
}
