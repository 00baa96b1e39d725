/**
 * Runs one scenario: a real createBridge (BridgeOptions.client = the memory
 * server's client, clock = SimulatedClock, random = seeded) through the
 * scenario's faults, time moving from timer to timer with the event loop
 * drained between steps; the reference model (model.ts) watches everything
 * and the run ends with stop() and the after-stop checks.
 */
import { MAX_HEARTBEAT_SLOWDOWN } from "../../machines/bridge.machine.js";
import { syncRunOnMs } from "../../src/timing.js";
import { createBridge, HandlerRegistry, SessionTracker, type BridgeTiming, type Clock, type Logger } from "../../src/index.js";
import { createMemoryServer, settle, SimulatedClock, type MemoryServerTraceEntry } from "../../src/testing/index.js";
import { seededRandom } from "../helpers/seeded-random.js";
import { DeliveryModel, type Violation } from "./model.js";
import { estimateRemovalBytes } from "../../src/dispatcher.js";
import { REASON_MAX_BYTES } from "../../src/server-data.js";
import { describeFault, lastFaultEndMs, reasonOf, type Fault, type HandlerMode, type Scenario, type TrackerFaultMode } from "./schedule.js";

/** Short timings, so a run covers many heartbeats and backoffs. */
export const simTiming: BridgeTiming = {
  backoffMinMs: 100,
  backoffMaxMs: 2000,
  backoffJitter: 0.2,
  openConfirmMs: 500,
  stableAfterMs: 2000,
  heartbeatMs: 5000,
  heartbeatJitterMs: 500,
  syncTimeoutMs: 1000,
  handlerTimeoutMs: 500,
  stopTimeoutMs: 2000,
};

/**
 * How long after the server is healthy a tracked removal may take:
 * a backoff at its cap, a heartbeat period with its jitter (slowed down by
 * a slow period, and held once while reconnecting), a round caught by the
 * chaos that the link probe found alive and that runs on (syncRunOnMs) or
 * times out, an open confirmation, one handler's budget (a call in flight
 * at the heal), and a few round trips.
 */
export function deliveryBoundMs(t: BridgeTiming, rttMs: number): number {
  return (
    t.backoffMaxMs * (1 + t.backoffJitter) +
    // A slow period may have slowed the heartbeat down (at most this many
    // periods between rounds), and a round due while reconnecting is held
    // for one more wait when no stream opens.
    (MAX_HEARTBEAT_SLOWDOWN + 1) * (t.heartbeatMs + t.heartbeatJitterMs) +
    syncRunOnMs(t) +
    t.openConfirmMs +
    t.handlerTimeoutMs +
    5 * rttMs
  );
}

/** Runs past this many timer steps are a busy loop. */
const MAX_STEPS = 200_000;
const CLIENT = "daemon";

export interface SimResult {
  scenario: Scenario;
  violations: Violation[];
  /** What happened, one line per step (filled with `trace: true`). */
  trace: string[];
  steps: number;
  simMs: number;
  deliveries: number;
  /** How far the run pushed what the new dimensions test (to check a seed set exercises them). */
  reach: SimReach;
}

export interface SimReach {
  /** Events the server dropped for a slow stream (streamBufferSize), and of them REMOVED events of tracked projects. */
  eventsDropped: number;
  trackedDropped: number;
  /** Live ids the server answered as unknown. */
  unknownAnswered: number;
  /** Rounds whose tracker read threw, or returned garbage; has() calls that threw. */
  trackerThrows: number;
  trackerGarbage: number;
  hasThrows: number;
  /** The fullest the queue was, against its bounds (1 = at the bound). */
  peakQueuedFill: number;
  peakBytesFill: number;
}

/** An id for a trace line: long ones cut to their head and length. */
const short = (id: string): string => (id.length > 24 ? `${id.slice(0, 16)}…(${id.length})` : id);

/**
 * One removal's estimate (estimateRemovalBytes) at its largest in this
 * scenario: the longest id (a project or a flood id), a 7-digit event id,
 * the longest reason the bridge keeps. Each byte bound may be passed by
 * less than that (docs/design.md, "The dispatch queue is bounded").
 */
export function largestRemovalBytes(s: Scenario): number {
  const longestId = Math.max(...s.projects.map((p) => p.length), s.floodPrefix.length + 8);
  return estimateRemovalBytes("x".repeat(longestId), "9999999", "x".repeat(Math.min(s.reasonChars, REASON_MAX_BYTES)));
}

export async function simulate(scenario: Scenario, opts: { trace?: boolean } = {}): Promise<SimResult> {
  const keepTrace = opts.trace === true;
  const trace: string[] = [];
  const clock = new SimulatedClock();
  const t0 = clock.now();
  const rel = () => clock.now() - t0;
  const line = (s: string) => {
    if (keepTrace) trace.push(`+${rel()} ${s}`);
  };
  const timing = simTiming;
  const boundMs = deliveryBoundMs(timing, scenario.rttMs);
  const model = new DeliveryModel({
    client: CLIENT,
    healAtMs: scenario.chaosMs,
    boundMs,
    streamingSlackMs: timing.openConfirmMs + 2 * scenario.rttMs,
    syncTimeoutMs: timing.syncTimeoutMs,
    removalBytesSlack: largestRemovalBytes(scenario),
  });
  const violations = model.violations;
  const violate = (kind: string, detail: string) => violations.push({ kind, atMs: rel(), detail });
  /**
   * Anything the bridge did (an inspection event, a server step, a handler
   * call, a log line): settling goes on until a settle sees none, because a
   * bridge that works through a long answer yields to the event loop between
   * batches, more turns than one settle() drains, and the run must not take
   * a bridge that is still busy for one waiting on a timer.
   */
  let activity = 0;
  const settleQuiet = async (): Promise<void> => {
    for (let i = 0; i < 1000; i++) {
      const before = activity;
      await settle();
      if (activity === before) return;
    }
    violate("busy-loop", "the bridge kept working for 1000 settles without a timer");
  };
  const reach: SimReach = {
    eventsDropped: 0,
    trackedDropped: 0,
    unknownAnswered: 0,
    trackerThrows: 0,
    trackerGarbage: 0,
    hasThrows: 0,
    peakQueuedFill: 0,
    peakBytesFill: 0,
  };

  const server = createMemoryServer({
    clock,
    rttMs: scenario.rttMs,
    headers: scenario.headers,
    projects: scenario.projects,
    ...(scenario.streamBufferSize !== undefined ? { streamBufferSize: scenario.streamBufferSize } : {}),
    ...(scenario.unknownAfterMs !== undefined ? { unknownAfterMs: scenario.unknownAfterMs } : {}),
    onTrace: (e: MemoryServerTraceEntry) => {
      if (e.type === "event.dropped" && e.client === CLIENT) {
        reach.eventsDropped += 1;
        if (e.eventType === "removed" && tracker.sessionCount(e.projectId) > 0) reach.trackedDropped += 1;
      }
      if (e.type === "sync.answered" && e.client === CLIENT) reach.unknownAnswered += e.unknown.length;
      const relEntry = { ...e, atMs: e.atMs - t0 } as MemoryServerTraceEntry;
      activity++;
      model.serverTrace(relEntry);
      const flood = "projectId" in e && e.projectId.startsWith("flood");
      if (keepTrace && e.type !== "event.sent" && !flood) {
        const shown = "projectId" in relEntry ? { ...relEntry, projectId: short(relEntry.projectId) } : relEntry;
        line(
          `server ${JSON.stringify(shown, (k, v) => (Array.isArray(v) && k !== "" ? v.map((x) => (typeof x === "string" ? short(x) : x)) : v)).slice(0, 400)}`,
        );
      }
    },
  });

  // The daemon: a SessionTracker read through a wrapper (every read is a round), and one handler.
  const tracker = new SessionTracker();
  for (const id of scenario.tracked) tracker.connect(id);
  // The daemon's tracker, as SessionTracker gives it: each round's read is
  // observed; `has` lets the bridge see a project the daemon let go of the
  // moment its removal settled (without it, only a later round without the id
  // shows that, and an id opened again before that round is not recognised).
  // Tracker faults switched on now (a count per mode: windows may overlap).
  const trackerFaults: Record<TrackerFaultMode, number> = { throw: 0, throwMidway: 0, notIterable: 0, garbage: 0, hasThrows: 0 };
  const observedTracker = {
    connectedProjectIds(): Iterable<string> {
      const ids = [...tracker.connectedProjectIds()];
      if (trackerFaults.throw > 0) {
        reach.trackerThrows += 1;
        line("tracker read throws");
        throw new Error("connectedProjectIds failed (simulated)");
      }
      if (trackerFaults.throwMidway > 0) {
        reach.trackerThrows += 1;
        line("tracker read throws after yielding some ids");
        // An iterable that fails part-way: the round must fail as a whole.
        return (function* () {
          yield* ids.slice(0, Math.ceil(ids.length / 2));
          throw new TypeError("connectedProjectIds failed midway (simulated)");
        })();
      }
      if (trackerFaults.notIterable > 0) {
        reach.trackerThrows += 1;
        line("tracker read returns no iterable");
        return (ids.length % 2 === 0 ? null : 42) as unknown as string[];
      }
      model.trackerRead(ids);
      line(`tracker read [${ids.map(short).join(",")}]${trackerFaults.garbage > 0 ? " with garbage" : ""}`);
      if (trackerFaults.garbage > 0) {
        reach.trackerGarbage += 1;
        // Garbage a JavaScript daemon could hand over: the bridge keeps only non-empty strings.
        const junk: unknown[] = [null, 5, {}, "", undefined, ["p0"], Symbol("x"), Number.NaN];
        const mixed: unknown[] = [];
        for (const [i, id] of ids.entries()) mixed.push(junk[i % junk.length], id, id);
        mixed.push(...junk);
        return mixed as string[];
      }
      return ids;
    },
    has: (projectId: string): boolean => {
      if (trackerFaults.hasThrows > 0) {
        reach.hasThrows += 1;
        throw new Error("has failed (simulated)");
      }
      return tracker.has(projectId);
    },
  };
  let handlerMode: HandlerMode | undefined;
  let deliveries = 0;
  let stopAtMs: number | undefined;
  let stopResolvedAtMs: number | undefined;
  let stopPromise: Promise<void> | undefined;
  const registry = new HandlerRegistry();
  // Forward reference: the handler may stop the bridge.
  let bridgeRef: { stop(): Promise<void> } | undefined;
  const startStop = (why: string): Promise<void> => {
    if (stopPromise === undefined && bridgeRef !== undefined) {
      stopAtMs = rel();
      line(`stop() (${why})`);
      model.stopped();
      stopPromise = bridgeRef.stop();
      stopPromise.then(
        () => (stopResolvedAtMs = rel()),
        (err: unknown) => violate("stop-rejected", String(err)),
      );
    }
    return stopPromise ?? Promise.resolve();
  };
  registry.register({
    name: "daemon",
    onProjectRemoved(projectId, info) {
      deliveries++;
      activity++;
      sampleQueue();
      if (!projectId.startsWith("flood"))
        line(`handler ${short(projectId)} ${info.source}${info.eventId ? ` event ${info.eventId}` : ""} (mode ${handlerMode ?? "ok"})`);
      model.delivered(projectId, info, rel());
      // A well-behaved daemon closes the project's sessions.
      while (tracker.sessionCount(projectId) > 0) tracker.disconnect(projectId);
      switch (handlerMode) {
        case "throw":
          throw new Error("handler failed (simulated)");
        case "hang":
          return new Promise<void>(() => {});
        case "slow":
          return new Promise<void>((resolve) => clock.setTimeout(() => resolve(), timing.handlerTimeoutMs * 2));
        case "stop":
          return startStop("from a handler");
        default:
          return undefined;
      }
    },
  });

  // The bridge's own timers, to check that stop() leaves none.
  const bridgeTimers = new Set<unknown>();
  const bridgeClock: Clock & { now(): number } = {
    now: () => clock.now(),
    setTimeout(fn, ms) {
      const id = clock.setTimeout(() => {
        bridgeTimers.delete(id);
        fn();
      }, ms);
      bridgeTimers.add(id);
      return id;
    },
    clearTimeout(id) {
      bridgeTimers.delete(id);
      clock.clearTimeout(id);
    },
  };
  const logger: Logger = {
    debug: () => void activity++,
    info: () => void activity++,
    warn: (obj, msg) => line(`log warn ${msg ?? ""} ${JSON.stringify(obj).slice(0, 200)}`),
    error: (obj, msg) => line(`log error ${msg ?? ""} ${JSON.stringify(obj).slice(0, 200)}`),
  };
  const client = server.client({ name: CLIENT });
  // An inspect observer that throws while the fault is on.
  let inspectThrows = false;
  const inspect = () => {
    activity++;
    if (inspectThrows) throw new Error("inspect observer failed (simulated)");
  };
  // Small dispatch bounds (options of the bounded queue; ignored by a bridge without them).
  const bounds: Record<string, number> = { maxQueuedRemovals: scenario.maxQueuedRemovals, maxQueuedBytes: scenario.maxQueuedBytes };
  const bridge = createBridge({
    ...bounds,
    inspect,
    registry,
    tracker: observedTracker,
    client,
    clock: bridgeClock,
    random: seededRandom(scenario.seed * 7919 + 17),
    logger,
    env: {},
    clientId: "sim",
    timing,
  });
  bridgeRef = bridge;

  // The schedule, on the same clock.
  const at = (ms: number, fn: () => void) => clock.setTimeout(fn, ms);
  for (const f of scenario.faults) at(f.at, () => apply(f));
  at(scenario.chaosMs, () => {
    line("heal: every fault lifted");
    server.heal();
    handlerMode = undefined;
  });

  function apply(f: Fault): void {
    line(`fault ${describeFault(f)}`);
    const until = (forMs: number, fn: () => void) => at(Math.min(forMs, Math.max(0, scenario.chaosMs - rel())), fn);
    switch (f.kind) {
      case "create":
        if (server.createProject(f.id)) model.release(f.id);
        break;
      case "remove":
        if (server.removeProject(f.id, reasonOf(scenario)) && tracker.sessionCount(f.id) > 0) model.trackedRemoval(f.id, rel());
        break;
      case "recreate": {
        const tracked = tracker.sessionCount(f.id) > 0;
        server.recreateProject(f.id);
        model.release(f.id);
        if (tracked) line(`(${f.id} re-created: its removal is not owed)`);
        break;
      }
      case "connect":
        tracker.connect(f.id);
        break;
      case "disconnect":
        tracker.disconnect(f.id);
        if (tracker.sessionCount(f.id) === 0) model.release(f.id);
        break;
      case "drop":
        server.dropStreams(f.code);
        break;
      case "churn": {
        // grpc max_connection_age: GOAWAY on every stream, again and again.
        const stopAt = rel() + Math.min(f.forMs, Math.max(0, scenario.chaosMs - rel()));
        const tick = () => {
          if (rel() >= stopAt) return;
          server.goaway();
          at(f.everyMs, tick);
        };
        tick();
        break;
      }
      case "inspectThrows":
        inspectThrows = true;
        until(f.forMs, () => (inspectThrows = false));
        break;
      case "reset":
        server.resetStreams();
        break;
      case "end":
        server.endStreams();
        break;
      case "goaway":
        server.goaway({ midMessage: f.midMessage });
        break;
      case "hang":
        server.hang({ ignoreAbort: f.ignoreAbort });
        until(f.forMs, () => server.unhang());
        break;
      case "slow":
        server.slowSyncs(f.ms);
        until(f.forMs, () => server.slowSyncs(0));
        break;
      case "failSyncs":
        server.failNextSyncs(f.n, f.code);
        break;
      case "rejectStreams":
        server.rejectNextStreams(f.n, f.code);
        break;
      case "down":
        server.goDown();
        until(f.forMs, () => server.comeBack());
        break;
      case "duplicate":
        server.duplicateNext(f.n);
        break;
      case "reorder":
        server.reorderNext(f.n);
        break;
      case "flood":
        server.flood(f.n, scenario.floodPrefix, reasonOf(scenario));
        break;
      case "limit":
        server.setMaxConcurrentStreams(f.max);
        until(f.forMs, () => server.setMaxConcurrentStreams(Number.POSITIVE_INFINITY));
        break;
      case "handler": {
        const mode = f.mode;
        handlerMode = mode;
        until(f.forMs, () => {
          if (handlerMode === mode) handlerMode = undefined;
        });
        break;
      }
      case "tracker": {
        // Not capped at the chaos: the model moves a removal's deadline past a blind tracker.
        const mode = f.mode;
        trackerFaults[mode] += 1;
        const blind = mode === "throw" || mode === "throwMidway" || mode === "notIterable";
        if (blind) model.trackerBlind(rel(), rel() + f.forMs);
        at(f.forMs, () => {
          trackerFaults[mode] -= 1;
          line(`tracker fault ${mode} lifted`);
        });
        break;
      }
      case "syncNow":
        for (let i = 0; i < f.n; i++) bridge.syncNow();
        break;
      case "stop":
        void startStop("scheduled");
        break;
    }
  }

  const onUnhandled = (reason: unknown) =>
    violate("unhandled-rejection", String(reason instanceof Error ? reason.stack : reason).slice(0, 300));
  process.on("unhandledRejection", onUnhandled);
  const onUncaught = (err: unknown) => violate("uncaught-exception", String(err instanceof Error ? err.stack : err).slice(0, 300));
  process.on("uncaughtException", onUncaught);
  const lastFaultMs = lastFaultEndMs(scenario);
  const endMs = t0 + Math.max(scenario.chaosMs, lastFaultMs) + boundMs + 1000;
  let steps = 0;
  let lastState = "";
  /** The queue against its bounds: after every step and at every handler call. */
  function sampleQueue(s = bridge.status()): void {
    const d = s.dispatch;
    model.queue(
      d.queued,
      d.maxQueued,
      d.queuedBytes,
      d.maxQueuedBytes,
      rel(),
      ` (${d.queuedTracked} in the tracked lane, stream ${d.streamPaused ? "paused" : "read"})`,
    );
    reach.peakQueuedFill = Math.max(reach.peakQueuedFill, d.queued / d.maxQueued);
    reach.peakBytesFill = Math.max(reach.peakBytesFill, d.queuedBytes / d.maxQueuedBytes);
    if (d.maxQueued !== scenario.maxQueuedRemovals || d.maxQueuedBytes !== scenario.maxQueuedBytes)
      model.configMismatch(
        `status().dispatch shows bounds ${d.maxQueued}/${d.maxQueuedBytes} B, the options ${scenario.maxQueuedRemovals}/${scenario.maxQueuedBytes} B`,
        rel(),
      );
  }
  const sample = () => {
    const s = bridge.status();
    const shown = `${s.state} (heartbeat ${s.heartbeat}, attempt ${s.attempt})`;
    if (shown !== lastState) {
      line(`status ${shown}, queue ${s.dispatch.queued}${s.dispatch.streamPaused ? ", stream paused" : ""}`);
      lastState = shown;
    }
    sampleQueue(s);
    if (stopPromise === undefined)
      model.status(s.state, server.openStreamsOf(CLIENT), rel(), s.counters.suspects, s.dispatch?.streamPaused === true);
  };
  try {
    bridge.start();
    await settleQuiet();
    sample();
    // A timer callback that throws would be an uncaught exception under real timers.
    const fire = (limit: number): boolean => {
      try {
        return clock.fireNext(limit);
      } catch (err) {
        onUncaught(err);
        return true;
      }
    };
    while (stopPromise === undefined) {
      if (!fire(endMs)) break;
      await settleQuiet();
      sample();
      if (++steps > MAX_STEPS) {
        violate("busy-loop", `more than ${MAX_STEPS} timer steps`);
        break;
      }
    }
    if (stopPromise === undefined) {
      while (fire(endMs)) await settleQuiet();
      clock.set(Math.max(clock.now(), endMs));
      await settleQuiet();
      model.finish(rel());
      void startStop("end of the run");
    } else {
      model.finish(rel());
    }
    // Let stop() finish: on the clock, up to its budget (and a little past, to see it late).
    const stopBy = t0 + (stopAtMs ?? rel()) + timing.stopTimeoutMs;
    await settleQuiet();
    while (stopResolvedAtMs === undefined && fire(stopBy + 1)) {
      await settleQuiet();
      if (++steps > MAX_STEPS) break;
    }
    await settle(10);
    if (stopResolvedAtMs === undefined) {
      violate("stop-unresolved", `stop() at +${stopAtMs} had not resolved at +${rel()} (stopTimeoutMs ${timing.stopTimeoutMs})`);
    } else {
      if (stopResolvedAtMs - (stopAtMs ?? 0) > timing.stopTimeoutMs)
        violate("stop-late", `stop() at +${stopAtMs} resolved at +${stopResolvedAtMs}`);
      if (bridgeTimers.size > 0) violate("timer-after-stop", `${bridgeTimers.size} bridge timer(s) still pending after stop() resolved`);
      if (server.openStreamsOf(CLIENT) > 0)
        violate("stream-after-stop", "the server still holds a stream of the bridge after stop() resolved");
    }
  } finally {
    process.off("unhandledRejection", onUnhandled);
    process.off("uncaughtException", onUncaught);
    server.heal();
  }
  return { scenario, violations, trace, steps, simMs: rel(), deliveries, reach };
}

/** The violation classes of a result, sorted and unique. */
export function violationKinds(r: SimResult): string[] {
  return [...new Set(r.violations.map((v) => v.kind))].sort();
}
