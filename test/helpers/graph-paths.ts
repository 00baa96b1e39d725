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
 * - one path per pair of consecutive machine transitions (each way into a
 *   state followed by each way out of it, told apart by the transition
 *   definitions they take and the event's payload, not by every product
 *   state of the two regions), the same way; a pair whose order the timing
 *   forbids (e.g. stableAfter firing while the sync that the stream opening
 *   started is still in flight: its deadline always comes first) is
 *   reported, not played;
 * - a few long seeded random walks to the final state that add runs of
 *   three consecutive steps no other path has.
 */
import type { AnyEventObject, AnyMachineSnapshot, AnyTransitionDefinition } from "xstate";
import { bridgeMachine } from "../../machines/bridge.machine.js";
import {
  adjacencyOf,
  graphEvents,
  graphInput,
  graphMachine,
  serializeState,
  shortestPaths,
  transitionKey,
  worldEvents,
  type Traversal,
} from "./graph-model.js";
import { planPath, type Plan } from "./graph-planner.js";
import { seededRandom } from "./seeded-random.js";
import { ServerGoawayError, SyncDeadlineError } from "../../src/call-errors.js";

export interface GraphPath {
  name: string;
  origin: "edge" | "pair" | "walk";
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

/** How many random walks are planned at most for the long paths (a failed plan searches every jitter draw). */
const LONG_WALKS = 400;
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
    // One pair per two consecutive transitions of the machine (its
    // definitions, with the event's payload variant), not per two
    // consecutive graph edges: the two parallel regions multiply the edges
    // (a round late, probing or running on beside every connection state)
    // while a guard that reads the other region (in(...)) already makes a
    // different definition fire. Kept: the first pair (in adjacency order)
    // of each kind that the world can play.
    const pairKinds = new Set<string>();
    for (const [vertex, { state: source, transitions }] of adjacency) {
      for (const { event: first, state: middle } of transitions) {
        for (const { event: second, state: target } of adjacency.get(serializeState(middle))?.transitions ?? []) {
          const kind = `${definitionsOf(source, first)}>${definitionsOf(middle, second)}`;
          if (pairKinds.has(kind)) continue;
          const steps = [first, second, ...stopSuffix(target)];
          let why = planFrom(vertex, steps, "pair");
          // A stop budget needs a removal in flight, which some played path may have left.
          if (why?.includes("stop budget") && playViaWaypoint(vertex, steps, "pair")) why = undefined;
          if (why !== undefined) pairsInfeasible.push(`${vertex} --${first.type}--> --${second.type}--> : ${why}`);
          else pairKinds.add(kind);
        }
      }
    }
  }

  // Long seeded random walks through the graph to the final state, kept
  // when the world can play them and they add runs of three consecutive
  // steps that no other path has. (The longest simple paths, which this
  // used to take, share one depth-first prefix that the timing forbids
  // since a round can be late beside every connection state.)
  const triples = new Set<string>();
  const triplesOf = (events: AnyEventObject[]) =>
    events.slice(2).map((e, i) => `${JSON.stringify(events[i])}>${JSON.stringify(events[i + 1])}>${JSON.stringify(e)}`);
  for (const p of paths) for (const triple of triplesOf(p.events)) triples.add(triple);
  const random = seededRandom(21);
  let added = 0;
  for (let walk = 0; walk < LONG_WALKS && added < (options.longPaths ?? 12); walk++) {
    const events: AnyEventObject[] = [];
    let vertex = initialVertex;
    const length = 14 + Math.floor(random() * 12);
    while (events.length < length) {
      const out = (adjacency.get(vertex)?.transitions ?? []).filter((t) => t.event.type !== "STOP");
      if (out.length === 0) break;
      const step = out[Math.floor(random() * out.length)]!;
      events.push(step.event);
      vertex = serializeState(step.state);
    }
    events.push(...stopSuffix(adjacency.get(vertex)!.state));
    const fresh = triplesOf(events).filter((triple) => !triples.has(triple));
    if (fresh.length === 0) continue;
    const result = planPath(events, graphInput);
    if (!result.ok) continue;
    for (const triple of fresh) triples.add(triple);
    add(events, result.plan, "walk");
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
    case "sync.late":
      return `the sync is late (clock +${advanceMs} ms)`;
    case "xstate.done.actor.probeLink":
      return event.output === true ? "the connection answers the probe (slow server)" : `the probe times out (clock +${advanceMs} ms)`;
    case "xstate.error.actor.probeLink":
      return "the probe fails";
    default:
      if (delayName !== undefined) return `clock +${advanceMs} ms (${delayName})`;
      return event.type;
  }
}

/** The machine's transition definitions `event` takes in `snapshot`, with the event's payload variant. */
function definitionsOf(snapshot: AnyMachineSnapshot, event: AnyEventObject): string {
  const defs = (graphMachine as unknown as { getTransitionData(s: AnyMachineSnapshot, e: AnyEventObject): AnyTransitionDefinition[] })
    .getTransitionData(snapshot, event)
    .map((t) => transitionKey(t))
    .sort();
  return `${defs.join("+")}#${JSON.stringify(event, (_k, v: unknown) => (v instanceof Error ? `${v.name}:${(v as { code?: string }).code ?? ""}` : v))}`;
}

export function describePath(plan: Plan): string {
  return plan.steps.map((s) => describeStep(s.event, s.advanceMs)).join(" → ");
}
