/**
 * A SimulatedClock for thousands of timers. xstate's SimulatedClock sorts
 * every pending timer on each flush, and sorts again whenever a firing timer
 * sets or clears one (its "flushing invalidated" path), so with 10,000
 * bridges (~30,000 pending timers, most of which re-arm when they fire) one
 * simulated second costs minutes. This subclass keeps the same interface and
 * semantics (timers fire in order of due time, then of creation; `now()` is
 * simulated; `set()`/`increment()` fire what is due) with a binary heap, and
 * adds `nextDueMs()` so a simulation can jump from one timer to the next.
 * Unlike xstate's, `now()` inside a callback is that timer's own due time.
 */
import { SimulatedClock } from "xstate";

interface Timer {
  due: number;
  seq: number;
  fn: () => void;
}

export class HeapSimulatedClock extends SimulatedClock {
  #now = 0;
  #seq = 0;
  #heap: Timer[] = [];
  #live = new Map<number, Timer>();

  override now(): number {
    return this.#now;
  }

  override setTimeout(fn: (...args: unknown[]) => void, timeout: number): number {
    const timer: Timer = { due: this.#now + Math.max(0, timeout), seq: this.#seq++, fn: fn as () => void };
    this.#live.set(timer.seq, timer);
    this.#push(timer);
    return timer.seq;
  }

  override clearTimeout(id: number): void {
    // Lazy deletion: the heap entry is skipped when it comes up.
    this.#live.delete(id);
  }

  /** Pending timers. */
  get pending(): number {
    return this.#live.size;
  }

  /** Due time of the next live timer, or undefined. */
  nextDueMs(): number | undefined {
    this.#dropDead();
    return this.#heap[0]?.due;
  }

  override set(time: number): void {
    if (time < this.#now) throw new Error("Unable to travel back in time");
    for (;;) {
      this.#dropDead();
      const top = this.#heap[0];
      if (top === undefined || top.due > time) break;
      this.#pop();
      this.#live.delete(top.seq);
      this.#now = Math.max(this.#now, top.due);
      top.fn();
    }
    this.#now = time;
  }

  override increment(ms: number): void {
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
