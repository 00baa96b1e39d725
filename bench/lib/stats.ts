/** Small statistics for benchmark figures. */

/** The p-th percentile (0..100) of ascending `sorted`, nearest rank. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))] as number;
}

export function sortNumbers(values: Iterable<number>): Float64Array {
  return Float64Array.from(values).sort();
}

/** One figure over several runs: the median, with min and max. */
export interface Spread {
  median: number;
  min: number;
  max: number;
  runs: number[];
}

export function spread(runs: number[]): Spread {
  const s = [...runs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  const median = s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
  return { median, min: s[0] ?? Number.NaN, max: s[s.length - 1] ?? Number.NaN, runs };
}

export function mean(values: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i] as number;
  return values.length === 0 ? Number.NaN : sum / values.length;
}

/** Collects one Spread per key over several runs. */
export class RunSet<K extends string> {
  private readonly data = new Map<K, number[]>();
  add(key: K, value: number): void {
    const list = this.data.get(key) ?? [];
    list.push(value);
    this.data.set(key, list);
  }
  get(key: K): Spread {
    return spread(this.data.get(key) ?? []);
  }
  all(): Record<string, Spread> {
    return Object.fromEntries([...this.data].map(([k, v]) => [k, spread(v)]));
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
