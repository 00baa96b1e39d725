import { suite } from "uvu";
import * as assert from "uvu/assert";
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

dedup.run();
