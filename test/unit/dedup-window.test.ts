import { suite } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { admitRemovals, removalKey } from "../../machines/dedup-window.js";

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

dedup("a hit moves the key to most recent so it outlives older keys", () => {
  let keys: string[] = [];
  for (let i = 0; i < 256; i++) keys = admitRemovals(keys, [`k${i}`], 256).keys;
  keys = admitRemovals(keys, ["k0"], 256).keys;
  assert.is(keys.at(-1), removalKey("k0"));
  keys = admitRemovals(keys, ["n1", "n2"], 256).keys;
  assert.ok(keys.includes(removalKey("k0")));
  assert.not.ok(keys.includes(removalKey("k1")));
  assert.is(keys[0], removalKey("k3"));
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

/** The reference: an LRU of keys in a Map, oldest first, one id at a time. */
function referenceAdmit(window: readonly string[], ids: readonly string[], capacity: number) {
  const lru = new Map(window.map((k) => [k, true] as const));
  const fresh: string[] = [];
  const duplicates: string[] = [];
  for (const id of ids) {
    const key = removalKey(id);
    if (lru.delete(key)) duplicates.push(id);
    else fresh.push(id);
    lru.set(key, true);
    while (lru.size > capacity) lru.delete(lru.keys().next().value as string);
  }
  return { keys: [...lru.keys()], fresh, duplicates };
}

dedup("matches a reference LRU for any batches, including a window admitted into twice", () => {
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
