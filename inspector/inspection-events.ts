/**
 * What leaves the process as an inspection message, and how it is made
 * safe. The messages are @statelyai/inspect's serialisation of XState's
 * inspection events (`@xstate.actor`, `@xstate.event`, `@xstate.snapshot`),
 * plus one extension the hosted Stately inspector never sees: an
 * `@xstate.action` message for each event the machine emits (removals,
 * heartbeat results, failures), which XState reports as an inspection event
 * but @statelyai/inspect drops.
 */
import type { StatelyInspectionEvent } from "@statelyai/inspect";
import type { InspectionEvent } from "xstate";
import { summarizeError } from "../src/errors.js";

/** An event the machine emitted, in the envelope of the Stately messages. */
export interface EmittedInspectionMessage {
  type: "@xstate.action";
  action: { type: "xstate.emit"; params: { event: unknown } };
  /** The emitting actor. */
  sessionId: string;
  rootId: string | undefined;
  /** Unix ms as a decimal string, as in Stately's messages. */
  createdAt: string;
  id: null;
  _version: string;
}

export type InspectorMessage = StatelyInspectionEvent | EmittedInspectionMessage;

/** Message types the hosted Stately inspector understands. */
export const statelyMessageTypes: readonly string[] = ["@xstate.actor", "@xstate.event", "@xstate.snapshot"];
/** Message types the inspector server relays. */
export const inspectorMessageTypes: readonly string[] = [...statelyMessageTypes, "@xstate.action"];

const extensionVersion = "engram-serverevents/1";
const redactedText = "[redacted]";

/** Replaces every occurrence of each secret in a string. */
export function createRedactor(secrets: readonly string[]): (text: string) => string {
  const list = [...new Set(secrets.filter((s) => s !== ""))].sort((a, b) => b.length - a.length);
  if (list.length === 0) return (text) => text;
  return (text) => {
    let out = text;
    for (const s of list) if (out.includes(s)) out = out.split(s).join(redactedText);
    return out;
  };
}

/**
 * A plain-JSON copy of `value` that is safe to send: errors become
 * `{ name, code, message }` (never their cause, metadata or stack),
 * functions are left out, `toJSON` is honoured (actor refs become
 * `{ id }` stubs), cycles and depth are cut, and every string and key goes
 * through `redact`.
 */
export function toInspectionJson(value: unknown, redact: (text: string) => string, maxDepth = 12): unknown {
  const ancestors = new Set<object>();
  const walk = (v: unknown, depth: number): unknown => {
    switch (typeof v) {
      case "string":
        return redact(v);
      case "number":
        return Number.isFinite(v) ? v : null;
      case "boolean":
        return v;
      case "bigint":
        return v.toString();
      case "undefined":
      case "function":
      case "symbol":
        return undefined;
    }
    if (v === null) return null;
    const obj = v as object;
    if (depth > maxDepth) return "[depth limit]";
    if (ancestors.has(obj)) return "[circular]";
    if (obj instanceof Error) {
      const summary = summarizeError(obj);
      return { name: redact(obj.name), code: summary.code, message: redact(summary.message) };
    }
    ancestors.add(obj);
    try {
      const toJSON = (obj as { toJSON?: unknown }).toJSON;
      if (typeof toJSON === "function") {
        const replaced: unknown = toJSON.call(obj);
        if (replaced !== obj) return walk(replaced, depth);
      }
      if (Array.isArray(obj)) return obj.map((item) => walk(item, depth + 1) ?? null);
      if (obj instanceof Map) return walk(Object.fromEntries(obj), depth);
      if (obj instanceof Set) return walk([...obj], depth);
      const out: Record<string, unknown> = {};
      for (const [key, item] of Object.entries(obj)) {
        const safe = walk(item, depth + 1);
        if (safe !== undefined) out[redact(key)] = safe;
      }
      return out;
    } finally {
      ancestors.delete(obj);
    }
  };
  return walk(value, 0);
}

/** The emitted-event message for an XState `@xstate.action` inspection event of an `emit`, else undefined. */
export function emittedMessage(event: InspectionEvent, redact: (text: string) => string): EmittedInspectionMessage | undefined {
  if (event.type !== "@xstate.action") return undefined;
  const action = event.action as { type?: unknown; params?: { event?: unknown } };
  if (action.type !== "xstate.emit" || action.params?.event === undefined) return undefined;
  return {
    type: "@xstate.action",
    action: { type: "xstate.emit", params: { event: toInspectionJson(action.params.event, redact) } },
    sessionId: event.actorRef.sessionId,
    rootId: event.rootId,
    createdAt: Date.now().toString(),
    id: null,
    _version: extensionVersion,
  };
}

/** Parses one relayed message; undefined unless it is an object of a relayed type with a session id. */
export function parseInspectorMessage(text: string): InspectorMessage | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) return undefined;
  const { type, sessionId } = value as { type?: unknown; sessionId?: unknown };
  if (typeof type !== "string" || !inspectorMessageTypes.includes(type) || typeof sessionId !== "string") return undefined;
  return value as InspectorMessage;
}
