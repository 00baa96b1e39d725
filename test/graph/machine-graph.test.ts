/**
 * The statechart's graph as a checked artefact: from every reachable state
 * the final state can be reached (no dead ends), every state node is
 * reachable, and every delay, actor, guard and action is named in setup()
 * (none inline), so machine.provide() can swap each one and the runtime and
 * tests provide them by name.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createMachine, type AnyStateMachine, type AnyStateNode } from "xstate";
import { getStateNodes } from "@xstate/graph";
import { bridgeMachine } from "../../machines/bridge.machine.js";
import {
  adjacencyOf,
  allEvents,
  graphInput,
  graphMachine,
  machineStates,
  serializeState,
  type GraphVertex,
} from "../helpers/graph-model.js";

const graph = suite("the bridge statechart as a graph");

/** States (graph vertices) from which no path leads to a final state. */
function deadEnds(adjacency: Map<string, GraphVertex>): string[] {
  const vertices = [...adjacency.keys()];
  const next = new Map([...adjacency].map(([v, { transitions }]) => [v, transitions.map((t) => serializeState(t.state))]));
  // Walk the edges backwards from the final states.
  const reaches = new Set(vertices.filter((v) => adjacency.get(v)!.state.status === "done"));
  for (let grew = true; grew; ) {
    grew = false;
    for (const v of vertices) {
      if (!reaches.has(v) && next.get(v)!.some((w) => reaches.has(w))) {
        reaches.add(v);
        grew = true;
      }
    }
  }
  return vertices.filter((v) => !reaches.has(v));
}

// The machine's own graph: every event it handles, raised and runtime-only ones included.
const adjacency = adjacencyOf(graphMachine, { input: graphInput, events: allEvents });

graph("every reachable state can reach the final state", () => {
  const vertices = [...adjacency.values()];
  assert.ok(vertices.length >= 9, `the graph has ${vertices.length} states`);
  assert.is(vertices.filter((v) => v.state.status === "done").length, 1, "one final state");
  const stuck = deadEnds(adjacency);
  assert.equal(stuck, [], `states that cannot reach the final state: ${stuck.join(", ")}`);
});

graph("every state node is reachable", () => {
  const seen = new Set<string>();
  for (const { state } of adjacency.values()) for (const node of state._nodes) seen.add(node.id);
  const unreachable = machineStates(bridgeMachine).filter((id) => !seen.has(id));
  assert.equal(unreachable, [], `state nodes no event reaches: ${unreachable.join(", ")}`);
});

graph("every non-final state has a way out, STOP included", () => {
  for (const node of getStateNodes(bridgeMachine.root)) {
    if (node.type !== "atomic") continue;
    const handled = new Set<string>();
    for (let n: AnyStateNode | undefined = node; n; n = n.parent) for (const type of n.transitions.keys()) handled.add(type);
    assert.ok(handled.size > 0, `${node.id} has no transition`);
    const inStopping = node.id.startsWith("bridge.connection.stop");
    if (!inStopping) assert.ok(handled.has("STOP"), `${node.id} does not accept STOP`);
  }
});

/** A reference to an implementation in a machine config: a name, `{ type, params }`, or inline code. */
type Ref = unknown;
interface Named {
  actions: Set<string>;
  guards: Set<string>;
  delays: Set<string>;
  actors: Set<string>;
  inline: string[];
}

function collectNamedReferences(machine: AnyStateMachine): Named {
  const named: Named = { actions: new Set(), guards: new Set(), delays: new Set(), actors: new Set(), inline: [] };
  const asList = (x: unknown): unknown[] => (x === undefined ? [] : Array.isArray(x) ? x : [x]);
  const action = (ref: Ref, where: string) => {
    for (const a of asList(ref)) {
      if (typeof a === "string") named.actions.add(a);
      else if (a && typeof a === "object" && typeof (a as { type?: unknown }).type === "string")
        named.actions.add((a as { type: string }).type);
      else named.inline.push(`inline action at ${where}`);
    }
  };
  const guard = (g: Ref, where: string): void => {
    if (g === undefined) return;
    if (typeof g === "string") named.guards.add(g);
    else if (g && typeof g === "object" && typeof (g as { type?: unknown }).type === "string")
      named.guards.add((g as { type: string }).type);
    else if (typeof g === "function" && "stateValue" in g)
      return; // stateIn(): a state reference, not code
    else if (typeof g === "function" && Array.isArray((g as unknown as { guards?: unknown }).guards)) {
      for (const sub of (g as unknown as { guards: unknown[] }).guards) guard(sub, where); // and()/or()/not() of named guards
    } else named.inline.push(`inline guard at ${where}`);
  };
  const transition = (t: Ref, where: string) => {
    for (const one of asList(t)) {
      if (typeof one === "string" || one === undefined) continue;
      if (typeof one !== "object" || one === null) {
        named.inline.push(`odd transition at ${where}`);
        continue;
      }
      const cfg = one as { actions?: unknown; guard?: unknown };
      action(cfg.actions, where);
      guard(cfg.guard, where);
    }
  };
  for (const node of [machine.root, ...getStateNodes(machine.root)]) {
    const cfg = node.config as {
      entry?: unknown;
      exit?: unknown;
      on?: Record<string, unknown>;
      after?: Record<string, unknown>;
      always?: unknown;
      onDone?: unknown;
      invoke?: unknown;
    };
    action(cfg.entry, `${node.id} entry`);
    action(cfg.exit, `${node.id} exit`);
    for (const [event, t] of Object.entries(cfg.on ?? {})) transition(t, `${node.id} on ${event}`);
    for (const [delay, t] of Object.entries(cfg.after ?? {})) {
      if (/^\d+$/.test(delay)) named.inline.push(`literal delay ${delay} ms at ${node.id}`);
      else named.delays.add(delay);
      transition(t, `${node.id} after ${delay}`);
    }
    transition(cfg.always, `${node.id} always`);
    transition(cfg.onDone, `${node.id} onDone`);
    for (const inv of asList(cfg.invoke) as Array<{ id?: unknown; src?: unknown; onDone?: unknown; onError?: unknown }>) {
      if (typeof inv.src === "string") named.actors.add(inv.src);
      else named.inline.push(`inline actor at ${node.id}`);
      if (typeof inv.id !== "string") named.inline.push(`invoke without an explicit id at ${node.id}`);
      transition(inv.onDone, `${node.id} invoke onDone`);
      transition(inv.onError, `${node.id} invoke onError`);
    }
  }
  return named;
}

graph("every delay, actor, guard and action is named in setup(), none inline", () => {
  const named = collectNamedReferences(bridgeMachine);
  assert.equal(named.inline, [], named.inline.join("\n"));
  const impl = bridgeMachine.implementations;
  const check = (kind: string, used: Set<string>, provided: Record<string, unknown>) => {
    const missing = [...used].filter((n) => !(n in provided));
    assert.equal(missing, [], `${kind} used by the machine but not in setup(): ${missing.join(", ")}`);
    const unused = Object.keys(provided).filter((n) => !used.has(n));
    assert.equal(unused, [], `${kind} in setup() that no state uses: ${unused.join(", ")}`);
  };
  check("delays", named.delays, impl.delays);
  check("actors", named.actors, impl.actors);
  check("guards", named.guards, impl.guards);
  check("actions", named.actions, impl.actions);
  assert.equal([...named.delays].sort(), ["backoffDelay", "heartbeatDelay", "openConfirm", "reopenDelay", "stableAfter", "stopBudget"]);
  assert.equal([...named.actors].sort(), ["drainDispatch", "probeLink", "projectEvents", "syncProjectState"]);
  assert.equal([...named.guards].sort(), [
    "followUpAsked",
    "isOwnSyncDeadline",
    "isServerGoaway",
    "linkAnswered",
    "openStable",
    "reconnecting",
    "reopenedAfterGoaway",
    "requestSent",
    "roundLate",
  ]);
});

graph("the checks above catch a dead end, literal delays and inline code", () => {
  const stuck = createMachine({
    initial: "a",
    states: { a: { on: { GO: "b", END: "done" } }, b: { on: { AGAIN: "b" } }, done: { type: "final" } },
  });
  assert.equal(deadEnds(adjacencyOf(stuck, { events: allEvents })), ['"b"']);
  const inline = createMachine({
    id: "m",
    initial: "a",
    states: {
      a: {
        after: { 100: "b" },
        invoke: { src: () => Promise.resolve() } as never,
        on: { X: { target: "b", guard: () => true, actions: () => undefined } },
      },
      b: {},
    },
  });
  assert.equal(collectNamedReferences(inline).inline.sort(), [
    "inline action at m.a on X",
    "inline actor at m.a",
    "inline guard at m.a on X",
    "invoke without an explicit id at m.a",
    "literal delay 100 ms at m.a",
  ]);
});

graph.run();
