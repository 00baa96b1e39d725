import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import type { DevServerTlsOptions } from "./dev-server-options.js";

type RequestHandler = (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void;

/** Where an HTTP/2 listener is bound, and how to shut it down. */
export interface Http2Listener {
  readonly host: string;
  readonly port: number;
  /** Base URL for clients: http://host:port, or https:// with TLS. */
  readonly url: string;
  /**
   * Shuts down like a real server: stops listening, sends GOAWAY on every
   * session, then destroys the sessions so in-flight streams are reset.
   * Resolves when the listener is closed. Idempotent.
   */
  close(): Promise<void>;
}

export interface ListenHttp2Options {
  host: string;
  port: number;
  tls: DevServerTlsOptions | undefined;
}

/** Serves `handler` over HTTP/2 (h2c, or h2 over TLS) and resolves once listening. */
export async function listenHttp2(handler: RequestHandler, options: ListenHttp2Options): Promise<Http2Listener> {
  const server = options.tls === undefined
    ? http2.createServer(handler)
    : http2.createSecureServer({ cert: options.tls.cert, key: options.tls.key, ALPNProtocols: ["h2"] }, handler);
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (session: http2.ServerHttp2Session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
    // A peer that vanishes mid-session is routine for a test server; without
    // a listener the session's "error" would crash the process.
    session.on("error", () => {});
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

  let closing: Promise<void> | undefined;
  return {
    host: options.host,
    port,
    url: `${scheme}://${hostInUrl}:${port}`,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        const open = [...sessions];
        // GOAWAY first, as a real server does; then reset whatever is still in flight.
        for (const session of open) session.close();
        for (const session of open) session.destroy();
      });
      return closing;
    },
  };
}
