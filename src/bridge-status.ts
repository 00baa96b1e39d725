/**
 * What bridge.status() shows: the flattened connection state, the heartbeat
 * state, the attempt counter, the last error, counters and timestamps. Plain
 * JSON, never a token.
 */
import type { BridgeActorSnapshot } from "./bridge-api.js";
import type { BridgeCounters } from "../machines/bridge.types.js";
import type { DispatcherStats, DispatchPressure } from "./dispatcher.js";
import type { ErrorSummary } from "./errors.js";

export type ConnectionState = "idle" | "connecting" | "streaming" | "backoff" | "stopping" | "stopped";
export type HeartbeatState = "waiting" | "syncing" | "probing" | "stopped";

export interface DispatchCounters {
  /** Removals fully dispatched to the handlers. */
  dispatched: number;
  handlerErrors: number;
  handlerTimeouts: number;
  /** Removals dropped because stop() ran out of budget. */
  droppedOnStop: number;
  /** Removals queued or being dispatched now. */
  pendingDispatch: number;
  /** Removals not queued again because the same project id was still queued or in flight. */
  alreadyQueued: number;
}

export interface BridgeTimestamps {
  /** When start() ran (clock ms). */
  startedAtMs?: number;
  /** When the current or last stream reached streaming. */
  connectedAtMs?: number;
  /** When the last stream message arrived. */
  lastEventAtMs?: number;
  /** When the last heartbeat completed. */
  lastSyncAtMs?: number;
  /** When the last removal was handed to the handlers. */
  lastRemovalAtMs?: number;
  /** When the next reconnect attempt is due (in backoff). */
  nextRetryAtMs?: number;
  /** When stop() resolved. */
  stoppedAtMs?: number;
  /**
   * The bridge clock when status() was called: compare the others with it,
   * not with Date.now(), so a health check also holds on a simulated clock.
   */
  nowMs?: number;
}

/**
 * Why a started bridge stays idle: start() refused because there is no
 * server URL, the URL cannot be used, a token would go out in plaintext to a
 * non-loopback host, or the client could not be made (an unreadable CA file).
 */
export type IdleReason = "no_url" | "invalid_url" | "insecure_token" | "invalid_config";

export interface BridgeStatus {
  state: ConnectionState;
  heartbeat: HeartbeatState;
  attempt: number;
  lastError: ErrorSummary | null;
  /** Set while the bridge stays idle because start() refused (lastError says more); null otherwise. */
  idleReason: IdleReason | null;
  clientId: string;
  /** The server URL without user info, or "client" for an injected client. */
  server: string | null;
  counters: BridgeCounters & DispatchCounters;
  /**
   * The dispatch queue against its bounds (BridgeOptions.maxQueuedRemovals,
   * maxQueuedBytes); `streamPaused` while the bridge has stopped reading the
   * stream because the stream's share is full.
   */
  dispatch: DispatchPressure;
  timestamps: BridgeTimestamps;
}

/** Flattens the machine's state value into the connection state. */
export function flattenConnection(value: unknown): ConnectionState {
  const conn = (value as { connection?: unknown } | undefined)?.connection;
  // `open` is compound, so it always shows as { open: "connecting" | "streaming" }.
  // After a GOAWAY the bridge waits a short while before reopening: to a
  // reader that is a backoff (one that does not count as a failure).
  if (conn === "reopening") return "backoff";
  if (typeof conn === "string") return conn as ConnectionState;
  if (conn && typeof conn === "object" && "open" in conn) return (conn as { open: ConnectionState }).open;
  return "idle";
}

export function heartbeatOf(value: unknown): HeartbeatState {
  const hb = (value as { heartbeat?: unknown } | undefined)?.heartbeat;
  // `syncing` is parallel: a round (or one with a follow-up asked), and its
  // deadline (in time, probing the link, running on).
  if (hb && typeof hb === "object" && "syncing" in hb) {
    const deadline = (hb as { syncing?: { deadline?: unknown } }).syncing?.deadline;
    return deadline === "probing" ? "probing" : "syncing";
  }
  // A round held for the reopen's resync is still waiting to a reader.
  if (hb === "held") return "waiting";
  return typeof hb === "string" ? (hb as HeartbeatState) : "waiting";
}

/** What status() is assembled from: the machine's snapshot and what the runtime around it keeps. */
export interface BridgeStatusParts {
  snapshot: Pick<BridgeActorSnapshot, "value" | "context">;
  /** stop() has finished (or the machine is done). */
  stopped: boolean;
  /** Why start() refused, if it did. */
  configError: ErrorSummary | null;
  idleReason: IdleReason | null;
  server: string | null;
  dispatch: DispatcherStats;
  pendingDispatch: number;
  pressure: DispatchPressure;
  droppedOnStop: number;
  timestamps: BridgeTimestamps;
}

/** Assembles bridge.status() (plain JSON). */
export function assembleBridgeStatus(parts: BridgeStatusParts): BridgeStatus {
  const { snapshot, stopped, dispatch: d } = parts;
  const ctx = snapshot.context;
  return {
    state: stopped ? "stopped" : flattenConnection(snapshot.value),
    heartbeat: stopped ? "stopped" : heartbeatOf(snapshot.value),
    attempt: ctx.attempt,
    lastError: ctx.lastError ?? parts.configError,
    idleReason: stopped ? null : parts.idleReason,
    clientId: ctx.clientId,
    server: parts.server,
    counters: {
      ...ctx.counters,
      dispatched: d.dispatched,
      handlerErrors: d.handlerErrors,
      handlerTimeouts: d.handlerTimeouts,
      droppedOnStop: parts.droppedOnStop,
      pendingDispatch: parts.pendingDispatch,
      alreadyQueued: d.alreadyQueued,
    },
    dispatch: parts.pressure,
    timestamps: parts.timestamps,
  };
}
