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
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { createBearerInterceptor, type TokenSource } from "./bearer-interceptor.js";
import { EngramService } from "./gen/engram/v1/engram_pb.js";
import { BridgeError } from "./errors.js";
import type { Clock, EventsClient } from "./types.js";
import type { ServerAddress } from "./server-url.js";
import { loopbackLookup } from "./loopback-lookup.js";
import { createStreamCloseWatch, type StreamCloseWatch } from "./stream-close-watch.js";

export { createBearerInterceptor, type TokenSource } from "./bearer-interceptor.js";

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
    const manager = new GuardedSessionManager(onRequest, address.baseUrl, {}, sessionOptions);
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
      const watch = createStreamCloseWatch(opts.signal, options.clock ? { clock: options.clock } : {});
      streamWatch = watch;
      const messages = clientFor(opts.sessionEpoch).projectEvents(req, {
        signal: watch.signal,
        ...(opts.onHeader ? { onHeader: opts.onHeader } : {}),
      });
      return explainStreamErrors(watch.wrap(messages));
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

/**
 * connect-node's session manager removes its "error" listener from a session
 * it leaves (abort(), or a new connection after a failure). When that session
 * was already destroyed by an error, Node emits the "error" only once its
 * socket has closed, a turn later, with no listener left, and the process
 * dies of an unhandled 'error' event (seen with an HTTP/1.1 server and
 * stop() at the moment of the failure). Every session a request used gets a
 * listener of its own; connect-node still handles the error itself.
 */
class GuardedSessionManager extends Http2SessionManager {
  constructor(
    private readonly onRequest: (path: string, stream: http2.ClientHttp2Stream) => void,
    ...args: ConstructorParameters<typeof Http2SessionManager>
  ) {
    super(...args);
  }

  override async request(...args: Parameters<Http2SessionManager["request"]>): Promise<http2.ClientHttp2Stream> {
    const stream = await super.request(...args);
    this.onRequest(args[1], stream);
    const session = stream.session;
    if (session !== undefined && !guardedSessions.has(session)) {
      guardedSessions.add(session);
      session.on("error", ignoreSessionError);
    }
    return stream;
  }
}

const guardedSessions = new WeakSet<http2.Http2Session>();
function ignoreSessionError(): void {}

/** Node error codes of a server certificate that cannot be trusted. */
const untrustedCertificateCodes = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "CERT_UNTRUSTED",
  "CERT_SIGNATURE_FAILURE",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);

/**
 * Says what a person can do about transport failures whose text alone is
 * cryptic: an untrusted TLS certificate ("unable to verify the first
 * certificate") and a peer that does not speak HTTP/2 ("Protocol error").
 * Keeps the code; the original error stays as `cause`. Anything else is
 * returned unchanged.
 */
export function explainTransportError(reason: unknown): unknown {
  const chain: Array<{ code?: unknown; message?: unknown }> = [];
  for (let e: unknown = reason; e instanceof Error && chain.length < 8; e = (e as { cause?: unknown }).cause) chain.push(e);
  const nodeCode = (e: { code?: unknown }) => (typeof e.code === "string" ? e.code : "");
  const code = BridgeError.from(reason).code;
  const tls = chain.find((e) => untrustedCertificateCodes.has(nodeCode(e)));
  if (tls !== undefined) {
    return new BridgeError(
      `TLS: the server's certificate is not trusted (${String(tls.message)}); set tlsCaFile (ENGRAM_TLS_CA) to the PEM of the CA that signed it`,
      code,
      { cause: reason },
    );
  }
  if (chain.some((e) => nodeCode(e) === "ERR_HTTP2_ERROR")) {
    return new BridgeError(
      "HTTP/2 protocol error: the server does not speak HTTP/2 as gRPC needs (an HTTP/1.1 server answers so); check that ENGRAM_URL names the engram gRPC port, with https: for a TLS port",
      code,
      { cause: reason },
    );
  }
  return reason;
}

async function* explainStreamErrors<T>(stream: AsyncIterable<T>): AsyncIterable<T> {
  try {
    yield* stream;
  } catch (reason) {
    throw explainTransportError(reason);
  }
}
