/**
 * An independent engram.v1.EngramService for interop tests: built on
 * @grpc/grpc-js and @grpc/proto-loader from `proto/engram/v1/engram.proto`,
 * sharing no code with the bridge or the connect-node dev server. It keeps
 * the wire contract's server semantics (bearer auth on every RPC but Ping,
 * OUT_OF_RANGE for since_event_id, INVALID_ARGUMENT for an empty client_id or
 * over 10,000 ids) and has a small control surface for faults and odd
 * answers. Listens on 127.0.0.1 only.
 */
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

export const engramProtoPath = fileURLToPath(new URL("../../proto/engram/v1/engram.proto", import.meta.url));

/** A ProjectEvent as proto-loader spells it (longs as strings, enums as numbers). */
export interface WireProjectEvent {
  eventId?: string;
  eventType?: number;
  projectId?: string;
  timestampUnixMs?: string;
  reason?: string;
  metadata?: Record<string, string>;
}

export interface WireSyncRequest {
  localProjectIds: string[];
  clientId: string;
}

export interface WireSyncResponse {
  removed?: string[];
  unknown?: string[];
  serverTimeUnixMs?: string;
}

export interface GrpcJsServerOptions {
  /** Bearer token every RPC but Ping must present. Defaults to none. */
  token?: string;
  /** Port on 127.0.0.1; 0 picks a free one. Defaults to 0. */
  port?: number;
  /** grpc-js server options (channel arguments). Defaults to grpc-js's defaults. */
  serverOptions?: grpc.ServerOptions;
  /**
   * Send response headers as soon as a ProjectEvents call opens. Defaults to
   * false: grpc-js sends them with the first message, as many servers do.
   */
  headersOnOpen?: boolean;
}

export interface GrpcJsServerStats {
  streamsOpened: number;
  openStreams: number;
  eventsSent: number;
  syncCalls: number;
  syncIdsReported: number;
  authFailures: number;
  tokensSeen: { projectEvents: string[]; syncProjectState: string[] };
}

export interface GrpcJsServer {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  readonly port: number;
  createProject(id: string): void;
  /** Marks `id` removed and sends a REMOVED event to every open stream. */
  removeProject(id: string, reason?: string): void;
  /** Sends a raw event to every open stream (an event id is filled in when absent). */
  emitEvent(event: WireProjectEvent): void;
  /** Ends every open stream with `code` (default UNAVAILABLE); returns how many. */
  dropStreams(code?: grpc.status): number;
  /** Ends every open stream cleanly (OK); returns how many. */
  endStreams(): number;
  /** While true, every ProjectEvents call is ended cleanly (OK) right after it opens. */
  setEndStreamsAtOnce(on: boolean): void;
  /** Replaces the required token (undefined: no authentication). */
  setToken(token: string | undefined): void;
  /** Answers SyncProjectState with this function instead of the store while set. */
  setSyncResponder(fn: ((req: WireSyncRequest) => WireSyncResponse) | undefined): void;
  stats(): GrpcJsServerStats;
  /** Resolves once `n` streams are open; rejects after timeoutMs (default 5000). */
  waitForStreams(n: number, timeoutMs?: number): Promise<void>;
  /** Resolves once stats().syncCalls >= n; rejects after timeoutMs (default 5000). */
  waitForSyncCalls(n: number, timeoutMs?: number): Promise<void>;
  /**
   * SyncProjectState answers after `ms` (Infinity: never; the call hangs
   * until the client cancels it), or fails with `fail` when set. Defaults to
   * answering at once.
   */
  setSyncBehaviour(behaviour: { delayMs?: number; fail?: grpc.status }): void;
  /**
   * Shuts down gracefully, as grpc-go's GracefulStop: stops accepting,
   * sends GOAWAY, and resolves once every open call has ended (grpc-js
   * `tryShutdown()`), however long that takes. Resolves with the time it took.
   */
  shutdown(): Promise<number>;
  /** Force-shuts the server down (in-flight calls are cancelled). Idempotent. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

interface EngramServiceDefinition {
  engram: { v1: { EngramService: { service: grpc.ServiceDefinition } } };
}

let cachedService: grpc.ServiceDefinition | undefined;

/** The EngramService definition, loaded once from the .proto file. */
export function loadEngramService(): grpc.ServiceDefinition {
  if (cachedService) return cachedService;
  const definition = protoLoader.loadSync(engramProtoPath, { keepCase: false, longs: String, enums: Number, defaults: true });
  const loaded = grpc.loadPackageDefinition(definition) as unknown as EngramServiceDefinition;
  cachedService = loaded.engram.v1.EngramService.service;
  return cachedService;
}

type EventsCall = grpc.ServerWritableStream<{ clientId: string; sinceEventId: string }, WireProjectEvent>;

/** Starts the grpc-js EngramService on 127.0.0.1. */
export async function startGrpcJsServer(options: GrpcJsServerOptions = {}): Promise<GrpcJsServer> {
  const server = new grpc.Server(options.serverOptions ?? {});
  const projects = new Map<string, { removed: boolean }>();
  const streams = new Set<EventsCall>();
  const waiters = new Set<() => void>();
  const seen = { projectEvents: new Set<string>(), syncProjectState: new Set<string>() };
  let token = options.token;
  let nextEventId = 1;
  let endAtOnce = false;
  let syncResponder: ((req: WireSyncRequest) => WireSyncResponse) | undefined;
  let syncBehaviour: { delayMs?: number; fail?: grpc.status } = {};
  const pendingSyncTimers = new Set<ReturnType<typeof setTimeout>>();
  const counters = { streamsOpened: 0, eventsSent: 0, syncCalls: 0, syncIdsReported: 0, authFailures: 0 };
  const notify = () => {
    for (const w of [...waiters]) w();
  };

  /** Checks the bearer token; returns an error status to send, or undefined. */
  function authenticate(rpc: "projectEvents" | "syncProjectState", metadata: grpc.Metadata): grpc.StatusObject | undefined {
    const value = metadata.get("authorization")[0];
    const presented = typeof value === "string" ? /^bearer\s+(\S+)\s*$/i.exec(value)?.[1] : undefined;
    if (presented !== undefined) seen[rpc].add(presented);
    if (token === undefined || presented === token) return undefined;
    counters.authFailures++;
    return {
      code: grpc.status.UNAUTHENTICATED,
      details: presented === undefined ? "missing bearer token" : "invalid bearer token",
      metadata: new grpc.Metadata(),
    };
  }

  function send(event: WireProjectEvent): void {
    const full: WireProjectEvent = { eventId: String(nextEventId++), ...event };
    for (const call of streams) {
      call.write(full);
      counters.eventsSent++;
    }
  }

  function endAll(status: grpc.StatusObject | undefined): number {
    const all = [...streams];
    streams.clear();
    for (const call of all) {
      if (status) call.emit("error", status);
      else call.end();
    }
    notify();
    return all.length;
  }

  server.addService(loadEngramService(), {
    syncProjectState(call: grpc.ServerUnaryCall<WireSyncRequest, WireSyncResponse>, callback: grpc.sendUnaryData<WireSyncResponse>) {
      const denied = authenticate("syncProjectState", call.metadata);
      if (denied) return callback(denied);
      counters.syncCalls++;
      notify();
      const req = call.request;
      if (req.clientId === "") return callback({ code: grpc.status.INVALID_ARGUMENT, details: "client_id is required" });
      if (req.localProjectIds.length > 10_000) {
        return callback({ code: grpc.status.INVALID_ARGUMENT, details: `too many local_project_ids: ${req.localProjectIds.length}` });
      }
      counters.syncIdsReported += req.localProjectIds.length;
      const answer = () => {
        if (syncBehaviour.fail !== undefined) return callback({ code: syncBehaviour.fail, details: "sync failed by the test server" });
        if (syncResponder) return callback(null, syncResponder(req));
        const removed = req.localProjectIds.filter((id) => projects.get(id)?.removed !== false);
        callback(null, { removed, unknown: [], serverTimeUnixMs: String(Date.now()) });
      };
      const delayMs = syncBehaviour.delayMs ?? 0;
      if (delayMs === 0) return answer();
      if (delayMs === Number.POSITIVE_INFINITY) return; // never answers; the client's cancel ends the call
      const timer = setTimeout(() => {
        pendingSyncTimers.delete(timer);
        if (!call.cancelled) answer();
      }, delayMs);
      pendingSyncTimers.add(timer);
      call.on("cancelled", () => {
        clearTimeout(timer);
        pendingSyncTimers.delete(timer);
      });
    },

    projectEvents(call: EventsCall) {
      const denied = authenticate("projectEvents", call.metadata);
      if (denied) {
        call.emit("error", denied);
        return;
      }
      if (call.request.sinceEventId !== "") {
        call.emit("error", { code: grpc.status.OUT_OF_RANGE, details: "resuming from since_event_id is not supported" });
        return;
      }
      counters.streamsOpened++;
      if (endAtOnce) {
        call.end();
        notify();
        return;
      }
      if (options.headersOnOpen) call.sendMetadata(new grpc.Metadata());
      streams.add(call);
      const forget = () => {
        if (streams.delete(call)) notify();
      };
      call.on("cancelled", forget);
      call.on("close", forget);
      call.on("error", forget);
      notify();
    },

    ping(_call: grpc.ServerUnaryCall<object, { status: string }>, callback: grpc.sendUnaryData<{ status: string }>) {
      callback(null, { status: "ok" });
    },
  });

  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`127.0.0.1:${options.port ?? 0}`, grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    );
  });

  function waitFor(what: string, ready: () => boolean, timeoutMs: number): Promise<void> {
    if (ready()) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const check = () => {
        if (!ready()) return;
        done();
        resolve();
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`grpc-js server: timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
    });
  }

  let closing: Promise<void> | undefined;
  const api: GrpcJsServer = {
    url: `http://127.0.0.1:${port}`,
    port,
    createProject(id) {
      projects.set(id, { removed: false });
    },
    removeProject(id, reason = "") {
      projects.set(id, { removed: true });
      send({ eventType: 1, projectId: id, reason, timestampUnixMs: String(Date.now()) });
    },
    emitEvent: send,
    dropStreams: (code = grpc.status.UNAVAILABLE) => endAll({ code, details: "stream dropped by server", metadata: new grpc.Metadata() }),
    endStreams: () => endAll(undefined),
    setEndStreamsAtOnce(on) {
      endAtOnce = on;
    },
    setToken(t) {
      token = t;
    },
    setSyncResponder(fn) {
      syncResponder = fn;
    },
    setSyncBehaviour(behaviour) {
      syncBehaviour = { ...behaviour };
    },
    shutdown() {
      const started = performance.now();
      return new Promise<number>((resolve) => {
        server.tryShutdown(() => {
          streams.clear();
          notify();
          resolve(performance.now() - started);
        });
      });
    },
    stats: () => ({
      ...counters,
      openStreams: streams.size,
      tokensSeen: { projectEvents: [...seen.projectEvents], syncProjectState: [...seen.syncProjectState] },
    }),
    waitForStreams: (n, timeoutMs = 5000) => waitFor(`${n} open streams (${streams.size} now)`, () => streams.size >= n, timeoutMs),
    waitForSyncCalls: (n, timeoutMs = 5000) => waitFor(`${n} sync calls`, () => counters.syncCalls >= n, timeoutMs),
    close() {
      closing ??= new Promise<void>((resolve) => {
        for (const w of [...waiters]) w();
        streams.clear();
        for (const t of pendingSyncTimers) clearTimeout(t);
        pendingSyncTimers.clear();
        server.forceShutdown();
        resolve();
      });
      return closing;
    },
    [Symbol.asyncDispose]: () => api.close(),
  };
  return api;
}
