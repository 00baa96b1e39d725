/**
 * One in-process simulated engram server for a whole fleet, on a simulated
 * clock: every bridge gets its own EventsClient (an injected client, as
 * BridgeOptions.client allows) backed by this object. Calls take half a round
 * trip to arrive and half to answer; while the server is down every call
 * fails with UNAVAILABLE after a round trip (connection refused) and open
 * streams fail at once (GOAWAY and reset). It counts, per simulated second,
 * ProjectEvents calls (connection attempts) and SyncProjectState calls.
 */
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  ProjectEventSchema,
  ProjectEventType,
  SyncProjectStateResponseSchema,
  type ProjectEvent,
} from "../../src/gen/engram/v1/engram_pb.js";
import type { EventsClient } from "../../src/types.js";
import type { HeapSimulatedClock } from "./heap-clock.js";

class SimStream {
  queue: ProjectEvent[] = [];
  failed: ConnectError | undefined;
  wake: (() => void) | undefined;
  constructor(readonly client: number) {}
  push(ev: ProjectEvent): void {
    this.queue.push(ev);
    this.wake?.();
  }
  fail(err: ConnectError): void {
    this.failed = err;
    this.wake?.();
  }
}

/** Per-second counters, grown on demand. */
export class PerSecond {
  readonly counts: number[] = [];
  add(atMs: number): void {
    const s = Math.floor(atMs / 1000);
    while (this.counts.length <= s) this.counts.push(0);
    this.counts[s] = (this.counts[s] ?? 0) + 1;
  }
  at(s: number): number {
    return this.counts[s] ?? 0;
  }
}

export interface SimServerOptions {
  clock: HeapSimulatedClock;
  /** Round trip between a daemon and the server, ms. */
  rttMs: number;
}

export class SimServer {
  readonly clock: HeapSimulatedClock;
  readonly rttMs: number;
  up = true;
  readonly streamCalls = new PerSecond();
  readonly syncCalls = new PerSecond();
  /** Sim time at which each client's latest stream was accepted. */
  readonly acceptedAt = new Map<number, number>();
  /** Sim time at which each client issued the ProjectEvents call that was accepted last. */
  readonly acceptedCallAt = new Map<number, number>();
  private readonly removed = new Set<string>();
  private readonly streams = new Set<SimStream>();
  private eventId = 0;

  constructor(options: SimServerOptions) {
    this.clock = options.clock;
    this.rttMs = options.rttMs;
  }

  get openStreams(): number {
    return this.streams.size;
  }

  /** The server goes away: open streams fail at once, new calls are refused. */
  goDown(): void {
    this.up = false;
    for (const s of this.streams) s.fail(new ConnectError("http/2 stream closed with error code CANCEL (0x8)", Code.Canceled));
    this.streams.clear();
  }

  comeBack(): void {
    this.up = true;
  }

  /** Marks a project removed and, while up, sends a REMOVED event to every open stream. */
  removeProject(id: string): void {
    this.removed.add(id);
    if (!this.up) return;
    const ev = create(ProjectEventSchema, { eventId: String(++this.eventId), eventType: ProjectEventType.REMOVED, projectId: id });
    for (const s of this.streams) {
      const stream = s;
      this.clock.setTimeout(() => stream.push(ev), this.rttMs / 2);
    }
  }

  /** Resolves after `ms` of simulated time; rejects when `signal` aborts first. */
  private wait(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason);
      const onAbort = () => {
        this.clock.clearTimeout(id);
        reject(signal.reason);
      };
      const id = this.clock.setTimeout(() => {
        signal.removeEventListener("abort", onAbort);
        resolve();
      }, ms);
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** The EventsClient of fleet member `index`. */
  clientFor(index: number): EventsClient {
    const server = this;
    return {
      async *projectEvents(_req, opts) {
        const calledAt = server.clock.now();
        server.streamCalls.add(calledAt);
        await server.wait(server.rttMs / 2, opts.signal);
        if (!server.up) {
          await server.wait(server.rttMs / 2, opts.signal);
          throw new ConnectError("connect ECONNREFUSED", Code.Unavailable);
        }
        const stream = new SimStream(index);
        server.streams.add(stream);
        server.acceptedAt.set(index, server.clock.now());
        server.acceptedCallAt.set(index, calledAt);
        const onAbort = () => {
          server.streams.delete(stream);
          stream.wake?.();
        };
        opts.signal.addEventListener("abort", onAbort, { once: true });
        try {
          await server.wait(server.rttMs / 2, opts.signal);
          opts.onHeader?.(new Headers({ "content-type": "application/grpc" }));
          for (;;) {
            if (opts.signal.aborted) return;
            const next = stream.queue.shift();
            if (next !== undefined) {
              yield next;
              continue;
            }
            if (stream.failed) throw stream.failed;
            await new Promise<void>((r) => (stream.wake = r));
            stream.wake = undefined;
          }
        } finally {
          opts.signal.removeEventListener("abort", onAbort);
          server.streams.delete(stream);
        }
      },
      async syncProjectState(req, opts) {
        server.syncCalls.add(server.clock.now());
        await server.wait(server.rttMs / 2, opts.signal);
        if (!server.up) {
          await server.wait(server.rttMs / 2, opts.signal);
          throw new ConnectError("connect ECONNREFUSED", Code.Unavailable);
        }
        const removed = req.localProjectIds.filter((id) => server.removed.has(id));
        await server.wait(server.rttMs / 2, opts.signal);
        // server_time_unix_ms 0: simulated time is not wall time, so no skew check.
        return create(SyncProjectStateResponseSchema, { removed, unknown: [], serverTimeUnixMs: 0n });
      },
    };
  }
}
