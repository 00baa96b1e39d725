/**
 * Connection events for embedders: `bridge.on("connection", fn)`,
 * `bridge.changes(signal)` and `bridge.ready(signal)`. Fed by the bridge
 * with each change of the flattened connection state (the same snapshots
 * the timestamp book reads), the heartbeats the actor emits, a start() that
 * stayed idle, and the end of stop(). A listener or a consumer never runs
 * inside the actor's own notification: each change reaches them in a
 * microtask, a listener that throws is ignored (logged once), and a slow
 * `changes()` consumer holds at most CONNECTION_CHANGES_BUFFER changes.
 */
import type { BridgeActor } from "./bridge-api.js";
import type { ConnectionState } from "./bridge-status.js";
import { BridgeError, type ErrorSummary } from "./errors.js";
import type { Logger } from "./types.js";

/** One change of the bridge's connection state, as `bridge.on("connection")` and `bridge.changes()` deliver it. */
export interface ConnectionChange {
  /** The state the bridge is in now. */
  state: ConnectionState;
  /** The state it left. */
  previous: ConnectionState;
  /** The backoff attempt counter (0 once a stream proved itself). */
  attempt: number;
  /** In backoff: the failure (or GOAWAY) that led there. Absent in every other state. */
  error?: ErrorSummary;
  /** In backoff: the wait before the next open, in ms. Absent in every other state. */
  retryInMs?: number;
  /** When the change happened, on the bridge clock (ms; epoch ms on the real clock). */
  atMs: number;
}

/** Hears each connection change. Its return value is ignored; a throw or a rejection never reaches the bridge. */
export type ConnectionListener = (change: ConnectionChange) => void | Promise<void>;

/** The event names `bridge.on()` accepts. */
export type BridgeEventName = "connection";

/** How many changes a `changes()` iterator keeps for a consumer that has fallen behind; older ones are dropped. */
export const CONNECTION_CHANGES_BUFFER = 32;

/** What the Bridge offers embedders (part of the Bridge interface). */
export interface BridgeConnectionApi {
  /**
   * Calls `listener` with every later change of the connection state
   * (connecting, streaming, backoff with its error and wait, stopping,
   * stopped). Returns the function that unsubscribes it.
   */
  on(event: BridgeEventName, listener: ConnectionListener): () => void;
  /**
   * The later connection changes as an async iterator. It ends after the
   * `stopped` change, when `signal` aborts, or when the loop breaks. A
   * consumer that falls behind gets the latest CONNECTION_CHANGES_BUFFER
   * (32) changes; older ones are dropped, so memory stays bounded.
   */
  changes(signal?: AbortSignal): AsyncIterableIterator<ConnectionChange>;
  /**
   * Resolves once the bridge is streaming and a first heartbeat has
   * completed ("synced once"; at once if that already happened). Rejects
   * with `signal.reason` when `signal` aborts, with a BridgeError "stopped"
   * when the bridge stops first, and with the configuration error when
   * start() left the bridge idle.
   */
  ready(signal?: AbortSignal): Promise<void>;
}

export interface BridgeConnectionEvents extends BridgeConnectionApi {
  /** Listens to the actor's completed heartbeats (for ready()). */
  attach(actor: Pick<BridgeActor, "on">): void;
  /**
   * The connection state changed to `state` (the snapshot shows it). Returns
   * the change, which the listeners get in a microtask.
   */
  changed(state: ConnectionState, context: { attempt: number; lastError: ErrorSummary | null }): ConnectionChange;
  /** start() stayed idle for this reason: ready() rejects with it. */
  refused(error: ErrorSummary): void;
  /** stop() finished: a last `stopped` change unless one was already seen. Returns it, if any. */
  stopped(): ConnectionChange | undefined;
}

export interface BridgeConnectionEventsOptions {
  /** The bridge clock in ms (for atMs). */
  now: () => number;
  /** The wait the last armed backoff or reopen delay chose. */
  retryInMs: () => number | undefined;
  /** Where a throwing listener is reported (once per listener). */
  logger: Logger;
  /** The state the bridge starts in. Defaults to "idle". */
  initial?: ConnectionState;
}

export function createBridgeConnectionEvents(options: BridgeConnectionEventsOptions): BridgeConnectionEvents {
  const { now, retryInMs, logger } = options;
  let current: ConnectionState = options.initial ?? "idle";
  const listeners = new Set<ConnectionListener>();
  const complained = new WeakSet<ConnectionListener>();
  let synced = false;
  let isReady = false;
  let failure: Error | undefined;
  const waiters = new Set<{ resolve: () => void; reject: (reason: unknown) => void }>();

  function settle(): void {
    if (!isReady && synced && current === "streaming") {
      isReady = true;
      for (const w of [...waiters]) w.resolve();
      waiters.clear();
    }
  }

  function fail(error: Error): void {
    if (isReady || failure !== undefined) return;
    failure = error;
    for (const w of [...waiters]) w.reject(error);
    waiters.clear();
  }

  function deliver(change: ConnectionChange): void {
    for (const listener of [...listeners]) {
      queueMicrotask(() => {
        if (!listeners.has(listener)) return;
        try {
          const result: unknown = listener(change);
          if (result !== null && typeof result === "object" && typeof (result as PromiseLike<unknown>).then === "function") {
            (result as PromiseLike<unknown>).then(undefined, (reason: unknown) => complain(listener, reason));
          }
        } catch (reason) {
          complain(listener, reason);
        }
      });
    }
  }

  function complain(listener: ConnectionListener, reason: unknown): void {
    if (complained.has(listener)) return;
    complained.add(listener);
    logger.warn(
      { err: reason instanceof Error ? reason : new Error(String(reason)) },
      "a connection listener failed; ignored (further failures of this listener are not logged)",
    );
  }

  function emit(state: ConnectionState, attempt: number, lastError: ErrorSummary | null): ConnectionChange {
    const change: ConnectionChange = { state, previous: current, attempt, atMs: now() };
    if (state === "backoff") {
      if (lastError !== null) change.error = lastError;
      const wait = retryInMs();
      if (wait !== undefined) change.retryInMs = wait;
    }
    current = state;
    if (state === "stopping" || state === "stopped") fail(new BridgeError("the bridge stopped before it was ready", "stopped"));
    settle();
    deliver(change);
    return change;
  }

  function on(event: BridgeEventName, listener: ConnectionListener): () => void {
    if (event !== "connection")
      throw new BridgeError(`unknown bridge event "${String(event).slice(0, 40)}"; use "connection"`, "invalid_argument");
    if (typeof listener !== "function") throw new BridgeError("bridge.on() needs a listener function", "invalid_argument");
    // The same function twice is two subscriptions.
    const own: ConnectionListener = (change) => listener(change);
    listeners.add(own);
    return () => void listeners.delete(own);
  }

  function changes(signal?: AbortSignal): AsyncIterableIterator<ConnectionChange> {
    const buffer: ConnectionChange[] = [];
    const sleepers = new Set<() => void>();
    const wakeAll = () => {
      for (const wake of [...sleepers]) wake();
      sleepers.clear();
    };
    let ended = signal?.aborted === true || current === "stopped";
    let unsubscribe = () => {};
    const end = () => {
      ended = true;
      unsubscribe();
      signal?.removeEventListener("abort", abort);
      wakeAll();
    };
    // An abort ends the iteration at once; what was buffered is dropped.
    const abort = () => {
      buffer.length = 0;
      end();
    };
    if (!ended) {
      unsubscribe = on("connection", (change) => {
        buffer.push(change);
        if (buffer.length > CONNECTION_CHANGES_BUFFER) buffer.shift();
        // The stopped change is the last one: deliver it, then end.
        if (change.state === "stopped") end();
        wakeAll();
      });
      signal?.addEventListener("abort", abort, { once: true });
    }
    const iterator: AsyncIterableIterator<ConnectionChange> = {
      async next(): Promise<IteratorResult<ConnectionChange>> {
        for (;;) {
          const change = buffer.shift();
          if (change !== undefined) return { value: change, done: false };
          if (ended) return { value: undefined, done: true };
          await new Promise<void>((resolve) => sleepers.add(resolve));
        }
      },
      async return(): Promise<IteratorResult<ConnectionChange>> {
        abort();
        return { value: undefined, done: true };
      },
      [Symbol.asyncIterator]() {
        return iterator;
      },
    };
    return iterator;
  }

  function ready(signal?: AbortSignal): Promise<void> {
    if (isReady) return Promise.resolve();
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (failure !== undefined) return Promise.reject(failure);
    return new Promise<void>((resolve, reject) => {
      const waiter = {
        resolve: () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
        reject: (reason: unknown) => {
          signal?.removeEventListener("abort", onAbort);
          reject(reason);
        },
      };
      const onAbort = () => {
        waiters.delete(waiter);
        reject(signal?.reason);
      };
      waiters.add(waiter);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  return {
    on,
    changes,
    ready,
    attach(actor) {
      actor.on("syncCompleted", () => {
        synced = true;
        settle();
      });
    },
    changed: (state, context) => emit(state, context.attempt, context.lastError),
    refused(error) {
      fail(new BridgeError(error.message, error.code));
    },
    stopped() {
      if (current === "stopped") return undefined;
      return emit("stopped", 0, null);
    },
  };
}
