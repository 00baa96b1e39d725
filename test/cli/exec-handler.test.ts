import { suite } from "uvu";
import * as assert from "uvu/assert";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createExecEnvironment } from "../../src/cli/exec-env.js";
import { createExecHandler, type ExecHandler } from "../../src/cli/exec-handler.js";
import type { Logger } from "../../src/types.js";
import { processAlive, waitUntil } from "./cli-process.js";

interface LogEntry {
  level: string;
  obj: Record<string, unknown>;
  msg: string | undefined;
}

interface Ctx {
  dir: string;
  logs: LogEntry[];
  logger: Logger;
  handlers: ExecHandler[];
}

const exec = suite<Ctx>("exec handler (run --exec)");

exec.before.each((ctx) => {
  ctx.dir = mkdtempSync(join(tmpdir(), "engram-exec-"));
  ctx.logs = [];
  const at = (level: string) => (obj: object, msg?: string) => void ctx.logs.push({ level, obj: obj as Record<string, unknown>, msg });
  ctx.logger = { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
  ctx.handlers = [];
});

exec.after.each(async (ctx) => {
  for (const h of ctx.handlers) {
    h.killNow();
    await h.close(50);
  }
  rmSync(ctx.dir, { recursive: true, force: true });
});

/** A node -e command writing its argv and ENGRAM_* variables to OUT as one JSON line. */
const recordScript = `require("fs").appendFileSync(process.env.OUT, JSON.stringify({ argv: process.argv.slice(1), env: Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith("ENGRAM_"))) }) + "\\n")`;

function recorder(
  ctx: Ctx,
  extra: Partial<Parameters<typeof createExecHandler>[0]> = {},
): { handler: ExecHandler; calls: () => Array<{ argv: string[]; env: Record<string, string> }> } {
  const out = join(ctx.dir, "calls.jsonl");
  const handler = createExecHandler({
    command: process.execPath,
    args: ["-e", recordScript],
    timeoutMs: 10_000,
    logger: ctx.logger,
    env: { PATH: process.env.PATH ?? "", OUT: out },
    ...extra,
  });
  ctx.handlers.push(handler);
  const calls = () =>
    existsSync(out)
      ? readFileSync(out, "utf8")
          .split("\n")
          .filter((l) => l !== "")
          .map((l) => JSON.parse(l) as { argv: string[]; env: Record<string, string> })
      : [];
  return { handler, calls };
}

exec(
  "refuses ids that start with '-', hold control characters or pass 512 bytes: not run, counted, logged without the whole id (issue 11 item 4)",
  async (ctx) => {
    const { handler, calls } = recorder(ctx);
    const hostile = [
      "--upload-pack=touch pwned;false",
      "-rf",
      "evil\nid",
      "nul\u0000id",
      "esc\u001b[31mred",
      "x".repeat(513),
      "é".repeat(257),
    ];
    for (const id of hostile) await handler.onProjectRemoved(id, { source: "heartbeat" });
    assert.equal(calls(), [], "no command ran for a refused id");
    assert.is(handler.stats.refused, hostile.length);
    const warnings = ctx.logs.filter((l) => l.level === "warn" && /exec refused a project id/.test(l.msg ?? ""));
    assert.is(warnings.length, hostile.length);
    for (const w of warnings) {
      const shown = String(w.obj["projectId"]);
      assert.ok(shown.length < 120, `logged id is bounded: ${shown.length}`);
      assert.not.match(shown, /[\u0000-\u001f]/, "no raw control character in the log");
    }
    // A good id (512 bytes exactly, a dash inside) still runs, as one literal argument.
    const good = `a-${"y".repeat(510)}`;
    await handler.onProjectRemoved(good, { source: "heartbeat" });
    assert.equal(
      calls().map((c) => c.argv),
      [[good]],
    );
    assert.is(handler.stats.started, 1);
  },
);

exec("ids starting with '-' run when the operator opts in", async (ctx) => {
  // node itself would read the id as an option: the operator who opts in must end the options ("--").
  const { handler, calls } = recorder(ctx, { allowDashIds: true, args: ["-e", recordScript, "--"] });
  await handler.onProjectRemoved("-leading-dash", { source: "stream" });
  assert.equal(
    calls().map((c) => c.argv.at(-1)),
    ["-leading-dash"],
  );
  assert.is(handler.stats.refused, 0);
});

exec(
  "a 200 KiB reason or a NUL in the reason or event id does not fail the handler: the ENGRAM_* values are cleaned and cut (issue 11 item 5)",
  async (ctx) => {
    const { handler, calls } = recorder(ctx);
    await handler.onProjectRemoved("p-big", { source: "stream", eventId: "7", reason: "r".repeat(200 * 1024) });
    await handler.onProjectRemoved("p-nul", { source: "stream", eventId: "8\u00009", reason: "a\u0000b\nc" });
    await handler.onProjectRemoved("p-event", { source: "stream", eventId: "9".repeat(300 * 1024), reason: "ok" });
    const got = calls();
    assert.equal(
      got.map((c) => c.argv[0]),
      ["p-big", "p-nul", "p-event"],
    );
    const [big, nul, event] = got as [(typeof got)[0], (typeof got)[0], (typeof got)[0]];
    assert.is(big.env["ENGRAM_REMOVAL_REASON"], "r".repeat(4096));
    assert.is(big.env["ENGRAM_PROJECT_ID"], "p-big");
    assert.is(nul.env["ENGRAM_REMOVAL_REASON"], "a b c");
    assert.is(nul.env["ENGRAM_EVENT_ID"], "8 9");
    assert.is(event.env["ENGRAM_EVENT_ID"], "9".repeat(256));
    assert.is(event.env["ENGRAM_REMOVAL_SOURCE"], "stream");
  },
);

exec("a reason cut on a multi-byte character keeps valid UTF-8", async (ctx) => {
  const { handler, calls } = recorder(ctx);
  await handler.onProjectRemoved("p", { source: "stream", reason: `a${"€".repeat(3000)}` });
  const reason = calls()[0]?.env["ENGRAM_REMOVAL_REASON"] ?? "";
  assert.ok(Buffer.byteLength(reason) <= 4096 && Buffer.byteLength(reason) > 4090, `${Buffer.byteLength(reason)} bytes`);
  assert.not.match(reason, /\uFFFD/);
});

exec(
  "the child gets no ENGRAM_TOKEN and no URL user info unless opted in, and the token is redacted from logged output (issue 11 item 3)",
  async (ctx) => {
    const token = "s3cr3t-T0KEN-value";
    const base = {
      PATH: process.env.PATH ?? "",
      ENGRAM_TOKEN: token,
      ENGRAM_URL: "https://svc:pa%3Ass@engram.example:8443/x",
      ENGRAM_SERVER_URL: `http://${token}@127.0.0.1:1`,
      OTHER: "kept",
    };
    const printEnv = `console.log(JSON.stringify(process.env)); console.error("token=" + (process.env.LEAK ?? "")); console.log("the url was https://svc:pa%3Ass@engram.example:8443/x and pa:ss")`;
    const stripped = createExecEnvironment({ base });
    assert.is(stripped.env["ENGRAM_TOKEN"], undefined);
    assert.is(stripped.env["ENGRAM_URL"], "https://engram.example:8443/x");
    assert.is(stripped.env["ENGRAM_SERVER_URL"], "http://127.0.0.1:1");
    assert.is(stripped.env["OTHER"], "kept");
    const handler = createExecHandler({
      command: process.execPath,
      args: ["-e", printEnv],
      timeoutMs: 10_000,
      logger: ctx.logger,
      env: { ...stripped.env, LEAK: token },
      secrets: stripped.secrets,
    });
    ctx.handlers.push(handler);
    await handler.onProjectRemoved("p1", { source: "heartbeat" });
    const output = ctx.logs.filter((l) => l.msg === "exec output").map((l) => String(l.obj["line"]));
    assert.ok(output.length >= 3, JSON.stringify(ctx.logs));
    const childEnv = JSON.parse(output.find((l) => l.startsWith("{")) ?? "{}") as Record<string, string>;
    assert.is(childEnv["ENGRAM_TOKEN"], undefined);
    assert.is(childEnv["ENGRAM_PROJECT_ID"], "p1");
    const all = JSON.stringify(ctx.logs);
    assert.not.match(all, token);
    assert.not.match(all, "pa%3Ass");
    assert.not.match(all, "pa:ss");
    assert.match(all, "token=[redacted]");

    // Opted in: the child gets them as they are; the log is still redacted.
    const passed = createExecEnvironment({ base, passSecrets: true });
    assert.is(passed.env["ENGRAM_TOKEN"], token);
    assert.is(passed.env["ENGRAM_URL"], base.ENGRAM_URL);
  },
);

exec("a line without end is logged cut, and a token straddling the cut is still redacted", async (ctx) => {
  const token = "T".repeat(40);
  const script = `process.stdout.write("a".repeat(4080) + ${JSON.stringify(token)} + "b".repeat(2_000_000))`;
  const handler = createExecHandler({
    command: process.execPath,
    args: ["-e", script],
    timeoutMs: 10_000,
    logger: ctx.logger,
    secrets: [token],
    env: { PATH: process.env.PATH ?? "" },
  });
  ctx.handlers.push(handler);
  await handler.onProjectRemoved("p1", { source: "heartbeat" });
  const lines = ctx.logs.filter((l) => l.msg === "exec output");
  assert.is(lines.length, 1);
  const line = String(lines[0]?.obj["line"]);
  assert.is(line.length, 4096);
  assert.not.match(line, "TTTTTTTTTT");
  assert.is(lines[0]?.obj["truncated"], true);
});

exec(
  "a command that leaves a background job holding its pipes completes at its exit; close() stops the job within its deadline (issue 11 item 6)",
  async (ctx) => {
    const pidFile = join(ctx.dir, "job.pid");
    // The job inherits stdout and stderr and ignores SIGTERM.
    const handler = createExecHandler({
      command: "sh",
      args: ["-c", `trap '' TERM; sleep 60 & echo $! > "${pidFile}"; echo started; exit 0`],
      timeoutMs: 20_000,
      drainMs: 100,
      logger: ctx.logger,
      env: { PATH: process.env.PATH ?? "" },
    });
    ctx.handlers.push(handler);
    const t0 = performance.now();
    let settled = false;
    const done = handler.onProjectRemoved("p1", { source: "heartbeat" }).then(() => (settled = true));
    await waitUntil("the handler completed after the command's exit", () => settled, 3000);
    await done;
    const ms = performance.now() - t0;
    const jobPid = Number(readFileSync(pidFile, "utf8"));
    assert.ok(processAlive(jobPid), "the background job still runs after the handler completed");
    assert.is(handler.running, 0);
    assert.is(handler.lingeringGroups, 1);
    assert.ok(
      ctx.logs.some((l) => l.msg === "exec output" && l.obj["line"] === "started"),
      "output before exit was logged",
    );
    const t1 = performance.now();
    await handler.close(150);
    const closeMs = performance.now() - t1;
    assert.ok(closeMs < 150 * 2 + 100 + 300, `close took ${closeMs} ms`);
    await waitUntil("the background job is gone", () => !processAlive(jobPid), 2000);
    console.log(`# exec: completion with a background job ${ms.toFixed(0)} ms; close() ${closeMs.toFixed(0)} ms`);
  },
);

exec("past the timeout the whole group is killed, the leader's children included", async (ctx) => {
  const pidFile = join(ctx.dir, "job.pid");
  const handler = createExecHandler({
    command: "sh",
    args: ["-c", `trap '' TERM; sleep 60 & echo $! > "${pidFile}"; wait`],
    timeoutMs: 300,
    killGraceMs: 100,
    drainMs: 50,
    logger: ctx.logger,
    env: { PATH: process.env.PATH ?? "" },
  });
  ctx.handlers.push(handler);
  const err = await handler.onProjectRemoved("p1", { source: "heartbeat" }).then(
    () => undefined,
    (e: Error) => e,
  );
  assert.match(String(err?.message), /killed after 300 ms/);
  const jobPid = Number(readFileSync(pidFile, "utf8"));
  await waitUntil("the job is gone", () => !processAlive(jobPid), 2000);
});

exec("close() resolves by its deadline even when a child ignores SIGTERM, and refuses new commands", async (ctx) => {
  const readyFile = join(ctx.dir, "ready");
  const handler = createExecHandler({
    command: process.execPath,
    args: ["-e", `process.on("SIGTERM", () => {}); require("fs").writeFileSync(process.env.READY_FILE, "1"); setInterval(() => {}, 1000)`],
    timeoutMs: 60_000,
    drainMs: 50,
    logger: ctx.logger,
    env: { PATH: process.env.PATH ?? "", READY_FILE: readyFile },
  });
  ctx.handlers.push(handler);
  const running = handler.onProjectRemoved("p1", { source: "heartbeat" }).catch((e: Error) => e);
  await waitUntil("the child runs", () => handler.running === 1);
  // The child says when its SIGTERM handler is in (a fixed 100 ms was not always enough for
  // node to start on a loaded machine, and then SIGTERM alone ended it: the test passed
  // without the child ever ignoring SIGTERM).
  await waitUntil("the child ignores SIGTERM", () => existsSync(readyFile), 10_000);
  const t0 = performance.now();
  await handler.close(100);
  assert.ok(performance.now() - t0 < 100 * 2 + 50 + 300);
  assert.instance(await running, Error);
  const refused = await handler.onProjectRemoved("p2", { source: "heartbeat" }).catch((e: Error) => e);
  assert.match(String((refused as Error).message), /closed/);
});

exec("a command that cannot be started fails the handler once, with no child left counted", async (ctx) => {
  const handler = createExecHandler({ command: join(ctx.dir, "no-such-command"), timeoutMs: 5000, logger: ctx.logger, env: { PATH: "" } });
  ctx.handlers.push(handler);
  const err = await handler.onProjectRemoved("p1", { source: "heartbeat" }).then(
    () => undefined,
    (e: Error) => e,
  );
  assert.match(String(err?.message), /cannot run .*ENOENT/);
  assert.is(handler.running, 0);
  assert.is(handler.lingeringGroups, 0);
});

exec.run();
