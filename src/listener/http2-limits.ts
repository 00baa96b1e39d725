/**
 * Hardening of an HTTP/2 listener (the dev server): what one client can hold
 * is bounded. Each session may have `maxConcurrentStreams` streams open
 * (announced in SETTINGS, so a conforming client queues the rest itself, and
 * enforced here with REFUSED_STREAM for one that does not conform); a stream
 * whose request message has not fully arrived within `requestTimeoutMs` is
 * reset with CANCEL (a half-open stream costs memory until then); a session
 * that opens no stream within `requestTimeoutMs` of connecting (an idle
 * socket, a client that never sends the preface) is closed; and the sessions
 * one client address may hold, and all clients together, are capped. A new
 * session over a cap makes room by closing the oldest held session that has
 * no stream open (idle sockets never lock a client out); only when every
 * held one is busy does the newcomer get GOAWAY ENHANCE_YOUR_CALM at once.
 */
import * as http2 from "node:http2";

/** Limits of one HTTP/2 listener; every field is optional. */
export interface Http2ListenerLimits {
  /** Streams open at once on one session. Defaults to 100. */
  maxConcurrentStreams?: number | undefined;
  /** A stream whose request (headers and message) has not ended after this many ms is reset. Defaults to 5000. */
  requestTimeoutMs?: number | undefined;
  /** Sessions (connections) one client address may hold. Defaults to 64. */
  maxSessionsPerClient?: number | undefined;
  /** Sessions held at once, all clients together. Defaults to 256. */
  maxSessions?: number | undefined;
}

/** Http2ListenerLimits with every default filled in. */
export interface ResolvedHttp2ListenerLimits {
  maxConcurrentStreams: number;
  requestTimeoutMs: number;
  maxSessionsPerClient: number;
  maxSessions: number;
}

/** What the limits did, plain JSON. */
export interface Http2ListenerStats {
  /** HTTP/2 sessions open now. */
  openSessions: number;
  /** New sessions closed at once because a session cap was reached and every held session was busy. */
  sessionsRefused: number;
  /** Idle sessions closed: to make room under a cap, or because they opened no stream in time. */
  sessionsShed: number;
  /** Streams refused because their session already had maxConcurrentStreams open. */
  streamsRefused: number;
  /** Streams reset because their request did not arrive within requestTimeoutMs. */
  requestsTimedOut: number;
}

const maxTimerMs = 2 ** 31 - 1;

/** Fills in the defaults; throws a RangeError naming a limit that cannot work. */
export function resolveHttp2ListenerLimits(limits: Http2ListenerLimits = {}): ResolvedHttp2ListenerLimits {
  const resolved = {
    maxConcurrentStreams: limits.maxConcurrentStreams ?? 100,
    requestTimeoutMs: limits.requestTimeoutMs ?? 5000,
    maxSessionsPerClient: limits.maxSessionsPerClient ?? 64,
    maxSessions: limits.maxSessions ?? 256,
  };
  for (const [name, value] of Object.entries(resolved)) {
    if (!Number.isInteger(value) || value < 1 || value > maxTimerMs) {
      throw new RangeError(`${name} must be an integer in [1, ${maxTimerMs}], got ${value}`);
    }
  }
  return resolved;
}

/** The server options that announce the limits (pass them to http2.createServer). */
export function http2LimitServerOptions(limits: ResolvedHttp2ListenerLimits): http2.ServerOptions {
  return { settings: { maxConcurrentStreams: limits.maxConcurrentStreams } };
}

/** Enforces `limits` on `server`'s sessions and streams; returns its counters. */
export function enforceHttp2Limits(
  server: http2.Http2Server | http2.Http2SecureServer,
  limits: ResolvedHttp2ListenerLimits,
): { stats(): Http2ListenerStats } {
  /** Held sessions, oldest first, with their client address and open streams. */
  const held = new Map<http2.ServerHttp2Session, { client: string; openStreams: number }>();
  let sessionsRefused = 0;
  let sessionsShed = 0;
  let streamsRefused = 0;
  let requestsTimedOut = 0;

  const heldBy = (client: string): number => {
    let n = 0;
    for (const state of held.values()) if (state.client === client) n++;
    return n;
  };
  /** Closes the oldest idle session (of `client` when given); false when every one is busy. */
  const shedIdle = (client: string | undefined): boolean => {
    for (const [session, state] of held) {
      if (state.openStreams > 0 || (client !== undefined && state.client !== client)) continue;
      sessionsShed++;
      held.delete(session);
      session.destroy();
      return true;
    }
    return false;
  };

  server.on("session", (session: http2.ServerHttp2Session) => {
    session.on("error", () => {});
    const client = session.socket?.remoteAddress ?? "unknown";
    const room =
      (heldBy(client) < limits.maxSessionsPerClient || shedIdle(client)) && (held.size < limits.maxSessions || shedIdle(undefined));
    if (!room) {
      sessionsRefused++;
      session.goaway(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
      session.destroy();
      return;
    }
    const state = { client, openStreams: 0 };
    held.set(session, state);
    // A session that never opens a stream only holds a socket.
    const idleTimer = setTimeout(() => {
      if (!held.has(session)) return;
      sessionsShed++;
      held.delete(session);
      session.destroy();
    }, limits.requestTimeoutMs);
    session.once("close", () => {
      clearTimeout(idleTimer);
      held.delete(session);
    });
    session.on("stream", (stream: http2.ServerHttp2Stream) => {
      clearTimeout(idleTimer);
      if (state.openStreams >= limits.maxConcurrentStreams) {
        streamsRefused++;
        stream.on("error", () => {});
        stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
        return;
      }
      state.openStreams++;
      const timer = setTimeout(() => {
        requestsTimedOut++;
        stream.close(http2.constants.NGHTTP2_CANCEL);
      }, limits.requestTimeoutMs);
      const requestEnded = (): void => clearTimeout(timer);
      // The request side ends when its last frame (END_STREAM) arrives; a
      // stream that is closed or answered early needs no timer either.
      if (stream.readableEnded) requestEnded();
      else stream.once("end", requestEnded);
      stream.once("close", () => {
        state.openStreams--;
        requestEnded();
      });
    });
  });
  return { stats: () => ({ openSessions: held.size, sessionsRefused, sessionsShed, streamsRefused, requestsTimedOut }) };
}
