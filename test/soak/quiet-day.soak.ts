/**
 * A simulated 24 hours of quiet streaming against the real dev server on
 * loopback, with default timings: the bridge's clock is a SimulatedClock
 * wrapped to count every timer it schedules and every one that fires (a
 * wake-up). The goal is the heartbeat's wake-ups and nothing more: about
 * one a minute. The figure is printed. Run by `npm run test:soak`.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { SimulatedClock } from "xstate";
import { createBridge, HandlerRegistry, SessionTracker, startDevServer } from "../../src/index.js";
import type { Clock } from "../../src/types.js";
import { defaultBridgeTiming } from "../../src/timing.js";
import { capturingLogger, eventually } from "../helpers/e2e.js";

/** A SimulatedClock that counts timers and knows when the next one is due. */
function countingClock() {
  const inner = new SimulatedClock();
  const pending = new Map<unknown, number>();
  const counts = { scheduled: 0, cleared: 0, fired: 0 };
  const firedAtMs: number[] = [];
  const clock: Clock & { now(): number } = {
    setTimeout(fn, ms) {
      counts.scheduled++;
      const id: unknown = inner.setTimeout(() => {
        pending.delete(id);
        counts.fired++;
        firedAtMs.push(inner.now());
        fn();
      }, ms);
      pending.set(id, inner.now() + ms);
      return id;
    },
    clearTimeout(id) {
      if (pending.delete(id)) counts.cleared++;
      inner.clearTimeout(id as number);
    },
    now: () => inner.now(),
  };
  return {
    clock,
    counts,
    firedAtMs,
    nextDueMs: () => Math.min(Number.POSITIVE_INFINITY, ...pending.values()),
    /** Jumps from timer to timer up to `ms`, so each fires at its own time. */
    set: (ms: number) => inner.set(ms),
  };
}

const quiet = suite("a quiet day");

quiet("24 simulated hours of quiet streaming wake the bridge about once a minute: the heartbeat, nothing more", async () => {
  const server = await startDevServer();
  const tracker = new SessionTracker();
  for (let i = 0; i < 50; i++) {
    tracker.connect(`live-${i}`);
    server.createProject(`live-${i}`);
  }
  const c = countingClock();
  const bridge = createBridge({
    registry: new HandlerRegistry(),
    tracker,
    serverUrl: server.url,
    env: {},
    logger: capturingLogger(),
    clock: c.clock,
    clientId: "quiet",
  });
  bridge.start();
  await server.waitForStreams(1);
  const DAY_MS = 24 * 60 * 60 * 1000;
  const t0 = performance.now();
  let steps = 0;
  for (;;) {
    const due = c.nextDueMs();
    if (due > DAY_MS) break;
    c.set(due);
    steps++;
    // A heartbeat is a real round trip to the server: let it finish on real time.
    if (bridge.status().heartbeat === "syncing") {
      await eventually("sync answered", () => bridge.status().heartbeat === "waiting", 10_000);
    } else {
      await new Promise((r) => setImmediate(r));
    }
  }
  c.set(DAY_MS);
  const realMs = performance.now() - t0;
  const s = bridge.status();
  await bridge.stop();
  await server.close();

  const minutes = DAY_MS / 60_000;
  const perMinute = c.counts.fired / minutes;
  const heartbeats = s.counters.syncs;
  console.log(
    `# quiet day (defaults, simulated 24 h, real loopback server): ${c.counts.fired} timer wake-ups = ${perMinute.toFixed(3)} per minute; ` +
      `${heartbeats} heartbeats (${(heartbeats / minutes).toFixed(3)}/min); ${c.counts.scheduled} timers scheduled, ${c.counts.cleared} cleared (sync deadlines); ` +
      `${s.counters.reconnects} reconnects; ${(realMs / 1000).toFixed(1)} s of real time`,
  );
  assert.is(bridge.status().state, "stopped");
  assert.is(s.counters.reconnects, 0);
  assert.is(s.counters.syncFailures, 0);
  // Heartbeats: one per 55..65 s.
  assert.ok(heartbeats >= minutes * (60 / 65) && heartbeats <= minutes * (60 / 55) + 2, `heartbeats ${heartbeats}`);
  // Wake-ups: the heartbeat's, plus the three of the first minute (open confirmation, stable-after and the first heartbeat wait).
  assert.ok(c.counts.fired <= heartbeats + 3, `${c.counts.fired} wake-ups for ${heartbeats} heartbeats`);
  assert.ok(perMinute < 1.1, `${perMinute} wake-ups per minute`);
  assert.ok(steps >= heartbeats);
  assert.ok(defaultBridgeTiming.heartbeatMs === 60_000);
});

quiet.run();
