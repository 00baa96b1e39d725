/**
 * The sidecar's health endpoint (`run --health-port`): `GET /healthz`
 * answers 200 while the bridge streams, connects or backs off normally and
 * 503 when it is idle (refused to start), stopping, stopped, or backing off
 * from an error that retrying does not cure (a bad token, a server without
 * the RPC); the body is `{ healthy, reason, status }` with the bridge's
 * status() as JSON. `GET /metrics` answers the Prometheus exposition when a
 * collector is given (501 when the metrics SDK is not installed). Binds to
 * loopback unless told otherwise.
 *
 * Hardened as every listener (src/listener/): a request whose Host header
 * names neither a loopback name, an IP literal (a probe to a pod IP) nor the
 * bound host is refused with 403 (DNS rebinding); headers must arrive within
 * a second; idle and slow connections are shed for new ones, so they never
 * stall a probe.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { BridgeStatus } from "../bridge-status.js";
import { BridgeError } from "../errors.js";
import { createHostRule } from "../listener/host-rule.js";
import { createHardenedHttpServer, type HttpListenerLimits, type HttpListenerStats } from "../listener/http-limits.js";
import type { Logger } from "../types.js";
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
  /**
   * The Prometheus exposition now; without it /metrics answers 404. When it
   * rejects with a BridgeError "failed_precondition" (the metrics SDK is not
   * installed) /metrics answers 501 with its message. Defaults to none.
   */
  metrics?: (() => Promise<string>) | undefined;
  /**
   * Host names accepted in the Host header besides the loopback names, IP
   * literals and `host` itself (a DNS name a scraper uses). Defaults to none.
   */
  allowedHosts?: readonly string[] | undefined;
  /** Connection and timeout limits (see HttpListenerLimits). Defaults to its defaults. */
  limits?: HttpListenerLimits | undefined;
  /** Where a failing /metrics is reported (once per cause). Defaults to none. */
  logger?: Logger | undefined;
}

export interface HealthServer {
  /** `http://host:port` as bound. */
  readonly url: string;
  readonly port: number;
  /** Requests refused for their Host header, and what the connection limit did. */
  stats(): HttpListenerStats & { hostRefused: number };
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

  const hostRule = createHostRule({ names: [host, ...(options.allowedHosts ?? [])], allowIpLiterals: true });
  let boundPort = 0;
  let hostRefused = 0;
  let metricsUnavailableLogged = false;

  const { server, stats } = createHardenedHttpServer((req: IncomingMessage, res: ServerResponse) => {
    // Nothing here reads a body: drop whatever is sent.
    req.resume();
    if (!hostRule.allows(req.headers.host, boundPort)) {
      hostRefused++;
      answer(
        res,
        403,
        "text/plain; charset=utf-8",
        "forbidden: this Host is not allowed (use an IP address, localhost or the --health-host name)\n",
      );
      return;
    }
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
        (err: unknown) => {
          if (err instanceof BridgeError && err.code === "failed_precondition") {
            if (!metricsUnavailableLogged) options.logger?.warn({ code: err.code }, err.rawMessage);
            metricsUnavailableLogged = true;
            answer(res, 501, "text/plain; charset=utf-8", `${err.rawMessage}\n`);
            return;
          }
          answer(res, 500, "text/plain; charset=utf-8", "metrics collection failed\n");
        },
      );
      return;
    }
    answer(res, 404, "text/plain; charset=utf-8", "not found: try /healthz or /metrics\n");
  }, options.limits);

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
  boundPort = port;
  const shown = family === "IPv6" ? `[${address}]` : address;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${shown}:${port}`,
    port,
    stats: () => ({ ...stats(), hostRefused }),
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
