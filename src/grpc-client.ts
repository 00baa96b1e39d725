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
import { noteSessionActivity, probeLink } from "./link-probe.js";
import { loopbackLookup } from "./loopback-lookup.js";
import type { ServerAddress } from "./server-url.js";
import { createStreamCloseWatch, type StreamCloseWatch } from "./stream-close-watch.js";
import { MAX_TIMER_MS } from "./timing.js";
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
  /** The bridge clock, for the stream-close watch's grace and the token read's timer. Defaults to Node's timers. */
  clock?: Clock | undefined;
  /**
   * How long one read of the token may take before the call fails
   * (`unauthenticated`, "did not settle"): the bridge passes its
   * syncTimeoutMs. Defaults to DEFAULT_TOKEN_TIMEOUT_MS (10 s).
   */
  tokenTimeoutMs?: number | undefined;
}

/**
 * Slack added to the deadline connect-node and the server get for a
 * SyncProjectState call (grpc-timeout), so the bridge's own deadline on its
 * clock always runs out first: only that one marks the connection suspect.
 */
export const SERVER_DEADLINE_SLACK_MS = 1000;

/**
 * The longest deadline the grpc-timeout header can carry: its TimeoutValue
 * has at most 8 digits (connect-node sends milliseconds, and refuses a
 * longer value as a protocol error before the call is made).
 */
export const MAX_GRPC_TIMEOUT_MS = 99_999_999;

/** The deadline a SyncProjectState call is sent with: the bridge's own plus slack, within what the header and Node's timers hold. */
export function transportTimeoutMs(timeoutMs: number): number {
  return Math.min(MAX_GRPC_TIMEOUT_MS, MAX_TIMER_MS, timeoutMs + SERVER_DEADLINE_SLACK_MS);
}

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
  const interceptors = options.token
    ? [createBearerInterceptor(options.token, { clock: options.clock, timeoutMs: options.tokenTimeoutMs })]
    : [];
  /**
   * Per session epoch: the HTTP/2 session that carries the ProjectEvents
   * stream, and a second one that carries unary calls only while the
   * server grants the first no more than one concurrent stream
   * (SETTINGS_MAX_CONCURRENT_STREAMS=1): a heartbeat must never queue
   * behind the stream, where its deadline would look like a dead link.
   * Otherwise the heartbeat shares the stream's session, so its deadline
   * also proves that session alive (a NAT that silently dropped an idle
   * stream's flow is found by the next heartbeat).
   */
  let current:
    | { epoch: number; managers: Http2SessionManager[]; stream: Client<typeof EngramService>; unary: Client<typeof EngramService> }
    | undefined;
  let closed = false;
  // The watch of the ProjectEvents call in flight (the bridge holds at most one).
  let streamWatch: StreamCloseWatch | undefined;
  /** The onSent of the ProjectEvents call and of the SyncProjectState call in flight (one of each at most). */
  let streamSent: (() => void) | undefined;
  let streamClosed: (() => void) | undefined;
  let syncSent: (() => void) | undefined;
  /** The HTTP/2 session of the latest ProjectEvents call (the connection a link probe asks). */
  let streamSessionRef: http2.Http2Session | undefined;
  /**
   * The HTTP/2 session of the latest SyncProjectState call: the stream's,
   * or its own when the server grants one concurrent stream per session.
   */
  let syncSessionRef: http2.Http2Session | undefined;
  /** The stream's session's SETTINGS_MAX_CONCURRENT_STREAMS as last seen (unknown until a stream was made). */
  let streamSessionMaxStreams = Number.POSITIVE_INFINITY;
  const onRequest = (path: string, stream: http2.ClientHttp2Stream) => {
    // The request is on the wire once its token was read and its HTTP/2
    // stream has an id (a stream over the session's concurrency limit waits
    // in Node's queue, "pending", until the server grants a slot).
    // A call's response headers or trailers are a sign of life of its session (see pingOnce).
    stream.once("response", () => noteSessionActivity(stream.session));
    stream.once("trailers", () => noteSessionActivity(stream.session));
    const whenSent = (sent: (() => void) | undefined) => {
      if (sent === undefined) return;
      if (stream.pending) stream.once("ready", sent);
      else sent();
    };
    if (path.endsWith("/SyncProjectState")) {
      if (stream.session !== undefined) syncSessionRef = stream.session;
      const sent = syncSent;
      syncSent = undefined;
      whenSent(sent);
      return;
    }
    if (!path.endsWith("/ProjectEvents")) return;
    if (stream.session !== undefined) streamSessionRef = stream.session;
    const sent = streamSent;
    streamSent = undefined;
    whenSent(sent);
    const closed = streamClosed;
    streamClosed = undefined;
    // A reset (any RST_STREAM code but NO_ERROR) or a destroyed stream: not a clean end after everything was read.
    if (closed !== undefined) stream.once("close", () => (stream.rstCode !== 0 || !stream.readableEnded ? closed() : undefined));
    const streamSession = stream.session;
    if (streamSession !== undefined) {
      const note = () => {
        const max = streamSession.remoteSettings?.maxConcurrentStreams;
        if (typeof max === "number") streamSessionMaxStreams = max;
      };
      note();
      streamSession.on("remoteSettings", note);
      stream.once("close", () => streamSession.off("remoteSettings", note));
    }
    if (!streamWatch) return;
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

  function clientFor(epoch: number | undefined, kind: "stream" | "unary"): Client<typeof EngramService> {
    if (closed) throw new BridgeError("the gRPC client is closed", "canceled");
    const at = epoch ?? 0;
    if (!current || current.epoch !== at) {
      for (const m of current?.managers ?? []) m.abort();
      // No HTTP/2 PINGs: a default gRPC server allows one per 5 minutes and
      // answers more with GOAWAY ENHANCE_YOUR_CALM. Half-open links are found by
      // the heartbeat deadline instead (DESIGN.md "connection suspect").
      const managers = [0, 1].map(() => new GuardedSessionManager(onRequest, authority, address.baseUrl, {}, sessionOptions));
      const [stream, unary] = managers.map((sessionManager) =>
        createClient(
          EngramService,
          createGrpcTransport({
            baseUrl: address.baseUrl,
            sessionManager,
            interceptors,
            readMaxBytes: options.readMaxBytes ?? READ_MAX_BYTES,
          }),
        ),
      ) as [Client<typeof EngramService>, Client<typeof EngramService>];
      current = { epoch: at, managers, stream, unary };
      streamSessionMaxStreams = Number.POSITIVE_INFINITY;
    }
    // A unary call shares the stream's session unless that session has room for the stream alone.
    return kind === "stream" || streamSessionMaxStreams > 1 ? current.stream : current.unary;
  }

  return {
    signalsSent: true,
    checkConnection(opts) {
      return probeLink({ call: syncSessionRef, stream: streamSessionRef }, opts.timeoutMs, opts.signal, options.clock);
    },
    projectEvents(req, opts) {
      const watch = createStreamCloseWatch(opts.signal, { clock: options.clock });
      streamWatch = watch;
      streamSent = opts.onSent;
      streamClosed = opts.onClosed;
      const messages = clientFor(opts.sessionEpoch, "stream").projectEvents(req, {
        signal: watch.signal,
        ...(opts.onHeader ? { onHeader: opts.onHeader } : {}),
      });
      return watch.wrap(messages, explainTransportError);
    },
    syncProjectState(req, opts) {
      syncSent = opts.onSent;
      return clientFor(opts.sessionEpoch, "unary")
        .syncProjectState(req, { signal: opts.signal, timeoutMs: transportTimeoutMs(opts.timeoutMs) })
        .catch((reason: unknown) => Promise.reject(explainTransportError(reason)));
    },
    close() {
      closed = true;
      for (const m of current?.managers ?? []) m.abort();
      current = undefined;
    },
  };
}
