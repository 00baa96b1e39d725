/**
 * createBridge(): the runtime around bridgeMachine. It resolves the options,
 * provides the machine's actors and delays, turns the machine's emitted
 * events into handler dispatch and log lines, and owns stop().
 */
import { createActor, type Actor } from "xstate";
import { bridgeMachine, createBridgeDelays } from "../machines/bridge.machine.js";
import type { BridgeEmitted } from "../machines/bridge.types.js";
import { createDrainActor, createProjectEventsActor, createSyncProjectStateActor } from "./bridge-actors.js";
import { validateBridgeOptions, type BridgeOptions } from "./bridge-options.js";
import { flattenConnection, heartbeatOf, type BridgeStatus, type BridgeTimestamps, type IdleReason } from "./bridge-status.js";
import { asyncContextIsCheap, createDispatcher } from "./dispatcher.js";
import { BridgeError, summarizeError, type ErrorSummary } from "./errors.js";
import { createGrpcEventsClient } from "./grpc-client.js";
import { createBridgeMetrics } from "./metrics/bridge-metrics.js";
import type { EventsClient } from "./types.js";

export interface Bridge {
  /** Starts the bridge. Idempotent; without a URL or client it warns and stays idle. */
  start(): void;
  /** Stops the bridge. Idempotent; resolves within timing.stopTimeoutMs. */
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
  /** Asks for an immediate heartbeat. */
  syncNow(): void;
  status(): BridgeStatus;
  /** The XState actor that drives the bridge (for inspection and tests). */
  readonly actor: Actor<typeof bridgeMachine>;
}

const CLOCK_SKEW_WARN_MS = 30_000;
/** Codes that are logged once per streak rather than on every failure (runtime log policy). */
const LOUD_ONCE_CODES: readonly string[] = ["unauthenticated", "permission_denied", "unimplemented"];

export function createBridge(options: BridgeOptions): Bridge {
  const opts = validateBridgeOptions(options);
  const { logger: log, clock, timing } = opts;
  const now = () => (typeof clock.now === "function" ? clock.now() : Date.now());
  const monotonicNow = () => performance.now();
  const timestamps: BridgeTimestamps = {};
  let configError: ErrorSummary | null = null;
  let idleReason: IdleReason | null = null;
  /** The wait the last backoff (or GOAWAY reopen) delay armed, for the log line that announces it. */
  let retryInMs: number | undefined;
  let client: EventsClient | undefined;
  let ownsClient = false;
  let started = false;
  let stopPromise: Promise<void> | undefined;
  let actorStarted = false;
  let droppedOnStop = 0;

  const metrics = createBridgeMetrics({ meterProvider: opts.meterProvider, connectionState: () => status().state });
  const dispatcher = createDispatcher({
    registry: opts.registry,
    clock,
    logger: log,
    handlerTimeoutMs: timing.handlerTimeoutMs,
    onOutcome: metrics.recordDispatch,
    now: monotonicNow,
  });

  const clientRef = (): EventsClient => {
    if (!client) throw new BridgeError("the bridge has no client (not started)", "failed_precondition");
    return client;
  };
  const delays = createBridgeDelays(() => opts.random());
  const machine = bridgeMachine.provide({
    actors: {
      projectEvents: createProjectEventsActor({ client: clientRef, monotonicNow }),
      syncProjectState: createSyncProjectStateActor({
        client: clientRef,
        monotonicNow,
        tracker: opts.tracker,
        clock,
        wallNow: () => Date.now(),
      }),
      drainDispatch: createDrainActor({
        idle: () => dispatcher.idle(),
        onError: (reason) => log.warn({ err: summarizeError(reason) }, "draining the handler queue failed; stopping anyway"),
      }),
    },
    delays: {
      ...delays,
      // Both are computed before the machine's emitted events reach the
      // listeners below, so the failure's log line can say how long it waits.
      backoffDelay: (args) => {
        const ms = delays.backoffDelay(args);
        timestamps.nextRetryAtMs = now() + ms;
        retryInMs = ms;
        return ms;
      },
      reopenDelay: (args) => {
        const ms = delays.reopenDelay(args);
        timestamps.nextRetryAtMs = now() + ms;
        retryInMs = ms;
        return ms;
      },
    },
  });

  const actor = createActor(machine, {
    clock,
    input: { clientId: opts.clientId, timing, dedupCapacity: opts.dedupCapacity },
    ...(opts.inspect ? { inspect: opts.inspect } : {}),
  });
  metrics.observe(actor);

  actor.on("projectRemoved", (e) => {
    timestamps.lastRemovalAtMs = now();
    log.info({ projectId: e.projectId, source: e.info.source, eventId: e.info.eventId }, "project removed");
    dispatcher.enqueue(e.projectId, e.info);
  });
  actor.on("duplicateSuppressed", (e) => log.debug({ projectId: e.projectId, source: e.source }, "duplicate removal suppressed"));
  actor.on("eventIgnored", (e) =>
    log.debug({ eventId: e.eventId, eventType: e.eventType, projectId: e.projectId, why: e.why }, "project event ignored"),
  );
  actor.on("streamFailed", (e) => logStreamFailure(e));
  actor.on("streamEnded", (e) =>
    log.warn({ attempt: e.attempt, retryInMs }, "the server ended the ProjectEvents stream; reconnecting after backoff"),
  );
  actor.on("serverGoaway", (e) =>
    log.info({ err: e.error, retryInMs }, "the server is shutting down (GOAWAY): ended the stream, reopening on a fresh session"),
  );
  actor.on("idsRefused", (e) =>
    log.warn(
      { source: e.source, why: e.refused.why, count: e.refused.count, preview: e.refused.previews, ...(e.eventId ? { eventId: e.eventId } : {}) },
      e.refused.why === "not_reported"
        ? `dropped ${e.refused.count} heartbeat removal(s) for ids this bridge never reported`
        : `refused ${e.refused.count} project id(s) from the server (${e.refused.why === "too_long" ? "longer than 512 bytes" : "control characters"})`,
    ),
  );
  actor.on("syncCompleted", ({ result }) => {
    timestamps.lastSyncAtMs = now();
    log.debug({ reported: result.reported, removed: result.removed.length, unknown: result.unknown.length }, "heartbeat synced");
    if (result.unknown.length > 0) {
      log.warn({ count: result.unknown.length }, "the server reports live projects without a heartbeat for 24 h (unknown)");
    }
    if (Math.abs(result.skewMs) > CLOCK_SKEW_WARN_MS) {
      log.warn({ skewMs: result.skewMs }, "clock skew between this machine and the engram server exceeds 30 s");
    }
  });
  actor.on("syncFailed", (e) => {
    const fields = { err: e.error, suspect: e.suspect, streak: e.streak };
    if (LOUD_ONCE_CODES.includes(e.error.code)) {
      // As the stream: once per streak at error, then at debug.
      if (e.streak === 1) {
        log.error(fields, `heartbeat failed with ${e.error.code} (${loudHint(e.error)}); further failures of this streak are logged at debug`);
      } else {
        log.debug(fields, "heartbeat failed again");
      }
      return;
    }
    log.warn(fields, e.suspect ? "heartbeat timed out while streaming: reopening the connection" : "heartbeat failed");
  });

  let lastConnection = flattenConnection(actor.getSnapshot().value);
  // One observer for what status() stamps: state changes and stream messages
  // (a message shows as a bump of the eventsReceived counter).
  let lastEventsReceived = 0;
  actor.subscribe({
    next: (snapshot) => {
      const n = snapshot.context.counters.eventsReceived;
      if (n !== lastEventsReceived) {
        lastEventsReceived = n;
        timestamps.lastEventAtMs = now();
      }
      const state = flattenConnection(snapshot.value);
      if (state === lastConnection) return;
      lastConnection = state;
      if (state === "streaming") timestamps.connectedAtMs = now();
      if (state !== "backoff") delete timestamps.nextRetryAtMs;
      // STOP sent to the exposed actor (not through stop()): finish the same
      // way, so the owned HTTP/2 session is closed now, not at its idle timeout.
      if (snapshot.status === "done" && !stopPromise) queueMicrotask(() => void stop());
      log.debug({ state }, "connection state");
    },
    error: (err) => log.error({ err: summarizeError(err) }, "the bridge statechart failed"),
  });

  function logStreamFailure(e: Extract<BridgeEmitted, { type: "streamFailed" }>) {
    const fields = { err: e.error, attempt: e.attempt, streak: e.streak, retryInMs };
    if (LOUD_ONCE_CODES.includes(e.error.code)) {
      if (e.streak === 1) {
        log.error(fields, `ProjectEvents failed with ${e.error.code} (${loudHint(e.error)}); backing off, further failures of this streak are logged at debug`);
      } else {
        log.debug(fields, "ProjectEvents failed again");
      }
      return;
    }
    // The wait is the retryInMs field (the message text stays stable for log matchers).
    log.warn(fields, e.suspect ? "connection suspect: reopening on a fresh HTTP/2 session" : "ProjectEvents failed; reconnecting after backoff");
  }

  function loudHint(error: ErrorSummary): string {
    if (error.code !== "unimplemented") return "check ENGRAM_TOKEN";
    return /^HTTP \d{3}\b/.test(error.message)
      ? `no gRPC service answers at this URL (${error.message}): check ENGRAM_URL`
      : "the server is too old for this RPC";
  }

  function start(): void {
    if (started) return;
    started = true;
    if (stopPromise) {
      log.warn({}, "start() after stop(): a stopped bridge does not restart; create a new one");
      return;
    }
    const target = opts.target;
    switch (target.kind) {
      case "none":
        idleReason = "no_url";
        configError = { code: "invalid_config", message: target.why };
        log.warn({}, `${target.why}; the bridge stays idle`);
        return;
      case "invalid":
        idleReason = target.error.code === "insecure_token" ? "insecure_token" : "invalid_url";
        configError = { code: target.error.code, message: target.error.rawMessage };
        log.error({ err: configError, url: opts.redactedUrl }, `the bridge refuses to start: ${target.error.rawMessage}`);
        return;
      case "client":
        client = target.client;
        break;
      case "url":
        try {
          client = createGrpcEventsClient({
            address: target.address,
            ...(opts.token ? { token: opts.token } : {}),
            ...(opts.tlsCaFile !== undefined ? { tlsCaFile: opts.tlsCaFile } : {}),
            clock,
          });
          ownsClient = true;
        } catch (reason) {
          const err = BridgeError.from(reason, "invalid_config");
          idleReason = "invalid_config";
          configError = { code: err.code, message: err.rawMessage };
          log.error({ err: configError }, `the bridge refuses to start: ${err.rawMessage}`);
          return;
        }
        log.info({ url: target.address.redacted, clientId: opts.clientId }, "bridge starting");
        break;
    }
    timestamps.startedAtMs = now();
    actorStarted = true;
    actor.start();
    actor.send({ type: "START" });
  }

  function stop(): Promise<void> {
    releaseCallingHandler();
    stopPromise ??= doStop();
    return stopPromise;
  }

  /**
   * stop() called inside one of this bridge's removal handlers (awaited
   * there, it waits for the stop, which would wait for the handler): the
   * dispatcher stops awaiting that handler call, so the stop drains the rest
   * and resolves instead of running out of budget.
   */
  function releaseCallingHandler(): void {
    const caller = dispatcher.releaseCallingHandler();
    if (caller === undefined) return;
    log.info(
      caller,
      `stop() was called from inside removal handler ${caller.handler} (project ${caller.projectId}): the stop does not wait for that handler`,
    );
  }

  async function doStop(): Promise<void> {
    if (actor.getSnapshot().status !== "active") {
      finish();
      return;
    }
    // STOP is accepted in every state, idle included: a bridge that never
    // connected (stop() before start(), or no URL) still goes idle → stopping
    // → stopped through the machine, so status() and inspectors see it.
    if (!actorStarted) {
      actorStarted = true;
      actor.start();
    }
    const pendingAtStop = dispatcher.pending;
    await new Promise<void>((resolve) => {
      let timer: unknown;
      const sub = actor.subscribe({
        next: (s) => {
          if (s.status === "done") done();
        },
        error: () => done(),
        complete: () => done(),
      });
      function done() {
        clock.clearTimeout(timer);
        sub.unsubscribe();
        resolve();
      }
      timer = clock.setTimeout(done, timing.stopTimeoutMs);
      actor.send({ type: "STOP" });
      if (actor.getSnapshot().status === "done") done();
    });
    finish(pendingAtStop);
  }

  function isRunning(): boolean {
    // An actor that was never started reports "active" only after start().
    return started && client !== undefined;
  }

  function finish(pendingAtStop = 0): void {
    const { dropped, interrupted } = dispatcher.close();
    droppedOnStop += dropped.length;
    // What was in a handler when stop() gave up (its handler is no longer awaited).
    const inHandler = interrupted?.projectId;
    if (dropped.length > 0 || inHandler !== undefined) {
      const handler = interrupted?.handler;
      log.warn(
        { inHandler, ...(handler !== undefined ? { handler } : {}), dropped: dropped.length, projectIds: dropped.slice(0, 20).map((d) => d.projectId) },
        inHandler === undefined
          ? "stop() ran out of budget: removals not dispatched"
          : `stop() ran out of budget: a handler was still running for ${inHandler}${handler !== undefined ? ` (${handler})` : ""} and is no longer awaited; ${dropped.length} queued removals not dispatched` +
              (asyncContextIsCheap
                ? ""
                : " (if that handler awaits stop() after its first await: that is not recognised before Node.js 24; call stop() before the handler's first await, or without awaiting it)"),
      );
    } else if (pendingAtStop > 0) {
      log.debug({ pending: pendingAtStop }, "stop() drained pending removals");
    }
    actor.stop();
    metrics.close();
    if (ownsClient) client?.close?.();
    timestamps.stoppedAtMs = now();
    log.info({}, "bridge stopped");
  }

  function status(): BridgeStatus {
    const snapshot = actor.getSnapshot();
    const ctx = snapshot.context;
    const d = dispatcher.stats();
    const stopped = snapshot.status === "done" || (stopPromise !== undefined && timestamps.stoppedAtMs !== undefined);
    return {
      state: stopped ? "stopped" : flattenConnection(snapshot.value),
      heartbeat: stopped ? "stopped" : heartbeatOf(snapshot.value),
      attempt: ctx.attempt,
      lastError: ctx.lastError ?? configError,
      idleReason: stopped ? null : idleReason,
      clientId: ctx.clientId,
      server: opts.target.kind === "client" ? "client" : (opts.redactedUrl ?? null),
      counters: {
        ...ctx.counters,
        dispatched: d.dispatched,
        handlerErrors: d.handlerErrors,
        handlerTimeouts: d.handlerTimeouts,
        droppedOnStop,
        pendingDispatch: dispatcher.pending,
      },
      timestamps: { ...timestamps },
    };
  }

  return {
    start,
    stop,
    [Symbol.asyncDispose]: stop,
    syncNow() {
      if (isRunning() && !stopPromise) actor.send({ type: "SYNC.NOW" });
    },
    status,
    actor,
  };
}
