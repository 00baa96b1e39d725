/**
 * The default EventsClient: connect-node's gRPC transport over HTTP/2, a
 * bearer-token interceptor that covers unary and streaming calls alike, TLS
 * for https (system roots or a CA file), and a 4 MiB receive cap. It owns its
 * HTTP/2 session and opens a fresh one when the bridge asks for a new
 * session epoch (a suspect connection).
 */
import { readFileSync } from "node:fs";
import type * as http2 from "node:http2";
import { isIP } from "node:net";
import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport, type Http2SessionManager } from "@connectrpc/connect-node";
import { createBearerInterceptor } from "./bearer-interceptor.js";
import type { TokenSource } from "./types.js";
import { BridgeError } from "./errors.js";
import { EngramService } from "./gen/engram/v1/engram_pb.js";
import { GuardedSessionManager } from "./guarded-session-manager.js";
import { loopbackLookup } from "./loopback-lookup.js";
import type { ServerAddress } from "./server-url.js";
import { createStreamCloseWatch, type StreamCloseWatch } from "./stream-close-watch.js";
import { explainTransportError } from "./transport-error.js";
import type { Clock, EventsClient } from "./types.js";

/** Received messages are capped at 4 MiB. */
export const READ_MAX_BYTES = 4 * 1024 * 1024;

export interface GrpcEventsClientOptions {
  /** The parsed server address (see parseServerUrl). */
  address: ServerAddress;
  /** Read for every call; no header is sent when it yields "" or undefined. Defaults to no token. */
  token?: TokenSource | undefined;
  /** PEM file with the CA to trust for https instead of the system roots. Defaults to the system roots. */
  tlsCaFile?: string | undefined;
  /** Cap on one received message. Defaults to 4 MiB. */
  readMaxBytes?: number | undefined;
  /** The bridge clock, for the stream-close watch's grace. Defaults to Node's timers. */
  clock?: Clock | undefined;
}

/**
 * Slack added to the deadline connect-node and the server get for a
 * SyncProjectState call (grpc-timeout), so the bridge's own deadline on its
 * clock always runs out first: only that one marks the connection suspect.
 */
export const SERVER_DEADLINE_SLACK_MS = 1000;

export function createGrpcEventsClient(options: GrpcEventsClientOptions): EventsClient & { close(): void } {
  const { address } = options;
  const sessionOptions: http2.SecureClientSessionOptions = {};
  // A name the token check called loopback is pinned to 127.0.0.1/::1 here:
  // no resolver decides where a plaintext token goes.
  if (address.loopback && isIP(address.host) === 0) sessionOptions.lookup = loopbackLookup;
  if (address.secure && options.tlsCaFile !== undefined) {
    try {
      sessionOptions.ca = readFileSync(options.tlsCaFile);
    } catch (cause) {
      throw new BridgeError(`cannot read the TLS CA file ${options.tlsCaFile}`, "invalid_config", { cause });
    }
  }
  // Node sends an IPv6 address as `:authority` without brackets (`::1:443`),
  // which is no valid authority (RFC 3986 §3.2.2) and which strict servers refuse.
  const authority = isIP(address.host) === 6 ? `[${address.host}]:${address.port}` : undefined;
  const interceptors = options.token ? [createBearerInterceptor(options.token)] : [];
  let current: { epoch: number; manager: Http2SessionManager; client: Client<typeof EngramService> } | undefined;
  let closed = false;
  // The watch of the ProjectEvents call in flight (the bridge holds at most one).
  let streamWatch: StreamCloseWatch | undefined;
  const onRequest = (path: string, stream: http2.ClientHttp2Stream) => {
    if (!path.endsWith("/ProjectEvents") || !streamWatch) return;
    const watch = streamWatch;
    watch.attach(stream);
    // GOAWAY on the stream's session: a graceful shutdown, which waits for
    // this stream. End it once what was received is handed on; connect-node
    // opens a fresh session for the next call.
    const session = stream.session;
    if (session === undefined) return;
    const onGoaway = () => watch.goaway();
    session.once("goaway", onGoaway);
    stream.once("close", () => session.off("goaway", onGoaway));
  };

  function clientFor(epoch = 0): Client<typeof EngramService> {
    if (closed) throw new BridgeError("the gRPC client is closed", "canceled");
    if (current && current.epoch === epoch) return current.client;
    current?.manager.abort();
    // No HTTP/2 PINGs: a default gRPC server allows one per 5 minutes and
    // answers more with GOAWAY ENHANCE_YOUR_CALM. Half-open links are found by
    // the heartbeat deadline instead (DESIGN.md "connection suspect").
    const manager = new GuardedSessionManager(onRequest, authority, address.baseUrl, {}, sessionOptions);
    const transport = createGrpcTransport({
      baseUrl: address.baseUrl,
      sessionManager: manager,
      interceptors,
      readMaxBytes: options.readMaxBytes ?? READ_MAX_BYTES,
    });
    current = { epoch, manager, client: createClient(EngramService, transport) };
    return current.client;
  }

  return {
    projectEvents(req, opts) {
      const watch = createStreamCloseWatch(opts.signal, { clock: options.clock });
      streamWatch = watch;
      const messages = clientFor(opts.sessionEpoch).projectEvents(req, {
        signal: watch.signal,
        ...(opts.onHeader ? { onHeader: opts.onHeader } : {}),
      });
      return watch.wrap(messages, explainTransportError);
    },
    syncProjectState(req, opts) {
      return clientFor(opts.sessionEpoch)
        .syncProjectState(req, { signal: opts.signal, timeoutMs: opts.timeoutMs + SERVER_DEADLINE_SLACK_MS })
        .catch((reason: unknown) => Promise.reject(explainTransportError(reason)));
    },
    close() {
      closed = true;
      current?.manager.abort();
      current = undefined;
    },
  };
}
