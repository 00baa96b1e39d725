/**
 * Turns a machine definition into a plain graph for drawing: one node per
 * state (with its invokes, entry/exit actions and the transitions that stay
 * inside it) and one edge per source/target pair (with the events, delays,
 * guards and actions of every transition between them). Pure and JSON; the
 * layout (statechart-layout.ts) and the SVG (statechart-svg.ts) work from it.
 */
import type { AnyStateMachine, AnyStateNode } from "xstate";

export type StateNodeType = "atomic" | "compound" | "parallel" | "final" | "history";

/** One transition, described for a label. */
export interface TransitionLabel {
  /** The event type the machine matches, e.g. "START" or "xstate.after.openConfirm.bridge.connection.open.connecting". */
  eventType: string;
  /** What a reader sees: "START", "after: openConfirm", "done: projectEvents", "error: projectEvents". */
  event: string;
  /** The guard, e.g. "isDeadlineExceeded && in(open.streaming)"; absent when unguarded. */
  guard?: string;
  /** Named actions (XState's own built-ins left out). */
  actions: string[];
  /** True for a targeted self-transition that re-enters its state. */
  reenter: boolean;
}

export interface StateGraphNode {
  /** Dot-joined path from the root: "" for the root, "connection.open.streaming" for a leaf. */
  path: string;
  /** The XState id, e.g. "bridge.connection.open.streaming". */
  id: string;
  key: string;
  type: StateNodeType;
  /** Path of the parent, null for the root. */
  parent: string | null;
  /** Child paths in document order. */
  children: string[];
  /** Path of the initial child of a compound state. */
  initial?: string;
  /** True for a direct child of a parallel state (a region). */
  region: boolean;
  /** Sources of the actors the state invokes. */
  invokes: string[];
  entry: string[];
  exit: string[];
  /** Transitions without a target, or back to this very state: drawn inside the state. */
  internal: TransitionLabel[];
}

export interface StateGraphEdge {
  /** "source->target" with paths. */
  id: string;
  source: string;
  target: string;
  /** Every transition from source to target, in document order. */
  transitions: TransitionLabel[];
}

export interface StateGraph {
  /** The machine id (the root state's key). */
  machineId: string;
  /** Nodes in document order, parents before children. */
  nodes: StateGraphNode[];
  edges: StateGraphEdge[];
}

/** The graph of `machine`'s states and transitions. */
export function createStateGraph(machine: AnyStateMachine): StateGraph {
  const nodes: StateGraphNode[] = [];
  const edges = new Map<string, StateGraphEdge>();

  const visit = (node: AnyStateNode, parent: AnyStateNode | null): void => {
    const path = pathOf(node);
    const children = Object.values(node.states) as AnyStateNode[];
    const graphNode: StateGraphNode = {
      path,
      id: node.id,
      key: node.key,
      type: node.type,
      parent: parent === null ? null : pathOf(parent),
      children: children.map(pathOf),
      region: parent?.type === "parallel",
      invokes: node.invoke.map((inv) => (typeof inv.src === "string" ? inv.src : inv.id)),
      entry: actionNames(node.entry),
      exit: actionNames(node.exit),
      internal: [],
    };
    if (node.type === "compound") {
      const first = node.initial.target[0];
      if (first) graphNode.initial = pathOf(first);
    }
    nodes.push(graphNode);
    for (const list of node.transitions.values()) {
      for (const t of list) {
        const label = describeTransition(t.eventType, t.guard, t.actions, t.reenter, node);
        const targets = (t.target ?? []) as readonly AnyStateNode[];
        if (targets.length === 0) {
          graphNode.internal.push(label);
          continue;
        }
        for (const target of targets) {
          const to = pathOf(target);
          if (to === path) {
            graphNode.internal.push(label);
            continue;
          }
          const id = `${path}->${to}`;
          let edge = edges.get(id);
          if (!edge) {
            edge = { id, source: path, target: to, transitions: [] };
            edges.set(id, edge);
          }
          edge.transitions.push(label);
        }
      }
    }
    for (const child of children) visit(child, node);
  };
  visit(machine.root, null);
  return { machineId: machine.root.key, nodes, edges: [...edges.values()] };
}

/** Active state paths (every ancestor included, root as "") for a snapshot value. */
export function activePaths(value: unknown, prefix = ""): string[] {
  const out = prefix === "" ? [""] : [];
  const join = (key: string) => (prefix === "" ? key : `${prefix}.${key}`);
  if (typeof value === "string") {
    out.push(join(value));
  } else if (value !== null && typeof value === "object") {
    for (const [key, sub] of Object.entries(value as Record<string, unknown>)) {
      out.push(join(key), ...activePaths(sub, join(key)).filter((p) => p !== ""));
    }
  }
  return out;
}

function pathOf(node: AnyStateNode): string {
  return node.path.join(".");
}

function describeTransition(
  eventType: string,
  guard: unknown,
  actions: readonly unknown[],
  reenter: boolean,
  source: AnyStateNode,
): TransitionLabel {
  const label: TransitionLabel = { eventType, event: describeEvent(eventType, source), actions: actionNames(actions), reenter };
  const g = guard === undefined ? undefined : describeGuard(guard);
  if (g !== undefined) label.guard = g;
  return label;
}

/** "after: openConfirm" for a delayed event, "done: x" / "error: x" for an invoked actor's result, else the type. */
export function describeEvent(eventType: string, source?: AnyStateNode): string {
  const after = /^xstate\.after\.(.+)$/.exec(eventType);
  if (after?.[1] !== undefined) {
    const rest = after[1];
    const suffix = source ? `.${source.id}` : "";
    const delay = suffix !== "" && rest.endsWith(suffix) ? rest.slice(0, -suffix.length) : rest.split(".")[0]!;
    return `after: ${delay}`;
  }
  const done = /^xstate\.(done|error)\.actor\.(.+)$/.exec(eventType);
  if (done?.[1] !== undefined && done[2] !== undefined) return `${done[1]}: ${done[2]}`;
  if (eventType === "*") return "any event";
  return eventType;
}

/** A guard as text: named guards by name, and/or/not spelled out, stateIn as in(…). */
export function describeGuard(guard: unknown): string | undefined {
  if (typeof guard === "string") return guard;
  if (typeof guard === "function") {
    const fn = guard as { name?: string; guards?: unknown[]; stateValue?: unknown; type?: unknown };
    if (Array.isArray(fn.guards)) {
      const parts = fn.guards.map((g) => describeGuard(g) ?? "?");
      if (fn.name === "not") return `!${parts.length === 1 ? parts[0] : `(${parts.join(" && ")})`}`;
      return parts.join(fn.name === "or" ? " || " : " && ");
    }
    if (fn.stateValue !== undefined) return `in(${shortStateRef(fn.stateValue)})`;
    if (typeof fn.type === "string") return fn.type;
    return fn.name && fn.name !== "" ? fn.name : "inline guard";
  }
  if (guard !== null && typeof guard === "object" && typeof (guard as { type?: unknown }).type === "string") {
    return (guard as { type: string }).type;
  }
  return undefined;
}

function shortStateRef(value: unknown): string {
  if (typeof value !== "string") return JSON.stringify(value);
  // "#bridge.connection.open.streaming" reads as "open.streaming".
  const parts = value.replace(/^#/, "").split(".");
  return parts.length > 2 ? parts.slice(-2).join(".") : parts.join(".");
}

/** Names of actions; XState's own built-ins (raise for `after`, cancel, …) are left out. */
function actionNames(actions: readonly unknown[]): string[] {
  const out: string[] = [];
  for (const a of actions) {
    const name =
      typeof a === "string"
        ? a
        : a !== null && (typeof a === "object" || typeof a === "function") && typeof (a as { type?: unknown }).type === "string"
          ? (a as { type: string }).type
          : typeof a === "function" && a.name !== ""
            ? a.name
            : "inline action";
    if (!name.startsWith("xstate.")) out.push(name);
  }
  return out;
}
