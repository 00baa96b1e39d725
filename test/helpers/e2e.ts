/**
 * Shared fixtures for end-to-end suites: a recording handler, a capturing
 * logger, and `eventually()` that waits for a condition on real sockets.
 */
import type { Logger, ProjectRemovalAware, RemovalInfo } from "../../src/types.js";
import type { BridgeTiming } from "../../src/timing.js";

/** Short real-time timings for loopback tests. */
export const fastTiming: Partial<BridgeTiming> = {
  backoffMinMs: 20,
  backoffMaxMs: 200,
  openConfirmMs: 300,
  stableAfterMs: 2000,
  heartbeatMs: 60_000,
  heartbeatJitterMs: 0,
  syncTimeoutMs: 2000,
  handlerTimeoutMs: 500,
  stopTimeoutMs: 2000,
};

export interface Call {
  projectId: string;
  info: RemovalInfo;
  atMs: number;
}

export function recordingHandler(name = "recorder"): ProjectRemovalAware & { calls: Call[]; ids(): string[] } {
  const calls: Call[] = [];
  return {
    name,
    calls,
    ids: () => calls.map((c) => c.projectId),
    onProjectRemoved(projectId, info) {
      calls.push({ projectId, info, atMs: performance.now() });
    },
  };
}

export interface CapturedLine {
  level: "debug" | "info" | "warn" | "error";
  obj: object;
  msg: string | undefined;
  text: string;
}

export function capturingLogger(): Logger & { lines: CapturedLine[]; at(level: CapturedLine["level"]): CapturedLine[] } {
  const lines: CapturedLine[] = [];
  const push = (level: CapturedLine["level"]) => (obj: object, msg?: string) => {
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

/** Waits until `check` returns truthy, checking every few ms; fails with `what` after timeoutMs. */
export async function eventually<T>(what: string, check: () => T | undefined | false, timeoutMs = 5000): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const v = check();
    if (v) return v;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
