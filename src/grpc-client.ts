/**
 * The default EventsClient: connect-node's gRPC transport over HTTP/2, a
 * bearer-token interceptor that covers unary and streaming calls alike, TLS
 * for https (system roots or a CA file), and a 4 MiB receive cap. It owns its
 * HTTP/2 session and opens a fresh one when the bridge asks for a new
 * session epoch (a suspect connection).
 */
import { readFileSync } from "node:fs";
import type * as http2 from "node:http2";
import { createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { EngramService } from "./gen/engram/v1/engram_pb.js";
import { BridgeError } from "./errors.js";
import type { EventsClient } from "./types.js";
import type { ServerAddress } from "./server-url.js";

/** Received messages are capped at 4 MiB. */
export const READ_MAX_BYTES = 4 * 1024 * 1024;

/** Where the token comes from: read fresh for every call. */
export type TokenSource = () => Promise<string | undefined>;

export interface GrpcEventsClientOptions {
  /** The parsed server address (see parseServerUrl). */
  address: ServerAddress;
  /** Read for every call; no header is sent when it yields "" or undefined. Defaults to no token. */
  token?: TokenSource;
  /** PEM file with the CA to trust for https instead of the system roots. Defaults to the system roots. */
  tlsCaFile?: string;
  /** Cap on one received message. Defaults to 4 MiB. */
  readMaxBytes?: number;
}

/** An interceptor that adds `authorization: Bearer <token>` to every call, unary and streaming. */
export function createBearerInterceptor(token: TokenSource): Interceptor {
  return (next) => async (req) => {
    const value = await token();
    if (value !== undefined && value !== "") req.header.set("authorization", `Bearer ${value}`);
    return next(req);
  };
}

export function createGrpcEventsClient(options: GrpcEventsClientOptions): EventsClient & { close(): void } {
  const { address } = options;
  const sessionOptions: http2.SecureClientSessionOptions = {};
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

  function clientFor(epoch = 0): Client<typeof EngramService> {
    if (closed) throw new BridgeError("the gRPC client is closed", "canceled");
    if (current && current.epoch === epoch) return current.client;
    current?.manager.abort();
    // No HTTP/2 PINGs: a default gRPC server allows one per 5 minutes and
    // answers more with GOAWAY ENHANCE_YOUR_CALM. Half-open links are found by
    // the heartbeat deadline instead (DESIGN.md "connection suspect").
    const manager = new Http2SessionManager(address.baseUrl, {}, sessionOptions);
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
      return clientFor(opts.sessionEpoch).projectEvents(req, {
        signal: opts.signal,
        ...(opts.onHeader ? { onHeader: opts.onHeader } : {}),
      });
    },
    syncProjectState(req, opts) {
      return clientFor(opts.sessionEpoch).syncProjectState(req, { signal: opts.signal, timeoutMs: opts.timeoutMs });
    },
    close() {
      closed = true;
      current?.manager.abort();
      current = undefined;
    },
  };
}
