/**
 * `npm run bench:fleet`: 100,000 bridges on one simulated clock against one
 * simulated server that goes down for 30 s and comes back, for the bridge's
 * policy and for the seed's; per-second reconnect attempts and sync calls,
 * delivery of removals made during the outage, and the heartbeat load over
 * the run (the outage in its middle). Writes bench/results/fleet.json and
 * the SVG plots, and regenerates bench/REPORT.md.
 *
 *   node --import tsx bench/fleet.ts [--bridges=N] [--minutes=M] [--quick] [--out=DIR]
 *   node --import tsx bench/fleet.ts --capacity [...]   (issue 21: bench/fleet/capacity-study.ts)
 *
 * --minutes is the bridge policy's simulated span (default 12 at 100,000
 * bridges, 60 below 20,000; the outage comes at its middle): the wall time
 * grows faster than bridges × minutes (the heap's GC): 100,000 bridges for
 * 12 minutes took about 15 min of wall time for the bridge policy on the
 * shared 2-core machine. Re-runs itself with a larger heap (100,000 running
 * bridges held about 4 GB under tsx).
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { analyzeHeartbeat, analyzeOutage } from "./fleet/analyze.js";
import { simulateFleet, type FleetPolicy, type FleetRun, type FleetScenario } from "./fleet/simulate.js";
import { currentLoad, machineInfo } from "./lib/machine-info.js";
import { lineChartSpec, renderSvg, type SeriesPoint } from "./lib/plot.js";
import { writeReport, type FleetResults } from "./lib/report.js";

const benchDir = fileURLToPath(new URL(".", import.meta.url));
const args = process.argv.slice(2);

if (!process.env.BENCH_FLEET_CHILD) {
  const r = spawnSync(
    process.execPath,
    ["--max-old-space-size=16384", "--max-semi-space-size=64", "--expose-gc", "--import", "tsx", fileURLToPath(import.meta.url), ...args],
    {
      stdio: "inherit",
      env: { ...process.env, BENCH_FLEET_CHILD: "1" },
    },
  );
  process.exit(r.status ?? 1);
}

if (args.includes("--capacity")) {
  // Issue 21: the fleet against a server of finite capacity (bench/fleet/capacity-study.ts).
  const dir =
    args.find((a) => a.startsWith("--out="))?.slice("--out=".length) ??
    (args.includes("--quick") ? mkdtempSync(join(tmpdir(), "fleet-quick-")) : benchDir);
  const { mergeCapacityResults, runCapacityStudy } = await import("./fleet/capacity-study.js");
  // The study's own size (10,000 bridges) goes to fleet-capacity.json; another --bridges to
  // fleet-capacity-nN.json, which the report shows as a subsection of its own (runs merge only
  // at the same size).
  const { capacityResultsFile } = await import("./lib/capacity-report.js");
  const file = join(dir, "results", capacityResultsFile(args));
  const earlier = existsSync(file) ? JSON.parse(readFileSync(file, "utf8")) : undefined;
  mkdirSync(join(dir, "results"), { recursive: true });
  const save = (partial: Parameters<typeof mergeCapacityResults>[1]) =>
    writeFileSync(file, `${JSON.stringify(mergeCapacityResults(earlier, partial))}\n`);
  const results = mergeCapacityResults(earlier, await runCapacityStudy(args, dir, save));
  writeFileSync(file, `${JSON.stringify(results)}\n`);
  console.log(`fleet capacity: done in ${results.totalS.toFixed(0)} s; report: ${writeReport(dir)}`);
  process.exit(0);
}

const quick = args.includes("--quick");
const bridges = Number(args.find((a) => a.startsWith("--bridges="))?.slice("--bridges=".length) ?? (quick ? 50 : 100_000));
const minutes = Number(
  args.find((a) => a.startsWith("--minutes="))?.slice("--minutes=".length) ?? (quick ? 10 : bridges >= 20_000 ? 12 : 60),
);
const outArg = args.find((a) => a.startsWith("--out="))?.slice("--out=".length);
const outDir = outArg ?? (quick ? mkdtempSync(join(tmpdir(), "fleet-quick-")) : benchDir);
const rttMs = 20;
const downForMs = 30_000;

/**
 * The bridge's policy runs for an hour: fleet started over the first minute,
 * steady heartbeat for 30 min, the outage at 30 min, then 30 min of
 * recovery. The seed's runs from start to 5 min after its outage (its
 * steady-state heartbeat is the same as the bridge's).
 */
function scenario(policy: FleetPolicy): FleetScenario {
  const hourMs = minutes * 60_000;
  const outageAtMs = policy === "bridge" ? hourMs / 2 : 120_000;
  return {
    policy,
    bridges,
    startSpreadMs: 60_000,
    outage: { atMs: outageAtMs, forMs: downForMs },
    removalsDuringOutage: Math.max(10, Math.round(bridges / 100)),
    projectsPerBridge: 4,
    endMs: policy === "bridge" ? hourMs : outageAtMs + 300_000,
    rttMs,
    seed: 7,
  };
}

const t0 = performance.now();
const machine = machineInfo();
const runs: Record<FleetPolicy, FleetRun> = {} as Record<FleetPolicy, FleetRun>;
for (const policy of ["bridge", "seed"] as const) {
  process.stdout.write(`fleet: ${bridges} bridges, ${policy} policy … `);
  runs[policy] = await simulateFleet(scenario(policy));
  process.stdout.write(`${runs[policy].wallS.toFixed(1)} s, heap ${runs[policy].heapUsedMB.toFixed(0)} MB\n`);
  (globalThis as { gc?: () => void }).gc?.();
}

const bridgeRun = runs.bridge;
const outageAtS = (bridgeRun.scenario.outage?.atMs ?? 0) / 1000;
const results: FleetResults = {
  machine: { ...machine, loadAtEnd: currentLoad() },
  quick,
  bridges,
  rttMs,
  downForS: downForMs / 1000,
  outage: { bridge: analyzeOutage(runs.bridge), seed: analyzeOutage(runs.seed) },
  heartbeat: {
    // Steady state: from 2 min after the first start to the outage.
    beforeOutage: analyzeHeartbeat(bridgeRun.syncCalls, bridges, 120, outageAtS - 1),
    // The rest of the hour after the outage (the return minute excluded).
    afterOutage: analyzeHeartbeat(bridgeRun.syncCalls, bridges, outageAtS + downForMs / 1000 + 60, bridgeRun.syncCalls.length - 1),
    wholeHour: analyzeHeartbeat(bridgeRun.syncCalls, bridges, 120, bridgeRun.syncCalls.length - 1),
  },
  series: {
    bridge: { streamCalls: runs.bridge.streamCalls, syncCalls: runs.bridge.syncCalls, outageAtS },
    seed: { streamCalls: runs.seed.streamCalls, syncCalls: runs.seed.syncCalls, outageAtS: (runs.seed.scenario.outage?.atMs ?? 0) / 1000 },
  },
  totalS: 0,
};

// Plots: around the outage, seconds relative to its start, both policies.
const around = (policy: FleetPolicy, key: "streamCalls" | "syncCalls", label: string): SeriesPoint[] => {
  const s = results.series[policy];
  const pts: SeriesPoint[] = [];
  for (let rel = -20; rel <= 120; rel++) pts.push({ t: rel, value: s[key][s.outageAtS + rel] ?? 0, series: label });
  return pts;
};
const band = [{ from: 0, to: downForMs / 1000, label: "server down" }];
const plots: Record<string, string> = {
  "fleet-reconnects.svg": await renderSvg(
    lineChartSpec([...around("bridge", "streamCalls", "bridge policy"), ...around("seed", "streamCalls", "seed policy")], {
      title: `ProjectEvents calls (connection attempts) per second, ${bridges.toLocaleString("en")} bridges`,
      xTitle: "seconds since the server went down",
      yTitle: "calls / s (symlog)",
      yScale: "symlog",
      bands: band,
    }),
  ),
  "fleet-syncs.svg": await renderSvg(
    lineChartSpec([...around("bridge", "syncCalls", "bridge policy"), ...around("seed", "syncCalls", "seed policy")], {
      title: `SyncProjectState calls per second around the outage, ${bridges.toLocaleString("en")} bridges`,
      xTitle: "seconds since the server went down",
      yTitle: "calls / s",
      bands: band,
      rules: [{ y: bridges / 60, label: "N/60" }],
    }),
  ),
};
{
  const s = bridgeRun.syncCalls;
  const pts: SeriesPoint[] = [];
  for (let i = 0; i + 10 <= s.length; i += 10)
    pts.push({ t: i / 60, value: s.slice(i, i + 10).reduce((a, b) => a + b, 0) / 10, series: "bridge policy, 10-s average" });
  plots["fleet-heartbeat-hour.svg"] = await renderSvg(
    lineChartSpec(pts, {
      title: `SyncProjectState calls per second over the run, ${bridges.toLocaleString("en")} bridges (outage at ${outageAtS / 60} min)`,
      xTitle: "minutes",
      yTitle: "calls / s",
      rules: [
        { y: (bridges / 60) * 1.2, label: "" },
        { y: bridges / 60, label: "N/60 ± 20 %" },
        { y: (bridges / 60) * 0.8, label: "" },
      ],
      bands: [{ from: outageAtS / 60, to: (outageAtS + downForMs / 1000) / 60, label: "down" }],
    }),
  );
}
results.totalS = (performance.now() - t0) / 1000;
mkdirSync(join(outDir, "results"), { recursive: true });
for (const [name, svg] of Object.entries(plots)) writeFileSync(join(outDir, name), svg);
writeFileSync(join(outDir, "results", "fleet.json"), `${JSON.stringify(results)}\n`);
const report = writeReport(outDir);
console.log(`fleet: done in ${results.totalS.toFixed(0)} s; report: ${report}`);
