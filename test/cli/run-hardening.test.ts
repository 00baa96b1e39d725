import { suite } from "uvu";
import * as assert from "uvu/assert";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { get } from "node:http";
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
  /** The sidecars a test started, killed after it (the one server lives for the suite). */
  procs: CliProcess[];
}

const hard = suite<Ctx>("cli run hardening (issue 11 items 3-9, issue 12 item 7)");

const token = "sidecar-test-TOKEN-0123456789";

hard.before(async (ctx) => {
  ctx.serve = startCli(["serve", "--port", "0", "--token", token]);
  ctx.url = await ctx.serve.waitForLine(/^http:\/\/127\.0\.0\.1:\d+$/);
});

hard.after(async () => {
  await killAll();
});

hard.before.each((ctx) => {
  ctx.dir = mkdtempSync(join(tmpdir(), "engram-hard-"));
  ctx.procs = [];
});

hard.after.each(async (ctx) => {
  for (const p of ctx.procs) p.child.kill("SIGKILL");
  await Promise.all(ctx.procs.map((p) => p.exited));
  rmSync(ctx.dir, { recursive: true, force: true });
});

/** Starts a CLI process that the test's after hook kills. */
function cli(ctx: Ctx, args: readonly string[], options: { env?: NodeJS.ProcessEnv } = {}): CliProcess {
  const p = startCli(args, options);
  ctx.procs.push(p);
  return p;
}

const env = (extra: Record<string, string> = {}) => cleanEnv({ ENGRAM_TOKEN: token, ...extra });

function logLine(proc: CliProcess, msg: RegExp): Promise<Record<string, unknown>> {
  return proc.waitForLine((l) => msg.test(l), { stream: "stderr" }).then((l) => JSON.parse(l) as Record<string, unknown>);
}

/** The exit code, or a failure when the process is still running after ms. */
function exitedWithin(proc: CliProcess, ms: number): Promise<number> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<number>(
    (_, reject) => (timer = setTimeout(() => reject(new Error(`still running after ${ms} ms\n${proc.transcript()}`)), ms)),
  );
  return Promise.race([proc.exited, late]).finally(() => clearTimeout(timer));
}

function httpGet(url: string): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    get(url, { agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, type: String(res.headers["content-type"]), body }));
    }).on("error", reject);
  });
}

hard('run --client-id "" is a usage error, like --project "" (item 9)', async (ctx) => {
  for (const id of ["", "  "]) {
    const p = cli(ctx, ["run", "--url", ctx.url, "--client-id", id], { env: env() });
    assert.is(await exitedWithin(p, 10_000), 2, p.transcript());
    assert.match(p.stderr.join("\n"), /--client-id must not be empty/);
  }
});

hard("SIGHUP stops the sidecar cleanly, like SIGTERM, and leaves no --exec child (item 7)", async (ctx) => {
  const pidFile = join(ctx.dir, "child.pid");
  const script = `require("fs").writeFileSync(process.env.PID_FILE, String(process.pid)); setInterval(() => {}, 1000)`;
  const sidecar = cli(
    ctx,
    [...sidecarArgs(ctx.url, "gone", { handlerTimeoutMs: 60_000, stopTimeoutMs: 1000 }), "--exec", process.execPath, "-e", script],
    {
      env: env({ PID_FILE: pidFile }),
    },
  );
  await waitUntil("the exec child started", () => existsSync(pidFile) && readFileSync(pidFile, "utf8") !== "");
  const childPid = Number(readFileSync(pidFile, "utf8"));
  sidecar.child.kill("SIGHUP");
  assert.is(await exitedWithin(sidecar, 5000), 0, sidecar.transcript());
  const logs = jsonLines(sidecar.stderr);
  assert.ok(
    logs.some((l) => l["msg"] === "stopping" && l["reason"] === "SIGHUP"),
    sidecar.transcript(),
  );
  assert.ok(logs.some((l) => l["msg"] === "bridge stopped"));
  await waitUntil("no orphan after SIGHUP", () => !processAlive(childPid), 2000);
});

hard(
  "--projects-file on a FIFO (behind a symlink) is refused with a clear log line; the sidecar streams and stops on SIGTERM (item 8)",
  async (ctx) => {
    const fifo = join(ctx.dir, "ids.fifo");
    execFileSync("mkfifo", [fifo]);
    const link = join(ctx.dir, "projects.txt");
    symlinkSync(fifo, link);
    const sidecar = cli(
      ctx,
      ["run", "--url", ctx.url, ...fastOpen, "--project", "p1", "--projects-file", link, "--heartbeat-ms", "300", "--client-id", "fifo"],
      { env: env() },
    );
    const refused = await logLine(sidecar, /not a regular file/);
    assert.is(refused["level"], 40);
    await streaming(sidecar);
    // Heartbeats go on with the --project ids.
    await ctx.serve.waitForLine(/^heartbeat from "fifo": 1 id\(s\) reported$/);
    ctx.serve.send("remove stream-still-works");
    await sidecar.waitForLine(/"projectId":"stream-still-works"/);
    sidecar.child.kill("SIGTERM");
    assert.is(await sidecar.exited, 0, sidecar.transcript());
  },
);

hard("--exec children get no ENGRAM_TOKEN unless --exec-env-token, and the token never reaches the sidecar's log (item 3)", async (ctx) => {
  const script = `console.log("env token=" + (process.env.ENGRAM_TOKEN ?? "<none>")); console.log(require("fs").readFileSync(process.env.TOKEN_FILE, "utf8"))`;
  const tokenFile = join(ctx.dir, "token.txt");
  writeFileSync(tokenFile, `the token is ${token}`);
  const sidecar = cli(ctx, ["run", "--url", ctx.url, ...fastOpen, "--project", "gone-a", "--exec", process.execPath, "-e", script], {
    env: env({ TOKEN_FILE: tokenFile }),
  });
  await sidecar.waitForLine((l) => l.includes("env token=<none>"), { stream: "stderr" });
  const redacted = await sidecar.waitForLine((l) => l.includes("the token is"), { stream: "stderr" });
  assert.match(redacted, "the token is [redacted]");
  sidecar.child.kill("SIGTERM");
  assert.is(await sidecar.exited, 0);
  assert.not.match(sidecar.transcript(), token);

  const opted = cli(
    ctx,
    ["run", "--url", ctx.url, ...fastOpen, "--project", "gone-b", "--exec-env-token", "--exec", process.execPath, "-e", script],
    { env: env({ TOKEN_FILE: tokenFile }) },
  );
  // The child has it; the log still shows it redacted.
  await opted.waitForLine((l) => l.includes("env token=[redacted]"), { stream: "stderr" });
  opted.child.kill("SIGTERM");
  assert.is(await opted.exited, 0);
  assert.not.match(opted.transcript(), token);
});

hard("an id that would be an option (--upload-pack=...) is printed on stdout but never exec'd (item 4)", async (ctx) => {
  const hostile = `--upload-pack=touch ${join(ctx.dir, "PWNED")};false`;
  const file = join(ctx.dir, "projects.txt");
  writeFileSync(file, `${hostile}\nplain-gone\n`);
  const out = join(ctx.dir, "calls.txt");
  const script = `require("fs").appendFileSync(process.env.OUT, process.argv.at(-1) + "\\n")`;
  const sidecar = cli(
    ctx,
    ["run", "--url", ctx.url, ...fastOpen, "--projects-file", file, "--exec", process.execPath, "-e", script, "--"],
    {
      env: env({ OUT: out }),
    },
  );
  await sidecar.waitForLine((l) => l.includes('"projectId":"--upload-pack='));
  await sidecar.waitForLine(/"projectId":"plain-gone"/);
  const refused = await logLine(sidecar, /exec refused a project id/);
  assert.is(refused["problem"], 'starts with "-"');
  await waitUntil("the good id ran", () => existsSync(out) && readFileSync(out, "utf8").includes("plain-gone"));
  assert.equal(readFileSync(out, "utf8"), "plain-gone\n");
  assert.not.ok(existsSync(join(ctx.dir, "PWNED")));
  sidecar.child.kill("SIGTERM");
  assert.is(await sidecar.exited, 0);
});

hard(
  "an --exec command that leaves a background job does not hold the next removal nor the stop; the job does not outlive the sidecar (item 6)",
  async (ctx) => {
    const jobs = join(ctx.dir, "jobs.txt");
    const ran = join(ctx.dir, "ran.txt");
    // Each run leaves a job that holds stdout/stderr and ignores SIGTERM.
    const script = `trap '' TERM; sleep 120 & echo $! >> "${jobs}"; echo "$1" >> "${ran}"; exit 0`;
    const sidecar = cli(
      ctx,
      [...sidecarArgs(ctx.url, "first", { handlerTimeoutMs: 30_000, stopTimeoutMs: 1000 }), "--exec", "sh", "-c", script, "sh"],
      { env: env() },
    );
    await waitUntil("the first command ran", () => existsSync(ran) && readFileSync(ran, "utf8").includes("first"));
    ctx.serve.send("remove second");
    await waitUntil(
      "the second removal ran while the first job still holds its pipes",
      () => readFileSync(ran, "utf8").includes("second"),
      5000,
    );
    const jobPids = readFileSync(jobs, "utf8").trim().split("\n").map(Number);
    assert.is(jobPids.length, 2);
    assert.ok(jobPids.every(processAlive));
    const t0 = performance.now();
    sidecar.child.kill("SIGTERM");
    assert.is(await exitedWithin(sidecar, 5000), 0, sidecar.transcript());
    const stopMs = performance.now() - t0;
    assert.ok(stopMs < 1000 + 1000, `stop took ${stopMs} ms (budget 1000 ms)`);
    await waitUntil("no background job survives the sidecar", () => !jobPids.some(processAlive), 2000);
    console.log(`# run: stop with two lingering background jobs ${stopMs.toFixed(0)} ms`);
  },
);

hard("a --project id the server reported removed is no longer sent in heartbeats (issue 12 item 7)", async (ctx) => {
  ctx.serve.send("create live-1");
  await ctx.serve.waitForLine(/^created live-1$/);
  const sidecar = cli(
    ctx,
    ["run", "--url", ctx.url, ...fastOpen, "--project", "live-1", "--project", "gone-1", "--heartbeat-ms", "300", "--client-id", "flags"],
    { env: env() },
  );
  await sidecar.waitForLine(/"projectId":"gone-1"/);
  const mark = ctx.serve.stdout.length;
  // Two heartbeats later: only live-1.
  await ctx.serve.waitForLine(/^heartbeat from "flags": 1 id\(s\) reported$/, { after: mark });
  const next = ctx.serve.stdout.length;
  await ctx.serve.waitForLine(/^heartbeat from "flags": \d+ id\(s\) reported$/, { after: next });
  assert.ok(
    ctx.serve.stdout
      .slice(next)
      .filter((l) => l.startsWith('heartbeat from "flags"'))
      .every((l) => l.endsWith(": 1 id(s) reported")),
  );
  assert.is(jsonLines(sidecar.stdout).filter((l) => l["projectId"] === "gone-1").length, 1);
  sidecar.child.kill("SIGTERM");
  assert.is(await sidecar.exited, 0);
});

hard(
  "--health-port serves /healthz (200 streaming, the status as JSON) and Prometheus /metrics on loopback (issue 12 item 7)",
  async (ctx) => {
    const sidecar = cli(
      ctx,
      [
        "run",
        "--url",
        ctx.url,
        ...fastOpen,
        "--health-port",
        "0",
        "--client-id",
        "health-1",
        "--project=-dash",
        "--exec",
        process.execPath,
        "-e",
        "0",
      ],
      { env: env() },
    );
    const listening = await logLine(sidecar, /health and metrics listening/);
    const base = String(listening["url"]);
    assert.match(base, /^http:\/\/127\.0\.0\.1:\d+$/);
    await streaming(sidecar);
    ctx.serve.send("remove counted");
    await sidecar.waitForLine(/"projectId":"counted"/);
    await sidecar.waitForLine(/"projectId":"-dash"/);
    await logLine(sidecar, /exec refused a project id/);
    const health = await httpGet(`${base}/healthz`);
    assert.is(health.status, 200, health.body);
    const body = JSON.parse(health.body) as {
      healthy: boolean;
      reason: string;
      status: { state: string; clientId: string; counters: Record<string, number> };
    };
    assert.is(body.healthy, true);
    assert.is(body.status.state, "streaming");
    assert.is(body.status.clientId, "health-1");
    assert.not.match(health.body, token);
    // The removal is printed before the --exec handler (a real child) has
    // finished, and "delivered" is counted when every handler has: scrape
    // until it is (a scrape never waits on the bridge).
    let metrics = await httpGet(`${base}/metrics`);
    const deadline = Date.now() + 10_000;
    while (!/^engram_bridge_removals_delivered_total\{source="stream"\} 1$/m.test(metrics.body) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      metrics = await httpGet(`${base}/metrics`);
    }
    assert.is(metrics.status, 200);
    assert.match(metrics.type, "text/plain; version=0.0.4");
    assert.match(metrics.body, /^# TYPE engram_bridge_events_received_total counter$/m);
    assert.match(metrics.body, /^engram_bridge_removals_delivered_total\{source="stream"\} 1$/m);
    assert.match(metrics.body, /^engram_bridge_connection_state\{state="streaming"\} 1$/m);
    assert.match(metrics.body, /^engram_bridge_delivery_latency_milliseconds_bucket\{source="stream",le="\+Inf"\} 1$/m);
    assert.match(metrics.body, /^engram_sidecar_exec_refused_total 1$/m);
    assert.match(metrics.body, /^engram_sidecar_exec_started_total 1$/m);
    assert.is((await httpGet(`${base}/nope`)).status, 404);
    sidecar.child.kill("SIGTERM");
    assert.is(await sidecar.exited, 0, sidecar.transcript());
  },
);

hard("/healthz answers 503 while the server refuses the token, and --health-port on a taken port exits 1", async (ctx) => {
  const bad = cli(ctx, ["run", "--url", ctx.url, ...fastOpen, "--health-port", "0", "--log-level", "info"], {
    env: cleanEnv({ ENGRAM_TOKEN: "wrong-token" }),
  });
  const base = String((await logLine(bad, /health and metrics listening/))["url"]);
  await bad.waitForLine((l) => l.includes("unauthenticated"), { stream: "stderr" });
  let last = { status: 0, type: "", body: "" };
  await waitUntil("healthz says 503", () => {
    void httpGet(`${base}/healthz`).then((r) => (last = r));
    return last.status === 503;
  });
  assert.match(last.body, /"healthy":false/);
  assert.match(last.body, /unauthenticated/);
  const port = new URL(base).port;
  const clash = cli(ctx, ["run", "--url", ctx.url, "--health-port", port], { env: env() });
  assert.is(await clash.exited, 1, clash.transcript());
  assert.match(clash.stderr.join("\n"), /cannot listen on 127\.0\.0\.1:\d+ for --health-port: EADDRINUSE/);
  bad.child.kill("SIGTERM");
  assert.is(await bad.exited, 0);
});

hard(
  "a second SIGTERM during a stop exits 143 at once, and even its notice is a JSON log line: run's stderr is JSON lines only (review item 7)",
  async (ctx) => {
    const stubborn = `process.on("SIGTERM", () => {}); console.log("child started"); setInterval(() => {}, 1000)`;
    const sidecar = cli(
      ctx,
      [
        "run",
        "--url",
        ctx.url,
        ...fastOpen,
        "--project",
        "gone-forced",
        "--stop-timeout-ms",
        "20000",
        "--handler-timeout-ms",
        "60000",
        "--exec",
        process.execPath,
        "-e",
        stubborn,
      ],
      { env: env() },
    );
    await sidecar.waitForLine((l) => l.includes("child started"), { stream: "stderr" });
    sidecar.child.kill("SIGTERM");
    await logLine(sidecar, /^\{.*"msg":"stopping"/);
    sidecar.child.kill("SIGTERM");
    assert.is(await exitedWithin(sidecar, 5000), 143, sidecar.transcript());
    const lines = sidecar.stderr.filter((l) => l !== "");
    for (const line of lines) assert.ok(/^\{.*\}$/.test(line), `not a JSON line on stderr: ${line}`);
    const notice = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => /again: exiting now/.test(String(l["msg"])));
    assert.is(notice?.["msg"], "received SIGTERM again: exiting now");
  },
);

hard.run();
