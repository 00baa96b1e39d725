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
import { type CallCapacity, type CallCapacityOptions, createCallCapacity } from "../../src/dev-server/call-capacity.js";
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

/** Per-second maxima, grown on demand. */
export class PerSecondMax {
  readonly values: number[] = [];
  note(atMs: number, value: number): void {
    const s = Math.floor(atMs / 1000);
    while (this.values.length <= s) this.values.push(0);
    if (value > (this.values[s] ?? 0)) this.values[s] = value;
  }
  at(s: number): number {
    return this.values[s] ?? 0;
  }
}

export interface SimServerOptions {
  clock: HeapSimulatedClock;
  /** Round trip between a daemon and the server, ms. */
  rttMs: number;
  /**
   * Finite capacity (src/dev-server/call-capacity.ts on the simulated clock):
   * every open and every sync is one unit of work. Defaults to none: every
   * call answered in one round trip, however many arrive.
   */
  capacity?: Omit<CallCapacityOptions, "clock" | "onServed"> | undefined;
  /** The error a stream ends with on a graceful restart (the bridge's ServerGoawayError). Defaults to UNAVAILABLE. */
  goawayError?: (() => Error) | undefined;
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
  /** The capacity model, if any; applies only while `capacityOn`. */
  readonly capacity: CallCapacity | undefined;
  capacityOn = false;
  /** Calls refused at once by the capacity bound, per second. */
  readonly refusedCalls = new PerSecond();
  /** Calls whose work was done, per second (answers, whether or not the caller still waited). */
  readonly servedCalls = new PerSecond();
  /** Largest number of calls waiting (FIFO) or in service (processor sharing) seen in each second. */
  readonly queueMax = new PerSecondMax();
  /** Wait of each served call beyond its own service time, ms. */
  readonly waitsMs: number[] = [];
  /** Streams the server accepted. */
  streamsServed = 0;
  /** Accepted streams that the client aborted while the server was up and had not ended them: torn down on suspicion. */
  streamsAbortedByClient = 0;
  /** While false (e.g. while the fleet is being stopped) client aborts are not counted. */
  counting = true;
  private readonly goawayError: () => Error;
  private readonly removed = new Set<string>();
  private readonly streams = new Set<SimStream>();
  private eventId = 0;

  constructor(options: SimServerOptions) {
    this.clock = options.clock;
    this.rttMs = options.rttMs;
    this.goawayError = options.goawayError ?? (() => new ConnectError("server sent GOAWAY", Code.Unavailable));
    if (options.capacity) {
      this.capacity = createCallCapacity({
        ...options.capacity,
        clock: this.clock,
        onServed: (waitMs) => {
          this.servedCalls.add(this.clock.now());
          this.waitsMs.push(waitMs);
          this.noteQueue();
        },
      });
    }
  }

  private noteQueue(): void {
    if (this.capacity) this.queueMax.note(this.clock.now(), this.capacity.queued);
  }

  /**
   * Waits for the call's unit of work when the capacity model is on; throws
   * the refusal (after the half round trip back) or the abort.
   */
  private async serve(signal: AbortSignal): Promise<void> {
    const capacity = this.capacity;
    if (!capacity || !this.capacityOn) return;
    const refusedBefore = capacity.counters.refused;
    const admitted = capacity.admit(signal);
    // A refusal is decided at once, so the counter tells it from a reset.
    if (capacity.counters.refused > refusedBefore) this.refusedCalls.add(this.clock.now());
    this.noteQueue();
    try {
      await admitted;
    } catch (e) {
      if (signal.aborted) throw signal.reason;
      await this.wait(this.rttMs / 2, signal);
      throw e;
    }
  }

  /**
   * A graceful restart: every open stream ends with GOAWAY, the calls the
   * old instance held fail with UNAVAILABLE, and the next instance serves at once.
   */
  restart(): void {
    for (const s of this.streams) s.fail(this.goawayError() as ConnectError);
    this.streams.clear();
    this.capacity?.reset(new ConnectError("server restarting (GOAWAY)", Code.Unavailable));
  }

  get openStreams(): number {
    return this.streams.size;
  }

  /** The server goes away: open streams fail at once, new calls are refused. */
  goDown(): void {
    this.up = false;
    for (const s of this.streams) s.fail(new ConnectError("http/2 stream closed with error code CANCEL (0x8)", Code.Canceled));
    this.streams.clear();
    this.capacity?.reset(new ConnectError("connection reset", Code.Unavailable));
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
      // The link probe: the server's transport answers a PING after a round trip while it is up, however saturated.
      async checkConnection(opts) {
        if (!server.up) return false;
        try {
          await server.wait(server.rttMs, opts.signal);
        } catch {
          return false;
        }
        return server.up;
      },
      async *projectEvents(_req, opts) {
        const calledAt = server.clock.now();
        server.streamCalls.add(calledAt);
        await server.wait(server.rttMs / 2, opts.signal);
        if (!server.up) {
          await server.wait(server.rttMs / 2, opts.signal);
          throw new ConnectError("connect ECONNREFUSED", Code.Unavailable);
        }
        await server.serve(opts.signal);
        const stream = new SimStream(index);
        server.streams.add(stream);
        server.streamsServed++;
        server.acceptedAt.set(index, server.clock.now());
        server.acceptedCallAt.set(index, calledAt);
        const onAbort = () => {
          if (server.counting && server.up && server.streams.has(stream) && !stream.failed) server.streamsAbortedByClient++;
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
        await server.serve(opts.signal);
        const removed = req.localProjectIds.filter((id) => server.removed.has(id));
        await server.wait(server.rttMs / 2, opts.signal);
        // server_time_unix_ms 0: simulated time is not wall time, so no skew check.
        return create(SyncProjectStateResponseSchema, { removed, unknown: [], serverTimeUnixMs: 0n });
      },
    };
  }
}
