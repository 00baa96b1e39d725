import type { ErrorSummary } from "../src/errors.js";
import type { BridgeTiming } from "../src/timing.js";
import type { RemovalInfo, RemovalSource } from "../src/types.js";
import type { RefusedWhy } from "../src/server-data.js";

/**
 * The wire value of PROJECT_EVENT_TYPE_REMOVED (`ProjectEventType.REMOVED` in
 * src/gen; machines/ does not import the generated code, and
 * test/machine/bridge-machine.test.ts checks the two agree).
 */
export const PROJECT_EVENT_TYPE_REMOVED = 1;
/** The wire value of PROJECT_EVENT_TYPE_CREATED: a project id starts a new life. */
export const PROJECT_EVENT_TYPE_CREATED = 2;

/** One ProjectEvent as the machine sees it: plain JSON, int64 as number. */
export interface StreamEvent {
  eventId: string;
  /** The wire enum value (1 = REMOVED); unknown values pass through as numbers. */
  eventType: number;
  projectId: string;
  timestampUnixMs: number;
  reason: string;
  /** performance.now()-style time at which the actor received it, for latency. */
  receivedAtMs: number;
  /**
   * Set when the actor refused the project id (too long, control
   * characters): `projectId` then holds only an escaped preview, and the
   * machine counts the event and hands nothing on.
   */
  refused?: RefusedWhy;
  /**
   * Set when the daemon did not hold the project when its removal arrived
   * (the tracker's `has` said so): if a later heartbeat round lists it, the
   * daemon opened it again after its removal, a new life.
   */
  untracked?: true;
}

/** Ids of one heartbeat answer that were not handed on, and why. */
export interface RefusedIds {
  /** too_long / control_character: refused as input; not_reported: the bridge never reported the id in that call. */
  why: RefusedWhy | "not_reported";
  count: number;
  /** Escaped previews of the first few (at most REFUSED_PREVIEWS). */
  previews: string[];
}

/** The most previews of refused ids one event carries. */
export const REFUSED_PREVIEWS = 3;

/** What one completed heartbeat answered. */
export interface SyncResult {
  /**
   * Every id the server answered as removed, as answered. The machine takes
   * them from the `sync.removed` batches the actor sent before it resolved;
   * this list is for reporting.
   */
  removed: string[];
  unknown: string[];
  serverTimeUnixMs: number;
  /** server time minus local time at the answer, in ms. */
  skewMs: number;
  /** How many ids were reported. */
  reported: number;
  receivedAtMs: number;
  /** How long the round's slowest call took to answer (ms; each chunk is one call). Absent: unknown. */
  roundMs?: number;
}

export interface BridgeCounters {
  streamsOpened: number;
  streamFailures: number;
  streamEnds: number;
  reconnects: number;
  eventsReceived: number;
  ignoredEvents: number;
  duplicatesSuppressed: number;
  removalsFromStream: number;
  removalsFromHeartbeat: number;
  syncs: number;
  syncFailures: number;
  suspects: number;
  /** Streams ended because the server sent GOAWAY (reopened without counting a failure). */
  goaways: number;
  /** Project ids refused where they entered (too long, control characters), both paths. */
  refusedIds: number;
  /** Heartbeat `removed` ids the bridge never reported in that call: dropped. */
  unreportedRemovals: number;
  /** Heartbeat deadlines after which the connection still answered: a slow server, the stream kept. */
  slowServer: number;
  /**
   * Dedup entries dropped because their project started a new life (a
   * CREATED event, a heartbeat answer that calls it live, or the daemon
   * listing it again after a round without it).
   */
  newLives: number;
  /**
   * Heartbeat removals not handed on because the dispatch queue had no room
   * for them: the next round answers them again (the daemon still lists them).
   */
  removalsDeferred: number;
}

/** The machine's context: JSON-serialisable, never a token. */
export interface BridgeContext {
  clientId: string;
  timing: BridgeTiming;
  dedupCapacity: number;
  /** Consecutive connection failures since the last reset (drives the backoff). */
  attempt: number;
  /** Bumped when the connection is suspect: actors then use a fresh HTTP/2 session. */
  sessionEpoch: number;
  lastError: ErrorSummary | null;
  /** How many failures in a row carried lastError.code since the last reset. */
  errorStreak: number;
  /**
   * Whether the current open proved itself (response headers before
   * openConfirm, a message, or a completed sync) and whether it has been
   * streaming for stableAfterMs. The attempt counter resets when both hold.
   * Both are cleared when an open begins and ends.
   */
  openProven: boolean;
  openStable: boolean;
  /** How many heartbeat failures in a row carried lastSyncErrorCode (reset by a completed sync). */
  syncErrorStreak: number;
  lastSyncErrorCode: string | null;
  /** The server's pushback on the last failed heartbeat (ms, 0 for none): a floor under the next heartbeat wait. */
  syncRetryAfterMs: number;
  /**
   * The heartbeat wait is multiplied by this (1 to 4): doubled when a round
   * answers late or a deadline passes on a connection that still answers (a
   * slow server), halved by a round answered in time.
   */
  heartbeatSlowdown: number;
  /** What started the current or last heartbeat round; "stream-open" spreads the next wait. */
  lastSyncCause: SyncCause;
  /** The dedup window: keys of recent removals, oldest first. */
  recentRemovals: string[];
  /**
   * Project ids in the dedup window that the daemon did not hold after
   * their removal (a heartbeat round did not list them, or the stream's
   * removal came while it did not hold them): if a later round lists one,
   * the daemon opened it again and it starts a new life. Always a subset of
   * the window's ids.
   */
  absentRemovals: string[];
  /**
   * Project ids in the dedup window whose removal arrived while the daemon
   * did not hold them (the tracker's `has`): a full window evicts these
   * first, so a flood of removals nobody holds never pushes out the entry
   * of a project the daemon held. Always a subset of the window's ids.
   */
  unheldRemovals: string[];
  /**
   * Whether the current ProjectEvents call's request reached the wire. Only
   * a sent call can be promoted to streaming by openConfirm.
   */
  requestSent: boolean;
  /**
   * The connection is reopening after a GOAWAY (not a failure): a round
   * that is late then is kept (the drained session still carries it) and
   * the reopen asks for a follow-up, so a server that recycles connections
   * faster than it answers cannot starve the heartbeat.
   */
  reopenAfterGoaway: boolean;
  /** What the follow-up round asked for during the current one will report as its cause. */
  followUpCause: SyncCause;
  /**
   * counters.goaways when the current heartbeat round began: after a GOAWAY
   * since then the late round is kept on the draining session, and the
   * stream reopened on a new one never carried the round's call, so that
   * call running out proves nothing against it. (A stream that merely
   * opened since, after a failure or while the round started during
   * \`connecting\`, shares the call's session: it does not count.)
   */
  roundGoaways: number;
  counters: BridgeCounters;
}

/** What starts a heartbeat round: its timer, SYNC.NOW, or a stream (re)open. */
export type SyncCause = "timer" | "request" | "stream-open";

export interface BridgeInput {
  clientId: string;
  timing: BridgeTiming;
  dedupCapacity: number;
}

export type BridgeEvent =
  | { type: "START" }
  | { type: "STOP" }
  | { type: "SYNC.NOW" }
  /** The ProjectEvents call's request reached the wire (its token was read, its HTTP/2 stream exists). */
  | { type: "stream.sent" }
  /** The ProjectEvents call received response headers. */
  | { type: "stream.opened" }
  /**
   * The ProjectEvents call received these messages, in order: the actor
   * sends every message that arrived in one turn of the event loop as one
   * event, so a burst costs one machine step, not one per message.
   */
  | { type: "stream.events"; events: readonly StreamEvent[] }
  /**
   * The SyncProjectState actor forwards the removed ids of each answer in
   * batches (at most SYNC_REMOVED_BATCH ids), each its own step, so a huge
   * answer never makes one step emit 100,000 events, and a round that fails
   * half-way loses nothing already answered.
   */
  | {
      type: "sync.removed";
      projectIds: string[];
      receivedAtMs: number;
      refused?: RefusedIds[];
      /** Removed ids not forwarded (no room in the dispatch queue): the next round answers them again. */
      deferred?: number;
    }
  /**
   * Ids of the round's dedup snapshot that a chunk reported and the server
   * did not answer removed: live on the server, so each starts a new life.
   * Sent before that chunk's sync.removed.
   */
  | { type: "sync.live"; projectIds: string[] }
  /**
   * Sent by the runtime when a removal's handlers have settled and the
   * tracker no longer holds the project (its `has` says so).
   */
  | { type: "removal.released"; projectId: string }
  /**
   * Sent once at the start of a round, before its first call: which of the
   * dedup window's ids (as given in the round's input) the daemon lists now
   * and which it does not.
   */
  | { type: "sync.listed"; present: string[]; absent: string[] }
  /** Raised by the connection region when a stream (re)opens: the heartbeat syncs at once. */
  | { type: "sync.request" }
  /**
   * Sent by the SyncProjectState actor when a call whose request reached the
   * wire passed its deadline (syncTimeoutMs): the call goes on while the
   * machine asks the connection (probeLink) whether to wait on or give up.
   */
  | { type: "sync.late"; timeoutMs: number }
  /** Raised by the heartbeat region when a sync timed out while streaming. */
  | { type: "connection.suspect" };

export type BridgeEmitted =
  | { type: "projectRemoved"; projectId: string; info: RemovalInfo; receivedAtMs: number }
  | { type: "duplicateSuppressed"; projectId: string; source: RemovalSource }
  | { type: "eventIgnored"; eventId: string; eventType: number; projectId: string; why: "empty_project_id" | "not_removed" }
  /** Ids not handed on because they failed the input checks or were never reported (previews only). */
  | { type: "idsRefused"; source: RemovalSource; refused: RefusedIds; eventId?: string }
  /** The server sent GOAWAY: the stream ended, the bridge reopens after a short delay. */
  | { type: "serverGoaway"; error: ErrorSummary }
  | { type: "streamFailed"; error: ErrorSummary; attempt: number; streak: number; suspect: boolean }
  | { type: "streamEnded"; attempt: number }
  | { type: "syncCompleted"; result: SyncResult }
  /** A heartbeat's deadline passed but the connection answered: the server is slow; the heartbeat slows down (wait × `slowdown`). */
  | { type: "serverSlow"; slowdown: number }
  /** `streak`: failures in a row with this code, 1 for the first. */
  | { type: "syncFailed"; error: ErrorSummary; suspect: boolean; streak: number };

/**
 * The parent an I/O actor sends its events to (the bridge actor's `self`).
 * Structural, so that these types (part of the package's root entry) do not
 * import xstate's declarations.
 */
export interface BridgeParentRef {
  send(event: BridgeEvent): void;
}

/** Input of the ProjectEvents actor. `parent` receives stream.opened / stream.events. */
export interface ProjectEventsInput {
  clientId: string;
  sessionEpoch: number;
  parent: BridgeParentRef;
}

/** Input of the SyncProjectState actor. `parent` receives sync.removed. */
export interface SyncProjectStateInput {
  clientId: string;
  sessionEpoch: number;
  /** The round's deadline per call: a sent call past it sends sync.late (when runOnMs is longer) or fails. */
  timeoutMs: number;
  /**
   * How long a sent call may run on after sync.late (from its start, ms)
   * while the machine waits for the probe or has found the link alive; the
   * call fails with SyncDeadlineError then. Defaults to timeoutMs: no run-on.
   */
  runOnMs?: number;
  parent: BridgeParentRef;
  /** The project ids of the dedup window at the round's start (at most dedupCapacity). Defaults to none. */
  windowIds?: string[];
}

/** Input of the link probe. */
export interface ProbeLinkInput {
  sessionEpoch: number;
  /** How long to wait for the answer, in ms. */
  timeoutMs: number;
}

/** The most removed ids one sync.removed event carries. */
export const SYNC_REMOVED_BATCH = 1000;
