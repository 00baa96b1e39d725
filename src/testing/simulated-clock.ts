/**
 * The clock a daemon's tests drive: every timer of the bridge and of the
 * in-memory server runs on it, and nothing moves until the test moves it.
 * `now()` is epoch milliseconds (it starts at SIMULATED_EPOCH_MS, 2026-01-01,
 * unless told), so `status().timestamps` read as real dates and a health
 * check's "how long ago" arithmetic works as in production. It has the shape
 * of XState's SimulatedClock (`setTimeout`, `clearTimeout`, `now`, `set`,
 * `increment`), with a binary heap instead of a sort per flush, and it adds
 * what a driver needs to step from one timer to the next: `nextDueMs()` and
 * `fireNext()`. Inside a timer's callback `now()` is that timer's due time.
 *
 * Moving it with `set()`/`increment()` fires due timers back to back without
 * letting promise callbacks run in between; `advance()` and `runUntil()`
 * (src/testing/drive.ts) fire one timer at a time and let the callbacks run.
 */
import type { Clock } from "../types.js";

/** Where a SimulatedClock starts unless told: 2026-01-01T00:00:00Z. */
export const SIMULATED_EPOCH_MS = Date.UTC(2026, 0, 1);

export interface SimulatedClockOptions {
  /** The clock's first `now()`, in epoch ms. Defaults to SIMULATED_EPOCH_MS. */
  startMs?: number;
}

interface Timer {
  due: number;
  seq: number;
  fn: () => void;
}

/** A timer source whose time moves only when told. */
export class SimulatedClock implements Clock {
  #now: number;
  #seq = 0;
  #heap: Timer[] = [];
  #live = new Map<number, Timer>();

  constructor(options: SimulatedClockOptions = {}) {
    this.#now = options.startMs ?? SIMULATED_EPOCH_MS;
  }

  /** The simulated time, epoch ms. */
  now(): number {
    return this.#now;
  }

  setTimeout(fn: (...args: unknown[]) => void, timeout: number): number {
    const ms = Number.isFinite(timeout) ? Math.max(0, timeout) : 0;
    const timer: Timer = { due: this.#now + ms, seq: this.#seq++, fn: fn as () => void };
    this.#live.set(timer.seq, timer);
    this.#push(timer);
    return timer.seq;
  }

  clearTimeout(id: unknown): void {
    // Lazy deletion: the heap entry is skipped when it comes up.
    if (typeof id === "number") this.#live.delete(id);
  }

  /** How many timers are pending. */
  get pending(): number {
    return this.#live.size;
  }

  /** The due time of the next pending timer (epoch ms), or undefined when none is. */
  nextDueMs(): number | undefined {
    this.#dropDead();
    return this.#heap[0]?.due;
  }

  /**
   * Fires the next pending timer if it is due at or before `limitMs`
   * (moving `now()` to its due time first); returns whether one fired.
   */
  fireNext(limitMs = Number.POSITIVE_INFINITY): boolean {
    if (Number.isNaN(limitMs)) throw new RangeError("fireNext: the limit must be a number, got NaN");
    this.#dropDead();
    const top = this.#heap[0];
    if (top === undefined || top.due > limitMs) return false;
    this.#pop();
    this.#live.delete(top.seq);
    this.#now = Math.max(this.#now, top.due);
    top.fn();
    return true;
  }

  /** Moves to `timeMs`, firing every timer due by then, in order (no promise callback runs in between). */
  set(timeMs: number): void {
    if (!Number.isFinite(timeMs)) throw new RangeError(`set: the time must be a finite number, got ${String(timeMs)}`);
    if (timeMs < this.#now) throw new Error("Unable to travel back in time");
    while (this.fireNext(timeMs)) {}
    this.#now = timeMs;
  }

  /** Moves on by `ms`, firing every timer due by then. */
  increment(ms: number): void {
    this.set(this.#now + ms);
  }

  #dropDead(): void {
    while (this.#heap.length > 0 && !this.#live.has((this.#heap[0] as Timer).seq)) this.#pop();
  }

  #less(a: Timer, b: Timer): boolean {
    return a.due < b.due || (a.due === b.due && a.seq < b.seq);
  }

  #push(t: Timer): void {
    const h = this.#heap;
    h.push(t);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.#less(h[i] as Timer, h[p] as Timer)) break;
      [h[i], h[p]] = [h[p] as Timer, h[i] as Timer];
      i = p;
    }
  }

  #pop(): void {
    const h = this.#heap;
    const last = h.pop();
    if (h.length === 0 || last === undefined) return;
    h[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && this.#less(h[l] as Timer, h[m] as Timer)) m = l;
      if (r < h.length && this.#less(h[r] as Timer, h[m] as Timer)) m = r;
      if (m === i) break;
      [h[i], h[m]] = [h[m] as Timer, h[i] as Timer];
      i = m;
    }
  }
}
