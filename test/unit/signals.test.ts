/**
 * src/signals.ts: the linked abort controller and the deadline signal on the
 * bridge clock (SimulatedClock: no real time passes).
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { SimulatedClock } from "xstate";
import { createDeadlineSignal, createLinkedAbortController } from "../../src/signals.js";

const signals = suite("signals");

/** Counts the abort listeners added to and removed from `signal`. */
function listenerCount(signal: AbortSignal): () => number {
  let n = 0;
  const add = signal.addEventListener.bind(signal);
  const remove = signal.removeEventListener.bind(signal);
  type Add = typeof signal.addEventListener;
  type Remove = typeof signal.removeEventListener;
  signal.addEventListener = ((...args: Parameters<Add>) => {
    if (args[0] === "abort") n += 1;
    add(...args);
  }) as Add;
  signal.removeEventListener = ((...args: Parameters<Remove>) => {
    if (args[0] === "abort") n -= 1;
    remove(...args);
  }) as Remove;
  return () => n;
}

signals("a linked controller aborts with the reason of the first source that aborts", () => {
  const a = new AbortController();
  const b = new AbortController();
  const linked = createLinkedAbortController(a.signal, undefined, b.signal);
  assert.not.ok(linked.signal.aborted);
  b.abort("b first");
  assert.ok(linked.signal.aborted);
  assert.is(linked.signal.reason, "b first");
  a.abort("a later");
  assert.is(linked.signal.reason, "b first");
});

signals("a linked controller of an already aborted source starts aborted", () => {
  const a = new AbortController();
  a.abort("gone");
  const linked = createLinkedAbortController(new AbortController().signal, a.signal);
  assert.ok(linked.signal.aborted);
  assert.is(linked.signal.reason, "gone");
});

signals("cleanup (or its own abort) leaves no listener on the sources", () => {
  const source = new AbortController();
  const count = listenerCount(source.signal);
  const first = createLinkedAbortController(source.signal);
  assert.is(count(), 1);
  first.cleanup();
  first.cleanup();
  assert.is(count(), 0);
  source.abort("late");
  assert.not.ok(first.signal.aborted, "unlinked: the source's abort no longer reaches it");
  const other = new AbortController();
  const otherCount = listenerCount(other.signal);
  const second = createLinkedAbortController(other.signal);
  second.abort("own");
  assert.is(otherCount(), 0);
});

signals("a deadline signal aborts after exactly timeoutMs on the clock, with the given reason", () => {
  const clock = new SimulatedClock();
  const deadline = createDeadlineSignal(clock, 400, () => new Error("deadline"));
  clock.increment(399);
  assert.not.ok(deadline.signal.aborted);
  clock.increment(1);
  assert.ok(deadline.signal.aborted);
  assert.is((deadline.signal.reason as Error).message, "deadline");
  deadline.cleanup();
});

signals("a deadline signal's cleanup clears its timer", () => {
  const clock = new SimulatedClock();
  let cleared = 0;
  const clear = clock.clearTimeout.bind(clock);
  clock.clearTimeout = (id) => {
    cleared += 1;
    clear(id);
  };
  const deadline = createDeadlineSignal(clock, 100, () => "late");
  deadline.cleanup();
  deadline.cleanup();
  assert.is(cleared, 1);
  clock.increment(1000);
  assert.not.ok(deadline.signal.aborted);
});

signals.run();
