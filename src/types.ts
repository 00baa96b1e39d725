import type { ProjectEvent, ProjectEventsRequest, SyncProjectStateRequest, SyncProjectStateResponse } from "./gen/engram/v1/engram_pb.js";

/** Where a removal was learned from. */
export type RemovalSource = "stream" | "heartbeat";

/** What a handler learns about one removal besides the project id. */
export interface RemovalInfo {
  source: RemovalSource;
  /** The server's event id (stream removals only). */
  eventId?: string;
  /** The server's stated reason (stream removals only). */
  reason?: string;
  /** When the server says the removal happened (stream removals only). */
  timestampUnixMs?: number;
}

/** A module of the daemon that wants to hear about removed projects. */
export interface ProjectRemovalAware {
  /** Used in logs and metrics; defaults to the constructor name, else "handler#N". */
  readonly name?: string;
  onProjectRemoved(projectId: string, info: RemovalInfo): void | Promise<void>;
}

/** Tells the heartbeat which project ids the daemon holds live. */
export interface ProjectTracker {
  connectedProjectIds(): Iterable<string>;
  /**
   * Whether the daemon holds this project now. Optional: when present, a
   * stream removal of a held project is dispatched ahead of removals of
   * projects nobody holds. Must be cheap and must not throw.
   */
  has?(projectId: string): boolean;
}

/** pino-compatible logger: `(obj, msg)` at each level. */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** A timer source: XState's `Clock` shape (SimulatedClock fits). */
export interface Clock {
  setTimeout(fn: (...args: unknown[]) => void, timeout: number): unknown;
  clearTimeout(id: unknown): void;
}

/** Options of one ProjectEvents call. */
/** Where the bearer token comes from: read fresh for every call. */
export type TokenSource = () => Promise<string | undefined>;

export interface ProjectEventsCallOptions {
  signal: AbortSignal;
  /** Called once with the response headers, when the server sends them. */
  onHeader?: (headers: Headers) => void;
  /** Which HTTP/2 session generation to use; a new value asks for a fresh session. */
  sessionEpoch?: number;
  /**
   * Called once when the call's request reaches the wire (its token was
   * read, its HTTP/2 stream exists), by a client whose `signalsSent` is
   * true. Only a sent call can be confirmed open by `openConfirmMs`.
   */
  onSent?: () => void;
  /**
   * Called once when the call's transport stream is closed by a reset (or
   * otherwise destroyed) before this side read all of it. While its
   * dispatch queue is full the bridge does not read, so this is how it
   * learns at once that the stream is gone: it gives up what was left
   * unread (the reopen's resync covers tracked projects) and reconnects.
   */
  onClosed?: () => void;
}

/** Options of one SyncProjectState call. */
export interface SyncProjectStateCallOptions {
  signal: AbortSignal;
  timeoutMs: number;
  sessionEpoch?: number;
  /**
   * Called once when the request reaches the wire, by a client whose
   * `signalsSent` is true. A deadline that passes before it proves nothing
   * about the link, so it does not make the connection suspect.
   */
  onSent?: () => void;
}

/**
 * The two RPCs the bridge uses. The default is a connect-node gRPC client;
 * inject one to bypass URL, transport and TLS (tests, custom transports).
 */
export interface EventsClient {
  projectEvents(req: ProjectEventsRequest, opts: ProjectEventsCallOptions): AsyncIterable<ProjectEvent>;
  syncProjectState(req: SyncProjectStateRequest, opts: SyncProjectStateCallOptions): Promise<SyncProjectStateResponse>;
  /** Closes what the client owns (HTTP/2 sessions). Optional. */
  close?(): void;
  /**
   * Whether the connection that carries calls of `sessionEpoch` still
   * answers, asked when a heartbeat's own deadline passed while streaming:
   * true tells a slow server (its transport answers while its handlers are
   * saturated) from a dead link, so the stream is kept and the heartbeat
   * slows down. Must stay within keepalive enforcement (the default client
   * sends at most one HTTP/2 PING per five minutes per connection, more only
   * after the server sent headers since, which resets its ping strikes; it
   * never reuses an old answer). Optional:
   * without it a passed deadline makes the link suspect.
   */
  checkConnection?(opts: { signal: AbortSignal; sessionEpoch?: number; timeoutMs: number }): Promise<boolean>;
  /**
   * True when the client calls each call's `onSent` once its request is on
   * the wire. When false or absent, a call counts as sent as soon as it is
   * made.
   */
  readonly signalsSent?: boolean;
}
