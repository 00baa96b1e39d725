/**
 * How the bridge's emitted events become log lines: which level, which
 * fields, and the loud-once rule (an auth or unimplemented failure is logged
 * at error once per streak, then at debug). Only log lines: the bridge's
 * bookkeeping and dispatch listen to the same events elsewhere.
 */
import type { Actor } from "xstate";
import type { BridgeMachine } from "../machines/bridge.machine.js";
import type { BridgeEmitted } from "../machines/bridge.types.js";
import type { ConnectionChange } from "./bridge-connection-events.js";
import { summarizeError, type ErrorSummary } from "./errors.js";
import type { Logger } from "./types.js";

/** Codes that are logged once per streak (at error) rather than on every failure. */
export const LOUD_ONCE_CODES: readonly string[] = ["unauthenticated", "permission_denied", "unimplemented"];

/** How many of the server's `unknown` ids a log line shows. */
export const UNKNOWN_PREVIEW_IDS = 5;

/** A clock difference with the server past this is warned about after a heartbeat. */
export const CLOCK_SKEW_WARN_MS = 30_000;

export interface BridgeLogPolicyOptions {
  /** Where the lines go (already wrapped by safeLogger). */
  logger: Logger;
  /** The wait the last backoff (or GOAWAY reopen) delay armed, for the line that announces it. */
  retryInMs: () => number | undefined;
}

export interface BridgeLogPolicy {
  /**
   * Logs a change of the flattened connection state: one info line per
   * change, `connection <state>` with the previous state, the attempt and,
   * in backoff, the error and the wait.
   */
  connectionChanged(change: ConnectionChange): void;
  /** Logs the statechart's own failure. */
  statechartFailed(reason: unknown): void;
}

type Emitted<T extends BridgeEmitted["type"]> = Extract<BridgeEmitted, { type: T }>;

/** Listens to every event the actor emits and logs it by the policy above. */
export function attachBridgeLogPolicy(actor: Actor<BridgeMachine>, options: BridgeLogPolicyOptions): BridgeLogPolicy {
  const { logger: log, retryInMs } = options;

  actor.on("projectRemoved", (e) =>
    log.info({ projectId: e.projectId, source: e.info.source, eventId: e.info.eventId }, "project removed"),
  );
  actor.on("duplicateSuppressed", (e) => log.debug({ projectId: e.projectId, source: e.source }, "duplicate removal suppressed"));
  actor.on("eventIgnored", (e) =>
    log.debug({ eventId: e.eventId, eventType: e.eventType, projectId: e.projectId, why: e.why }, "project event ignored"),
  );
  actor.on("streamFailed", (e) => logStreamFailure(log, e, retryInMs()));
  actor.on("streamEnded", (e) =>
    log.warn({ attempt: e.attempt, retryInMs: retryInMs() }, "the server ended the ProjectEvents stream; reconnecting after backoff"),
  );
  actor.on("serverGoaway", (e) =>
    log.info(
      { err: e.error, retryInMs: retryInMs() },
      "the server is shutting down (GOAWAY): ended the stream, reopening on a fresh session",
    ),
  );
  actor.on("idsRefused", (e) => logRefusedIds(log, e));
  // The server's `unknown` answer (live projects without a heartbeat for
  // 24 h) asks nothing of this bridge: once at info with a count and a few
  // ids, then with every heartbeat at debug.
  let unknownReported = false;
  actor.on("syncCompleted", ({ result }) => {
    log.debug({ reported: result.reported, removed: result.removed.length, unknown: result.unknown.length }, "heartbeat synced");
    if (result.unknown.length > 0) {
      const fields = { count: result.unknown.length, preview: result.unknown.slice(0, UNKNOWN_PREVIEW_IDS) };
      const msg = "the server reports live projects without a heartbeat for 24 h (unknown); nothing to do here";
      if (unknownReported) {
        log.debug(fields, msg);
      } else {
        unknownReported = true;
        log.info(fields, `${msg} (later reports are logged at debug)`);
      }
    }
    if (Math.abs(result.skewMs) > CLOCK_SKEW_WARN_MS) {
      log.warn({ skewMs: result.skewMs }, "clock skew between this machine and the engram server exceeds 30 s");
    }
  });
  actor.on("syncFailed", (e) => logSyncFailure(log, e));

  return {
    connectionChanged: ({ state, previous, attempt, error, retryInMs: wait }) =>
      log.info(
        { state, previous, attempt, ...(error !== undefined ? { err: error } : {}), ...(wait !== undefined ? { retryInMs: wait } : {}) },
        `connection ${state}`,
      ),
    statechartFailed: (reason) => log.error({ err: summarizeError(reason) }, "the bridge statechart failed"),
  };
}

function logStreamFailure(log: Logger, e: Emitted<"streamFailed">, retryInMs: number | undefined): void {
  const fields = { err: e.error, attempt: e.attempt, streak: e.streak, retryInMs };
  if (LOUD_ONCE_CODES.includes(e.error.code)) {
    if (e.streak === 1) {
      log.error(
        fields,
        `ProjectEvents failed with ${e.error.code} (${loudHint(e.error)}); backing off, further failures of this streak are logged at debug`,
      );
    } else {
      log.debug(fields, "ProjectEvents failed again");
    }
    return;
  }
  // The wait is the retryInMs field (the message text stays stable for log matchers).
  log.warn(
    fields,
    e.suspect ? "connection suspect: reopening on a fresh HTTP/2 session" : "ProjectEvents failed; reconnecting after backoff",
  );
}

function logSyncFailure(log: Logger, e: Emitted<"syncFailed">): void {
  const fields = { err: e.error, suspect: e.suspect, streak: e.streak };
  if (LOUD_ONCE_CODES.includes(e.error.code)) {
    // As the stream: once per streak at error, then at debug.
    if (e.streak === 1) {
      log.error(
        fields,
        `heartbeat failed with ${e.error.code} (${loudHint(e.error)}); further failures of this streak are logged at debug`,
      );
    } else {
      log.debug(fields, "heartbeat failed again");
    }
    return;
  }
  log.warn(fields, e.suspect ? "heartbeat timed out while streaming: reopening the connection" : "heartbeat failed");
}

function logRefusedIds(log: Logger, e: Emitted<"idsRefused">): void {
  log.warn(
    {
      source: e.source,
      why: e.refused.why,
      count: e.refused.count,
      preview: e.refused.previews,
      ...(e.eventId ? { eventId: e.eventId } : {}),
    },
    e.refused.why === "not_reported"
      ? `dropped ${e.refused.count} heartbeat removal(s) for ids this bridge never reported`
      : `refused ${e.refused.count} project id(s) from the server (${e.refused.why === "too_long" ? "longer than 512 bytes" : "control characters"})`,
  );
}

/** What a loud-once line tells the operator to check. */
function loudHint(error: ErrorSummary): string {
  if (error.code !== "unimplemented") return "check ENGRAM_TOKEN";
  return /^HTTP \d{3}\b/.test(error.message)
    ? `no gRPC service answers at this URL (${error.message}): check ENGRAM_URL`
    : "the server is too old for this RPC";
}
