/**
 * Runs one benchmark case in this process and writes its JSON result to the
 * file named by the third argument. bench/run.ts starts one of these per
 * case (with --expose-gc) so that cases do not share heap or JIT state.
 *
 *   node --expose-gc --import tsx bench/case-main.ts <case> '<options json>' <result file>
 */
import { writeFileSync } from "node:fs";
import { runCase, type CaseName } from "./cases/index.js";

const [name, json, out] = process.argv.slice(2);
if (!name || !json || !out) {
  console.error("usage: case-main.ts <case> <options json> <result file>");
  process.exit(2);
}
const result = await runCase(name as CaseName, JSON.parse(json) as Record<string, unknown>);
writeFileSync(out, JSON.stringify(result));
