/**
 * createBridge(): wiring. It validates the options, gives the process's one
 * provided machine (src/bridge-machine-shared.ts) this bridge's
 * dependencies, and connects the actor to the modules that do the work
 * around it: the dispatcher (removals to handlers), the log policy, the
 * timestamp book, stop() and status().
 */
import { createBridgeActor, sharedBridgeMachine, type SharedBridgeMachine } from "./bridge-machine-shared.js";
import type { Bridge } from "./bridge-api.js";
import { createBridgeConnectionEvents } from "./bridge-connection-events.js";
import { attachBridgeLogPolicy } from "./bridge-log-policy.js";
import { validateBridgeOptions, type BridgeOptions } from "./bridge-options.js";
import { assembleBridgeStatus, type BridgeStatus, type IdleReason } from "./bridge-status.js";
import { createBridgeStop } from "./bridge-stop.js";
import { openBridgeTarget } from "./bridge-target.js";
import { createBridgeTimestampBook } from "./bridge-timestamps.js";
import { createDispatcher } from "./dispatcher.js";
import { BridgeError, summarizeError, type ErrorSummary } from "./errors.js";
import { createBridgeMetrics } from "./metrics/bridge-metrics.js";
import type { EventsClient, ProjectTracker } from "./types.js";

export type { Bridge } from "./bridge-api.js";

/** A bridge clock past 2001-09-09 tells wall time; one below counts from 0. */
const WALL_CLOCK_AFTER_MS = 1e12;

/** The tracker's `has`, when it has one (it decides which lane a stream removal takes). */
function trackedLookup(tracker: ProjectTracker | undefined): ((projectId: string) => boolean) | undefined {
  const has = tracker?.has;
  if (has === undefined) return undefined;
  // A `has` that throws counts as holding the project: no new life is inferred from it.
  return (projectId) => {
    try {
      return has.call(tracker, projectId) === true;
    } catch {
      return true;
    }
  };
}

export function createBridge(options: BridgeOptions): Bridge {
  return createBridgeOn(sharedBridgeMachine, options);
}

/**
 * createBridge() on a variant of the shared machine
 * (`sharedBridgeMachine.provide(…)`, made once): for benchmarks that run
 * another policy. Not part of the package's API.
 */
export function createBridgeOn(machine: SharedBridgeMachine, options: BridgeOptions): Bridge {
  const opts = validateBridgeOptions(options);
  const { logger: log, clock, now, timing } = opts;
  const monotonicNow = () => performance.now();
  let configError: ErrorSummary | null = null;
  let idleReason: IdleReason | null = null;
  let client: EventsClient | undefined;
  let closeClient: (() => void) | undefined;
  let started = false;
  let actorStarted = false;

  // Whether the daemon holds a project: the tracker's `has` when it has one,
  // else whether the last heartbeat round reported it (held until a first
  // round has read the tracker).
  let lastReported: ReadonlySet<string> | undefined;
  const hasTracker = trackedLookup(opts.tracker);
  const isTracked = hasTracker ?? ((projectId: string) => lastReported === undefined || lastReported.has(projectId));
  const metrics = createBridgeMetrics({ meterProvider: opts.meterProvider, connectionState: () => status().state });
  const dispatcher = createDispatcher({
    registry: opts.registry,
    clock,
    logger: log,
    handlerTimeoutMs: timing.handlerTimeoutMs,
    onOutcome: (projectId, info, outcome, delivery) => {
      metrics.recordDispatch(projectId, info, outcome, delivery);
      // The daemon let go of the project: listing it again later opens a new life.
      if (hasTracker !== undefined && !hasTracker(projectId) && actor.getSnapshot().status === "active") {
        actor.send({ type: "removal.released", projectId });
      }
    },
    now: monotonicNow,
    maxQueued: opts.dispatchBounds.maxQueuedRemovals,
    maxQueuedBytes: opts.dispatchBounds.maxQueuedBytes,
    isTracked,
  });

  const book = createBridgeTimestampBook(now);
  const clientRef = (): EventsClient => {
    if (!client) throw new BridgeError("the bridge has no client (not started)", "failed_precondition");
    return client;
  };
  // What the shared machine's actors and delays need of this bridge (never in context).
  const actor = createBridgeActor(
    machine,
    {
      clock,
      input: { clientId: opts.clientId, timing, dedupCapacity: opts.dedupCapacity },
      ...(opts.inspect ? { inspect: opts.inspect } : {}),
    },
    {
      client: clientRef,
      monotonicNow,
      tracker: opts.tracker,
      clock,
      // The server's time is compared with the bridge clock when that tells
      // wall time (the real clock, the testing kit's epoch clock); a clock
      // that counts from 0 (xstate's SimulatedClock) has none: Date.now().
      wallNow: () => {
        const t = now();
        return t > WALL_CLOCK_AFTER_MS ? t : Date.now();
      },
      idle: () => dispatcher.idle(),
      room: dispatcher,
      clockNow: now,
      // Only the tracker's own `has` says the daemon did not hold a project
      // (the last round's report misses one opened since): it marks new lives.
      isTracked: hasTracker,
      onReported: (ids) => {
        lastReported = ids;
      },
      onError: (reason) => log.warn({ err: summarizeError(reason) }, "draining the handler queue failed; stopping anyway"),
      random: opts.random,
      // Computed before the machine's emitted events reach the listeners
      // below, so the failure's log line can say how long it waits.
      onRetryDelay: (ms) => book.retryArmed(ms),
    },
  );
  metrics.observe(actor);
  book.attach(actor);
  const logPolicy = attachBridgeLogPolicy(actor, { logger: log, retryInMs: () => book.retryInMs });
  const connection = createBridgeConnectionEvents({ now, logger: log, retryInMs: () => book.retryInMs });
  connection.attach(actor);
  actor.on("projectRemoved", (e) => dispatcher.enqueue(e.projectId, e.info));

  const stopper = createBridgeStop({
    actor,
    dispatcher,
    clock,
    stopTimeoutMs: timing.stopTimeoutMs,
    logger: log,
    startActor,
    release() {
      metrics.close();
      closeClient?.();
      book.stopped();
      const last = connection.stopped();
      if (last) logPolicy.connectionChanged(last);
    },
  });
  const stop = stopper.stop;

  actor.subscribe({
    next: (snapshot) => {
      const state = book.observe(snapshot);
      if (state === undefined) return;
      // STOP sent to the exposed actor (not through stop()): finish the same
      // way, so the owned HTTP/2 session is closed now, not at its idle timeout.
      if (snapshot.status === "done" && !stopper.requested) queueMicrotask(() => void stop());
      logPolicy.connectionChanged(connection.changed(state, snapshot.context));
    },
    error: (err) => logPolicy.statechartFailed(err),
  });

  function startActor(): void {
    if (actorStarted) return;
    actorStarted = true;
    actor.start();
  }

  function start(): void {
    if (started) return;
    started = true;
    if (stopper.requested) {
      log.warn({}, "start() after stop(): a stopped bridge does not restart; create a new one");
      return;
    }
    // A token function that never settles fails its call within the sync deadline.
    const opened = openBridgeTarget({ ...opts, tokenTimeoutMs: timing.syncTimeoutMs });
    if (opened.kind === "idle") {
      ({ idleReason, configError } = opened);
      connection.refused(opened.configError);
      return;
    }
    client = opened.client;
    closeClient = opened.close;
    book.started();
    startActor();
    actor.send({ type: "START" });
  }

  function status(): BridgeStatus {
    const snapshot = actor.getSnapshot();
    return assembleBridgeStatus({
      snapshot,
      stopped: snapshot.status === "done" || (stopper.requested && book.stoppedAtMs !== undefined),
      configError,
      idleReason,
      server: opts.target.kind === "client" ? "client" : (opts.redactedUrl ?? null),
      dispatch: dispatcher.stats(),
      pendingDispatch: dispatcher.pending,
      pressure: dispatcher.pressure(),
      droppedOnStop: stopper.droppedOnStop,
      timestamps: book.snapshot(),
    });
  }

  return {
    start,
    stop,
    [Symbol.asyncDispose]: stop,
    syncNow() {
      // An actor that was never started reports "active" only after start().
      if (started && client !== undefined && !stopper.requested) actor.send({ type: "SYNC.NOW" });
    },
    status,
    on: connection.on,
    changes: connection.changes,
    ready: connection.ready,
    actor,
  };
}
