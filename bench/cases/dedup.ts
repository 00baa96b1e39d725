/**
 * The dedup window: the machine's admitRemovals (machines/dedup-window.ts, a
 * JSON array in context, copied on every call so that context stays
 * immutable, first in first out: a hit refreshes nothing) against lru-cache
 * used the same way (`has` touches no recency) and a plain Map used as a
 * FIFO, at the bridge's capacity (256). Each op admits one project id, as the stream path
 * does per event; the window starts full.
 */
import { LRUCache } from "lru-cache";
import { admitRemovals, removalKey } from "../../machines/dedup-window.js";
import { RunSet, type Spread } from "../lib/stats.js";

export type DedupImpl = "admitRemovals" | "admitRemovals (batch of 64)" | "lru-cache" | "Map FIFO";
export type DedupWorkload = "all new" | "half repeats";

export interface DedupOptions {
  ops: number;
  runs: number;
  capacity: number;
}

export interface DedupResult {
  ops: number;
  runs: number;
  capacity: number;
  /** ns per admitted id, per workload and implementation. */
  nsPerOp: Record<DedupWorkload, Record<DedupImpl, Spread>>;
  /** admitRemovals ns/op divided by lru-cache ns/op, per workload (median of per-run ratios). */
  ratioVsLruCache: Record<DedupWorkload, Spread>;
  /** Every implementation reported the same number of fresh ids. */
  verified: Record<DedupWorkload, Record<DedupImpl, number>>;
}

function ids(workload: DedupWorkload, ops: number, capacity: number): string[] {
  const out: string[] = [];
  let next = 0;
  // A small fixed-seed LCG so that every run sees the same sequence.
  let seed = 12345;
  const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x80000000;
  for (let i = 0; i < ops; i++) {
    if (workload === "half repeats" && i > 0 && rnd() < 0.5) out.push(`p${Math.max(0, next - 1 - Math.floor(rnd() * capacity * 0.9))}`);
    else out.push(`p${next++}`);
  }
  return out;
}

type Runner = (seq: string[], capacity: number) => number;

const runners: Record<DedupImpl, Runner> = {
  admitRemovals(seq, capacity) {
    let window: string[] = Array.from({ length: capacity }, (_, i) => removalKey(`warm${i}`));
    let fresh = 0;
    for (const id of seq) {
      const r = admitRemovals(window, [id], capacity);
      window = r.keys;
      fresh += r.fresh.length;
    }
    return fresh;
  },
  "admitRemovals (batch of 64)"(seq, capacity) {
    let window: string[] = Array.from({ length: capacity }, (_, i) => removalKey(`warm${i}`));
    let fresh = 0;
    for (let i = 0; i < seq.length; i += 64) {
      const r = admitRemovals(window, seq.slice(i, i + 64), capacity);
      window = r.keys;
      fresh += r.fresh.length;
    }
    return fresh;
  },
  "lru-cache"(seq, capacity) {
    const cache = new LRUCache<string, true>({ max: capacity });
    for (let i = 0; i < capacity; i++) cache.set(removalKey(`warm${i}`), true);
    let fresh = 0;
    for (const id of seq) {
      const key = removalKey(id);
      if (!cache.has(key)) {
        cache.set(key, true);
        fresh++;
      }
    }
    return fresh;
  },
  "Map FIFO"(seq, capacity) {
    const map = new Map<string, true>();
    for (let i = 0; i < capacity; i++) map.set(removalKey(`warm${i}`), true);
    let fresh = 0;
    for (const id of seq) {
      const key = removalKey(id);
      if (map.has(key)) continue;
      map.set(key, true);
      fresh++;
      if (map.size > capacity) map.delete(map.keys().next().value as string);
    }
    return fresh;
  },
};

export function runDedup(options: DedupOptions): DedupResult {
  const workloads: DedupWorkload[] = ["all new", "half repeats"];
  const impls = Object.keys(runners) as DedupImpl[];
  const nsPerOp = {} as DedupResult["nsPerOp"];
  const ratio = {} as DedupResult["ratioVsLruCache"];
  const verified = {} as DedupResult["verified"];
  for (const w of workloads) {
    const seq = ids(w, options.ops, options.capacity);
    const set = new RunSet<DedupImpl | "ratio">();
    verified[w] = {} as Record<DedupImpl, number>;
    for (const impl of impls) runners[impl](seq.slice(0, Math.min(seq.length, 20_000)), options.capacity); // warm-up
    for (let r = 0; r < options.runs; r++) {
      const round = {} as Record<DedupImpl, number>;
      for (const impl of impls) {
        const t0 = process.hrtime.bigint();
        verified[w][impl] = runners[impl](seq, options.capacity);
        const ns = Number(process.hrtime.bigint() - t0) / seq.length;
        round[impl] = ns;
        set.add(impl, ns);
      }
      set.add("ratio", round.admitRemovals / round["lru-cache"]);
    }
    nsPerOp[w] = Object.fromEntries(impls.map((i) => [i, set.get(i)])) as Record<DedupImpl, Spread>;
    ratio[w] = set.get("ratio");
  }
  return { ops: options.ops, runs: options.runs, capacity: options.capacity, nsPerOp, ratioVsLruCache: ratio, verified };
}
