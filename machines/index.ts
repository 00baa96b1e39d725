/**
 * `engram-serverevents/machines`: the bridge statechart on its own, for
 * running it with your own actors (`bridgeMachine.provide({ actors, delays })`),
 * drawing it or testing against it. What `provide()` needs is here: the
 * machine, the delay factory and the input and output types of its actors.
 * Everything else in machines/ is internal to the bridge.
 */
export { bridgeMachine, createBridgeDelays } from "./bridge.machine.js";
export type { BridgeDelayArgs, BridgeMachine } from "./bridge.machine.js";
export type {
  BridgeContext,
  BridgeCounters,
  BridgeEmitted,
  BridgeEvent,
  BridgeInput,
  ProjectEventsInput,
  RefusedIds,
  StreamEvent,
  SyncCause,
  SyncProjectStateInput,
  SyncResult,
} from "./bridge.types.js";
