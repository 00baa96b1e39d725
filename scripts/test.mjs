#!/usr/bin/env node
// The project's one test command. Runs the static checks (buf lint, generated
// code is current, TypeScript typecheck, Biome lint + format check) and then
// every uvu suite file in its own process, so a suite that leaves a handle
// open fails by timing out instead of hanging the run. Each suite file runs through
// scripts/uvu-file.mjs, which writes uvu's results as JSON to a file: the
// counts come from there and from the exit code, never from uvu's text.
// Ends with one plain line: "N passed, M failed".
//
// Usage: node scripts/test.mjs [--soak] [filter...]   (filters match test file
// paths; with a filter the static checks are skipped, but dist/ is still
// built; --soak runs the long-running test/**/*.soak.ts files instead of
// *.test.ts). TEST_RETRY_FLAKY=1 (.ci/run sets it) runs a failing suite file
// once more and names it on a "flaky" line if it then passes.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir, availableParallelism } from "node:os";
import { join, relative } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const soak = process.argv.includes("--soak");
const retryFlaky = process.env.TEST_RETRY_FLAKY === "1";
const filters = process.argv.slice(2).filter((a) => a !== "--soak");
const flaky = [];
const suffix = soak ? ".soak.ts" : ".test.ts";
const fileTimeoutMs = Number(process.env.TEST_FILE_TIMEOUT_MS ?? 180_000);
const concurrency = Number(process.env.TEST_CONCURRENCY ?? Math.max(1, Math.min(2, availableParallelism())));

let passed = 0;
let failed = 0;
const failures = [];
const started = Date.now();

function run(cmd, args, { timeoutMs = fileTimeoutMs, env = {} } = {}) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, {
      cwd: root,
      env: { ...process.env, NO_COLOR: "1", FORCE_COLOR: "0", ...env },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {
        child.kill("SIGKILL");
      }
    }, timeoutMs);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, out, timedOut });
    });
  });
}

async function check(name, cmd, args) {
  const r = await run(cmd, args, { timeoutMs: 300_000 });
  if (r.code === 0) {
    passed++;
    console.log(`ok   ${name}`);
  } else {
    failed++;
    failures.push(name);
    console.log(`FAIL ${name}\n${indent(r.out)}`);
  }
}

function indent(s) {
  return s
    .trimEnd()
    .split("\n")
    .map((l) => `     ${l}`)
    .join("\n");
}

function findTests(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...findTests(p));
    else if (name.endsWith(suffix)) out.push(p);
  }
  return out;
}

const stripAnsi = (s) => s.replace(/\x1b\[[0-9;]*m/g, "");

const resultsDir = mkdtempSync(join(tmpdir(), "engram-test-results-"));
process.on("exit", () => rmSync(resultsDir, { recursive: true, force: true }));

/** The JSON scripts/uvu-file.mjs wrote, or undefined when the file never got that far. */
function readResult(path) {
  if (!existsSync(path)) return undefined;
  try {
    const r = JSON.parse(readFileSync(path, "utf8"));
    return [r.total, r.passed, r.failed, r.skipped].every(Number.isInteger) ? r : undefined;
  } catch {
    return undefined;
  }
}

/**
 * With TEST_RETRY_FLAKY=1 (set by .ci/run only), a suite file that fails is run once more; if
 * it then passes it counts as passed and is named on a "flaky" line before
 * the summary, so a rare timing failure on a loaded machine is reported
 * rather than hidden, and cannot by itself sink a run.
 */
function retryOrFail(file, index, attempt, rel, why, text) {
  if (!retryFlaky || attempt > 1) return false;
  flaky.push(rel);
  console.log(`RETRY ${rel}: ${why}; running it once more\n${indent(text)}`);
  return runSuite(file, index + 100_000, attempt + 1);
}

async function runSuite(file, index, attempt = 1) {
  const rel = relative(root, file);
  const t0 = Date.now();
  const resultFile = join(resultsDir, `${index}.json`);
  const r = await run(process.execPath, ["--import", "tsx", join(root, "scripts/uvu-file.mjs"), rel], {
    env: { TEST_RESULT_FILE: resultFile },
  });
  const result = readResult(resultFile);
  const text = stripAnsi(r.out);
  const secs = ((Date.now() - t0) / 1000).toFixed(1);
  if (result === undefined) {
    const retried = retryOrFail(file, index, attempt, rel, r.timedOut ? "timed out" : `exited ${r.code ?? r.signal}`, text);
    if (retried) return retried;
    failed++;
    failures.push(rel);
    const why = r.timedOut
      ? `timed out after ${fileTimeoutMs} ms before its tests finished (an open handle or a hung test?)`
      : `exited ${r.code ?? r.signal} before its tests finished`;
    console.log(`FAIL ${rel} (${secs}s): ${why}\n${indent(text)}`);
    return;
  }
  const { total, passed: ok, failed: bad, skipped } = result;
  if (r.timedOut || bad > 0 || r.code !== 0 || total === 0) {
    const retried = retryOrFail(file, index, attempt, rel, `${ok}/${total}`, text);
    if (retried) return retried;
  }
  passed += ok;
  failed += bad;
  if (r.timedOut) {
    failed++;
    failures.push(`${rel} (did not exit)`);
    console.log(
      `FAIL ${rel} (${secs}s): tests ran but the process did not exit within ${fileTimeoutMs} ms: a handle was left open\n${indent(text)}`,
    );
  } else if (bad > 0 || r.code !== 0 || total === 0) {
    if (bad === 0) failed++;
    failures.push(rel);
    const why = bad > 0 ? `${ok}/${total}` : total === 0 ? "no tests ran" : `all ${total} passed but it exited ${r.code ?? r.signal}`;
    console.log(`FAIL ${rel} (${secs}s): ${why}\n${indent(text)}`);
  } else {
    console.log(`ok   ${rel} (${secs}s): ${ok} passed${skipped ? `, ${skipped} skipped` : ""}`);
    if (process.env.TEST_VERBOSE) console.log(indent(text));
    // Suites may print a line of figures worth keeping (coverage and the like).
    for (const line of text.split("\n")) {
      const at = line.indexOf("# ");
      if (at >= 0 && /^[\s•✘]*(\S.*?)?\s*$/.test(line.slice(0, at)) && line.slice(at).length > 2) console.log(`     ${line.slice(at)}`);
    }
  }
}

if (filters.length === 0 && !soak) {
  await check("buf lint", "npx", ["--no-install", "buf", "lint"]);
  const tmp = mkdtempSync(join(tmpdir(), "engram-gen-"));
  const gen = await run("npx", ["--no-install", "buf", "generate", "-o", tmp], { timeoutMs: 120_000 });
  if (gen.code !== 0) {
    failed++;
    failures.push("buf generate");
    console.log(`FAIL buf generate\n${indent(gen.out)}`);
  } else {
    await check("src/gen is what buf generate writes", "diff", ["-r", join(tmp, "src/gen"), join(root, "src/gen")]);
  }
  rmSync(tmp, { recursive: true, force: true });
  await check("typecheck (tsc --noEmit)", "npx", ["--no-install", "tsc", "--noEmit", "-p", "tsconfig.json"]);
  await check("biome ci (lint + format check)", "npx", ["--no-install", "biome", "ci", "."]);
}
// The CLI suites run bin/engram-serverevents.js, which runs the compiled
// dist/, and test/package packs dist/: build it from the sources first, also
// for a filtered run, so no suite runs a stale build.
await check("build dist/ (scripts/build.mjs)", process.execPath, [join(root, "scripts/build.mjs")]);

const files = findTests(join(root, "test")).filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)));
const queue = files.map((f, i) => [f, i]);
await Promise.all(
  Array.from({ length: concurrency }, async () => {
    for (let next = queue.shift(); next; next = queue.shift()) await runSuite(...next);
  }),
);

console.log(`\ntest files: ${files.length}, time: ${((Date.now() - started) / 1000).toFixed(1)}s`);
const passedOnRetry = flaky.filter((f) => !failures.includes(f));
if (passedOnRetry.length) console.log(`flaky (failed, then passed when run again): ${passedOnRetry.join(", ")}`);
if (failures.length) console.log(`failed: ${failures.join(", ")}`);
console.log(`${passed} passed, ${failed} failed`);
process.exitCode = failed > 0 || passed === 0 ? 1 : 0;
