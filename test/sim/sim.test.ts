// The deterministic simulator (test/sim/): a fixed set of seeds, each a real
// createBridge driven through a fault schedule drawn from the seed, on a
// SimulatedClock against the testing kit's in-memory server, checked by the
// reference model (test/sim/model.ts). A failure names the seed, what broke,
// and the command that replays it. More seeds: `npm run test:sim -- --seeds N`.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { replayCommand } from "./replay-command.js";
import { drawScenario } from "./schedule.js";
import { simulate, violationKinds, type SimReach } from "./simulate.js";

/** Seeds 1 … SEEDS run in npm test (about 5 s). */
const SEEDS = 400;
const CHUNK = 50;

/** What the fixed seeds reached of the dimensions the schedule draws (summed over the seeds). */
const reached = {
  eventsDropped: 0,
  trackedDropped: 0,
  unknownAnswered: 0,
  trackerThrows: 0,
  trackerGarbage: 0,
  hasThrows: 0,
  bytesHalfFull: 0,
  bytesFull: 0,
  countFull: 0,
};
function addReach(r: SimReach): void {
  reached.eventsDropped += r.eventsDropped;
  reached.trackedDropped += r.trackedDropped;
  reached.unknownAnswered += r.unknownAnswered;
  reached.trackerThrows += r.trackerThrows;
  reached.trackerGarbage += r.trackerGarbage;
  reached.hasThrows += r.hasThrows;
  if (r.peakBytesFill >= 0.5) reached.bytesHalfFull += 1;
  if (r.peakBytesFill >= 0.9) reached.bytesFull += 1;
  if (r.peakQueuedFill >= 1) reached.countFull += 1;
}

const sim = suite("the simulator: a real bridge under a seeded fault schedule keeps the delivery contract");

for (let from = 1; from <= SEEDS; from += CHUNK) {
  const to = Math.min(SEEDS, from + CHUNK - 1);
  sim(`seeds ${from}-${to}: every removal once per life, tracked ones in time, status true to the server, stop() clean`, async () => {
    const failures: string[] = [];
    for (let seed = from; seed <= to; seed++) {
      const r = await simulate(drawScenario(seed));
      addReach(r.reach);
      if (r.violations.length === 0) continue;
      const first = r.violations[0];
      failures.push(`seed ${seed}: ${violationKinds(r).join(", ")} (${first?.detail}); replay: ${replayCommand(seed)}`);
    }
    if (failures.length > 0) assert.unreachable(`${failures.length} seed(s) broke the contract:\n${failures.join("\n")}`);
  });
}

sim(
  "the fixed seeds reach every fault dimension: server drops (of tracked removals too), unknown answers, tracker faults, a full byte bound",
  () => {
    // A dimension no seed reaches checks nothing: this fails if a schedule change stops drawing one.
    for (const [what, n] of Object.entries(reached)) assert.ok(n > 0, `no seed reached ${what}: ${JSON.stringify(reached)}`);
  },
);

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

sim(
  "the model holds the queue to its bounds plus one removal's bytes, never a delivery of an unknown project, and excuses a blind tracker only while blind",
  async () => {
    const { DeliveryModel } = await import("./model.js");
    const opts = { client: "c", healAtMs: 0, boundMs: 1000, streamingSlackMs: 100, syncTimeoutMs: 1000, removalBytesSlack: 500 };
    const within = new DeliveryModel(opts);
    within.queue(2, 2, 4096 + 500, 4096, 1);
    assert.equal(within.violations, []);
    const over = new DeliveryModel(opts);
    over.queue(2, 2, 4096 + 501, 4096, 1);
    over.queue(3, 2, 0, 4096, 1);
    assert.equal(
      over.violations.map((v) => v.kind),
      ["queue-over-byte-bound", "queue-over-count-bound"],
    );

    const unknown = new DeliveryModel(opts);
    unknown.serverTrace({
      type: "sync.answered",
      atMs: 1,
      client: "c",
      reported: ["a"],
      removed: [],
      unknown: ["a", "b"],
      computedAtMs: 1,
    });
    unknown.delivered("b", { source: "heartbeat" }, 2);
    assert.equal(
      unknown.violations.map((v) => v.kind),
      ["delivered-unknown"],
    );

    // Removed at 100 while the tracker throws from 50 to 3000: owed by 3000 + 1000, not by 1100.
    const blind = new DeliveryModel(opts);
    blind.trackerBlind(50, 3000);
    blind.trackedRemoval("x", 100);
    blind.finish(3999);
    assert.equal(blind.violations, []);
    blind.finish(4000);
    assert.equal(
      blind.violations.map((v) => v.kind),
      ["removal-not-delivered"],
    );
    // Delivered, but after the deadline: late.
    const slow = new DeliveryModel(opts);
    slow.trackedRemoval("z", 100);
    slow.delivered("z", { source: "heartbeat" }, 1101);
    assert.ok(slow.violations.some((v) => v.kind === "removal-late"));
    // A blind window after the deadline excuses nothing.
    const late = new DeliveryModel(opts);
    late.trackedRemoval("y", 100);
    late.trackerBlind(1200, 5000);
    late.finish(1100);
    assert.equal(
      late.violations.map((v) => v.kind),
      ["removal-not-delivered"],
    );
  },
);

sim.run();
