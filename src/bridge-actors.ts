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
  type ProbeLinkInput,
  type ProjectEventsInput,
  type RefusedIds,
  type StreamEvent,
  type SyncProjectStateInput,
  type SyncResult,
} from "../machines/bridge.types.js";
import { ProjectEventsRequestSchema, SyncProjectStateRequestSchema, type ProjectEvent } from "./gen/engram/v1/engram_pb.js";
import { SyncDeadlineError } from "./call-errors.js";
import { estimateRemovalBytes } from "./dispatcher.js";
import { BridgeError } from "./errors.js";
import { boundText, EVENT_ID_MAX_BYTES, previewOf, REASON_MAX_BYTES, refuseProjectId } from "./server-data.js";
import { createDeadlineSignal, createLinkedAbortController, type DeadlineSignal } from "./signals.js";
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

/**
 * How much the dispatch queue can take: the stream stops reading (and HTTP/2
 * flow control pushes back on the server) while its share is full; a
 * heartbeat round forwards only what fits and leaves the rest to the next
 * round. Defaults to no limit.
 */
export interface DispatchRoom {
  /** How many more removals the stream may hand on now. */
  streamRoom(): number;
  /** How many more removals a heartbeat answer may hand on now. */
  heartbeatRoom(): number;
  /** How many more bytes (estimateRemovalBytes) the stream may hand on now. */
  streamBytesRoom(): number;
  /** How many more bytes a heartbeat answer may hand on now. */
  heartbeatBytesRoom(): number;
  /** Resolves when the stream has room again, or when `signal` aborts. */
  streamRoomAvailable(signal: AbortSignal): Promise<void>;
  /** Resolves when a heartbeat answer has room again, or when `signal` aborts. */
  heartbeatRoomAvailable(signal: AbortSignal): Promise<void>;
}

export interface ActorDeps {
  /** The client, resolved when the bridge starts. */
  client: () => EventsClient;
  /** Monotonic time for latency stamps. */
  monotonicNow: () => number;
  /** Room in the dispatch queue. Defaults to unbounded. */
  room?: DispatchRoom | undefined;
  /** Whether the daemon holds a project now (the tracker's optional `has`). Defaults to unknown. */
  isTracked?: ((projectId: string) => boolean) | undefined;
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
    // The transport stream was reset (the client's onClosed): a pause for
    // room ends at once, so status() never shows a stream that is gone.
    let markClosed: () => void = () => {};
    const closedSignal = new Promise<"closed">((resolve) => {
      markClosed = () => resolve("closed");
    });
    let sent = false;
    const markSent = () => {
      if (sent || signal.aborted) return;
      sent = true;
      input.parent.send({ type: "stream.sent" });
    };
    try {
      const client = deps.client();
      const stream = client.projectEvents(req, {
        signal,
        sessionEpoch: input.sessionEpoch,
        onHeader: (headers) => {
          // A trailers-only response (grpc-status in the headers) is a refusal, not an open stream.
          if (opened || signal.aborted || headers.has("grpc-status")) return;
          opened = true;
          input.parent.send({ type: "stream.opened" });
        },
        onSent: markSent,
        onClosed: markClosed,
      });
      // A client that does not say when its request is on the wire: sent now.
      if (client.signalsSent !== true) markSent();
      const room = deps.room;
      const isTracked = deps.isTracked;
      /** Estimated bytes of `pending` (reset with it): the byte bound is checked per message too. */
      let pendingBytes = 0;
      const messages = stream[Symbol.asyncIterator]();
      try {
        /**
         * Whether a message of `bytes` fits in the stream's share of the
         * dispatch queue beside what this turn has read: by count always; by
         * bytes too, except that a lone message goes whenever there is any
         * byte room (the bound is passed by less than one removal).
         */
        const fits = (bytes: number): boolean =>
          room === undefined ||
          (room.streamRoom() - pending.length > 0 &&
            (pending.length === 0 ? room.streamBytesRoom() > 0 : pendingBytes + bytes <= room.streamBytesRoom()));
        for (let next = messages.next(); ; ) {
          const result = await next;
          if (signal.aborted) return;
          if (result.done) break;
          const ev = toStreamEvent(result.value, Number.NaN);
          if (isTracked !== undefined && ev.refused === undefined && !isTracked(ev.projectId)) ev.untracked = true;
          const bytes = estimateRemovalBytes(ev.projectId, ev.eventId, ev.reason);
          if (room !== undefined && !fits(bytes)) {
            // The dispatch queue's stream share is full: hand on what was
            // read, hold this message and read no more until it fits, so
            // HTTP/2 flow control pushes back on the server instead of the
            // heap growing.
            flush();
            if ((await pausedUntilRoom(room, signal, () => fits(bytes), closedSignal)) === "closed" && !signal.aborted) {
              // Reset while this side was not reading: what was left unread is
              // given up (the bound holds; the reopen resyncs tracked projects).
              throw new BridgeError(
                "the ProjectEvents stream was reset while the bridge had paused reading it (dispatch queue full); unread events are left to the resync",
                "unavailable",
              );
            }
            if (signal.aborted) return;
          }
          if (!flushing) {
            flushing = true;
            turnReceivedAtMs = deps.monotonicNow();
            process.nextTick(flush);
          }
          ev.receivedAtMs = turnReceivedAtMs;
          if (pending.length === 0) pendingBytes = 0;
          pending.push(ev);
          pendingBytes += bytes;
          next = messages.next();
        }
      } finally {
        // Aborted or failed: let the iterator release the call.
        if (signal.aborted) void Promise.resolve(messages.return?.()).catch(() => {});
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

/**
 * Waits until the message in hand fits (`fits`) in the stream's share of the
 * dispatch queue. When the transport stream is reset meanwhile (`closed`:
 * the client's onClosed) the wait ends with "closed", so status() never
 * shows a stream that is gone as streaming. Each wait for room is withdrawn
 * when something else ends it, so status() shows only a live pause.
 */
async function pausedUntilRoom(
  room: DispatchRoom,
  signal: AbortSignal,
  fits: () => boolean,
  closed: Promise<"closed">,
): Promise<"room" | "closed"> {
  while (!signal.aborted && !fits()) {
    const waiting = new AbortController();
    const onAbort = () => waiting.abort();
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      const winner = await Promise.race([room.streamRoomAvailable(waiting.signal).then(() => "room" as const), closed]);
      if (winner === "closed") return winner;
    } finally {
      waiting.abort();
      signal.removeEventListener("abort", onAbort);
    }
  }
  return "room";
}

export interface SyncActorDeps extends ActorDeps {
  tracker: ProjectTracker | undefined;
  /** The bridge clock's time, for how long a round took. Defaults to monotonicNow. */
  clockNow?: (() => number) | undefined;
  /** Told the ids each round reports, once read from the tracker. Defaults to none. */
  onReported?: ((ids: ReadonlySet<string>) => void) | undefined;
  clock: Clock;
  /** Wall-clock time, for the skew check. */
  wallNow: () => number;
}

/**
 * The most ids one round reads from the tracker: a tracker whose iterable
 * never ends fails the round instead of hanging the bridge.
 */
export const MAX_TRACKED_IDS = 1_000_000;

/**
 * Unique, non-empty local ids from the tracker, read at each tick. A tracker
 * that throws, returns something that is not iterable, or yields more than
 * MAX_TRACKED_IDS ids fails the round with a BridgeError (`internal`) that
 * says so; the next round reads it again.
 */
export function collectProjectIds(tracker: ProjectTracker | undefined): string[] {
  if (!tracker) return [];
  const ids = new Set<string>();
  let seen = 0;
  try {
    for (const id of tracker.connectedProjectIds()) {
      if (++seen > MAX_TRACKED_IDS) {
        throw new BridgeError(`the tracker yielded more than ${MAX_TRACKED_IDS} project ids in one round`, "internal");
      }
      if (typeof id === "string" && id !== "") ids.add(id);
    }
  } catch (reason) {
    if (reason instanceof BridgeError) throw reason;
    const what = reason instanceof Error ? reason.name : typeof reason;
    throw new BridgeError(`the tracker's connectedProjectIds() failed (${what}); this round is skipped`, "internal");
  }
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
    const clockNow = deps.clockNow ?? deps.monotonicNow;
    let slowestCallMs = 0;
    const ids = collectProjectIds(deps.tracker);
    // What the bridge reports this round: a removal for any other id is dropped.
    const reported = new Set(ids);
    deps.onReported?.(reported);
    // The dedup window's ids the daemon lists now and those it does not (new lives).
    const windowIds = input.windowIds ?? [];
    if (windowIds.length > 0) {
      const present: string[] = [];
      const absent: string[] = [];
      for (const id of windowIds) (reported.has(id) ? present : absent).push(id);
      input.parent.send({ type: "sync.listed", present, absent });
    }
    const removed: string[] = [];
    const unknown = new Set<string>();
    let serverTimeUnixMs = 0;
    const chunks = Math.max(1, Math.ceil(ids.length / SYNC_CHUNK_SIZE));
    // Each call may run on for runOnMs from its own start: an answered chunk
    // proves the link, so a round of many chunks on a slow server completes,
    // and a call that stalls is still bounded (a late round that runs out is suspect).
    const runOnMs = runOnOf(input);
    for (let i = 0; i < chunks; i++) {
      const chunk = ids.slice(i * SYNC_CHUNK_SIZE, (i + 1) * SYNC_CHUNK_SIZE);
      const req = create(SyncProjectStateRequestSchema, { clientId: input.clientId, localProjectIds: chunk });
      const callStartedAtMs = clockNow();
      const res = await callWithDeadline(deps, input, signal, (callSignal, onSent) =>
        deps.client().syncProjectState(req, {
          signal: callSignal,
          // The transport's own deadline (grpc-timeout) is the longest the call may run on.
          timeoutMs: runOnMs,
          sessionEpoch: input.sessionEpoch,
          onSent,
        }),
      );
      // The slowest single call, not the round: a round of several chunks, or one that waited for dispatch room, is not late.
      slowestCallMs = Math.max(slowestCallMs, clockNow() - callStartedAtMs);
      const { accepted: answered, refused } = screenRemovedIds(res.removed, reported);
      // The window's ids reported in this chunk and not answered removed: live on the server.
      const live = liveWindowIds(windowIds, chunk, answered);
      if (live.length > 0 && !signal.aborted) input.parent.send({ type: "sync.live", projectIds: live });
      // Only what the dispatch queue has room for goes on. The round waits
      // for room while the handlers make progress, up to its own deadline
      // (timeoutMs) for the whole answer; what still does not fit then is
      // left to the next round (the daemon still lists those ids), so hung
      // handlers cannot hold the heartbeat.
      for (const id of await forwardWithRoom(deps, input, signal, answered, refused)) removed.push(id);
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
      roundMs: slowestCallMs,
    };
  });
}

/**
 * Sends `answered` to the machine as sync.removed batches, each within the
 * dispatch queue's room; waits for room up to `input.timeoutMs` in all.
 * Returns the ids sent; the rest are counted in the last batch as deferred.
 */
async function forwardWithRoom(
  deps: SyncActorDeps,
  input: SyncProjectStateInput,
  signal: AbortSignal,
  answered: readonly string[],
  refused: RefusedIds[],
): Promise<string[]> {
  const room = deps.room;
  const sent: string[] = [];
  let at = 0;
  let first = true;
  let waitUntil: number | undefined;
  const send = (projectIds: string[], deferred: number) => {
    input.parent.send({
      type: "sync.removed",
      projectIds,
      receivedAtMs: deps.monotonicNow(),
      ...(first && refused.length > 0 ? { refused } : {}),
      ...(deferred > 0 ? { deferred } : {}),
    });
    first = false;
    for (const id of projectIds) sent.push(id);
  };
  while (at < answered.length && !signal.aborted) {
    // Let I/O and timers run between batches of a huge answer.
    if (!first) await yieldToEventLoop();
    if (signal.aborted) break;
    let fits = room === undefined ? SYNC_REMOVED_BATCH : fitting(room, answered, at);
    if (fits <= 0 && room !== undefined) {
      waitUntil ??= deps.monotonicNow() + input.timeoutMs;
      if (!(await waitForRoom(deps, room, signal, waitUntil - deps.monotonicNow()))) break;
      fits = fitting(room, answered, at);
      if (fits <= 0) continue;
    }
    send(answered.slice(at, at + fits), 0);
    at += fits;
  }
  const deferred = signal.aborted ? 0 : answered.length - at;
  // Refusals and deferrals are reported even when nothing went on.
  if (!signal.aborted && (deferred > 0 || (first && refused.length > 0))) send([], deferred);
  return sent;
}

/** How many of `ids` from `at` on fit in the heartbeat's room now, by count and by bytes (at most one batch). */
function fitting(room: DispatchRoom, ids: readonly string[], at: number): number {
  const most = Math.min(SYNC_REMOVED_BATCH, room.heartbeatRoom(), ids.length - at);
  let bytes = room.heartbeatBytesRoom();
  let n = 0;
  while (n < most) {
    bytes -= estimateRemovalBytes(ids[at + n] as string);
    // One removal larger than what is left still goes when there is any
    // room (the bound is passed by less than one removal): never stuck.
    if (bytes < 0) return n === 0 && bytes + estimateRemovalBytes(ids[at] as string) > 0 ? 1 : n;
    n += 1;
  }
  return n;
}

/** Waits for heartbeat room up to `ms` on the bridge clock; false when the wait ran out or the round ended. */
function waitForRoom(deps: SyncActorDeps, room: DispatchRoom, signal: AbortSignal, ms: number): Promise<boolean> {
  if (ms <= 0 || signal.aborted) return Promise.resolve(false);
  const waiting = new AbortController();
  const onAbort = () => waiting.abort();
  signal.addEventListener("abort", onAbort, { once: true });
  let timedOut = false;
  const timer = deps.clock.setTimeout(() => {
    timedOut = true;
    waiting.abort();
  }, ms);
  return room.heartbeatRoomAvailable(waiting.signal).then(() => {
    deps.clock.clearTimeout(timer);
    signal.removeEventListener("abort", onAbort);
    return !timedOut && !signal.aborted;
  });
}

/** The window's ids that this chunk reported and the server did not answer removed. */
function liveWindowIds(windowIds: readonly string[], chunk: readonly string[], removed: readonly string[]): string[] {
  if (windowIds.length === 0) return [];
  const inChunk = new Set(chunk);
  const gone = new Set(removed);
  return windowIds.filter((id) => inChunk.has(id) && !gone.has(id));
}

/**
 * One call under its own deadline on the bridge clock; the round's signal
 * aborts it too. The deadline rejects the call whether or not the client
 * honours the abort (a token function that never settles, a transport that
 * ignores its signal), and says whether the request had reached the wire.
 */
async function callWithDeadline<T>(
  deps: SyncActorDeps,
  input: SyncProjectStateInput,
  signal: AbortSignal,
  call: (signal: AbortSignal, onSent: () => void) => Promise<T>,
): Promise<T> {
  if (signal.aborted) throw BridgeError.from(signal.reason, "canceled");
  const client = deps.client();
  // A client that does not say when its request is on the wire: sent at once.
  let sent = client.signalsSent !== true;
  /** Whether the call settled before the deadline ran out (a server's own DEADLINE_EXCEEDED stays the server's). */
  let settledInTime = false;
  const deadline = createRunOnDeadline(deps, input, {
    isSent: () => sent,
    isSettled: () => settledInTime,
  });
  const linked = createLinkedAbortController(signal, deadline.signal);
  let stopWaiting: (() => void) | undefined;
  /** What the race rejects with when the deadline or the round's signal wins it. */
  const abortedFirst = { reason: "aborted" };
  const aborted = new Promise<never>((_, reject) => {
    const onAbort = () => reject(abortedFirst);
    linked.signal.addEventListener("abort", onAbort, { once: true });
    stopWaiting = () => linked.signal.removeEventListener("abort", onAbort);
  });
  // The losing side of the race must not become an unhandled rejection.
  aborted.catch(() => {});
  try {
    const pending = call(linked.signal, () => {
      sent = true;
    });
    const noteSettled = () => {
      if (!deadline.signal.aborted) settledInTime = true;
    };
    pending.then(noteSettled, noteSettled);
    return await Promise.race([pending, aborted]);
  } catch (reason) {
    if (deadline.signal.aborted && !signal.aborted && !settledInTime) {
      throw new SyncDeadlineError(deadline.deadlineMs(), { sent, ...(reason === abortedFirst ? {} : { cause: reason }) });
    }
    if (reason === abortedFirst) throw BridgeError.from(signal.reason, "canceled");
    throw BridgeError.from(reason);
  } finally {
    stopWaiting?.();
    deadline.cleanup();
    linked.cleanup();
  }
}

/**
 * A call's deadline in two steps: at `timeoutMs` a call whose request is on
 * the wire is late, not dead: the machine hears sync.late and asks the link
 * (probeLink) while the call goes on, up to `runOnMs` from its start (the
 * machine ends the round sooner when the link does not answer). A call not
 * sent by then, or one without a longer `runOnMs`, fails at `timeoutMs`.
 */
function createRunOnDeadline(deps: SyncActorDeps, input: SyncProjectStateInput, call: { isSent: () => boolean; isSettled: () => boolean }) {
  const controller = new AbortController();
  const runOnMs = runOnOf(input);
  let deadlineMs = input.timeoutMs;
  let runOn: DeadlineSignal | undefined;
  const timer = deps.clock.setTimeout(() => {
    // The answer is already in (a clock that jumped past the deadline): not late.
    if (call.isSettled()) return;
    if (!call.isSent() || runOnMs <= input.timeoutMs) {
      controller.abort(new SyncDeadlineError(input.timeoutMs, { sent: call.isSent() }));
      return;
    }
    deadlineMs = runOnMs;
    input.parent.send({ type: "sync.late", timeoutMs: input.timeoutMs });
    const late = createDeadlineSignal(deps.clock, runOnMs - input.timeoutMs, () => new SyncDeadlineError(runOnMs, { sent: true }));
    late.signal.addEventListener("abort", () => controller.abort(late.signal.reason), { once: true });
    runOn = late;
  }, input.timeoutMs);
  return {
    signal: controller.signal,
    /** The deadline that ran out (or runs next). */
    deadlineMs: () => deadlineMs,
    cleanup() {
      deps.clock.clearTimeout(timer);
      runOn?.cleanup();
    },
  };
}

/** How long a round's call may run on: `runOnMs`, never less than `timeoutMs` (no run-on without it). */
function runOnOf(input: SyncProjectStateInput): number {
  return Math.max(input.timeoutMs, input.runOnMs ?? input.timeoutMs);
}

/**
 * The link probe: asks the client whether the connection still answers
 * (EventsClient.checkConnection). A client without it, or a check that
 * fails, answers false (the link is suspect), as before the probe existed.
 */
export function createProbeLinkActor(source: DepsSource<SyncActorDeps>) {
  return fromPromise<boolean, ProbeLinkInput>(({ input, signal, system }) => {
    const deps = resolveDeps(source, system);
    const client = deps.client();
    if (client.checkConnection === undefined) return Promise.resolve(false);
    // The probe's own deadline on the bridge clock: a check that never settles answers false.
    const call = createLinkedAbortController(signal);
    return new Promise<boolean>((resolve) => {
      let done = false;
      const finish = (answered: boolean) => {
        if (done) return;
        done = true;
        deps.clock.clearTimeout(timer);
        call.abort();
        call.cleanup();
        resolve(answered);
      };
      const timer = deps.clock.setTimeout(() => finish(false), input.timeoutMs);
      let checking: Promise<boolean>;
      try {
        checking = Promise.resolve(
          client.checkConnection?.({ signal: call.signal, sessionEpoch: input.sessionEpoch, timeoutMs: input.timeoutMs }) ?? false,
        );
      } catch {
        checking = Promise.resolve(false);
      }
      checking.then(
        (answered) => finish(answered === true),
        () => finish(false),
      );
      signal.addEventListener("abort", () => finish(false), { once: true });
    });
  });
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
