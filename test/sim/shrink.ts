/**
 * Shrinks a failing scenario to a short fault list: delta debugging over
 * the faults (drop chunks, then single faults, while the run still shows
 * the same violation class). Everything else of the scenario stays.
 */
import { simulate } from "./simulate.js";
import type { Scenario } from "./schedule.js";

export async function shrink(scenario: Scenario, kind: string, maxRuns = 300): Promise<{ scenario: Scenario; runs: number }> {
  let best = scenario;
  let runs = 0;
  const fails = async (s: Scenario) => {
    runs++;
    const r = await simulate(s);
    return r.violations.some((v) => v.kind === kind);
  };
  let chunk = Math.max(1, Math.floor(best.faults.length / 2));
  while (runs < maxRuns) {
    let removed = false;
    for (let start = 0; start < best.faults.length && runs < maxRuns; ) {
      const faults = best.faults.filter((_, i) => i < start || i >= start + chunk);
      const candidate = { ...best, faults };
      if (faults.length < best.faults.length && (await fails(candidate))) {
        best = candidate;
        removed = true;
      } else {
        start += chunk;
      }
    }
    if (chunk === 1 && !removed) break;
    if (!removed) chunk = Math.max(1, Math.floor(chunk / 2));
  }
  return { scenario: best, runs };
}
