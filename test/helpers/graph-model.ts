/**
 * The bridge statechart as a graph for @xstate/graph: the events the test
 * world can cause (with the payloads that make every guard branch
 * reachable), the state serialisation, and the list of the machine's states
 * and transitions that the coverage gate checks.
 */
import type { AnyActorLogic, AnyEventObject, AnyMachineSnapshot, AnyStateMachine, AnyStateNode, AnyTransitionDefinition } from "xstate";
import { __unsafe_getAllOwnEventDescriptors } from "xstate";
import { getAdjacencyMap, getShortestPaths, getSimplePaths, getStateNodes } from "@xstate/graph";
import { bridgeMachine } from "../../machines/bridge.machine.js";
import type { StreamEvent, SyncResult } from "../../machines/bridge.types.js";
import { ServerGoawayError, SyncDeadlineError } from "../../src/call-errors.js";
import { BridgeError } from "../../src/errors.js";
import { syncRunOnMs, type BridgeTiming } from "../../src/timing.js";
import { heartbeatOf } from "../../src/bridge-status.js";

/**
 * The world's timing. Every time-driven step is caused by advancing the
 * SimulatedClock to the exact due time of one timer, so the timers of the two
 * regions must be orderable either way: the heartbeat and backoff waits have
 * a wide jitter the planner picks per path (through `random`), and the sync
 * deadline is shorter than openConfirm and stableAfter so a sync started
 * early times out first and one started late does not.
 */
export const graphTiming: BridgeTiming = {
  backoffMinMs: 1000,
  backoffMaxMs: 8000,
  backoffJitter: 0.9,
  openConfirmMs: 3000,
  stableAfterMs: 6000,
  heartbeatMs: 5000,
  heartbeatJitterMs: 4999,
  syncTimeoutMs: 1500,
  // Handlers that hang (for the stop budget) must outlive it.
  handlerTimeoutMs: 1_000_000_000,
  stopTimeoutMs: 2000,
};

export const graphInput = { clientId: "graph-client", timing: graphTiming, dedupCapacity: 256 };

/** The ids the world's tracker reports to the heartbeat. */
export const trackedIds = ["local-1", "hb-gone"];

const syncOutput = (removed: string[]): SyncResult => ({
  removed,
  unknown: [],
  serverTimeUnixMs: 0,
  skewMs: 0,
  reported: trackedIds.length,
  receivedAtMs: 0,
});

/** A StreamEvent as the ProjectEvents actor hands it on (empty reason, no timestamps). */
export const streamEvent = (eventType: number, projectId: string, eventId: string): StreamEvent => ({
  eventId,
  eventType,
  projectId,
  timestampUnixMs: 0,
  reason: "",
  receivedAtMs: 0,
});

/** The events with payloads that the graph is fed, by what causes them in the world. */
export const graphEvents = {
  start: { type: "START" },
  stop: { type: "STOP" },
  syncNow: { type: "SYNC.NOW" },
  headers: { type: "stream.opened" },
  removedEvent: { type: "stream.events", events: [streamEvent(1, "s-gone", "e-7")] },
  createdEvent: { type: "stream.events", events: [streamEvent(2, "s-new", "e-8")] },
  streamEnded: { type: "xstate.done.actor.projectEvents", output: undefined },
  streamUnavailable: { type: "xstate.error.actor.projectEvents", error: new BridgeError("stream failed", "unavailable") },
  // A server that shuts down resets its streams, which connect-node reports as CANCELED.
  streamCanceled: { type: "xstate.error.actor.projectEvents", error: new BridgeError("stream reset", "canceled") },
  // The server shuts down gracefully: GOAWAY, and the client ends the stream.
  streamGoaway: { type: "xstate.error.actor.projectEvents", error: new ServerGoawayError() },
  syncAnswered: { type: "xstate.done.actor.syncProjectState", output: syncOutput([]) },
  syncAnsweredRemoved: { type: "xstate.done.actor.syncProjectState", output: syncOutput(["hb-gone"]) },
  // Sent by the sync actor just before it resolves with removed ids: the world
  // causes it only together with such an answer (see withSyncRemovals).
  syncRemoved: { type: "sync.removed", projectIds: ["hb-gone"], receivedAtMs: 0 },
  // The round's deadline passes with its request on the wire: the actor says so and the call runs on.
  syncLate: { type: "sync.late", timeoutMs: graphTiming.syncTimeoutMs },
  // The bridge's own deadline (on its clock) runs out: the longest a call may run on.
  syncTimedOut: { type: "xstate.error.actor.syncProjectState", error: new SyncDeadlineError(syncRunOnMs(graphTiming)) },
  // The server answers DEADLINE_EXCEEDED itself: the link is alive, not suspect.
  syncServerDeadline: {
    type: "xstate.error.actor.syncProjectState",
    error: new BridgeError("deadline from the server", "deadline_exceeded"),
  },
  syncUnavailable: { type: "xstate.error.actor.syncProjectState", error: new BridgeError("sync failed", "unavailable") },
  drained: { type: "xstate.done.actor.drainDispatch", output: undefined },
  // After a sync deadline while streaming: the connection answers the probe (a slow server), or not.
  probeAnswered: { type: "xstate.done.actor.probeLink", output: true },
  // The connection does not answer: the probe's own deadline (half the sync deadline) runs out.
  probeTimedOut: { type: "xstate.done.actor.probeLink", output: false },
  probeFailed: { type: "xstate.error.actor.probeLink", error: new Error("the probe failed") },
} as const satisfies Record<string, AnyEventObject>;

const payloadVariants: Record<string, AnyEventObject[]> = {
  "sync.removed": [graphEvents.syncRemoved],
  "sync.listed": [{ type: "sync.listed", present: [], absent: [] }],
  "sync.live": [{ type: "sync.live", projectIds: [] }],
  "sync.late": [graphEvents.syncLate],
  "removal.released": [{ type: "removal.released", projectId: "s-gone" }],
  "stream.events": [graphEvents.removedEvent, graphEvents.createdEvent],
  "xstate.done.actor.projectEvents": [graphEvents.streamEnded],
  "xstate.error.actor.projectEvents": [graphEvents.streamUnavailable, graphEvents.streamCanceled, graphEvents.streamGoaway],
  "xstate.done.actor.syncProjectState": [graphEvents.syncAnswered, graphEvents.syncAnsweredRemoved],
  "xstate.error.actor.syncProjectState": [graphEvents.syncTimedOut, graphEvents.syncServerDeadline, graphEvents.syncUnavailable],
  "xstate.done.actor.drainDispatch": [graphEvents.drained],
  "xstate.done.actor.probeLink": [graphEvents.probeAnswered, graphEvents.probeTimedOut],
  "xstate.error.actor.probeLink": [graphEvents.probeFailed],
};

/**
 * Never a step of their own: the machine raises the first two itself, and the
 * sync actor sends sync.removed right before it resolves with those ids. The
 * world causes what leads to them.
 */
const raisedOnly = new Set([
  // The runtime's probe never rejects (see runtimeUnreachable).
  "xstate.error.actor.probeLink",
  "sync.request",
  "connection.suspect",
  "sync.removed",
  "sync.listed",
  "sync.live",
  "stream.sent",
  "removal.released",
]);

/**
 * The machine the graph is walked on: the bridge's, with the request of
 * every call sent. In the world the actor sends stream.sent as soon as the
 * call is made (the in-process client does not say when its request is on
 * the wire), in the same simulated instant as the step that opened it, so
 * openConfirm always counts from the open; the real bridge still takes
 * connecting --stream.sent--> and the coverage gate sees it.
 */
export const graphMachine = bridgeMachine.provide({ guards: { requestSent: () => true } });

/**
 * The machine events one world step delivers: a sync answer arrives as
 * sync.live (tracked ids of the dedup window that it did not answer
 * removed: live again, a new life; only when `before`, the snapshot the
 * answer arrives in, has such ids), sync.removed with the removed ids (the
 * actor forwards them), and then the done event.
 */
export function withSyncRemovals(event: AnyEventObject, before?: AnyMachineSnapshot): AnyEventObject[] {
  if (event.type !== "xstate.done.actor.syncProjectState") return [event];
  const removed = (event.output as SyncResult).removed;
  const out: AnyEventObject[] = [];
  const window = (before?.context as { recentRemovals?: string[] } | undefined)?.recentRemovals ?? [];
  const live = trackedIds.filter((id) => window.includes(`removed:${id}`) && !removed.includes(id));
  if (live.length > 0) out.push({ type: "sync.live", projectIds: live });
  if (removed.length > 0) out.push({ type: "sync.removed", projectIds: removed, receivedAtMs: 0 });
  out.push(event);
  return out;
}

/** Every event the machine handles in `snapshot`, with payload variants (for the structural checks). */
export function allEvents(snapshot: AnyMachineSnapshot): AnyEventObject[] {
  return __unsafe_getAllOwnEventDescriptors(snapshot).flatMap((type: string) => payloadVariants[type] ?? [{ type }]);
}

/**
 * The events the world can cause in `snapshot`. Left out, each for a reason
 * the runtime makes true:
 * - anything but START and STOP while the connection is idle: start() starts
 *   the actor and sends START in one synchronous call, syncNow() before
 *   start() never reaches the machine, and stop() before start() starts the
 *   actor only to send it STOP;
 * - the raised sync.request / connection.suspect (caused by a stream
 *   opening and a sync timing out while streaming).
 */
export function worldEvents(snapshot: AnyMachineSnapshot): AnyEventObject[] {
  const connection = (snapshot.value as { connection: unknown }).connection;
  if (connection === "idle") return [graphEvents.start, graphEvents.stop];
  // Once the open is stable its stableAfter timer has fired: it is not pending again until the next open.
  const stable = (snapshot.context as { openStable?: boolean }).openStable === true;
  // A link probe lasts half a sync deadline (750 ms in graphTiming), shorter
  // than openConfirm and stableAfter: neither fires while one runs.
  const probing = heartbeatOf(snapshot.value) === "probing";
  const connectionTimer = (type: string) => type.startsWith("xstate.after.stableAfter") || type.startsWith("xstate.after.openConfirm");
  // The runtime's sync actor fails with its own deadline only after the
  // round was late (sync.late, at syncTimeoutMs) and the link answered:
  // at runOnMs (two heartbeat periods, 10 s here), while the round runs on.
  // The world plays it on a stable stream only: elsewhere a connection
  // timer (openConfirm, stableAfter, a first backoff, a reopen) is due
  // first, and every way out of the others is played already.
  const runningOn =
    stable && ((snapshot.value as { heartbeat?: { syncing?: { deadline?: unknown } } }).heartbeat?.syncing?.deadline ?? "") === "runningOn";
  return allEvents(snapshot).filter(
    (e) =>
      !raisedOnly.has(e.type) &&
      !(stable && e.type.startsWith("xstate.after.stableAfter")) &&
      !(probing && connectionTimer(e.type)) &&
      !(e === graphEvents.syncTimedOut && !runningOn),
  );
}

/**
 * A graph vertex is the state value, plus whether the open is stable (proven
 * and streaming for stableAfterMs: a GOAWAY then reopens instead of backing
 * off). The rest of the context (counters, dedup window) would make the
 * graph infinite.
 */
export const serializeState = (snapshot: AnyMachineSnapshot): string => {
  const ctx = snapshot.context as { openProven?: boolean; openStable?: boolean } | undefined;
  const stable = ctx?.openProven === true && ctx.openStable === true;
  return stable ? `${JSON.stringify(snapshot.value)}#stable` : JSON.stringify(snapshot.value);
};

/** What a traversal is told: the vocabulary, and optionally a target and the input. */
export interface Traversal {
  events: (snapshot: AnyMachineSnapshot) => AnyEventObject[];
  input?: unknown;
  toState?: (snapshot: AnyMachineSnapshot) => boolean;
}

export interface GraphEdge {
  event: AnyEventObject;
  state: AnyMachineSnapshot;
}
export interface GraphVertex {
  state: AnyMachineSnapshot;
  transitions: GraphEdge[];
}
/** A path as @xstate/graph gives it: the events after xstate.init, and where they lead. */
export interface EventPath {
  events: AnyEventObject[];
  state: AnyMachineSnapshot;
}

// @xstate/graph types its options by the logic's event union, which has no
// xstate.after/done/error events; the vocabulary returns those too, so the
// machine is handed over as AnyActorLogic and the results are typed here.
const traversalOptions = (t: Traversal) => ({
  serializeState,
  // A safety bound on the adjacency walk (the bridge graph has about ten vertices).
  limit: 10_000,
  events: t.events,
  ...(t.input === undefined ? {} : { input: t.input }),
  ...(t.toState ? { toState: t.toState } : {}),
});

/** The graph's vertices (keyed by serializeState) and their outgoing edges. */
export function adjacencyOf(machine: AnyStateMachine, t: Traversal): Map<string, GraphVertex> {
  const adjacency = getAdjacencyMap(machine as AnyActorLogic, traversalOptions(t));
  const out = new Map<string, GraphVertex>();
  for (const [key, vertex] of Object.entries(adjacency)) {
    const v = vertex as { state: AnyMachineSnapshot; transitions: Record<string, GraphEdge> };
    out.set(key, { state: v.state, transitions: Object.values(v.transitions) });
  }
  return out;
}

const toEventPath = (p: { state: AnyMachineSnapshot; steps: Array<{ event: AnyEventObject }> }): EventPath => ({
  state: p.state,
  events: p.steps.slice(1).map((s) => s.event),
});

export function shortestPaths(machine: AnyStateMachine, t: Traversal): EventPath[] {
  return getShortestPaths(machine as AnyActorLogic, traversalOptions(t)).map(toEventPath);
}

export function simplePaths(machine: AnyStateMachine, t: Traversal): EventPath[] {
  return getSimplePaths(machine as AnyActorLogic, traversalOptions(t)).map(toEventPath);
}

/** One transition definition of the machine, named so a report can list it. */
export interface TransitionRef {
  key: string;
  source: string;
  eventType: string;
  index: number;
  label: string;
}

export function transitionKey(t: AnyTransitionDefinition): string {
  const siblings = t.source.transitions.get(t.eventType) ?? [];
  return `${t.source.id}|${t.eventType}|${siblings.indexOf(t)}`;
}

function describeTarget(t: AnyTransitionDefinition): string {
  return t.target && t.target.length > 0 ? t.target.map((n) => n.id).join(",") : "(no target)";
}

/** Every state node under the root (the root itself is always active). */
export function machineStates(machine: AnyStateMachine): string[] {
  return getStateNodes(machine.root).map((n: AnyStateNode) => n.id);
}

/** Every transition definition of every state node, `after` and invoke done/error included. */
export function machineTransitions(machine: AnyStateMachine): TransitionRef[] {
  const out: TransitionRef[] = [];
  for (const node of [machine.root, ...getStateNodes(machine.root)]) {
    for (const [eventType, defs] of node.transitions) {
      defs.forEach((t, index) => {
        const guard = index === 0 && defs.length > 1 ? " [guarded]" : defs.length > 1 ? ` [else #${index}]` : "";
        out.push({
          key: `${node.id}|${eventType}|${index}`,
          source: node.id,
          eventType,
          index,
          label: `${node.id} --${eventType}${guard}--> ${describeTarget(t)}`,
        });
      });
    }
  }
  return out;
}

/**
 * Transitions the runtime (createBridge with its real actors) cannot take,
 * whatever the world does. The gate reports them apart and fails when one
 * stops being true (it got covered, or the machine no longer has it).
 */
export const runtimeUnreachable: Record<string, string> = {
  "bridge.heartbeat.syncing.deadline.probing|xstate.error.actor.probeLink|0":
    "the runtime's probe never rejects (a check that fails answers false); the transition is for a probe a user provides",
};
