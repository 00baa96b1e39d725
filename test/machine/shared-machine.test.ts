import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createActor, SimulatedClock } from "xstate";
import { createBridge, HandlerRegistry, type Bridge, type EventsClient, type Logger } from "../../src/index.js";
import { BridgeError } from "../../src/errors.js";
import type { SharedBridgeMachine } from "../../src/bridge-machine-shared.js";

const shared = suite("one statechart per process");

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** A client whose stream fails at once and whose sync never answers. */
function failingClient(): EventsClient {
  return {
    // biome-ignore lint/correctness/useYield: a stream that fails before its first message
    projectEvents: async function* () {
      throw new BridgeError("down", "unavailable");
    },
    syncProjectState: (_req, opts) =>
      new Promise((_, reject) => opts.signal?.addEventListener("abort", () => reject(new BridgeError("aborted", "canceled")))),
  };
}

function bridgeWith(random: () => number, clock: SimulatedClock): Bridge {
  return createBridge({
    registry: new HandlerRegistry(),
    client: failingClient(),
    clock,
    random,
    logger: quiet,
    env: {},
    clientId: "shared",
  });
}

async function until(what: string, check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setImmediate(r));
  assert.ok(check(), what);
}

shared("bridges run on one machine object, each with its own dependencies", async () => {
  const clock = new SimulatedClock();
  const low = bridgeWith(() => 0, clock);
  const high = bridgeWith(() => 0.999, clock);
  try {
    assert.is(low.actor.logic, high.actor.logic, "one provided machine, not a provide() per bridge");
    low.start();
    high.start();
    await until("both backed off", () => low.status().state === "backoff" && high.status().state === "backoff");
    // Each bridge's delays read its own random source: the lowest and highest jitter.
    const lowWait = (low.status().timestamps.nextRetryAtMs ?? 0) - clock.now();
    const highWait = (high.status().timestamps.nextRetryAtMs ?? 0) - clock.now();
    assert.ok(lowWait < highWait, `own random sources: ${lowWait} ms < ${highWait} ms`);
    // Nothing of the runtime in the context.
    const context = low.actor.getSnapshot().context;
    assert.equal(JSON.parse(JSON.stringify(context)), context);
  } finally {
    const stopping = [low.stop(), high.stop()];
    for (let i = 0; i < 100; i++) clock.increment(100);
    await Promise.all(stopping);
  }
});

shared("the shared machine refuses to run without a bridge's dependencies", () => {
  const clock = new SimulatedClock();
  const bridge = bridgeWith(() => 0.5, clock);
  // bridge.actor shows its logic as an object (the root entry's types carry no xstate); it is the shared machine.
  const stray = createActor(bridge.actor.logic as SharedBridgeMachine, {
    input: { clientId: "x", timing: bridge.actor.getSnapshot().context.timing, dedupCapacity: 4 },
  });
  const snapshot = stray.getSnapshot();
  assert.is(snapshot.status, "error");
  assert.match(String((snapshot as { error?: unknown }).error), /no bridge runtime/);
});

shared.run();
