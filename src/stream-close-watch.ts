/**
 * Guards a ProjectEvents call against an HTTP/2 stream that closes without a
 * gRPC status. connect-node 2.2 leaves the call pending forever when the
 * server's session goes away (GOAWAY, then the socket closes) in a way that
 * closes the stream with NO_ERROR before its trailers arrive: the bridge
 * would sit in `streaming` with no stream while heartbeats succeed on a new
 * session. Seen when a server restarts while a sync is in flight on the
 * stream's session (reproduced with a bare connect-node client).
 *
 * The watch wraps the call's iterable: once the underlying HTTP/2 stream has
 * closed, a call that makes no progress (its consumer still waiting for the
 * next message) within `graceMs` is aborted with an UNAVAILABLE error, so the
 * bridge backs off and reopens. Buffered messages are never cut short: any
 * message or end that arrives in the grace period counts as progress.
 */
import type { ClientHttp2Stream } from "node:http2";
import { BridgeError } from "./errors.js";

/** How long a closed stream may stay silent before the call is abandoned. */
export const STREAM_CLOSE_GRACE_MS = 100;

export interface StreamCloseWatch {
  /** The call's signal: aborts when the caller aborts or the stream is abandoned. */
  readonly signal: AbortSignal;
  /** Hands the HTTP/2 stream that carries the call to the watch. */
  attach(stream: ClientHttp2Stream): void;
  /** Wraps the call's messages; a call abandoned by the watch throws its UNAVAILABLE error. */
  wrap<T>(messages: AsyncIterable<T>): AsyncIterable<T>;
}

export function createStreamCloseWatch(callerSignal: AbortSignal, graceMs = STREAM_CLOSE_GRACE_MS): StreamCloseWatch {
  const controller = new AbortController();
  const onCallerAbort = () => controller.abort(callerSignal.reason);
  if (callerSignal.aborted) onCallerAbort();
  else callerSignal.addEventListener("abort", onCallerAbort, { once: true });
  let abandoned: BridgeError | undefined;
  let waiting = false;
  let finished = false;
  let progress = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;

  const done = () => {
    finished = true;
    if (timer !== undefined) clearTimeout(timer);
    callerSignal.removeEventListener("abort", onCallerAbort);
  };

  return {
    signal: controller.signal,
    attach(stream) {
      stream.once("close", () => {
        if (finished) return;
        const seen = progress;
        timer = setTimeout(() => {
          if (finished || !waiting || progress !== seen || controller.signal.aborted) return;
          abandoned = new BridgeError(
            `the HTTP/2 stream of ProjectEvents closed (RST ${stream.rstCode ?? "?"}) without a gRPC status: reopening`,
            "unavailable",
          );
          controller.abort(abandoned);
        }, graceMs);
      });
    },
    async *wrap<T>(messages: AsyncIterable<T>): AsyncIterable<T> {
      const it = messages[Symbol.asyncIterator]();
      try {
        for (;;) {
          waiting = true;
          let next: IteratorResult<T>;
          try {
            next = await it.next();
          } catch (reason) {
            throw abandoned ?? reason;
          } finally {
            waiting = false;
            progress++;
          }
          if (next.done) return;
          yield next.value;
        }
      } finally {
        done();
      }
    },
  };
}
