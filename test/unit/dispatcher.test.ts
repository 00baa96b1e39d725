import { suite } from "uvu";
import * as assert from "uvu/assert";
import { SimulatedClock } from "xstate";
import { type DeliveryTimes, type Dispatcher, createDispatcher } from "../../src/dispatcher.js";
import { HandlerRegistry } from "../../src/handler-registry.js";
import type { DispatchOutcome } from "../../src/removal-fan-out.js";
import type { Logger, ProjectRemovalAware, RemovalInfo } from "../../src/types.js";

interface Settled {
  projectId: string;
  outcome: DispatchOutcome;
  delivery: DeliveryTimes;
}

interface Context {
  registry: HandlerRegistry;
  clock: SimulatedClock;
  logs: Array<{ level: string; obj: Record<string, unknown>; msg: string | undefined }>;
  logger: Logger;
  settled: Settled[];
  dispatcher: Dispatcher;
}

const dispatcher = suite<Context>("dispatcher", {} as Context);

dispatcher.before.each((ctx) => {
  ctx.registry = new HandlerRegistry();
  ctx.clock = new SimulatedClock();
  ctx.logs = [];
  ctx.settled = [];
  const record = (level: string) => (obj: object, msg?: string) => void ctx.logs.push({ level, obj: obj as Record<string, unknown>, msg });
  ctx.logger = { debug: record("debug"), info: record("info"), warn: record("warn"), error: record("error") };
  ctx.dispatcher = createDispatcher({
    registry: ctx.registry,
    clock: ctx.clock,
    logger: ctx.logger,
    handlerTimeoutMs: 1000,
    now: () => ctx.clock.now(),
    onOutcome: (projectId, _info, outcome, delivery) => void ctx.settled.push({ projectId, outcome, delivery }),
  });
});

dispatcher.after.each((ctx) => {
  ctx.dispatcher.close();
});

const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const info: RemovalInfo = { source: "heartbeat" };

function handler(name: string, fn: ProjectRemovalAware["onProjectRemoved"]): ProjectRemovalAware {
  return { name, onProjectRemoved: fn };
}

/** A handler whose calls stay pending until released, one by one. */
function gate(name: string, calls: string[]) {
  const releases: Array<() => void> = [];
  const h = handler(name, (projectId) => {
    calls.push(`${name}:${projectId}`);
    return new Promise<void>((resolve) => releases.push(resolve));
  });
  return { handler: h, release: () => releases.shift()?.() };
}

dispatcher("idle() resolves at once when nothing was queued", async ({ dispatcher: d }) => {
  assert.is(d.pending, 0);
  await d.idle();
});

dispatcher("dispatch never starts inside enqueue", async (ctx) => {
  const calls: string[] = [];
  ctx.registry.register(handler("h", (id) => void calls.push(id)));
  ctx.dispatcher.enqueue("p1", info);
  assert.equal(calls, []);
  assert.is(ctx.dispatcher.pending, 1);
  await ctx.dispatcher.idle();
  assert.equal(calls, ["p1"]);
  assert.is(ctx.dispatcher.pending, 0);
});

dispatcher("a second removal starts only after the first one settled", async (ctx) => {
  const calls: string[] = [];
  const a = gate("a", calls);
  ctx.registry.register(a.handler);
  ctx.registry.register(handler("b", (id) => void calls.push(`b:${id}`)));
  ctx.dispatcher.enqueue("p1", info);
  ctx.dispatcher.enqueue("p2", info);
  assert.is(ctx.dispatcher.pending, 2);
  await flush();
  assert.equal(calls, ["a:p1"]);
  assert.is(ctx.dispatcher.pending, 2);

  ctx.clock.increment(300);
  a.release();
  await flush();
  assert.equal(calls, ["a:p1", "b:p1", "a:p2"]);
  assert.is(ctx.dispatcher.pending, 1);
  assert.equal(
    ctx.settled.map((s) => s.projectId),
    ["p1"],
  );

  ctx.clock.increment(200);
  a.release();
  await ctx.dispatcher.idle();
  assert.equal(calls, ["a:p1", "b:p1", "a:p2", "b:p2"]);
  assert.equal(
    ctx.settled.map((s) => [s.projectId, s.delivery]),
    [
      ["p1", { queuedAtMs: 0, startedAtMs: 0, settledAtMs: 300 }],
      ["p2", { queuedAtMs: 0, startedAtMs: 300, settledAtMs: 500 }],
    ],
  );
  assert.equal(ctx.dispatcher.stats(), { dispatched: 2, handlerErrors: 0, handlerTimeouts: 0, dropped: 0, alreadyQueued: 0 });
});

dispatcher("a hung handler holds the queue for exactly handlerTimeoutMs", async (ctx) => {
  const calls: string[] = [];
  ctx.registry.register(
    handler("hanger", (id) => {
      calls.push(`hanger:${id}`);
      return new Promise<void>(() => {});
    }),
  );
  ctx.registry.register(
    handler("thrower", () => {
      throw new Error("nope");
    }),
  );
  ctx.dispatcher.enqueue("p1", info);
  ctx.dispatcher.enqueue("p2", info);
  await flush();
  ctx.clock.increment(999);
  await flush();
  assert.equal(calls, ["hanger:p1"]);
  ctx.clock.increment(1);
  await flush();
  assert.equal(calls, ["hanger:p1", "hanger:p2"]);
  ctx.clock.increment(1000);
  await ctx.dispatcher.idle();
  assert.equal(ctx.dispatcher.stats(), { dispatched: 2, handlerErrors: 2, handlerTimeouts: 2, dropped: 0, alreadyQueued: 0 });
  assert.equal(
    ctx.settled.map((s) => s.outcome.failed.map((f) => `${f.name}:${f.code}`)),
    [
      ["hanger:handler_timeout", "thrower:handler_failed"],
      ["hanger:handler_timeout", "thrower:handler_failed"],
    ],
  );
});

dispatcher("close() during a hung handler drops queued removals and calls no more handlers", async (ctx) => {
  const calls: string[] = [];
  ctx.registry.register(
    handler("hanger", (id) => {
      calls.push(`hanger:${id}`);
      return new Promise<void>(() => {});
    }),
  );
  ctx.registry.register(handler("after", (id) => void calls.push(`after:${id}`)));
  ctx.dispatcher.enqueue("p1", info);
  ctx.dispatcher.enqueue("p2", info);
  ctx.dispatcher.enqueue("p3", info);
  await flush();
  assert.equal(calls, ["hanger:p1"]);

  const { dropped } = ctx.dispatcher.close();
  assert.equal(dropped, [{ projectId: "p2" }, { projectId: "p3" }]);
  assert.ok(ctx.dispatcher.closed);
  await ctx.dispatcher.idle();
  assert.is(ctx.dispatcher.pending, 0);

  ctx.dispatcher.enqueue("p4", info);
  ctx.clock.increment(10_000);
  await flush();
  assert.equal(calls, ["hanger:p1"]);
  assert.is(ctx.dispatcher.pending, 0);
  assert.ok(ctx.logs.some((l) => l.level === "debug" && l.obj["projectId"] === "p4"));
  assert.equal(ctx.dispatcher.stats(), { dispatched: 1, handlerErrors: 0, handlerTimeouts: 0, dropped: 2, alreadyQueued: 0 });
  assert.equal(
    ctx.settled.map((s) => [s.projectId, s.outcome]),
    [["p1", { delivered: 0, failed: [], skipped: 2 }]],
  );
  assert.equal(ctx.dispatcher.close(), { dropped: [] });
});

dispatcher("close() before dispatch starts calls no handler at all", async (ctx) => {
  let called = false;
  ctx.registry.register(handler("h", () => void (called = true)));
  ctx.dispatcher.enqueue("p1", info);
  assert.equal(ctx.dispatcher.close().dropped, [{ projectId: "p1" }]);
  await ctx.dispatcher.idle();
  await flush();
  assert.not.ok(called);
});

dispatcher("idle() waits for removals enqueued while it waits", async (ctx) => {
  const calls: string[] = [];
  const a = gate("a", calls);
  ctx.registry.register(a.handler);
  ctx.dispatcher.enqueue("p1", info);
  let idle = false;
  void ctx.dispatcher.idle().then(() => (idle = true));
  await flush();
  ctx.dispatcher.enqueue("p2", info);
  a.release();
  await flush();
  assert.not.ok(idle);
  a.release();
  await flush();
  assert.ok(idle);
  assert.equal(calls, ["a:p1", "a:p2"]);
});

dispatcher("empty project ids are ignored", async (ctx) => {
  ctx.dispatcher.enqueue("", info);
  assert.is(ctx.dispatcher.pending, 0);
  await ctx.dispatcher.idle();
  assert.is(ctx.dispatcher.stats().dispatched, 0);
});

dispatcher("an onOutcome callback that throws does not stop the queue", async (ctx) => {
  const calls: string[] = [];
  ctx.registry.register(handler("h", (id) => void calls.push(id)));
  const d = createDispatcher({
    registry: ctx.registry,
    clock: ctx.clock,
    logger: ctx.logger,
    handlerTimeoutMs: 10,
    onOutcome: () => {
      throw new Error("observer broke");
    },
  });
  d.enqueue("p1", info);
  d.enqueue("p2", info);
  await d.idle();
  assert.equal(calls, ["p1", "p2"]);
  assert.ok(ctx.logs.some((l) => l.level === "warn" && l.obj["projectId"] === "p1"));
  d.close();
});

/** Counts the timers armed and still pending on a SimulatedClock. */
function countTimers(clock: SimulatedClock): { armed: () => number; pending: () => number } {
  let armed = 0;
  const live = new Set<unknown>();
  const set = clock.setTimeout.bind(clock);
  const clear = clock.clearTimeout.bind(clock);
  clock.setTimeout = ((fn: (...args: unknown[]) => void, ms: number) => {
    armed += 1;
    const id = set((...args: unknown[]) => {
      live.delete(id);
      fn(...args);
    }, ms);
    live.add(id);
    return id;
  }) as typeof clock.setTimeout;
  clock.clearTimeout = ((id: number) => {
    live.delete(id);
    clear(id);
  }) as typeof clock.clearTimeout;
  return { armed: () => armed, pending: () => live.size };
}

dispatcher("fast path: synchronous handlers arm no timer; a returned promise arms one, always cleared", async (ctx) => {
  const timers = countTimers(ctx.clock);
  const calls: string[] = [];
  ctx.registry.register(handler("sync", (id) => void calls.push(`sync:${id}`)));
  ctx.registry.register(
    handler("thrower", () => {
      throw new Error("sync throw");
    }),
  );
  for (let i = 0; i < 100; i++) ctx.dispatcher.enqueue(`p${i}`, info);
  await ctx.dispatcher.idle();
  assert.is(calls.length, 100);
  assert.is(timers.armed(), 0, "a synchronous handler needs no timeout timer");
  assert.is(ctx.dispatcher.stats().handlerErrors, 100);

  ctx.registry.register(handler("async", async () => {}));
  for (let i = 0; i < 3; i++) ctx.dispatcher.enqueue(`q${i}`, info);
  await ctx.dispatcher.idle();
  assert.is(timers.armed(), 3, "one timer per promise a handler returned");
  assert.is(timers.pending(), 0, "every timer was cleared");
});

dispatcher("fast path: removals whose handlers are synchronous are drained in one loop, not one microtask each", async (ctx) => {
  const calls: string[] = [];
  ctx.registry.register(handler("a", (id) => void calls.push(`a:${id}`)));
  ctx.registry.register(handler("b", (id) => void calls.push(`b:${id}`)));
  ctx.dispatcher.enqueue("p1", info);
  ctx.dispatcher.enqueue("p2", info);
  ctx.dispatcher.enqueue("p3", info);
  assert.equal(calls, [], "never inside enqueue");
  // The drain was queued as a microtask before this await's continuation.
  await Promise.resolve();
  assert.equal(calls, ["a:p1", "b:p1", "a:p2", "b:p2", "a:p3", "b:p3"]);
  assert.is(ctx.dispatcher.pending, 0);
  assert.equal(
    ctx.settled.map((s) => s.projectId),
    ["p1", "p2", "p3"],
  );
});

dispatcher("a registry change during a dispatch applies from the next removal on, in registration order", async (ctx) => {
  const calls: string[] = [];
  const late = handler("late", (id) => void calls.push(`late:${id}`));
  let unregisterB = (): void => {};
  ctx.registry.register(
    handler("a", (id) => {
      calls.push(`a:${id}`);
      if (id === "p1") {
        unregisterB();
        ctx.registry.register(late);
      }
    }),
  );
  unregisterB = ctx.registry.register(handler("b", (id) => void calls.push(`b:${id}`)));
  const gateC = gate("c", calls);
  ctx.registry.register(gateC.handler);
  ctx.dispatcher.enqueue("p1", info);
  ctx.dispatcher.enqueue("p2", info);
  await flush();
  // p1 keeps the list it started with: b still hears it, late does not.
  assert.equal(calls, ["a:p1", "b:p1", "c:p1"]);
  gateC.release();
  await flush();
  assert.equal(calls, ["a:p1", "b:p1", "c:p1", "a:p2", "c:p2"]);
  gateC.release();
  await ctx.dispatcher.idle();
  assert.equal(calls, ["a:p1", "b:p1", "c:p1", "a:p2", "c:p2", "late:p2"]);
  assert.equal(
    ctx.registry.handlers().map((h) => h.name),
    ["a", "c", "late"],
  );
});

dispatcher("sync throw, async rejection and timeout in one removal: each counted and logged by name, the others still run", async (ctx) => {
  const calls: string[] = [];
  ctx.registry.register(
    handler("throws", () => {
      throw new Error("sync");
    }),
  );
  ctx.registry.register(handler("rejects", () => Promise.reject(new Error("async"))));
  ctx.registry.register(handler("hangs", () => new Promise<void>(() => {})));
  ctx.registry.register(handler("ok", (id) => void calls.push(id)));
  ctx.dispatcher.enqueue("p1", info);
  await flush();
  ctx.clock.increment(1000);
  await ctx.dispatcher.idle();
  assert.equal(calls, ["p1"]);
  assert.equal(ctx.dispatcher.stats(), { dispatched: 1, handlerErrors: 2, handlerTimeouts: 1, dropped: 0, alreadyQueued: 0 });
  assert.equal(
    ctx.settled[0]?.outcome.failed.map((f) => `${f.name}:${f.code}`),
    ["throws:handler_failed", "rejects:handler_failed", "hangs:handler_timeout"],
  );
  const named = ctx.logs.filter((l) => l.level === "error" || l.level === "warn").map((l) => l.obj["handler"]);
  assert.equal(named, ["throws", "rejects", "hangs"]);
});

dispatcher(
  "releaseCallingHandler(): the running handler's own code releases its call; the removal's next handlers and the queue go on",
  async (ctx) => {
    const calls: string[] = [];
    const released: Array<ReturnType<Dispatcher["releaseCallingHandler"]>> = [];
    ctx.registry.register(
      handler("stopper", (id) => {
        calls.push(`stopper:${id}`);
        released.push(ctx.dispatcher.releaseCallingHandler());
        released.push(ctx.dispatcher.releaseCallingHandler()); // a second time: no longer running
        return new Promise<void>(() => {}); // waits for what it started, forever
      }),
    );
    ctx.registry.register(handler("next", (id) => void calls.push(`next:${id}`)));
    ctx.dispatcher.enqueue("p1", info);
    ctx.dispatcher.enqueue("p2", info);
    await flush();
    assert.equal(released.slice(0, 2), [{ handler: "stopper", projectId: "p1" }, undefined]);
    assert.equal(calls, ["stopper:p1", "next:p1", "stopper:p2", "next:p2"]);
    await ctx.dispatcher.idle();
    assert.is(ctx.clock.now(), 0, "no timeout was needed");
    assert.equal(
      ctx.settled.map((s) => [s.projectId, s.outcome]),
      [
        ["p1", { delivered: 2, failed: [], skipped: 0 }],
        ["p2", { delivered: 2, failed: [], skipped: 0 }],
      ],
    );
    assert.is(ctx.dispatcher.releaseCallingHandler(), undefined, "outside a handler nothing is released");
  },
);

dispatcher("releaseCallingHandler() after the handler's first await: recognised only with trackAsyncContext", async (ctx) => {
  for (const trackAsyncContext of [true, false]) {
    const registry = new HandlerRegistry();
    const seen: Array<ReturnType<Dispatcher["releaseCallingHandler"]>> = [];
    let d!: Dispatcher;
    const other = createDispatcher({
      registry: new HandlerRegistry(),
      clock: ctx.clock,
      logger: ctx.logger,
      handlerTimeoutMs: 1000,
      trackAsyncContext,
    });
    registry.register(
      handler("late", async (id) => {
        await Promise.resolve();
        seen.push(other.releaseCallingHandler()); // another dispatcher's call is never released
        seen.push(d.releaseCallingHandler());
        await new Promise(() => {});
        void id;
      }),
    );
    d = createDispatcher({ registry, clock: ctx.clock, logger: ctx.logger, handlerTimeoutMs: 1000, trackAsyncContext });
    d.enqueue("p1", info);
    await flush();
    if (trackAsyncContext) {
      assert.equal(seen, [undefined, { handler: "late", projectId: "p1" }]);
      await d.idle();
      assert.is(d.pending, 0);
    } else {
      assert.equal(seen, [undefined, undefined]);
      assert.is(d.pending, 1, "still awaited: only its timeout ends it");
      ctx.clock.increment(1000);
      await d.idle();
      assert.is(d.stats().handlerTimeouts, 1);
    }
    d.close();
    other.close();
  }
});

dispatcher("close() names the handler that was still running", async (ctx) => {
  ctx.registry.register(handler("quick", () => {}));
  ctx.registry.register(handler("hanger", () => new Promise<void>(() => {})));
  ctx.dispatcher.enqueue("p1", info);
  await flush();
  assert.equal(ctx.dispatcher.close(), { dropped: [], interrupted: { projectId: "p1", handler: "hanger" } });
});

dispatcher.run();
