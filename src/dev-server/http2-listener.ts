import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import {
  enforceHttp2Limits,
  type Http2ListenerStats,
  http2LimitServerOptions,
  type ResolvedHttp2ListenerLimits,
} from "../listener/http2-limits.js";
import type { DevServerTlsOptions } from "./dev-server-options.js";

type RequestHandler = (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void;

/** How a graceful shutdown ended. */
export interface ShutdownResult {
  /** True when every open call ended by itself before the deadline (nothing was reset). */
  drained: boolean;
  /** Calls (HTTP/2 streams) still open at the deadline or abort, reset then. */
  callsReset: number;
  /** Milliseconds from the start of the shutdown until the listener closed. */
  elapsedMs: number;
}

/** Where an HTTP/2 listener is bound, and how to shut it down. */
export interface Http2Listener {
  readonly host: string;
  readonly port: number;
  /** Base URL for clients: http://host:port, or https:// with TLS. */
  readonly url: string;
  /** What the session and stream limits did. */
  stats(): Http2ListenerStats;
  /**
   * Shuts down gracefully, bounded: stops listening and sends GOAWAY on every
   * session (no new streams on it); open streams go on until they end or
   * until `timeoutMs` passes or `signal` aborts, when what is left is reset.
   * Resolves when the listener is closed. A second call or close() joins the
   * shutdown under way; each call's deadline counts, the earliest wins.
   */
  shutdown(options: { timeoutMs: number; signal?: AbortSignal | undefined }): Promise<ShutdownResult>;
  /**
   * Shuts down at once: stops listening, sends GOAWAY on every session, then
   * destroys the sessions so in-flight streams are reset (during a shutdown:
   * resets what is left now). Resolves when the listener is closed. Idempotent.
   */
  close(): Promise<void>;
}

export interface ListenHttp2Options {
  host: string;
  port: number;
  tls: DevServerTlsOptions | undefined;
  /** Session and stream limits (src/listener/http2-limits.ts). */
  limits: ResolvedHttp2ListenerLimits;
}

/** A shutdown under way: its outcome, and the reset that ends its wait. */
interface Stopping {
  result: Promise<ShutdownResult>;
  /** Destroys every session (resetting open streams); later calls do nothing. */
  reset(): void;
}

/** Serves `handler` over HTTP/2 (h2c, or h2 over TLS) and resolves once listening. */
export async function listenHttp2(handler: RequestHandler, options: ListenHttp2Options): Promise<Http2Listener> {
  const limitOptions = http2LimitServerOptions(options.limits);
  const server =
    options.tls === undefined
      ? http2.createServer(limitOptions, handler)
      : http2.createSecureServer({ ...limitOptions, cert: options.tls.cert, key: options.tls.key, ALPNProtocols: ["h2"] }, handler);
  const limits = enforceHttp2Limits(server, options.limits);
  const sessions = new Set<http2.ServerHttp2Session>();
  const streams = new Set<http2.ServerHttp2Stream>();
  let stopping: Stopping | undefined;
  let resetDone = false;
  server.on("session", (session: http2.ServerHttp2Session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
    // A peer that vanishes mid-session is routine for a test server; without
    // a listener the session's "error" would crash the process.
    session.on("error", () => {});
    session.on("stream", (stream: http2.ServerHttp2Stream) => {
      streams.add(stream);
      stream.once("close", () => streams.delete(stream));
    });
    // A connection accepted just before the listener closed.
    if (resetDone) session.destroy();
    else if (stopping !== undefined) session.close();
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  server.on("error", () => {});
  const { port } = server.address() as AddressInfo;
  const scheme = options.tls === undefined ? "http" : "https";
  const hostInUrl = options.host.includes(":") ? `[${options.host}]` : options.host;

  const beginStop = (): Stopping => {
    if (stopping !== undefined) return stopping;
    const startedMs = performance.now();
    let callsReset = 0;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    // GOAWAY first, as a real server does: the peer opens no new stream on
    // this session, and Node ends the session once its open streams ended.
    for (const session of sessions) session.close();
    stopping = {
      result: closed.then(() => ({ drained: callsReset === 0, callsReset, elapsedMs: performance.now() - startedMs })),
      reset() {
        if (resetDone) return;
        resetDone = true;
        callsReset = streams.size;
        for (const session of [...sessions]) session.destroy();
      },
    };
    return stopping;
  };

  return {
    host: options.host,
    port,
    url: `${scheme}://${hostInUrl}:${port}`,
    stats: () => limits.stats(),
    shutdown({ timeoutMs, signal }) {
      const stop = beginStop();
      if (signal?.aborted === true) stop.reset();
      const timer = setTimeout(() => stop.reset(), timeoutMs);
      const onAbort = (): void => stop.reset();
      signal?.addEventListener("abort", onAbort, { once: true });
      return stop.result.finally(() => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
      });
    },
    close() {
      const stop = beginStop();
      stop.reset();
      return stop.result.then(() => undefined);
    },
  };
}
