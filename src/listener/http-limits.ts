/**
 * Hardening of the plain HTTP/1 listeners (the health server; the
 * inspector's limits are its own): a header timeout Node enforces within
 * about a second, and a connection limit that sheds the oldest idle socket
 * for a new one instead of refusing the newcomer, so idle or slow (slowloris)
 * connections can never stall a liveness probe.
 *
 * Why both: Node checks `headersTimeout` and `requestTimeout` only every
 * `connectionsCheckingInterval` (30 s by default), so a 10 s header timeout
 * really lasted up to 40 s; and `server.maxConnections` refuses the new
 * connection, which is the probe, while the idle ones stay.
 */
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";

/** Limits of one HTTP/1 listener; every field is optional. */
export interface HttpListenerLimits {
  /** Time a client has to send a request's headers, from connecting or from the previous response. Defaults to 1000. */
  headersTimeoutMs?: number | undefined;
  /** Time a client has to send a whole request. Defaults to 5000. */
  requestTimeoutMs?: number | undefined;
  /** How often Node checks the two timeouts above. Defaults to 250. */
  checkIntervalMs?: number | undefined;
  /** An idle keep-alive connection is closed after this. Defaults to 2000. */
  keepAliveTimeoutMs?: number | undefined;
  /**
   * Connections held at once. A connection over the limit makes room by
   * closing the oldest connection that is not being answered right now (idle
   * keep-alive or still sending headers); only when every one is being
   * answered is the newcomer closed. Defaults to 64.
   */
  maxConnections?: number | undefined;
  /** Headers per request. Defaults to 50. */
  maxHeadersCount?: number | undefined;
  /** Bytes of request headers. Defaults to 8192. */
  maxHeaderSizeBytes?: number | undefined;
}

/** What the connection limit did, plain JSON. */
export interface HttpListenerStats {
  /** Connections open now. */
  openConnections: number;
  /** Idle or slow connections closed to make room for a new one. */
  connectionsShed: number;
  /** New connections closed because every held one was being answered. */
  connectionsRefused: number;
}

/** A hardened HTTP/1 server, not yet listening. */
export interface HardenedHttpServer {
  readonly server: Server;
  stats(): HttpListenerStats;
  /** Marks a connection long-lived (an upgraded WebSocket): the limit never sheds it. */
  keep(socket: Socket): void;
}

/** The limits with their defaults filled in. */
export function resolveHttpListenerLimits(limits: HttpListenerLimits = {}): Required<{ [K in keyof HttpListenerLimits]: number }> {
  const resolved = {
    headersTimeoutMs: limits.headersTimeoutMs ?? 1000,
    requestTimeoutMs: limits.requestTimeoutMs ?? 5000,
    checkIntervalMs: limits.checkIntervalMs ?? 250,
    keepAliveTimeoutMs: limits.keepAliveTimeoutMs ?? 2000,
    maxConnections: limits.maxConnections ?? 64,
    maxHeadersCount: limits.maxHeadersCount ?? 50,
    maxHeaderSizeBytes: limits.maxHeaderSizeBytes ?? 8192,
  };
  for (const [name, value] of Object.entries(resolved)) {
    if (!Number.isInteger(value) || value < 1 || value > 2 ** 31 - 1) {
      throw new RangeError(`listener limit ${name} must be an integer in [1, ${2 ** 31 - 1}], got ${value}`);
    }
  }
  if (resolved.requestTimeoutMs < resolved.headersTimeoutMs) {
    throw new RangeError(
      `listener limit requestTimeoutMs (${resolved.requestTimeoutMs}) must be >= headersTimeoutMs (${resolved.headersTimeoutMs})`,
    );
  }
  return resolved;
}

/** Creates an HTTP/1 server with `handler` and the limits above (see the module doc). */
export function createHardenedHttpServer(handler: RequestListener, limits: HttpListenerLimits = {}): HardenedHttpServer {
  const l = resolveHttpListenerLimits(limits);
  const server = createServer(
    {
      headersTimeout: l.headersTimeoutMs,
      requestTimeout: l.requestTimeoutMs,
      connectionsCheckingInterval: l.checkIntervalMs,
      keepAliveTimeout: l.keepAliveTimeoutMs,
      maxHeaderSize: l.maxHeaderSizeBytes,
    },
    handler,
  );
  server.maxHeadersCount = l.maxHeadersCount;

  /** Open connections, oldest first, each with the number of requests being answered on it. */
  const connections = new Map<Socket, { answering: number }>();
  let connectionsShed = 0;
  let connectionsRefused = 0;
  server.on("connection", (socket: Socket) => {
    const state = { answering: 0 };
    connections.set(socket, state);
    socket.once("close", () => connections.delete(socket));
    if (connections.size <= l.maxConnections) return;
    for (const [held, heldState] of connections) {
      if (held === socket || heldState.answering > 0) continue;
      connectionsShed++;
      connections.delete(held);
      held.destroy();
      return;
    }
    connectionsRefused++;
    connections.delete(socket);
    socket.destroy();
  });
  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    const state = connections.get(req.socket);
    if (state === undefined) return;
    state.answering++;
    let done = false;
    const finished = (): void => {
      if (done) return;
      done = true;
      state.answering--;
    };
    res.once("finish", finished);
    res.once("close", finished);
  });
  return {
    server,
    stats: () => ({ openConnections: connections.size, connectionsShed, connectionsRefused }),
    keep(socket) {
      const state = connections.get(socket);
      if (state !== undefined) state.answering = Number.POSITIVE_INFINITY;
    },
  };
}
