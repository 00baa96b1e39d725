/**
 * The bridge statechart: a parallel `connection` region (idle, connecting,
 * streaming, backoff, reopening, stopping, stopped) and a `heartbeat` region
 * (waiting, syncing, stopped). Pure: no I/O, no timers of its own, no
 * secrets, JSON context. The runtime provides the actors and the jittered
 * delays with `bridgeMachine.provide()`; tests provide fakes and a
 * SimulatedClock. DESIGN.md "The statechart" is the contract for this file.
 *
 * What it takes from src/: leaf modules only (errors.ts, call-errors.ts for
 * the two error classes its guards tell apart, timing.ts, and types).
 */
import { and, assign, enqueueActions, fromPromise, not, or, raise, setup, stateIn, type AnyActorRef } from "xstate";
import { summarizeError, type ErrorSummary } from "../src/errors.js";
import type { RemovalInfo } from "../src/types.js";
import { ServerGoawayError, SyncDeadlineError } from "../src/call-errors.js";
import {
  backoffDelayMs,
  goawayReopenDelayMs,
  heartbeatDelayMs,
  heartbeatSpreadDelayMs,
  MAX_HEARTBEAT_SLOWDOWN,
  syncRunOnMs,
  type BridgeTiming,
} from "../src/timing.js";
import { admitRemovals, forgetRemovals, windowProjectIds } from "./dedup-window.js";
import {
  PROJECT_EVENT_TYPE_CREATED,
  PROJECT_EVENT_TYPE_REMOVED,
  type BridgeContext,
  type BridgeCounters,
  type BridgeEmitted,
  type BridgeEvent,
  type BridgeInput,
  type ProbeLinkInput,
  type ProjectEventsInput,
  type SyncCause,
  type StreamEvent,
  type SyncProjectStateInput,
  type SyncResult,
  type RefusedIds,
} from "./bridge.types.js";

const zeroCounters: BridgeCounters = {
  streamsOpened: 0,
  streamFailures: 0,
  streamEnds: 0,
  reconnects: 0,
  eventsReceived: 0,
  ignoredEvents: 0,
  duplicatesSuppressed: 0,
  removalsFromStream: 0,
  removalsFromHeartbeat: 0,
  syncs: 0,
  syncFailures: 0,
  suspects: 0,
  goaways: 0,
  refusedIds: 0,
  unreportedRemovals: 0,
  slowServer: 0,
  newLives: 0,
  removalsDeferred: 0,
};

/** What a delay sees: the context, the bridge actor it runs in, and that actor's system. */
export interface BridgeDelayArgs {
  context: BridgeContext;
  self: AnyActorRef;
  system: AnyActorRef["system"];
}

/**
 * The named delays, computed from context and a random source in [0, 1).
 * `random` may read the arguments (the runtime shares one machine between
 * bridges and finds each bridge's own random source by its actor `system`);
 * `createBridgeDelays(Math.random)` is what a user of the machine on its own
 * provides.
 */
export function createBridgeDelays(random: (args: BridgeDelayArgs) => number) {
  return {
    // A server's pushback (grpc-retry-pushback-ms on the failed call) is a floor under the backoff.
    backoffDelay: (args: BridgeDelayArgs) =>
      Math.max(
        backoffDelayMs(args.context.attempt, args.context.timing, random(args)),
        // Never longer than the longest backoff: a pushback cannot stop the bridge.
        Math.min(args.context.lastError?.retryAfterMs ?? 0, args.context.timing.backoffMaxMs),
      ),
    heartbeatDelay: (args: BridgeDelayArgs) =>
      Math.min(
        MAX_TIMER_MS,
        Math.max(
          // After a stream open, and while the server is slow, the wait is
          // drawn over a whole period: a fleet that reconnected together,
          // or whose late rounds a recovering server answered together,
          // does not go on heartbeating together. Slowed down s times, it
          // is that period shifted by s - 1 periods (65-125 s at s = 2):
          // never sooner than an unslowed wait.
          args.context.lastSyncCause === "stream-open" || args.context.heartbeatSlowdown > 1
            ? (args.context.heartbeatSlowdown - 1) * args.context.timing.heartbeatMs +
                heartbeatSpreadDelayMs(args.context.timing, random(args))
            : heartbeatDelayMs(args.context.timing, random(args)),
          // Never longer than the slowest heartbeat: a pushback cannot stop it (half-open detection).
          Math.min(args.context.syncRetryAfterMs, MAX_HEARTBEAT_SLOWDOWN * args.context.timing.heartbeatMs),
        ),
      ),
    reopenDelay: (args: BridgeDelayArgs) => goawayReopenDelayMs(args.context.timing, random(args)),
    openConfirm: ({ context }: BridgeDelayArgs) => context.timing.openConfirmMs,
    stableAfter: ({ context }: BridgeDelayArgs) => context.timing.stableAfterMs,
    stopBudget: ({ context }: BridgeDelayArgs) => stopBudgetMs(context.timing),
  };
}

/** The machine gives up waiting for dispatch a little before stop()'s own deadline. */
function stopBudgetMs(timing: BridgeTiming): number {
  return Math.max(0, timing.stopTimeoutMs - Math.min(250, Math.floor(timing.stopTimeoutMs / 10)));
}

/** What handlers learn of a removal the stream carried: empty wire fields are left out. */
function streamRemovalInfo(ev: StreamEvent): RemovalInfo {
  const info: RemovalInfo = { source: "stream", eventId: ev.eventId };
  if (ev.reason !== "") info.reason = ev.reason;
  if (ev.timestampUnixMs !== 0) info.timestampUnixMs = ev.timestampUnixMs;
  return info;
}

/**
 * Failures in a row with one code: the streak goes on while the code repeats
 * and the attempt counter has not been reset, else it starts again at 1.
 */
function streakAfter(context: BridgeContext, error: ErrorSummary): number {
  return context.lastError?.code === error.code && context.attempt > 0 ? context.errorStreak + 1 : 1;
}

/** A copy of the counters with one of them moved on (at most once per machine step). */
function bump(counters: BridgeCounters, key: keyof BridgeCounters, by = 1): BridgeCounters {
  return { ...counters, [key]: counters[key] + by };
}

/**
 * The context patch that ends these projects' current lives: their dedup
 * entries (and absent marks) go, so their next removal is delivered again.
 */
function forgetLives(context: BridgeContext, projectIds: readonly string[], counters: BridgeCounters): Partial<BridgeContext> {
  const { keys, forgotten } = forgetRemovals(context.recentRemovals, projectIds);
  if (forgotten.length === 0) return {};
  counters.newLives += forgotten.length;
  const gone = new Set(forgotten);
  return {
    recentRemovals: keys,
    absentRemovals: context.absentRemovals.filter((id) => !gone.has(id)),
    unheldRemovals: context.unheldRemovals.filter((id) => !gone.has(id)),
  };
}

/** The marks (absent, unheld) that still name an entry of the window (evicted entries lose theirs). */
function absentInWindow(absent: readonly string[], window: readonly string[]): string[] {
  if (absent.length === 0) return absent as string[];
  const ids = new Set(windowProjectIds(window));
  const kept = absent.filter((id) => ids.has(id));
  return kept.length === absent.length ? (absent as string[]) : kept;
}

/** The most a slow server slows the heartbeat down (src/timing.ts; re-exported here, where it is used). */
export { MAX_HEARTBEAT_SLOWDOWN };
/** Node's timer limit. */
const MAX_TIMER_MS = 2 ** 31 - 1;

function notProvided(name: string) {
  return () => Promise.reject(new Error(`actor "${name}" is not provided: use bridgeMachine.provide()`));
}

const streamEnded: ErrorSummary = { code: "stream_ended", message: "the server ended the ProjectEvents stream" };
/**
 * A failed heartbeat round: the streak goes on while the code repeats, a
 * pushback on the error is the floor under the next wait, and what the
 * machine emits for it.
 */
function syncFailure(context: BridgeContext, error: ErrorSummary, suspect = false) {
  const streak = context.lastSyncErrorCode === error.code ? context.syncErrorStreak + 1 : 1;
  return {
    patch: {
      syncErrorStreak: streak,
      lastSyncErrorCode: error.code,
      syncRetryAfterMs: error.retryAfterMs ?? 0,
      counters: bump(context.counters, "syncFailures"),
    },
    emitted: { type: "syncFailed" as const, error, suspect, streak },
  };
}

/** What a late round given up for a reopen's resync failed with. */
function lateRoundReplaced(timeoutMs: number): ErrorSummary {
  return {
    code: "deadline_exceeded",
    message: `SyncProjectState got no answer within ${timeoutMs} ms; given up for the resync of the stream that reopened`,
  };
}
/** What a round past its deadline whose link did not answer the probe failed with. */
function syncDeadlineError(timeoutMs: number): ErrorSummary {
  return {
    code: "deadline_exceeded",
    message: `SyncProjectState got no answer within ${timeoutMs} ms and the connection did not answer a PING`,
  };
}
const suspectError: ErrorSummary = {
  code: "deadline_exceeded",
  message: "heartbeat timed out while streaming: connection suspect, reopening on a fresh HTTP/2 session",
};

/** syncNow() or a stream open asked for a follow-up during the current round. */
const inFollowUp = stateIn("#bridge.heartbeat.syncing.asked.followUp");
/** A stream is open (a suspect reopen brings its own resync). */
const inStreaming = stateIn("#bridge.connection.open.streaming");

/** The event that asks `waiting` for the follow-up round a late round that failed leaves behind. */
function followUpEvent(context: BridgeContext): BridgeEvent {
  return context.followUpCause === "stream-open" ? { type: "sync.request" } : { type: "SYNC.NOW" };
}

/**
 * A stream (re)opens after a failure while the round is late: the round is
 * given up for the reopen's resync. A GOAWAY'd session still carries the
 * late call to its end, so after a GOAWAY the round is kept (a follow-up).
 */
const replaceLateRound = {
  guard: and(["roundLate", not("reopenedAfterGoaway")]),
  target: "#bridge.heartbeat.syncing",
  reenter: true,
  actions: "restartLateRound",
} as const;

export const bridgeMachine = setup({
  types: {
    context: {} as BridgeContext,
    events: {} as BridgeEvent,
    emitted: {} as BridgeEmitted,
    input: {} as BridgeInput,
  },
  actors: {
    /** Holds one ProjectEvents call: resolves when the server ends it, rejects on failure. */
    projectEvents: fromPromise<void, ProjectEventsInput>(notProvided("projectEvents")),
    /** One SyncProjectState round (all chunks). */
    syncProjectState: fromPromise<SyncResult, SyncProjectStateInput>(notProvided("syncProjectState")),
    /** Resolves when every accepted removal has been dispatched to the handlers; never rejects. */
    drainDispatch: fromPromise<void, void>(() => Promise.resolve()),
    /**
     * After a heartbeat's own deadline while streaming: does the connection
     * still answer (one HTTP/2 PING, at most one per five minutes per
     * connection unless the server sent headers since)? true: a slow
     * server, not a dead link; false: suspect.
     */
    probeLink: fromPromise<boolean, ProbeLinkInput>(notProvided("probeLink")),
  },
  delays: createBridgeDelays(() => Math.random()),
  guards: {
    /** The client ended the stream because the server sent GOAWAY. */
    isServerGoaway: ({ event }) => "error" in event && event.error instanceof ServerGoawayError,
    /** This open proved itself (headers, a message, or a completed sync) and has been streaming for stableAfterMs. */
    openStable: ({ context }) => context.openProven && context.openStable,
    /** The current call's request reached the wire. */
    requestSent: ({ context }) => context.requestSent,
    /** The link probe got an answer: the server is slow, the link alive. */
    linkAnswered: ({ event }) => "output" in event && event.output === true,
    /** syncNow() was called during the round that just ended. */
    followUpAsked: inFollowUp,
    /** The round is past its deadline (probing the link, or running on). */
    roundLate: or([stateIn("#bridge.heartbeat.syncing.deadline.probing"), stateIn("#bridge.heartbeat.syncing.deadline.runningOn")]),
    /** The connection reopens after a GOAWAY, not after a failure. */
    reopenedAfterGoaway: ({ context }) => context.reopenAfterGoaway,
    /** The round ran on for as long as it may (its own deadline, on a call that reached the wire). */
    isOwnSyncDeadline: ({ event }) => "error" in event && event.error instanceof SyncDeadlineError && event.error.sent,
    /** No stream, and the connection is about to (re)open one (its resync is coming). */
    reconnecting: or([
      stateIn("#bridge.connection.backoff"),
      stateIn("#bridge.connection.reopening"),
      stateIn("#bridge.connection.open.connecting"),
    ]),
  },
  actions: {
    countStreamOpened: assign({
      counters: ({ context }) => bump(context.counters, "streamsOpened"),
    }),
    countReconnect: assign({
      counters: ({ context }) => bump(context.counters, "reconnects"),
    }),
    /** A stream (re)opened: the heartbeat region syncs now. */
    requestSync: raise({ type: "sync.request" }),
    noteSyncCause: assign({ lastSyncCause: (_, params: { cause: SyncCause }) => params.cause }),
    raiseSuspect: raise({ type: "connection.suspect" }),
    /** A heartbeat round begins: how many GOAWAYs came before it (see lateRoundRanOut). */
    noteRoundStream: assign({ roundGoaways: ({ context }) => context.counters.goaways }),
    /**
     * A late round ended without an answer while a follow-up was asked
     * (syncNow() or a stream open during it), and no suspect reopen will
     * bring its resync (no stream is open): the follow-up is asked again of
     * \`waiting\`, which starts it at once, as after any other failure.
     */
    resumeFollowUp: enqueueActions(({ context, check, enqueue }) => {
      if (check(inFollowUp) && !check(inStreaming)) enqueue.raise(followUpEvent(context));
    }),
    /**
     * A late round ran on to its limit: the link may have died after its
     * PING, so a streaming connection is suspect, unless a GOAWAY came
     * since the round began (a GOAWAY reopen keeps a late round): the
     * stream's new session never carried the call and the limit proves
     * nothing against it. A follow-up asked during the round starts at once unless a
     * suspect reopen brings its resync.
     */
    lateRoundRanOut: enqueueActions(({ context, check, enqueue }) => {
      const suspect = check(inStreaming) && context.counters.goaways === context.roundGoaways;
      if (check(inFollowUp) && !suspect) enqueue.raise(followUpEvent(context));
      if (suspect) enqueue.raise({ type: "connection.suspect" });
    }),
    /** The link answered after a heartbeat's deadline: a slow server; the heartbeat slows down instead. */
    slowHeartbeat: enqueueActions(({ context, enqueue }) => {
      enqueue.assign({
        heartbeatSlowdown: Math.min(MAX_HEARTBEAT_SLOWDOWN, context.heartbeatSlowdown * 2),
        counters: bump(context.counters, "slowServer"),
      });
      enqueue.emit({ type: "serverSlow", slowdown: Math.min(MAX_HEARTBEAT_SLOWDOWN, context.heartbeatSlowdown * 2) });
    }),
    /**
     * A stream (re)opened while the round was late: the late round is given
     * up (its call may be stuck on the old connection) and the reopen's
     * resync starts at once, instead of waiting behind it as a follow-up.
     */
    restartLateRound: enqueueActions(({ context, enqueue }) => {
      const failed = syncFailure(context, lateRoundReplaced(context.timing.syncTimeoutMs));
      // The pushback floor of an earlier failure stands: this round was given up, not refused.
      const { syncRetryAfterMs: _kept, ...patch } = failed.patch;
      enqueue.assign({ ...patch, lastSyncCause: "stream-open" });
      enqueue.emit(failed.emitted);
    }),
    /** Begins and ends an open: it has proved nothing yet, and its request is not sent. */
    clearOpenProof: assign({ openProven: false, openStable: false, requestSent: false }),
    markRequestSent: assign({ requestSent: true }),
    /** A follow-up round was asked for, and why (a stream open wins: its next wait is spread). */
    noteFollowUp: assign({ followUpCause: (_, params: { cause: SyncCause }) => params.cause }),
    /** Headers before openConfirm: this open proved itself. */
    proveOpen: assign({ openProven: true }),
    /**
     * stableAfterMs in streaming: the attempt counter resets if this open
     * proved itself; else it resets when the proof comes (a message or a
     * completed sync), never on the timer alone.
     */
    markStable: assign(({ context }) => (context.openProven ? { openStable: true, attempt: 0, errorStreak: 0 } : { openStable: true })),
    /** The call failed: streak bookkeeping, then the backoff attempt. */
    recordStreamFailure: enqueueActions(({ context, enqueue }, params: { error: unknown }) => {
      const error = summarizeError(params.error);
      const streak = streakAfter(context, error);
      const attempt = context.attempt + 1;
      enqueue.assign({
        attempt,
        lastError: error,
        errorStreak: streak,
        reopenAfterGoaway: false,
        counters: bump(context.counters, "streamFailures"),
      });
      enqueue.emit({ type: "streamFailed", error, attempt, streak, suspect: false });
    }),
    /** The server ended the call: the same bookkeeping as a failure with code stream_ended. */
    recordStreamEnded: enqueueActions(({ context, enqueue }) => {
      const attempt = context.attempt + 1;
      enqueue.assign({
        attempt,
        lastError: streamEnded,
        errorStreak: streakAfter(context, streamEnded),
        reopenAfterGoaway: false,
        counters: bump(context.counters, "streamEnds"),
      });
      enqueue.emit({ type: "streamEnded", attempt });
    }),
    /** GOAWAY: the stream ended on the server's request; not a failure, the attempt stays. */
    recordGoaway: enqueueActions(({ context, enqueue }, params: { error: unknown }) => {
      const error = summarizeError(params.error);
      enqueue.assign({ lastError: error, reopenAfterGoaway: true, counters: bump(context.counters, "goaways") });
      enqueue.emit({ type: "serverGoaway", error });
    }),
    /** A GOAWAY ended an open that was not stable yet: counted as a GOAWAY too (it backs off as a failure). */
    countGoaway: assign({ reopenAfterGoaway: true, counters: ({ context }) => bump(context.counters, "goaways") }),
    recordSuspect: enqueueActions(({ context, enqueue }) => {
      const attempt = context.attempt + 1;
      enqueue.assign({
        attempt,
        lastError: suspectError,
        errorStreak: 1,
        reopenAfterGoaway: false,
        sessionEpoch: context.sessionEpoch + 1,
        counters: bump(context.counters, "suspects"),
      });
      enqueue.emit({ type: "streamFailed", error: suspectError, attempt, streak: 1, suspect: true });
    }),
    /**
     * The messages of one event-loop turn, in order: count them, drop what is
     * not a removal, dedup the removals, emit. A CREATED event for a project
     * in the window ends its current life (its next removal is new), in
     * message order: removals before it are admitted first. One context
     * update (and one copy of the counters) per batch, not per message.
     */
    acceptStreamEvents: enqueueActions(({ context, enqueue }, params: { events: readonly StreamEvent[] }) => {
      const counters = { ...context.counters };
      counters.eventsReceived += params.events.length;
      let window = context.recentRemovals;
      let absent = context.absentRemovals;
      let unheld = context.unheldRemovals;
      let run: StreamEvent[] = [];
      const admitRun = () => {
        if (run.length === 0) return;
        const removals = run;
        run = [];
        // Entries of projects the daemon does not hold go first when the window is full.
        let notHeld: Set<string> | undefined;
        if (window.length + removals.length > context.dedupCapacity) {
          notHeld = new Set(unheld);
          for (const ev of removals) if (ev.untracked === true) notHeld.add(ev.projectId);
        }
        const admitted = admitRemovals(
          window,
          removals.map((ev) => ev.projectId),
          context.dedupCapacity,
          notHeld,
        );
        window = admitted.keys;
        counters.duplicatesSuppressed += admitted.duplicates.length;
        counters.removalsFromStream += admitted.fresh.length;
        // In message order; fresh ids are in the order they were admitted.
        let next = 0;
        for (const ev of removals) {
          if (admitted.fresh[next] === ev.projectId) {
            next += 1;
            // Removed while the daemon did not hold it: listing it later is opening it again.
            if (ev.untracked === true) {
              absent = [...absent, ev.projectId];
              unheld = [...unheld, ev.projectId];
            }
            enqueue.emit({ type: "projectRemoved", projectId: ev.projectId, info: streamRemovalInfo(ev), receivedAtMs: ev.receivedAtMs });
          } else {
            enqueue.emit({ type: "duplicateSuppressed", projectId: ev.projectId, source: "stream" });
          }
        }
      };
      for (const ev of params.events) {
        if (ev.refused !== undefined) {
          admitRun();
          counters.refusedIds += 1;
          enqueue.emit({
            type: "idsRefused",
            source: "stream",
            refused: { why: ev.refused, count: 1, previews: [ev.projectId] },
            eventId: ev.eventId,
          });
        } else if (ev.projectId !== "" && ev.eventType === PROJECT_EVENT_TYPE_REMOVED) {
          run.push(ev);
        } else {
          // What came before is handed on first: everything in message order.
          admitRun();
          counters.ignoredEvents += 1;
          const why = ev.projectId === "" ? "empty_project_id" : "not_removed";
          enqueue.emit({ type: "eventIgnored", eventId: ev.eventId, eventType: ev.eventType, projectId: ev.projectId, why });
          if (why === "not_removed" && ev.eventType === PROJECT_EVENT_TYPE_CREATED) {
            const renewed = forgetLives(
              { ...context, recentRemovals: window, absentRemovals: absent, unheldRemovals: unheld },
              [ev.projectId],
              counters,
            );
            window = renewed.recentRemovals ?? window;
            absent = renewed.absentRemovals ?? absent;
            unheld = renewed.unheldRemovals ?? unheld;
          }
        }
      }
      admitRun();
      // A message proves this open: the attempt counter resets at once.
      const patch: Partial<BridgeContext> = { openProven: true, counters };
      if (context.attempt !== 0) {
        patch.attempt = 0;
        patch.errorStreak = 0;
      }
      if (window !== context.recentRemovals || absent !== context.absentRemovals || unheld !== context.unheldRemovals) {
        patch.recentRemovals = window;
        patch.absentRemovals = absentInWindow(absent, window);
        patch.unheldRemovals = absentInWindow(unheld, window);
      }
      enqueue.assign(patch);
    }),
    /** A batch of a heartbeat answer's removed ids: the same dedup step as the stream. */
    acceptHeartbeatRemovals: enqueueActions(
      (
        { context, enqueue },
        params: {
          projectIds: readonly string[];
          receivedAtMs: number;
          refused: readonly RefusedIds[];
          deferred: number;
        },
      ) => {
        const counters = { ...context.counters };
        const window = context.recentRemovals;
        const ids = params.projectIds.filter((id) => id !== "");
        const full = window.length + ids.length > context.dedupCapacity;
        const admitted = admitRemovals(window, ids, context.dedupCapacity, full ? new Set(context.unheldRemovals) : undefined);
        counters.duplicatesSuppressed += admitted.duplicates.length;
        counters.removalsFromHeartbeat += admitted.fresh.length;
        counters.removalsDeferred += params.deferred;
        counters.ignoredEvents += params.projectIds.length - ids.length;
        for (const r of params.refused) {
          if (r.why === "not_reported") counters.unreportedRemovals += r.count;
          else counters.refusedIds += r.count;
        }
        enqueue.assign({
          recentRemovals: admitted.keys,
          absentRemovals: absentInWindow(context.absentRemovals, admitted.keys),
          unheldRemovals: absentInWindow(context.unheldRemovals, admitted.keys),
          counters,
        });
        for (const r of params.refused) enqueue.emit({ type: "idsRefused", source: "heartbeat", refused: r });
        for (const projectId of admitted.duplicates) {
          enqueue.emit({ type: "duplicateSuppressed", projectId, source: "heartbeat" });
        }
        for (const projectId of admitted.fresh) {
          enqueue.emit({ type: "projectRemoved", projectId, info: { source: "heartbeat" }, receivedAtMs: params.receivedAtMs });
        }
      },
    ),
    /**
     * A round's listing of the window's ids: one the daemon lists again after
     * a round without it was opened again and starts a new life; one it does
     * not list is marked absent.
     */
    acceptListing: enqueueActions(({ context, enqueue }, params: { present: readonly string[]; absent: readonly string[] }) => {
      const marked = new Set(context.absentRemovals);
      const reopened = params.present.filter((id) => marked.has(id));
      const counters = { ...context.counters };
      const renewed = reopened.length > 0 ? forgetLives(context, reopened, counters) : {};
      const window = renewed.recentRemovals ?? context.recentRemovals;
      const absent = new Set(renewed.absentRemovals ?? context.absentRemovals);
      for (const id of params.absent) absent.add(id);
      enqueue.assign({
        recentRemovals: window,
        absentRemovals: absentInWindow([...absent], window),
        unheldRemovals: absentInWindow(renewed.unheldRemovals ?? context.unheldRemovals, window),
        counters,
      });
    }),
    /**
     * A removal's handlers settled and the daemon no longer holds the
     * project: if it lists the id again later, it opened it again (a new life).
     */
    markReleased: assign({
      absentRemovals: ({ context }, params: { projectId: string }) =>
        context.absentRemovals.includes(params.projectId) || !context.recentRemovals.includes(`removed:${params.projectId}`)
          ? context.absentRemovals
          : [...context.absentRemovals, params.projectId],
    }),
    /** Ids the server answered live (reported, not removed): a new life each. */
    acceptLive: enqueueActions(({ context, enqueue }, params: { projectIds: readonly string[] }) => {
      const counters = { ...context.counters };
      const renewed = forgetLives(context, params.projectIds, counters);
      if (renewed.recentRemovals !== undefined) enqueue.assign({ ...renewed, counters });
    }),
    /** A completed heartbeat round (its removals came before, as sync.removed). */
    acceptSyncResult: enqueueActions(({ context, enqueue }, params: { output: SyncResult }) => {
      // A completed sync proves the open it ran in (cleared when an open
      // begins, so one that completed before it does not count); once the
      // open is also stable, the attempt counter resets.
      const proof = context.openStable ? { openProven: true, attempt: 0, errorStreak: 0 } : { openProven: true };
      // A round answered within half its deadline halves the slowdown; a
      // later one doubles it (at most MAX_HEARTBEAT_SLOWDOWN: a round the
      // probe already slowed down for is not slowed twice).
      const late = params.output.roundMs !== undefined && params.output.roundMs > context.timing.syncTimeoutMs / 2;
      const heartbeatSlowdown = late
        ? Math.min(MAX_HEARTBEAT_SLOWDOWN, context.heartbeatSlowdown * 2)
        : Math.max(1, context.heartbeatSlowdown / 2);
      enqueue.assign({
        ...proof,
        heartbeatSlowdown,
        syncErrorStreak: 0,
        lastSyncErrorCode: null,
        syncRetryAfterMs: 0,
        counters: bump(context.counters, "syncs"),
      });
      enqueue.emit({ type: "syncCompleted", result: params.output });
    }),
    recordSyncFailure: enqueueActions(({ context, enqueue }, params: { error: unknown; suspect: boolean }) => {
      const failed = syncFailure(context, summarizeError(params.error), params.suspect);
      enqueue.assign(failed.patch);
      enqueue.emit(failed.emitted);
    }),
    /**
     * A round past its deadline whose link did not answer the probe: a
     * failure (raiseSuspect follows: a streaming connection is suspect and
     * reopens, which the connection region reports).
     */
    recordSyncDeadline: enqueueActions(({ context, enqueue }) => {
      const failed = syncFailure(context, syncDeadlineError(context.timing.syncTimeoutMs));
      enqueue.assign(failed.patch);
      enqueue.emit(failed.emitted);
    }),
  },
}).createMachine({
  id: "bridge",
  type: "parallel",
  context: ({ input }) => ({
    clientId: input.clientId,
    timing: input.timing,
    dedupCapacity: input.dedupCapacity,
    attempt: 0,
    sessionEpoch: 0,
    lastError: null,
    errorStreak: 0,
    openProven: false,
    openStable: false,
    syncErrorStreak: 0,
    lastSyncErrorCode: null,
    lastSyncCause: "timer",
    syncRetryAfterMs: 0,
    heartbeatSlowdown: 1,
    recentRemovals: [],
    absentRemovals: [],
    unheldRemovals: [],
    requestSent: false,
    reopenAfterGoaway: false,
    followUpCause: "request",
    roundGoaways: 0,
    counters: zeroCounters,
  }),
  on: {
    "removal.released": { actions: { type: "markReleased", params: ({ event }) => ({ projectId: event.projectId }) } },
  },
  states: {
    connection: {
      initial: "idle",
      states: {
        idle: {
          on: {
            START: "open",
            STOP: "stopping",
          },
        },
        /** One ProjectEvents call lives across connecting and streaming. */
        open: {
          entry: "clearOpenProof",
          exit: "clearOpenProof",
          invoke: {
            id: "projectEvents",
            src: "projectEvents",
            input: ({ context, self }) => ({ clientId: context.clientId, sessionEpoch: context.sessionEpoch, parent: self }),
            onDone: { target: "backoff", actions: "recordStreamEnded" },
            onError: [
              // A GOAWAY on an open that never proved itself stable (a
              // message or headers, and stableAfterMs streaming) counts as a
              // failure: a server that recycles connections faster than that
              // (max_connection_age) gets the growing backoff, not a free
              // reopen and resync each time.
              {
                guard: and(["isServerGoaway", "openStable"]),
                target: "reopening",
                actions: { type: "recordGoaway", params: ({ event }) => ({ error: event.error }) },
              },
              {
                guard: "isServerGoaway",
                target: "backoff",
                actions: [{ type: "recordStreamFailure", params: ({ event }) => ({ error: event.error }) }, "countGoaway"],
              },
              { target: "backoff", actions: { type: "recordStreamFailure", params: ({ event }) => ({ error: event.error }) } },
            ],
          },
          on: { STOP: "stopping" },
          initial: "connecting",
          states: {
            connecting: {
              // Alive openConfirmMs after its request reached the wire counts
              // as open; a call whose request is not sent (a token still
              // being read) never does. stream.sent restarts the wait.
              after: { openConfirm: { target: "streaming", guard: "requestSent" } },
              on: {
                "stream.sent": { target: "connecting", reenter: true, actions: "markRequestSent" },
                "stream.opened": { target: "streaming", actions: "proveOpen" },
                "stream.events": {
                  target: "streaming",
                  actions: { type: "acceptStreamEvents", params: ({ event }) => ({ events: event.events }) },
                },
              },
            },
            streaming: {
              entry: ["countStreamOpened", "requestSync"],
              after: { stableAfter: { actions: "markStable" } },
              on: {
                "stream.events": { actions: { type: "acceptStreamEvents", params: ({ event }) => ({ events: event.events }) } },
                "connection.suspect": { target: "#bridge.connection.backoff", actions: "recordSuspect" },
              },
            },
          },
        },
        backoff: {
          after: { backoffDelay: { target: "open", actions: "countReconnect" } },
          on: { STOP: "stopping" },
        },
        /** After the server's GOAWAY: a short jittered wait that is not a failure (status shows backoff). */
        reopening: {
          after: { reopenDelay: { target: "open", actions: "countReconnect" } },
          on: { STOP: "stopping" },
        },
        stopping: {
          // The drain actor never rejects (the runtime's logs and swallows), so
          // the way out is exactly DESIGN's: drained, or the budget ran out.
          invoke: {
            id: "drainDispatch",
            src: "drainDispatch",
            onDone: "stopped",
          },
          after: { stopBudget: "stopped" },
        },
        stopped: { type: "final" },
      },
    },
    heartbeat: {
      initial: "waiting",
      states: {
        waiting: {
          after: {
            heartbeatDelay: [
              // No stream, and one is being (re)opened: its resync replaces this round.
              { guard: "reconnecting", target: "held" },
              { target: "syncing", actions: { type: "noteSyncCause", params: { cause: "timer" } } },
            ],
          },
          on: {
            "SYNC.NOW": { target: "syncing", actions: { type: "noteSyncCause", params: { cause: "request" } } },
            "sync.request": { target: "syncing", actions: { type: "noteSyncCause", params: { cause: "stream-open" } } },
            STOP: "stopped",
          },
        },
        /**
         * A regular round came due while the connection was reconnecting:
         * it waits for the reopen, whose resync replaces it, or for one more
         * heartbeat wait (the fallback while no stream opens). A fleet in
         * backoff thus does not feed a recovering server a heartbeat per
         * bridge on top of the reopen's resync.
         */
        held: {
          after: { heartbeatDelay: { target: "syncing", actions: { type: "noteSyncCause", params: { cause: "timer" } } } },
          on: {
            "SYNC.NOW": { target: "syncing", actions: { type: "noteSyncCause", params: { cause: "request" } } },
            "sync.request": { target: "syncing", actions: { type: "noteSyncCause", params: { cause: "stream-open" } } },
            STOP: "stopped",
          },
        },
        syncing: {
          // One round, in two regions: `asked` keeps whether a follow-up
          // round was asked for during it; `deadline` follows the round's
          // own deadline (syncTimeoutMs). A round past it whose request was
          // sent asks the connection (one HTTP/2 PING) before anything else:
          // a slow server is not a dead link, so the round runs on (up to
          // the slowest heartbeat's period) instead of being abandoned and
          // sent again at the back of the server's queue.
          type: "parallel",
          entry: "noteRoundStream",
          states: {
            asked: {
              // syncNow() or a stream (re)open during a round does not
              // restart it (that would restart its deadline, so a caller or
              // a server recycling connections could starve the heartbeat):
              // each asks for one follow-up round, started when this one ends.
              initial: "round",
              states: {
                round: {
                  on: {
                    "SYNC.NOW": { target: "followUp", actions: { type: "noteFollowUp", params: { cause: "request" } } },
                    "sync.request": [
                      replaceLateRound,
                      { target: "followUp", actions: { type: "noteFollowUp", params: { cause: "stream-open" } } },
                    ],
                  },
                },
                followUp: {
                  on: {
                    "sync.request": [replaceLateRound, { actions: { type: "noteFollowUp", params: { cause: "stream-open" } } }],
                  },
                },
              },
            },
            deadline: {
              initial: "inTime",
              states: {
                inTime: {
                  on: { "sync.late": "probing" },
                },
                /** Past its deadline: does the connection answer? */
                probing: {
                  invoke: {
                    id: "probeLink",
                    src: "probeLink",
                    input: ({ context }) => ({
                      sessionEpoch: context.sessionEpoch,
                      timeoutMs: Math.ceil(context.timing.syncTimeoutMs / 2),
                    }),
                    onDone: [
                      { guard: "linkAnswered", target: "runningOn", actions: "slowHeartbeat" },
                      { target: "#bridge.heartbeat.waiting", actions: ["recordSyncDeadline", "resumeFollowUp", "raiseSuspect"] },
                    ],
                    onError: { target: "#bridge.heartbeat.waiting", actions: ["recordSyncDeadline", "resumeFollowUp", "raiseSuspect"] },
                  },
                },
                /** The link answered: the round waits on for the slow server (a late answer does not slow the heartbeat twice). */
                runningOn: {},
              },
            },
          },
          invoke: {
            id: "syncProjectState",
            src: "syncProjectState",
            input: ({ context, self }) => ({
              clientId: context.clientId,
              sessionEpoch: context.sessionEpoch,
              timeoutMs: context.timing.syncTimeoutMs,
              runOnMs: syncRunOnMs(context.timing),
              parent: self,
              windowIds: windowProjectIds(context.recentRemovals),
            }),
            onDone: [
              {
                guard: "followUpAsked",
                target: "syncing",
                reenter: true,
                actions: [
                  { type: "acceptSyncResult", params: ({ event }) => ({ output: event.output }) },
                  { type: "noteSyncCause", params: ({ context }) => ({ cause: context.followUpCause }) },
                ],
              },
              { target: "waiting", actions: { type: "acceptSyncResult", params: ({ event }) => ({ output: event.output }) } },
            ],
            onError: [
              {
                // A late round that ran on as long as it may (or whose probe
                // had not answered yet): the link may be dead. A streaming
                // connection is suspect (half-open detection).
                guard: and(["isOwnSyncDeadline", "roundLate"]),
                target: "waiting",
                actions: [
                  { type: "recordSyncFailure", params: ({ event }) => ({ error: event.error, suspect: false }) },
                  "lateRoundRanOut",
                ],
              },
              {
                guard: "followUpAsked",
                target: "syncing",
                reenter: true,
                actions: [
                  { type: "recordSyncFailure", params: ({ event }) => ({ error: event.error, suspect: false }) },
                  { type: "noteSyncCause", params: ({ context }) => ({ cause: context.followUpCause }) },
                ],
              },
              {
                target: "waiting",
                actions: { type: "recordSyncFailure", params: ({ event }) => ({ error: event.error, suspect: false }) },
              },
            ],
          },
          on: {
            "sync.listed": {
              actions: { type: "acceptListing", params: ({ event }) => ({ present: event.present, absent: event.absent }) },
            },
            "sync.live": { actions: { type: "acceptLive", params: ({ event }) => ({ projectIds: event.projectIds }) } },
            "sync.removed": {
              actions: {
                type: "acceptHeartbeatRemovals",
                params: ({ event }) => ({
                  projectIds: event.projectIds,
                  receivedAtMs: event.receivedAtMs,
                  refused: event.refused ?? [],
                  deferred: event.deferred ?? 0,
                }),
              },
            },
            STOP: "stopped",
          },
        },
        stopped: { type: "final" },
      },
    },
  },
});

export type BridgeMachine = typeof bridgeMachine;
