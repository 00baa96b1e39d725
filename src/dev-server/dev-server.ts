import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { type ProjectEvent, ProjectEventSchema, ProjectEventType } from "../gen/engram/v1/engram_pb.js";
import { BearerAuth, type TokensSeen } from "./bearer-auth.js";
import { createCallCapacity } from "./call-capacity.js";
import { CallLog, type LastClientIds, type SyncCallInfo } from "./call-log.js";
import {
  type DevServerOptions,
  type DevServerShutdownOptions,
  validateDevServerOptions,
  validateDevServerShutdownOptions,
} from "./dev-server-options.js";
import { earlyHeaders } from "./early-headers.js";
import { engramRoutes } from "./engram-service.js";
import { EventHub, type StreamClosedInfo, type StreamOpenedInfo } from "./event-hub.js";
import { FaultInjector } from "./fault-injection.js";
import { listenHttp2, type ShutdownResult } from "./http2-listener.js";
import { answerInvalidArgumentOnParseError } from "./invalid-message-status.js";
import type { ProjectStore } from "./project-store.js";
import { guardRequests } from "./request-guard.js";
import type { DevServerCode } from "./status-code-names.js";
import { waitUntil } from "./wait-until.js";

/** Largest request the dev server reads, as a default gRPC server: 4 MiB. */
const readMaxBytes = 4 * 1024 * 1024;
/** How long the waitFor…() helpers wait unless told. */
const defaultWaitTimeoutMs = 5000;

/** A raw event for emitEvent(); unset fields get the defaults noted. */
export interface EmitEventInit {
  /** Defaults to REMOVED; any number goes (unknown enum values included). */
  eventType?: ProjectEventType;
  /** Defaults to "" (an invalid event, on purpose). */
  projectId?: string;
  /** Defaults to "". */
  reason?: string;
  /** Defaults to now. */
  timestampUnixMs?: bigint;
  /** Defaults to none. */
  metadata?: Record<string, string>;
  /** Defaults to the next id of the global counter; "" stays empty. */
  eventId?: string;
}

/** What the dev server has seen and done, plain JSON. */
export interface DevServerStats {
  /** ProjectEvents streams open now. */
  openStreams: number;
  /** ProjectEvents streams accepted so far. */
  streamsOpened: number;
  /** ProjectEvents calls refused by rejectStreams(). */
  streamsRejected: number;
  /** Events handed to streams for sending. */
  eventsSent: number;
  /** Events dropped because a stream's buffer was full (one per stream and event). */
  eventsDropped: number;
  /** SyncProjectState calls that passed authentication. */
  syncCalls: number;
  /** Ids reported by the SyncProjectState calls that were answered. */
  syncIdsReported: number;
  /** SyncProjectState calls failed by failNextSyncs(). */
  syncFailuresInjected: number;
  /** Calls refused as Unauthenticated. */
  authFailures: number;
  /** Distinct bearer tokens presented per RPC (valid or not): the last 16 per RPC. */
  tokensSeen: TokensSeen;
  /** The last client_id each RPC presented. */
  lastClientIds: LastClientIds;
  /** HTTP/2 sessions (connections) open now. */
  openSessions: number;
  /** New sessions closed at once because maxSessionsPerClient or maxSessions was reached and every held session had a call open. */
  sessionsRefused: number;
  /** Idle sessions closed: to make room for a new one under those caps, or because they opened no call within requestTimeoutMs. */
  sessionsShed: number;
  /** Streams refused because their session already had maxConcurrentStreams open. */
  streamsRefused: number;
  /** Calls reset because their request message did not arrive within requestTimeoutMs. */
  requestsTimedOut: number;
}

/** How DevServer.shutdown() ended. */
export type DevServerShutdownResult = ShutdownResult;

/** A running dev server and its control surface for tests and demos. */
export interface DevServer {
  /** Base URL, e.g. "http://127.0.0.1:40123" ("https" with TLS). */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** The state; pass it to a new server to survive a restart. */
  readonly store: ProjectStore;
  /** Creates a live project (no event is sent). */
  createProject(id: string): void;
  /**
   * Marks `id` removed and sends a REMOVED event to every open stream (again
   * when it was removed already: delivery is at-least-once).
   */
  removeProject(id: string, reason?: string): ProjectEvent;
  /** Sends a raw event to every open stream without touching the store. */
  emitEvent(init?: EmitEventInit): ProjectEvent;
  /** Ends every open stream with Unavailable "stream dropped by server" after its buffered events; returns how many. */
  dropStreams(): number;
  /** Ends every open stream cleanly (OK) after its buffered events; returns how many. */
  endStreams(): number;
  /**
   * The next `n` authenticated SyncProjectState calls fail with `code`
   * (a Code or its name such as "permission_denied"; default Unavailable);
   * replaces any pending count, 0 clears it.
   */
  failNextSyncs(n: number, code?: DevServerCode): void;
  /** SyncProjectState answers after this delay (0 to 2147483647 ms), or fails as soon as the call is cancelled. */
  setSyncDelayMs(ms: number): void;
  /** While set, new ProjectEvents calls fail at once with `code` (a Code or its name); undefined lifts it. */
  rejectStreams(code: DevServerCode | undefined): void;
  /** Replaces the required bearer token (undefined: no authentication), e.g. to test rotation. */
  setToken(token: string | undefined): void;
  stats(): DevServerStats;
  /** Calls `listener` each time a ProjectEvents stream opens; returns the unsubscribe function. */
  onStreamOpened(listener: (info: StreamOpenedInfo) => void): () => void;
  /** Resolves when at least `n` streams are open; rejects after `timeoutMs` (default 5000) or on close. */
  waitForStreams(n: number, timeoutMs?: number): Promise<void>;
  /** Calls `listener` each time a stream stops being open (ended, cancelled, connection lost); returns the unsubscribe function. */
  onStreamClosed(listener: (info: StreamClosedInfo) => void): () => void;
  /** Resolves when at most `n` (default 0) streams are open; rejects after `timeoutMs` (default 5000) or on close. */
  waitForStreamsClosed(n?: number, timeoutMs?: number): Promise<void>;
  /** Calls `listener` for each SyncProjectState call past authentication; returns the unsubscribe function. */
  onSyncCall(listener: (info: SyncCallInfo) => void): () => void;
  /** Resolves when stats().syncCalls >= n; rejects after `timeoutMs` (default 5000) or on close. */
  waitForSyncCalls(n: number, timeoutMs?: number): Promise<void>;
  /**
   * Stops gracefully, like grpc-go's GracefulStop() but bounded: stops
   * listening, sends GOAWAY on every HTTP/2 session (the client opens no new
   * call on it), fails ProjectEvents calls that reach the server from now on
   * with UNAVAILABLE, and lets the open calls end by themselves (a client
   * ends its ProjectEvents stream when it sees the GOAWAY; events published
   * meanwhile still reach it). What is still open after `timeoutMs`, or when
   * `signal` aborts, is reset as close() does. Resolves when the listener is
   * closed, saying whether anything had to be reset. A second call joins the
   * shutdown under way (the earliest deadline wins); close() during it resets
   * what is left at once.
   */
  shutdown(options?: DevServerShutdownOptions): Promise<DevServerShutdownResult>;
  /**
   * Shuts down at once: stops listening, sends GOAWAY on every HTTP/2
   * session, then destroys them so in-flight streams are reset. Resolves
   * when the listener is closed. Idempotent.
   */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Starts the reference engram server on loopback; see DevServerOptions. */
export async function startDevServer(options?: DevServerOptions): Promise<DevServer> {
  const resolved = validateDevServerOptions(options);
  const { store, now } = resolved;
  const hub = new EventHub(resolved.streamBufferSize);
  const auth = new BearerAuth(resolved.token);
  const faults = new FaultInjector();
  const calls = new CallLog();
  /** Aborts when the server closes: the waitFor…() helpers give up. */
  const lifetime = new AbortController();
  /** Aborts when a shutdown or close begins: new ProjectEvents calls are refused. */
  const stopping = new AbortController();

  const headers = earlyHeaders(resolved.headersOnOpen);
  const handler = guardRequests(
    answerInvalidArgumentOnParseError(
      headers.wrap(
        connectNodeAdapter({
          routes: engramRoutes({
            options: resolved,
            hub,
            auth,
            faults,
            calls,
            stopping: stopping.signal,
            capacity: resolved.capacity && createCallCapacity(resolved.capacity),
          }),
          grpc: true,
          connect: false,
          grpcWeb: false,
          readMaxBytes,
          contextValues: headers.contextValues,
        }),
      ),
    ),
  );
  const listener = await listenHttp2(handler, resolved);

  const emitEvent = (init: EmitEventInit = {}): ProjectEvent => {
    const event = create(ProjectEventSchema, {
      eventId: init.eventId ?? store.nextEventId(),
      eventType: init.eventType ?? ProjectEventType.REMOVED,
      projectId: init.projectId ?? "",
      timestampUnixMs: init.timestampUnixMs ?? BigInt(Math.trunc(now())),
      reason: init.reason ?? "",
      metadata: init.metadata ?? {},
    });
    hub.publish(event);
    return event;
  };

  const close = async (): Promise<void> => {
    stopping.abort();
    lifetime.abort();
    await listener.close();
  };
  const shutdown = async (shutdownOptions?: DevServerShutdownOptions): Promise<DevServerShutdownResult> => {
    const { timeoutMs, signal } = validateDevServerShutdownOptions(shutdownOptions);
    stopping.abort();
    try {
      return await listener.shutdown({ timeoutMs, signal });
    } finally {
      lifetime.abort();
    }
  };

  return {
    url: listener.url,
    host: listener.host,
    port: listener.port,
    store,
    createProject: (id) => store.create(id, now()),
    removeProject(id, reason) {
      store.remove(id, now(), reason);
      return emitEvent({ eventType: ProjectEventType.REMOVED, projectId: id, reason: reason ?? "" });
    },
    emitEvent,
    dropStreams: () => hub.endAll(new ConnectError("stream dropped by server", Code.Unavailable)),
    endStreams: () => hub.endAll(),
    failNextSyncs: (n, code) => faults.failNextSyncs(n, code),
    setSyncDelayMs: (ms) => faults.setSyncDelayMs(ms),
    rejectStreams: (code) => faults.rejectStreams(code),
    setToken: (token) => auth.setToken(token),
    stats: () => ({
      ...hub.stats(),
      ...calls.stats(),
      syncFailuresInjected: faults.syncFailuresInjected,
      authFailures: auth.failures,
      tokensSeen: auth.tokensSeen(),
      ...listener.stats(),
    }),
    onStreamOpened: (cb) => hub.onStreamOpened(cb),
    waitForStreams: (n, timeoutMs = defaultWaitTimeoutMs) =>
      waitUntil({
        what: `waitForStreams(${n})`,
        ready: () => hub.openStreams >= n,
        describe: () => `${hub.openStreams} open`,
        subscribe: (onChange) => hub.onStreamOpened(onChange),
        timeoutMs,
        signal: lifetime.signal,
      }),
    onStreamClosed: (cb) => hub.onStreamClosed(cb),
    waitForStreamsClosed: (n = 0, timeoutMs = defaultWaitTimeoutMs) =>
      waitUntil({
        what: `waitForStreamsClosed(${n})`,
        ready: () => hub.openStreams <= n,
        describe: () => `${hub.openStreams} open`,
        subscribe: (onChange) => hub.onStreamClosed(onChange),
        timeoutMs,
        signal: lifetime.signal,
      }),
    onSyncCall: (cb) => calls.onSyncCall(cb),
    waitForSyncCalls: (n, timeoutMs = defaultWaitTimeoutMs) =>
      waitUntil({
        what: `waitForSyncCalls(${n})`,
        ready: () => calls.syncCallCount >= n,
        describe: () => `${calls.syncCallCount} calls`,
        subscribe: (onChange) => calls.onSyncCall(onChange),
        timeoutMs,
        signal: lifetime.signal,
      }),
    shutdown,
    close,
    [Symbol.asyncDispose]: close,
  };
}
