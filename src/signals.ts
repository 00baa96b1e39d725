/**
 * Abort plumbing on the bridge clock, as connect's protocol/signals.ts: a
 * controller linked to other signals, and a deadline signal. Both hand back
 * their cleanup, so no listener or timer outlives the call it was made for.
 */
import type { Clock } from "./types.js";

/** An AbortController that also aborts when any of its source signals does. */
export interface LinkedAbortController extends AbortController {
  /** Removes the listeners on the source signals (done by itself when it aborts). Idempotent. */
  cleanup(): void;
}

/**
 * Creates a controller that aborts, with the same reason, as soon as one of
 * `signals` aborts (at once when one already has). Undefined entries are
 * skipped.
 */
export function createLinkedAbortController(...signals: Array<AbortSignal | undefined>): LinkedAbortController {
  const controller = new AbortController();
  const sources = signals.filter((s): s is AbortSignal => s !== undefined);
  const onAbort = (event: Event): void => controller.abort((event.target as AbortSignal).reason);
  let linkedTo = sources;
  const cleanup = (): void => {
    for (const s of linkedTo) s.removeEventListener("abort", onAbort);
    linkedTo = [];
  };
  const linked = Object.assign(controller, { cleanup });
  const already = sources.find((s) => s.aborted);
  if (already !== undefined) {
    controller.abort(already.reason);
    return linked;
  }
  for (const s of sources) s.addEventListener("abort", onAbort, { once: true });
  controller.signal.addEventListener("abort", cleanup, { once: true });
  return linked;
}

export interface DeadlineSignal {
  /** Aborts with `reason()` once `timeoutMs` passed on the clock. */
  readonly signal: AbortSignal;
  /** Clears the timer. Idempotent; call it once the guarded work settled. */
  cleanup(): void;
}

/** A signal that aborts after `timeoutMs` on `clock` (a SimulatedClock in tests). */
export function createDeadlineSignal(clock: Clock, timeoutMs: number, reason: () => unknown): DeadlineSignal {
  const controller = new AbortController();
  let armed = true;
  const timer = clock.setTimeout(() => {
    armed = false;
    controller.abort(reason());
  }, timeoutMs);
  return {
    signal: controller.signal,
    cleanup() {
      if (!armed) return;
      armed = false;
      clock.clearTimeout(timer);
    },
  };
}
