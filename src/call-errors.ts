/**
 * Two ways a call ends that the statechart must tell apart from an error
 * with the same gRPC code, so they are told apart by class (the guards in
 * machines/bridge.machine.ts use instanceof; ErrorSummary keeps the code):
 *
 * - SyncDeadlineError: the bridge's own per-call deadline of a
 *   SyncProjectState call ran out. Only this marks the connection suspect;
 *   a DEADLINE_EXCEEDED that the server sent proves the link alive.
 * - ServerGoawayError: the server sent GOAWAY on the stream's HTTP/2
 *   session (graceful shutdown) and the client ended the ProjectEvents call
 *   once everything received had been handed on. The bridge reopens after
 *   a short jittered delay, without counting a failure. An injected
 *   EventsClient may throw it from its stream to ask for the same.
 */
import { BridgeError } from "./errors.js";

export class SyncDeadlineError extends BridgeError {
  /**
   * Whether the call's request had reached the wire when the deadline ran
   * out. One that never did (a token still being read, a stream slot the
   * server did not grant) proves nothing about the link: it fails the round
   * but does not make the connection suspect.
   */
  readonly sent: boolean;
  constructor(timeoutMs: number, options?: { cause?: unknown; sent?: boolean }) {
    const sent = options?.sent ?? true;
    super(
      sent
        ? `SyncProjectState got no answer within ${timeoutMs} ms`
        : `SyncProjectState was not sent within ${timeoutMs} ms (its request never reached the wire)`,
      "deadline_exceeded",
      options?.cause === undefined ? undefined : { cause: options.cause },
    );
    this.sent = sent;
  }
}

export class ServerGoawayError extends BridgeError {
  constructor(message = "the server is shutting down (HTTP/2 GOAWAY): ended the ProjectEvents stream to reopen on a fresh session") {
    super(message, "unavailable");
  }
}
