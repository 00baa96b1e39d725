/**
 * Looks for a secret in every channel a bridge talks through: its log lines,
 * status(), the actor's snapshot (context and error, as JSON), every
 * inspection event, and any error that was thrown or stored. Errors are read
 * in full (message, stack, every own property, the whole cause chain), not
 * just what JSON.stringify shows, since an inspector may print them so.
 */
import type { InspectionEvent } from "xstate";
import { createBridge, type Bridge } from "../../src/bridge.js";
import type { BridgeOptions } from "../../src/bridge-options.js";
import { HandlerRegistry } from "../../src/handler-registry.js";
import { capturingLogger, type CapturingLogger } from "../helpers/e2e.js";

/** A bridge with every output channel recorded. */
export interface WatchedBridge {
  bridge: Bridge;
  logger: CapturingLogger;
  inspection: InspectionEvent[];
  /** Errors the test caught from start/stop/syncNow: push them here to have them scanned. */
  thrown: unknown[];
  /** Every channel as text, with its name; read after the bridge did its work. */
  channels(): Array<{ channel: string; text: string }>;
}

/** A bridge built with `options` (env {} unless given), its logger and inspection recorded. */
export function watchedBridge(options: Partial<BridgeOptions>): WatchedBridge {
  const logger = capturingLogger();
  const inspection: InspectionEvent[] = [];
  const thrown: unknown[] = [];
  const bridge = createBridge({
    registry: new HandlerRegistry(),
    env: {},
    logger,
    ...options,
    inspect: (event: InspectionEvent) => inspection.push(event),
  });
  return {
    bridge,
    logger,
    inspection,
    thrown,
    channels() {
      const out: Array<{ channel: string; text: string }> = [];
      for (const line of logger.lines) out.push({ channel: "log line", text: `${line.text}\n${deepText(line.obj)}` });
      out.push({ channel: "status()", text: JSON.stringify(bridge.status()) });
      const snapshot = bridge.actor.getSnapshot();
      out.push({
        channel: "actor snapshot",
        text: `${JSON.stringify(snapshot)}\n${deepText(snapshot.context)}\n${deepText(snapshot.error)}`,
      });
      for (const [i, event] of inspection.entries()) out.push({ channel: `inspection event #${i} (${event.type})`, text: deepText(event) });
      for (const [i, err] of thrown.entries()) out.push({ channel: `thrown #${i}`, text: deepText(err) });
      return out;
    },
  };
}

/** The channels that contain any of `secrets`, as "channel: excerpt" lines (empty: no leak). */
export function findLeaks(watched: WatchedBridge, secrets: readonly string[]): string[] {
  const found: string[] = [];
  for (const { channel, text } of watched.channels()) {
    for (const secret of secrets) {
      const at = text.indexOf(secret);
      if (at >= 0) found.push(`${channel}: …${JSON.stringify(text.slice(Math.max(0, at - 80), at + secret.length + 40))}…`);
    }
  }
  return found;
}

/** Keys that lead into the machine definition or other actors, not into data. */
const skipKeys = new Set([
  "machine",
  "logic",
  "system",
  "_parent",
  "_actorScope",
  "_transitions",
  "_snapshot",
  "_processingStatus",
  "root",
]);

/**
 * Every string reachable from `value`: object and array entries, an Error's
 * message, stack, cause and own properties, Map/Set entries. Skips actor refs
 * and the machine (definitions, not data); bounded in depth and size.
 */
export function deepText(value: unknown): string {
  const parts: string[] = [];
  const seen = new Set<unknown>();
  let budget = 20_000;
  const walk = (v: unknown, depth: number): void => {
    if (budget-- <= 0 || depth > 12) return;
    if (typeof v === "string") {
      parts.push(v);
      return;
    }
    if (typeof v === "number" || typeof v === "bigint" || typeof v === "boolean" || typeof v === "symbol") {
      parts.push(String(v));
      return;
    }
    if (v === null || typeof v !== "object" || seen.has(v)) return;
    seen.add(v);
    if (v instanceof Uint8Array) {
      parts.push(Buffer.from(v).toString("latin1"));
      return;
    }
    if (typeof (v as { send?: unknown }).send === "function" && typeof (v as { getSnapshot?: unknown }).getSnapshot === "function") {
      return; // an actor ref: its data is reached through its own events
    }
    if (v instanceof Map) {
      for (const [k, x] of v) {
        walk(k, depth + 1);
        walk(x, depth + 1);
      }
      return;
    }
    if (v instanceof Set) {
      for (const x of v) walk(x, depth + 1);
      return;
    }
    if (typeof Headers !== "undefined" && v instanceof Headers) {
      for (const [k, x] of v) parts.push(`${k}: ${x}`);
      return;
    }
    if (v instanceof Error) {
      parts.push(v.message, String(v.stack ?? ""));
      walk((v as { cause?: unknown }).cause, depth + 1);
    }
    for (const key of Object.getOwnPropertyNames(v)) {
      if (skipKeys.has(key)) continue;
      let x: unknown;
      try {
        x = (v as Record<string, unknown>)[key];
      } catch {
        continue;
      }
      if (typeof x === "function") continue;
      parts.push(key);
      walk(x, depth + 1);
    }
  };
  walk(value, 0);
  return parts.join("\n");
}
