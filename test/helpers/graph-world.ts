/**
 * The world a graph path is replayed in: a real bridge (createBridge with its
 * real actors, dispatcher and registry) on a SimulatedClock, the scripted
 * in-process server, a tracker and a handler. Each step of a path is caused
 * here, never sent to the actor: the server sends, fails or ends, the sync is
 * answered, failed or left to time out, the clock advances by the planned
 * delay, start()/stop()/syncNow() are called. After each step the world checks
 * what the system shows against the planner's prediction.
 */
import * as assert from "uvu/assert";
import { SimulatedClock, type AnyEventObject, type AnyMachineSnapshot, type InspectionEvent } from "xstate";
import type { Code } from "@connectrpc/connect";
import type { BridgeCounters, StreamEvent, SyncResult } from "../../machines/bridge.types.js";
import { createBridge, type Bridge } from "../../src/bridge.js";
import { flattenConnection, heartbeatOf } from "../../src/bridge-status.js";
import { ServerGoawayError } from "../../src/call-errors.js";
import { syncRunOnMs } from "../../src/timing.js";
import { bridgeErrorCodes, type BridgeErrorCode } from "../../src/errors.js";
import { HandlerRegistry } from "../../src/handler-registry.js";
import { SessionTracker } from "../../src/session-tracker.js";
import type { Clock, ProjectRemovalAware, RemovalInfo } from "../../src/types.js";
import { capturingLogger } from "./e2e.js";
import { graphTiming, trackedIds, transitionKey, withSyncRemovals } from "./graph-model.js";
import type { GraphPath } from "./graph-paths.js";
import { describeStep } from "./graph-paths.js";
import type { PlannedStep } from "./graph-planner.js";
import { createScriptedServer, type ScriptedServer } from "./graph-server.js";

/** States and transitions the real bridge went through, from its inspection events. */
export interface CoverageRecorder {
  readonly states: Set<string>;
  readonly transitions: Set<string>;
  observe(event: InspectionEvent): void;
}

export function createCoverageRecorder(): CoverageRecorder {
  const states = new Set<string>();
  const transitions = new Set<string>();
  return {
    states,
    transitions,
    observe(event) {
      const snapshot = (event as { snapshot?: Partial<AnyMachineSnapshot> }).snapshot;
      for (const node of snapshot?._nodes ?? []) states.add(node.id);
      if (event.type === "@xstate.microstep") for (const t of event._transitions) transitions.add(transitionKey(t));
    },
  };
}

/** A clock over a SimulatedClock that knows which timers are pending and when they are due. */
export function createCountingClock(sim = new SimulatedClock()) {
  const pending = new Map<unknown, number>();
  const clock: Clock & { now(): number } = {
    setTimeout(fn, ms) {
      const id: unknown = sim.setTimeout(() => {
        pending.delete(id);
        fn();
      }, ms);
      pending.set(id, sim.now() + ms);
      return id;
    },
    clearTimeout(id) {
      pending.delete(id);
      sim.clearTimeout(id as number);
    },
    now: () => sim.now(),
  };
  return {
    clock,
    sim,
    pending: () => pending.size,
    /** When the earliest pending timer is due, if any. */
    nextDue: (): number | undefined => (pending.size === 0 ? undefined : Math.min(...pending.values())),
  };
}

/**
 * A handler that records every call; from call `holdFrom` on (0-based) it
 * keeps each call pending until released.
 */
export function createWorldHandler(holdFrom: number | undefined) {
  const calls: Array<{ projectId: string; info: RemovalInfo }> = [];
  const waiting: Array<() => void> = [];
  let released = false;
  const handler: ProjectRemovalAware & { calls: typeof calls; release(): void; ids(): string[] } = {
    name: "world-handler",
    calls,
    ids: () => calls.map((c) => `${c.info.source}:${c.projectId}`),
    release() {
      released = true;
      for (const resolve of waiting.splice(0)) resolve();
    },
    onProjectRemoved(projectId, info) {
      calls.push({ projectId, info });
      if (released || holdFrom === undefined || calls.length <= holdFrom) return undefined;
      return new Promise<void>((resolve) => waiting.push(resolve));
    },
  };
  return handler;
}

/** Lets every promise chain the last step started run to its end. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

const grpcCode = (code: string | undefined): Code => {
  const index = bridgeErrorCodes.indexOf(code as BridgeErrorCode);
  if (index < 0 || index > 15) throw new Error(`not a gRPC code: ${String(code)}`);
  return (index + 1) as Code;
};

const machineCounterKeys: Array<keyof BridgeCounters> = [
  "streamsOpened",
  "streamFailures",
  "streamEnds",
  "reconnects",
  "eventsReceived",
  "ignoredEvents",
  "duplicatesSuppressed",
  "removalsFromStream",
  "removalsFromHeartbeat",
  "syncs",
  "syncFailures",
  "suspects",
  "goaways",
  "refusedIds",
  "unreportedRemovals",
];

export interface World {
  bridge: Bridge;
  server: ScriptedServer;
  sim: SimulatedClock;
  pendingTimers(): number;
  handler: ReturnType<typeof createWorldHandler>;
  stopPromise: Promise<void> | undefined;
  stopResolvedAtMs: number | undefined;
  callsWhenStopResolved: number | undefined;
  /** How many jitter draws the bridge took. */
  randomDrawn(): number;
  /** Event types the bridge's machine received (inspection), drained by each step's check. */
  received: string[];
}

export function createWorld(path: GraphPath, coverage: CoverageRecorder): World {
  const { clock, sim, pending } = createCountingClock();
  const server = createScriptedServer({ now: () => sim.now() });
  const registry = new HandlerRegistry();
  const handler = createWorldHandler(path.plan.holdFromCall);
  registry.register(handler);
  const tracker = new SessionTracker();
  for (const id of trackedIds) tracker.connect(id);
  const draws = [...path.plan.random];
  let randomDrawn = 0;
  const received: string[] = [];
  let root: unknown;
  const bridge = createBridge({
    registry,
    tracker,
    client: server.client,
    clock,
    timing: graphTiming,
    clientId: "graph-client",
    logger: capturingLogger(),
    env: {},
    inspect: (event: InspectionEvent) => {
      coverage.observe(event);
      // stream.sent and sync.listed come with the step that opened the call
      // or started the round (the actor sends them itself): not listed.
      if (event.type === "@xstate.event" && event.actorRef === root && !automaticEvents.has(event.event.type)) {
        received.push(event.event.type);
      }
    },
    random: () => {
      const v = draws.shift();
      if (v === undefined) throw new Error("the bridge drew more jitter than the model planned");
      randomDrawn += 1;
      return v;
    },
  });
  root = bridge.actor;
  return {
    bridge,
    server,
    sim,
    pendingTimers: pending,
    handler,
    stopPromise: undefined,
    stopResolvedAtMs: undefined,
    callsWhenStopResolved: undefined,
    randomDrawn: () => randomDrawn,
    received,
  };
}

type Executor = (world: World, step: PlannedStep) => void | Promise<void>;

/** Advances the clock to one ms before the planned timer, checks nothing moved, then lets it fire. */
const advanceClock: Executor = async (world, step) => {
  if (step.advanceMs > 1) {
    world.sim.increment(step.advanceMs - 1);
    await settle();
    assert.equal(world.bridge.actor.getSnapshot().value, step.before.value, `1 ms before ${step.timer} nothing may happen`);
  }
  world.sim.increment(Math.min(1, step.advanceMs));
};

/** Events the machine receives with a step, never as one of their own. */
const automaticEvents = new Set(["xstate.init", "stream.sent", "sync.listed", "sync.live", "removal.released"]);

/**
 * How each step is caused in the world, by event type (delayed events by
 * their `xstate.after.` prefix). Never `actor.send`.
 */
export const executors: Record<string, Executor> = {
  START: (w) => w.bridge.start(),
  STOP: (w) => {
    w.stopPromise = w.bridge.stop().then(() => {
      w.stopResolvedAtMs = w.sim.now();
      w.callsWhenStopResolved = w.handler.calls.length;
    });
  },
  "SYNC.NOW": (w) => w.bridge.syncNow(),
  "stream.opened": (w) => w.server.currentStream().sendHeaders(),
  "stream.events": (w, step) => {
    const [ev] = step.event.events as [StreamEvent];
    w.server.currentStream().send({ eventId: ev.eventId, eventType: ev.eventType, projectId: ev.projectId, reason: ev.reason });
  },
  "xstate.done.actor.projectEvents": (w) => w.server.currentStream().end(),
  "xstate.error.actor.projectEvents": (w, step) =>
    step.event.error instanceof ServerGoawayError
      ? w.server.currentStream().goaway()
      : w.server.currentStream().fail(grpcCode((step.event.error as { code: string }).code)),
  "xstate.done.actor.syncProjectState": (w, step) => w.server.currentSync().answer({ removed: (step.event.output as SyncResult).removed }),
  "xstate.error.actor.syncProjectState": (w, step) => {
    if (step.timer !== undefined) return advanceClock(w, step);
    w.server.currentSync().fail(grpcCode((step.event.error as { code: string }).code));
  },
  "xstate.done.actor.drainDispatch": (w) => w.handler.release(),
  // The round's deadline passes: the actor sends sync.late and the call runs on.
  "sync.late": advanceClock,
  "xstate.done.actor.probeLink": (w, step) => (step.timer !== undefined ? advanceClock(w, step) : w.server.currentProbe().answer(true)),
  "xstate.error.actor.probeLink": (w) => w.server.currentProbe().fail(),
  "xstate.after.": advanceClock,
};

function executorFor(event: AnyEventObject): Executor {
  const exec = executors[event.type] ?? (event.type.startsWith("xstate.after.") ? executors["xstate.after."] : undefined);
  if (!exec) throw new Error(`no executor causes ${event.type} in the world`);
  return exec;
}

const connectionOf = (s: AnyMachineSnapshot) => (s.status === "done" ? "stopped" : flattenConnection(s.value));
const heartbeatStateOf = (s: AnyMachineSnapshot) => (s.status === "done" ? "stopped" : heartbeatOf(s.value));

/**
 * What the system shows after a step, from outside the machine: the status,
 * the server's open streams and syncs in flight, the handler's calls, the
 * clock's pending timers. `immediate` is the view right after a synchronous
 * call (stop()), before any promise ran.
 */
export function assertShows(world: World, step: PlannedStep, where: string, immediate = false): void {
  const { bridge, server } = world;
  const expected = step.after;
  const ctx = expected.context as { counters: BridgeCounters; attempt: number; sessionEpoch: number; lastError: { code: string } | null };
  const status = bridge.status();
  const connection = connectionOf(expected);
  assert.is(status.state, connection, `${where}: status().state`);
  assert.is(status.heartbeat, heartbeatStateOf(expected), `${where}: status().heartbeat`);
  assert.equal(bridge.actor.getSnapshot().value, expected.value, `${where}: machine state`);
  assert.is(
    server.openStreams(),
    connection === "connecting" || connection === "streaming" ? 1 : 0,
    `${where}: streams open on the server`,
  );
  assert.ok(server.maxOpenStreams <= 1, `${where}: the server saw ${server.maxOpenStreams} streams open at once`);
  // A round probing the link after its deadline still has its call in flight (it runs on if the link answers).
  assert.is(
    server.syncsInFlight(),
    status.heartbeat === "syncing" || status.heartbeat === "probing" ? 1 : 0,
    `${where}: syncs in flight on the server`,
  );
  if (immediate) return;

  assert.equal(world.handler.ids(), step.handlerCalls, `${where}: handler calls`);
  for (const key of machineCounterKeys) assert.is(status.counters[key], ctx.counters[key], `${where}: counters.${key}`);
  assert.is(status.attempt, ctx.attempt, `${where}: attempt`);
  assert.is(status.lastError?.code ?? null, ctx.lastError?.code ?? null, `${where}: lastError.code`);
  assert.is(world.pendingTimers(), step.timers.size, `${where}: timers pending on the clock (${[...step.timers.keys()].join(", ")})`);

  if (connection === "backoff") {
    const key = [...step.timers.keys()].find(
      (k) => k.startsWith("xstate.after.backoffDelay.") || k.startsWith("xstate.after.reopenDelay."),
    );
    assert.ok(key, `${where}: a backoff timer is planned`);
    assert.is(status.timestamps.nextRetryAtMs, step.timers.get(key!), `${where}: nextRetryAtMs is when the backoff timer fires`);
    const waitMs = status.timestamps.nextRetryAtMs! - world.sim.now();
    assert.ok(
      waitMs <= graphTiming.backoffMaxMs * (1 + graphTiming.backoffJitter),
      `${where}: backoff ${waitMs} ms exceeds max·(1+jitter)`,
    );
  } else {
    assert.is(status.timestamps.nextRetryAtMs, undefined, `${where}: nextRetryAtMs outside backoff`);
  }
  if (connection === "connecting" || connection === "streaming") {
    const stream = server.currentStream();
    assert.is(stream.sessionEpoch, ctx.sessionEpoch, `${where}: the stream uses the planned HTTP/2 session epoch`);
    assert.is(stream.request.clientId, "graph-client", `${where}: stream client_id`);
  }
  if (status.heartbeat === "syncing") {
    const sync = server.currentSync();
    assert.equal(sync.request.localProjectIds, trackedIds, `${where}: the sync reports the tracked ids`);
    assert.is(sync.timeoutMs, syncRunOnMs(graphTiming), `${where}: the sync carries its longest deadline (run-on)`);
    assert.is(sync.request.clientId, "graph-client", `${where}: sync client_id`);
  }
}

/** Replays one path on a fresh world; stops and cleans up whatever happens. */
export async function replayPath(path: GraphPath, coverage: CoverageRecorder): Promise<void> {
  const world = createWorld(path, coverage);
  const { bridge, server } = world;
  try {
    const status = bridge.status();
    assert.is(status.state, "idle", "before start(): idle");
    assert.is(server.streams.length + server.syncs.length, 0, "before start(): no call");

    for (const [i, step] of path.plan.steps.entries()) {
      const where = `step ${i + 1} (${describeStep(step.event, step.advanceMs)})`;
      // A STOP with nothing in flight drains on its own: both events arrive in the STOP step.
      const drainsAlone = step.event.type === "STOP" && path.plan.holdFromCall === undefined;
      const expectedEvents = drainsAlone
        ? ["STOP", "xstate.done.actor.drainDispatch"]
        : step.event.type === "xstate.done.actor.drainDispatch" && path.plan.holdFromCall === undefined
          ? []
          : withSyncRemovals(step.event).map((e) => e.type);
      world.received.length = 0;
      const caused = executorFor(step.event)(world, step);
      if (step.event.type === "STOP") {
        // stop() hands STOP to the machine inside the call: what it shows
        // before any promise runs is `stopping` (so no await before this).
        assertShows(world, step, where, true);
      }
      await caused;
      await settle();
      assert.equal(world.received, expectedEvents, `${where}: the events the machine received`);
      if (drainsAlone) {
        // With no removal in flight, the drain (the next step) has already
        // completed on its own: that step checks what it left.
        continue;
      }
      assertShows(world, step, where);
    }

    // Every path ends in the final state: stop() resolved, nothing is left.
    assert.ok(world.stopResolvedAtMs !== undefined, "stop() resolved");
    const stopCalledAtMs = path.plan.steps.find((s) => s.event.type === "STOP")!.atMs;
    assert.ok(world.stopResolvedAtMs! - stopCalledAtMs <= graphTiming.stopTimeoutMs, "stop() resolved within stopTimeoutMs");
    const calls = world.handler.calls.length;
    assert.is(world.callsWhenStopResolved, calls, "no handler call after stop() resolved");
    world.sim.increment(10 * graphTiming.stopTimeoutMs);
    await settle();
    assert.is(world.handler.calls.length, calls, "no handler call after stop(), however long the clock runs");
    assert.is(server.openStreams() + server.syncsInFlight(), 0, "no call left open after stop()");
    assert.is(world.pendingTimers(), 0, "no timer left behind after stop()");
    assert.is(world.randomDrawn(), path.plan.random.length, "the bridge drew as much jitter as the model");
  } finally {
    if (world.stopResolvedAtMs === undefined) {
      world.handler.release();
      const stopped = bridge.stop();
      world.sim.increment(graphTiming.stopTimeoutMs);
      await settle();
      await stopped;
    }
  }
}
