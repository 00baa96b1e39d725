/**
 * The bridge's removal queue: removals are dispatched one at a time, each
 * fanned out to every handler (src/removal-fan-out.ts) before the next.
 * Internal; its options arrive validated by validateBridgeOptions.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { BridgeError } from "./errors.js";
import type { HandlerRegistry } from "./handler-registry.js";
import { type DispatchOutcome, type FanOutOptions, type HandlerCall, fanOut } from "./removal-fan-out.js";
import type { Clock, Logger, ProjectRemovalAware, RemovalInfo } from "./types.js";

/** When one removal was queued, handed to its first handler, and done. */
export interface DeliveryTimes {
  queuedAtMs: number;
  startedAtMs: number;
  settledAtMs: number;
}

export interface DispatcherOptions {
  /** Whose handlers hear the removals. */
  registry: HandlerRegistry;
  /** Runs the handler timeout timers (SimulatedClock in tests). */
  clock: Clock;
  /** Receives handler failures and the dispatcher's debug lines. Must not throw: the bridge's logger, already wrapped by `safeLogger`. */
  logger: Logger;
  /** One handler's budget for one removal, in ms (BridgeTiming.handlerTimeoutMs, validated by validateBridgeOptions). */
  handlerTimeoutMs: number;
  /**
   * Called once per removal whose dispatch started, when it is done (or was
   * aborted by `close()`: then `outcome.skipped` > 0). A throw is logged and
   * ignored. Defaults to none.
   */
  onOutcome?: (projectId: string, info: RemovalInfo, outcome: DispatchOutcome, delivery: DeliveryTimes) => void;
  /** Source of the DeliveryTimes, in ms. Defaults to `Date.now`. */
  now?: () => number;
  /**
   * Run each handler call in an AsyncLocalStorage context, so that
   * releaseCallingHandler() recognises a handler after its first await too.
   * Defaults to `asyncContextIsCheap` (Node.js 24 and later): before Node 24
   * it would slow every promise in the process.
   */
  trackAsyncContext?: boolean;
  /**
   * The most removals queued or in flight (validated by
   * validateBridgeOptions, see BridgeOptions.maxQueuedRemovals). The stream
   * may fill half of it; the rest is kept for removals of tracked projects
   * (every heartbeat removal, and stream removals `isTracked` accepts).
   * Defaults to unbounded.
   */
  maxQueued?: number;
  /** The most bytes (estimated) the queued removals may hold, split the same way. Defaults to unbounded. */
  maxQueuedBytes?: number;
  /**
   * Whether the daemon holds this project now: its stream removal goes in
   * the tracked lane, ahead of removals of projects nobody holds. Defaults
   * to none (every stream removal in the untracked lane).
   */
  isTracked?: ((projectId: string) => boolean) | undefined;
}

export interface DispatcherStats {
  /** Removals whose dispatch started (including one aborted by close). */
  dispatched: number;
  /** Handler calls that threw or rejected. */
  handlerErrors: number;
  /** Handler calls that ran past handlerTimeoutMs. */
  handlerTimeouts: number;
  /** Queued removals that close() dropped before their dispatch started. */
  dropped: number;
  /** Removals not queued because the same project id was already queued or in flight. */
  alreadyQueued: number;
}

/** The dispatch queue's fill, for status() and metrics. */
export interface DispatchPressure {
  /** Removals queued or in flight. */
  queued: number;
  /** Their estimated bytes. */
  queuedBytes: number;
  /** Of the queued ones, those in the tracked lane. */
  queuedTracked: number;
  maxQueued: number;
  maxQueuedBytes: number;
  /** Whether the stream's share is full: the bridge has stopped reading the stream. */
  streamPaused: boolean;
}

/**
 * A serial queue of removals: each is fully dispatched (every handler
 * settled or timed out) before the next one starts, in enqueue order.
 */
export interface Dispatcher {
  /**
   * Queues a removal. Dispatch starts on a later microtask, never inside
   * this call. Ignored (logged at debug) after close() or for an empty id.
   * `info` is handed over: it is frozen in place and every handler gets it.
   */
  enqueue(projectId: string, info: RemovalInfo): void;
  /** Removals queued plus the one in flight. */
  readonly pending: number;
  /** How many more removals the stream may queue now (its share of the bounds). */
  streamRoom(): number;
  /** How many more removals a heartbeat answer may queue now (the whole bound). */
  heartbeatRoom(): number;
  /** Resolves when streamRoom() > 0 again, when the dispatcher closes, or when `signal` aborts. */
  streamRoomAvailable(signal: AbortSignal): Promise<void>;
  /** Resolves when heartbeatRoom() > 0 again, when the dispatcher closes, or when `signal` aborts. */
  heartbeatRoomAvailable(signal: AbortSignal): Promise<void>;
  /** The queue's fill against its bounds. */
  pressure(): DispatchPressure;
  /** Whether close() was called. */
  readonly closed: boolean;
  /** Resolves once nothing is queued or in flight; at once if so already. */
  idle(): Promise<void>;
  /**
   * Stops for good: drops and returns the queued removals, aborts the one in
   * flight (its running handler is no longer awaited, its later handlers do
   * not start) and ignores later enqueues. Idempotent; a second call drops
   * nothing.
   */
  close(): { dropped: Array<{ projectId: string }>; interrupted?: { projectId: string; handler?: string } };
  /** A snapshot of the counters. */
  stats(): DispatcherStats;
  /**
   * Called from code that must not wait for the handler it runs in (stop()
   * awaited inside a handler): when the caller is a call of one of this
   * dispatcher's handlers that is still running, stops awaiting that call (it
   * counts as delivered; the removal's next handlers and the queue go on) and
   * returns which call it was. Otherwise does nothing and returns undefined.
   *
   * "The caller is a handler call" is known for certain while the handler's
   * own synchronous code runs (up to its first `await`), and after an await
   * only when `trackAsyncContext` is on (see DispatcherOptions).
   */
  releaseCallingHandler(): { handler: string; projectId: string } | undefined;
}

/**
 * Whether AsyncLocalStorage is cheap here. From Node.js 24 it rides on
 * AsyncContextFrame (a map per run()). Before, it enables async_hooks for the
 * whole process: every promise anyone creates then pays a hook, measured at
 * +1.8 µs per event (+40 %) on a bare connect-node stream loop on Node 20
 * (a one-off scratch measurement, not a bench/ case).
 */
export const asyncContextIsCheap: boolean =
  Number(process.versions.node.split(".")[0]) >= 24 &&
  !process.execArgv.includes("--no-async-context-frame") &&
  !(process.env["NODE_OPTIONS"] ?? "").includes("--no-async-context-frame");

/** Marks a handler call's async context, across its awaits and the timers it starts (trackAsyncContext only). */
const handlerContext = new AsyncLocalStorage<HandlerCall>();

/** The handler call whose synchronous code is running now, if any (any dispatcher's). */
let syncCall: HandlerCall | undefined;

function invokeHandler(handler: ProjectRemovalAware, projectId: string, info: RemovalInfo): unknown {
  return handler.onProjectRemoved(projectId, info);
}

interface Queued {
  projectId: string;
  info: RemovalInfo;
  queuedAtMs: number;
  bytes: number;
  tracked: boolean;
}

/** A queued removal's estimated heap: the object, its info and its strings (UTF-16). */
function estimateBytes(projectId: string, info: RemovalInfo): number {
  return 160 + 2 * (projectId.length + (info.eventId?.length ?? 0) + (info.reason?.length ?? 0));
}

/** A FIFO with a head index: Array.shift() copies the whole array, which turns a burst quadratic. */
class Lane {
  private items: Queued[] = [];
  private head = 0;
  get size(): number {
    return this.items.length - this.head;
  }
  push(item: Queued): void {
    this.items.push(item);
  }
  take(): Queued | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head++];
    if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }
  drainAll(): Queued[] {
    const rest = this.items.slice(this.head);
    this.items = [];
    this.head = 0;
    return rest;
  }
}

/**
 * Creates a dispatcher. The options are not checked again: they come from
 * validateBridgeOptions (the one place for defaults and validation).
 */
export function createDispatcher(options: DispatcherOptions): Dispatcher {
  const { registry, clock, logger, handlerTimeoutMs, onOutcome } = options;
  const now = options.now ?? Date.now;

  // Two lanes: removals of projects the daemon holds go first, so they never
  // wait behind a backlog of stream removals for projects nobody holds.
  const trackedLane = new Lane();
  const untrackedLane = new Lane();
  const queued = (): number => trackedLane.size + untrackedLane.size;
  const take = (): Queued | undefined => trackedLane.take() ?? untrackedLane.take();
  const maxQueued = options.maxQueued ?? Number.POSITIVE_INFINITY;
  const maxQueuedBytes = options.maxQueuedBytes ?? Number.POSITIVE_INFINITY;
  const isTracked = options.isTracked;
  /** Ids queued or in flight: a removal already waiting is never queued twice. */
  const queuedIds = new Set<string>();
  let queuedBytes = 0;
  let queuedTracked = 0;
  const roomWaiters = new Set<() => void>();
  const heartbeatWaiters = new Set<() => void>();
  const idleWaiters: Array<() => void> = [];
  const counters: DispatcherStats = { dispatched: 0, handlerErrors: 0, handlerTimeouts: 0, dropped: 0, alreadyQueued: 0 };
  const pendingCount = (): number => queued() + (inFlight === undefined ? 0 : 1);
  const streamRoom = (): number => (queuedBytes >= maxQueuedBytes / 2 ? 0 : Math.max(0, Math.floor(maxQueued / 2) - pendingCount()));
  const heartbeatRoom = (): number => (queuedBytes >= maxQueuedBytes ? 0 : Math.max(0, maxQueued - pendingCount()));
  /** One removal left the queue for good: its bytes and id are free again. */
  const release = (item: Queued): void => {
    queuedIds.delete(item.projectId);
    queuedBytes -= item.bytes;
    if (item.tracked) queuedTracked -= 1;
    if (roomWaiters.size > 0 && streamRoom() > 0) for (const wake of [...roomWaiters]) wake();
    if (heartbeatWaiters.size > 0 && heartbeatRoom() > 0) for (const wake of [...heartbeatWaiters]) wake();
  };
  /** A promise that resolves when `wake` is called from `waiters`, or `signal` aborts. */
  const waitIn = (waiters: Set<() => void>, signal: AbortSignal): Promise<void> =>
    new Promise<void>((resolve) => {
      const wake = () => {
        waiters.delete(wake);
        signal.removeEventListener("abort", wake);
        resolve();
      };
      waiters.add(wake);
      signal.addEventListener("abort", wake, { once: true });
    });
  // One signal for the dispatcher's life: close() aborts whatever is in
  // flight, and nothing runs after close(), so no removal needs its own.
  const closing = new AbortController();
  const trackAsyncContext = options.trackAsyncContext ?? asyncContextIsCheap;
  /** The handler call running now (the one close() interrupts, the one a handler can release). */
  let currentCall: HandlerCall | undefined;
  const fanOutOptions: FanOutOptions = {
    timeoutMs: handlerTimeoutMs,
    clock,
    logger,
    signal: closing.signal,
    enter(call, handler, projectId, info) {
      currentCall = call;
      const outer = syncCall;
      syncCall = call;
      try {
        return trackAsyncContext
          ? handlerContext.run(call, invokeHandler, handler, projectId, info)
          : invokeHandler(handler, projectId, info);
      } finally {
        syncCall = outer;
      }
    },
  };
  // One removal is in flight at a time: its state lives here, not in
  // closures made per removal.
  let inFlight: Queued | undefined;
  let inFlightStartedAtMs = 0;
  /** Whether the in-flight removal's fanOut() call is still on the stack. */
  let inFanOut = false;
  /** Whether the in-flight removal finished inside its fanOut() call. */
  let doneInFanOut = false;
  let draining = false;
  let closed = false;

  const isIdle = (): boolean => !draining && queued() === 0;

  /**
   * Dispatches queued removals one after the other in one loop: a removal
   * whose handlers all return synchronously is done before the loop takes
   * the next; one that waits on a handler's promise resumes the loop from
   * onRemovalDone when it is done.
   */
  function drain(): void {
    while (!closed) {
      const item = take();
      if (item === undefined) break;
      if (!dispatchOne(item)) return;
    }
    draining = false;
    for (const resolve of idleWaiters.splice(0)) resolve();
  }

  /** Starts one removal's fan-out; true when it is already done. */
  function dispatchOne(item: Queued): boolean {
    inFlight = item;
    counters.dispatched += 1;
    inFlightStartedAtMs = now();
    logger.debug({ projectId: item.projectId, source: item.info.source }, "dispatching removal");
    inFanOut = true;
    doneInFanOut = false;
    try {
      fanOut(registry.handlers(), item.projectId, item.info, fanOutOptions, onRemovalDone);
    } catch (err) {
      // Only a throwing clock gets here; keep the queue alive regardless.
      logger.error({ projectId: item.projectId, err }, "removal dispatch failed");
      if (inFlight === item) onRemovalDone({ delivered: 0, failed: [], skipped: 0 });
    } finally {
      inFanOut = false;
    }
    return doneInFanOut;
  }

  function onRemovalDone(outcome: DispatchOutcome): void {
    const item = inFlight;
    if (item === undefined) return;
    inFlight = undefined;
    currentCall = undefined;
    release(item);
    settled(item, inFlightStartedAtMs, outcome);
    if (inFanOut) doneInFanOut = true;
    else drain();
  }

  function settled(item: Queued, startedAtMs: number, outcome: DispatchOutcome): void {
    for (const failure of outcome.failed) {
      if (failure.code === "handler_timeout") counters.handlerTimeouts += 1;
      else counters.handlerErrors += 1;
    }
    if (onOutcome !== undefined) {
      const delivery: DeliveryTimes = { queuedAtMs: item.queuedAtMs, startedAtMs, settledAtMs: now() };
      try {
        onOutcome(item.projectId, item.info, outcome, delivery);
      } catch (err) {
        logger.warn({ projectId: item.projectId, err }, "onOutcome callback threw");
      }
    }
  }

  return {
    enqueue(projectId: string, info: RemovalInfo): void {
      if (closed) {
        logger.debug({ projectId }, "dispatcher closed; removal ignored");
        return;
      }
      if (typeof projectId !== "string" || projectId === "") {
        logger.debug({ projectId }, "removal with an empty project id ignored");
        return;
      }
      if (queuedIds.has(projectId)) {
        // Still waiting or in flight: its handlers will hear it once.
        counters.alreadyQueued += 1;
        logger.debug({ projectId, source: info.source }, "removal already queued; not queued again");
        return;
      }
      let tracked = info.source === "heartbeat";
      if (!tracked && isTracked !== undefined) {
        try {
          tracked = isTracked(projectId) === true;
        } catch {
          tracked = false;
        }
      }
      // Frozen in place, not copied: the handlers get this very object.
      const item: Queued = { projectId, info: Object.freeze(info), queuedAtMs: now(), bytes: estimateBytes(projectId, info), tracked };
      queuedIds.add(projectId);
      queuedBytes += item.bytes;
      if (tracked) {
        queuedTracked += 1;
        trackedLane.push(item);
      } else {
        untrackedLane.push(item);
      }
      if (!draining) {
        draining = true;
        queueMicrotask(drain);
      }
    },
    get pending(): number {
      return pendingCount();
    },
    streamRoom: () => (closed ? 0 : streamRoom()),
    heartbeatRoom: () => (closed ? 0 : heartbeatRoom()),
    streamRoomAvailable(signal: AbortSignal): Promise<void> {
      if (closed || signal.aborted || streamRoom() > 0) return Promise.resolve();
      return waitIn(roomWaiters, signal);
    },
    heartbeatRoomAvailable(signal: AbortSignal): Promise<void> {
      if (closed || signal.aborted || heartbeatRoom() > 0) return Promise.resolve();
      return waitIn(heartbeatWaiters, signal);
    },
    pressure(): DispatchPressure {
      return {
        queued: pendingCount(),
        queuedBytes,
        queuedTracked,
        maxQueued,
        maxQueuedBytes,
        streamPaused: roomWaiters.size > 0,
      };
    },
    get closed(): boolean {
      return closed;
    },
    idle(): Promise<void> {
      if (isIdle()) return Promise.resolve();
      return new Promise<void>((resolve) => idleWaiters.push(resolve));
    },
    close(): { dropped: Array<{ projectId: string }>; interrupted?: { projectId: string; handler?: string } } {
      if (closed) return { dropped: [] };
      closed = true;
      const rest = [...trackedLane.drainAll(), ...untrackedLane.drainAll()];
      for (const item of rest) release(item);
      const dropped = rest.map(({ projectId }) => ({ projectId }));
      counters.dropped += dropped.length;
      for (const wake of [...roomWaiters, ...heartbeatWaiters]) wake();
      if (dropped.length > 0) logger.debug({ dropped: dropped.length }, "dispatcher closed; queued removals dropped");
      const running = currentCall?.running === true ? currentCall.name : undefined;
      const interrupted =
        inFlight === undefined ? undefined : { projectId: inFlight.projectId, ...(running !== undefined ? { handler: running } : {}) };
      closing.abort(new BridgeError("dispatcher closed", "stopped"));
      return interrupted === undefined ? { dropped } : { dropped, interrupted };
    },
    stats(): DispatcherStats {
      return { ...counters };
    },
    releaseCallingHandler(): { handler: string; projectId: string } | undefined {
      // Only this dispatcher's running call: another bridge's handler, or
      // one of ours that already timed out, is not the one a stop waits for.
      const call = syncCall ?? (trackAsyncContext ? handlerContext.getStore() : undefined);
      if (call === undefined || call !== currentCall || !call.release()) return undefined;
      return { handler: call.name, projectId: call.projectId };
    },
  };
}
