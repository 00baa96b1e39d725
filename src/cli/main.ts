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
import { createShutdown } from "./signals.js";

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
  if (name === "--help" || name === "-h" || name === "help") {
    stdout.write(`${usage()}\n`);
    return exitCodes.ok;
  }
  if (name === "--version" || name === "-v") {
    stdout.write(`${version()}\n`);
    return exitCodes.ok;
  }
  const entry = commands.find((c) => c.name === name);
  if (entry === undefined) {
    stderr.write(`${name === undefined ? "no command given" : `unknown command "${name}"`}\n\n${usage()}\n`);
    return exitCodes.usage;
  }
  const command = await entry.load();

  const shutdown = createShutdown({ write: (line) => void stderr.write(line) });
  let stdoutFailed = false;
  // A reader that went away (EPIPE) is a reason to stop, not to crash.
  const onStdoutError = (err: Error) => {
    if (stdoutFailed) return;
    stdoutFailed = true;
    createStderrLogger({ level: "error", write: (line) => void stderr.write(line) }).error(
      { err },
      "stdout failed (its reader went away?): stopping",
    );
    shutdown.request("stdout closed");
  };
  stdout.on("error", onStdoutError);
  const ctx: CliContext = {
    env: io.env ?? process.env,
    out: (text) => {
      if (!stdoutFailed) stdout.write(text);
    },
    err: (text) => void stderr.write(text),
    stdin: io.stdin ?? process.stdin,
    shutdown,
  };
  try {
    const code = await command.run(rest, ctx);
    return stdoutFailed && code === exitCodes.ok ? exitCodes.failure : code;
  } catch (err) {
    if (isUsageError(err)) {
      stderr.write(`engram-serverevents ${command.name}: ${err.rawMessage}\nRun "engram-serverevents ${command.name} --help" for usage.\n`);
      return exitCodes.usage;
    }
    stderr.write(`engram-serverevents ${command.name}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return exitCodes.failure;
  } finally {
    shutdown.dispose();
    stdout.off("error", onStdoutError);
  }
}
