/**
 * Builds bridges whose statechart differs from bridgeMachine by a few
 * provided implementations, without touching src/: createBridge() calls
 * `bridgeMachine.provide(impl)` once, synchronously, while it is created, so
 * for the duration of `create()` that call is wrapped and `override(impl)`
 * can replace named actors, actions or delays (the same thing
 * `machine.provide()` does in tests). Used by the fleet's seed policy and by
 * the batching prototype. A `machine` option on createBridge would make
 * this wrapper unnecessary.
 */
import { bridgeMachine } from "../../machines/bridge.machine.js";

type Provide = typeof bridgeMachine.provide;
export type Implementations = Parameters<Provide>[0];

export function withBridgeMachineVariant<T>(override: (impl: Implementations) => Implementations, create: () => T): T {
  const machine = bridgeMachine as unknown as { provide: Provide };
  const original = bridgeMachine.provide;
  machine.provide = ((impl: Implementations) => original.call(bridgeMachine, override(impl))) as Provide;
  try {
    return create();
  } finally {
    delete (machine as { provide?: Provide }).provide;
    if (bridgeMachine.provide !== original) machine.provide = original;
  }
}
