/**
 * Generates the replay paths from the machine graph with @xstate/graph:
 *
 * - one path per edge of the graph (every transition from every reachable
 *   state, STOP from every state included): the shortest path to the edge's
 *   source (getShortestPaths), the edge, then stop() to the final state. When
 *   the world cannot order the timers of that prefix (see graph-planner),
 *   other prefixes are tried: the shortest path to a predecessor plus its
 *   edge in, then the simple paths to the source (getSimplePaths), shortest
 *   first;
 * - one path per pair of consecutive edges (each way into a state followed
 *   by each way out of it), the same way; a pair whose order the timing
 *   forbids (e.g. stableAfter firing while the sync that the stream opening
 *   started is still in flight: its deadline always comes first) is
 *   reported, not played;
 * - a few long simple paths to the final state (getSimplePaths) that add
 *   runs of three consecutive steps no other path has.
 */
import type { AnyEventObject, AnyMachineSnapshot } from "xstate";
import { bridgeMachine } from "../../machines/bridge.machine.js";
import {
  adjacencyOf,
  graphEvents,
  graphInput,
  graphMachine,
  serializeState,
  shortestPaths,
  worldEvents,
  type Traversal,
} from "./graph-model.js";
import { planPath, type Plan } from "./graph-planner.js";
import { ServerGoawayError, SyncDeadlineError } from "../../src/call-errors.js";

export interface GraphPath {
  name: string;
  origin: "edge" | "pair" | "simple";
  events: AnyEventObject[];
  plan: Plan;
}

export interface GeneratedPaths {
  paths: GraphPath[];
  /** Graph edges the world could not cause with any prefix (with the planner's reason). */
  infeasible: string[];
  /** Pairs of consecutive edges the world could not play (timing makes some orders impossible). */
  pairsInfeasible: string[];
  vertices: number;
  edges: number;
}

/** How many simple paths a search for a prefix or a long path looks at. */
const SIMPLE_PATHS_CAP = 4000;
/** How many edges one such search may walk: the number of simple paths grows exponentially with the graph. */
const SIMPLE_PATHS_WALK_CAP = 20_000;

const traversal = (extra: Partial<Traversal> = {}): Traversal => ({ input: graphInput, events: worldEvents, ...extra });

const isFinal = (s: AnyMachineSnapshot) => s.status === "done";

function stopSuffix(snapshot: AnyMachineSnapshot): AnyEventObject[] {
  if (isFinal(snapshot)) return [];
  if ((snapshot.value as { connection: unknown }).connection === "stopping") return [graphEvents.drained];
  return [graphEvents.stop, graphEvents.drained];
}

export function generatePaths(options: { longPaths?: number; pairs?: boolean } = {}): GeneratedPaths {
  const adjacency = adjacencyOf(graphMachine, traversal());
  const shortest = new Map<string, AnyEventObject[]>();
  for (const p of shortestPaths(graphMachine, traversal())) shortest.set(serializeState(p.state), p.events);

  const simpleTo = new Map<string, AnyEventObject[][]>();
  const simplePathsTo = (vertex: string): AnyEventObject[][] => {
    let found = simpleTo.get(vertex);
    // The only simple path to the initial state is the empty one (the
    // shortest): no need to walk every simple path of the graph for it.
    if (!found && shortest.get(vertex)?.length === 0) found = [];
    if (!found) {
      found = boundedSimplePaths((v) => v === vertex).sort(
        (a, b) => a.length - b.length || JSON.stringify(a).localeCompare(JSON.stringify(b)),
      );
      simpleTo.set(vertex, found);
    }
    return found;
  };

  /**
   * Simple paths (no vertex twice) from the initial state to a vertex
   * `isTarget` accepts, depth first over the adjacency map, at most
   * SIMPLE_PATHS_CAP of them. getSimplePaths enumerates every one (about
   * 200,000 to the final state since the machine has a GOAWAY state and a
   * follow-up round), which took ten seconds to pick the dozen the suite uses.
   */
  const initialVertex = [...shortest].find(([, events]) => events.length === 0)![0];
  const boundedSimplePaths = (isTarget: (vertex: string) => boolean): AnyEventObject[][] => {
    const out: AnyEventObject[][] = [];
    const onPath = new Set<string>([initialVertex]);
    const events: AnyEventObject[] = [];
    let walked = 0;
    const walk = (vertex: string): void => {
      for (const { event, state } of adjacency.get(vertex)?.transitions ?? []) {
        if (out.length >= SIMPLE_PATHS_CAP || ++walked > SIMPLE_PATHS_WALK_CAP) return;
        const next = serializeState(state);
        if (onPath.has(next)) continue;
        events.push(event);
        if (isTarget(next)) out.push([...events]);
        onPath.add(next);
        walk(next);
        onPath.delete(next);
        events.pop();
      }
    };
    if (isTarget(initialVertex)) out.push([]);
    walk(initialVertex);
    return out;
  };

  // Shortest path to a predecessor, then the edge into the vertex: reaches it
  // later in time, which a simple path (no vertex twice) cannot always do.
  const detoursTo = (vertex: string): AnyEventObject[][] => {
    const out: AnyEventObject[][] = [];
    for (const [from, { transitions }] of adjacency) {
      for (const { event, state } of transitions) {
        if (serializeState(state) !== vertex || from === vertex) continue;
        out.push([...(shortest.get(from) ?? []), event]);
      }
    }
    return out.sort((a, b) => a.length - b.length);
  };

  // Two edges in, after the shortest path two steps back: reaches a state
  // whose heartbeat round started late in the stream's life (a round the
  // heartbeat timer started, then a syncNow() follow-up), which neither a
  // shortest nor a simple path does.
  const longDetoursTo = (vertex: string): AnyEventObject[][] => {
    const out: AnyEventObject[][] = [];
    for (const [from, { transitions }] of adjacency) {
      for (const { event, state } of transitions) {
        const mid = serializeState(state);
        if (mid === vertex || from === vertex) continue;
        for (const { event: last, state: end } of adjacency.get(mid)?.transitions ?? []) {
          if (serializeState(end) === vertex) out.push([...(shortest.get(from) ?? []), event, last]);
        }
      }
    }
    return out.sort((a, b) => a.length - b.length);
  };

  const paths: GraphPath[] = [];
  const seen = new Set<string>();
  const infeasible: string[] = [];
  const pairsInfeasible: string[] = [];
  let edges = 0;
  const add = (events: AnyEventObject[], plan: Plan, origin: GraphPath["origin"]) => {
    const key = JSON.stringify(events);
    if (seen.has(key)) return;
    seen.add(key);
    paths.push({ name: describePath(plan), origin, events, plan });
  };

  /** Plays `steps` after the first prefix to `vertex` the world can order; the planner's reason if none. */
  const planFrom = (vertex: string, steps: AnyEventObject[], origin: GraphPath["origin"]): string | undefined => {
    const first = shortest.get(vertex);
    if (!first) throw new Error(`no shortest path to ${vertex}`);
    let why = "";
    const prefixes = function* () {
      yield first;
      yield* detoursTo(vertex);
      // For pairs, an order the timing forbids stays forbidden whatever came
      // before; only a stop budget that needs a removal in flight earlier
      // is worth a longer prefix.
      if (origin === "pair" && !why.includes("stop budget")) return;
      yield* longDetoursTo(vertex);
      yield* simplePathsTo(vertex);
    };
    for (const prefix of prefixes()) {
      const events = [...prefix, ...steps];
      const result = planPath(events, graphInput);
      if (result.ok) {
        add(events, result.plan, origin);
        return undefined;
      }
      why ||= result.why;
    }
    return why;
  };

  // Every edge, then every pair of consecutive edges (each way into a state
  // followed by each way out of it).
  const lateEdges: Array<{ vertex: string; steps: AnyEventObject[]; why: string; label: string }> = [];
  for (const [vertex, { transitions }] of adjacency) {
    for (const { event: edge, state: target } of transitions) {
      edges += 1;
      const steps = [edge, ...stopSuffix(target)];
      const why = planFrom(vertex, steps, "edge");
      if (why !== undefined) lateEdges.push({ vertex, steps, why, label: `${vertex} --${edge.type}-->` });
    }
  }
  // An edge no prefix above reaches in an order the timing allows: from a
  // state some played path passed through (a waypoint the timing allows),
  // the shortest way on to the edge's state.
  const shortestFrom = (from: string, to: string): AnyEventObject[] | undefined => {
    const back = new Map<string, { prev: string; event: AnyEventObject }>();
    const queue = [from];
    const seenHere = new Set([from]);
    while (queue.length > 0) {
      const v = queue.shift() as string;
      if (v === to) break;
      for (const { event, state } of adjacency.get(v)?.transitions ?? []) {
        const next = serializeState(state);
        if (seenHere.has(next)) continue;
        seenHere.add(next);
        back.set(next, { prev: v, event });
        queue.push(next);
      }
    }
    if (from !== to && !back.has(to)) return undefined;
    const out: AnyEventObject[] = [];
    for (let v = to; v !== from; v = back.get(v)!.prev) out.unshift(back.get(v)!.event);
    return out;
  };
  /** How many prefixes per waypoint state the retries below try (the shortest first). */
  const WAYPOINT_PREFIXES = 3;
  /** Plays `steps` from `vertex` after a waypoint prefix; whether one worked. */
  const playViaWaypoint = (vertex: string, steps: AnyEventObject[], origin: GraphPath["origin"]): boolean => {
    const waypoints = new Map<string, AnyEventObject[][]>();
    for (const p of paths) {
      for (const [k, step] of p.plan.steps.entries()) {
        const at = serializeState(step.after);
        const list = waypoints.get(at) ?? [];
        if (list.length < WAYPOINT_PREFIXES) list.push(p.events.slice(0, k + 1));
        waypoints.set(at, list);
      }
    }
    for (const [at, prefixes] of waypoints) {
      const on = shortestFrom(at, vertex);
      if (on === undefined) continue;
      for (const prefix of prefixes) {
        const events = [...prefix, ...on, ...steps];
        const result = planPath(events, graphInput);
        if (result.ok) {
          add(events, result.plan, origin);
          return true;
        }
      }
    }
    return false;
  };
  for (const late of lateEdges) {
    if (!playViaWaypoint(late.vertex, late.steps, "edge")) infeasible.push(`${late.label} : ${late.why}`);
  }
  if (options.pairs ?? true) {
    for (const [vertex, { transitions }] of adjacency) {
      for (const { event: first, state: middle } of transitions) {
        for (const { event: second, state: target } of adjacency.get(serializeState(middle))?.transitions ?? []) {
          const steps = [first, second, ...stopSuffix(target)];
          let why = planFrom(vertex, steps, "pair");
          // A stop budget needs a removal in flight, which some played path may have left.
          if (why?.includes("stop budget") && playViaWaypoint(vertex, steps, "pair")) why = undefined;
          if (why !== undefined) pairsInfeasible.push(`${vertex} --${first.type}--> --${second.type}--> : ${why}`);
        }
      }
    }
  }

  // Long simple paths to the final state, kept when they add runs of three
  // consecutive steps that no other path has.
  const pairs = new Set<string>();
  const pairsOf = (events: AnyEventObject[]) =>
    events.slice(2).map((e, i) => `${JSON.stringify(events[i])}>${JSON.stringify(events[i + 1])}>${JSON.stringify(e)}`);
  for (const p of paths) for (const pair of pairsOf(p.events)) pairs.add(pair);
  const long = boundedSimplePaths((v) => isFinal(adjacency.get(v)!.state)).sort(
    (a, b) => b.length - a.length || JSON.stringify(a).localeCompare(JSON.stringify(b)),
  );
  let added = 0;
  for (const events of long) {
    if (added >= (options.longPaths ?? 12)) break;
    const fresh = pairsOf(events).filter((pair) => !pairs.has(pair));
    if (fresh.length === 0) continue;
    const result = planPath(events, graphInput);
    if (!result.ok) continue;
    for (const pair of fresh) pairs.add(pair);
    add(events, result.plan, "simple");
    added += 1;
  }
  return { paths, infeasible, pairsInfeasible, vertices: adjacency.size, edges };
}

/** A step as a person would say what the world did. */
export function describeStep(event: AnyEventObject, advanceMs: number): string {
  const code = (event.error as { code?: string } | undefined)?.code;
  const delayName = event.type.startsWith("xstate.after.") ? event.type.split(".")[2] : undefined;
  switch (event.type) {
    case "START":
      return "start()";
    case "STOP":
      return "stop()";
    case "SYNC.NOW":
      return "syncNow()";
    case "stream.opened":
      return "server sends headers";
    case "stream.events": {
      const ev = (event.events as { eventType: number; projectId: string }[])[0]!;
      return `server sends ${ev.eventType === 1 ? "REMOVED" : "CREATED"} ${ev.projectId}`;
    }
    case "xstate.done.actor.projectEvents":
      return "server ends the stream";
    case "xstate.error.actor.projectEvents":
      return event.error instanceof ServerGoawayError ? "server sends GOAWAY (stream ends)" : `server fails the stream (${code})`;
    case "xstate.done.actor.syncProjectState": {
      const removed = (event.output as { removed: string[] }).removed;
      return `server answers the sync (removed: ${removed.length ? removed.join(",") : "none"})`;
    }
    case "xstate.error.actor.syncProjectState":
      return event.error instanceof SyncDeadlineError ? `sync times out (clock +${advanceMs} ms)` : `server fails the sync (${code})`;
    case "xstate.done.actor.drainDispatch":
      return "dispatch drains";
    default:
      if (delayName !== undefined) return `clock +${advanceMs} ms (${delayName})`;
      return event.type;
  }
}

export function describePath(plan: Plan): string {
  return plan.steps.map((s) => describeStep(s.event, s.advanceMs)).join(" → ");
}
