// The deterministic simulator (test/sim/): a fixed set of seeds, each a real
// createBridge driven through a fault schedule drawn from the seed, on a
// SimulatedClock against the testing kit's in-memory server, checked by the
// reference model (test/sim/model.ts). A failure names the seed, what broke,
// and the command that replays it. More seeds: `npm run test:sim -- --seeds N`.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { replayCommand } from "./replay-command.js";
import { drawScenario } from "./schedule.js";
import { simulate, violationKinds } from "./simulate.js";

/** Seeds 1 … SEEDS run in npm test (about 5 s). */
const SEEDS = 400;
const CHUNK = 50;

const sim = suite("the simulator: a real bridge under a seeded fault schedule keeps the delivery contract");

for (let from = 1; from <= SEEDS; from += CHUNK) {
  const to = Math.min(SEEDS, from + CHUNK - 1);
  sim(`seeds ${from}-${to}: every removal once per life, tracked ones in time, status true to the server, stop() clean`, async () => {
    const failures: string[] = [];
    for (let seed = from; seed <= to; seed++) {
      const r = await simulate(drawScenario(seed));
      if (r.violations.length === 0) continue;
      const first = r.violations[0];
      failures.push(`seed ${seed}: ${violationKinds(r).join(", ")} (${first?.detail}); replay: ${replayCommand(seed)}`);
    }
    if (failures.length > 0) assert.unreachable(`${failures.length} seed(s) broke the contract:\n${failures.join("\n")}`);
  });
}

sim("the same seed replays the same run (determinism)", async () => {
  for (const seed of [3, 41, 216]) {
    const a = await simulate(drawScenario(seed), { trace: true });
    const b = await simulate(drawScenario(seed), { trace: true });
    assert.equal(
      a.trace.filter((l) => !l.includes("skew")),
      b.trace.filter((l) => !l.includes("skew")),
    );
    assert.equal(a.violations, b.violations);
  }
});

sim("the model catches a bridge that breaks the contract (a handler called twice for one stream event)", async () => {
  // A check that cannot fail proves nothing: the same run with the model fed a duplicate call.
  const { DeliveryModel } = await import("./model.js");
  const m = new DeliveryModel({ client: "c", healAtMs: 0, boundMs: 1000, streamingSlackMs: 100, syncTimeoutMs: 1000 });
  m.serverTrace({ type: "event.delivered", atMs: 1, client: "c", streamId: 1, eventId: "7", eventType: "removed", projectId: "x" });
  m.delivered("x", { source: "stream", eventId: "7" }, 2);
  m.delivered("x", { source: "heartbeat" }, 3);
  m.delivered("y", { source: "stream", eventId: "8" }, 4);
  m.trackedRemoval("z", 5);
  m.status("streaming", 0, 10);
  m.status("streaming", 0, 200);
  m.finish(5000);
  assert.equal(
    m.violations.map((v) => v.kind),
    ["delivery-without-source", "delivery-without-source", "streaming-without-stream", "removal-not-delivered"],
  );
});

sim.run();
