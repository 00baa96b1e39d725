#!/usr/bin/env node
// Runs one uvu suite file and records its results as data, for
// scripts/test.mjs: `node --import tsx scripts/uvu-file.mjs FILE`, with
// TEST_RESULT_FILE naming where the JSON goes. uvu's own human-readable
// output still goes to stdout; nothing reads it back.
//
// It uses uvu 0.5's documented hook for runners (what uvu/run does):
// UVU_DEFER makes `suite.run()` only queue the suite in UVU_QUEUE; then each
// queued runner is wrapped to keep what it returns ([errors | true, passed,
// skipped, total]) and uvu's exec() runs them.
import { writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

const file = process.argv[2];
const resultFile = process.env.TEST_RESULT_FILE;
if (!file || !resultFile) {
  console.error("usage: TEST_RESULT_FILE=out.json node --import tsx scripts/uvu-file.mjs FILE");
  process.exit(2);
}

globalThis.UVU_DEFER = 1;
globalThis.UVU_INDEX = 0;
globalThis.UVU_QUEUE = [[null]];
const uvu = await import("uvu");
await import(pathToFileURL(resolve(file)).href);

const suites = [];
const group = globalThis.UVU_QUEUE[0];
for (let i = 1; i < group.length; i++) {
  const run = group[i];
  group[i] = async () => {
    const result = await run();
    const [errors, passed, skipped, total] = result;
    suites.push({ passed, skipped, total, failed: total - passed, errors: errors === true ? "" : String(errors) });
    return result;
  };
}
await uvu.exec();

const sum = (key) => suites.reduce((n, s) => n + s[key], 0);
writeFileSync(
  resultFile,
  JSON.stringify({
    file,
    suites: suites.length,
    total: sum("total"),
    passed: sum("passed"),
    failed: sum("failed"),
    skipped: sum("skipped"),
  }),
);
