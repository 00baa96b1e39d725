/**
 * One provided statechart per process. `bridgeMachine.provide()` rebuilds
 * the whole state-node tree, so providing per bridge cost about half of an
 * idle bridge's heap. Here the actors and delays are provided once; each
 * reads its bridge's dependencies (client, clock, tracker, dispatcher drain,
 * random source) from a WeakMap keyed by the actor system the bridge's root
 * actor created. Nothing of that enters the machine's context, which stays
 * JSON.
 */
import { createActor, type Actor, type ActorOptions } from "xstate";
import { bridgeMachine, createBridgeDelays, type BridgeDelayArgs } from "../machines/bridge.machine.js";
import type { BridgeInput } from "../machines/bridge.types.js";
import {
  createDrainActor,
  createProbeLinkActor,
  createProjectEventsActor,
  createSyncProjectStateActor,
  type ActorSystemOf,
  type DrainDeps,
  type SyncActorDeps,
} from "./bridge-actors.js";

/** What one bridge gives the shared machine's actors and delays. */
export interface BridgeRuntimeDeps extends SyncActorDeps, DrainDeps {
  /** Random source in [0, 1) for the jittered delays. */
  random: () => number;
  /**
   * Told the wait a backoff (or GOAWAY reopen) delay armed, before the
   * machine's emitted events reach their listeners, so the failure's log
   * line can say how long the bridge waits.
   */
  onRetryDelay: (ms: number) => void;
}

const runtimes = new WeakMap<ActorSystemOf, BridgeRuntimeDeps>();
/** The deps of the actor being created: its initial state arms delays before createActor() returns. */
let creating: BridgeRuntimeDeps | undefined;

/** Creates a bridge's root actor on `machine` with its dependencies registered by its actor system. */
export function createBridgeActor(
  machine: SharedBridgeMachine,
  options: ActorOptions<SharedBridgeMachine> & { input: BridgeInput },
  deps: BridgeRuntimeDeps,
): Actor<SharedBridgeMachine> {
  creating = deps;
  try {
    const actor = createActor(machine, options);
    runtimes.set(actor.system, deps);
    return actor;
  } finally {
    creating = undefined;
  }
}

function runtimeOf(system: ActorSystemOf): BridgeRuntimeDeps {
  const deps = runtimes.get(system) ?? creating;
  if (deps === undefined) throw new Error("this actor system has no bridge runtime: create the actor with createBridge()");
  return deps;
}

const delays = createBridgeDelays(({ system }) => runtimeOf(system).random());

function announcing(delay: (args: BridgeDelayArgs) => number) {
  return (args: BridgeDelayArgs) => {
    const ms = delay(args);
    runtimeOf(args.system).onRetryDelay(ms);
    return ms;
  };
}

/** The machine every bridge of this process runs. */
export const sharedBridgeMachine = bridgeMachine.provide({
  actors: {
    projectEvents: createProjectEventsActor(runtimeOf),
    syncProjectState: createSyncProjectStateActor(runtimeOf),
    drainDispatch: createDrainActor(runtimeOf),
    probeLink: createProbeLinkActor(runtimeOf),
  },
  delays: {
    ...delays,
    backoffDelay: announcing(delays.backoffDelay),
    reopenDelay: announcing(delays.reopenDelay),
  },
});

export type SharedBridgeMachine = typeof bridgeMachine;
