/**
 * The fleet's clock: the testing kit's SimulatedClock (a binary heap of
 * timers, so thousands of bridges' timers cost log n each, where xstate's
 * SimulatedClock sorts every pending timer on each flush), starting at 0
 * as the fleet's timelines do. Timers fire in order of due time, then of
 * creation; `now()` inside a callback is that timer's due time;
 * `nextDueMs()` lets a simulation jump from one timer to the next.
 */
import { SimulatedClock } from "../../src/testing/simulated-clock.js";

export class HeapSimulatedClock extends SimulatedClock {
  constructor() {
    super({ startMs: 0 });
  }
}
