/**
 * The world the property tests drive: a real bridge on a SimulatedClock
 * against the scripted server run by policies (how it answers new streams
 * and syncs), a server-side project store, a tracker and a handler whose
 * behaviour the schedule switches. Commands are plain data so fast-check can
 * generate and shrink them; `run()` plays one and the world records what the
 * invariants need.
 */
import { Code } from "@connectrpc/connect";
import type { Bridge } from "../../src/bridge.js";
import { createBridge } from "../../src/bridge.js";
import { HandlerRegistry } from "../../src/handler-registry.js";
import { SessionTracker } from "../../src/session-tracker.js";
import type { BridgeTiming } from "../../src/timing.js";
import type { ProjectRemovalAware, RemovalInfo } from "../../src/types.js";
import { capturingLogger } from "./e2e.js";
import { seededRandom } from "./seeded-random.js";
import { createScriptedServer, type ScriptedServer, type StreamCall, type SyncCall } from "./graph-server.js";
import { createCountingClock, settle } from "./graph-world.js";

export const fuzzTiming: BridgeTiming = {
  backoffMinMs: 1000,
  backoffMaxMs: 8000,
  backoffJitter: 0.2,
  openConfirmMs: 2000,
  stableAfterMs: 10_000,
  heartbeatMs: 5000,
  heartbeatJitterMs: 1000,
  syncTimeoutMs: 2000,
  handlerTimeoutMs: 3000,
  stopTimeoutMs: 2000,
};

export const trackedProjects = ["p1", "p2", "p3", "p4", "p5"];
export const untrackedProjects = ["u1", "u2"];

export type StreamMode = "accept" | "silent" | "unavailable" | "unauthenticated";
export type SyncMode = "answer" | "unavailable" | "hang";
export type HandlerMode = "fast" | "slow" | "throw" | "hang";

export type Command =
  | { kind: "remove"; projectId: string }
  | { kind: "resend" }
  | { kind: "noise" }
  | { kind: "dropStream"; how: "unavailable" | "canceled" | "internal" | "end" | "goaway" }
  | { kind: "streamMode"; mode: StreamMode }
  | { kind: "syncMode"; mode: SyncMode }
  | { kind: "handler"; mode: HandlerMode }
  | { kind: "advance"; ms: number }
  | { kind: "syncNow" }
  | { kind: "stop" };

export interface HandlerCall {
  projectId: string;
  info: RemovalInfo;
  atMs: number;
}

export interface FuzzWorld {
  bridge: Bridge;
  server: ScriptedServer;
  now(): number;
  pendingTimers(): number;
  calls: HandlerCall[];
  /** Projects removed on the server so far. */
  removed: Set<string>;
  /** Backoff gaps seen by the server: close of a stream to the open of the next, in ms. */
  reconnectGapsMs: number[];
  /** Gaps after a stream the server ended with GOAWAY (a short jittered wait, not a backoff). */
  goawayGapsMs: number[];
  stopCalledAtMs: number | undefined;
  stopResolvedAtMs: number | undefined;
  callsWhenStopResolved: number | undefined;
  streamsWhenStopResolved: number | undefined;
  run(command: Command): Promise<void>;
  /** Advances simulated time timer by timer, letting every reaction run in between. */
  advance(ms: number): Promise<void>;
  /** Server reachable and well-behaved again, handler fast. */
  heal(): void;
  dispose(): Promise<void>;
}

export function createFuzzWorld(jitterSeed: number): FuzzWorld {
  const { clock, sim, pending, nextDue } = createCountingClock();
  let streamMode: StreamMode = "accept";
  let syncMode: SyncMode = "answer";
  let handlerMode: HandlerMode = "fast";
  const removed = new Set<string>();
  const sentEvents: Array<{ eventId: string; projectId: string }> = [];
  let lastEventId = 0;
  const reconnectGapsMs: number[] = [];
  const goawayGapsMs: number[] = [];
  const goneAway = new Set<number>();

  const onStream = (call: StreamCall) => {
    const previous = server.streams[call.index - 1];
    if (previous?.closedAtMs !== undefined)
      (goneAway.has(previous.index) ? goawayGapsMs : reconnectGapsMs).push(call.openedAtMs - previous.closedAtMs);
    const mode = streamMode;
    // A network round trip later, the server reacts (a microtask: no simulated time passes).
    queueMicrotask(() => {
      if (call.status !== "open") return;
      if (mode === "accept") call.sendHeaders();
      else if (mode === "unavailable") call.fail(Code.Unavailable);
      else if (mode === "unauthenticated") call.fail(Code.Unauthenticated, "missing bearer token");
    });
  };
  const onSync = (call: SyncCall) => {
    const mode = syncMode;
    queueMicrotask(() => {
      if (call.status !== "open") return;
      if (mode === "answer")
        call.answer({ removed: call.request.localProjectIds.filter((id) => removed.has(id)), serverTimeUnixMs: Date.now() });
      else if (mode === "unavailable") call.fail(Code.Unavailable);
    });
  };
  const server = createScriptedServer({ now: () => sim.now(), onStream, onSync });

  const calls: HandlerCall[] = [];
  const handler: ProjectRemovalAware = {
    name: "fuzz-handler",
    onProjectRemoved(projectId, info) {
      calls.push({ projectId, info, atMs: sim.now() });
      switch (handlerMode) {
        case "fast":
          return undefined;
        case "slow":
          return new Promise<void>((resolve) => clock.setTimeout(() => resolve(), 500));
        case "throw":
          throw new Error("handler failed");
        case "hang":
          return new Promise<void>(() => undefined);
      }
    },
  };
  const registry = new HandlerRegistry();
  registry.register(handler);
  const tracker = new SessionTracker();
  for (const id of trackedProjects) tracker.connect(id);

  const bridge = createBridge({
    registry,
    tracker,
    client: server.client,
    clock,
    timing: fuzzTiming,
    clientId: "fuzz-client",
    logger: capturingLogger(),
    env: {},
    random: seededRandom(jitterSeed),
  });

  const openStream = () => server.streams.find((s) => s.status === "open");
  const send = (projectId: string, eventType: number, eventId?: string) => {
    const stream = openStream();
    if (!stream) return;
    stream.send({ eventId: eventId ?? String(++lastEventId), eventType, projectId });
  };

  async function advance(ms: number): Promise<void> {
    const target = sim.now() + ms;
    for (let i = 0; i < 100_000; i++) {
      const due = nextDue();
      if (due === undefined || due > target) break;
      sim.set(Math.max(due, sim.now()));
      await settle();
    }
    if (sim.now() < target) sim.set(target);
    await settle();
  }

  const world: FuzzWorld = {
    bridge,
    server,
    now: () => sim.now(),
    pendingTimers: pending,
    calls,
    removed,
    reconnectGapsMs,
    goawayGapsMs,
    stopCalledAtMs: undefined,
    stopResolvedAtMs: undefined,
    callsWhenStopResolved: undefined,
    streamsWhenStopResolved: undefined,
    advance,
    heal() {
      streamMode = "accept";
      syncMode = "answer";
      handlerMode = "fast";
    },
    async run(command) {
      switch (command.kind) {
        case "remove": {
          if (!removed.has(command.projectId)) removed.add(command.projectId);
          const eventId = String(++lastEventId);
          sentEvents.push({ eventId, projectId: command.projectId });
          send(command.projectId, 1, eventId);
          break;
        }
        case "resend": {
          // At-least-once: the server sends an event again.
          const last = sentEvents.at(-1);
          if (last) send(last.projectId, 1, last.eventId);
          break;
        }
        case "noise":
          send(`new-${lastEventId + 1}`, 2);
          break;
        case "dropStream": {
          const stream = openStream();
          if (!stream) break;
          if (command.how === "end") stream.end();
          else if (command.how === "goaway") {
            goneAway.add(stream.index);
            stream.goaway();
          } else stream.fail(command.how === "unavailable" ? Code.Unavailable : command.how === "canceled" ? Code.Canceled : Code.Internal);
          break;
        }
        case "streamMode":
          streamMode = command.mode;
          break;
        case "syncMode":
          syncMode = command.mode;
          break;
        case "handler":
          handlerMode = command.mode;
          break;
        case "advance":
          await advance(command.ms);
          return;
        case "syncNow":
          bridge.syncNow();
          break;
        case "stop":
          if (world.stopCalledAtMs === undefined) {
            world.stopCalledAtMs = sim.now();
            void bridge.stop().then(() => {
              world.stopResolvedAtMs = sim.now();
              world.callsWhenStopResolved = calls.length;
              world.streamsWhenStopResolved = server.streams.length;
            });
          }
          break;
      }
      await settle();
    },
    async dispose() {
      if (world.stopCalledAtMs === undefined) await world.run({ kind: "stop" });
      await advance(fuzzTiming.stopTimeoutMs + 1);
    },
  };
  return world;
}
