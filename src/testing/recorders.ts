/** A handler that records what it hears, and a logger that keeps its lines: for assertions. */
import type { Logger, ProjectRemovalAware, RemovalInfo } from "../types.js";

/** One handler call. */
export interface RecordedCall {
  projectId: string;
  info: RemovalInfo;
  /** When it was called, from the `now` given to recordingHandler(). */
  atMs: number;
}

export interface RecordingHandler extends ProjectRemovalAware {
  readonly name: string;
  readonly calls: RecordedCall[];
  /** The project ids heard, in call order. */
  ids(): string[];
}

/**
 * A handler that records every call. `now` stamps the calls: pass the
 * SimulatedClock's `() => clock.now()`. Defaults to performance.now.
 */
export function recordingHandler(name = "recorder", now: () => number = () => performance.now()): RecordingHandler {
  const calls: RecordedCall[] = [];
  return {
    name,
    calls,
    ids: () => calls.map((c) => c.projectId),
    onProjectRemoved(projectId, info) {
      calls.push({ projectId, info, atMs: now() });
    },
  };
}

export type LogLevel = "debug" | "info" | "warn" | "error";

/** One logged line. */
export interface CapturedLine {
  level: LogLevel;
  obj: object;
  msg: string | undefined;
  /** The line as JSON, for `includes()` checks. */
  text: string;
}

export interface CapturingLogger extends Logger {
  readonly lines: CapturedLine[];
  /** The lines at one level. */
  at(level: LogLevel): CapturedLine[];
}

/** A pino-compatible logger that keeps every line in memory. */
export function capturingLogger(): CapturingLogger {
  const lines: CapturedLine[] = [];
  const push = (level: LogLevel) => (obj: object, msg?: string) => {
    lines.push({ level, obj, msg, text: JSON.stringify({ level, ...obj, msg }) });
  };
  return {
    lines,
    at: (level) => lines.filter((l) => l.level === level),
    debug: push("debug"),
    info: push("info"),
    warn: push("warn"),
    error: push("error"),
  };
}
