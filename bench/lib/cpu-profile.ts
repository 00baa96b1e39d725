/**
 * Summarises a V8 .cpuprofile (from `node --cpu-prof`): self time per
 * function and per source area, and total (inclusive) time of chosen
 * functions, so the report can say where the time goes.
 */
import { readFileSync } from "node:fs";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileRow {
  name: string;
  /** Share of all non-idle samples, in percent. */
  percent: number;
}

export interface ProfileSummary {
  /** Non-idle sampled time, ms. */
  busyMs: number;
  topSelf: ProfileRow[];
  byArea: ProfileRow[];
  /** Inclusive share of functions whose name matches the asked patterns. */
  inclusive: ProfileRow[];
}

/** Where a frame's code lives: this project's files by name, node_modules by package, node internals. */
export function areaOf(url: string): string {
  if (url === "") return "(native/V8)";
  const nm = url.lastIndexOf("node_modules/");
  if (nm >= 0) {
    const rest = url.slice(nm + "node_modules/".length).split("/");
    return rest[0]?.startsWith("@") ? `${rest[0]}/${rest[1]}` : (rest[0] ?? url);
  }
  if (url.startsWith("node:")) return "node internals";
  const m = /\/(src|machines|bench)\/(.+)$/.exec(url);
  if (m) return `${m[1]}/${m[2]}`;
  return url;
}

export function summarizeCpuProfile(file: string, inclusivePatterns: RegExp[] = [], top = 15): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, "utf8")) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i] as number;
    const dt = profile.timeDeltas[i + 1] ?? 0;
    selfUs.set(id, (selfUs.get(id) ?? 0) + Math.max(0, dt));
  }
  const idle = new Set(["(idle)", "(program)", "(garbage collector)"]);
  let busy = 0;
  const fnSelf = new Map<string, number>();
  const areaSelf = new Map<string, number>();
  const incl = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (!node) continue;
    const name = node.callFrame.functionName || "(anonymous)";
    if (idle.has(name) && name !== "(garbage collector)") continue;
    busy += us;
    const area = name === "(garbage collector)" ? "(garbage collector)" : areaOf(node.callFrame.url);
    const key = `${name} ${area}:${node.callFrame.lineNumber + 1}`;
    fnSelf.set(key, (fnSelf.get(key) ?? 0) + us);
    areaSelf.set(area, (areaSelf.get(area) ?? 0) + us);
    if (inclusivePatterns.length > 0) {
      // Walk up once per sample node, counting each matching pattern once.
      const seen = new Set<string>();
      let cur: number | undefined = id;
      while (cur !== undefined) {
        const frame = byId.get(cur)?.callFrame;
        if (frame) {
          const label = `${frame.functionName || "(anonymous)"} ${areaOf(frame.url)}`;
          for (const p of inclusivePatterns) {
            if (!seen.has(p.source) && p.test(label)) {
              seen.add(p.source);
              incl.set(p.source, (incl.get(p.source) ?? 0) + us);
            }
          }
        }
        cur = parent.get(cur);
      }
    }
  }
  const rows = (m: Map<string, number>, n: number): ProfileRow[] =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([name, us]) => ({ name, percent: (100 * us) / busy }));
  return {
    busyMs: busy / 1000,
    topSelf: rows(fnSelf, top),
    byArea: rows(areaSelf, top),
    inclusive: inclusivePatterns.map((p) => ({ name: p.source, percent: (100 * (incl.get(p.source) ?? 0)) / busy })),
  };
}
