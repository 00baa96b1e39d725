/**
 * What bridge.status() shows: the flattened connection state, the heartbeat
 * state, the attempt counter, the last error, counters and timestamps. Plain
 * JSON, never a token.
 */
import type { BridgeCounters } from "../machines/bridge.types.js";
import type { ErrorSummary } from "./errors.js";

export type ConnectionState = "idle" | "connecting" | "streaming" | "backoff" | "stopping" | "stopped";
export type HeartbeatState = "waiting" | "syncing" | "stopped";

export interface DispatchCounters {
  /** Removals fully dispatched to the handlers. */
  dispatched: number;
  handlerErrors: number;
  handlerTimeouts: number;
  /** Removals dropped because stop() ran out of budget. */
  droppedOnStop: number;
  /** Removals queued or being dispatched now. */
  pendingDispatch: number;
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
}

export interface BridgeStatus {
  state: ConnectionState;
  heartbeat: HeartbeatState;
  attempt: number;
  lastError: ErrorSummary | null;
  clientId: string;
  /** The server URL without user info, or "client" for an injected client. */
  server: string | null;
  counters: BridgeCounters & DispatchCounters;
  timestamps: BridgeTimestamps;
}

/** Flattens the machine's state value into the connection state. */
export function flattenConnection(value: unknown): ConnectionState {
  const conn = (value as { connection?: unknown } | undefined)?.connection;
  // `open` is compound, so it always shows as { open: "connecting" | "streaming" }.
  if (typeof conn === "string") return conn as ConnectionState;
  if (conn && typeof conn === "object" && "open" in conn) return (conn as { open: ConnectionState }).open;
  return "idle";
}

export function heartbeatOf(value: unknown): HeartbeatState {
  const hb = (value as { heartbeat?: unknown } | undefined)?.heartbeat;
  return typeof hb === "string" ? (hb as HeartbeatState) : "waiting";
}
