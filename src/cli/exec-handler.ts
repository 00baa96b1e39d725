/**
 * `run --exec CMD ARGS…`: a removal handler that runs a command per removal,
 * with the project id appended as the last argument and in
 * ENGRAM_PROJECT_ID. Never through a shell, and never with an id that a
 * program could read as an option or that carries control characters (see
 * `projectIdProblem`): such ids are refused, logged and counted.
 *
 * The child leads its own process group. It is done when it exits: its
 * output is then drained for `drainMs` and its pipes are closed, so a
 * background job that keeps them open cannot hold the handler. Past the
 * handler timeout, and at close(), the whole group gets SIGTERM and then
 * SIGKILL, whether or not its leader is still there; groups that outlived
 * their leader are remembered and stopped by close().
 */
import { spawn, type ChildProcess } from "node:child_process";
import type { Readable } from "node:stream";
import { BridgeError } from "../errors.js";
import type { Logger, ProjectRemovalAware, RemovalInfo } from "../types.js";
import { redactSecrets } from "./exec-env.js";
import { envSafe, previewOf, projectIdProblem } from "./id-rules.js";

/** From SIGTERM to SIGKILL of a child's group, in ms. */
export const DEFAULT_KILL_GRACE_MS = 1000;
/** How long an exited child's output is still read, in ms. */
export const DEFAULT_DRAIN_MS = 200;
/** Output lines logged per child. */
export const DEFAULT_MAX_LOGGED_LINES = 1000;

export interface ExecHandlerOptions {
  /** The program to run (looked up on PATH, no shell). */
  command: string;
  /** Arguments before the project id. Defaults to none. */
  args?: readonly string[];
  /** How long one child may run, in ms (the bridge's handlerTimeoutMs). */
  timeoutMs: number;
  /** From SIGTERM to SIGKILL, in ms. Defaults to DEFAULT_KILL_GRACE_MS (1000). */
  killGraceMs?: number;
  /** How long the output of an exited child is still read before its pipes are closed, in ms. Defaults to DEFAULT_DRAIN_MS (200). */
  drainMs?: number;
  /**
   * The child's environment, before the ENGRAM_* additions. Defaults to
   * process.env; the CLI passes createExecEnvironment()'s, without the token.
   */
  env?: NodeJS.ProcessEnv;
  /** Strings removed from logged child output (the token, URL passwords). Defaults to none. */
  secrets?: readonly string[];
  /** Run ids that start with "-" too (a program may read them as options). Defaults to false. */
  allowDashIds?: boolean;
  /** Output lines logged per child; the rest is counted. Defaults to DEFAULT_MAX_LOGGED_LINES (1000). */
  maxLoggedLines?: number;
  /** Receives the child's output lines (info) and its failures. */
  logger: Logger;
}

export interface ExecStats {
  /** Commands started. */
  started: number;
  /** Removals whose id was refused (not run). */
  refused: number;
}

export interface ExecHandler extends ProjectRemovalAware {
  readonly name: string;
  /** Runs the command for one removal; resolves at once for a refused id. */
  onProjectRemoved(projectId: string, info: RemovalInfo): Promise<void>;
  /** Children running now. */
  readonly running: number;
  /** Process groups whose leader exited while other members still ran (checked lazily). */
  readonly lingeringGroups: number;
  readonly stats: Readonly<ExecStats>;
  /**
   * Refuses new commands; SIGTERM to every running child's group and every
   * lingering group, SIGKILL after `graceMs` (default killGraceMs). Resolves
   * when they are gone, or at the latest 2 × graceMs after the call.
   */
  close(graceMs?: number): Promise<void>;
  /** SIGKILL to every running child's group and every lingering group, synchronously (for a forced exit). */
  killNow(): void;
}

/** Output lines longer than this are cut in the log. */
const maxLoggedLineChars = 4096;
/** ENGRAM_REMOVAL_REASON is cut to this many UTF-8 bytes. */
export const maxReasonEnvBytes = 4096;
/** ENGRAM_EVENT_ID is cut to this many UTF-8 bytes. */
export const maxEventIdEnvBytes = 256;

/** How often groups that outlived their leader are checked for emptiness, in ms. */
const lingeringPruneMs = 1000;

/** Whether any process is left in process group `pgid`. */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

function signalGroup(pgid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pgid, sig);
  } catch {
    // The group is gone.
  }
}

export function createExecHandler(options: ExecHandlerOptions): ExecHandler {
  const { command, timeoutMs, logger } = options;
  const args = [...(options.args ?? [])];
  const killGraceMs = options.killGraceMs ?? DEFAULT_KILL_GRACE_MS;
  const drainMs = options.drainMs ?? DEFAULT_DRAIN_MS;
  const baseEnv = options.env ?? process.env;
  const secrets = [...(options.secrets ?? [])].filter((s) => s !== "").sort((a, b) => b.length - a.length);
  const longestSecret = secrets[0]?.length ?? 0;
  const allowDashIds = options.allowDashIds ?? false;
  const maxLoggedLines = options.maxLoggedLines ?? DEFAULT_MAX_LOGGED_LINES;
  const children = new Map<ChildProcess, Promise<void>>();
  const lingering = new Set<number>();
  const stats: ExecStats = { started: 0, refused: 0 };
  let closed = false;

  // Forget emptied groups soon, so that a recycled pid is never signalled as one of ours.
  let pruneTimer: NodeJS.Timeout | undefined;
  const pruneLingering = (): void => {
    for (const pgid of lingering) if (!groupAlive(pgid)) lingering.delete(pgid);
    if (lingering.size === 0 && pruneTimer !== undefined) {
      clearInterval(pruneTimer);
      pruneTimer = undefined;
    } else if (lingering.size > 0 && pruneTimer === undefined) {
      pruneTimer = setInterval(pruneLingering, lingeringPruneMs);
      pruneTimer.unref();
    }
  };

  /** SIGTERM to the group now, SIGKILL after `graceMs` (even when the leader has exited by then). */
  const terminate = (pgid: number, graceMs = killGraceMs): void => {
    signalGroup(pgid, "SIGTERM");
    setTimeout(() => {
      if (groupAlive(pgid)) signalGroup(pgid, "SIGKILL");
    }, graceMs).unref();
  };

  /** Logs the lines of one output stream, redacted and bounded (line length and count). */
  const logLines = (
    readable: Readable,
    projectId: string,
    pid: number | undefined,
    stream: "stdout" | "stderr",
    budget: { lines: number; dropped: number },
  ): void => {
    // Enough to redact a secret that straddles the cut.
    const holdChars = maxLoggedLineChars + longestSecret;
    let partial = "";
    let skipping = false;
    const emit = (line: string, truncated: boolean): void => {
      if (budget.lines <= 0) {
        budget.dropped++;
        return;
      }
      budget.lines--;
      const text = redactSecrets(line, secrets).slice(0, maxLoggedLineChars);
      logger.info({ projectId: previewOf(projectId, 128), pid, stream, line: text, ...(truncated ? { truncated } : {}) }, "exec output");
    };
    readable.setEncoding("utf8");
    readable.on("data", (chunk: string) => {
      let rest = chunk;
      for (let nl = rest.indexOf("\n"); nl >= 0; nl = rest.indexOf("\n")) {
        if (!skipping) emit((partial + rest.slice(0, nl)).replace(/\r$/, ""), false);
        partial = "";
        skipping = false;
        rest = rest.slice(nl + 1);
      }
      if (skipping) return;
      partial += rest;
      if (partial.length > holdChars) {
        emit(partial, true);
        partial = "";
        skipping = true;
      }
    });
    readable.on("end", () => {
      if (partial !== "" && !skipping) emit(partial, false);
      partial = "";
    });
    readable.on("error", () => {});
  };

  function run(projectId: string, info: RemovalInfo): Promise<void> {
    const env: NodeJS.ProcessEnv = {
      ...baseEnv,
      ENGRAM_PROJECT_ID: projectId,
      ENGRAM_REMOVAL_SOURCE: info.source,
      ENGRAM_EVENT_ID: envSafe(info.eventId ?? "", maxEventIdEnvBytes),
      ENGRAM_REMOVAL_REASON: envSafe(info.reason ?? "", maxReasonEnvBytes),
    };
    let child: ChildProcess;
    try {
      child = spawn(command, [...args, projectId], {
        shell: false,
        detached: true,
        env,
        stdio: ["ignore", "pipe", "pipe"],
        windowsHide: true,
      });
    } catch (err) {
      return Promise.reject(
        new BridgeError(`cannot run ${JSON.stringify(command)}: ${(err as Error).message}`, "handler_failed", { cause: err }),
      );
    }
    stats.started++;
    const pid = child.pid;
    const startedAt = performance.now();
    const budget = { lines: maxLoggedLines, dropped: 0 };
    for (const [stream, readable] of [
      ["stdout", child.stdout],
      ["stderr", child.stderr],
    ] as const) {
      if (readable !== null) logLines(readable, projectId, pid, stream, budget);
    }
    const done = new Promise<void>((resolve, reject) => {
      let timedOut = false;
      let settled = false;
      const timer = setTimeout(() => {
        timedOut = true;
        logger.warn({ projectId: previewOf(projectId, 128), pid, timeoutMs }, "exec command ran past the handler timeout: killing it");
        if (pid !== undefined) terminate(pid);
      }, timeoutMs);
      const settle = (outcome: Error | undefined): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        child.stdout?.destroy();
        child.stderr?.destroy();
        if (budget.dropped > 0)
          logger.warn(
            { projectId: previewOf(projectId, 128), pid, droppedLines: budget.dropped },
            "exec output past the line limit was not logged",
          );
        if (outcome === undefined) resolve();
        else reject(outcome);
      };
      child.once("error", (err) => {
        settle(new BridgeError(`cannot run ${JSON.stringify(command)}: ${err.message}`, "handler_failed", { cause: err }));
      });
      child.once("exit", (code, signal) => {
        // A background job may hold the pipes open: finish after a short drain.
        const outcome = (): Error | undefined => {
          const ms = Math.round(performance.now() - startedAt);
          if (pid !== undefined && groupAlive(pid)) {
            lingering.add(pid);
            pruneLingering();
            logger.warn(
              { projectId: previewOf(projectId, 128), pid },
              "exec command exited but left processes in its group; they are stopped when the sidecar stops",
            );
          }
          if (timedOut) return new BridgeError(`exec command killed after ${timeoutMs} ms`, "handler_timeout");
          if (code === 0) {
            logger.debug({ projectId: previewOf(projectId, 128), pid, ms }, "exec command done");
            return undefined;
          }
          const how = signal === null ? `exited with code ${code}` : `was killed by ${signal}`;
          return new BridgeError(`exec command ${how}`, "handler_failed");
        };
        // Once closing, the group is being killed: no output is worth waiting for.
        const drain = setTimeout(() => settle(outcome()), closed ? 0 : drainMs);
        child.once("close", () => {
          clearTimeout(drain);
          settle(outcome());
        });
      });
    }).finally(() => children.delete(child));
    children.set(
      child,
      done.catch(() => {}),
    );
    return done;
  }

  function onProjectRemoved(projectId: string, info: RemovalInfo): Promise<void> {
    const problem = projectIdProblem(projectId) ?? (!allowDashIds && projectId.startsWith("-") ? 'starts with "-"' : undefined);
    if (problem !== undefined) {
      stats.refused++;
      logger.warn({ projectId: previewOf(projectId), problem, refused: stats.refused }, `exec refused a project id: ${problem}`);
      return Promise.resolve();
    }
    if (closed) return Promise.reject(new BridgeError("exec handler closed: the sidecar is stopping", "handler_failed"));
    pruneLingering();
    return run(projectId, info);
  }

  const groups = (): number[] => {
    const pgids = new Set<number>(lingering);
    for (const child of children.keys()) if (child.pid !== undefined) pgids.add(child.pid);
    return [...pgids];
  };

  return {
    name: "exec",
    onProjectRemoved,
    get running() {
      return children.size;
    },
    get lingeringGroups() {
      pruneLingering();
      return lingering.size;
    },
    stats,
    async close(graceMs = killGraceMs) {
      closed = true;
      const pending = [...children.values()];
      const pgids = groups();
      for (const pgid of pgids) terminate(pgid, graceMs);
      const deadline = performance.now() + 2 * graceMs;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.all(pending), new Promise((r) => (timer = setTimeout(r, Math.max(0, deadline - performance.now()))))]);
      clearTimeout(timer);
      // Wait for lingering members (they are not our children, so poll).
      while (pgids.some(groupAlive) && performance.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      pruneLingering();
    },
    killNow() {
      for (const pgid of groups()) signalGroup(pgid, "SIGKILL");
    },
  };
}
