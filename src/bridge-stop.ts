/**
 * The bridge's stop(): STOP through the machine (which drains the handler
 * queue), bounded by timing.stopTimeoutMs; then the dispatcher is closed
 * (what is left is dropped and logged) and the bridge releases what it
 * owns. Idempotent: every call returns the first call's promise.
 */
import type { Actor } from "xstate";
import type { BridgeMachine } from "../machines/bridge.machine.js";
import { asyncContextIsCheap, type Dispatcher } from "./dispatcher.js";
import type { Clock, Logger } from "./types.js";

export interface BridgeStopOptions {
  actor: Actor<BridgeMachine>;
  dispatcher: Dispatcher;
  /** Runs the stop budget's timer. */
  clock: Clock;
  /** How long stop() waits for the machine to finish (BridgeTiming.stopTimeoutMs). */
  stopTimeoutMs: number;
  logger: Logger;
  /** Starts the actor if start() never did: STOP still travels idle → stopping → stopped. */
  startActor(): void;
  /** Releases what the bridge owns (metrics, the client) once the actor is stopped. */
  release(): void;
}

export interface BridgeStop {
  stop(): Promise<void>;
  /** Whether stop() was called. */
  readonly requested: boolean;
  /** Removals close() dropped because the stop ran out of budget. */
  readonly droppedOnStop: number;
}

export function createBridgeStop(options: BridgeStopOptions): BridgeStop {
  const { actor, dispatcher, clock, stopTimeoutMs, logger: log } = options;
  let stopPromise: Promise<void> | undefined;
  let droppedOnStop = 0;

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
    options.startActor();
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
      timer = clock.setTimeout(done, stopTimeoutMs);
      actor.send({ type: "STOP" });
      if (actor.getSnapshot().status === "done") done();
    });
    finish(pendingAtStop);
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
    options.release();
    log.info({}, "bridge stopped");
  }

  return {
    stop,
    get requested() {
      return stopPromise !== undefined;
    },
    get droppedOnStop() {
      return droppedOnStop;
    },
  };
}
