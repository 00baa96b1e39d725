/** What waitUntil() watches. */
export interface WaitUntilOptions {
  /** Names the wait in error messages, e.g. "waitForStreams(2)". */
  what: string;
  /** True once the wait is over. */
  ready: () => boolean;
  /** The current state for error messages, e.g. "1 open". */
  describe: () => string;
  /** Registers a callback for every change that may make ready() true; returns its unsubscribe. */
  subscribe: (onChange: () => void) => () => void;
  /** Give up after this long. */
  timeoutMs: number;
  /** Give up at once when this aborts (the server closed). */
  signal: AbortSignal;
}

/**
 * Resolves when ready() holds, re-checked on change events (no polling).
 * Rejects on timeout or abort with a message naming the wait and the state it
 * stopped at. Leaves no timer or listener behind.
 */
export function waitUntil(options: WaitUntilOptions): Promise<void> {
  const { what, ready, describe, timeoutMs, signal } = options;
  if (ready()) return Promise.resolve();
  if (signal.aborted) return Promise.reject(new Error(`${what}: the dev server is closed (${describe()})`));
  return new Promise<void>((resolve, reject) => {
    const finish = (error?: Error): void => {
      clearTimeout(timer);
      unsubscribe();
      signal.removeEventListener("abort", onAbort);
      if (error === undefined) resolve();
      else reject(error);
    };
    const onAbort = (): void => finish(new Error(`${what}: the dev server closed while waiting (${describe()})`));
    const timer = setTimeout(() => finish(new Error(`${what}: timed out after ${timeoutMs} ms (${describe()})`)), timeoutMs);
    const unsubscribe = options.subscribe(() => {
      if (ready()) finish();
    });
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
