/**
 * Properties of the real bridge under random schedules of server behaviour,
 * faults, clock advances, removals and stop(), on simulated time (fast-check,
 * seeded: PROPERTY_SEED=<n> replays a run; the seed is printed on failure).
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import {
  createFuzzWorld,
  fuzzTiming,
  trackedProjects,
  untrackedProjects,
  type Command,
  type FuzzWorld,
} from "../helpers/graph-fuzz-world.js";

const seed = Number(process.env.PROPERTY_SEED ?? 20_260_517);
const numRuns = Number(process.env.PROPERTY_RUNS ?? 250);
const maxBackoffMs = fuzzTiming.backoffMaxMs * (1 + fuzzTiming.backoffJitter);
const minBackoffMs = fuzzTiming.backoffMinMs * (1 - fuzzTiming.backoffJitter);

const command: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.constantFrom(...trackedProjects, ...untrackedProjects).map((projectId) => ({ kind: "remove" as const, projectId })),
  },
  { weight: 1, arbitrary: fc.constant({ kind: "resend" as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: "noise" as const }) },
  {
    weight: 2,
    arbitrary: fc.constantFrom("unavailable", "canceled", "internal", "end", "goaway").map((how) => ({ kind: "dropStream" as const, how })),
  },
  {
    weight: 2,
    arbitrary: fc.constantFrom("accept", "silent", "unavailable", "unauthenticated").map((mode) => ({ kind: "streamMode" as const, mode })),
  },
  { weight: 2, arbitrary: fc.constantFrom("answer", "unavailable", "hang").map((mode) => ({ kind: "syncMode" as const, mode })) },
  { weight: 1, arbitrary: fc.constantFrom("fast", "slow", "throw", "hang").map((mode) => ({ kind: "handler" as const, mode })) },
  { weight: 5, arbitrary: fc.integer({ min: 1, max: 20_000 }).map((ms) => ({ kind: "advance" as const, ms })) },
  { weight: 1, arbitrary: fc.constant({ kind: "syncNow" as const }) },
) as fc.Arbitrary<Command>;

const schedule = fc.record({
  jitterSeed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
  commands: fc.array(command, { minLength: 1, maxLength: 40 }),
});

/** Checks that hold at every point of every schedule. */
function checkAlways(world: FuzzWorld, where: string): void {
  assert.ok(world.server.maxOpenStreams <= 1, `${where}: ${world.server.maxOpenStreams} streams were open at once`);
  const perProject = new Map<string, number>();
  for (const c of world.calls) perProject.set(c.projectId, (perProject.get(c.projectId) ?? 0) + 1);
  for (const [projectId, n] of perProject) {
    assert.is(n, 1, `${where}: ${projectId} was delivered ${n} times (dedup window is 256)`);
    assert.ok(world.removed.has(projectId), `${where}: ${projectId} was delivered but never removed on the server`);
  }
  for (const gap of world.reconnectGapsMs) {
    assert.ok(gap <= maxBackoffMs, `${where}: reconnected ${gap} ms after a close, more than backoffMaxMs·(1+jitter) = ${maxBackoffMs}`);
    assert.ok(gap >= minBackoffMs, `${where}: reconnected ${gap} ms after a close, less than backoffMinMs·(1-jitter) = ${minBackoffMs}`);
  }
  for (const gap of world.goawayGapsMs) {
    // After a proven open: a short wait in [0, backoffMinMs]; before proof a GOAWAY is a failure (backoff).
    assert.ok(gap >= 0 && gap <= maxBackoffMs, `${where}: reopened ${gap} ms after a GOAWAY, outside [0, backoffMaxMs·(1+jitter)]`);
  }
  const status = world.bridge.status();
  if (status.state === "backoff") {
    const waitMs = (status.timestamps.nextRetryAtMs ?? Number.NaN) - world.now();
    assert.ok(waitMs >= 0 && waitMs <= maxBackoffMs, `${where}: next retry in ${waitMs} ms`);
  }
  if (world.stopResolvedAtMs !== undefined) {
    assert.is(world.calls.length, world.callsWhenStopResolved, `${where}: a handler was called after stop() resolved`);
    assert.is(world.server.streams.length, world.streamsWhenStopResolved, `${where}: a stream was opened after stop() resolved`);
  }
}

/** stop() resolved within its budget and left nothing behind. */
async function checkStopped(world: FuzzWorld, where: string): Promise<void> {
  await world.advance(fuzzTiming.stopTimeoutMs + 1);
  assert.ok(
    world.stopResolvedAtMs !== undefined,
    `${where}: stop() has not resolved ${fuzzTiming.stopTimeoutMs + 1} ms after it was called`,
  );
  const tookMs = world.stopResolvedAtMs! - world.stopCalledAtMs!;
  assert.ok(tookMs <= fuzzTiming.stopTimeoutMs, `${where}: stop() took ${tookMs} ms > stopTimeoutMs`);
  const calls = world.calls.length;
  await world.advance(60_000);
  checkAlways(world, `${where}, a minute after stop()`);
  assert.is(world.calls.length, calls, `${where}: no handler call after stop()`);
  assert.is(world.server.openStreams() + world.server.syncsInFlight(), 0, `${where}: calls left open after stop()`);
  assert.is(world.pendingTimers(), 0, `${where}: timers left behind after stop()`);
  assert.is(world.bridge.status().state, "stopped");
}

/** Starts the bridge and runs the schedule, checking the invariants (and `alsoCheck`) after each command. */
async function play(world: FuzzWorld, commands: Command[], alsoCheck?: (world: FuzzWorld) => void): Promise<void> {
  world.bridge.start();
  for (const [i, c] of commands.entries()) {
    await world.run(c);
    checkAlways(world, `after command ${i + 1} ${JSON.stringify(c)}`);
    alsoCheck?.(world);
  }
}

async function withSeed(name: string, property: fc.IAsyncProperty<[{ jitterSeed: number; commands: Command[] }]>) {
  const t0 = performance.now();
  try {
    await fc.assert(property, { seed, numRuns });
  } catch (err) {
    console.log(`# ${name}: failed with seed ${seed} (replay: PROPERTY_SEED=${seed} node --import tsx test/graph/properties.test.ts)`);
    throw err;
  }
  console.log(`# ${name}: ${numRuns} runs, seed ${seed}, ${(performance.now() - t0).toFixed(0)} ms`);
}

const properties = suite("bridge properties on simulated time");

properties("every removal of a tracked project is delivered exactly once after the server is reachable again", () =>
  withSeed(
    "delivery",
    fc.asyncProperty(schedule, async ({ jitterSeed, commands }) => {
      const world = createFuzzWorld(jitterSeed);
      try {
        await play(world, commands);
        world.heal();
        // Long enough for the longest backoff, a sync timeout, a stuck handler and a heartbeat.
        await world.advance(3 * (maxBackoffMs + fuzzTiming.syncTimeoutMs + fuzzTiming.handlerTimeoutMs + fuzzTiming.heartbeatMs));
        checkAlways(world, "after healing");
        assert.is(world.bridge.status().state, "streaming", "streaming once the server is reachable");
        const delivered = new Set(world.calls.map((c) => c.projectId));
        const owed = trackedProjects.filter((p) => world.removed.has(p) && !delivered.has(p));
        assert.equal(owed, [], `tracked projects removed on the server but never delivered: ${owed.join(", ")}`);
        await world.run({ kind: "stop" });
        await checkStopped(world, "final stop");
      } finally {
        await world.dispose();
      }
    }),
  ),
);

properties("stop() from any point resolves within stopTimeoutMs and no handler runs after it", () =>
  withSeed(
    "stop anywhere",
    fc.asyncProperty(
      schedule.chain((s) =>
        fc
          .integer({ min: 0, max: s.commands.length })
          .map((at) => ({ ...s, commands: [...s.commands.slice(0, at), { kind: "stop" as const }, ...s.commands.slice(at)] })),
      ),
      async ({ jitterSeed, commands }) => {
        const world = createFuzzWorld(jitterSeed);
        try {
          await play(world, commands, (w) => {
            if (w.stopCalledAtMs !== undefined && w.stopResolvedAtMs === undefined) {
              const elapsed = w.now() - w.stopCalledAtMs;
              assert.ok(elapsed <= fuzzTiming.stopTimeoutMs, `stop() still pending ${elapsed} ms after it was called`);
            }
          });
          await checkStopped(world, "stop");
        } finally {
          await world.dispose();
        }
      },
    ),
  ),
);

properties.run();
