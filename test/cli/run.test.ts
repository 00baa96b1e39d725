import { suite } from "uvu";
import * as assert from "uvu/assert";
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  cleanEnv,
  fastOpen,
  jsonLines,
  killAll,
  processAlive,
  sidecarArgs,
  startCli,
  streaming,
  waitUntil,
  type CliProcess,
} from "./cli-process.js";

interface Ctx {
  dir: string;
  serve: CliProcess;
  url: string;
}

const run = suite<Ctx>("cli run (sidecar) against serve");

run.before.each(async (ctx) => {
  ctx.dir = mkdtempSync(join(tmpdir(), "engram-cli-"));
  ctx.serve = startCli(["serve", "--port", "0"]);
  ctx.url = await ctx.serve.waitForLine(/^http:\/\/127\.0\.0\.1:\d+$/);
});

run.after.each(async (ctx) => {
  await killAll();
  rmSync(ctx.dir, { recursive: true, force: true });
});

function removalLines(proc: CliProcess) {
  return jsonLines(proc.stdout) as Array<{
    projectId: string;
    source: string;
    eventId: string | null;
    reason: string | null;
    receivedAt: string;
  }>;
}

run("prints a stream removal as one JSON line and re-reads the projects file at every heartbeat", async (ctx) => {
  const file = join(ctx.dir, "projects.txt");
  writeFileSync(file, "# projects this daemon holds\n\nlive-1\n   \n# live-2 is commented out\n");
  ctx.serve.send("create p1 live-1");
  await ctx.serve.waitForLine(/^created p1, live-1$/);
  const sidecar = startCli([
    "run",
    "--url",
    ctx.url,
    ...fastOpen,
    "--project",
    "p1",
    "--projects-file",
    file,
    "--heartbeat-ms",
    "300",
    "--client-id",
    "sidecar-1",
  ]);
  await streaming(sidecar);
  // The heartbeat reports p1 and live-1: comments and blank lines are not ids.
  await ctx.serve.waitForLine(/^heartbeat from "sidecar-1": 2 id\(s\) reported$/);

  ctx.serve.send("remove p1 deleted by its owner");
  const line = await sidecar.waitForLine(/"projectId":"p1"/);
  const removal = JSON.parse(line) as Record<string, unknown>;
  assert.equal(Object.keys(removal), ["projectId", "source", "eventId", "reason", "receivedAt"]);
  assert.is(removal["source"], "stream");
  assert.is(removal["reason"], "deleted by its owner");
  assert.match(String(removal["eventId"]), /^\d+$/);
  assert.ok(Math.abs(Date.parse(String(removal["receivedAt"])) - Date.now()) < 60_000);

  // The daemon adds an id the server no longer has: the next heartbeat delivers it.
  appendFileSync(file, "gone-later\n");
  const later = JSON.parse(await sidecar.waitForLine(/"projectId":"gone-later"/)) as Record<string, unknown>;
  assert.equal(later, { projectId: "gone-later", source: "heartbeat", eventId: null, reason: null, receivedAt: later["receivedAt"] });
  // live-1 and gone-later; p1, given with --project, is no longer reported since the server removed it.
  await ctx.serve.waitForLine(/^heartbeat from "sidecar-1": 2 id\(s\) reported$/, { after: ctx.serve.stdout.length });

  // stdout holds nothing but removal lines; stderr nothing but pino-style JSON log lines.
  assert.equal(
    removalLines(sidecar).map((r) => [r.projectId, r.source]),
    [
      ["p1", "stream"],
      ["gone-later", "heartbeat"],
    ],
  );
  const logs = jsonLines(sidecar.stderr);
  assert.ok(logs.length > 0);
  for (const log of logs) {
    assert.type(log["level"], "number");
    assert.type(log["time"], "number");
    assert.is(log["name"], "engram-serverevents");
  }

  const t0 = performance.now();
  sidecar.child.kill("SIGTERM");
  assert.is(await sidecar.exited, 0, sidecar.transcript());
  const stopMs = performance.now() - t0;
  console.log(`# run: SIGTERM to exit ${stopMs.toFixed(0)} ms`);
  assert.ok(stopMs < 5000 + 1500, `stopped in ${stopMs} ms`);
  assert.ok(jsonLines(sidecar.stderr).some((l) => l["msg"] === "bridge stopped"));
});

run("--exec gets a hostile id as one literal argument and in ENGRAM_PROJECT_ID, never through a shell", async (ctx) => {
  const hostile = `x; rm -rf / "double" 'single' $(touch ${join(ctx.dir, "PWNED")}) \`touch ${join(ctx.dir, "PWNED2")}\` && echo`;
  const file = join(ctx.dir, "projects.txt");
  writeFileSync(file, `${hostile}\n`);
  const out = join(ctx.dir, "exec-calls.jsonl");
  const script = `require("fs").appendFileSync(process.env.EXEC_OUT, JSON.stringify({ argv: process.argv.slice(1), id: process.env.ENGRAM_PROJECT_ID, source: process.env.ENGRAM_REMOVAL_SOURCE }) + "\\n")`;
  const sidecar = startCli(["run", "--url", ctx.url, ...fastOpen, "--projects-file", file, "--exec", process.execPath, "-e", script], {
    env: cleanEnv({ EXEC_OUT: out }),
  });
  // The id is unknown to the server: the heartbeat on stream open reports it removed.
  const line = JSON.parse(await sidecar.waitForLine(/"source":"heartbeat"/)) as { projectId: string };
  assert.is(line.projectId, hostile);
  await waitUntil("the exec child ran", () => existsSync(out) && readFileSync(out, "utf8").includes("\n"));
  const calls = jsonLines(readFileSync(out, "utf8").split("\n"));
  assert.equal(calls, [{ argv: [hostile], id: hostile, source: "heartbeat" }]);
  assert.not.ok(existsSync(join(ctx.dir, "PWNED")), "$(...) was not run");
  assert.not.ok(existsSync(join(ctx.dir, "PWNED2")), "backticks were not run");
  sidecar.child.kill("SIGTERM");
  assert.is(await sidecar.exited, 0, sidecar.transcript());
});

run("--exec past the handler timeout is killed and counted as a timed-out handler", async (ctx) => {
  const pidFile = join(ctx.dir, "child.pid");
  const script = `require("fs").writeFileSync(process.env.PID_FILE, String(process.pid)); setInterval(() => {}, 1000)`;
  const sidecar = startCli(
    // 3 s: long enough for the child (a node process) to start and say so on a loaded machine, then it runs past it.
    [...sidecarArgs(ctx.url, "never-existed", { handlerTimeoutMs: 3000 }), "--exec", process.execPath, "-e", script],
    { env: cleanEnv({ PID_FILE: pidFile }) },
  );
  await waitUntil("the exec child started", () => existsSync(pidFile) && readFileSync(pidFile, "utf8") !== "");
  const childPid = Number(readFileSync(pidFile, "utf8"));
  assert.ok(processAlive(childPid));
  await sidecar.waitForLine((l) => l.includes("exec command ran past the handler timeout"), { stream: "stderr" });
  await sidecar.waitForLine((l) => l.includes('"msg":"removal handler timed out"') && l.includes('"handler":"exec"'), { stream: "stderr" });
  await waitUntil("the timed-out child is gone", () => !processAlive(childPid), 5000);
  // The sidecar goes on.
  ctx.serve.send("create p2");
  ctx.serve.send("remove p2");
  await sidecar.waitForLine(/"projectId":"p2"/);
  sidecar.child.kill("SIGTERM");
  assert.is(await sidecar.exited, 0, sidecar.transcript());
});

run("SIGTERM stops within the stop budget and leaves no --exec child behind; a second signal exits at once", async (ctx) => {
  // A child that ignores SIGTERM and never ends on its own.
  const script = `process.on("SIGTERM", () => {}); require("fs").writeFileSync(process.env.PID_FILE, String(process.pid)); setInterval(() => {}, 1000)`;
  const start = (pidFile: string, stopTimeoutMs: number) =>
    startCli([...sidecarArgs(ctx.url, "gone", { handlerTimeoutMs: 60_000, stopTimeoutMs }), "--exec", process.execPath, "-e", script], {
      env: cleanEnv({ PID_FILE: pidFile }),
    });
  const graceful = start(join(ctx.dir, "a.pid"), 1000);
  const forced = start(join(ctx.dir, "b.pid"), 30_000);
  const pids: number[] = [];
  for (const name of ["a.pid", "b.pid"]) {
    const f = join(ctx.dir, name);
    await waitUntil(`${name} written`, () => existsSync(f) && readFileSync(f, "utf8") !== "");
    pids.push(Number(readFileSync(f, "utf8")));
  }
  const [gracefulChild, forcedChild] = pids as [number, number];

  const t0 = performance.now();
  graceful.child.kill("SIGTERM");
  assert.is(await graceful.exited, 0, graceful.transcript());
  const gracefulMs = performance.now() - t0;
  // The stop budget plus process teardown.
  assert.ok(gracefulMs < 1000 + 500, `graceful stop took ${gracefulMs} ms (budget 1000 ms)`);
  await waitUntil("no orphan after the graceful stop", () => !processAlive(gracefulChild), 2000);

  const t1 = performance.now();
  forced.child.kill("SIGTERM");
  await forced.waitForLine((l) => l.includes('"msg":"stopping"'), { stream: "stderr" });
  forced.child.kill("SIGTERM");
  assert.is(await forced.exited, 143, forced.transcript());
  const forcedMs = performance.now() - t1;
  assert.ok(forcedMs < 2500, `second signal exit took ${forcedMs} ms (stop budget 30 s)`);
  await waitUntil("no orphan after the forced exit", () => !processAlive(forcedChild), 2000);
  console.log(
    `# run: graceful stop with a hung --exec child ${gracefulMs.toFixed(0)} ms (budget 1000 ms); forced exit ${forcedMs.toFixed(0)} ms`,
  );
});

run("a closed stdout stops the sidecar with exit 1", async (ctx) => {
  const sidecar = startCli(["run", "--url", ctx.url, ...fastOpen]);
  await streaming(sidecar);
  sidecar.child.stdout.destroy(); // the reader went away: the next removal line meets EPIPE
  ctx.serve.send("remove orphaned");
  assert.is(await sidecar.exited, 1, sidecar.transcript());
  const logs = jsonLines(sidecar.stderr);
  assert.ok(
    logs.some((l) => l["level"] === 50 && /stdout failed/.test(String(l["msg"]))),
    sidecar.transcript(),
  );
  assert.ok(logs.some((l) => l["msg"] === "bridge stopped"));
});

run("start runs the sidecar when ENGRAM_URL is set, and serve's token is enforced", async (ctx) => {
  ctx.serve.send("quit");
  assert.is(await ctx.serve.exited, 0);
  const serve = startCli(["serve", "--port", "0", "--token", "dev-token", "--quiet"]);
  const url = await serve.waitForLine(/^http:\/\/127\.0\.0\.1:\d+$/);
  // "keep" is not tracked, so only the stream can carry its removal (a tracked
  // id could also arrive by the sync that every stream open starts).
  const good = startCli(["start", ...fastOpen], { env: cleanEnv({ ENGRAM_URL: url, ENGRAM_TOKEN: "dev-token" }) });
  const bad = startCli(["start", ...fastOpen, "--log-level", "error"], { env: cleanEnv({ ENGRAM_URL: url, ENGRAM_TOKEN: "wrong-token" }) });
  await streaming(good);
  const refused = JSON.parse(await bad.waitForLine((l) => l.includes("unauthenticated"), { stream: "stderr" })) as {
    level: number;
    msg: string;
  };
  assert.is(refused.level, 50);
  assert.match(refused.msg, /check ENGRAM_TOKEN/);
  serve.send("remove keep");
  const removal = JSON.parse(await good.waitForLine(/"projectId":"keep"/)) as { source: string };
  assert.is(removal.source, "stream");
  assert.equal(removalLines(bad), []);
  assert.not.match(good.transcript() + bad.transcript(), /dev-token|wrong-token/);
  for (const p of [good, bad, serve]) p.child.kill("SIGINT");
  assert.equal(await Promise.all([good.exited, bad.exited, serve.exited]), [0, 0, 0]);
});

run.run();
