/**
 * `npm run bench:fleet -- --capacity` (issue 21): the fleet against a server
 * of finite capacity (src/dev-server/call-capacity.ts on the simulated
 * clock), scenario by scenario, each policy side by side:
 *
 * - graceful: the server restarts gracefully at 120 s (GOAWAY to every
 *   stream, the next instance serving at once);
 * - abrupt: the server is down from 120 s for 30 s;
 * - slow: the capacity drops to half the steady heartbeat load (N/120
 *   calls/s) from 120 s for two minutes, no restart;
 * - steady80: steady state at 80 % of capacity (C = N/48).
 *
 * The fleet starts over the first minute against an unlimited server (so
 * that its start does not overload the server); the capacity model is on
 * from 90 s. Removals are made around the trigger: during the first 10 s
 * after a graceful restart, during an outage, during a slow period.
 * Capacities are given relative to N so that the study scales: N/20 is the
 * issue's "physical limit 2N/C = 40 s" (500/s at 10,000 bridges, 5,000/s at
 * 100,000), N/50 is 1.2× the steady heartbeat load N/60.
 *
 *   --capacity [--bridges=N] [--only=ID-PREFIX,...] [--policies=seed,bridge,old bridge]
 *   [--post-seconds=S] [--bridge-root=/path/to/other/checkout] [--reopen-window-ms=W] [--quick]
 *
 * --only picks cases by id prefix (graceful, graceful-fifo-n20, abrupt, slow,
 * steady80, …; see capacityCases); a run merges its results into the
 * existing bench/results/fleet-capacity.json (same N), so the study can be
 * run in pieces. --reopen-window-ms=W adds the policy "bridge, GOAWAY
 * reopen over W/1000 s" (a candidate rule, bench only; "variant" in
 * --policies).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { currentLoad, machineInfo } from "../lib/machine-info.js";
import { lineChartSpec, renderSvg, type SeriesPoint } from "../lib/plot.js";
import { createBridgeOn } from "../../src/bridge.js";
import type { BridgeOptions } from "../../src/index.js";
import { sharedBridgeMachine } from "../../src/bridge-machine-shared.js";
import type { CallCapacityOptions } from "../../src/dev-server/call-capacity.js";
import { seededRandom } from "../../test/helpers/seeded-random.js";
import { analyzeCapacity, type CapacityFigures } from "./capacity-analyze.js";
import type { RealCheckResult } from "./real-check.js";
import { type BridgeImpl, type FleetRun, type FleetScenario, loadBridgeImpl, localBridgeImpl, simulateFleet } from "./simulate.js";

export type CapacityScenarioKind = "graceful" | "abrupt" | "slow" | "steady80";

export interface CapacityCase {
  /** Short name, for --only (prefix match) and for merging runs. */
  id: string;
  kind: CapacityScenarioKind;
  /** Short name of the server variant, e.g. "fifo N/20". */
  server: string;
  callsPerSecond: number;
  discipline: "fifo" | "processor-sharing";
  maxPendingCalls?: number;
  pushback?: boolean;
  /** The case the plots show for this kind. */
  plotted?: boolean;
}

export interface CapacityResult {
  id: string;
  kind: CapacityScenarioKind;
  server: string;
  policy: string;
  callsPerSecond: number;
  /** 2N/C, s. */
  physicalLimitS: number;
  figures: CapacityFigures;
}

export interface CapacityResults {
  machine: ReturnType<typeof machineInfo> & { loadAtEnd: number };
  bridges: number;
  rttMs: number;
  postSeconds: number;
  policies: Array<{ name: string; source: string }>;
  command: string;
  results: CapacityResult[];
  /** Real sockets against the simulation at small scale (--real-check). */
  realCheck?: RealCheckResult[];
  totalS: number;
}

const triggerAtMs = 120_000;

/** The cases of the study for N bridges. */
export function capacityCases(n: number): CapacityCase[] {
  const c20 = Math.round(n / 20);
  const c50 = Math.round(n / 50);
  const cs: CapacityCase[] = [
    { id: "graceful-fifo-n10", kind: "graceful", server: "FIFO, C = N/10", callsPerSecond: Math.round(n / 10), discipline: "fifo" },
    { id: "graceful-fifo-n20", kind: "graceful", server: "FIFO, C = N/20", callsPerSecond: c20, discipline: "fifo", plotted: true },
    { id: "graceful-fifo-n50", kind: "graceful", server: "FIFO, C = N/50", callsPerSecond: c50, discipline: "fifo" },
    { id: "graceful-ps-n20", kind: "graceful", server: "PS, C = N/20", callsPerSecond: c20, discipline: "processor-sharing" },
    {
      id: "graceful-bound",
      kind: "graceful",
      server: "FIFO, C = N/20, bound 5 s of work",
      callsPerSecond: c20,
      discipline: "fifo",
      maxPendingCalls: 5 * c20,
    },
    {
      id: "graceful-pushback",
      kind: "graceful",
      server: "FIFO, C = N/20, bound 5 s, pushback",
      callsPerSecond: c20,
      discipline: "fifo",
      maxPendingCalls: 5 * c20,
      pushback: true,
    },
    { id: "abrupt-fifo-n20", kind: "abrupt", server: "FIFO, C = N/20", callsPerSecond: c20, discipline: "fifo", plotted: true },
    { id: "abrupt-fifo-n50", kind: "abrupt", server: "FIFO, C = N/50", callsPerSecond: c50, discipline: "fifo" },
    { id: "abrupt-ps-n20", kind: "abrupt", server: "PS, C = N/20", callsPerSecond: c20, discipline: "processor-sharing" },
    { id: "slow-fifo", kind: "slow", server: "FIFO, C = N/20, N/120 for 2 min", callsPerSecond: c20, discipline: "fifo", plotted: true },
    { id: "slow-ps", kind: "slow", server: "PS, C = N/20, N/120 for 2 min", callsPerSecond: c20, discipline: "processor-sharing" },
    {
      id: "steady80-fifo",
      kind: "steady80",
      server: "FIFO, C = N/48",
      callsPerSecond: Math.round(n / 48),
      discipline: "fifo",
      plotted: true,
    },
    { id: "steady80-ps", kind: "steady80", server: "PS, C = N/48", callsPerSecond: Math.round(n / 48), discipline: "processor-sharing" },
  ];
  return cs;
}

/** The scenario of one case; `returnS` is when the trigger ends. */
export function capacityScenario(
  c: CapacityCase,
  policy: "bridge" | "seed",
  n: number,
  postSeconds: number,
): { scenario: FleetScenario; triggerAtS: number; returnS: number } {
  const capacity: NonNullable<FleetScenario["capacity"]> = {
    fromMs: 90_000,
    callsPerSecond: c.callsPerSecond,
    discipline: c.discipline,
    ...(c.maxPendingCalls !== undefined ? { maxPendingCalls: c.maxPendingCalls } : {}),
    ...(c.pushback ? { pushback: true } : {}),
  } satisfies Omit<CallCapacityOptions, "clock"> & { fromMs: number };
  const removalCount = Math.max(10, Math.round(n / 100));
  const base = {
    policy,
    bridges: n,
    startSpreadMs: 60_000,
    removalsDuringOutage: 0,
    projectsPerBridge: 4,
    rttMs: 20,
    seed: 7,
    capacity,
  };
  const t = triggerAtMs;
  switch (c.kind) {
    case "graceful":
      return {
        scenario: {
          ...base,
          restartAtMs: t,
          removals: { fromMs: t, toMs: t + 10_000, count: removalCount },
          endMs: t + postSeconds * 1000,
        },
        triggerAtS: t / 1000,
        returnS: t / 1000,
      };
    case "abrupt":
      return {
        scenario: {
          ...base,
          outage: { atMs: t, forMs: 30_000 },
          removals: { fromMs: t + 1, toMs: t + 29_999, count: removalCount },
          endMs: t + 30_000 + postSeconds * 1000,
        },
        triggerAtS: t / 1000,
        returnS: (t + 30_000) / 1000,
      };
    case "slow":
      return {
        scenario: {
          ...base,
          slowPeriod: { atMs: t, forMs: 120_000, callsPerSecond: n / 120 },
          removals: { fromMs: t, toMs: t + 120_000, count: removalCount },
          endMs: t + 120_000 + postSeconds * 1000,
        },
        triggerAtS: t / 1000,
        returnS: (t + 120_000) / 1000,
      };
    case "steady80":
      return {
        scenario: { ...base, removals: { fromMs: t, toMs: t + 60_000, count: removalCount }, endMs: t + postSeconds * 1000 },
        triggerAtS: t / 1000,
        returnS: t / 1000,
      };
  }
}

function argValue(args: string[], name: string): string | undefined {
  return args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
}

/** The variant's policy name, e.g. "bridge, GOAWAY reopen over 30 s". */
export function variantName(reopenWindowMs: number, syncTimeoutMs?: number): string {
  return `bridge, GOAWAY reopen over ${reopenWindowMs / 1000} s${syncTimeoutMs !== undefined ? `, sync deadline ${syncTimeoutMs / 1000} s` : ""}`;
}

/** How --policies names a policy: "variant" for the --reopen-window-ms one. */
function policyKey(name: string): string {
  return name.startsWith("bridge, ") ? "variant" : name;
}

/**
 * A candidate next rule, bench only (--reopen-window-ms=W
 * [--variant-sync-timeout-ms=S]): this checkout's bridge with the wait
 * before reopening after a GOAWAY uniform in [0, W] instead of [0,
 * backoffMinMs], provided on the shared machine (the variant's own seeded
 * random source; its log lines do not announce the wait), and optionally a
 * longer sync deadline (timing.syncTimeoutMs), which stands in for "let a
 * sync the link probe found merely slow run on".
 */
function reopenWindowImpl(windowMs: number, syncTimeoutMs?: number): BridgeImpl {
  const random = seededRandom(21);
  const machine = sharedBridgeMachine.provide({ delays: { reopenDelay: () => Math.round(windowMs * random()) } });
  const withTiming = (options: BridgeOptions): BridgeOptions =>
    syncTimeoutMs === undefined ? options : { ...options, timing: { ...options.timing, syncTimeoutMs } };
  return {
    ...localBridgeImpl,
    label: `this checkout, reopenDelay uniform in [0, ${windowMs / 1000} s]${syncTimeoutMs !== undefined ? `, timing.syncTimeoutMs ${syncTimeoutMs}` : ""} (bench variant)`,
    createBridge: (options) => createBridgeOn(machine, withTiming(options)),
    createBridgeOn: (_machine, options) => createBridgeOn(machine, withTiming(options)),
  };
}

const kindTitle: Record<CapacityScenarioKind, string> = {
  graceful: "graceful restart (GOAWAY to every stream) at 120 s",
  abrupt: "abrupt restart: down from 120 s for 30 s",
  slow: "slow period: capacity N/120 from 120 s for 2 min",
  steady80: "steady state at 80 % of capacity",
};

/**
 * `save`, when given, is called with the results so far after each run (so
 * that a long study interrupted keeps what it measured).
 */
export async function runCapacityStudy(
  args: string[],
  outDir: string,
  save?: (partial: CapacityResults) => void,
): Promise<CapacityResults> {
  const t0 = performance.now();
  const quick = args.includes("--quick");
  const n = Number(argValue(args, "bridges") ?? (quick ? 200 : 10_000));
  const postSeconds = Number(argValue(args, "post-seconds") ?? (quick ? 120 : 300));
  const only = argValue(args, "only")?.split(",");
  const root = argValue(args, "bridge-root");
  const onlyPolicies = argValue(args, "policies")?.split(",");
  const windowArg = argValue(args, "reopen-window-ms");
  const reopenWindowMs = windowArg === undefined ? undefined : Number(windowArg);
  const variantSyncArg = argValue(args, "variant-sync-timeout-ms");
  const variantSyncTimeoutMs = variantSyncArg === undefined ? undefined : Number(variantSyncArg);
  const policies: Array<{ name: string; policy: "bridge" | "seed"; impl: BridgeImpl }> = [
    { name: "seed", policy: "seed" as const, impl: localBridgeImpl },
    ...(root ? [{ name: "old bridge", policy: "bridge" as const, impl: await loadBridgeImpl(root) }] : []),
    { name: "bridge", policy: "bridge" as const, impl: localBridgeImpl },
    ...(reopenWindowMs !== undefined
      ? [
          {
            name: variantName(reopenWindowMs, variantSyncTimeoutMs),
            policy: "bridge" as const,
            impl: reopenWindowImpl(reopenWindowMs, variantSyncTimeoutMs),
          },
        ]
      : []),
  ]
    .filter((p) => !onlyPolicies || onlyPolicies.includes(policyKey(p.name)))
    // In the order --policies gives them (the one that matters most first).
    .sort((a, b) => (onlyPolicies ? onlyPolicies.indexOf(policyKey(a.name)) - onlyPolicies.indexOf(policyKey(b.name)) : 0));
  const machine = machineInfo();
  const results: CapacityResult[] = [];
  let realChecks: RealCheckResult[] | undefined;
  if (args.includes("--real-check")) {
    // Real sockets at small scale; the simulation cases are skipped.
    const { realVersusSim } = await import("./real-check.js");
    const rn = Number(argValue(args, "real-bridges") ?? (quick ? 20 : 200));
    realChecks = [];
    const watchS = Number(argValue(args, "real-watch-seconds") ?? (quick ? 20 : 150));
    for (const policy of (["seed", "bridge"] as const).filter((p) => !onlyPolicies || onlyPolicies.includes(p))) {
      process.stdout.write(`fleet capacity: real sockets, ${rn} bridges, ${policy} … `);
      const r = await realVersusSim({
        bridges: rn,
        callsPerSecond: Math.max(1, Math.round(rn / (quick ? 4 : 20))),
        policy,
        startSpreadMs: quick ? 2000 : 60_000,
        watchMs: watchS * 1000,
        seed: 7,
      });
      process.stdout.write(`real ${r.realTo99S ?? "never"} s, simulated ${r.simTo99S ?? "never"} s\n`);
      realChecks.push(r);
    }
  }
  const plotted = new Map<CapacityScenarioKind, Map<string, FleetRun>>();
  for (const c of realChecks ? [] : capacityCases(n)) {
    if (only && !only.some((o) => c.id.startsWith(o))) continue;
    if (quick && !c.plotted) continue;
    for (const p of policies) {
      const { scenario, triggerAtS, returnS } = capacityScenario(c, p.policy, n, postSeconds);
      process.stdout.write(`fleet capacity: ${c.kind}, ${c.server} (${c.callsPerSecond}/s), ${n} bridges, ${p.name} … `);
      const run = await simulateFleet(scenario, undefined, p.impl);
      const figures = analyzeCapacity(run, triggerAtS, returnS);
      process.stdout.write(
        `${run.wallS.toFixed(0)} s: 99 % after ${figures.to99StreamingS ?? "never"} s, ${figures.amplification.toFixed(2)}×, ${figures.streamsTornDown} torn down\n`,
      );
      results.push({
        id: c.id,
        kind: c.kind,
        server: c.server,
        policy: p.name,
        callsPerSecond: c.callsPerSecond,
        physicalLimitS: (2 * n) / c.callsPerSecond,
        figures,
      });
      save?.(summary());
      if (c.plotted) {
        const m = plotted.get(c.kind) ?? new Map<string, FleetRun>();
        m.set(p.name, run);
        plotted.set(c.kind, m);
      } else {
        // Keep only what the plots need.
        run.deliveries.length = 0;
      }
      (globalThis as { gc?: () => void }).gc?.();
    }
  }

  // Plots: calls received per second and queue length, policies side by side.
  mkdirSync(outDir, { recursive: true });
  for (const [kind, runs] of plotted) {
    const calls: SeriesPoint[] = [];
    const queue: SeriesPoint[] = [];
    const fromS = 100;
    for (const [name, run] of runs) {
      const endS = run.streamCalls.length;
      for (let s = fromS; s < endS; s++) {
        calls.push({ t: s - 120, value: (run.streamCalls[s] ?? 0) + (run.syncCalls[s] ?? 0), series: `${name}: received` });
        if (name === "bridge" || runs.size === 1)
          calls.push({ t: s - 120, value: run.capacity?.servedCalls[s] ?? 0, series: `${name}: served` });
        queue.push({ t: s - 120, value: run.capacity?.queueMax[s] ?? 0, series: name });
      }
    }
    const sample = runs.values().next().value as FleetRun;
    const cps = sample.scenario.capacity?.callsPerSecond ?? 0;
    const bands =
      kind === "abrupt"
        ? [{ from: 0, to: 30, label: "server down" }]
        : kind === "slow"
          ? [{ from: 0, to: 120, label: "capacity N/120" }]
          : kind === "graceful"
            ? [{ from: 0, to: 1, label: "restart" }]
            : [];
    writeFileSync(
      join(outDir, `fleet-capacity-${kind}-calls.svg`),
      await renderSvg(
        lineChartSpec(calls, {
          title: `Calls per second (opens + syncs), ${n.toLocaleString("en")} bridges, ${kindTitle[kind]}, FIFO C = ${cps}/s`,
          xTitle: "seconds since the trigger",
          yTitle: "calls / s (symlog)",
          yScale: "symlog",
          bands,
          rules: [
            { y: cps, label: "capacity" },
            { y: n / 60, label: "N/60" },
          ],
        }),
      ),
    );
    writeFileSync(
      join(outDir, `fleet-capacity-${kind}-queue.svg`),
      await renderSvg(
        lineChartSpec(queue, {
          title: `Calls waiting at the server (largest in each second), ${kindTitle[kind]}, FIFO C = ${cps}/s`,
          xTitle: "seconds since the trigger",
          yTitle: "calls queued (symlog)",
          yScale: "symlog",
          bands,
        }),
      ),
    );
  }
  return summary();

  function summary(): CapacityResults {
    return {
      machine: { ...machine, loadAtEnd: currentLoad() },
      bridges: n,
      rttMs: 20,
      postSeconds,
      policies: policies.map((p) => ({ name: p.name, source: p.policy === "seed" ? "this checkout, seed policy" : p.impl.label })),
      command: `npm run bench:fleet -- ${args.join(" ")}`,
      results,
      ...(realChecks ? { realCheck: realChecks } : {}),
      totalS: (performance.now() - t0) / 1000,
    };
  }
}

/** Merges a run's results into earlier ones of the same fleet size (a case and policy run again replaces its entry). */
export function mergeCapacityResults(earlier: CapacityResults | undefined, now: CapacityResults): CapacityResults {
  if (!earlier || earlier.bridges !== now.bridges) return now;
  const key = (r: CapacityResult) => `${r.id}|${r.policy}`;
  const fresh = new Set(now.results.map(key));
  const order = capacityCases(now.bridges).map((c) => c.id);
  const results = [...earlier.results.filter((r) => !fresh.has(key(r))), ...now.results].sort(
    (a, b) => order.indexOf(a.id) - order.indexOf(b.id) || policyOrder(a.policy) - policyOrder(b.policy),
  );
  const policies = [...earlier.policies.filter((p) => !now.policies.some((q) => q.name === p.name)), ...now.policies].sort(
    (a, b) => policyOrder(a.name) - policyOrder(b.name),
  );
  const realCheck = [
    ...(earlier.realCheck ?? []).filter((r) => !now.realCheck?.some((q) => q.policy === r.policy)),
    ...(now.realCheck ?? []),
  ];
  return {
    ...now,
    policies,
    results,
    ...(realCheck.length > 0 ? { realCheck } : {}),
    totalS: earlier.totalS + now.totalS,
    command: `${earlier.command}; ${now.command}`,
  };
}

function policyOrder(name: string): number {
  return name === "seed" ? 0 : name === "old bridge" ? 1 : name === "bridge" ? 2 : 3;
}
