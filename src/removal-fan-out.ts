/**
 * The fan-out of one removal to the registered handlers (internal: the
 * dispatcher runs it). Its options arrive validated (validateBridgeOptions):
 * `timeoutMs` within bounds, the logger wrapped by safeLogger.
 */
import { BridgeError } from "./errors.js";
import type { HandlerRegistry, RegisteredHandler } from "./handler-registry.js";
import type { Clock, Logger, ProjectRemovalAware, RemovalInfo } from "./types.js";

export interface DispatchRemovalOptions {
  /** One handler's budget for this removal, in ms (validated: BridgeTiming.handlerTimeoutMs). */
  timeoutMs: number;
  /** Runs the timeout timers (SimulatedClock in tests). */
  clock: Clock;
  /** Receives handler failures (error), timeouts (warn) and late settlements (debug). Must not throw (safeLogger). */
  logger: Logger;
  /** Aborting skips the handlers not yet started and stops waiting for the running one. */
  signal?: AbortSignal;
}

/** One handler that did not take a removal. */
export interface HandlerFailure {
  name: string;
  code: "handler_failed" | "handler_timeout";
  message: string;
}

/** What became of one removal's fan-out. */
export interface DispatchOutcome {
  /** Handlers that returned or resolved within their budget. */
  delivered: number;
  /** Handlers that threw, rejected or timed out, in registration order. */
  failed: HandlerFailure[];
  /** Handlers not started, or no longer awaited, because the signal aborted. */
  skipped: number;
}

/** The result of every call that returned in time (shared: results are only read). */
const DELIVERED: HandlerResult = { kind: "delivered" };

type HandlerResult =
  | { kind: "delivered" }
  | { kind: "failed"; reason: unknown }
  | { kind: "timeout" }
  | { kind: "aborted" }
  | { kind: "released" };

/**
 * One handler call of a fan-out, as `FanOutOptions.enter` sees it: the
 * dispatcher keeps it in the call's async context so that a handler that
 * stops the bridge can be told apart (and released).
 */
export interface HandlerCall {
  readonly name: string;
  readonly projectId: string;
  /** Whether the call has not settled, timed out or been released yet. */
  readonly running: boolean;
  /**
   * Stops awaiting this call: the fan-out counts it as delivered and moves on
   * to the next handler at once; a later rejection is still logged. Returns
   * false (and does nothing) once the call is no longer running.
   */
  release(): boolean;
}

export interface FanOutOptions extends DispatchRemovalOptions {
  /**
   * Calls one handler: must call `handler.onProjectRemoved(projectId, info)`
   * and return what it returns (or throw what it throws). Lets the caller run
   * the handler in an async context of its own. Defaults to a plain call.
   */
  enter?: (call: HandlerCall, handler: ProjectRemovalAware, projectId: string, info: RemovalInfo) => unknown;
}

/**
 * Fans one removal out to the handlers registered when the call starts.
 * Handlers run one at a time in registration order, each awaited before the
 * next. A sync throw, an async rejection or running past `timeoutMs` is
 * logged with the handler's name, recorded in `failed`, and never stops the
 * other handlers; a handler that settles after its timeout is only logged at
 * debug. Every handler gets the same frozen `info` (a frozen copy unless it
 * is frozen already). A handler timer is armed only for a handler that
 * returns a promise; timers go through `options.clock` and are always
 * cleared. Resolves, never rejects, once every handler settled or timed out,
 * or soon after `signal` aborts.
 */
export function dispatchRemoval(
  registry: HandlerRegistry,
  projectId: string,
  info: RemovalInfo,
  options: DispatchRemovalOptions,
): Promise<DispatchOutcome> {
  const handlers = registry.handlers();
  return new Promise<DispatchOutcome>((resolve) => fanOut(handlers, projectId, info, options, resolve));
}

/**
 * The fan-out of dispatchRemoval without the promise: runs `handlers` as
 * dispatchRemoval describes and calls `done` once with the outcome. Handlers
 * that return anything but a promise run back to back in one synchronous
 * loop, so a removal whose handlers are all synchronous is done (and `done`
 * called) before fanOut returns. `options.timeoutMs` must be valid and
 * `options.logger` must not throw (safeLogger); fanOut itself never throws
 * unless the clock does.
 */
export function fanOut(
  handlers: readonly RegisteredHandler[],
  projectId: string,
  info: RemovalInfo,
  options: FanOutOptions,
  done: (outcome: DispatchOutcome) => void,
): void {
  new FanOut(handlers, projectId, info, options, done).step();
}

/**
 * One removal's fan-out. A class, not closures: a removal whose handlers are
 * all synchronous allocates no function at all.
 */
class FanOut {
  readonly #handlers: readonly RegisteredHandler[];
  readonly #projectId: string;
  readonly #info: RemovalInfo;
  readonly #options: FanOutOptions;
  readonly #done: (outcome: DispatchOutcome) => void;
  readonly #outcome: DispatchOutcome = { delivered: 0, failed: [], skipped: 0 };
  #next = 0;

  constructor(
    handlers: readonly RegisteredHandler[],
    projectId: string,
    info: RemovalInfo,
    options: FanOutOptions,
    done: (outcome: DispatchOutcome) => void,
  ) {
    this.#handlers = handlers;
    this.#projectId = projectId;
    this.#info = Object.isFrozen(info) ? info : Object.freeze({ ...info });
    this.#options = options;
    this.#done = done;
  }

  /** Runs handlers back to back until one returns a promise (then resumes when it settles) or all ran. */
  step(): void {
    const handlers = this.#handlers;
    const { signal, enter } = this.#options;
    const projectId = this.#projectId;
    const info = this.#info;
    while (this.#next < handlers.length) {
      if (signal?.aborted === true) {
        this.#outcome.skipped += handlers.length - this.#next;
        this.#next = handlers.length;
        break;
      }
      const { name, handler } = handlers[this.#next++] as RegisteredHandler;
      const call = enter === undefined ? undefined : new Call(name, projectId);
      let returned: unknown;
      try {
        returned =
          call === undefined
            ? handler.onProjectRemoved(projectId, info)
            : (enter as NonNullable<typeof enter>)(call, handler, projectId, info);
        if (!isThenable(returned)) {
          call?.settle();
          this.#record(name, DELIVERED);
          continue;
        }
      } catch (reason) {
        call?.settle();
        this.#record(name, { kind: "failed", reason });
        continue;
      }
      // A promise: only now is there something to time out.
      this.#await(returned, name, call);
      return;
    }
    this.#done(this.#outcome);
  }

  #resume(name: string, result: HandlerResult): void {
    this.#record(name, result);
    try {
      this.step();
    } catch (err) {
      // Only a throwing clock gets here; end this removal rather than hang it.
      this.#options.logger.error({ projectId: this.#projectId, err }, "removal dispatch failed");
      this.#outcome.skipped += this.#handlers.length - this.#next;
      this.#next = this.#handlers.length;
      this.#done(this.#outcome);
    }
  }

  #await(returned: PromiseLike<unknown>, name: string, call: Call | undefined): void {
    const { timeoutMs, clock, logger, signal } = this.#options;
    const projectId = this.#projectId;
    let settled = false;
    const finish = (result: HandlerResult): void => {
      if (settled) return;
      settled = true;
      clock.clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      call?.settle();
      this.#resume(name, result);
    };
    const onAbort = (): void => finish({ kind: "aborted" });
    const timer = clock.setTimeout(() => finish({ kind: "timeout" }), timeoutMs);
    signal?.addEventListener("abort", onAbort, { once: true });
    // Released from inside the handler's own code (its stop() call): move on
    // from a microtask, not nested in that call.
    if (call !== undefined) call.onRelease = () => queueMicrotask(() => finish({ kind: "released" }));
    Promise.resolve(returned).then(
      () => {
        if (settled) logger.debug({ handler: name, projectId }, "removal handler resolved after it was given up on");
        finish({ kind: "delivered" });
      },
      (reason: unknown) => {
        if (settled && call?.released === true)
          logger.error({ handler: name, projectId, err: reason }, "removal handler failed after it stopped the bridge");
        else if (settled) logger.debug({ handler: name, projectId, err: reason }, "removal handler rejected after it was given up on");
        finish({ kind: "failed", reason });
      },
    );
    // The handler itself may have aborted the signal (stopping the bridge) or
    // been released before it returned.
    if (signal?.aborted === true) finish({ kind: "aborted" });
    else if (call?.released === true) finish({ kind: "released" });
  }

  #record(name: string, result: HandlerResult): void {
    const { logger, timeoutMs } = this.#options;
    const projectId = this.#projectId;
    const outcome = this.#outcome;
    switch (result.kind) {
      case "delivered":
        outcome.delivered += 1;
        break;
      case "released":
        outcome.delivered += 1;
        logger.debug({ handler: name, projectId }, "removal handler released (it stopped the bridge); not awaited");
        break;
      case "failed": {
        logger.error({ handler: name, projectId, err: result.reason }, "removal handler failed");
        outcome.failed.push({ name, code: "handler_failed", message: describe(result.reason) });
        break;
      }
      case "timeout": {
        const err = new BridgeError(`handler ${name} did not settle within ${timeoutMs} ms`, "handler_timeout");
        logger.warn({ handler: name, projectId, timeoutMs, err }, "removal handler timed out");
        outcome.failed.push({ name, code: "handler_timeout", message: err.rawMessage });
        break;
      }
      case "aborted":
        outcome.skipped += 1;
        logger.debug({ handler: name, projectId }, "removal dispatch aborted while a handler was running");
        break;
    }
  }
}

class Call implements HandlerCall {
  running = true;
  released = false;
  onRelease: (() => void) | undefined;
  readonly name: string;
  readonly projectId: string;
  constructor(name: string, projectId: string) {
    this.name = name;
    this.projectId = projectId;
  }
  release(): boolean {
    if (!this.running) return false;
    this.running = false;
    this.released = true;
    const onRelease = this.onRelease;
    this.onRelease = undefined;
    onRelease?.();
    return true;
  }
  settle(): void {
    this.running = false;
    this.onRelease = undefined;
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null && (typeof value === "object" || typeof value === "function") && typeof (value as { then?: unknown }).then === "function"
  );
}

function describe(reason: unknown): string {
  try {
    if (reason instanceof BridgeError) return reason.rawMessage;
    if (reason instanceof Error) return reason.message;
    return String(reason);
  } catch {
    return "unprintable reason";
  }
}
