import { BridgeError, bridgeErrorCodes, type ErrorSummary } from "./errors.js";
import type { Logger } from "./types.js";

/** The levels a Logger writes at, plus "silent" to write nothing. */
export type LogLevel = "debug" | "info" | "warn" | "error" | "silent";

/** pino's numeric level of each LogLevel. */
export const logLevelValues: Readonly<Record<LogLevel, number>> = Object.freeze({
  debug: 20,
  info: 30,
  warn: 40,
  error: 50,
  silent: Number.POSITIVE_INFINITY,
});

type Method = Exclude<LogLevel, "silent">;

/** Loggers known not to throw: those made here and by safeLogger. */
const safeLoggers = new WeakSet<Logger>();

export interface StderrLoggerOptions {
  /** Lowest level written. Defaults to "warn". */
  level?: LogLevel;
  /**
   * Receives each JSON line, its trailing newline included. Defaults to
   * `process.stderr.write`.
   */
  write?: (line: string) => void;
  /** Source of the `time` field, in Unix milliseconds. Defaults to `Date.now`. */
  now?: () => number;
  /** The `name` field of every line. Defaults to "engram-serverevents". */
  name?: string;
}

/**
 * The bridge's default logger: pino-style JSON lines,
 * `{"level":40,"time":…,"name":"engram-serverevents","msg":"…",…obj}`,
 * for every call at or above `level`. `Error` values anywhere in `obj` (or
 * `obj` itself, written as `err`) become `{type, message, code}` without a
 * stack; bigints become strings; cycles become "[Circular]". Its methods
 * never throw. Throws a BridgeError "invalid_config" for an unknown level.
 */
export function createStderrLogger(options: StderrLoggerOptions = {}): Logger {
  const level = options.level ?? "warn";
  if (!Object.hasOwn(logLevelValues, level)) {
    throw new BridgeError(`unknown log level "${String(level)}"; use debug, info, warn, error or silent`, "invalid_config");
  }
  const threshold = logLevelValues[level];
  const write = options.write ?? ((line: string) => void process.stderr.write(line));
  const now = options.now ?? Date.now;
  const name = options.name ?? "engram-serverevents";

  const emit = (method: Method, obj: object, msg?: string): void => {
    const value = logLevelValues[method];
    if (value < threshold) return;
    try {
      write(`${formatLine(value, now(), name, obj, msg)}\n`);
    } catch {
      // A logger must never break its caller (EPIPE on a closed stderr, …).
    }
  };
  const logger: Logger = {
    debug: (obj, msg) => emit("debug", obj, msg),
    info: (obj, msg) => emit("info", obj, msg),
    warn: (obj, msg) => emit("warn", obj, msg),
    error: (obj, msg) => emit("error", obj, msg),
  };
  return markSafe(Object.freeze(logger));
}

/** A logger that writes nothing. */
export const noopLogger: Logger = markSafe(
  Object.freeze({
    debug() {},
    info() {},
    warn() {},
    error() {},
  }),
);

/**
 * Wraps a user-supplied logger so that logging never breaks the caller: a
 * method that throws, is missing or returns a rejected promise is ignored.
 * An error summary under `err` (`{code, message}`, as the bridge keeps
 * errors) reaches the logger as a real BridgeError (loggableError), which
 * pino's `err` serialiser renders with its type, message and code.
 * Returns the argument unchanged when it is already safe.
 */
export function safeLogger(logger: Logger): Logger {
  if (logger === null || logger === undefined) return noopLogger;
  if (safeLoggers.has(logger)) return logger;
  const call =
    (method: Method) =>
    (obj: object, msg?: string): void => {
      try {
        const fn: unknown = logger[method];
        if (typeof fn !== "function") return;
        const fields = withLoggableErr(obj);
        const result: unknown = msg === undefined ? fn.call(logger, fields) : fn.call(logger, fields, msg);
        if (result !== null && typeof result === "object" && typeof (result as PromiseLike<unknown>).then === "function") {
          (result as PromiseLike<unknown>).then(undefined, () => {});
        }
      } catch {
        // Swallowed on purpose.
      }
    };
  const wrapped: Logger = Object.freeze({
    debug: call("debug"),
    info: call("info"),
    warn: call("warn"),
    error: call("error"),
  });
  return markSafe(wrapped);
}

/**
 * An ErrorSummary as a real BridgeError, for the `err` key of a log line:
 * pino (and any logger with an Error serialiser) renders it as
 * `{type: "BridgeError", message: "[code] message", code, stack}`. The stack
 * is the one line `BridgeError: [code] message`: a summary keeps no stack,
 * and the frames of the log call would mislead.
 */
export function loggableError(summary: ErrorSummary): BridgeError {
  const error = new BridgeError(summary.message, summary.code);
  error.stack = `${error.name}: ${error.message}`;
  return error;
}

function isErrorSummary(value: unknown): value is ErrorSummary {
  if (value === null || typeof value !== "object" || value instanceof Error) return false;
  const { code, message } = value as { code?: unknown; message?: unknown };
  return typeof code === "string" && (bridgeErrorCodes as readonly string[]).includes(code) && typeof message === "string";
}

/** `obj` with a summary under `err` replaced by loggableError(summary); `obj` itself otherwise. */
function withLoggableErr(obj: object): object {
  if (obj === null || typeof obj !== "object") return obj;
  const err: unknown = (obj as { err?: unknown }).err;
  return isErrorSummary(err) ? { ...obj, err: loggableError(err) } : obj;
}

/** The JSON form of an Error in a log line. */
export interface SerializedError {
  type: string;
  message: string;
  code?: string | number;
}

/** `{type, message, code}` of an Error; a BridgeError's message omits the code prefix. */
export function serializeError(error: Error): SerializedError {
  const out: SerializedError = {
    type: typeof error.name === "string" && error.name !== "" ? error.name : "Error",
    message: error instanceof BridgeError ? error.rawMessage : String(error.message),
  };
  const code: unknown = (error as { code?: unknown }).code;
  if (typeof code === "string" || typeof code === "number") out.code = code;
  return out;
}

function markSafe(logger: Logger): Logger {
  safeLoggers.add(logger);
  return logger;
}

function formatLine(level: number, time: number, name: string, obj: object, msg: string | undefined): string {
  const record: Record<string, unknown> = { level, time, name };
  if (msg !== undefined) record["msg"] = msg;
  try {
    if (obj instanceof Error) {
      record["err"] = obj;
    } else if (obj !== null && typeof obj === "object") {
      for (const [key, value] of Object.entries(obj)) {
        if (!Object.hasOwn(record, key)) record[key] = value;
      }
    }
    return JSON.stringify(record, replace);
  } catch {
    // Cycles (or a throwing getter or toJSON): retry with cycle detection.
  }
  try {
    return JSON.stringify(record, cycleSafeReplacer());
  } catch {
    return JSON.stringify({ level, time, name, msg, logError: "log object could not be serialised" });
  }
}

function replace(_key: string, value: unknown): unknown {
  if (value instanceof Error) return serializeError(value);
  if (typeof value === "bigint") return value.toString();
  return value;
}

function cycleSafeReplacer(): (key: string, value: unknown) => unknown {
  const ancestors: object[] = [];
  return function (this: unknown, key: string, value: unknown): unknown {
    const v = replace(key, value);
    if (v === null || typeof v !== "object") return v;
    // `this` is the object holding `key`; drop ancestors that are no longer on the path.
    while (ancestors.length > 0 && ancestors[ancestors.length - 1] !== this) ancestors.pop();
    if (ancestors.includes(v)) return "[Circular]";
    ancestors.push(v);
    return v;
  };
}
