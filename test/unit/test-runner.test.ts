/**
 * scripts/uvu-file.mjs, the part of the test runner that turns one suite
 * file into data: counts come from uvu's runners, not from its printed text,
 * and a file that dies before its tests finish leaves no result at all.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";

interface Ctx {
  dir: string;
}

const runner = suite<Ctx>("test runner");

runner.before.each((ctx) => {
  ctx.dir = mkdtempSync(join(tmpdir(), "engram-runner-test-"));
});
runner.after.each((ctx) => {
  rmSync(ctx.dir, { recursive: true, force: true });
});

function runFile(ctx: Ctx, fixture: string): { code: number | null; result: Record<string, unknown> | undefined } {
  const out = join(ctx.dir, "result.json");
  const r = spawnSync(process.execPath, ["--import", "tsx", "scripts/uvu-file.mjs", `test/fixtures/runner/${fixture}`], {
    env: { ...process.env, TEST_RESULT_FILE: out, NO_COLOR: "1" },
    encoding: "utf8",
    timeout: 60_000,
  });
  return { code: r.status, result: existsSync(out) ? (JSON.parse(readFileSync(out, "utf8")) as Record<string, unknown>) : undefined };
}

runner("counts every suite of a file: passed, failed, skipped, and exits 1 on a failure", (ctx) => {
  const { code, result } = runFile(ctx, "mixed.suite.ts");
  assert.is(code, 1);
  assert.equal(result, { file: "test/fixtures/runner/mixed.suite.ts", suites: 2, total: 3, passed: 2, failed: 1, skipped: 1 });
});

runner("a summary printed by a test is not taken for the result", (ctx) => {
  const { code, result } = runFile(ctx, "lying-text.suite.ts");
  assert.is(code, 1);
  assert.is(result?.["passed"], 0);
  assert.is(result?.["failed"], 1);
});

runner("a file that exits before its tests finish leaves no result (the runner fails it)", (ctx) => {
  const { result } = runFile(ctx, "crash.suite.ts");
  assert.is(result, undefined);
});

runner.run();
