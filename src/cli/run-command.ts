/**
 * `run`: the sidecar. A bridge against ENGRAM_URL whose removals go to
 * stdout as JSON lines (and to `--exec`), logs to stderr as JSON lines.
 */
import { parseArgs } from "node:util";
import { ValueType, type MeterProvider } from "@opentelemetry/api";
import { createBridge } from "../bridge.js";
import { BridgeError } from "../errors.js";
import { startHealthServer, type HealthServer } from "../health/health-server.js";
import { createPrometheusMetrics, type PrometheusMetrics } from "../health/prometheus-metrics.js";
import { HandlerRegistry } from "../handler-registry.js";
import { createStderrLogger, type LogLevel } from "../logger.js";
import { defaultBridgeTiming } from "../timing.js";
import { exitCodes, intFlag, parseOrUsage, splitExec, usageError } from "./cli-args.js";
import type { CliCommand } from "./cli-context.js";
import { createExecEnvironment } from "./exec-env.js";
import { createExecHandler, type ExecHandler } from "./exec-handler.js";
import { previewOf, projectIdProblem } from "./id-rules.js";
import { createProjectsFileTracker } from "./projects-file.js";
import { createRemovalLineHandler } from "./removal-lines.js";
import { readTimingFlags, timingFlagOptions, timingFlagsHelp } from "./timing-flags.js";
import { logConnectionStates } from "./state-log.js";

const help = `Usage: engram-serverevents run [options] [--exec CMD [ARGS...]]

Runs the bridge as a sidecar for a daemon in any language: it connects to
the engram server at ENGRAM_URL, reports the tracked project ids in every
heartbeat, and prints each removal on stdout as one JSON line:

  {"projectId":"p1","source":"stream","eventId":"42","reason":"deleted","receivedAt":"2025-01-01T12:00:00.000Z"}

("source" is "stream" or "heartbeat"; eventId and reason are null for
heartbeat removals.) Logs go to stderr as JSON lines (pino format).

Options:
  --url URL              the engram server (default: ENGRAM_URL, else the deprecated ENGRAM_SERVER_URL)
  --project ID           a tracked project id (repeatable); once the server reports it removed it is
                         no longer sent in heartbeats
  --projects-file PATH   more tracked ids, one per line (blank lines and lines starting with # are
                         ignored); read again in the background at every heartbeat and every 5 s, so
                         the daemon may rewrite it any time (best: write a new file and rename it).
                         A read counts only when it saw one unchanged version of the file ending in
                         a newline; else the previous ids stay. Refused whole: not a regular file
                         of at most 4 MiB (a FIFO, device or directory, even behind a symlink), owned
                         by neither this user, its group nor root, writable by everyone, holding a
                         PEM block or a KEY=VALUE line with a secret-looking key (TOKEN, SECRET,
                         PASSWORD, KEY, AUTH, …). Lines that are not UTF-8 or not valid ids are
                         skipped; refusals are logged by count and line number, never echoed
  --projects-file-no-follow  refuse --projects-file when PATH is a symlink (O_NOFOLLOW)
  --client-id ID         this sidecar's id on the server (default: PID-STARTSECONDS; not empty)
  --log-level LEVEL      debug, info, warn, error or silent (default info)
  --health-port N        serve GET /healthz (200 while streaming, connecting or backing off from a
                         transient error; 503 when idle, stopping, stopped or failing on auth; the
                         bridge status as JSON) and GET /metrics (Prometheus text format; needs the
                         optional package @opentelemetry/sdk-metrics)
  --health-host HOST     the address --health-port binds (default 127.0.0.1)
  --exec CMD [ARGS...]   must come last: run CMD ARGS... PROJECT_ID for each removal (see below)
  --exec-env-token       pass ENGRAM_TOKEN and URL user info to --exec commands (default: stripped)
  --exec-allow-dash-ids  also run --exec for ids starting with "-" (default: refused); end CMD's
                         options with "--" then
  -h, --help             this help

--exec runs CMD without a shell, with the id as one last argument and in
ENGRAM_PROJECT_ID, plus ENGRAM_REMOVAL_SOURCE, ENGRAM_EVENT_ID (cut to 256
bytes) and ENGRAM_REMOVAL_REASON (cut to 4096 bytes; control characters become
spaces). Safety rules, because the id comes from the server:
  - an id that starts with "-" (a program may read it as an option, e.g. git's
    --upload-pack=...), contains a control character or is longer than 512
    bytes is not run: it is logged at warn and counted (it still goes to stdout);
  - the child's environment has no ENGRAM_TOKEN and no user info in ENGRAM_*
    URLs unless --exec-env-token; the token is redacted from logged output;
  - the child leads its own process group; it is done when it exits (output is
    drained for 200 ms, then its pipes are closed); past --handler-timeout-ms
    the whole group gets SIGTERM, then SIGKILL; background jobs it leaves are
    stopped with the sidecar. Its output is logged (lines cut at 4096 chars,
    at most 1000 lines per run).

${timingFlagsHelp}

Environment: ENGRAM_URL, ENGRAM_TOKEN (bearer token; never pass it as a flag),
ENGRAM_TLS_CA (PEM CA file for https), ENGRAM_ALLOW_INSECURE=1 (allow a token
in plaintext to a non-loopback host).

stdout is back-pressured: while its reader does not read, removals wait (the
stdout handler holds dispatch). The whole stop, --exec kill sequence and the
last stdout flush included, ends within --stop-timeout-ms.

Exit codes: 0 stopped by the first SIGINT, SIGTERM or SIGHUP (after at most
--stop-timeout-ms) with every removal on stdout; 1 the bridge refused its
configuration (bad URL, token in plaintext), the health port could not be
served, stdout was closed, or the stop budget ran out with removal lines not
written (a log line counts them); 2 usage
error (no server URL, bad flag); 129/130/143 a second SIGHUP/SIGINT/SIGTERM
(exits at once, --exec children killed).`;

/** How long the start waits for the first read of the projects file, in ms. */
const projectsFileFirstReadMs = 2000;

const logLevels: readonly LogLevel[] = ["debug", "info", "warn", "error", "silent"];

export const runCommand: CliCommand = {
  name: "run",
  summary: "the sidecar: removals of ENGRAM_URL as JSON lines on stdout (and --exec)",
  help,
  async run(argv, ctx) {
    const { own, exec } = splitExec(argv);
    const { values } = parseOrUsage(() =>
      parseArgs({
        args: own,
        strict: true,
        allowPositionals: false,
        options: {
          url: { type: "string" },
          project: { type: "string", multiple: true },
          "projects-file": { type: "string" },
          "projects-file-no-follow": { type: "boolean" },
          "client-id": { type: "string" },
          "log-level": { type: "string" },
          "health-port": { type: "string" },
          "health-host": { type: "string" },
          "exec-env-token": { type: "boolean" },
          "exec-allow-dash-ids": { type: "boolean" },
          help: { type: "boolean", short: "h" },
          ...timingFlagOptions,
        },
      }),
    );
    if (values.help) {
      ctx.out(`${help}\n`);
      return exitCodes.ok;
    }
    const level = (values["log-level"] ?? "info") as LogLevel;
    if (!logLevels.includes(level)) throw usageError(`--log-level must be one of ${logLevels.join(", ")}`);
    const hasUrl = [values.url, ctx.env.ENGRAM_URL, ctx.env.ENGRAM_SERVER_URL].some((u) => u !== undefined && u.trim() !== "");
    if (!hasUrl) throw usageError("run needs the engram server: set ENGRAM_URL or pass --url");
    for (const id of values.project ?? []) {
      if (id.trim() === "") throw usageError("--project must not be empty");
      const problem = projectIdProblem(id);
      if (problem !== undefined) throw usageError(`--project ${previewOf(id)}: ${problem}`);
    }
    const clientId = values["client-id"];
    if (clientId !== undefined && clientId.trim() === "") throw usageError("--client-id must not be empty");
    if (clientId !== undefined && projectIdProblem(clientId) !== undefined) throw usageError(`--client-id: ${projectIdProblem(clientId)}`);
    const healthPort = intFlag(values["health-port"], "health-port");
    if (healthPort !== undefined && healthPort > 65535) throw usageError("--health-port must be at most 65535");
    if (values["health-host"] !== undefined && healthPort === undefined) throw usageError("--health-host needs --health-port");
    if (values["projects-file-no-follow"] && values["projects-file"] === undefined)
      throw usageError("--projects-file-no-follow needs --projects-file");
    if (exec === undefined && (values["exec-env-token"] || values["exec-allow-dash-ids"]))
      throw usageError("--exec-env-token and --exec-allow-dash-ids need --exec");
    const flagTiming = readTimingFlags(values);
    // The bridge's stop gets the budget less a tail for the clean-up and the last stdout flush.
    const stop = planStop(flagTiming.stopTimeoutMs ?? defaultBridgeTiming.stopTimeoutMs);
    const timing = { ...flagTiming, stopTimeoutMs: stop.bridgeMs };

    const logger = createStderrLogger({ level, write: ctx.err });
    let prometheus: PrometheusMetrics | undefined;
    if (healthPort !== undefined) {
      try {
        prometheus = await createPrometheusMetrics();
      } catch (err) {
        logger.error({ err }, err instanceof BridgeError ? err.rawMessage : "cannot set up the metrics");
        return exitCodes.failure;
      }
    }
    const registry = new HandlerRegistry();
    const tracker = createProjectsFileTracker({
      fixedIds: values.project ?? [],
      path: values["projects-file"],
      noFollow: values["projects-file-no-follow"] === true,
      logger,
    });
    // A --project id the server reported removed is not reported again.
    registry.register({ name: "project-flags", onProjectRemoved: (projectId) => tracker.forgetFixed(projectId) });
    registry.register(createRemovalLineHandler(ctx.outLine));
    let execHandler: ExecHandler | undefined;
    const killExecOnExit = (): void => execHandler?.killNow();
    const bridge = createBridge({
      registry,
      tracker,
      serverUrl: values.url,
      clientId,
      meterProvider: prometheus?.meterProvider,
      env: ctx.env,
      logger,
      timing,
    });
    if (exec !== undefined) {
      const [command, ...args] = exec as [string, ...string[]];
      const { handlerTimeoutMs } = bridge.actor.getSnapshot().context.timing;
      const childEnv = createExecEnvironment({ base: ctx.env, passSecrets: values["exec-env-token"] === true, extraUrls: [values.url] });
      execHandler = createExecHandler({
        command,
        args,
        timeoutMs: handlerTimeoutMs,
        logger,
        env: childEnv.env,
        secrets: childEnv.secrets,
        allowDashIds: values["exec-allow-dash-ids"] === true,
      });
      registry.register(execHandler);
      ctx.shutdown.onForce(() => execHandler?.killNow());
      // Whatever ends the process (a crash included), its --exec children go with it.
      process.once("exit", killExecOnExit);
      if (prometheus !== undefined) observeExecStats(prometheus.meterProvider, execHandler);
    }
    const stopLogging = logConnectionStates(bridge, logger);
    let health: HealthServer | undefined;
    const cleanUp = async (): Promise<void> => {
      process.off("exit", killExecOnExit);
      stopLogging();
      tracker.close();
      await health?.close();
      await prometheus?.shutdown();
    };

    if (healthPort !== undefined) {
      try {
        health = await startHealthServer({
          port: healthPort,
          host: values["health-host"],
          status: () => bridge.status(),
          metrics: prometheus?.collect,
          logger,
        });
        logger.info({ url: health.url }, "health and metrics listening: GET /healthz, GET /metrics");
        // /healthz works without the metrics SDK; /metrics answers 501 and this says why once.
        if (prometheus?.unavailable !== undefined) logger.warn({ code: prometheus.unavailable.code }, prometheus.unavailable.rawMessage);
        if (!isLoopbackHost(values["health-host"] ?? "127.0.0.1")) {
          logger.warn(
            { url: health.url },
            "the health endpoint is not on loopback: whoever reaches it reads the bridge status and metrics (no token is in them)",
          );
        }
      } catch (err) {
        logger.error({ err }, err instanceof BridgeError ? err.rawMessage : "cannot serve --health-port");
        await bridge.stop();
        await cleanUp();
        return exitCodes.failure;
      }
    }

    // The first heartbeat reports the file's ids: read it once before starting
    // (a file on a hung network mount gets a moment, not the whole start).
    let firstRead: NodeJS.Timeout | undefined;
    const readInTime = await Promise.race([
      tracker.refresh().then(() => true),
      new Promise<false>((resolve) => (firstRead = setTimeout(() => resolve(false), projectsFileFirstReadMs))),
    ]);
    clearTimeout(firstRead);
    if (!readInTime)
      logger.warn(
        { path: values["projects-file"], waitedMs: projectsFileFirstReadMs },
        "the projects file is slow to read; starting with the --project ids",
      );
    bridge.start();
    const refused = bridge.status().lastError;
    if (bridge.status().state === "idle" && refused !== null) {
      // start() already logged why at error.
      await bridge.stop();
      await cleanUp();
      return exitCodes.failure;
    }
    const reason = await ctx.shutdown.requested;
    // The whole stop is one deadline: the bridge's drain, the --exec kill
    // sequence, the clean-up and the stdout flush all end by it.
    const deadline = performance.now() + stop.totalMs;
    logger.info({ reason, stopTimeoutMs: stop.totalMs }, "stopping");
    // Running --exec children: SIGTERM two grace periods before the bridge's
    // budget ends, SIGKILL one before, so the bridge's drain ends in time.
    let killing: Promise<void> | undefined;
    const killExec = (graceMs: number): Promise<void> => (killing ??= execHandler?.close(graceMs) ?? Promise.resolve());
    const killTimer = execHandler && setTimeout(() => void killExec(stop.graceMs), stop.bridgeMs - 2 * stop.graceMs);
    await bridge.stop();
    clearTimeout(killTimer);
    // Children (or groups) left: what remains of the budget, split into the two grace periods.
    if (execHandler !== undefined) {
      const graceMs = Math.floor((deadline - stop.tailMs / 2 - performance.now()) / 2);
      if (graceMs > 0) await killExec(Math.min(stop.graceMs, graceMs));
      // Nothing outlives the sidecar: SIGKILL to whatever is left, at once.
      execHandler.killNow();
    }
    await beforeDeadline(cleanUp(), deadline);
    const unflushed = await ctx.flushOut(deadline);
    const { droppedOnStop } = bridge.status().counters;
    const notWritten = unflushed + droppedOnStop;
    if (notWritten > 0) {
      logger.error(
        { notWritten, unflushed, droppedOnStop, stopTimeoutMs: stop.totalMs },
        `${notWritten} removal line(s) not written to stdout (the stop budget ran out, or stdout failed)`,
      );
      return exitCodes.failure;
    }
    return exitCodes.ok;
  },
};

/** How a stop budget is shared out: the bridge's drain, then a tail for the kill, clean-up and flush. */
export interface StopPlan {
  /** The whole budget (--stop-timeout-ms), in ms. */
  totalMs: number;
  /** The bridge's own stop budget: totalMs less the tail, in ms. */
  bridgeMs: number;
  /** Kept after the bridge's budget for the clean-up and the last flush, in ms. */
  tailMs: number;
  /** From SIGTERM to SIGKILL of --exec children, in ms. */
  graceMs: number;
}

export function planStop(stopTimeoutMs: number): StopPlan {
  const tailMs = Math.min(100, Math.floor(stopTimeoutMs / 10));
  const bridgeMs = Math.max(1, stopTimeoutMs - tailMs);
  return { totalMs: stopTimeoutMs, bridgeMs, tailMs, graceMs: Math.min(250, Math.floor(bridgeMs / 4)) };
}

/** Waits for `work` or until `deadline` (performance.now()), whichever is first; `work` goes on in the background. */
async function beforeDeadline(work: Promise<unknown>, deadline: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    work.catch(() => {}),
    new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.max(0, deadline - performance.now())))),
  ]);
  clearTimeout(timer);
}

function isLoopbackHost(host: string): boolean {
  return host === "localhost" || host === "::1" || host === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** The sidecar's own counters next to the bridge's: commands started and ids refused by --exec. */
function observeExecStats(provider: MeterProvider, handler: ExecHandler): void {
  const meter = provider.getMeter("engram-serverevents-sidecar");
  meter
    .createObservableCounter("engram.sidecar.exec.started", {
      description: "--exec commands started",
      unit: "{command}",
      valueType: ValueType.INT,
    })
    .addCallback((result) => result.observe(handler.stats.started));
  meter
    .createObservableCounter("engram.sidecar.exec.refused", {
      description: "Removals not run by --exec because the id starts with '-', has control characters or is too long",
      unit: "{removal}",
      valueType: ValueType.INT,
    })
    .addCallback((result) => result.observe(handler.stats.refused));
}
