/**
 * The bridge statechart: a parallel `connection` region (idle, connecting,
 * streaming, backoff, stopping, stopped) and a `heartbeat` region (waiting,
 * syncing, stopped). Pure: no I/O, no timers of its own, no secrets. The
 * runtime provides the actors and the jittered delays with
 * `bridgeMachine.provide()`; tests provide fakes and a SimulatedClock.
 * DESIGN.md "The statechart" is the contract for this file.
 */
import { and, assign, enqueueActions, fromPromise, raise, setup, stateIn } from "xstate";
import { summarizeError, type ErrorSummary } from "../src/errors.js";
import type { RemovalInfo } from "../src/types.js";
import { ServerGoawayError, SyncDeadlineError } from "../src/call-errors.js";
import { backoffDelayMs, goawayReopenDelayMs, heartbeatDelayMs, heartbeatSpreadDelayMs, type BridgeTiming } from "../src/timing.js";
import { admitRemovals } from "./dedup-window.js";
import type {
  BridgeContext,
  BridgeCounters,
  BridgeEmitted,
  BridgeEvent,
  BridgeInput,
  ProjectEventsInput,
  SyncCause,
  StreamEvent,
  SyncProjectStateInput,
  SyncResult,
  RefusedIds,
} from "./bridge.types.js";

/** The wire value of PROJECT_EVENT_TYPE_REMOVED. */
export const REMOVED_EVENT_TYPE = 1;

/** Codes that are logged once per streak rather than on every failure. */
export const LOUD_ONCE_CODES: readonly string[] = ["unauthenticated", "permission_denied", "unimplemented"];

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
};

type DelayArgs = { context: BridgeContext };

/**
 * The named delays, computed from context and an injected random source in
 * [0, 1). The runtime provides `createBridgeDelays(options.random)`.
 */
export function createBridgeDelays(random: () => number) {
  return {
    backoffDelay: ({ context }: DelayArgs) => backoffDelayMs(context.attempt, context.timing, random()),
    heartbeatDelay: ({ context }: DelayArgs) =>
      context.lastSyncCause === "stream-open"
        ? heartbeatSpreadDelayMs(context.timing, random())
        : heartbeatDelayMs(context.timing, random()),
    reopenDelay: ({ context }: DelayArgs) => goawayReopenDelayMs(context.timing, random()),
    openConfirm: ({ context }: DelayArgs) => context.timing.openConfirmMs,
    stableAfter: ({ context }: DelayArgs) => context.timing.stableAfterMs,
    stopBudget: ({ context }: DelayArgs) => stopBudgetMs(context.timing),
  };
}

/** The machine gives up waiting for dispatch a little before stop()'s own deadline. */
export function stopBudgetMs(timing: BridgeTiming): number {
  return Math.max(0, timing.stopTimeoutMs - Math.min(250, Math.floor(timing.stopTimeoutMs / 10)));
}

function errorOf(event: unknown): ErrorSummary {
  return summarizeError((event as { error?: unknown }).error);
}

/** What handlers learn of a removal the stream carried: empty wire fields are left out. */
export function streamRemovalInfo(ev: StreamEvent): RemovalInfo {
  return {
    source: "stream",
    eventId: ev.eventId,
    ...(ev.reason === "" ? {} : { reason: ev.reason }),
    ...(ev.timestampUnixMs === 0 ? {} : { timestampUnixMs: ev.timestampUnixMs }),
  };
}

function bump(counters: BridgeCounters, key: keyof BridgeCounters, by = 1): BridgeCounters {
  return { ...counters, [key]: counters[key] + by };
}

/** Several counters in one copy (the stream path runs once per message). */
function tally(counters: BridgeCounters, increments: Partial<BridgeCounters>): BridgeCounters {
  const next = { ...counters };
  for (const [key, by] of Object.entries(increments) as [keyof BridgeCounters, number][]) next[key] += by;
  return next;
}

function notProvided(name: string) {
  return () => Promise.reject(new Error(`actor "${name}" is not provided: use bridgeMachine.provide()`));
}

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
  },
  delays: createBridgeDelays(Math.random),
  guards: {
    /** The bridge's own per-call deadline ran out (not a DEADLINE_EXCEEDED the server sent). */
    isOwnSyncDeadline: ({ event }) => (event as { error?: unknown }).error instanceof SyncDeadlineError,
    /** The client ended the stream because the server sent GOAWAY. */
    isServerGoaway: ({ event }) => (event as { error?: unknown }).error instanceof ServerGoawayError,
    /** This open proved itself (headers before openConfirm, a message, or a completed sync). */
    openProven: ({ context }) => context.openProven,
    /** syncNow() was called during the round that just ended. */
    followUpAsked: stateIn("#bridge.heartbeat.syncing.followUp"),
  },
  actions: {
    countStreamOpened: assign({
      counters: ({ context }) => bump(context.counters, "streamsOpened"),
    }),
    countReconnect: assign({
      counters: ({ context }) => bump(context.counters, "reconnects"),
    }),
    requestSync: raise({ type: "connection.opened" }),
    noteSyncCause: assign({ lastSyncCause: (_, params: { cause: SyncCause }) => params.cause }),
    raiseSuspect: raise({ type: "connection.suspect" }),
    /** Begins and ends an open: it has proved nothing yet. */
    clearOpenProof: assign({ openProven: false, openStable: false }),
    /** Headers before openConfirm: this open proved itself. */
    proveOpen: assign({ openProven: true }),
    /**
     * stableAfterMs in streaming: the attempt counter resets if this open
     * proved itself; else it resets when the proof comes (a message or a
     * completed sync), never on the timer alone.
     */
    markStable: assign(({ context }) =>
      context.openProven ? { openStable: true, attempt: 0, errorStreak: 0 } : { openStable: true },
    ),
    /** Streak bookkeeping for a failed or ended call, then the backoff attempt. */
    recordStreamFailure: enqueueActions(({ context, event, enqueue }) => {
      const error = errorOf(event);
      const streak = context.lastError?.code === error.code && context.attempt > 0 ? context.errorStreak + 1 : 1;
      const attempt = context.attempt + 1;
      enqueue.assign({
        attempt,
        lastError: error,
        errorStreak: streak,
        counters: bump(context.counters, "streamFailures"),
      });
      enqueue.emit({ type: "streamFailed", error, attempt, streak, suspect: false });
    }),
    recordStreamEnded: enqueueActions(({ context, enqueue }) => {
      const error: ErrorSummary = { code: "stream_ended", message: "the server ended the ProjectEvents stream" };
      const streak = context.lastError?.code === error.code && context.attempt > 0 ? context.errorStreak + 1 : 1;
      const attempt = context.attempt + 1;
      enqueue.assign({ attempt, lastError: error, errorStreak: streak, counters: bump(context.counters, "streamEnds") });
      enqueue.emit({ type: "streamEnded", attempt });
    }),
    /** GOAWAY: the stream ended on the server's request; not a failure, the attempt stays. */
    recordGoaway: enqueueActions(({ context, event, enqueue }) => {
      const error = errorOf(event);
      enqueue.assign({ lastError: error, counters: bump(context.counters, "goaways") });
      enqueue.emit({ type: "serverGoaway", error });
    }),
    recordSuspect: enqueueActions(({ context, enqueue }) => {
      const error: ErrorSummary = {
        code: "deadline_exceeded",
        message: "heartbeat timed out while streaming: connection suspect, reopening on a fresh HTTP/2 session",
      };
      const attempt = context.attempt + 1;
      enqueue.assign({
        attempt,
        lastError: error,
        errorStreak: 1,
        sessionEpoch: context.sessionEpoch + 1,
        counters: bump(context.counters, "suspects"),
      });
      enqueue.emit({ type: "streamFailed", error, attempt, streak: 1, suspect: true });
    }),
    /** One stream message: count it, drop what is not a removal, dedup, emit. */
    acceptStreamEvent: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== "stream.event") return;
      const ev: StreamEvent = event.event;
      // A message proves this open: the attempt counter resets at once.
      const patch: Partial<BridgeContext> = { openProven: true };
      if (context.attempt !== 0) {
        patch.attempt = 0;
        patch.errorStreak = 0;
      }
      if (ev.refused !== undefined) {
        enqueue.assign({ ...patch, counters: tally(context.counters, { eventsReceived: 1, refusedIds: 1 }) });
        enqueue.emit({
          type: "idsRefused",
          source: "stream",
          refused: { why: ev.refused, count: 1, previews: [ev.projectId] },
          eventId: ev.eventId,
        });
        return;
      }
      const why = ev.projectId === "" ? "empty_project_id" : ev.eventType !== REMOVED_EVENT_TYPE ? "not_removed" : undefined;
      if (why !== undefined) {
        enqueue.assign({ ...patch, counters: tally(context.counters, { eventsReceived: 1, ignoredEvents: 1 }) });
        enqueue.emit({ type: "eventIgnored", eventId: ev.eventId, eventType: ev.eventType, projectId: ev.projectId, why });
        return;
      }
      const admitted = admitRemovals(context.recentRemovals, [ev.projectId], context.dedupCapacity);
      if (admitted.fresh.length === 0) {
        const counters = tally(context.counters, { eventsReceived: 1, duplicatesSuppressed: 1 });
        enqueue.assign({ ...patch, recentRemovals: admitted.keys, counters });
        enqueue.emit({ type: "duplicateSuppressed", projectId: ev.projectId, source: "stream" });
        return;
      }
      const counters = tally(context.counters, { eventsReceived: 1, removalsFromStream: 1 });
      enqueue.assign({ ...patch, recentRemovals: admitted.keys, counters });
      enqueue.emit({ type: "projectRemoved", projectId: ev.projectId, info: streamRemovalInfo(ev), receivedAtMs: ev.receivedAtMs });
    }),
    /** A batch of a heartbeat answer's removed ids: the same dedup step as the stream. */
    acceptHeartbeatRemovals: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== "sync.removed") return;
      const ids = event.projectIds.filter((id) => id !== "");
      const admitted = admitRemovals(context.recentRemovals, ids, context.dedupCapacity);
      const refused = event.refused ?? [];
      const count = (why: (w: RefusedIds["why"]) => boolean) => refused.filter((r) => why(r.why)).reduce((n, r) => n + r.count, 0);
      const counters = tally(context.counters, {
        duplicatesSuppressed: admitted.duplicates.length,
        removalsFromHeartbeat: admitted.fresh.length,
        ignoredEvents: event.projectIds.length - ids.length,
        refusedIds: count((w) => w !== "not_reported"),
        unreportedRemovals: count((w) => w === "not_reported"),
      });
      enqueue.assign({ recentRemovals: admitted.keys, counters });
      for (const r of refused) enqueue.emit({ type: "idsRefused", source: "heartbeat", refused: r });
      for (const projectId of admitted.duplicates) {
        enqueue.emit({ type: "duplicateSuppressed", projectId, source: "heartbeat" });
      }
      for (const projectId of admitted.fresh) {
        enqueue.emit({ type: "projectRemoved", projectId, info: { source: "heartbeat" }, receivedAtMs: event.receivedAtMs });
      }
    }),
    /** A completed heartbeat round (its removals came before, as sync.removed). */
    acceptSyncResult: enqueueActions(({ context, event, enqueue }) => {
      const result = (event as unknown as { output: SyncResult }).output;
      // A completed sync proves the open it ran in (cleared when an open
      // begins, so one that completed before it does not count); once the
      // open is also stable, the attempt counter resets.
      const proof = context.openStable ? { openProven: true, attempt: 0, errorStreak: 0 } : { openProven: true };
      enqueue.assign({ ...proof, syncErrorStreak: 0, lastSyncErrorCode: null, counters: bump(context.counters, "syncs") });
      enqueue.emit({ type: "syncCompleted", result });
    }),
    recordSyncFailure: enqueueActions(({ context, event, enqueue }, params: { suspect: boolean }) => {
      const error = errorOf(event);
      const streak = context.lastSyncErrorCode === error.code ? context.syncErrorStreak + 1 : 1;
      enqueue.assign({ syncErrorStreak: streak, lastSyncErrorCode: error.code, counters: bump(context.counters, "syncFailures") });
      enqueue.emit({ type: "syncFailed", error, suspect: params.suspect, streak });
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
    recentRemovals: [],
    counters: zeroCounters,
  }),
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
              // A GOAWAY on an open that never proved itself counts as a
              // failure: a server that answers every open with GOAWAY gets
              // the growing backoff, not a reopen every backoffMinMs.
              { guard: and(["isServerGoaway", "openProven"]), target: "reopening", actions: "recordGoaway" },
              { target: "backoff", actions: "recordStreamFailure" },
            ],
          },
          on: { STOP: "stopping" },
          initial: "connecting",
          states: {
            connecting: {
              after: { openConfirm: "streaming" },
              on: {
                "stream.opened": { target: "streaming", actions: "proveOpen" },
                "stream.event": { target: "streaming", actions: "acceptStreamEvent" },
              },
            },
            streaming: {
              entry: ["countStreamOpened", "requestSync"],
              after: { stableAfter: { actions: "markStable" } },
              on: {
                "stream.event": { actions: "acceptStreamEvent" },
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
          after: { heartbeatDelay: { target: "syncing", actions: { type: "noteSyncCause", params: { cause: "timer" } } } },
          on: {
            "SYNC.NOW": { target: "syncing", actions: { type: "noteSyncCause", params: { cause: "request" } } },
            "connection.opened": { target: "syncing", actions: { type: "noteSyncCause", params: { cause: "stream-open" } } },
            STOP: "stopped",
          },
        },
        syncing: {
          // One round. syncNow() during it does not restart it (that would
          // restart its deadline, so a caller could starve the heartbeat):
          // it asks for one follow-up round, started when this one ends.
          initial: "round",
          states: {
            round: {
              on: { "SYNC.NOW": "followUp" },
            },
            followUp: {},
          },
          invoke: {
            id: "syncProjectState",
            src: "syncProjectState",
            input: ({ context, self }) => ({
              clientId: context.clientId,
              sessionEpoch: context.sessionEpoch,
              timeoutMs: context.timing.syncTimeoutMs,
              parent: self,
            }),
            onDone: [
              {
                guard: "followUpAsked",
                target: "syncing",
                reenter: true,
                actions: ["acceptSyncResult", { type: "noteSyncCause", params: { cause: "request" } }],
              },
              { target: "waiting", actions: "acceptSyncResult" },
            ],
            onError: [
              {
                // The reopened stream asks for a sync anyway: a follow-up is not needed.
                guard: and(["isOwnSyncDeadline", stateIn("#bridge.connection.open.streaming")]),
                target: "waiting",
                actions: [{ type: "recordSyncFailure", params: { suspect: true } }, "raiseSuspect"],
              },
              {
                guard: "followUpAsked",
                target: "syncing",
                reenter: true,
                actions: [{ type: "recordSyncFailure", params: { suspect: false } }, { type: "noteSyncCause", params: { cause: "request" } }],
              },
              { target: "waiting", actions: { type: "recordSyncFailure", params: { suspect: false } } },
            ],
          },
          on: {
            "sync.removed": { actions: "acceptHeartbeatRemovals" },
            // A fresh stream restarts the round, so its answer reflects the
            // server after the open (stream opens are bounded by the backoff).
            "connection.opened": {
              target: "syncing",
              reenter: true,
              actions: { type: "noteSyncCause", params: { cause: "stream-open" } },
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
