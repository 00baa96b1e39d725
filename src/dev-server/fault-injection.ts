import { Code, ConnectError } from "@connectrpc/connect";
import { type DevServerCode, toStatusCode } from "./status-codes.js";

/** Longest delay a Node timer keeps (2^31 - 1 ms); anything above fires after 1 ms. */
const maxTimerMs = 2 ** 31 - 1;

/**
 * Faults that tests switch on at run time: failing SyncProjectState calls,
 * slowing them down, and refusing new ProjectEvents streams.
 */
export class FaultInjector {
  private syncFailuresLeft = 0;
  private syncFailureCode: Code = Code.Unavailable;
  private syncDelay = 0;
  private streamRejection: Code | undefined;
  private injected = 0;

  /** The next `n` SyncProjectState calls fail with `code`; replaces any pending count, 0 clears it. */
  failNextSyncs(n: number, code: DevServerCode = Code.Unavailable): void {
    if (!Number.isInteger(n) || n < 0 || n > maxTimerMs)
      throw new RangeError(`failNextSyncs: n must be an integer in [0, ${maxTimerMs}], got ${n}`);
    const known = statusCode("failNextSyncs", code);
    this.syncFailuresLeft = n;
    this.syncFailureCode = known;
  }

  /** Consumes one pending sync failure and returns it, if any. */
  takeSyncFailure(): ConnectError | undefined {
    if (this.syncFailuresLeft === 0) return undefined;
    this.syncFailuresLeft--;
    this.injected++;
    return new ConnectError("sync failure injected by dev server", this.syncFailureCode);
  }

  /** SyncProjectState answers only after `ms`; 0 answers at once. */
  setSyncDelayMs(ms: number): void {
    if (!(ms >= 0 && ms <= maxTimerMs))
      throw new RangeError(`setSyncDelayMs: ms must be in [0, ${maxTimerMs}] (Node's timer limit), got ${ms}`);
    this.syncDelay = ms;
  }

  /** Waits the configured sync delay; rejects as soon as `signal` aborts. */
  delaySync(signal: AbortSignal): Promise<void> {
    return abortableDelay(this.syncDelay, signal);
  }

  /** While `code` is set, new ProjectEvents calls fail at once with it; undefined lifts it. */
  rejectStreams(code: DevServerCode | undefined): void {
    this.streamRejection = code === undefined ? undefined : statusCode("rejectStreams", code);
  }

  /** The error a new ProjectEvents call must fail with, if streams are being rejected. */
  streamRejectionError(): ConnectError | undefined {
    if (this.streamRejection === undefined) return undefined;
    return new ConnectError("stream rejected by dev server", this.streamRejection);
  }

  /** How many sync failures were injected so far. */
  get syncFailuresInjected(): number {
    return this.injected;
  }
}

function statusCode(what: string, code: DevServerCode): Code {
  const known = toStatusCode(code);
  if (known === undefined)
    throw new RangeError(`${what}: unknown gRPC status code ${JSON.stringify(code)} (a name such as "unavailable", or 1 to 16)`);
  return known;
}

function abortableDelay(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(ConnectError.from(signal.reason, Code.Canceled));
  if (ms <= 0) return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(ConnectError.from(signal.reason, Code.Canceled));
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
