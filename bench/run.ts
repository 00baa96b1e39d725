/**
 * `npm run bench`: every benchmark of the bridge against its baseline, each
 * case in its own child process (node --expose-gc), on the dev server in
 * another process on loopback. Writes bench/results/run.json and regenerates
 * bench/REPORT.md (with the fleet figures of bench/results/fleet.json, if
 * `npm run bench:fleet` ran).
 *
 *   node --import tsx bench/run.ts [--quick] [--only=throughput,latency] [--out=DIR]
 *
 * --quick runs every case with tiny sizes (a smoke run: the figures mean
 * nothing) and, unless --out is given, writes nowhere near the real report.
 */
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { CaseName } from "./cases/index.js";
import { currentLoad, machineInfo } from "./lib/machine-info.js";
import { writeReport, type RunResults } from "./lib/report.js";

const benchDir = fileURLToPath(new URL(".", import.meta.url));
const args = process.argv.slice(2);
const quick = args.includes("--quick");
const only = args
  .find((a) => a.startsWith("--only="))
  ?.slice("--only=".length)
  .split(",");
const outArg = args.find((a) => a.startsWith("--out="))?.slice("--out=".length);
const outDir = outArg ?? (quick ? mkdtempSync(join(tmpdir(), "bench-quick-")) : benchDir);

/** Sizes of each case: full (the report) and quick (smoke). */
const plan: Array<{ name: CaseName; full: Record<string, unknown>; quick: Record<string, unknown> }> = [
  {
    name: "throughput",
    full: {
      events: 200_000,
      runs: 3,
      warmupEvents: 10_000,
      profileEvents: 50_000,
      clients: ["connect-node", "grpc-js", "bridge", "connect-node+machine"],
      servers: ["dev", "fast"],
      profile: true,
    },
    quick: {
      events: 500,
      runs: 1,
      warmupEvents: 100,
      clients: ["connect-node", "grpc-js", "bridge", "connect-node+machine"],
      servers: ["dev", "fast"],
      profile: true,
    },
  },
  {
    name: "latency",
    full: { events: 3000, runs: 5, warmupEvents: 500, servers: ["dev", "fast"] },
    quick: { events: 50, runs: 1, warmupEvents: 20, servers: ["dev", "fast"] },
  },
  { name: "stop", full: { cycles: 1000, runs: 3, warmupCycles: 50 }, quick: { cycles: 5, runs: 1, warmupCycles: 1 } },
  { name: "reconnect", full: { runs: 5 }, quick: { runs: 1 } },
  { name: "heartbeat", full: { sizes: [1000, 10_000, 50_000], runs: 5 }, quick: { sizes: [100, 10_001], runs: 1 } },
  { name: "memory", full: { runs: 3, fleet: 1000, streams: 50 }, quick: { runs: 1, fleet: 10, streams: 2 } },
  { name: "dedup", full: { ops: 100_000, runs: 5, capacity: 256 }, quick: { ops: 1000, runs: 1, capacity: 256 } },
  { name: "breakdown", full: { events: 20_000, isolatedEvents: 300, runs: 3 }, quick: { events: 200, isolatedEvents: 20, runs: 1 } },
];

function runChild(name: CaseName, options: Record<string, unknown>, resultFile: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ["--expose-gc", "--import", "tsx", join(benchDir, "case-main.ts"), name, JSON.stringify(options), resultFile],
      {
        stdio: ["ignore", "inherit", "inherit"],
      },
    );
    child.on("error", reject);
    child.on("exit", (code, signal) => (code === 0 ? resolve() : reject(new Error(`bench case ${name} failed (${signal ?? code})`))));
  });
}

const started = performance.now();
const machine = machineInfo();
const resultsDir = join(outDir, "results");
mkdirSync(resultsDir, { recursive: true });
const scratch = mkdtempSync(join(tmpdir(), "bench-case-"));
const results: RunResults = { machine, quick, cases: {}, durationsS: {} };
try {
  for (const step of plan) {
    if (only && !only.includes(step.name)) continue;
    const options = { ...(quick ? step.quick : step.full) };
    if (options.profile === true) {
      delete options.profile;
      options.profileFile = join(scratch, `${step.name}.cpuprofile`);
    }
    const t0 = performance.now();
    process.stdout.write(`bench: ${step.name} … `);
    const file = join(scratch, `${step.name}.json`);
    await runChild(step.name, options, file);
    (results.cases as Record<string, unknown>)[step.name] = JSON.parse(readFileSync(file, "utf8"));
    results.durationsS[step.name] = (performance.now() - t0) / 1000;
    process.stdout.write(`${results.durationsS[step.name]?.toFixed(1)} s\n`);
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
results.machine.loadAtEnd = currentLoad();
results.totalS = (performance.now() - started) / 1000;
const thisRunS = results.totalS;
if (only) {
  // Keep the other cases' figures (and the machine line) of the last full run,
  // and say which cases were re-run since.
  try {
    const previous = JSON.parse(readFileSync(join(resultsDir, "run.json"), "utf8")) as RunResults;
    results.cases = { ...previous.cases, ...results.cases };
    results.durationsS = { ...previous.durationsS, ...results.durationsS };
    results.rerun = [...(previous.rerun ?? []), { cases: only, date: machine.date, loadAtStart: machine.loadAtStart }];
    results.machine = previous.machine;
    if (previous.totalS !== undefined) results.totalS = previous.totalS;
  } catch {
    // no previous run
  }
}
writeFileSync(join(resultsDir, "run.json"), `${JSON.stringify(results, null, 1)}\n`);
const report = writeReport(outDir);
console.log(`bench: done in ${thisRunS.toFixed(0)} s; report: ${report}`);
