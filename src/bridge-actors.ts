/**
 * The actors the runtime provides to bridgeMachine: the ProjectEvents call,
 * one SyncProjectState round and the dispatch drain. Each honours the signal
 * XState gives it; whether a call ended because the bridge aborted it is
 * decided by that signal, never by the error code (a server shutting down
 * resets streams, which connect-node reports as CANCELED).
 */
import { create } from "@bufbuild/protobuf";
import { fromPromise, type AnyActorRef } from "xstate";
import {
  REFUSED_PREVIEWS,
  SYNC_REMOVED_BATCH,
  type ProjectEventsInput,
  type RefusedIds,
  type StreamEvent,
  type SyncProjectStateInput,
  type SyncResult,
} from "../machines/bridge.types.js";
import { ProjectEventsRequestSchema, SyncProjectStateRequestSchema, type ProjectEvent } from "./gen/engram/v1/engram_pb.js";
import { SyncDeadlineError } from "./call-errors.js";
import { BridgeError } from "./errors.js";
import { boundText, EVENT_ID_MAX_BYTES, previewOf, REASON_MAX_BYTES, refuseProjectId } from "./server-data.js";
import { createDeadlineSignal, createLinkedAbortController } from "./signals.js";
import type { Clock, EventsClient, ProjectTracker } from "./types.js";

/** The server's cap on ids in one SyncProjectState call. */
export const SYNC_CHUNK_SIZE = 10_000;

/**
 * One ProjectEvent as the machine sees it, bounded where it enters (see
 * src/server-data.ts): the event id and reason are cut and cleaned; a
 * project id that is too long or holds control characters is refused, and
 * only its escaped preview goes on, marked `refused`.
 */
export function toStreamEvent(ev: ProjectEvent, receivedAtMs: number): StreamEvent {
  const refused = refuseProjectId(ev.projectId);
  // One object shape for every event: `refused` is added only to a refused one.
  const event: StreamEvent = {
    eventId: boundText(ev.eventId, EVENT_ID_MAX_BYTES),
    eventType: ev.eventType,
    projectId: ev.projectId,
    timestampUnixMs: Number(ev.timestampUnixMs),
    reason: boundText(ev.reason, REASON_MAX_BYTES),
    receivedAtMs,
  };
  if (refused !== undefined) {
    event.projectId = previewOf(ev.projectId);
    event.refused = refused;
  }
  return event;
}

/**
 * Splits a heartbeat answer's `removed` ids: those handed on, and those not
 * (refused as input, or never reported in that round: the server answers
 * only for ids it was told, so anything else is dropped, counted and logged,
 * and never reaches a handler or `--exec`).
 * Empty ids go on (the machine counts them as ignored, as before).
 */
export function screenRemovedIds(removed: readonly string[], reported: ReadonlySet<string>): { accepted: string[]; refused: RefusedIds[] } {
  const accepted: string[] = [];
  const byWhy = new Map<RefusedIds["why"], RefusedIds>();
  for (const id of removed) {
    const why = id === "" ? undefined : (refuseProjectId(id) ?? (reported.has(id) ? undefined : "not_reported"));
    if (why === undefined) {
      accepted.push(id);
      continue;
    }
    let entry = byWhy.get(why);
    if (!entry) byWhy.set(why, (entry = { why, count: 0, previews: [] }));
    entry.count += 1;
    if (entry.previews.length < REFUSED_PREVIEWS) entry.previews.push(previewOf(id));
  }
  return { accepted, refused: [...byWhy.values()] };
}

/**
 * Where an actor finds its dependencies: an object (one machine per
 * bridge), or a lookup by the actor system it runs in, so that every bridge
 * of a process shares one provided machine (src/bridge-machine-shared.ts).
 */
export type DepsSource<T> = T | ((system: ActorSystemOf) => T);

/** The actor system a bridge's actor runs in (one per bridge: its root actor's). */
export type ActorSystemOf = AnyActorRef["system"];

function resolveDeps<T extends object>(source: DepsSource<T>, system: ActorSystemOf): T {
  return typeof source === "function" ? source(system) : source;
}

export interface ActorDeps {
  /** The client, resolved when the bridge starts. */
  client: () => EventsClient;
  /** Monotonic time for latency stamps. */
  monotonicNow: () => number;
}

/**
 * Holds one ProjectEvents call. The messages that arrive in one turn of the
 * event loop go to the machine as one `stream.events`, sent from
 * process.nextTick once the promise jobs of the I/O callback that delivered
 * them have run (every message parsed from that read included), so a burst
 * costs one machine step and a lone message waits for neither a timer nor
 * the event loop's next phase.
 */
export function createProjectEventsActor(source: DepsSource<ActorDeps>) {
  return fromPromise<void, ProjectEventsInput>(async ({ input, signal, system }) => {
    const deps = resolveDeps(source, system);
    const req = create(ProjectEventsRequestSchema, { clientId: input.clientId });
    let opened = false;
    let pending: StreamEvent[] = [];
    let flushing = false;
    /** When this turn's first message arrived: the messages of one turn share it. */
    let turnReceivedAtMs = 0;
    const flush = () => {
      flushing = false;
      if (signal.aborted || pending.length === 0) return;
      const events = pending;
      pending = [];
      input.parent.send({ type: "stream.events", events });
    };
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
        if (!flushing) {
          flushing = true;
          turnReceivedAtMs = deps.monotonicNow();
          process.nextTick(flush);
        }
        pending.push(toStreamEvent(ev, turnReceivedAtMs));
      }
      // Everything received reaches the machine before the call's end does.
      flush();
    } catch (reason) {
      if (signal.aborted) return;
      flush();
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

/**
 * One heartbeat round: the tracked ids in chunks of SYNC_CHUNK_SIZE, each
 * chunk one SyncProjectState call with its own deadline of `timeoutMs` on
 * the bridge clock (SyncDeadlineError when it runs out; a DEADLINE_EXCEEDED
 * the server sent stays an ordinary error). Removed ids are screened and
 * forwarded as sync.removed batches before the next chunk is asked for.
 */
export function createSyncProjectStateActor(source: DepsSource<SyncActorDeps>) {
  return fromPromise<SyncResult, SyncProjectStateInput>(async ({ input, signal, system }) => {
    const deps = resolveDeps(source, system);
    const ids = collectProjectIds(deps.tracker);
    // What the bridge reports this round: a removal for any other id is dropped.
    const reported = new Set(ids);
    const removed: string[] = [];
    const unknown = new Set<string>();
    let serverTimeUnixMs = 0;
    const chunks = Math.max(1, Math.ceil(ids.length / SYNC_CHUNK_SIZE));
    for (let i = 0; i < chunks; i++) {
      const chunk = ids.slice(i * SYNC_CHUNK_SIZE, (i + 1) * SYNC_CHUNK_SIZE);
      const req = create(SyncProjectStateRequestSchema, { clientId: input.clientId, localProjectIds: chunk });
      const res = await callWithDeadline(deps, input, signal, (callSignal) =>
        deps.client().syncProjectState(req, { signal: callSignal, timeoutMs: input.timeoutMs, sessionEpoch: input.sessionEpoch }),
      );
      const { accepted, refused } = screenRemovedIds(res.removed, reported);
      for (let at = 0; at < Math.max(accepted.length, refused.length > 0 ? 1 : 0); at += SYNC_REMOVED_BATCH) {
        // Let I/O and timers run between batches of a huge answer.
        if (at > 0) await yieldToEventLoop();
        if (signal.aborted) break;
        const projectIds = accepted.slice(at, at + SYNC_REMOVED_BATCH);
        // Each batch is its own machine step, handled before the next chunk is asked for.
        input.parent.send({
          type: "sync.removed",
          projectIds,
          receivedAtMs: deps.monotonicNow(),
          ...(at === 0 && refused.length > 0 ? { refused } : {}),
        });
        for (const id of projectIds) removed.push(id);
      }
      for (const id of res.unknown) if (id !== "" && refuseProjectId(id) === undefined) unknown.add(id);
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
  });
}

/** One call under its own deadline on the bridge clock; the round's signal aborts it too. */
async function callWithDeadline<T>(
  deps: SyncActorDeps,
  input: SyncProjectStateInput,
  signal: AbortSignal,
  call: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  if (signal.aborted) throw BridgeError.from(signal.reason, "canceled");
  const deadline = createDeadlineSignal(deps.clock, input.timeoutMs, () => new SyncDeadlineError(input.timeoutMs));
  const linked = createLinkedAbortController(signal, deadline.signal);
  try {
    return await call(linked.signal);
  } catch (reason) {
    if (deadline.signal.aborted && !signal.aborted) throw new SyncDeadlineError(input.timeoutMs, { cause: reason });
    throw BridgeError.from(reason);
  } finally {
    deadline.cleanup();
    linked.cleanup();
  }
}

/**
 * Resolves when the dispatcher has nothing queued or in flight. It never
 * rejects: a failure to drain is logged and counts as drained, so stopping
 * always ends (the machine has no error path out of `stopping`).
 */
export interface DrainDeps {
  /** Resolves when the dispatcher has nothing queued or in flight. */
  idle: () => Promise<void>;
  onError: (reason: unknown) => void;
}

export function createDrainActor(source: DepsSource<DrainDeps>) {
  return fromPromise<void, void>(({ system }) => {
    const deps = resolveDeps(source, system);
    return deps.idle().catch((reason: unknown) => {
      deps.onError(reason);
    });
  });
}

/** One turn of the event loop (not a timer: nothing on the bridge clock waits on it). */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
