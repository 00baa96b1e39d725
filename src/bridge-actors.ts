/**
 * The actors the runtime provides to bridgeMachine: the ProjectEvents call,
 * one SyncProjectState round and the dispatch drain. Each honours the signal
 * XState gives it; whether a call ended because the bridge aborted it is
 * decided by that signal, never by the error code (a server shutting down
 * resets streams, which connect-node reports as CANCELED).
 */
import { create } from "@bufbuild/protobuf";
import { fromPromise } from "xstate";
import { SYNC_REMOVED_BATCH, type ProjectEventsInput, type StreamEvent, type SyncProjectStateInput, type SyncResult } from "../machines/bridge.types.js";
import { ProjectEventsRequestSchema, SyncProjectStateRequestSchema, type ProjectEvent } from "./gen/engram/v1/engram_pb.js";
import { BridgeError } from "./errors.js";
import type { Clock, EventsClient, ProjectTracker } from "./types.js";

/** The server's cap on ids in one SyncProjectState call. */
export const SYNC_CHUNK_SIZE = 10_000;

export function toStreamEvent(ev: ProjectEvent, receivedAtMs: number): StreamEvent {
  return {
    eventId: ev.eventId,
    eventType: ev.eventType,
    projectId: ev.projectId,
    timestampUnixMs: Number(ev.timestampUnixMs),
    reason: ev.reason,
    receivedAtMs,
  };
}

export interface ActorDeps {
  /** The client, resolved when the bridge starts. */
  client: () => EventsClient;
  /** Monotonic time for latency stamps. */
  monotonicNow: () => number;
}

export function createProjectEventsActor(deps: ActorDeps) {
  return fromPromise<void, ProjectEventsInput>(async ({ input, signal }) => {
    const req = create(ProjectEventsRequestSchema, { clientId: input.clientId });
    let opened = false;
    try {
      const stream = deps.client().projectEvents(req, {
        signal,
        sessionEpoch: input.sessionEpoch,
        onHeader: (headers) => {
          // A trailers-only response (grpc-status in the headers) is a refusal, not an open stream.
          if (opened || signal.aborted || headers.has("grpc-status")) return;
          opened = true;
          input.parent.send({ type: "stream.opened" });
        },
      });
      for await (const ev of stream) {
        if (signal.aborted) return;
        input.parent.send({ type: "stream.event", event: toStreamEvent(ev, deps.monotonicNow()) });
      }
    } catch (reason) {
      if (signal.aborted) return;
      throw BridgeError.from(reason);
    }
  });
}

export interface SyncActorDeps extends ActorDeps {
  tracker: ProjectTracker | undefined;
  clock: Clock;
  /** Wall-clock time, for the skew check. */
  wallNow: () => number;
}

/** Unique, non-empty local ids from the tracker, read at each tick. */
export function collectProjectIds(tracker: ProjectTracker | undefined): string[] {
  if (!tracker) return [];
  const ids = new Set<string>();
  for (const id of tracker.connectedProjectIds()) if (typeof id === "string" && id !== "") ids.add(id);
  return [...ids];
}

export function createSyncProjectStateActor(deps: SyncActorDeps) {
  return fromPromise<SyncResult, SyncProjectStateInput>(async ({ input, signal }) => {
    const ids = collectProjectIds(deps.tracker);
    // The deadline runs on the bridge clock (SimulatedClock in tests); the
    // same timeout also goes to the server as grpc-timeout.
    const deadline = new AbortController();
    const onAbort = () => deadline.abort(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    let timedOut = false;
    const timer = deps.clock.setTimeout(() => {
      timedOut = true;
      deadline.abort(new BridgeError(`SyncProjectState got no answer within ${input.timeoutMs} ms`, "deadline_exceeded"));
    }, input.timeoutMs);
    try {
      const removed: string[] = [];
      const unknown = new Set<string>();
      let serverTimeUnixMs = 0;
      const chunks = Math.max(1, Math.ceil(ids.length / SYNC_CHUNK_SIZE));
      for (let i = 0; i < chunks; i++) {
        const req = create(SyncProjectStateRequestSchema, {
          clientId: input.clientId,
          localProjectIds: ids.slice(i * SYNC_CHUNK_SIZE, (i + 1) * SYNC_CHUNK_SIZE),
        });
        const res = await deps.client().syncProjectState(req, {
          signal: deadline.signal,
          timeoutMs: input.timeoutMs,
          sessionEpoch: input.sessionEpoch,
        });
        for (let at = 0; at < res.removed.length; at += SYNC_REMOVED_BATCH) {
          // Let I/O and timers run between batches of a huge answer.
          if (at > 0) await yieldToEventLoop();
          if (signal.aborted) break;
          const projectIds = res.removed.slice(at, at + SYNC_REMOVED_BATCH);
          // Each batch is its own machine step, handled before the next chunk is asked for.
          input.parent.send({ type: "sync.removed", projectIds, receivedAtMs: deps.monotonicNow() });
          for (const id of projectIds) removed.push(id);
        }
        for (const id of res.unknown) unknown.add(id);
        serverTimeUnixMs = Number(res.serverTimeUnixMs);
      }
      const wall = deps.wallNow();
      return {
        removed,
        unknown: [...unknown],
        serverTimeUnixMs,
        skewMs: serverTimeUnixMs === 0 ? 0 : serverTimeUnixMs - wall,
        reported: ids.length,
        receivedAtMs: deps.monotonicNow(),
      };
    } catch (reason) {
      if (timedOut && !signal.aborted) {
        throw new BridgeError(`SyncProjectState got no answer within ${input.timeoutMs} ms`, "deadline_exceeded", { cause: reason });
      }
      throw BridgeError.from(reason);
    } finally {
      deps.clock.clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
    }
  });
}

/**
 * Resolves when the dispatcher has nothing queued or in flight. It never
 * rejects: a failure to drain is logged and counts as drained, so stopping
 * always ends (the machine has no error path out of `stopping`).
 */
export function createDrainActor(idle: () => Promise<void>, onError: (reason: unknown) => void) {
  return fromPromise<void, void>(() =>
    idle().catch((reason: unknown) => {
      onError(reason);
    }),
  );
}

/** One turn of the event loop (not a timer: nothing on the bridge clock waits on it). */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
