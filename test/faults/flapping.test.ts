/**
 * A flapping link: 100 cut/restore cycles through the fault proxy, with
 * removals made while the link is down (their stream events are lost) and
 * while it is up. The daemon tracks its projects in a SessionTracker, so the
 * heartbeat (and the sync on every reopen) fills the gaps. Every removal
 * must reach the handler exactly once.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createBridge, HandlerRegistry, SessionTracker, startDevServer, type Bridge, type DevServer } from "../../src/index.js";
import { capturingLogger, eventually, fastTiming } from "../helpers/e2e.js";
import { startFaultProxy, type FaultProxy } from "../helpers/fault-proxy.js";

interface Ctx {
  server: DevServer;
  proxy: FaultProxy;
  bridge: Bridge | undefined;
}

const flapping = suite<Ctx>("flapping link");

flapping.before.each(async (ctx) => {
  ctx.server = await startDevServer();
  ctx.proxy = await startFaultProxy({ targetPort: ctx.server.port });
  ctx.bridge = undefined;
});

flapping.after.each(async (ctx) => {
  await ctx.bridge?.stop();
  await ctx.proxy.close();
  await ctx.server.close();
});

flapping("100 cut/restore cycles: every removal made during the run is delivered exactly once", async (ctx) => {
  const CYCLES = 100;
  const tracker = new SessionTracker();
  const delivered = new Map<string, number>();
  const registry = new HandlerRegistry();
  registry.register({
    name: "daemon",
    onProjectRemoved(id) {
      delivered.set(id, (delivered.get(id) ?? 0) + 1);
      tracker.disconnect(id); // what a daemon does once it dropped the project
    },
  });
  const removed: string[] = [];
  const project = (id: string) => {
    ctx.server.createProject(id);
    tracker.connect(id);
    return id;
  };
  // Everything the run will remove exists and is tracked from the start.
  for (let i = 0; i < CYCLES; i++) {
    project(`down-${i}`);
    project(`up-${i}`);
  }
  const timing = {
    ...fastTiming,
    backoffMinMs: 5,
    backoffMaxMs: 40,
    openConfirmMs: 50,
    heartbeatMs: 400,
    heartbeatJitterMs: 50,
    syncTimeoutMs: 1000,
  };
  const logger = capturingLogger();
  const bridge = createBridge({ registry, tracker, serverUrl: ctx.proxy.url, env: {}, logger, timing, clientId: "flap" });
  ctx.bridge = bridge;
  bridge.start();
  await ctx.server.waitForStreams(1);

  const t0 = performance.now();
  for (let i = 0; i < CYCLES; i++) {
    const opened = ctx.server.stats().streamsOpened;
    await ctx.proxy.cut();
    ctx.server.removeProject(`down-${i}`, "removed while the link was down");
    removed.push(`down-${i}`);
    await new Promise((r) => setTimeout(r, i % 5));
    await ctx.proxy.pass();
    // Up again: a stream on a fresh connection.
    await eventually(
      `stream back in cycle ${i}`,
      () => ctx.server.stats().streamsOpened > opened && ctx.server.stats().openStreams >= 1,
      5000,
    );
    ctx.server.removeProject(`up-${i}`, "removed while the link was up");
    removed.push(`up-${i}`);
    if (i % 3 === 0) await new Promise((r) => setTimeout(r, 3));
  }
  const flapMs = performance.now() - t0;
  await eventually("every removal delivered", () => removed.every((id) => delivered.has(id)), 15_000);
  const settledMs = performance.now() - t0;
  // Let a few more heartbeats run: nothing may arrive twice.
  const syncsBefore = bridge.status().counters.syncs;
  await eventually("two more heartbeats", () => bridge.status().counters.syncs >= syncsBefore + 2, 5000);

  const twice = [...delivered].filter(([, n]) => n !== 1);
  assert.equal(twice, [], "delivered more than once");
  assert.equal([...delivered.keys()].sort(), [...removed].sort(), "exactly the removed projects");
  const c = bridge.status().counters;
  assert.ok(c.streamFailures >= CYCLES, `stream failures: ${c.streamFailures}`);
  assert.ok(c.removalsFromHeartbeat > 0, "the heartbeat filled gaps");
  assert.is(c.removalsFromStream + c.removalsFromHeartbeat, removed.length);
  assert.is(tracker.size, 0);
  console.log(
    `# flapping: ${CYCLES} cut/restore cycles in ${(flapMs / 1000).toFixed(1)} s, ${removed.length} removals all delivered once ` +
      `(${c.removalsFromStream} by stream, ${c.removalsFromHeartbeat} by heartbeat, ${c.duplicatesSuppressed} duplicates suppressed) ` +
      `${((settledMs - flapMs) / 1000).toFixed(2)} s after the last cycle; ${ctx.proxy.stats().accepted} TCP connections, ${c.streamFailures} stream failures`,
  );
});

flapping.run();
