import { suite } from "uvu";
import * as assert from "uvu/assert";
import { HeapSimulatedClock } from "../../bench/fleet/heap-clock.js";

const clock = suite("bench HeapSimulatedClock");

clock("fires timers in order of due time, then of creation, at their own due time", () => {
  const c = new HeapSimulatedClock();
  const fired: string[] = [];
  c.setTimeout(() => fired.push(`b@${c.now()}`), 20);
  c.setTimeout(() => fired.push(`a@${c.now()}`), 10);
  c.setTimeout(() => fired.push(`c@${c.now()}`), 20);
  c.increment(15);
  assert.equal(fired, ["a@10"]);
  assert.is(c.now(), 15);
  c.increment(100);
  assert.equal(fired, ["a@10", "b@20", "c@20"]);
  assert.is(c.now(), 115);
});

clock("a cleared timer never fires and nextDueMs skips it", () => {
  const c = new HeapSimulatedClock();
  let fired = 0;
  const id = c.setTimeout(() => fired++, 5);
  c.setTimeout(() => fired++, 50);
  c.clearTimeout(id);
  assert.is(c.nextDueMs(), 50);
  c.set(49);
  assert.is(fired, 0);
  c.set(50);
  assert.is(fired, 1);
  assert.is(c.nextDueMs(), undefined);
});

clock("a timer set by a firing timer fires in the same advance when it is due", () => {
  const c = new HeapSimulatedClock();
  const fired: number[] = [];
  c.setTimeout(() => {
    fired.push(c.now());
    c.setTimeout(() => fired.push(c.now()), 0);
    c.setTimeout(() => fired.push(c.now()), 30);
  }, 10);
  c.increment(20);
  assert.equal(fired, [10, 10]);
  c.increment(20);
  assert.equal(fired, [10, 10, 40]);
});

clock("refuses to travel back in time", () => {
  const c = new HeapSimulatedClock();
  c.set(10);
  assert.throws(() => c.set(5), /back in time/);
});

clock.run();
