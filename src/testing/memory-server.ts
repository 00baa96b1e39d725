/**
 * An in-memory engram server and its EventsClient, in the spirit of
 * connect's createRouterTransport: no sockets, every delay on the given
 * SimulatedClock, every fault switched on by a plain synchronous call. Pass
 * `server.client()` as BridgeOptions.client.
 *
 * It implements docs/design.md "Wire contract": SyncProjectState answers
 * `removed` = the reported ids that are unknown to the server or removed,
 * `unknown` = live projects without a heartbeat for `unknownAfterMs` (empty
 * unless that option is set; the engram server's is 24 h),
 * `server_time_unix_ms` from the clock; ProjectEvents streams every CREATED
 * and REMOVED event to every open stream, with increasing decimal event ids,
 * and with `streamBufferSize` drops what a slow stream has no room for (the
 * engram server keeps 64 per stream).
 *
 * A call takes half a round trip (`rttMs / 2`) to arrive and half to answer;
 * an event takes half a round trip from the server to the client. With
 * `rttMs: 0` (the default) nothing waits for a timer: `await settle()` is
 * enough for a call to be answered. Every call honours its AbortSignal.
 */
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { ServerGoawayError } from "../call-errors.js";
import {
  ProjectEventSchema,
  ProjectEventType,
  SyncProjectStateResponseSchema,
  type ProjectEvent,
  type ProjectEventsRequest,
  type SyncProjectStateRequest,
  type SyncProjectStateResponse,
} from "../gen/engram/v1/engram_pb.js";
import type { EventsClient, ProjectEventsCallOptions, SyncProjectStateCallOptions } from "../types.js";
import { grpcCodeNames, grpcError, type GrpcCodeName } from "./grpc-codes.js";
import { SimulatedClock } from "./simulated-clock.js";

/** When the server sends a stream's response headers (what makes the bridge `streaming` before openConfirmMs). */
export type HeaderMode = "on-open" | "first-event" | "never";

export interface MemoryServerOptions {
  /** Every delay of the server runs on it. Defaults to a new SimulatedClock. */
  clock?: SimulatedClock;
  /** Round trip between the client and the server, ms. Defaults to 0 (no timer at all). */
  rttMs?: number;
  /**
   * When a stream's response headers are sent: when it opens (the reference
   * dev server), with its first event, or never (grpc-go, the engram
   * server, sends them with its first message; "never" is a stream that
   * carries no message). Defaults to "on-open".
   */
  headers?: HeaderMode;
  /** Calls (streams and syncs together) one client session may have in flight, as HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS. Defaults to no limit. */
  maxConcurrentStreams?: number;
  /** Projects live from the start. Defaults to none. */
  projects?: Iterable<string>;
  /**
   * Events one stream may hold that its client has not read yet; a further
   * event for that stream is dropped (traced as `event.dropped`), as the
   * engram server does with a buffer of 64. Defaults to no bound.
   */
  streamBufferSize?: number;
  /**
   * Keep a heartbeat book: a sync answers as `unknown` every live project
   * that nobody reported (nor created) for this long, computed before the
   * answer's own reported ids get their heartbeat (so a reported id may be
   * listed). The engram server's is 24 h. Defaults to no book: `unknown`
   * is always empty.
   */
  unknownAfterMs?: number;
  /** Hears every step the server takes (for traces and models). Defaults to none. */
  onTrace?: (entry: MemoryServerTraceEntry) => void;
}

/** One step of the server, as `onTrace` hears it. `atMs` is the clock's time. */
export type MemoryServerTraceEntry = { atMs: number; client?: string } & (
  | { type: "stream.called" }
  | { type: "stream.sent" }
  | { type: "stream.opened"; streamId: number }
  | { type: "stream.closed"; streamId: number; why: string }
  | { type: "event.sent"; eventId: string; eventType: "created" | "removed"; projectId: string }
  | { type: "event.delivered"; streamId: number; eventId: string; eventType: "created" | "removed"; projectId: string }
  | { type: "event.dropped"; streamId: number; eventId: string; eventType: "created" | "removed"; projectId: string }
  | { type: "sync.called" }
  | { type: "sync.sent"; reported: string[] }
  | { type: "sync.answered"; reported: string[]; removed: string[]; unknown: string[]; computedAtMs: number }
  | { type: "sync.failed"; code: string }
  | { type: "sync.aborted"; sent: boolean }
);

/** Counters of everything the server saw. */
export interface MemoryServerStats {
  streamCalls: number;
  syncCalls: number;
  streamsOpened: number;
  openStreams: number;
  syncsAnswered: number;
  syncsFailed: number;
  syncsHung: number;
  eventsSent: number;
  /** Events dropped because a stream's buffer (streamBufferSize) was full, counted per stream. */
  eventsDropped: number;
  /** Calls waiting now for a slot under maxConcurrentStreams. */
  callsQueued: number;
}

export interface MemoryClientOptions {
  /** Names the client in traces and in openStreamsOf(). Defaults to "client-N". */
  name?: string;
}

/** An EventsClient backed by a MemoryServer. */
export interface MemoryEventsClient extends EventsClient {
  readonly name: string;
  /** It calls each call's `onSent` when the request goes on the wire (after a slot under maxConcurrentStreams). */
  readonly signalsSent: true;
  close(): void;
}

export interface HangOptions {
  /** A hung sync also ignores its AbortSignal (a transport that never honours the abort). Defaults to false. */
  ignoreAbort?: boolean;
}

export interface GoawayOptions {
  /** Events still in flight are lost (the connection closed mid-message). Defaults to false: they arrive, then the stream ends. */
  midMessage?: boolean;
}

export interface MemoryServer {
  readonly clock: SimulatedClock;
  /** A new client (one HTTP/2 connection's worth of state) to pass as BridgeOptions.client. */
  client(options?: MemoryClientOptions): MemoryEventsClient;
  /** Makes `projectId` live and streams CREATED; false if it already was. */
  createProject(projectId: string): boolean;
  /** Removes `projectId` and streams REMOVED; false if it was not live. */
  removeProject(projectId: string, reason?: string): boolean;
  /** Removes `projectId` (if live) and creates it again: a new life of the id. */
  recreateProject(projectId: string): void;
  isLive(projectId: string): boolean;
  liveProjects(): string[];
  /** Streams REMOVED (with `reason`, default "flood") for `count` fresh ids `prefix-N` nobody ever saw live; returns them. */
  flood(count: number, prefix?: string, reason?: string): string[];
  /** Ends every open stream with this gRPC code (after half a round trip); events in flight arrive first. */
  dropStreams(code?: GrpcCodeName): void;
  /** Resets every open stream mid-message: events in flight are lost, the call fails with INTERNAL. */
  resetStreams(): void;
  /** Ends every open stream with OK (the server finished the call). */
  endStreams(): void;
  /** HTTP/2 GOAWAY: every open stream ends with ServerGoawayError, as the bridge's gRPC client reports it. */
  goaway(options?: GoawayOptions): void;
  /** The server goes silent: open and new streams carry nothing (no headers), syncs are never answered. Until unhang(), and for the calls it caught, for good. */
  hang(options?: HangOptions): void;
  unhang(): void;
  /** Every sync answer waits this long on the clock first. 0 turns it off. */
  slowSyncs(ms: number): void;
  /** The next `count` syncs fail with `code` (after a round trip). */
  failNextSyncs(count: number, code: GrpcCodeName): void;
  /** The next `count` ProjectEvents calls are refused with `code`. */
  rejectNextStreams(count: number, code: GrpcCodeName): void;
  /**
   * The server is down: open streams are reset (connect-node reports that
   * as CANCELED, as with a real server that goes away), every new call
   * fails with UNAVAILABLE after a round trip.
   */
  goDown(): void;
  comeBack(): void;
  /** The next `count` REMOVED events are each sent twice. */
  duplicateNext(count: number): void;
  /** The next `count` REMOVED events are held and sent in reverse order (sooner if a CREATED event must go out). */
  reorderNext(count: number): void;
  setMaxConcurrentStreams(limit: number): void;
  /** Changes the per-stream buffer bound (streamBufferSize); Infinity turns it off. */
  setStreamBufferSize(size: number): void;
  /** Lifts every fault: unhang, no slow or failing syncs, no refused streams, up, nothing duplicated or held, the concurrency limit of the options. */
  heal(): void;
  setHeaders(mode: HeaderMode): void;
  stats(): MemoryServerStats;
  /** Streams the server holds open for this client (by name or object). */
  openStreamsOf(client: string | MemoryEventsClient): number;
}

interface MemStream {
  id: number;
  client: string;
  queue: ProjectEvent[];
  /** How the call ends, once the client learns it. */
  end: { error?: Error } | undefined;
  /** Hung: nothing more reaches the client. */
  silent: boolean;
  /** In-flight events are lost (reset, GOAWAY mid-message). */
  cut: boolean;
  wake: (() => void) | undefined;
  /** The call's onClosed: told when the server's end reaches the client (what is left to read is bounded). */
  onClosed: (() => void) | undefined;
}

interface Slots {
  active: number;
  waiting: Array<() => void>;
}

const canceled = () => new ConnectError("the operation was aborted", Code.Canceled);

/** The most faults one call may queue: a count is a number of calls, not a size to allocate blindly. */
const MAX_FAULT_COUNT = 1_000_000;

function checkCount(method: string, count: number): void {
  if (!Number.isInteger(count) || count < 0 || count > MAX_FAULT_COUNT) {
    throw new RangeError(`${method}: count must be an integer in [0, ${MAX_FAULT_COUNT}], got ${String(count)}`);
  }
}

function checkFaultCount(method: string, count: number, code: GrpcCodeName): void {
  checkCount(method, count);
  if (!grpcCodeNames.includes(code)) throw new TypeError(`${method}: not a gRPC code name: ${String(code)}`);
}

export function createMemoryServer(options: MemoryServerOptions = {}): MemoryServer {
  const clock = options.clock ?? new SimulatedClock();
  const rttMs = Math.max(0, options.rttMs ?? 0);
  let headerMode: HeaderMode = options.headers ?? "on-open";
  let maxConcurrent = options.maxConcurrentStreams ?? Number.POSITIVE_INFINITY;
  const onTrace = options.onTrace;
  const live = new Set<string>(options.projects ?? []);
  let streamBufferSize = options.streamBufferSize ?? Number.POSITIVE_INFINITY;
  const unknownAfterMs = options.unknownAfterMs;
  /** The heartbeat book (unknownAfterMs): when each live project was last reported or created. */
  const lastHeartbeat = new Map<string, number>();
  for (const id of live) lastHeartbeat.set(id, clock.now());
  const streams = new Set<MemStream>();
  const slots = new Map<string, Slots>();
  let clients = 0;
  let streamSeq = 0;
  let eventSeq = 0;
  let floodSeq = 0;
  let hung = false;
  let hangIgnoresAbort = false;
  let down = false;
  let slowSyncMs = 0;
  const syncFailures: GrpcCodeName[] = [];
  const streamRejections: GrpcCodeName[] = [];
  let duplicates = 0;
  let reorder = 0;
  let held: ProjectEvent[] = [];
  const stats: MemoryServerStats = {
    streamCalls: 0,
    syncCalls: 0,
    streamsOpened: 0,
    openStreams: 0,
    syncsAnswered: 0,
    syncsFailed: 0,
    syncsHung: 0,
    eventsSent: 0,
    eventsDropped: 0,
    callsQueued: 0,
  };

  const trace = (entry: MemoryServerTraceEntry) => onTrace?.(entry);
  const eventTypeName = (ev: ProjectEvent) => (ev.eventType === ProjectEventType.CREATED ? "created" : "removed");

  /** Runs `fn` after `ms` on the clock; at once (a microtask) when ms is 0. */
  function later(ms: number, fn: () => void): void {
    if (ms <= 0) queueMicrotask(fn);
    else clock.setTimeout(fn, ms);
  }

  /** Resolves after `ms`; rejects with CANCELED when `signal` aborts first. */
  function wait(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal.aborted) return reject(canceled());
      let id: unknown;
      const onAbort = () => {
        if (id !== undefined) clock.clearTimeout(id);
        reject(canceled());
      };
      signal.addEventListener("abort", onAbort, { once: true });
      const done = () => {
        signal.removeEventListener("abort", onAbort);
        if (signal.aborted) reject(canceled());
        else resolve();
      };
      if (ms <= 0) queueMicrotask(done);
      else id = clock.setTimeout(done, ms);
    });
  }

  /** Never resolves; rejects with CANCELED on abort unless the hang ignores aborts. */
  function hangUntilAborted(signal: AbortSignal, ignoreAbort: boolean): Promise<never> {
    return new Promise<never>((_, reject) => {
      if (ignoreAbort) return;
      if (signal.aborted) return reject(canceled());
      signal.addEventListener("abort", () => reject(canceled()), { once: true });
    });
  }

  /** A slot under maxConcurrentStreams on the client's session; the release is idempotent and also runs on abort (the client resets the stream). */
  function acquire(key: string, signal: AbortSignal): Promise<() => void> {
    let s = slots.get(key);
    if (!s) slots.set(key, (s = { active: 0, waiting: [] }));
    const entry = s;
    let held = false;
    const release = () => {
      if (!held) return;
      held = false;
      signal.removeEventListener("abort", release);
      entry.active -= 1;
      const next = entry.waiting.shift();
      if (next) next();
    };
    const grant = () => {
      held = true;
      entry.active += 1;
      signal.addEventListener("abort", release, { once: true });
    };
    if (signal.aborted) return Promise.reject(canceled());
    if (entry.active < maxConcurrent) {
      grant();
      return Promise.resolve(release);
    }
    stats.callsQueued += 1;
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        const at = entry.waiting.indexOf(go);
        if (at >= 0) entry.waiting.splice(at, 1);
        stats.callsQueued -= 1;
        reject(canceled());
      };
      const go = () => {
        signal.removeEventListener("abort", onAbort);
        stats.callsQueued -= 1;
        grant();
        resolve(release);
      };
      entry.waiting.push(go);
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** Wakes queued calls when the limit was raised. */
  function grantWaiting(): void {
    for (const s of slots.values()) {
      while (s.active < maxConcurrent && s.waiting.length > 0) s.waiting.shift()?.();
    }
  }

  function closeOnServer(stream: MemStream, why: string): boolean {
    if (!streams.delete(stream)) return false;
    stats.openStreams = streams.size;
    trace({ type: "stream.closed", atMs: clock.now(), client: stream.client, streamId: stream.id, why });
    return true;
  }

  /** Ends a stream on the server now; the client learns it half a round trip later. */
  function endStream(stream: MemStream, why: string, error: Error | undefined, cut: boolean): void {
    if (!closeOnServer(stream, why)) return;
    if (cut) stream.cut = true;
    later(rttMs / 2, () => {
      stream.end = error === undefined ? {} : { error };
      // A reset reaches the client at once; a clean end only after what is queued was read.
      if (error !== undefined) stream.onClosed?.();
      stream.wake?.();
    });
  }

  function send(ev: ProjectEvent): void {
    stats.eventsSent += 1;
    trace({ type: "event.sent", atMs: clock.now(), eventId: ev.eventId, eventType: eventTypeName(ev), projectId: ev.projectId });
    for (const stream of streams) {
      if (stream.silent) continue;
      later(rttMs / 2, () => {
        if (stream.cut || stream.end !== undefined) return;
        if (stream.queue.length >= streamBufferSize) {
          stats.eventsDropped += 1;
          trace({
            type: "event.dropped",
            atMs: clock.now(),
            client: stream.client,
            streamId: stream.id,
            eventId: ev.eventId,
            eventType: eventTypeName(ev),
            projectId: ev.projectId,
          });
          return;
        }
        stream.queue.push(ev);
        stream.wake?.();
      });
    }
  }

  function flushHeld(): void {
    const out = held.reverse();
    held = [];
    reorder = 0;
    for (const ev of out) send(ev);
  }

  function emit(type: ProjectEventType, projectId: string, reason = ""): void {
    eventSeq += 1;
    const ev = create(ProjectEventSchema, {
      eventId: String(eventSeq),
      eventType: type,
      projectId,
      timestampUnixMs: BigInt(Math.floor(clock.now())),
      reason,
    });
    if (type !== ProjectEventType.REMOVED) {
      // Order per id holds: what is held goes out before a CREATED.
      if (held.length > 0) flushHeld();
      send(ev);
      return;
    }
    const copies = duplicates > 0 ? 2 : 1;
    if (duplicates > 0) duplicates -= 1;
    for (let i = 0; i < copies; i++) {
      if (reorder > 0) {
        held.push(ev);
        if (held.length >= reorder) flushHeld();
      } else {
        send(ev);
      }
    }
  }

  function client(clientOptions: MemoryClientOptions = {}): MemoryEventsClient {
    clients += 1;
    const name = clientOptions.name ?? `client-${clients}`;
    let closed = false;
    const slotKey = (epoch: number | undefined) => `${name}#${epoch ?? 0}`;
    const refusal = (): ConnectError | undefined => {
      if (closed) return new ConnectError("the client is closed", Code.Canceled);
      if (down) return new ConnectError("connect ECONNREFUSED", Code.Unavailable);
      return undefined;
    };

    async function* projectEvents(_req: ProjectEventsRequest, opts: ProjectEventsCallOptions): AsyncGenerator<ProjectEvent> {
      const { signal } = opts;
      const onSent = (opts as ProjectEventsCallOptions & { onSent?: () => void }).onSent;
      stats.streamCalls += 1;
      trace({ type: "stream.called", atMs: clock.now(), client: name });
      const release = await acquire(slotKey(opts.sessionEpoch), signal);
      try {
        onSent?.();
        trace({ type: "stream.sent", atMs: clock.now(), client: name });
        await wait(rttMs / 2, signal);
        const refused = refusal() ?? (streamRejections.length > 0 ? grpcError(streamRejections.shift() as GrpcCodeName) : undefined);
        if (refused) {
          await wait(rttMs / 2, signal);
          throw refused;
        }
        streamSeq += 1;
        const stream: MemStream = {
          id: streamSeq,
          client: name,
          queue: [],
          end: undefined,
          silent: hung,
          cut: false,
          wake: undefined,
          onClosed: opts.onClosed,
        };
        streams.add(stream);
        stats.streamsOpened += 1;
        stats.openStreams = streams.size;
        trace({ type: "stream.opened", atMs: clock.now(), client: name, streamId: stream.id });
        const onAbort = () => stream.wake?.();
        signal.addEventListener("abort", onAbort, { once: true });
        try {
          let headerSent = false;
          if (headerMode === "on-open" && !stream.silent) {
            await wait(rttMs / 2, signal);
            if (!stream.silent && !stream.cut && stream.end === undefined) {
              headerSent = true;
              opts.onHeader?.(new Headers({ "content-type": "application/grpc" }));
            }
          }
          for (;;) {
            if (signal.aborted) throw canceled();
            const next = stream.queue.shift();
            if (next !== undefined) {
              if (headerMode === "first-event" && !headerSent) {
                headerSent = true;
                opts.onHeader?.(new Headers({ "content-type": "application/grpc" }));
              }
              trace({
                type: "event.delivered",
                atMs: clock.now(),
                client: name,
                streamId: stream.id,
                eventId: next.eventId,
                eventType: eventTypeName(next),
                projectId: next.projectId,
              });
              yield next;
              continue;
            }
            if (stream.end !== undefined) {
              if (stream.end.error) throw stream.end.error;
              return;
            }
            await new Promise<void>((resolve) => (stream.wake = resolve));
            stream.wake = undefined;
          }
        } finally {
          signal.removeEventListener("abort", onAbort);
          closeOnServer(stream, signal.aborted ? "canceled by the client" : "ended");
        }
      } finally {
        release();
      }
    }

    async function syncProjectState(req: SyncProjectStateRequest, opts: SyncProjectStateCallOptions): Promise<SyncProjectStateResponse> {
      const { signal } = opts;
      const onSent = (opts as SyncProjectStateCallOptions & { onSent?: () => void }).onSent;
      stats.syncCalls += 1;
      trace({ type: "sync.called", atMs: clock.now(), client: name });
      const ignoreAbort = hung && hangIgnoresAbort;
      let sent = false;
      const onAbort = () => trace({ type: "sync.aborted", atMs: clock.now(), client: name, sent });
      signal.addEventListener("abort", onAbort, { once: true });
      const release = await acquire(slotKey(opts.sessionEpoch), signal).catch((e: unknown) => {
        signal.removeEventListener("abort", onAbort);
        throw e;
      });
      try {
        sent = true;
        onSent?.();
        const reported = [...req.localProjectIds];
        trace({ type: "sync.sent", atMs: clock.now(), client: name, reported });
        await wait(rttMs / 2, signal);
        if (hung) {
          stats.syncsHung += 1;
          await hangUntilAborted(signal, ignoreAbort || hangIgnoresAbort);
        }
        const failure = refusal() ?? (syncFailures.length > 0 ? grpcError(syncFailures.shift() as GrpcCodeName) : undefined);
        if (failure) {
          await wait(rttMs / 2, signal);
          stats.syncsFailed += 1;
          signal.removeEventListener("abort", onAbort);
          trace({ type: "sync.failed", atMs: clock.now(), client: name, code: String((failure as { code?: unknown }).code) });
          throw failure;
        }
        if (slowSyncMs > 0) await wait(slowSyncMs, signal);
        if (hung) {
          stats.syncsHung += 1;
          await hangUntilAborted(signal, hangIgnoresAbort);
        }
        const computedAtMs = clock.now();
        const removed = reported.filter((id) => !live.has(id));
        const unknown: string[] = [];
        if (unknownAfterMs !== undefined) {
          for (const id of live) if (computedAtMs - (lastHeartbeat.get(id) ?? computedAtMs) >= unknownAfterMs) unknown.push(id);
          for (const id of reported) if (live.has(id)) lastHeartbeat.set(id, computedAtMs);
        }
        const answer = create(SyncProjectStateResponseSchema, { removed, unknown, serverTimeUnixMs: BigInt(Math.floor(computedAtMs)) });
        await wait(rttMs / 2, signal);
        stats.syncsAnswered += 1;
        signal.removeEventListener("abort", onAbort);
        trace({ type: "sync.answered", atMs: clock.now(), client: name, reported, removed, unknown, computedAtMs });
        return answer;
      } finally {
        release();
      }
    }

    /**
     * The link probe: the server's transport answers a PING after a round
     * trip while it is up, however slow its handlers (slowSyncs); a silent
     * hang is a link that answers nothing, and a server that is down answers
     * nothing either.
     */
    function checkConnection(opts: { signal: AbortSignal; timeoutMs: number }): Promise<boolean> {
      if (down || hung)
        return new Promise<boolean>((resolve) => opts.signal.addEventListener("abort", () => resolve(false), { once: true }));
      return wait(rttMs, opts.signal).then(
        () => !down && !hung,
        () => false,
      );
    }

    return {
      name,
      signalsSent: true,
      projectEvents,
      syncProjectState,
      checkConnection,
      close() {
        closed = true;
      },
    };
  }

  return {
    clock,
    client,
    createProject(projectId) {
      if (live.has(projectId)) return false;
      live.add(projectId);
      lastHeartbeat.set(projectId, clock.now());
      emit(ProjectEventType.CREATED, projectId);
      return true;
    },
    removeProject(projectId, reason = "") {
      if (!live.delete(projectId)) return false;
      lastHeartbeat.delete(projectId);
      emit(ProjectEventType.REMOVED, projectId, reason);
      return true;
    },
    recreateProject(projectId) {
      this.removeProject(projectId);
      this.createProject(projectId);
    },
    isLive: (projectId) => live.has(projectId),
    liveProjects: () => [...live],
    flood(count, prefix = "flood", reason = "flood") {
      checkCount("flood", count);
      const ids: string[] = [];
      for (let i = 0; i < count; i++) {
        const id = `${prefix}-${++floodSeq}`;
        ids.push(id);
        emit(ProjectEventType.REMOVED, id, reason);
      }
      return ids;
    },
    dropStreams(code = "unavailable") {
      for (const s of [...streams]) endStream(s, `dropped (${code})`, grpcError(code, `the server ended the stream: ${code}`), false);
    },
    resetStreams() {
      for (const s of [...streams])
        endStream(s, "reset", new ConnectError("http/2 stream closed with error code INTERNAL_ERROR (0x2)", Code.Internal), true);
    },
    endStreams() {
      for (const s of [...streams]) endStream(s, "ended with OK", undefined, false);
    },
    goaway(goawayOptions = {}) {
      const midMessage = goawayOptions.midMessage === true;
      for (const s of [...streams]) endStream(s, midMessage ? "GOAWAY mid-message" : "GOAWAY", new ServerGoawayError(), midMessage);
    },
    hang(hangOptions = {}) {
      hung = true;
      hangIgnoresAbort = hangOptions.ignoreAbort === true;
      for (const s of streams) s.silent = true;
    },
    unhang() {
      hung = false;
      hangIgnoresAbort = false;
    },
    slowSyncs(ms) {
      if (!Number.isFinite(ms) || ms < 0 || ms > 2 ** 31 - 1)
        throw new RangeError(`slowSyncs: ms must be in [0, 2^31-1], got ${String(ms)}`);
      slowSyncMs = ms;
    },
    failNextSyncs(count, code) {
      checkFaultCount("failNextSyncs", count, code);
      for (let i = 0; i < count; i++) syncFailures.push(code);
    },
    rejectNextStreams(count, code) {
      checkFaultCount("rejectNextStreams", count, code);
      for (let i = 0; i < count; i++) streamRejections.push(code);
    },
    goDown() {
      down = true;
      for (const s of [...streams])
        endStream(s, "server down", new ConnectError("http/2 stream closed with error code CANCEL (0x8)", Code.Canceled), true);
    },
    comeBack() {
      down = false;
    },
    duplicateNext(count) {
      checkCount("duplicateNext", count);
      duplicates += count;
    },
    reorderNext(count) {
      checkCount("reorderNext", count);
      reorder = Math.max(reorder, held.length + count);
      if (reorder === 0 && held.length > 0) flushHeld();
    },
    setMaxConcurrentStreams(limit) {
      if (limit !== Number.POSITIVE_INFINITY) checkCount("setMaxConcurrentStreams", limit);
      if (limit === 0) throw new RangeError("setMaxConcurrentStreams: the limit must be at least 1 (Infinity for none)");
      maxConcurrent = limit;
      grantWaiting();
    },
    setStreamBufferSize(size) {
      streamBufferSize = Math.max(0, size);
    },
    heal() {
      hung = false;
      hangIgnoresAbort = false;
      down = false;
      slowSyncMs = 0;
      syncFailures.length = 0;
      streamRejections.length = 0;
      duplicates = 0;
      if (held.length > 0) flushHeld();
      reorder = 0;
      maxConcurrent = options.maxConcurrentStreams ?? Number.POSITIVE_INFINITY;
      grantWaiting();
    },
    setHeaders(mode) {
      headerMode = mode;
    },
    stats: () => ({ ...stats, openStreams: streams.size }),
    openStreamsOf(c) {
      const name = typeof c === "string" ? c : c.name;
      let n = 0;
      for (const s of streams) if (s.client === name) n += 1;
      return n;
    },
  };
}
