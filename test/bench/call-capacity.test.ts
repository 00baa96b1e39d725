/**
 * The server of finite capacity (src/dev-server/call-capacity.ts) on a
 * simulated clock, the fleet simulation against it at a small size, and the
 * dev server's `capacity` option on a real socket (loopback, a few calls).
 */
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import fc from "fast-check";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { analyzeCapacity } from "../../bench/fleet/capacity-analyze.js";
import { capacityCases, capacityScenario } from "../../bench/fleet/capacity-study.js";
import { HeapSimulatedClock } from "../../bench/fleet/heap-clock.js";
import { simulateFleet } from "../../bench/fleet/simulate.js";
import { capacityFromFlags } from "../../src/cli/capacity-flags.js";
import { createCallCapacity } from "../../src/dev-server/call-capacity.js";
import { startDevServer } from "../../src/dev-server/index.js";
import { EngramService } from "../../src/gen/engram/v1/engram_pb.js";

/** Lets promise reactions run after the clock moved. */
const settle = () => new Promise<void>((r) => setImmediate(r));

/** Moves the clock from timer to timer up to `ms`, letting promise reactions run at each (as the fleet simulation does). */
async function runUntil(clock: HeapSimulatedClock, ms: number): Promise<void> {
  for (;;) {
    const next = clock.nextDueMs();
    if (next === undefined || next > ms) break;
    clock.set(next);
    await settle();
  }
  clock.set(ms);
  await settle();
}

const model = suite("bench call capacity model");

model("FIFO serves calls in arrival order at callsPerSecond, one worker at a time", async () => {
  const clock = new HeapSimulatedClock();
  const cap = createCallCapacity({ callsPerSecond: 10, clock });
  const done: Array<[number, number]> = [];
  for (let i = 0; i < 5; i++) void cap.admit().then(() => done.push([i, clock.now()]));
  assert.is(cap.queued, 4);
  await runUntil(clock, 1000);
  assert.equal(done, [
    [0, 100],
    [1, 200],
    [2, 300],
    [3, 400],
    [4, 500],
  ]);
  assert.is(cap.counters.served, 5);
});

model("a call aborted while queued leaves the queue and costs nothing; one aborted in service keeps its worker", async () => {
  const clock = new HeapSimulatedClock();
  const cap = createCallCapacity({ callsPerSecond: 10, clock });
  const a = new AbortController();
  const b = new AbortController();
  const outcomes: string[] = [];
  void cap.admit(a.signal).then(
    () => outcomes.push(`a served@${clock.now()}`),
    () => outcomes.push(`a aborted@${clock.now()}`),
  );
  void cap.admit(b.signal).then(
    () => outcomes.push(`b served@${clock.now()}`),
    () => outcomes.push(`b aborted@${clock.now()}`),
  );
  void cap.admit().then(() => outcomes.push(`c served@${clock.now()}`));
  await runUntil(clock, 50);
  a.abort(); // in service
  b.abort(); // queued
  await settle();
  assert.is(cap.queued, 1);
  await runUntil(clock, 1000);
  // c waits for a's work (it cannot be taken back) but not for b's.
  assert.equal(outcomes, ["a aborted@50", "b aborted@50", "c served@200"]);
  assert.equal({ ...cap.counters }, { arrived: 3, refused: 0, served: 2, abandonedQueued: 1, abandonedInService: 1, reset: 0 });
});

model("past the bound a call is refused at once with RESOURCE_EXHAUSTED and grpc-retry-pushback-ms", async () => {
  const clock = new HeapSimulatedClock();
  const cap = createCallCapacity({ callsPerSecond: 100, clock, maxPendingCalls: 3, pushback: true });
  for (let i = 0; i < 3; i++) void cap.admit();
  const err = await cap.admit().then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.instance(err, ConnectError);
  assert.is((err as ConnectError).code, Code.ResourceExhausted);
  assert.is((err as ConnectError).metadata.get("grpc-retry-pushback-ms"), "30");
  assert.is(clock.now(), 0);
  assert.is(cap.counters.refused, 1);
  const unavailable = createCallCapacity({ callsPerSecond: 100, clock, maxPendingCalls: 0, refuseWith: "unavailable" });
  const err2 = (await unavailable.admit().catch((e: unknown) => e)) as ConnectError;
  assert.is(err2.code, Code.Unavailable);
  assert.is(err2.metadata.get("grpc-retry-pushback-ms"), null);
});

model("processor sharing: n calls arriving together all finish together after n / callsPerSecond", async () => {
  const clock = new HeapSimulatedClock();
  const cap = createCallCapacity({ callsPerSecond: 10, clock, discipline: "processor-sharing" });
  const done: number[] = [];
  for (let i = 0; i < 4; i++) void cap.admit().then(() => done.push(clock.now()));
  await runUntil(clock, 399);
  assert.equal(done, []);
  await runUntil(clock, 400);
  assert.equal(done, [400, 400, 400, 400]);
});

model("processor sharing: a late arrival slows the calls in service", async () => {
  const clock = new HeapSimulatedClock();
  const cap = createCallCapacity({ callsPerSecond: 10, clock, discipline: "processor-sharing" });
  const done: string[] = [];
  void cap.admit().then(() => done.push(`a@${Math.round(clock.now())}`));
  await runUntil(clock, 50); // a has half its work done
  void cap.admit().then(() => done.push(`b@${Math.round(clock.now())}`));
  await runUntil(clock, 1000);
  // a: 50 ms alone, then the other half at half speed (100 ms); b: then alone.
  assert.equal(done, ["a@150", "b@200"]);
});

model("whatever the arrivals, no discipline serves more than callsPerSecond × t (+ workers) by time t", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.integer({ min: 0, max: 2000 }), { minLength: 1, maxLength: 60 }),
      fc.integer({ min: 1, max: 50 }),
      fc.integer({ min: 1, max: 4 }),
      fc.constantFrom("fifo" as const, "processor-sharing" as const),
      async (arrivals, cps, workers, discipline) => {
        const clock = new HeapSimulatedClock();
        const cap = createCallCapacity({ callsPerSecond: cps, workers, discipline, clock });
        const served: number[] = [];
        const sorted = [...arrivals].sort((x, y) => x - y);
        for (const at of sorted) clock.setTimeout(() => void cap.admit().then(() => served.push(clock.now())), at);
        await runUntil(clock, 2000 + (arrivals.length * 1000 * workers) / cps + 10);
        assert.is(served.length, arrivals.length, "every call served in the end");
        const first = sorted[0] as number;
        served.forEach((t, i) => {
          const bound = ((t - first) * cps) / 1000 + (discipline === "fifo" ? workers : 1);
          assert.ok(i + 1 <= bound + 1e-6, `${i + 1} calls served by ${t} ms, more than ${bound}`);
        });
      },
    ),
    { numRuns: 40 },
  );
});

const fleet = suite("bench fleet against a finite server (small size)");

fleet("a graceful restart: the seed policy's fleet streams again within a few physical limits, every removal delivered", async () => {
  const n = 100;
  const c = capacityCases(n).find((x) => x.kind === "graceful" && x.plotted);
  assert.ok(c);
  const { scenario, triggerAtS, returnS } = capacityScenario(c, "seed", n, 120);
  const run = await simulateFleet(scenario);
  const f = analyzeCapacity(run, triggerAtS, returnS);
  const limitS = (2 * n) / c.callsPerSecond;
  assert.ok(f.to99StreamingS !== undefined && f.to99StreamingS <= 4 * limitS, `99 % streaming after ${f.to99StreamingS} s`);
  assert.is(f.delivered, f.expectedDeliveries);
  assert.ok(f.expectedDeliveries > 0);
  assert.ok(f.amplification > 0.4 && f.amplification < 3, `amplification ${f.amplification}`);
  assert.ok(f.peakQueue > 0, "the restart queued calls");
  assert.is(f.openAtEnd, n);
});

fleet("steady state at 80 % of capacity holds for every policy: all streaming, no stream torn down, heartbeat at N/60", async () => {
  const n = 300;
  const c = capacityCases(n).find((x) => x.kind === "steady80" && x.discipline === "fifo");
  assert.ok(c);
  for (const policy of ["seed", "bridge"] as const) {
    const { scenario, triggerAtS, returnS } = capacityScenario(c, policy, n, 120);
    const run = await simulateFleet(scenario);
    const f = analyzeCapacity(run, triggerAtS, returnS);
    assert.is(f.to99StreamingS, 0, policy);
    assert.is(f.streamsTornDown, 0, policy);
    assert.is(f.toSteadyS, 0, policy);
    assert.is(f.delivered, f.expectedDeliveries, policy);
  }
});

const dev = suite("bench dev server with a capacity");

dev("serve's capacity option: calls past the bound are refused with pushback, the rest are served in turn", async () => {
  const server = await startDevServer({ capacity: { callsPerSecond: 20, maxPendingCalls: 2, pushback: true } });
  try {
    const client = createClient(EngramService, createGrpcTransport({ baseUrl: server.url }));
    const calls = Array.from({ length: 4 }, (_, i) =>
      client.syncProjectState({ clientId: `c${i}`, localProjectIds: [] }).then(
        () => "ok",
        (e: unknown) => {
          const err = ConnectError.from(e);
          return `${Code[err.code]} ${err.metadata.get("grpc-retry-pushback-ms") ?? "-"} ${err.rawMessage}`;
        },
      ),
    );
    const outcomes = await Promise.all(calls);
    assert.is(outcomes.filter((o) => o === "ok").length, 2, outcomes.join(", "));
    for (const o of outcomes.filter((x) => x !== "ok")) assert.match(o, /^ResourceExhausted \d+ server over capacity/);
  } finally {
    await server.close();
  }
});

dev("serve's capacity flags: --max-calls-per-second alone is an unbounded FIFO; --pushback bounds it at 5 s of work", () => {
  assert.is(capacityFromFlags({}), undefined);
  assert.equal(capacityFromFlags({ "max-calls-per-second": "300" }), { callsPerSecond: 300, discipline: "fifo" });
  assert.equal(capacityFromFlags({ "max-calls-per-second": "300", pushback: true }), {
    callsPerSecond: 300,
    discipline: "fifo",
    maxPendingCalls: 1500,
    pushback: true,
  });
  assert.equal(capacityFromFlags({ "max-calls-per-second": "10", "max-queue-seconds": "2", "processor-sharing": true }), {
    callsPerSecond: 10,
    discipline: "processor-sharing",
    maxPendingCalls: 20,
  });
  assert.throws(() => capacityFromFlags({ pushback: true }), /need --max-calls-per-second/);
  assert.throws(() => capacityFromFlags({ "max-calls-per-second": "0" }), /must be an integer >= 1/);
});

model.run();
fleet.run();
dev.run();
