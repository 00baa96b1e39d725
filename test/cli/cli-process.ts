/**
 * Runs `node bin/engram-serverevents.js …` as a user would and watches its
 * output line by line. Every process started here is killed by `killAll()`
 * (call it in an after hook) so no test leaves one behind.
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export const repoRoot = fileURLToPath(new URL("../..", import.meta.url));
export const binPath = fileURLToPath(new URL("../../bin/engram-serverevents.js", import.meta.url));

export interface CliProcess {
  readonly child: ChildProcessWithoutNullStreams;
  readonly pid: number;
  readonly stdout: string[];
  readonly stderr: string[];
  /** Resolves with the exit code (or 128 + signal number when killed by a signal). */
  readonly exited: Promise<number>;
  /** The exit code once exited, else undefined. */
  exitCode(): number | undefined;
  /** Resolves with the first stdout (or stderr) line matching, waiting up to timeoutMs. */
  waitForLine(
    match: RegExp | ((line: string) => boolean),
    options?: { stream?: "stdout" | "stderr"; timeoutMs?: number; after?: number },
  ): Promise<string>;
  /** Writes a line to stdin. */
  send(line: string): void;
  /** stdout and stderr so far, for failure messages. */
  transcript(): string;
}

const live = new Set<CliProcess>();

/** Default environment: this process's, minus every ENGRAM_* variable. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("ENGRAM_")) env[k] = v;
  return { ...env, NO_COLOR: "1", ...extra };
}

export function startCli(args: readonly string[], options: { env?: NodeJS.ProcessEnv } = {}): CliProcess {
  const child = spawn(process.execPath, [binPath, ...args], {
    cwd: repoRoot,
    env: options.env ?? cleanEnv(),
    stdio: ["pipe", "pipe", "pipe"],
  });
  const stdout: string[] = [];
  const stderr: string[] = [];
  const waiters = new Set<() => void>();
  const collect = (into: string[], stream: NodeJS.ReadableStream) => {
    let partial = "";
    stream.setEncoding("utf8");
    stream.on("data", (chunk: string) => {
      partial += chunk;
      const lines = partial.split("\n");
      partial = lines.pop() ?? "";
      into.push(...lines);
      for (const w of [...waiters]) w();
    });
    stream.on("end", () => {
      if (partial !== "") into.push(partial);
      partial = "";
      for (const w of [...waiters]) w();
    });
  };
  collect(stdout, child.stdout);
  collect(stderr, child.stderr);
  let code: number | undefined;
  const exited = new Promise<number>((resolve) => {
    child.on("close", (c, signal) => {
      code = c ?? 128 + (signal === "SIGKILL" ? 9 : signal === "SIGTERM" ? 15 : signal === "SIGINT" ? 2 : 0);
      live.delete(proc);
      for (const w of [...waiters]) w();
      resolve(code);
    });
  });
  child.stdin.on("error", () => {});
  const proc: CliProcess = {
    child,
    pid: child.pid ?? -1,
    stdout,
    stderr,
    exited,
    exitCode: () => code,
    transcript: () => `--- stdout\n${stdout.join("\n")}\n--- stderr\n${stderr.join("\n")}`,
    send: (line) => void child.stdin.write(`${line}\n`),
    waitForLine(match, opts = {}) {
      const lines = opts.stream === "stderr" ? stderr : stdout;
      const test = typeof match === "function" ? match : (l: string) => match.test(l);
      const timeoutMs = opts.timeoutMs ?? 15_000;
      let from = opts.after ?? 0;
      return new Promise<string>((resolve, reject) => {
        const check = () => {
          for (; from < lines.length; from++) {
            const line = lines[from] as string;
            if (test(line)) {
              done();
              resolve(line);
              return;
            }
          }
          if (code !== undefined) {
            done();
            reject(new Error(`process exited (${code}) before a line matched ${String(match)}\n${proc.transcript()}`));
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`timed out after ${timeoutMs} ms waiting for ${String(match)}\n${proc.transcript()}`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
  };
  live.add(proc);
  return proc;
}

/** SIGKILLs every CLI process still running and waits for them. */
export async function killAll(): Promise<void> {
  const procs = [...live];
  for (const p of procs) p.child.kill("SIGKILL");
  await Promise.all(procs.map((p) => p.exited));
}

/** Whether a process with this pid exists (and is not a zombie). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    // A zombie still answers kill(0); its /proc status says so.
    const status = procState(pid);
    return status !== "Z";
  } catch {
    return true;
  }
}

function procState(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
}

/** Waits until `check` holds, polling; throws with `what` after timeoutMs. */
export async function waitUntil(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Parses JSON lines, failing on any line that is not JSON. */
export function jsonLines(lines: readonly string[]): Array<Record<string, unknown>> {
  return lines
    .filter((l) => l.trim() !== "")
    .map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        throw new Error(`not a JSON line: ${l}`);
      }
    });
}

/** The dev server sends response headers with the first message only: confirm the open quickly. */
export const fastOpen: readonly string[] = ["--open-confirm-ms", "150"];

/** Waits for the sidecar's JSON log line saying it is streaming. */
export function streaming(proc: CliProcess, after = 0): Promise<string> {
  return proc.waitForLine((l) => l.includes('"msg":"connection streaming"'), { stream: "stderr", after });
}

/**
 * The start of a `run` command line the sidecar tests share: the server,
 * a quick open, one tracked project, and the handler and stop budgets
 * (each flag only when given).
 */
export function sidecarArgs(url: string, project: string, budgets: { handlerTimeoutMs?: number; stopTimeoutMs?: number } = {}): string[] {
  const args = ["run", "--url", url, ...fastOpen, "--project", project];
  if (budgets.handlerTimeoutMs !== undefined) args.push("--handler-timeout-ms", String(budgets.handlerTimeoutMs));
  if (budgets.stopTimeoutMs !== undefined) args.push("--stop-timeout-ms", String(budgets.stopTimeoutMs));
  return args;
}
