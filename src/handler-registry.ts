import { BridgeError } from "./errors.js";
import { safeLogger } from "./logger.js";
import type { Clock, Logger, ProjectRemovalAware, RemovalInfo } from "./types.js";

/** A handler as the registry holds it, with the name used in logs and outcomes. */
export interface RegisteredHandler {
  readonly name: string;
  readonly handler: ProjectRemovalAware;
}

interface Entry {
  readonly registered: RegisteredHandler;
  readonly unregister: () => void;
}

/**
 * Who hears about removed projects. Handlers are kept in registration order;
 * each is named once, when registered: its `name` if it is a non-empty
 * string, else its constructor's name unless that is "Object", else
 * `handler#N` (N counts registrations from 1).
 */
export class HandlerRegistry {
  readonly #entries = new Map<ProjectRemovalAware, Entry>();
  #registrations = 0;

  /**
   * Adds `handler` and returns a function that removes it again (calling it
   * more than once, or after the handler was registered anew, does nothing).
   * Registering an object that is already registered keeps its place and
   * returns the same function. Throws a BridgeError "invalid_argument" when
   * `handler` has no `onProjectRemoved` method.
   */
  register(handler: ProjectRemovalAware): () => void {
    if (!hasRemovalMethod(handler)) {
      throw new BridgeError("a removal handler needs an onProjectRemoved(projectId, info) method", "invalid_argument");
    }
    const existing = this.#entries.get(handler);
    if (existing !== undefined) return existing.unregister;
    this.#registrations += 1;
    const registered: RegisteredHandler = Object.freeze({ name: handlerName(handler, this.#registrations), handler });
    const entry: Entry = {
      registered,
      unregister: () => {
        if (this.#entries.get(handler) === entry) this.#entries.delete(handler);
      },
    };
    this.#entries.set(handler, entry);
    return entry.unregister;
  }

  /** How many handlers are registered. */
  get size(): number {
    return this.#entries.size;
  }

  /** A snapshot of the registered handlers, in registration order. */
  handlers(): readonly RegisteredHandler[] {
    return Object.freeze(Array.from(this.#entries.values(), (e) => e.registered));
  }
}

export interface DispatchRemovalOptions {
  /** One handler's budget for this removal, in ms (positive, finite). */
  timeoutMs: number;
  /** Runs the timeout timers (SimulatedClock in tests). */
  clock: Clock;
  /** Receives handler failures (error), timeouts (warn) and late settlements (debug). */
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

type HandlerResult =
  | { kind: "delivered" }
  | { kind: "failed"; reason: unknown }
  | { kind: "timeout" }
  | { kind: "aborted" };

/**
 * Fans one removal out to the handlers registered when the call starts.
 * Handlers run one at a time in registration order, each awaited before the
 * next. A sync throw, an async rejection or running past `timeoutMs` is
 * logged with the handler's name, recorded in `failed`, and never stops the
 * other handlers; a handler that settles after its timeout is only logged at
 * debug. Every handler gets the same frozen copy of `info`. Timers go
 * through `options.clock` and are always cleared. Resolves, never rejects,
 * once every handler settled or timed out, or soon after `signal` aborts.
 * Rejects with a BridgeError "invalid_argument" for a bad `timeoutMs`.
 */
export async function dispatchRemoval(
  registry: HandlerRegistry,
  projectId: string,
  info: RemovalInfo,
  options: DispatchRemovalOptions,
): Promise<DispatchOutcome> {
  const { timeoutMs, clock, signal } = options;
  if (!isValidTimeoutMs(timeoutMs)) {
    throw new BridgeError(`handler timeout must be a positive number of ms up to ${maxTimeoutMs}`, "invalid_argument");
  }
  const logger = safeLogger(options.logger);
  const handlers = registry.handlers();
  const frozenInfo: RemovalInfo = Object.freeze({ ...info });
  const outcome: DispatchOutcome = { delivered: 0, failed: [], skipped: 0 };

  for (let i = 0; i < handlers.length; i++) {
    if (signal?.aborted === true) {
      outcome.skipped += handlers.length - i;
      break;
    }
    const { name, handler } = handlers[i] as RegisteredHandler;
    const result = await runHandler(handler, name, projectId, frozenInfo, { timeoutMs, clock, logger, signal });
    switch (result.kind) {
      case "delivered":
        outcome.delivered += 1;
        break;
      case "failed": {
        const message = describe(result.reason);
        logger.error({ handler: name, projectId, err: result.reason }, "removal handler failed");
        outcome.failed.push({ name, code: "handler_failed", message });
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
  return outcome;
}

/** The largest delay a Node.js timer honours. */
const maxTimeoutMs = 2_147_483_647;

export function isValidTimeoutMs(ms: number): boolean {
  return typeof ms === "number" && Number.isFinite(ms) && ms > 0 && ms <= maxTimeoutMs;
}

function runHandler(
  handler: ProjectRemovalAware,
  name: string,
  projectId: string,
  info: RemovalInfo,
  options: { timeoutMs: number; clock: Clock; logger: Logger; signal: AbortSignal | undefined },
): Promise<HandlerResult> {
  let returned: unknown;
  let pending: PromiseLike<unknown>;
  try {
    returned = handler.onProjectRemoved(projectId, info);
    if (!isThenable(returned)) return Promise.resolve({ kind: "delivered" });
    pending = Promise.resolve(returned);
  } catch (reason) {
    return Promise.resolve({ kind: "failed", reason });
  }
  const { timeoutMs, clock, logger, signal } = options;
  return new Promise<HandlerResult>((resolve) => {
    let settled = false;
    const finish = (result: HandlerResult): void => {
      if (settled) return;
      settled = true;
      clock.clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      resolve(result);
    };
    const onAbort = (): void => finish({ kind: "aborted" });
    const timer = clock.setTimeout(() => finish({ kind: "timeout" }), timeoutMs);
    signal?.addEventListener("abort", onAbort, { once: true });
    // The handler itself may have aborted the signal (stopping the bridge).
    if (signal?.aborted === true) finish({ kind: "aborted" });
    pending.then(
      () => {
        if (settled) logger.debug({ handler: name, projectId }, "removal handler resolved after it was given up on");
        finish({ kind: "delivered" });
      },
      (reason: unknown) => {
        if (settled) logger.debug({ handler: name, projectId, err: reason }, "removal handler rejected after it was given up on");
        finish({ kind: "failed", reason });
      },
    );
  });
}

function hasRemovalMethod(handler: unknown): handler is ProjectRemovalAware {
  if (handler === null || (typeof handler !== "object" && typeof handler !== "function")) return false;
  try {
    return typeof (handler as { onProjectRemoved?: unknown }).onProjectRemoved === "function";
  } catch {
    return false;
  }
}

function handlerName(handler: ProjectRemovalAware, ordinal: number): string {
  try {
    const own: unknown = handler.name;
    if (typeof own === "string" && own.trim() !== "") return own;
    const ctor: unknown = (Object.getPrototypeOf(handler) as { constructor?: unknown } | null)?.constructor;
    const ctorName: unknown = typeof ctor === "function" ? ctor.name : undefined;
    if (typeof ctorName === "string" && ctorName !== "" && ctorName !== "Object") return ctorName;
  } catch {
    // A throwing getter falls through to the ordinal name.
  }
  return `handler#${ordinal}`;
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    (typeof value === "object" || typeof value === "function") &&
    typeof (value as { then?: unknown }).then === "function"
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
