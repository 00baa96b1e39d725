/**
 * The bridge's timestamp bookkeeping for status(): when it started,
 * connected, last heard a message, synced, handed on a removal, when the
 * next retry is due and when it stopped. All on the bridge clock.
 */
import type { Actor, SnapshotFrom } from "xstate";
import type { BridgeMachine } from "../machines/bridge.machine.js";
import { flattenConnection, type BridgeTimestamps, type ConnectionState } from "./bridge-status.js";

export interface BridgeTimestampBook {
  /** Stamps the removals and heartbeats the actor emits, and starts from its current state. */
  attach(actor: Actor<BridgeMachine>): void;
  /** A backoff or GOAWAY-reopen delay of `ms` was armed now. */
  retryArmed(ms: number): void;
  /** The wait the last armed delay chose (for the line that announces it). */
  readonly retryInMs: number | undefined;
  started(): void;
  stopped(): void;
  readonly stoppedAtMs: number | undefined;
  /**
   * Stamps what a new snapshot shows (a stream message, a change of
   * connection state) and returns the new connection state when it changed.
   */
  observe(snapshot: SnapshotFrom<BridgeMachine>): ConnectionState | undefined;
  /** A copy of the timestamps. */
  snapshot(): BridgeTimestamps;
}

/** Creates the book. `now` is the bridge clock in ms. */
export function createBridgeTimestampBook(now: () => number): BridgeTimestampBook {
  const timestamps: BridgeTimestamps = {};
  let retryInMs: number | undefined;
  let lastConnection: ConnectionState = "idle";
  // A stream message shows as a bump of the eventsReceived counter.
  let lastEventsReceived = 0;

  return {
    attach(actor) {
      lastConnection = flattenConnection(actor.getSnapshot().value);
      actor.on("projectRemoved", () => {
        timestamps.lastRemovalAtMs = now();
      });
      actor.on("syncCompleted", () => {
        timestamps.lastSyncAtMs = now();
      });
    },
    retryArmed(ms) {
      timestamps.nextRetryAtMs = now() + ms;
      retryInMs = ms;
    },
    get retryInMs() {
      return retryInMs;
    },
    started() {
      timestamps.startedAtMs = now();
    },
    stopped() {
      timestamps.stoppedAtMs = now();
    },
    get stoppedAtMs() {
      return timestamps.stoppedAtMs;
    },
    observe(snapshot) {
      const n = snapshot.context.counters.eventsReceived;
      if (n !== lastEventsReceived) {
        lastEventsReceived = n;
        timestamps.lastEventAtMs = now();
      }
      const state = flattenConnection(snapshot.value);
      if (state === lastConnection) return undefined;
      lastConnection = state;
      if (state === "streaming") timestamps.connectedAtMs = now();
      if (state !== "backoff") delete timestamps.nextRetryAtMs;
      return state;
    },
    snapshot: () => ({ ...timestamps, nowMs: now() }),
  };
}
