/** What every command gets from main(): the environment, output, stdin and the shutdown. */
import type { Shutdown } from "./signals.js";

export interface CliContext {
  /** The environment (ENGRAM_URL, ENGRAM_TOKEN, …). */
  env: Record<string, string | undefined>;
  /** Writes to stdout (the command's data: removal lines, the server URL, dev output). */
  out: (text: string) => void;
  /**
   * Writes to stdout and resolves once the stream took the text without
   * back-pressure (never rejects; a failed stdout stops the command).
   */
  outLine: (text: string) => Promise<void>;
  /**
   * Waits until everything written to stdout is written, or `deadline` (a
   * performance.now() time) passed; resolves with the lines not written.
   */
  flushOut: (deadline: number) => Promise<number>;
  /** Writes to stderr (logs, hints); never blocks, drops lines when stderr is behind, nothing once it failed. */
  err: (text: string) => void;
  /** Standard input (dev and serve commands read it). */
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  /** SIGINT/SIGTERM handling; commands await `shutdown.requested` and then stop. */
  shutdown: Shutdown;
}

export interface CliCommand {
  readonly name: string;
  /** One line for the command list. */
  readonly summary: string;
  /** The full `--help` text. */
  readonly help: string;
  /** Runs the command; resolves with the exit code. Throws a usage error (exit 2) for bad arguments. */
  run(argv: string[], ctx: CliContext): Promise<number>;
}
