/**
 * The Bridge as its users see it, in the package's own types: no xstate and
 * no connect declaration is reachable from here, so a project that compiles
 * with `exactOptionalPropertyTypes`, without `DOM` in `lib` and with
 * `skipLibCheck: false` compiles the root entry (issue 22 item 6).
 * `bridge.actor` is a narrow view of the XState actor that drives the bridge;
 * the full statechart types are in `engram-serverevents/machines`.
 */
import type { BridgeContext, BridgeEmitted, BridgeEvent } from "../machines/bridge.types.js";
import type { BridgeConnectionApi } from "./bridge-connection-events.js";
import type { BridgeStatus } from "./bridge-status.js";

/** The bridge actor's snapshot, as `bridge.actor.getSnapshot()` and its subscribers see it. */
export interface BridgeActorSnapshot {
  /** The statechart's state value, `{ connection: …, heartbeat: … }` (status().state flattens it). */
  readonly value: unknown;
  /** The machine's context: plain JSON, never a token. */
  readonly context: BridgeContext;
  /** "active" while it runs, "done" once it stopped through STOP, "error" if the statechart failed, "stopped" after stop(). */
  readonly status: "active" | "done" | "error" | "stopped";
  /** Why the statechart failed (status "error"). */
  readonly error?: unknown;
}

/** Hears a BridgeActor's snapshots. */
export interface BridgeActorObserver {
  next?: (snapshot: BridgeActorSnapshot) => void;
  error?: (error: unknown) => void;
  complete?: () => void;
}

/** What `subscribe()` and `on()` return. */
export interface BridgeSubscription {
  unsubscribe(): void;
}

/**
 * The XState actor that drives the bridge, seen through the methods an
 * embedder needs (inspection, tests, a STOP of its own). The object is the
 * XState actor itself.
 */
export interface BridgeActor {
  readonly id: string;
  readonly sessionId: string;
  getSnapshot(): BridgeActorSnapshot;
  /** The statechart the actor runs (the process's one provided bridge machine). */
  readonly logic: object;
  subscribe(observer: BridgeActorObserver): BridgeSubscription;
  subscribe(next: (snapshot: BridgeActorSnapshot) => void, error?: (error: unknown) => void, complete?: () => void): BridgeSubscription;
  send(event: BridgeEvent): void;
  /** Hears one kind of event the statechart emits (projectRemoved, streamFailed, syncCompleted, …), or every kind ("*"). */
  on<T extends BridgeEmitted["type"] | "*">(
    type: T,
    handler: (emitted: BridgeEmitted & (T extends "*" ? unknown : { type: T })) => void,
  ): BridgeSubscription;
}

export interface Bridge extends BridgeConnectionApi {
  /** Starts the bridge. Idempotent; without a URL or client it warns and stays idle. */
  start(): void;
  /** Stops the bridge. Idempotent; resolves within timing.stopTimeoutMs. */
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
  /** Asks for an immediate heartbeat. */
  syncNow(): void;
  status(): BridgeStatus;
  /** The XState actor that drives the bridge (for inspection and tests). */
  readonly actor: BridgeActor;
}
