import { suite } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { admitRemovals, forgetRemovals, removalKey } from "../../machines/dedup-window.js";

const dedup = suite("dedup window");

dedup("admits a project once and reports repeats as duplicates", () => {
  const r = admitRemovals([], ["a", "a", "b"], 4);
  assert.equal(r.fresh, ["a", "b"]);
  assert.equal(r.duplicates, ["a"]);
  assert.equal(r.keys, [removalKey("a"), removalKey("b")]);
});

dedup("at capacity 256 evicts the least recently seen key first", () => {
  let keys: string[] = [];
  for (let i = 0; i < 256; i++) keys = admitRemovals(keys, [`k${i}`], 256).keys;
  const r = admitRemovals(keys, ["k256"], 256);
  assert.is(r.keys.length, 256);
  assert.is(r.keys[0], removalKey("k1"));
  assert.equal(admitRemovals(r.keys, ["k0"], 256).fresh, ["k0"], "the evicted key is new again");
});

dedup("a suppressed duplicate never keeps its entry alive: the oldest entry ages out however often it repeats", () => {
  let keys: string[] = [];
  for (let i = 0; i < 256; i++) keys = admitRemovals(keys, [`k${i}`], 256).keys;
  const hit = admitRemovals(keys, ["k0"], 256);
  assert.equal(hit.duplicates, ["k0"]);
  assert.is(hit.keys[0], removalKey("k0"), "a hit leaves the window as it was");
  keys = admitRemovals(hit.keys, ["n1"], 256).keys;
  assert.not.ok(keys.includes(removalKey("k0")), "k0 is evicted first although it was the last hit");
});

dedup("forgetting a project takes its entry out, so its next removal is new (a new life)", () => {
  const w = admitRemovals([], ["a", "b", "c"], 8).keys;
  const f = forgetRemovals(w, ["b", "x", "b"]);
  assert.equal(f.forgotten, ["b"]);
  assert.equal(f.keys, [removalKey("a"), removalKey("c")]);
  assert.equal(w, [removalKey("a"), removalKey("b"), removalKey("c")], "the old window is not mutated");
  assert.equal(admitRemovals(f.keys, ["b", "a"], 8).fresh, ["b"]);
  assert.is(forgetRemovals(f.keys, ["zz"]).keys, f.keys, "nothing to forget: the same window");
});

dedup("never mutates the window it is given", () => {
  const before = Object.freeze([removalKey("a")]) as readonly string[];
  const r = admitRemovals(before, ["b", "a"], 1);
  assert.equal(before, [removalKey("a")]);
  assert.equal(r.keys, [removalKey("a")]);
  assert.equal(r.fresh, ["b", "a"], "capacity 1: b evicted a, so a is new again");
});

dedup("keys are per project id, so ids that look alike stay apart", () => {
  const r = admitRemovals([], ["a", "A", "a ", ""], 8);
  assert.equal(r.fresh, ["a", "A", "a ", ""]);
});

/** The reference: a FIFO of keys in a Map, oldest first, one id at a time; a hit changes nothing. */
function referenceAdmit(window: readonly string[], ids: readonly string[], capacity: number) {
  const fifo = new Map(window.map((k) => [k, true] as const));
  const fresh: string[] = [];
  const duplicates: string[] = [];
  for (const id of ids) {
    const key = removalKey(id);
    if (fifo.has(key)) {
      duplicates.push(id);
      continue;
    }
    fresh.push(id);
    fifo.set(key, true);
    while (fifo.size > capacity) fifo.delete(fifo.keys().next().value as string);
  }
  return { keys: [...fifo.keys()], fresh, duplicates };
}

dedup("matches a reference FIFO for any batches and forgets, including a window admitted into twice", () => {
  const id = fc.constantFrom("a", "b", "c", "d", "e", "f", "g", "h", "i", "j");
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 6 }),
      fc.array(fc.array(id, { maxLength: 8 }), { maxLength: 30 }),
      fc.nat(29),
      (capacity, batches, reuseAt) => {
        let window: readonly string[] = [];
        let older: readonly string[] | undefined;
        batches.forEach((batch, i) => {
          if (i === reuseAt) older = window;
          if (i % 3 === 2) {
            // Every third batch is forgotten instead (new lives) and must keep the set in step.
            const got = forgetRemovals(window, batch);
            assert.equal(
              got.keys,
              window.filter((k) => !batch.some((id) => removalKey(id) === k)),
            );
            window = got.keys;
            return;
          }
          const expected = referenceAdmit(window, batch, capacity);
          const got = admitRemovals(window, batch, capacity);
          assert.equal(got, expected);
          window = got.keys;
        });
        // A window that was admitted into before has handed its set on: it must still answer right.
        if (older !== undefined) assert.equal(admitRemovals(older, ["a", "j"], capacity), referenceAdmit(older, ["a", "j"], capacity));
      },
    ),
    { numRuns: 500 },
  );
});

dedup.run();
