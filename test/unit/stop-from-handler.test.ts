/**
 * stop() awaited from inside a removal handler (issue 10 item 11): the
 * handler waits for stop(), so stop() must not wait for that handler.
 * test/unit/dispatcher.test.ts covers the recognition after an await
 * (trackAsyncContext). The
 * bridge runs on a SimulatedClock that the tests never advance: the stop
 * budget's timer cannot fire, so a stop() that waits for its caller never
 * resolves, and one that resolves did so without the budget.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { SimulatedClock } from "xstate";
import { asyncContextIsCheap } from "../../src/dispatcher.js";
import { createBridge, HandlerRegistry, type Bridge } from "../../src/index.js";
import { ProjectEventType } from "../../src/gen/engram/v1/engram_pb.js";
import { capturingLogger, eventually, type CapturingLogger } from "../helpers/e2e.js";
import { createScriptedServer, type ScriptedServer } from "../helpers/graph-server.js";

interface Ctx {
  clock: SimulatedClock;
  server: ScriptedServer;
  registry: HandlerRegistry;
  logger: CapturingLogger;
  bridges: Bridge[];
}

const test = suite<Ctx>("stop() from inside a handler");

test.before.each((ctx) => {
  ctx.clock = new SimulatedClock();
  ctx.server = createScriptedServer({ now: () => ctx.clock.now(), onSync: (call) => call.answer() });
  ctx.registry = new HandlerRegistry();
  ctx.logger = capturingLogger();
  ctx.bridges = [];
});

test.after.each(async (ctx) => {
  // Whatever a test left running: let the budget pass so every stop resolves.
  const stops = ctx.bridges.map((b) => b.stop());
  ctx.clock.increment(60_000);
  await Promise.all(stops);
});

function make(ctx: Ctx, registry = ctx.registry): Bridge {
  const bridge = createBridge({
    client: ctx.server.client,
    registry,
    clock: ctx.clock,
    logger: ctx.logger,
    env: {},
    clientId: "stop-from-handler",
    timing: { stopTimeoutMs: 5000, handlerTimeoutMs: 60_000 },
  });
  ctx.bridges.push(bridge);
  return bridge;
}

async function streamRemovals(ctx: Ctx, bridge: Bridge, ids: string[]): Promise<void> {
  bridge.start();
  await eventually("the stream is open", () => ctx.server.openStreams() === 1, 5000);
  const stream = ctx.server.currentStream();
  stream.sendHeaders();
  for (const projectId of ids) stream.send({ eventType: ProjectEventType.REMOVED, projectId });
}

/** Resolves true when `p` settles within `ms` of real time, false otherwise; the clock stays put. */
async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const gaveUp = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([p.then(() => true as const), gaveUp]);
  } finally {
    clearTimeout(timer);
  }
}

test("a handler that awaits bridge.stop(): stop resolves without the budget, says so, blames no handler", async (ctx) => {
  const calls: string[] = [];
  let stopInHandler: Promise<void> | undefined;
  let bridge!: Bridge;
  ctx.registry.register({
    name: "stopper",
    async onProjectRemoved(projectId) {
      calls.push(`stopper:${projectId}`);
      stopInHandler = bridge.stop();
      await stopInHandler;
      calls.push(`stopper done:${projectId}`);
    },
  });
  ctx.registry.register({ name: "after", onProjectRemoved: (projectId) => void calls.push(`after:${projectId}`) });
  bridge = make(ctx);
  await streamRemovals(ctx, bridge, ["p1"]);
  await eventually("the handler called stop()", () => stopInHandler !== undefined, 5000);

  assert.ok(await settlesWithin(stopInHandler as Promise<void>, 5000), "stop() waited for the handler that awaits it");
  assert.is(ctx.clock.now(), 0, "the clock never moved: no budget timer resolved the stop");
  assert.is(bridge.status().state, "stopped");
  // The removal's other handler still ran; the caller finished after the stop.
  assert.ok(calls.includes("after:p1"), calls.join(","));
  await eventually("the handler finished after stop() resolved", () => calls.includes("stopper done:p1"), 5000);

  const said = ctx.logger.lines.find((l) => /called from inside removal handler stopper/.test(l.msg ?? ""));
  assert.ok(said, "the log says stop() came from a handler");
  assert.equal(said?.obj, { handler: "stopper", projectId: "p1" });
  assert.not.ok(
    ctx.logger.lines.some((l) => /ran out of budget|still running/.test(l.msg ?? "")),
    "no handler is blamed for a stop it made itself",
  );
  const counters = bridge.status().counters;
  assert.is(counters.handlerErrors, 0);
  assert.is(counters.handlerTimeouts, 0);
});

test("stop() already running from outside, then awaited by the next removal's handler: that handler is released too", async (ctx) => {
  const calls: string[] = [];
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let bridge!: Bridge;
  ctx.registry.register({
    name: "cleanup",
    async onProjectRemoved(projectId) {
      calls.push(`cleanup:${projectId}`);
      if (projectId === "p1") return gate;
      await bridge.stop();
      calls.push(`cleanup done:${projectId}`);
    },
  });
  bridge = make(ctx);
  await streamRemovals(ctx, bridge, ["p1", "p2"]);
  await eventually(
    "p1 is in the handler, p2 queued",
    () => calls.includes("cleanup:p1") && bridge.status().counters.pendingDispatch === 2,
    5000,
  );
  const outside = bridge.stop();
  release();
  assert.ok(await settlesWithin(outside, 5000), "stop() waited for the handler that awaits it");
  assert.is(ctx.clock.now(), 0);
  assert.ok(calls.includes("cleanup:p2"), "the queued removal was dispatched during the stop");
  assert.ok(ctx.logger.lines.some((l) => /called from inside removal handler cleanup \(project p2\)/.test(l.msg ?? "")));
  assert.not.ok(ctx.logger.lines.some((l) => /ran out of budget/.test(l.msg ?? "")));
});

test("stop() awaited after the handler's first await: before Node.js 24 the budget applies and the log names the handler and the cause", async (ctx) => {
  let stopInHandler: Promise<void> | undefined;
  let bridge!: Bridge;
  ctx.registry.register({
    name: "late-stopper",
    async onProjectRemoved() {
      await Promise.resolve();
      stopInHandler = bridge.stop();
      await stopInHandler;
    },
  });
  bridge = make(ctx);
  await streamRemovals(ctx, bridge, ["p1"]);
  await eventually("the handler called stop()", () => stopInHandler !== undefined, 5000);
  if (asyncContextIsCheap) {
    // Node.js 24+: the handler's async context is tracked, so it is recognised after an await too.
    assert.ok(await settlesWithin(stopInHandler as Promise<void>, 5000));
    assert.is(ctx.clock.now(), 0);
    assert.ok(ctx.logger.lines.some((l) => /called from inside removal handler late-stopper/.test(l.msg ?? "")));
    return;
  }
  assert.not.ok(await settlesWithin(stopInHandler as Promise<void>, 20), "waits for the budget");
  ctx.clock.increment(5000);
  assert.ok(await settlesWithin(stopInHandler as Promise<void>, 5000));
  const line = ctx.logger.lines.find((l) => /ran out of budget/.test(l.msg ?? ""));
  assert.ok(line);
  assert.is((line?.obj as { handler?: string } | undefined)?.handler, "late-stopper");
  assert.match(line?.msg ?? "", /late-stopper/);
  assert.match(line?.msg ?? "", /awaits stop\(\) after its first await: that is not recognised before Node.js 24/);
});

test("a handler of another bridge stopping this one is awaited as usual (only a bridge's own handler is released)", async (ctx) => {
  const other = make(ctx, new HandlerRegistry());
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let stopOther: Promise<void> | undefined;
  ctx.registry.register({
    name: "stops-another",
    async onProjectRemoved() {
      stopOther = other.stop();
      await gate;
    },
  });
  const bridge = make(ctx);
  await streamRemovals(ctx, bridge, ["p1"]);
  await eventually("the handler stopped the other bridge", () => stopOther !== undefined, 5000);
  assert.ok(await settlesWithin(stopOther as Promise<void>, 5000));
  assert.not.ok(ctx.logger.lines.some((l) => /called from inside removal handler/.test(l.msg ?? "")));
  // This bridge still waits for its handler when stopped from outside.
  const stopThis = bridge.stop();
  assert.not.ok(await settlesWithin(stopThis, 50), "the running handler is awaited");
  release();
  assert.ok(await settlesWithin(stopThis, 5000));
});

test("a handler that stops the bridge and then rejects: stop is prompt, the rejection is still logged by name", async (ctx) => {
  let stopInHandler: Promise<void> | undefined;
  let bridge!: Bridge;
  ctx.registry.register({
    name: "stop-then-fail",
    async onProjectRemoved() {
      stopInHandler = bridge.stop();
      await stopInHandler;
      throw new Error("failed after stopping");
    },
  });
  bridge = make(ctx);
  await streamRemovals(ctx, bridge, ["p1"]);
  await eventually("the handler called stop()", () => stopInHandler !== undefined, 5000);
  assert.ok(await settlesWithin(stopInHandler as Promise<void>, 5000));
  assert.is(ctx.clock.now(), 0);
  const failed = await eventually(
    "the late rejection is logged",
    () => ctx.logger.lines.find((l) => l.level === "error" && /failed after it stopped the bridge/.test(l.msg ?? "")),
    5000,
  );
  assert.is((failed.obj as { handler?: string }).handler, "stop-then-fail");
});

test.run();
