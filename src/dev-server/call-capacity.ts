/**
 * A server of finite capacity: every call (a ProjectEvents open or a
 * SyncProjectState) costs one unit of work, as the engram server's bcrypt
 * check of the bearer token does, and the server does `callsPerSecond` units
 * a second. Shared by the dev server (`serve --max-calls-per-second`, real
 * timers) and the fleet simulation (bench/fleet/, a simulated clock).
 *
 * Two service disciplines:
 * - "fifo": `workers` calls in service at once, each for
 *   workers × 1000 / callsPerSecond ms; the rest wait in a FIFO queue. A
 *   call aborted while it waits leaves the queue; one aborted in service
 *   keeps its worker until its work is done (the CPU is spent anyway).
 * - "processor-sharing": every call is in service at once and shares the
 *   capacity equally (grpc-go serves each call in its own goroutine, so a
 *   CPU-bound token check slows every call together). An aborted call keeps
 *   its share until its work is done (a bcrypt comparison does not look at
 *   the call's context).
 *
 * With `maxPendingCalls`, a call arriving while that many calls are waiting
 * or in service is refused at once, at no cost, with RESOURCE_EXHAUSTED (or
 * UNAVAILABLE), optionally with a `grpc-retry-pushback-ms` trailer (gRFC A6)
 * saying how long the work already accepted takes to drain.
 */
import { Code, ConnectError } from "@connectrpc/connect";

/** The timers the model runs on: real ones, or a simulated clock's. */
export interface CapacityClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(id: unknown): void;
}

export type CapacityDiscipline = "fifo" | "processor-sharing";

/** Options of createCallCapacity(). */
export interface CallCapacityOptions {
  /** Units of work (calls) the server completes per second at full load. Required, > 0. */
  callsPerSecond: number;
  /** Defaults to "fifo". */
  discipline?: CapacityDiscipline | undefined;
  /** FIFO: calls in service at once. Defaults to 1. */
  workers?: number | undefined;
  /** Calls waiting or in service past which a new call is refused at once. Defaults to none (unbounded). */
  maxPendingCalls?: number | undefined;
  /** Refusals carry `grpc-retry-pushback-ms` (the time the pending work takes). Defaults to false. */
  pushback?: boolean | undefined;
  /** gRPC code of refusals. Defaults to "resource_exhausted". */
  refuseWith?: "resource_exhausted" | "unavailable" | undefined;
  /** Defaults to real timers (performance.now, setTimeout). */
  clock?: CapacityClock | undefined;
  /** Called when a call's work is done: how long it waited beyond its own service time, in ms, and whether its caller had gone. */
  onServed?: ((waitMs: number, abandoned: boolean) => void) | undefined;
}

export interface CallCapacityCounters {
  /** Calls that asked for service. */
  arrived: number;
  /** Calls refused at once (the bound). */
  refused: number;
  /** Calls whose work was done (their callers may have gone meanwhile). */
  served: number;
  /** Calls aborted while they waited in the FIFO queue (no work spent). */
  abandonedQueued: number;
  /** Calls aborted while in service (work spent for nothing). */
  abandonedInService: number;
  /** Calls failed by reset(). */
  reset: number;
}

export interface CallCapacity {
  /**
   * Resolves once the call's unit of work is done; rejects with a
   * ConnectError when refused, with `signal.reason` when aborted before
   * that, and with the reset's error when reset() comes first.
   */
  admit(signal?: AbortSignal): Promise<void>;
  /** Changes the capacity from now on (a slow period). */
  setCallsPerSecond(callsPerSecond: number): void;
  readonly callsPerSecond: number;
  /** Calls waiting or in service (aborted ones still in service included). */
  readonly pending: number;
  /** FIFO: calls waiting for a worker; processor sharing: calls in service. */
  readonly queued: number;
  readonly counters: Readonly<CallCapacityCounters>;
  /** Fails every pending call with `error` (the instance went away); their work is dropped. */
  reset(error: unknown): void;
}

interface Job {
  arrivedAt: number;
  resolve: () => void;
  reject: (e: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  /** Settled (aborted or reset): nobody waits for it any more. */
  gone: boolean;
  /** Processor sharing: the virtual time at which its work is done. */
  finishV: number;
  /** Left the FIFO queue (aborted while waiting). */
  dropped: boolean;
}

const realClock: CapacityClock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (id) => clearTimeout(id as ReturnType<typeof setTimeout>),
};

export function createCallCapacity(options: CallCapacityOptions): CallCapacity {
  if (!(options.callsPerSecond > 0)) throw new RangeError(`callsPerSecond must be > 0, got ${options.callsPerSecond}`);
  const workers = options.workers ?? 1;
  if (!Number.isInteger(workers) || workers < 1) throw new RangeError(`workers must be a positive integer, got ${workers}`);
  const clock = options.clock ?? realClock;
  const discipline = options.discipline ?? "fifo";
  const bound = options.maxPendingCalls ?? Number.POSITIVE_INFINITY;
  let rate = options.callsPerSecond;
  const counters: CallCapacityCounters = { arrived: 0, refused: 0, served: 0, abandonedQueued: 0, abandonedInService: 0, reset: 0 };

  // FIFO state: the queue (array with a moving head) and calls in service.
  let queue: Job[] = [];
  let head = 0;
  let queuedLive = 0;
  const inService = new Set<Job>();
  const serviceTimers = new Map<Job, unknown>();

  // Processor-sharing state: jobs in arrival order (all need one unit, so
  // they finish in that order), virtual time V (work done per job so far).
  let psJobs: Job[] = [];
  let psHead = 0;
  let v = 0;
  let vAt = clock.now();
  let psTimer: unknown;

  const serviceMs = () => (workers * 1000) / rate;
  const pending = () => (discipline === "fifo" ? queuedLive + inService.size : psJobs.length - psHead);

  function settle(job: Job): void {
    if (job.signal && job.onAbort) job.signal.removeEventListener("abort", job.onAbort);
  }

  function finish(job: Job, ownMs: number): void {
    counters.served++;
    options.onServed?.(Math.max(0, clock.now() - job.arrivedAt - ownMs), job.gone);
    if (job.gone) return;
    job.gone = true;
    settle(job);
    job.resolve();
  }

  // ---- FIFO ----
  function fifoPump(): void {
    while (inService.size < workers && head < queue.length) {
      const job = queue[head++] as Job;
      if (job.dropped) continue;
      queuedLive--;
      inService.add(job);
      const ms = serviceMs();
      serviceTimers.set(
        job,
        clock.setTimeout(() => {
          serviceTimers.delete(job);
          inService.delete(job);
          finish(job, ms);
          fifoPump();
        }, ms),
      );
    }
    if (head > 1024 && head * 2 > queue.length) {
      queue = queue.slice(head);
      head = 0;
    }
  }

  // ---- processor sharing ----
  function psAdvance(): void {
    const now = clock.now();
    const n = psJobs.length - psHead;
    if (n > 0) v += ((now - vAt) * rate) / 1000 / n;
    vAt = now;
  }
  function psSchedule(): void {
    if (psTimer !== undefined) clock.clearTimeout(psTimer);
    psTimer = undefined;
    const n = psJobs.length - psHead;
    if (n === 0) return;
    const next = psJobs[psHead] as Job;
    const ms = Math.max(0, ((next.finishV - v) * 1000 * n) / rate);
    psTimer = clock.setTimeout(psFire, ms);
  }
  function psFire(): void {
    psTimer = undefined;
    psAdvance();
    while (psHead < psJobs.length && (psJobs[psHead] as Job).finishV <= v + 1e-9) {
      const job = psJobs[psHead++] as Job;
      finish(job, 1000 / rate);
    }
    if (psHead > 1024 && psHead * 2 > psJobs.length) {
      psJobs = psJobs.slice(psHead);
      psHead = 0;
    }
    psSchedule();
  }

  function refusal(): ConnectError {
    const code = options.refuseWith === "unavailable" ? Code.Unavailable : Code.ResourceExhausted;
    const metadata = new Headers();
    if (options.pushback) {
      const drainMs = (pending() * 1000) / rate;
      metadata.set("grpc-retry-pushback-ms", String(Math.ceil(drainMs)));
    }
    return new ConnectError(`server over capacity: ${pending()} calls pending`, code, metadata);
  }

  return {
    admit(signal) {
      counters.arrived++;
      if (signal?.aborted) return Promise.reject(signal.reason);
      if (pending() >= bound) {
        counters.refused++;
        return Promise.reject(refusal());
      }
      return new Promise<void>((resolve, reject) => {
        const job: Job = { arrivedAt: clock.now(), resolve, reject, signal, onAbort: undefined, gone: false, finishV: 0, dropped: false };
        if (signal) {
          job.onAbort = () => {
            if (job.gone) return;
            job.gone = true;
            if (discipline === "fifo" && !inService.has(job)) {
              job.dropped = true;
              queuedLive--;
              counters.abandonedQueued++;
            } else {
              counters.abandonedInService++;
            }
            reject(signal.reason);
          };
          signal.addEventListener("abort", job.onAbort, { once: true });
        }
        if (discipline === "fifo") {
          queue.push(job);
          queuedLive++;
          fifoPump();
        } else {
          psAdvance();
          job.finishV = v + 1;
          psJobs.push(job);
          psSchedule();
        }
      });
    },
    setCallsPerSecond(callsPerSecond) {
      if (!(callsPerSecond > 0)) throw new RangeError(`callsPerSecond must be > 0, got ${callsPerSecond}`);
      if (discipline === "processor-sharing") psAdvance();
      rate = callsPerSecond;
      if (discipline === "processor-sharing") psSchedule();
    },
    get callsPerSecond() {
      return rate;
    },
    get pending() {
      return pending();
    },
    get queued() {
      return discipline === "fifo" ? queuedLive : psJobs.length - psHead;
    },
    counters,
    reset(error) {
      const all: Job[] = [];
      for (let i = head; i < queue.length; i++) if (!(queue[i] as Job).dropped) all.push(queue[i] as Job);
      for (const job of inService) all.push(job);
      for (const id of serviceTimers.values()) clock.clearTimeout(id);
      for (let i = psHead; i < psJobs.length; i++) all.push(psJobs[i] as Job);
      if (psTimer !== undefined) clock.clearTimeout(psTimer);
      psTimer = undefined;
      queue = [];
      head = 0;
      queuedLive = 0;
      inService.clear();
      serviceTimers.clear();
      psJobs = [];
      psHead = 0;
      v = 0;
      vAt = clock.now();
      for (const job of all) {
        if (job.gone) continue;
        job.gone = true;
        counters.reset++;
        settle(job);
        job.reject(error);
      }
    },
  };
}
