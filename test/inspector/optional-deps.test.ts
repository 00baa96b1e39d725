// The inspector's heavy packages are optional (issue 12 item 3): elkjs lays
// the diagram out at build time only, @statelyai/inspect is not needed at
// all (messages are converted in process), ws is an optional peer that only
// the inspector loads. Each case runs in a child process whose module
// resolution hides those packages, as a consumer that did not install them.
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { suite } from "uvu";
import * as assert from "uvu/assert";

const here = fileURLToPath(new URL(".", import.meta.url));
const repoRoot = fileURLToPath(new URL("../../", import.meta.url));
const hooks = new URL("./hide-packages-hooks.mjs", import.meta.url).href;
const heavy = ["elkjs", "@statelyai/inspect", "superjson", "ws"];

function runHidden(
  hidden: readonly string[],
  args: readonly string[],
  script = `${here}optional-deps-child.ts`,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const registration = `data:text/javascript,import{register}from"node:module";register(${JSON.stringify(hooks)},{data:${JSON.stringify(hidden.join(","))}});`;
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["--import", "tsx", "--import", registration, script, ...args],
      { cwd: repoRoot, timeout: 30_000 },
      (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      },
    );
  });
}

const lastJson = (stdout: string): Record<string, unknown> =>
  JSON.parse(stdout.trim().split("\n").at(-1) ?? "{}") as Record<string, unknown>;

const optional = suite("optional inspector dependencies");

optional("the hook does hide what it is told to", async () => {
  const r = await runHidden(["xstate"], ["main"]);
  assert.is.not(r.code, 0);
  assert.match(r.stderr, /Cannot find package 'xstate' \(hidden by the test\)/);
});

optional("the main entry loads without elkjs, @statelyai/inspect and ws", async () => {
  const r = await runHidden(heavy, ["main"]);
  assert.is(r.code, 0, r.stderr);
  assert.ok((lastJson(r.stdout).exports as number) > 5);
});

optional("the inspector serves the page and the bridge diagram without elkjs or @statelyai/inspect", async () => {
  const r = await runHidden(["elkjs", "@statelyai/inspect", "superjson"], ["inspector"]);
  assert.is(r.code, 0, r.stderr);
  const out = lastJson(r.stdout);
  assert.is(out.page, 200);
  assert.is(out.svg, 200);
  assert.is(out.bridgeDrawn, true, "the committed layout");
  // Another machine needs elkjs: a clear 503, not a crash.
  assert.is(out.otherSvg, 503);
  assert.match(String(out.otherMessage), /needs elkjs, which is not installed.*npm install --save-dev elkjs/);
});

optional("without ws the inspector refuses to start with a clear message", async () => {
  const r = await runHidden(["ws"], ["no-ws"]);
  assert.is(r.code, 0, r.stderr);
  const out = lastJson(r.stdout);
  assert.is(out.started, false);
  assert.is(out.code, "unavailable");
  assert.match(String(out.message), /needs the ws package, which is not installed.*npm install ws/);
});

optional("the CLI without --inspect runs without them", async () => {
  const r = await runHidden(heavy, ["--help"], `${repoRoot}bin/engram-serverevents.js`);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /serve/);
});

optional.run();
