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
 * message or end that arrives in the grace period counts as progress, and
 * the grace starts again at the next wait. The same watch ends the call
 * when the server sends GOAWAY on its session (a graceful shutdown waits
 * for open streams, grpc-go's GracefulStop without limit): once the
 * consumer has everything received and the stream stays silent for the
 * grace, the call ends with ServerGoawayError. The grace runs on the bridge
 * clock.
 */
import type { ClientHttp2Stream } from "node:http2";
import { ServerGoawayError } from "./call-errors.js";
import { BridgeError } from "./errors.js";
import { createLinkedAbortController } from "./signals.js";
import type { Clock } from "./types.js";

/** How long a closed (or GOAWAY'd) stream may stay silent before the call is ended. */
export const STREAM_CLOSE_GRACE_MS = 100;

export interface StreamCloseWatchOptions {
  /** Silence allowed after the close or GOAWAY, re-armed after each message. Defaults to STREAM_CLOSE_GRACE_MS. */
  graceMs?: number | undefined;
  /** The bridge clock the grace runs on. Defaults to Node's timers. */
  clock?: Clock | undefined;
}

export interface StreamCloseWatch {
  /** The call's signal: aborts when the caller aborts or the stream is abandoned. */
  readonly signal: AbortSignal;
  /** Hands the HTTP/2 stream that carries the call to the watch. */
  attach(stream: ClientHttp2Stream): void;
  /**
   * The server sent GOAWAY on the stream's session: once everything
   * received has been handed on (the consumer waits and nothing arrives
   * within the grace), the call ends with ServerGoawayError.
   */
  goaway(): void;
  /**
   * Wraps the call's messages; a call ended by the watch throws its error.
   * `explain` maps the error a call ends with (defaults to none).
   */
  wrap<T>(messages: AsyncIterable<T>, explain?: (reason: unknown) => unknown): AsyncIterable<T>;
}

const nodeClock: Clock = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (id) => clearTimeout(id as ReturnType<typeof setTimeout>),
};

export function createStreamCloseWatch(callerSignal: AbortSignal, options: StreamCloseWatchOptions = {}): StreamCloseWatch {
  const graceMs = options.graceMs ?? STREAM_CLOSE_GRACE_MS;
  const clock = options.clock ?? nodeClock;
  const controller = createLinkedAbortController(callerSignal);
  let abandoned: BridgeError | undefined;
  let waiting = false;
  let finished = false;
  /** Why the call should end once silent: the HTTP/2 stream closed, or the session got GOAWAY. */
  let closedStream: ClientHttp2Stream | undefined;
  let goingAway = false;
  let timer: unknown;
  let armed = false;

  const disarm = () => {
    if (armed) clock.clearTimeout(timer);
    armed = false;
  };
  // Armed whenever the consumer waits on a call that should end once silent;
  // any progress disarms it, and the next wait arms it again (re-armed, so a
  // call that hangs after a late message is still ended).
  const arm = () => {
    if (finished || armed || !waiting || controller.signal.aborted || (closedStream === undefined && !goingAway)) return;
    armed = true;
    timer = clock.setTimeout(() => {
      armed = false;
      if (finished || !waiting || controller.signal.aborted) return;
      abandoned =
        closedStream !== undefined
          ? new BridgeError(
              `the HTTP/2 stream of ProjectEvents closed (RST ${closedStream.rstCode ?? "?"}) without a gRPC status: reopening`,
              "unavailable",
            )
          : new ServerGoawayError();
      controller.abort(abandoned);
    }, graceMs);
  };
  const done = () => {
    finished = true;
    disarm();
    controller.cleanup();
  };

  return {
    signal: controller.signal,
    attach(stream) {
      stream.once("close", () => {
        closedStream = stream;
        arm();
      });
    },
    goaway() {
      goingAway = true;
      arm();
    },
    wrap<T>(messages: AsyncIterable<T>, explain: (reason: unknown) => unknown = (reason) => reason): AsyncIterable<T> {
      // A plain iterator, not an async generator: one promise per message
      // and no extra microtask hops on the bridge's hot path.
      const it = messages[Symbol.asyncIterator]();
      const settled = (next: IteratorResult<T>): IteratorResult<T> => {
        waiting = false;
        disarm();
        if (next.done === true) done();
        return next;
      };
      const failed = (reason: unknown): never => {
        waiting = false;
        done();
        throw explain(abandoned ?? reason);
      };
      const iterator: AsyncIterator<T> = {
        next() {
          if (finished) return Promise.resolve({ done: true, value: undefined });
          waiting = true;
          arm();
          let pending: Promise<IteratorResult<T>>;
          try {
            pending = it.next();
          } catch (reason) {
            return new Promise<IteratorResult<T>>(() => failed(reason));
          }
          return pending.then(settled, failed);
        },
        // The consumer stopped reading (its signal aborts the call itself).
        return(value?: unknown) {
          waiting = false;
          done();
          return Promise.resolve({ done: true, value: value as T });
        },
      };
      return { [Symbol.asyncIterator]: () => iterator };
    },
  };
}
