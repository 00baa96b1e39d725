/**
 * What leaves the process as an inspection message: XState's inspection
 * events (`@xstate.actor`, `@xstate.event`, `@xstate.snapshot`) converted to
 * the Stately inspector's protocol, field for field as @statelyai/inspect
 * 0.7.2 converts them (test/inspector/inspection-events.test.ts compares the
 * two), plus one extension the hosted Stately inspector never sees: an
 * `@xstate.action` message for each event the machine emits (removals,
 * heartbeat results, failures), which XState reports as an inspection event
 * but @statelyai/inspect drops.
 *
 * The conversion happens here, in process, with no dependency: every value
 * that may hold server data goes through toInspectionJson (bounded and
 * redacted) and the result is plain JSON.
 */
import type { AnyActorRef, InspectionEvent } from "xstate";
import { createRedactor, isRecord, toInspectionJson } from "./inspection-json.js";

export { createRedactor, toInspectionJson, inspectionLimits, truncatedItemsKey } from "./inspection-json.js";
export type { InspectionLimits } from "./inspection-json.js";

/** The protocol version written into Stately messages (that of @statelyai/inspect 0.7.2, whose format they follow). */
export const statelyProtocolVersion = "0.7.2";
const extensionVersion = "engram-serverevents/1";

/** An actor was created: its name, machine definition (JSON text) and first snapshot. */
export interface ActorInspectionMessage {
  type: "@xstate.actor";
  name: string;
  sessionId: string;
  parentId: string | undefined;
  rootId: string | undefined;
  /** The machine config as JSON text (functions as `{ type: name }`), for drawing it. */
  definition: string;
  snapshot: unknown;
  createdAt: string;
  id: null;
  _version: string;
}

/** An actor received an event. */
export interface EventInspectionMessage {
  type: "@xstate.event";
  sessionId: string;
  sourceId: string | undefined;
  rootId: string | undefined;
  event: unknown;
  createdAt: string;
  id: null;
  _version: string;
}

/** An actor's snapshot after an event. */
export interface SnapshotInspectionMessage {
  type: "@xstate.snapshot";
  sessionId: string;
  rootId: string | undefined;
  event: unknown;
  snapshot: unknown;
  createdAt: string;
  id: null;
  _version: string;
}

/** The three messages of the Stately inspector's protocol. */
export type StatelyInspectionMessage = ActorInspectionMessage | EventInspectionMessage | SnapshotInspectionMessage;

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

export type InspectorMessage = StatelyInspectionMessage | EmittedInspectionMessage;

/** Depth to which a machine definition is written out, as @statelyai/inspect does. */
const definitionDepth = 10;

/**
 * The message for one XState inspection event, or undefined for events that
 * are not relayed (actions other than emit, microsteps). `redact` runs over
 * every string; server data is bounded by toInspectionJson.
 */
export function toInspectorMessage(
  event: InspectionEvent,
  redact: (text: string) => string = createRedactor([]),
): InspectorMessage | undefined {
  const createdAt = Date.now().toString();
  const safe = (value: unknown): unknown => toInspectionJson(value, redact);
  switch (event.type) {
    case "@xstate.actor": {
      const actorRef = event.actorRef as AnyActorRef & { logic?: { config?: unknown }; _parent?: AnyActorRef };
      const config = actorRef.logic?.config;
      let name = actorRef.id;
      if (name === actorRef.sessionId && isRecord(config) && typeof config.id === "string") name = config.id;
      return {
        type: "@xstate.actor",
        name: redact(name),
        sessionId: actorRef.sessionId,
        parentId: actorRef._parent?.sessionId,
        rootId: event.rootId,
        definition: redact(definitionJson(isRecord(config) ? config : { id: name })),
        snapshot: safe(actorRef.getSnapshot()),
        createdAt,
        id: null,
        _version: statelyProtocolVersion,
      };
    }
    case "@xstate.event":
      return {
        type: "@xstate.event",
        sessionId: event.actorRef.sessionId,
        sourceId: event.sourceRef?.sessionId,
        rootId: event.rootId,
        event: safe(event.event),
        createdAt,
        id: null,
        _version: statelyProtocolVersion,
      };
    case "@xstate.snapshot":
      return {
        type: "@xstate.snapshot",
        sessionId: event.actorRef.sessionId,
        rootId: event.rootId,
        event: safe(event.event),
        snapshot: safe(event.snapshot),
        createdAt,
        id: null,
        _version: statelyProtocolVersion,
      };
    case "@xstate.action":
      return emittedMessage(event, redact);
    default:
      return undefined;
  }
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

/**
 * A machine config as JSON text the way @statelyai/inspect writes it: keys
 * sorted, functions as `{ type: name }`, `toJSON` honoured, cycles as
 * "[Circular]", objects deeper than 10 levels as "[Object]" / "[Array]".
 */
export function definitionJson(config: unknown): string {
  const ancestors = new Set<object>();
  const walk = (v: unknown, depth: number): unknown => {
    if (typeof v === "function") return { type: (v as { name?: string }).name ?? "" };
    if (typeof v === "bigint") return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
    if (v === null || typeof v !== "object") return typeof v === "number" && !Number.isFinite(v) ? null : v;
    const toJSON = (v as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === "function") {
      const replaced: unknown = toJSON.call(v);
      if (replaced !== v) return walk(replaced, depth);
    }
    if (ancestors.has(v)) return "[Circular]";
    if (depth >= definitionDepth) return Array.isArray(v) ? "[Array]" : "[Object]";
    ancestors.add(v);
    try {
      if (Array.isArray(v)) return v.map((item) => walk(item, depth + 1) ?? null);
      const out: Record<string, unknown> = {};
      for (const key of Object.keys(v).sort()) {
        const item = walk((v as Record<string, unknown>)[key], depth + 1);
        if (item !== undefined) out[key] = item;
      }
      return out;
    } finally {
      ancestors.delete(v);
    }
  };
  return JSON.stringify(walk(config, 0)) ?? "null";
}
