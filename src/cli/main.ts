/**
 * The `engram-serverevents` command line: start, dev, run and serve.
 * `bin/engram-serverevents.js` loads the compiled file (dist/src/cli/main.js)
 * and calls main(). A command's module, and with it the bridge, gRPC and the
 * dev server, is loaded only when that command runs: `--help` stays fast.
 */
import { readFileSync } from "node:fs";
import { createStderrLogger } from "../logger.js";
import { exitCodes, isUsageError } from "./cli-args.js";
import type { CliCommand, CliContext } from "./cli-context.js";
import { createLineOutput, createLogSink } from "./line-output.js";
import { createShutdown, type Shutdown } from "./signals.js";

/** How long main() waits at the end for stdout and stderr to take what is left, in ms. */
const exitFlushMs = 1000;
/** How long main() waits at the end for stderr to take the last log lines, in ms. */
const stderrExitFlushMs = 200;

/** A command as the list knows it before its module is loaded. */
export interface LazyCliCommand {
  readonly name: string;
  /** One line for the command list (test/package/cli-entry.test.ts checks it is the module's). */
  readonly summary: string;
  load(): Promise<CliCommand>;
}

export const commands: readonly LazyCliCommand[] = [
  {
    name: "start",
    summary: "dev without ENGRAM_URL, else run (what npm start runs)",
    load: async () => (await import("./start-command.js")).startCommand,
  },
  {
    name: "dev",
    summary: "dev server + bridge + demo on loopback, with a prompt or a scripted demo",
    load: async () => (await import("./dev-command.js")).devCommand,
  },
  {
    name: "run",
    summary: "the sidecar: removals of ENGRAM_URL as JSON lines on stdout (and --exec)",
    load: async () => (await import("./run-command.js")).runCommand,
  },
  {
    name: "serve",
    summary: "the dev server alone, printing its URL (for other daemons and tests)",
    load: async () => (await import("./serve-command.js")).serveCommand,
  },
];

/** This package's version: package.json is two levels up from src/cli, three from dist/src/cli. */
function version(): string {
  for (const up of ["../../package.json", "../../../package.json"]) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(up, import.meta.url), "utf8")) as { name?: string; version?: string };
      if (pkg.name === "engram-serverevents") return pkg.version ?? "unknown";
    } catch {
      // not there: try the next level
    }
  }
  return "unknown";
}

export function usage(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return `Usage: engram-serverevents <command> [options]

The daemon-side bridge to the engram server's project lifecycle.

Commands:
${commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join("\n")}

Run "engram-serverevents <command> --help" for a command's options.

Exit codes: 0 done or stopped by SIGINT, SIGTERM or SIGHUP; 1 runtime failure;
2 usage error; 129/130/143 a second SIGHUP/SIGINT/SIGTERM (exits at once).`;
}

/** Where main() reads and writes. */
export interface CliIo {
  /** Defaults to process.stdout. */
  stdout?: NodeJS.WritableStream;
  /** Defaults to process.stderr. */
  stderr?: NodeJS.WritableStream;
  /** Defaults to process.stdin. */
  stdin?: NodeJS.ReadableStream & { isTTY?: boolean };
  /** Defaults to process.env. */
  env?: Record<string, string | undefined>;
}

/** Runs the CLI with `argv` (without node and the script); resolves with the exit code. */
export async function main(argv: readonly string[], io: CliIo = {}): Promise<number> {
  const stdout = io.stdout ?? process.stdout;
  const stderr = io.stderr ?? process.stderr;
  const [name, ...rest] = argv;
  // Dead stderr turns logging off, never the process; a slow one drops log lines (counted), never blocks.
  const logSink = createLogSink(stderr);
  let shutdown: Shutdown | undefined;
  // A reader that went away (EPIPE) is a reason to stop, not to crash; a slow one slows the writer down.
  const output = createLineOutput(stdout, {
    onError: (err) => {
      createStderrLogger({ level: "error", write: (line) => logSink.write(line) }).error(
        { err },
        "stdout failed (its reader went away?): stopping",
      );
      shutdown?.request("stdout closed");
    },
  });
  const finish = async (code: number): Promise<number> => {
    await output.flush(performance.now() + exitFlushMs);
    output.dispose();
    await logSink.flush(performance.now() + stderrExitFlushMs);
    return code;
  };
  if (name === "--help" || name === "-h" || name === "help") {
    void output.write(`${usage()}\n`);
    return finish(exitCodes.ok);
  }
  if (name === "--version" || name === "-v") {
    void output.write(`${version()}\n`);
    return finish(exitCodes.ok);
  }
  const entry = commands.find((c) => c.name === name);
  if (entry === undefined) {
    logSink.write(`${name === undefined ? "no command given" : `unknown command "${name}"`}\n\n${usage()}\n`);
    return finish(exitCodes.usage);
  }
  const command = await entry.load();
  const stop = createShutdown({ write: (line) => logSink.write(line) });
  shutdown = stop;
  let flushedByCommand = false;
  /** Where the final stderr flush ends: the command's own deadline when it flushed (run's stop budget). */
  let stderrDeadline: number | undefined;
  const ctx: CliContext = {
    env: io.env ?? process.env,
    out: (text) => void output.write(text),
    outLine: (text) => output.write(text),
    flushOut: (deadline) => {
      flushedByCommand = true;
      stderrDeadline = deadline;
      return output.flush(deadline);
    },
    err: (text) => logSink.write(text),
    stdin: io.stdin ?? process.stdin,
    shutdown: stop,
  };
  try {
    const code = await command.run(rest, ctx);
    // Whatever the command printed last is on stdout before the exit; a command that
    // flushed itself (run, within its stop budget) is not given more time here.
    const notWritten = await output.flush(flushedByCommand ? 0 : performance.now() + exitFlushMs);
    if (notWritten > 0 && !output.failed)
      logSink.write(`engram-serverevents ${command.name}: ${notWritten} stdout line(s) not written at exit\n`);
    return (output.failed || notWritten > 0) && code === exitCodes.ok ? exitCodes.failure : code;
  } catch (err) {
    if (isUsageError(err)) {
      logSink.write(
        `engram-serverevents ${command.name}: ${err.rawMessage}\nRun "engram-serverevents ${command.name} --help" for usage.\n`,
      );
      return exitCodes.usage;
    }
    logSink.write(`engram-serverevents ${command.name}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return exitCodes.failure;
  } finally {
    stop.dispose();
    output.dispose();
    await logSink.flush(stderrDeadline ?? performance.now() + stderrExitFlushMs);
  }
}
