import { BridgeError } from "../errors.js";
import { type ResolvedHttp2ListenerLimits, resolveHttp2ListenerLimits } from "../listener/http2-limits.js";
import type { CallCapacityOptions } from "./call-capacity.js";
import { ProjectStore } from "./project-store.js";

/** Certificate and key (PEM) for serving HTTPS (HTTP/2 over TLS, ALPN h2). */
export interface DevServerTlsOptions {
  cert: string | Buffer;
  key: string | Buffer;
}

/** Options of `startDevServer()`. */
export interface DevServerOptions {
  /**
   * Bearer token that every RPC but Ping must present. Defaults to none: no
   * authentication.
   */
  token?: string | undefined;
  /** Address to listen on. Defaults to "127.0.0.1" (loopback only). */
  host?: string | undefined;
  /** Port to listen on; 0 picks a free one. Defaults to 0. */
  port?: number | undefined;
  /** Serve HTTPS with this certificate. Defaults to none: plaintext HTTP/2 (h2c). */
  tls?: DevServerTlsOptions | undefined;
  /**
   * Project state to serve; pass `server.store` of a closed server to keep
   * its state across a restart. Defaults to a new, empty store.
   */
  store?: ProjectStore | undefined;
  /** Events buffered per open stream before further ones are dropped. Defaults to 64. */
  streamBufferSize?: number | undefined;
  /** Most project ids one SyncProjectState call may report. Defaults to 10000. */
  maxSyncIds?: number | undefined;
  /** A live project without a heartbeat this long is reported `unknown`. Defaults to 86400000 (24 h). */
  unknownAfterMs?: number | undefined;
  /** Wall clock in Unix milliseconds, for timestamps and heartbeats. Defaults to Date.now. */
  now?: (() => number) | undefined;
  /**
   * Send a ProjectEvents call's response headers as soon as the stream is
   * accepted, so a client sees it open at once. false sends them only with
   * the first event (or the status), as grpc-go does: a bridge then waits
   * its `openConfirmMs` before it calls the stream open. Defaults to true.
   */
  headersOnOpen?: boolean | undefined;
  /**
   * Streams (calls) one HTTP/2 session may have open at once: announced in
   * SETTINGS, enforced with REFUSED_STREAM. Defaults to 100.
   */
  maxConcurrentStreams?: number | undefined;
  /**
   * A call whose request message has not fully arrived after this many ms
   * (a half-open stream) is reset with CANCEL. Defaults to 5000.
   */
  requestTimeoutMs?: number | undefined;
  /**
   * HTTP/2 sessions one client address may hold. A new one over the cap
   * closes the oldest idle one (no call open); when none is idle it gets
   * GOAWAY at once. A session that opens no call within requestTimeoutMs
   * is closed too. Defaults to 64.
   */
  maxSessionsPerClient?: number | undefined;
  /** HTTP/2 sessions held at once, all clients together. Defaults to 256. */
  maxSessions?: number | undefined;
  /**
   * A finite capacity: every ProjectEvents open and SyncProjectState costs
   * one unit of work (as the engram server's bcrypt token check does);
   * see call-capacity.ts. Defaults to none: every call served at once.
   */
  capacity?: CallCapacityOptions | undefined;
}

/** DevServerOptions with every default filled in. */
export interface ResolvedDevServerOptions {
  token: string | undefined;
  host: string;
  port: number;
  tls: DevServerTlsOptions | undefined;
  store: ProjectStore;
  streamBufferSize: number;
  maxSyncIds: number;
  unknownAfterMs: number;
  now: () => number;
  headersOnOpen: boolean;
  limits: ResolvedHttp2ListenerLimits;
  capacity: CallCapacityOptions | undefined;
}

/** Fills in the defaults of DevServerOptions and rejects values that cannot work. */
export function validateDevServerOptions(options: DevServerOptions = {}): ResolvedDevServerOptions {
  const resolved: ResolvedDevServerOptions = {
    token: options.token,
    host: options.host ?? "127.0.0.1",
    port: options.port ?? 0,
    tls: options.tls,
    store: options.store ?? new ProjectStore(),
    streamBufferSize: options.streamBufferSize ?? 64,
    maxSyncIds: options.maxSyncIds ?? 10_000,
    unknownAfterMs: options.unknownAfterMs ?? 24 * 60 * 60 * 1000,
    now: options.now ?? Date.now,
    headersOnOpen: options.headersOnOpen ?? true,
    limits: resolveLimits(options),
    capacity: options.capacity,
  };
  if (resolved.token === "") throw invalid("token must not be empty (omit it to disable authentication)");
  if (!isInt(resolved.port, 0) || resolved.port > 65535) throw invalid(`port must be an integer in [0, 65535], got ${resolved.port}`);
  if (!isInt(resolved.streamBufferSize, 1)) throw invalid(`streamBufferSize must be a positive integer, got ${resolved.streamBufferSize}`);
  if (!isInt(resolved.maxSyncIds, 1)) throw invalid(`maxSyncIds must be a positive integer, got ${resolved.maxSyncIds}`);
  if (!(resolved.unknownAfterMs >= 0)) throw invalid(`unknownAfterMs must be >= 0, got ${resolved.unknownAfterMs}`);
  return resolved;
}

/** Options of `DevServer.shutdown()`. */
export interface DevServerShutdownOptions {
  /**
   * How long open calls may take to end by themselves before they are reset,
   * in ms (0 to 2147483647, Node's timer limit). Defaults to 5000.
   */
  timeoutMs?: number | undefined;
  /** Aborting it resets what is still open at once, as close() does. Defaults to none. */
  signal?: AbortSignal | undefined;
}

/** Longest delay a Node timer keeps (2^31 - 1 ms); anything above fires after 1 ms. */
const maxTimerMs = 2 ** 31 - 1;

/** Fills in the defaults of DevServerShutdownOptions and rejects a timeout Node's timers cannot keep. */
export function validateDevServerShutdownOptions(options: DevServerShutdownOptions = {}): {
  timeoutMs: number;
  signal: AbortSignal | undefined;
} {
  const timeoutMs = options.timeoutMs ?? 5000;
  if (!(timeoutMs >= 0 && timeoutMs <= maxTimerMs)) throw invalid(`shutdown timeoutMs must be in [0, ${maxTimerMs}], got ${timeoutMs}`);
  return { timeoutMs, signal: options.signal };
}

function resolveLimits(options: DevServerOptions): ResolvedHttp2ListenerLimits {
  try {
    return resolveHttp2ListenerLimits({
      maxConcurrentStreams: options.maxConcurrentStreams,
      requestTimeoutMs: options.requestTimeoutMs,
      maxSessionsPerClient: options.maxSessionsPerClient,
      maxSessions: options.maxSessions,
    });
  } catch (err) {
    throw invalid((err as Error).message);
  }
}

function isInt(value: number, min: number): boolean {
  return Number.isInteger(value) && value >= min;
}

function invalid(message: string): BridgeError {
  return new BridgeError(`dev server: ${message}`, "invalid_config");
}
