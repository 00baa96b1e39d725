/**
 * Small helpers around node:util parseArgs shared by every command: usage
 * errors (exit code 2), integer flags, and splitting off `--exec CMD ARGS…`.
 */
import { BridgeError } from "../errors.js";
import { maxCommandInt, quoteValue, strictInt } from "./command-numbers.js";

/** The exit codes of every command (README "CLI" lists them). */
export const exitCodes = Object.freeze({
  /** Done, or stopped by the first SIGINT/SIGTERM. */
  ok: 0,
  /** A runtime failure: the bridge refused its configuration, a listener or file failed, stdout closed. */
  failure: 1,
  /** A usage error: unknown command or flag, bad value, missing server URL. */
  usage: 2,
});

/** A usage error: the command prints it with a hint to `--help` and exits 2. */
export function usageError(message: string): BridgeError {
  return new BridgeError(message, "invalid_argument");
}

export function isUsageError(err: unknown): err is BridgeError {
  return err instanceof BridgeError && err.code === "invalid_argument";
}

/** Runs parseArgs' thrower and turns its TypeErrors into usage errors. */
export function parseOrUsage<T>(parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    if (err instanceof Error && "code" in err && String(err.code).startsWith("ERR_PARSE_ARGS")) throw usageError(err.message);
    throw err;
  }
}

/**
 * Parses an integer flag value in [min, max] (or undefined when the flag is
 * absent) with the stdin commands' parser (command-numbers.ts): plain
 * decimal digits only, never "1e3", "0x10", "8080.0" or " 7". `max` defaults
 * to 2^31 - 1, Node's timer limit.
 */
export function intFlag(value: string | undefined, flag: string, min = 0, max = maxCommandInt): number | undefined {
  if (value === undefined) return undefined;
  const n = strictInt(value);
  if (!Number.isSafeInteger(n) || n < min || n > max)
    throw usageError(`--${flag} must be an integer >= ${min} and <= ${max}, got ${quoteValue(value)} (plain decimal digits)`);
  return n;
}

/**
 * Splits `argv` at the first `--exec`: what follows is the command and its
 * arguments, taken literally (never parsed as flags, never given to a shell).
 */
export function splitExec(argv: readonly string[]): { own: string[]; exec: string[] | undefined } {
  const at = argv.indexOf("--exec");
  if (at < 0) return { own: [...argv], exec: undefined };
  const exec = argv.slice(at + 1);
  if (exec.length === 0 || exec[0] === "") throw usageError("--exec needs a command: --exec CMD [ARGS...] (it must come last)");
  return { own: argv.slice(0, at), exec };
}
