/**
 * `run`: the sidecar. A bridge against ENGRAM_URL whose removals go to
 * stdout as JSON lines (and to `--exec`), logs to stderr as JSON lines.
 */
import { parseArgs } from "node:util";
import { createBridge } from "../bridge.js";
import { HandlerRegistry } from "../handler-registry.js";
import { createStderrLogger, type LogLevel } from "../logger.js";
import { exitCodes, parseOrUsage, splitExec, usageError } from "./cli-args.js";
import type { CliCommand } from "./cli-context.js";
import { createExecHandler, type ExecHandler } from "./exec-handler.js";
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
  --project ID           a tracked project id (repeatable)
  --projects-file PATH   more tracked ids, one per line (blank lines and lines starting with # are
                         ignored); read again at every heartbeat, so the daemon may rewrite it any time
  --client-id ID         this sidecar's id on the server (default: PID-STARTSECONDS)
  --log-level LEVEL      debug, info, warn, error or silent (default info)
  --exec CMD [ARGS...]   must come last: run CMD ARGS... PROJECT_ID for each removal, without a shell
                         (the id is one literal argument whatever it contains), with ENGRAM_PROJECT_ID,
                         ENGRAM_REMOVAL_SOURCE, ENGRAM_EVENT_ID and ENGRAM_REMOVAL_REASON set; its output
                         is logged; past --handler-timeout-ms its process group is killed
  -h, --help             this help

${timingFlagsHelp}

Environment: ENGRAM_URL, ENGRAM_TOKEN (bearer token; never pass it as a flag),
ENGRAM_TLS_CA (PEM CA file for https), ENGRAM_ALLOW_INSECURE=1 (allow a token
in plaintext to a non-loopback host).

Exit codes: 0 stopped by the first SIGINT/SIGTERM (after at most
--stop-timeout-ms); 1 the bridge refused its configuration (bad URL, token in
plaintext) or stdout was closed; 2 usage error (no server URL, bad flag);
130/143 a second SIGINT/SIGTERM (exits at once, --exec children killed).`;

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
          "client-id": { type: "string" },
          "log-level": { type: "string" },
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
    for (const id of values.project ?? []) if (id.trim() === "") throw usageError("--project must not be empty");
    const timing = readTimingFlags(values);

    const logger = createStderrLogger({ level, write: ctx.err });
    const registry = new HandlerRegistry();
    registry.register(createRemovalLineHandler(ctx.out));
    let execHandler: ExecHandler | undefined;
    const bridge = createBridge({
      registry,
      tracker: createProjectsFileTracker({ fixedIds: values.project ?? [], path: values["projects-file"], logger }),
      ...(values.url !== undefined ? { serverUrl: values.url } : {}),
      ...(values["client-id"] !== undefined ? { clientId: values["client-id"] } : {}),
      env: ctx.env,
      logger,
      timing,
    });
    if (exec !== undefined) {
      const [command, ...args] = exec as [string, ...string[]];
      const { handlerTimeoutMs } = bridge.actor.getSnapshot().context.timing;
      execHandler = createExecHandler({ command, args, timeoutMs: handlerTimeoutMs, logger, env: { ...ctx.env } });
      registry.register(execHandler);
      ctx.shutdown.onForce(() => execHandler?.killNow());
    }
    const stopLogging = logConnectionStates(bridge, logger);

    bridge.start();
    const refused = bridge.status().lastError;
    if (bridge.status().state === "idle" && refused !== null) {
      // start() already logged why at error.
      stopLogging();
      await bridge.stop();
      return exitCodes.failure;
    }
    const reason = await ctx.shutdown.requested;
    const { stopTimeoutMs } = bridge.actor.getSnapshot().context.timing;
    logger.info({ reason, stopTimeoutMs }, "stopping");
    // Running --exec children get the stop budget too: SIGTERM two grace
    // periods before its end, SIGKILL one before, so the exit stays within it.
    const graceMs = Math.min(250, Math.floor(stopTimeoutMs / 4));
    const killTimer = execHandler && setTimeout(() => void execHandler?.close(graceMs), stopTimeoutMs - 2 * graceMs);
    await bridge.stop();
    clearTimeout(killTimer);
    await execHandler?.close(graceMs);
    stopLogging();
    return exitCodes.ok;
  },
};
