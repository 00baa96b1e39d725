/**
 * The sidecar's health endpoint (`run --health-port`): `GET /healthz`
 * answers 200 while the bridge streams, connects or backs off normally and
 * 503 when it is idle (refused to start), stopping, stopped, or backing off
 * from an error that retrying does not cure (a bad token, a server without
 * the RPC); the body is `{ healthy, reason, status }` with the bridge's
 * status() as JSON. `GET /metrics` answers the Prometheus exposition when a
 * collector is given. Binds to loopback unless told otherwise.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { BridgeStatus } from "../bridge-status.js";
import { BridgeError } from "../errors.js";
import { prometheusContentType } from "./prometheus-metrics.js";

/** Errors the bridge keeps retrying but that only an operator can cure. */
const permanentErrorCodes: readonly string[] = [
  "unauthenticated",
  "permission_denied",
  "unimplemented",
  "invalid_config",
  "insecure_token",
];

export interface Health {
  healthy: boolean;
  /** Why, in a few words. */
  reason: string;
}

/** Decides health from a status snapshot (see the module doc). */
export function healthOf(status: BridgeStatus): Health {
  const code = status.lastError?.code;
  switch (status.state) {
    case "streaming":
      return { healthy: true, reason: "streaming" };
    case "connecting":
    case "backoff":
      if (code !== undefined && permanentErrorCodes.includes(code)) return { healthy: false, reason: `${status.state} after ${code}` };
      return { healthy: true, reason: status.state };
    case "idle":
      if (status.idleReason !== null) return { healthy: false, reason: `refused to start: ${status.idleReason}` };
      return { healthy: false, reason: code === undefined ? "not started" : `refused to start: ${code}` };
    case "stopping":
    case "stopped":
      return { healthy: false, reason: status.state };
  }
}

export interface HealthServerOptions {
  /** The TCP port (0: any free one). */
  port: number;
  /** The address to bind. Defaults to "127.0.0.1". */
  host?: string | undefined;
  /** The bridge's status now. */
  status: () => BridgeStatus;
  /** The Prometheus exposition now; without it /metrics answers 404. Defaults to none. */
  metrics?: (() => Promise<string>) | undefined;
}

export interface HealthServer {
  /** `http://host:port` as bound. */
  readonly url: string;
  readonly port: number;
  /** Stops listening and closes every connection. Idempotent. */
  close(): Promise<void>;
}

/** Starts listening; rejects with a BridgeError when the address cannot be bound. */
export async function startHealthServer(options: HealthServerOptions): Promise<HealthServer> {
  const host = options.host ?? "127.0.0.1";
  const { status, metrics } = options;

  const answer = (res: ServerResponse, code: number, type: string, body: string): void => {
    res.writeHead(code, { "content-type": type, "cache-control": "no-store", "content-length": Buffer.byteLength(body) });
    res.end(body);
  };

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    // Nothing here reads a body: drop whatever is sent.
    req.resume();
    const path = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.setHeader("allow", "GET, HEAD");
      answer(res, 405, "text/plain; charset=utf-8", "method not allowed\n");
      return;
    }
    if (path === "/healthz") {
      const s = status();
      const health = healthOf(s);
      answer(res, health.healthy ? 200 : 503, "application/json", `${JSON.stringify({ ...health, status: s })}\n`);
      return;
    }
    if (path === "/metrics" && metrics !== undefined) {
      metrics().then(
        (text) => answer(res, 200, prometheusContentType, text),
        () => answer(res, 500, "text/plain; charset=utf-8", "metrics collection failed\n"),
      );
      return;
    }
    answer(res, 404, "text/plain; charset=utf-8", "not found: try /healthz or /metrics\n");
  });
  // Bounded: a probe or a scraper needs few connections and short headers.
  server.maxConnections = 64;
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;
  server.keepAliveTimeout = 5_000;
  server.maxHeadersCount = 50;

  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      reject(
        new BridgeError(`cannot listen on ${host}:${options.port} for --health-port: ${err.code ?? err.message}`, "unavailable", {
          cause: err,
        }),
      );
    };
    server.once("error", onError);
    server.listen({ port: options.port, host }, () => {
      server.off("error", onError);
      resolve();
    });
  });
  const { port, address, family } = server.address() as AddressInfo;
  const shown = family === "IPv6" ? `[${address}]` : address;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${shown}:${port}`,
    port,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
