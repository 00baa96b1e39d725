/**
 * Rewrites bench/REPORT.md from the last results (bench/results/run.json and
 * fleet.json) without running anything: `node --import tsx bench/report.ts`.
 */
import { fileURLToPath } from "node:url";
import { writeReport } from "./lib/report.js";

console.log(writeReport(fileURLToPath(new URL(".", import.meta.url))));
