/**
 * The link probe of the built-in client (EventsClient.checkConnection):
 * after a heartbeat call passed its deadline, does the connection still
 * answer? One HTTP/2 PING, within gRPC keepalive enforcement.
 */
import type * as http2 from "node:http2";
import type { Clock } from "./types.js";

/**
 * Keepalive enforcement of a default gRPC server: one PING per five minutes
 * (grpc-go MinTime, gRPC core min_ping_interval_without_data); more are
 * strikes, answered with GOAWAY ENHANCE_YOUR_CALM after two, unless the
 * server sent headers or data since the last PING (which resets the strikes:
 * grpc-go's resetPingStrikes, gRPC core's ping clock). The probe stays under
 * it: per session, one PING per interval, more only after such a sign of life.
 */
export const MIN_PING_INTERVAL_MS = 5 * 60 * 1000;

const lastPings = new WeakMap<http2.Http2Session, { atMs: number }>();
/** When each session last showed a sign of life: response headers or trailers of a call on it. */
const lastActivity = new WeakMap<http2.Http2Session, number>();

/** Notes a sign of life on `session` (performance.now() time). */
export function noteSessionActivity(session: http2.Http2Session | undefined): void {
  if (session !== undefined) lastActivity.set(session, performance.now());
}

/** The sessions a probe may ask: the late call's, and the stream's. */
export interface ProbedSessions {
  /** The session of the latest SyncProjectState call (the late one). */
  call: http2.Http2Session | undefined;
  /** The session of the latest ProjectEvents call (the stream's). */
  stream: http2.Http2Session | undefined;
}

const open = (s: http2.Http2Session | undefined): s is http2.Http2Session => s !== undefined && !s.destroyed && !s.closed;

/**
 * Whether the connection answers (true: a slow server, false: suspect).
 *
 * - The late call's session received a GOAWAY (closed, not destroyed: it
 *   drains its calls, and no call can start on it, so the GOAWAY came during
 *   the late call): the server spoke since; true, and the run-on still bounds
 *   the call.
 * - Else the late call's session (or the stream's, before any call) is
 *   PINGed; no PING allowed there (no sign of life since the last one) is
 *   false: an old answer is never reused.
 * - When the stream has a session of its own (a server that grants one
 *   concurrent stream per session), it is PINGed too where a PING is
 *   allowed, so a dead stream link is not hidden behind a live heartbeat
 *   session; where none is allowed (the stream sends no headers, so one
 *   PING per five minutes) the call's session answers for both.
 */
export async function probeLink(
  sessions: ProbedSessions,
  timeoutMs: number,
  signal: AbortSignal,
  clock: Clock | undefined,
): Promise<boolean> {
  const { call, stream } = sessions;
  if (call !== undefined && call.closed && !call.destroyed) return true;
  const first = open(call) ? call : open(stream) ? stream : undefined;
  if (first === undefined) return false;
  const second = first !== stream && open(stream) ? stream : undefined;
  const [a, b] = await Promise.all([
    pingOnce(first, timeoutMs, signal, clock),
    second === undefined ? Promise.resolve(undefined) : pingOnce(second, timeoutMs, signal, clock),
  ]);
  return a === true && b !== false;
}

/**
 * Whether `session` answers an HTTP/2 PING within `timeoutMs` (on the
 * bridge clock when given); undefined when no PING may go out now: within
 * MIN_PING_INTERVAL_MS of the last PING on this session, and no headers or
 * trailers from the server since. A check that was abandoned (its signal
 * aborted) is not remembered.
 */
function pingOnce(
  session: http2.Http2Session,
  timeoutMs: number,
  signal: AbortSignal,
  clock: Clock | undefined,
): Promise<boolean | undefined> {
  // An abandoned check sends no PING and is not remembered (an abort listener added now would never fire).
  if (signal.aborted) return Promise.resolve(false);
  const nowMs = performance.now();
  const last = lastPings.get(session);
  if (
    last !== undefined &&
    nowMs - last.atMs < MIN_PING_INTERVAL_MS &&
    !((lastActivity.get(session) ?? Number.NEGATIVE_INFINITY) > last.atMs)
  ) {
    return Promise.resolve(undefined);
  }
  return new Promise<boolean>((resolve) => {
    let done = false;
    const finish = (answered: boolean, remember: boolean) => {
      if (done) return;
      done = true;
      if (clock) clock.clearTimeout(timer);
      else clearTimeout(timer as ReturnType<typeof setTimeout>);
      signal.removeEventListener("abort", onAbort);
      if (remember) lastPings.set(session, { atMs: nowMs });
      resolve(answered);
    };
    const onAbort = () => finish(false, false);
    const timer: unknown = clock
      ? clock.setTimeout(() => finish(false, true), timeoutMs)
      : setTimeout(() => finish(false, true), timeoutMs);
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      const sent = session.ping((err) => finish(err === null || err === undefined, true));
      if (!sent) finish(false, false);
    } catch {
      finish(false, false);
    }
  });
}
