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

/** The tracker's `has`, when it has one (it decides which lane a stream removal takes). */
function trackedLookup(tracker: ProjectTracker | undefined): ((projectId: string) => boolean) | undefined {
  const has = tracker?.has;
  return has === undefined ? undefined : (projectId) => has.call(tracker, projectId);
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

  const metrics = createBridgeMetrics({ meterProvider: opts.meterProvider, connectionState: () => status().state });
  const dispatcher = createDispatcher({
    registry: opts.registry,
    clock,
    logger: log,
    handlerTimeoutMs: timing.handlerTimeoutMs,
    onOutcome: metrics.recordDispatch,
    now: monotonicNow,
    maxQueued: opts.dispatchBounds.maxQueuedRemovals,
    maxQueuedBytes: opts.dispatchBounds.maxQueuedBytes,
    isTracked: trackedLookup(opts.tracker),
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
      wallNow: () => Date.now(),
      idle: () => dispatcher.idle(),
      room: dispatcher,
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
    const opened = openBridgeTarget(opts);
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
