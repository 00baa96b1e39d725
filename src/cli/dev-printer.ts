/**
 * `dev`'s readable output: one line per thing that happens in the bridge
 * (state changes, heartbeats, duplicates, ignored events, removals with
 * their source and delivery latency) and a logger that shows the bridge's
 * warnings and errors (failed streams and heartbeats) the same way.
 */
import type { Bridge } from "../bridge.js";
import { flattenConnection } from "../bridge-status.js";
import type { Logger } from "../types.js";

export type DevWrite = (line: string) => void;

/** Prints `tag  message` lines prefixed by the seconds since `startedAt`. */
export function createDevLinePrinter(write: (text: string) => void, startedAt = performance.now()): (tag: string, message: string) => void {
  return (tag, message) => {
    const secs = ((performance.now() - startedAt) / 1000).toFixed(3).padStart(8);
    write(`[${secs}s] ${tag.padEnd(9)} ${message}\n`);
  };
}

type Print = (tag: string, message: string) => void;

/** A logger printing warn and error (and debug/info when verbose) as readable lines. */
export function createDevLogger(print: Print, verbose: boolean): Logger {
  const line = (tag: string) => (obj: object, msg?: string) => print(tag, `${msg ?? ""}${describeFields(obj)}`);
  const quiet = () => {};
  return {
    debug: verbose ? line("debug") : quiet,
    info: verbose ? line("info") : quiet,
    warn: line("WARN"),
    error: line("ERROR"),
  };
}

function describeFields(obj: object): string {
  const parts: string[] = [];
  for (const [key, value] of Object.entries(obj)) {
    if (value === undefined) continue;
    if (key === "err" && value !== null && typeof value === "object") {
      const e = value as { code?: unknown; message?: unknown };
      parts.push(`${String(e.code ?? "error")}: ${String(e.message ?? "")}`);
    } else {
      parts.push(`${key}=${typeof value === "string" ? value : JSON.stringify(value)}`);
    }
  }
  return parts.length === 0 ? "" : ` (${parts.join(", ")})`;
}

/** Subscribes the printer to the bridge; returns the function that stops it. */
export function printBridgeActivity(bridge: Bridge, print: Print): () => void {
  const actor = bridge.actor;
  let last = flattenConnection(actor.getSnapshot().value);
  const states = actor.subscribe({
    next: (snapshot) => {
      const state = flattenConnection(snapshot.value);
      if (state === last) return;
      last = state;
      const { attempt, lastError } = snapshot.context;
      switch (state) {
        case "connecting":
          print(
            "bridge",
            attempt === 0 ? "connecting (ProjectEvents call open, waiting for headers)" : `reconnecting (attempt ${attempt})`,
          );
          break;
        case "streaming":
          print("bridge", "streaming: connected, removals now arrive as they happen");
          break;
        case "backoff": {
          const retryAt = bridge.status().timestamps.nextRetryAtMs;
          const wait = retryAt === undefined ? "" : ` in ${Math.max(0, Math.round(retryAt - Date.now()))} ms`;
          print("bridge", `backoff: reconnecting${wait} (attempt ${attempt}${lastError ? `, after ${lastError.code}` : ""})`);
          break;
        }
        default:
          print("bridge", state);
      }
    },
    error: () => {},
  });
  const subs = [
    actor.on("syncCompleted", ({ result }) => {
      const removed = result.removed.length === 0 ? "none removed" : `removed: ${result.removed.join(", ")}`;
      print("heartbeat", `ok: reported ${result.reported} id(s), ${removed}, ${result.unknown.length} unknown`);
    }),
    actor.on("duplicateSuppressed", (e) => print("dedup", `${e.projectId} via ${e.source} already delivered: suppressed`)),
    actor.on("eventIgnored", (e) => print("bridge", `event ${e.eventId} ignored (${e.why})`)),
  ];
  return () => {
    states.unsubscribe();
    for (const s of subs) s.unsubscribe();
  };
}
