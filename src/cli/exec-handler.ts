/**
 * `run --exec CMD ARGS…`: a removal handler that runs a command per removal,
 * with the project id appended as the last argument and in
 * ENGRAM_PROJECT_ID. Never through a shell: the id arrives as one literal
 * argument whatever it contains. The child gets the handler timeout; past it
 * its process group gets SIGTERM, then SIGKILL after a grace period.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { BridgeError } from "../errors.js";
import type { Logger, ProjectRemovalAware, RemovalInfo } from "../types.js";

export interface ExecHandlerOptions {
  /** The program to run (looked up on PATH, no shell). */
  command: string;
  /** Arguments before the project id. Defaults to none. */
  args?: readonly string[];
  /** How long one child may run, in ms (the bridge's handlerTimeoutMs). */
  timeoutMs: number;
  /** From SIGTERM to SIGKILL, in ms. Defaults to 1000. */
  killGraceMs?: number;
  /** The child's environment, before the ENGRAM_* additions. Defaults to process.env. */
  env?: NodeJS.ProcessEnv;
  /** Receives the child's output lines (info) and its failures. */
  logger: Logger;
}

export interface ExecHandler extends ProjectRemovalAware {
  readonly name: string;
  /** Children running now. */
  readonly running: number;
  /** SIGTERM to every running child's group, SIGKILL after `graceMs` (default killGraceMs); resolves when all exited. */
  close(graceMs?: number): Promise<void>;
  /** SIGKILL to every running child's group, synchronously (for a forced exit). */
  killNow(): void;
}

/** Output lines longer than this are cut in the log. */
const maxLoggedLineChars = 4096;

export function createExecHandler(options: ExecHandlerOptions): ExecHandler {
  const { command, timeoutMs, logger } = options;
  const args = [...(options.args ?? [])];
  const killGraceMs = options.killGraceMs ?? 1000;
  const baseEnv = options.env ?? process.env;
  const children = new Map<ChildProcess, Promise<void>>();

  const signalGroup = (child: ChildProcess, sig: NodeJS.Signals): void => {
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
    try {
      process.kill(-child.pid, sig); // the child leads its own process group (detached)
    } catch {
      try {
        child.kill(sig);
      } catch {
        // Already gone.
      }
    }
  };

  const terminate = (child: ChildProcess, graceMs = killGraceMs): void => {
    signalGroup(child, "SIGTERM");
    const timer = setTimeout(() => signalGroup(child, "SIGKILL"), graceMs);
    timer.unref();
    child.once("exit", () => clearTimeout(timer));
  };

  function onProjectRemoved(projectId: string, info: RemovalInfo): Promise<void> {
    const env: NodeJS.ProcessEnv = {
      ...baseEnv,
      ENGRAM_PROJECT_ID: projectId,
      ENGRAM_REMOVAL_SOURCE: info.source,
      ENGRAM_EVENT_ID: info.eventId ?? "",
      ENGRAM_REMOVAL_REASON: info.reason ?? "",
    };
    const child = spawn(command, [...args, projectId], {
      shell: false,
      detached: true,
      env,
      stdio: ["ignore", "pipe", "pipe"],
      windowsHide: true,
    });
    const startedAt = performance.now();
    for (const [stream, readable] of [
      ["stdout", child.stdout],
      ["stderr", child.stderr],
    ] as const) {
      if (readable === null) continue;
      createInterface({ input: readable, crlfDelay: Infinity }).on("line", (line) => {
        logger.info({ projectId, pid: child.pid, stream, line: line.slice(0, maxLoggedLineChars) }, "exec output");
      });
    }
    const done = new Promise<void>((resolve, reject) => {
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        logger.warn({ projectId, pid: child.pid, timeoutMs }, "exec command ran past the handler timeout: killing it");
        terminate(child);
      }, timeoutMs);
      child.once("error", (err) => {
        clearTimeout(timer);
        reject(new BridgeError(`cannot run ${JSON.stringify(command)}: ${err.message}`, "handler_failed", { cause: err }));
      });
      child.once("close", (code, signal) => {
        clearTimeout(timer);
        const ms = Math.round(performance.now() - startedAt);
        if (timedOut) {
          reject(new BridgeError(`exec command killed after ${timeoutMs} ms`, "handler_timeout"));
        } else if (code === 0) {
          logger.debug({ projectId, pid: child.pid, ms }, "exec command done");
          resolve();
        } else {
          const how = signal === null ? `exited with code ${code}` : `was killed by ${signal}`;
          reject(new BridgeError(`exec command ${how}`, "handler_failed"));
        }
      });
    }).finally(() => children.delete(child));
    children.set(child, done.catch(() => {}));
    return done;
  }

  return {
    name: "exec",
    onProjectRemoved,
    get running() {
      return children.size;
    },
    async close(graceMs = killGraceMs) {
      const pending = [...children.values()];
      for (const child of children.keys()) terminate(child, graceMs);
      await Promise.all(pending);
    },
    killNow() {
      for (const child of children.keys()) signalGroup(child, "SIGKILL");
    },
  };
}
