/**
 * The simulator's command line (`npm run test:sim -- …`):
 *
 *   --seeds N [--from S]   run seeds S … S+N-1 (default: 1000 seeds from 1)
 *   --seed X [--verbose]   run one seed; --verbose prints its fault schedule and trace
 *   --shrink               shrink the first failure of each violation class to a short fault list
 *   --classify             shrink every failure and group the seeds by the kinds of the faults left
 *
 * Prints each failing seed with its violations and the one-line command that
 * replays it, then a summary by violation class. Exits 1 when a seed failed.
 */
import { drawScenario, describeFault, type Scenario } from "./schedule.js";
import { replayCommand } from "./replay-command.js";
import { shrink } from "./shrink.js";
import { simulate, violationKinds } from "./simulate.js";

function arg(name: string): string | undefined {
  const at = process.argv.indexOf(name);
  return at >= 0 ? process.argv[at + 1] : undefined;
}

const verbose = process.argv.includes("--verbose");
const doShrink = process.argv.includes("--shrink");
const classify = process.argv.includes("--classify");
/** Shrunk fault signature → seeds, per violation class (--classify). */
const signatures = new Map<string, number[]>();
const one = arg("--seed");
const from = Number(arg("--from") ?? 1);
const count = Number(arg("--seeds") ?? 1000);
const seeds = one !== undefined ? [Number(one)] : Array.from({ length: count }, (_, i) => from + i);

function printSchedule(s: Scenario): void {
  console.log(
    `  scenario: rtt ${s.rttMs} ms, headers ${s.headers}, chaos ${s.chaosMs} ms, projects [${s.projects.join(",")}], tracked [${s.tracked.join(",")}]`,
  );
  for (const f of s.faults) console.log(`    ${describeFault(f)}`);
}

const byKind = new Map<string, number[]>();
let failed = 0;
const wall0 = performance.now();
for (const seed of seeds) {
  const scenario = drawScenario(seed);
  const r = await simulate(scenario, { trace: verbose });
  if (verbose) {
    printSchedule(scenario);
    console.log("  trace:");
    for (const l of r.trace) console.log(`    ${l}`);
  }
  if (r.violations.length === 0) {
    if (one !== undefined) console.log(`seed ${seed}: ok (${r.steps} steps, ${r.deliveries} deliveries, ${r.simMs} ms simulated)`);
    continue;
  }
  failed++;
  const kinds = violationKinds(r);
  console.log(`FAIL seed ${seed}: ${kinds.join(", ")}`);
  for (const v of r.violations.slice(0, 5)) console.log(`  +${v.atMs} ${v.kind}: ${v.detail}`);
  console.log(`  replay: ${replayCommand(seed)}`);
  for (const k of kinds) {
    const list = byKind.get(k) ?? [];
    list.push(seed);
    byKind.set(k, list);
    if (classify) {
      const small = await shrink(scenario, k, 150);
      const sig = `${k}: [${small.scenario.faults.map((f) => f.kind + ("ignoreAbort" in f && f.ignoreAbort ? "(ignoreAbort)" : "")).join(" ")}]`;
      const seen = signatures.get(sig) ?? [];
      seen.push(seed);
      signatures.set(sig, seen);
      if (seen.length === 1) console.log(`  new class ${sig}:\n    ${small.scenario.faults.map(describeFault).join("\n    ")}`);
    } else if (doShrink && list.length === 1) {
      const small = await shrink(scenario, k);
      console.log(`  shrunk (${k}, ${small.runs} runs) to ${small.scenario.faults.length} of ${scenario.faults.length} faults:`);
      printSchedule(small.scenario);
    }
  }
}
const secs = ((performance.now() - wall0) / 1000).toFixed(1);
console.log(`\n${seeds.length} seeds, ${failed} failed, ${secs} s`);
for (const [k, list] of [...byKind].sort()) console.log(`  ${k}: ${list.length} seeds, e.g. ${list.slice(0, 8).join(" ")}`);
if (classify) {
  console.log("by shrunk fault list:");
  for (const [sig, list] of [...signatures].sort()) console.log(`  ${list.length} x ${sig} e.g. ${list.slice(0, 6).join(" ")}`);
}
process.exitCode = failed > 0 ? 1 : 0;
