import { BridgeError } from "./errors.js";
import { type DispatchOutcome, type HandlerRegistry, dispatchRemoval, isValidTimeoutMs } from "./handler-registry.js";
import { safeLogger } from "./logger.js";
import type { Clock, Logger, RemovalInfo } from "./types.js";

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
  /** Receives handler failures and the dispatcher's debug lines. Wrapped with `safeLogger`. */
  logger: Logger;
  /** One handler's budget for one removal, in ms (BridgeTiming.handlerTimeoutMs). */
  handlerTimeoutMs: number;
  /**
   * Called once per removal whose dispatch started, when it is done (or was
   * aborted by `close()`: then `outcome.skipped` > 0). A throw is logged and
   * ignored. Defaults to none.
   */
  onOutcome?: (projectId: string, info: RemovalInfo, outcome: DispatchOutcome, delivery: DeliveryTimes) => void;
  /** Source of the DeliveryTimes, in ms. Defaults to `Date.now`. */
  now?: () => number;
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
}

/**
 * A serial queue of removals: each is fully dispatched (every handler
 * settled or timed out) before the next one starts, in enqueue order.
 */
export interface Dispatcher {
  /**
   * Queues a removal. Dispatch starts on a later microtask, never inside
   * this call. Ignored (logged at debug) after close() or for an empty id.
   */
  enqueue(projectId: string, info: RemovalInfo): void;
  /** Removals queued plus the one in flight. */
  readonly pending: number;
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
  close(): { dropped: Array<{ projectId: string }>; interrupted?: { projectId: string } };
  /** A snapshot of the counters. */
  stats(): DispatcherStats;
}

interface Queued {
  projectId: string;
  info: RemovalInfo;
  queuedAtMs: number;
}

/**
 * Creates a dispatcher. Throws a BridgeError "invalid_config" when
 * `handlerTimeoutMs` is not a positive number of ms (at most 2^31-1) or
 * `registry` or `clock` is missing.
 */
export function createDispatcher(options: DispatcherOptions): Dispatcher {
  const { registry, clock, handlerTimeoutMs, onOutcome } = validateDispatcherOptions(options);
  const logger = safeLogger(options.logger);
  const now = options.now ?? Date.now;

  // A FIFO with a head index: Array.shift() copies the whole array, which
  // turns a burst of 100,000 heartbeat removals quadratic.
  let queue: Queued[] = [];
  let head = 0;
  const queued = (): number => queue.length - head;
  const take = (): Queued | undefined => {
    if (head >= queue.length) return undefined;
    const item = queue[head++];
    if (head >= 1024 && head * 2 >= queue.length) {
      queue = queue.slice(head);
      head = 0;
    }
    return item;
  };
  const idleWaiters: Array<() => void> = [];
  const counters: DispatcherStats = { dispatched: 0, handlerErrors: 0, handlerTimeouts: 0, dropped: 0 };
  // One signal for the dispatcher's life: close() aborts whatever is in
  // flight, and nothing runs after close(), so no removal needs its own.
  const closing = new AbortController();
  let inFlight: { projectId: string } | undefined;
  let draining = false;
  let closed = false;

  const isIdle = (): boolean => !draining && queued() === 0;

  async function drain(): Promise<void> {
    try {
      while (!closed) {
        const next = take();
        if (next === undefined) break;
        await dispatchOne(next);
      }
    } finally {
      draining = false;
      for (const resolve of idleWaiters.splice(0)) resolve();
    }
  }

  async function dispatchOne(item: Queued): Promise<void> {
    inFlight = { projectId: item.projectId };
    counters.dispatched += 1;
    const startedAtMs = now();
    logger.debug({ projectId: item.projectId, source: item.info.source }, "dispatching removal");
    let outcome: DispatchOutcome;
    try {
      outcome = await dispatchRemoval(registry, item.projectId, item.info, {
        timeoutMs: handlerTimeoutMs,
        clock,
        logger,
        signal: closing.signal,
      });
    } catch (err) {
      // dispatchRemoval does not reject for valid options; keep the queue alive regardless.
      logger.error({ projectId: item.projectId, err }, "removal dispatch failed");
      outcome = { delivered: 0, failed: [], skipped: 0 };
    } finally {
      inFlight = undefined;
    }
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
      queue.push({ projectId, info, queuedAtMs: now() });
      if (!draining) {
        draining = true;
        queueMicrotask(() => void drain());
      }
    },
    get pending(): number {
      return queued() + (inFlight === undefined ? 0 : 1);
    },
    get closed(): boolean {
      return closed;
    },
    idle(): Promise<void> {
      if (isIdle()) return Promise.resolve();
      return new Promise<void>((resolve) => idleWaiters.push(resolve));
    },
    close(): { dropped: Array<{ projectId: string }>; interrupted?: { projectId: string } } {
      if (closed) return { dropped: [] };
      closed = true;
      const dropped = queue.slice(head).map(({ projectId }) => ({ projectId }));
      queue = [];
      head = 0;
      counters.dropped += dropped.length;
      if (dropped.length > 0) logger.debug({ dropped: dropped.length }, "dispatcher closed; queued removals dropped");
      const interrupted = inFlight === undefined ? undefined : { projectId: inFlight.projectId };
      closing.abort(new BridgeError("dispatcher closed", "stopped"));
      return interrupted === undefined ? { dropped } : { dropped, interrupted };
    },
    stats(): DispatcherStats {
      return { ...counters };
    },
  };
}

function validateDispatcherOptions(options: DispatcherOptions): DispatcherOptions {
  if (options === null || typeof options !== "object") {
    throw new BridgeError("dispatcher options are required", "invalid_config");
  }
  if (options.registry === null || typeof options.registry?.handlers !== "function") {
    throw new BridgeError("dispatcher needs a HandlerRegistry", "invalid_config");
  }
  if (typeof options.clock?.setTimeout !== "function" || typeof options.clock.clearTimeout !== "function") {
    throw new BridgeError("dispatcher needs a clock with setTimeout and clearTimeout", "invalid_config");
  }
  if (!isValidTimeoutMs(options.handlerTimeoutMs)) {
    throw new BridgeError(
      `handlerTimeoutMs must be a positive number of ms up to 2147483647, got ${String(options.handlerTimeoutMs)}`,
      "invalid_config",
    );
  }
  return options;
}
