import { suite } from "uvu";
import * as assert from "uvu/assert";
import { SimulatedClock } from "xstate";
import { validateBridgeOptions } from "../../src/bridge-options.js";
import { BridgeError } from "../../src/errors.js";
import { HandlerRegistry } from "../../src/handler-registry.js";
import { dispatchRemoval } from "../../src/removal-fan-out.js";
import type { Clock, Logger, ProjectRemovalAware, RemovalInfo } from "../../src/types.js";

interface LogRecord {
  level: string;
  obj: Record<string, unknown>;
  msg: string | undefined;
}

/** A SimulatedClock that also counts the timers still pending. */
class CountingClock implements Clock {
  readonly sim = new SimulatedClock();
  readonly live = new Set<unknown>();
  setTimeout(fn: (...args: unknown[]) => void, timeout: number): unknown {
    const id = this.sim.setTimeout((...args: unknown[]) => {
      this.live.delete(id);
      fn(...args);
    }, timeout);
    this.live.add(id);
    return id;
  }
  clearTimeout(id: unknown): void {
    this.live.delete(id);
    this.sim.clearTimeout(id as number);
  }
  increment(ms: number): void {
    this.sim.increment(ms);
  }
}

interface Context {
  registry: HandlerRegistry;
  clock: CountingClock;
  logs: LogRecord[];
  logger: Logger;
}

const registry = suite<Context>("handler-registry", {} as Context);

registry.before.each((ctx) => {
  ctx.registry = new HandlerRegistry();
  ctx.clock = new CountingClock();
  ctx.logs = [];
  const record = (level: string) => (obj: object, msg?: string) =>
    void ctx.logs.push({ level, obj: obj as Record<string, unknown>, msg });
  ctx.logger = { debug: record("debug"), info: record("info"), warn: record("warn"), error: record("error") };
});

registry.after.each((ctx) => {
  assert.is(ctx.clock.live.size, 0, "a timer was left behind");
});

const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const info: RemovalInfo = { source: "stream", eventId: "7" };

function handler(name: string | undefined, fn: ProjectRemovalAware["onProjectRemoved"]): ProjectRemovalAware {
  return name === undefined ? { onProjectRemoved: fn } : { name, onProjectRemoved: fn };
}

registry("register returns an unregister that is idempotent", ({ registry: r }) => {
  const h = handler("a", () => {});
  const unregister = r.register(h);
  assert.is(r.size, 1);
  unregister();
  unregister();
  assert.is(r.size, 0);
  // An old unregister does not remove a later registration of the same object.
  r.register(h);
  unregister();
  assert.is(r.size, 1);
});

registry("registering the same object twice registers it once", ({ registry: r }) => {
  const h = handler("a", () => {});
  const first = r.register(h);
  const second = r.register(h);
  assert.is(r.size, 1);
  assert.is(first, second);
});

registry("refuses a handler without onProjectRemoved", ({ registry: r }) => {
  for (const bad of [{}, { onProjectRemoved: "nope" }, null, 42]) {
    try {
      r.register(bad as unknown as ProjectRemovalAware);
      assert.unreachable("accepted a handler without onProjectRemoved");
    } catch (err) {
      assert.instance(err, BridgeError);
      assert.is((err as BridgeError).code, "invalid_argument");
    }
  }
  assert.is(r.size, 0);
});

registry("names handlers by name, else constructor, else handler#N", ({ registry: r }) => {
  class CacheEvictor implements ProjectRemovalAware {
    onProjectRemoved(): void {}
  }
  r.register(handler("named", () => {}));
  r.register(new CacheEvictor());
  r.register(handler(undefined, () => {}));
  r.register(handler("", () => {}));
  assert.equal(
    r.handlers().map((h) => h.name),
    ["named", "CacheEvictor", "handler#3", "handler#4"],
  );
});

registry("handlers() is a snapshot in registration order", ({ registry: r }) => {
  const a = handler("a", () => {});
  const b = handler("b", () => {});
  r.register(a);
  const unregisterB = r.register(b);
  const snapshot = r.handlers();
  unregisterB();
  assert.equal(snapshot.map((h) => h.handler), [a, b]);
  assert.equal(r.handlers().map((h) => h.handler), [a]);
});

registry("dispatch calls handlers in order, each awaited before the next", async (ctx) => {
  const calls: string[] = [];
  let release = (): void => {};
  ctx.registry.register(
    handler("slow", () => {
      calls.push("slow:start");
      return new Promise<void>((resolve) => {
        release = () => {
          calls.push("slow:end");
          resolve();
        };
      });
    }),
  );
  ctx.registry.register(handler("fast", (projectId, i) => void calls.push(`fast:${projectId}:${i.source}`)));
  const done = dispatchRemoval(ctx.registry, "p1", info, { timeoutMs: 1000, clock: ctx.clock, logger: ctx.logger });
  await flush();
  assert.equal(calls, ["slow:start"]);
  release();
  const outcome = await done;
  assert.equal(calls, ["slow:start", "slow:end", "fast:p1:stream"]);
  assert.equal(outcome, { delivered: 2, failed: [], skipped: 0 });
});

registry("a throwing, a rejecting and a hanging handler do not keep a healthy one from being called", async (ctx) => {
  const healthyCalls: string[] = [];
  let hangingCalled = false;
  ctx.registry.register(
    handler("thrower", () => {
      throw new Error("sync boom");
    }),
  );
  ctx.registry.register(handler("rejecter", () => Promise.reject(new TypeError("async boom"))));
  ctx.registry.register(
    handler("hanger", () => {
      hangingCalled = true;
      return new Promise<void>(() => {});
    }),
  );
  ctx.registry.register(handler("healthy", (projectId) => void healthyCalls.push(projectId)));

  let settled = false;
  const done = dispatchRemoval(ctx.registry, "p1", info, { timeoutMs: 500, clock: ctx.clock, logger: ctx.logger }).then(
    (o) => {
      settled = true;
      return o;
    },
  );
  await flush();
  assert.ok(hangingCalled);
  assert.equal(healthyCalls, []);

  ctx.clock.increment(499);
  await flush();
  assert.equal(healthyCalls, [], "the hanging handler timed out early");
  assert.not.ok(settled);

  ctx.clock.increment(1);
  await flush();
  assert.equal(healthyCalls, ["p1"]);
  const outcome = await done;
  assert.is(outcome.delivered, 1);
  assert.equal(
    outcome.failed.map((f) => [f.name, f.code]),
    [
      ["thrower", "handler_failed"],
      ["rejecter", "handler_failed"],
      ["hanger", "handler_timeout"],
    ],
  );
  assert.is(outcome.failed[0]?.message, "sync boom");
  assert.is(outcome.failed[1]?.message, "async boom");
  assert.match(outcome.failed[2]?.message ?? "", "500 ms");

  const problems = ctx.logs.filter((l) => l.level === "warn" || l.level === "error");
  assert.equal(
    problems.map((l) => [l.level, l.obj["handler"], l.obj["projectId"]]),
    [
      ["error", "thrower", "p1"],
      ["error", "rejecter", "p1"],
      ["warn", "hanger", "p1"],
    ],
  );
  assert.instance(problems[0]?.obj["err"], Error);
  assert.is((problems[2]?.obj["err"] as BridgeError).code, "handler_timeout");
});

registry("each handler gets its own full timeout, started when it is called", async (ctx) => {
  const started: number[] = [];
  const now = (): number => ctx.clock.sim.now();
  for (const name of ["h1", "h2"]) {
    ctx.registry.register(
      handler(name, () => {
        started.push(now());
        return new Promise<void>(() => {});
      }),
    );
  }
  const done = dispatchRemoval(ctx.registry, "p", info, { timeoutMs: 100, clock: ctx.clock, logger: ctx.logger });
  await flush();
  ctx.clock.increment(100);
  await flush();
  ctx.clock.increment(99);
  await flush();
  assert.is(ctx.clock.live.size, 1, "the second handler timed out early");
  ctx.clock.increment(1);
  const outcome = await done;
  assert.equal(started, [0, 100]);
  assert.is(outcome.failed.length, 2);
});

registry("a handler that settles after its timeout is not counted twice", async (ctx) => {
  let reject = (_: Error): void => {};
  ctx.registry.register(handler("late", () => new Promise<void>((_, r) => (reject = r))));
  const done = dispatchRemoval(ctx.registry, "p", info, { timeoutMs: 10, clock: ctx.clock, logger: ctx.logger });
  await flush();
  ctx.clock.increment(10);
  const outcome = await done;
  reject(new Error("too late"));
  await flush();
  assert.equal(outcome.failed.map((f) => f.code), ["handler_timeout"]);
  assert.ok(ctx.logs.some((l) => l.level === "debug" && l.obj["handler"] === "late"));
});

registry("the handler set is taken when dispatch starts", async (ctx) => {
  const calls: string[] = [];
  const late = handler("late", () => void calls.push("late"));
  ctx.registry.register(
    handler("first", () => {
      calls.push("first");
      ctx.registry.register(late);
    }),
  );
  await dispatchRemoval(ctx.registry, "p", info, { timeoutMs: 10, clock: ctx.clock, logger: ctx.logger });
  assert.equal(calls, ["first"]);
});

registry("aborting skips the rest and stops waiting for the running handler", async (ctx) => {
  const calls: string[] = [];
  ctx.registry.register(handler("hanger", () => (calls.push("hanger"), new Promise<void>(() => {}))));
  ctx.registry.register(handler("after", () => void calls.push("after")));
  const controller = new AbortController();
  const done = dispatchRemoval(ctx.registry, "p", info, {
    timeoutMs: 1000,
    clock: ctx.clock,
    logger: ctx.logger,
    signal: controller.signal,
  });
  await flush();
  controller.abort();
  const outcome = await done;
  ctx.clock.increment(5000);
  assert.equal(calls, ["hanger"]);
  assert.equal(outcome, { delivered: 0, failed: [], skipped: 2 });
});

registry("an already aborted signal calls no handler", async (ctx) => {
  let called = false;
  ctx.registry.register(handler("h", () => void (called = true)));
  const outcome = await dispatchRemoval(ctx.registry, "p", info, {
    timeoutMs: 10,
    clock: ctx.clock,
    logger: ctx.logger,
    signal: AbortSignal.abort(),
  });
  assert.not.ok(called);
  assert.is(outcome.skipped, 1);
});

registry("handlers get a frozen copy of the removal info", async (ctx) => {
  const seen: RemovalInfo[] = [];
  ctx.registry.register(
    handler("mutator", (_, i) => {
      seen.push(i);
      (i as { reason?: string }).reason = "changed";
    }),
  );
  ctx.registry.register(handler("reader", (_, i) => void seen.push(i)));
  const outcome = await dispatchRemoval(ctx.registry, "p", info, { timeoutMs: 10, clock: ctx.clock, logger: ctx.logger });
  assert.is(outcome.failed[0]?.name, "mutator");
  assert.ok(Object.isFrozen(seen[0]));
  assert.is(seen[1]?.reason, undefined);
  assert.equal(seen[1], info);
});

registry("the logger validateBridgeOptions hands on does not break dispatch when the user's logger throws", async (ctx) => {
  const boom = (): void => {
    throw new Error("logger down");
  };
  ctx.registry.register(
    handler("thrower", () => {
      throw new Error("x");
    }),
  );
  let called = false;
  ctx.registry.register(handler("ok", () => void (called = true)));
  // The one place the user's logger is wrapped: the fan-out gets it from there.
  const { logger } = validateBridgeOptions({ registry: ctx.registry, env: {}, logger: { debug: boom, info: boom, warn: boom, error: boom } });
  const outcome = await dispatchRemoval(ctx.registry, "p", info, { timeoutMs: 10, clock: ctx.clock, logger });
  assert.ok(called);
  assert.is(outcome.delivered, 1);
  assert.is(outcome.failed.length, 1);
});

registry("handlers() shares one frozen list until the registry changes", ({ registry: r }) => {
  const a = handler("a", () => {});
  const b = handler("b", () => {});
  r.register(a);
  const first = r.handlers();
  assert.ok(Object.isFrozen(first));
  assert.is(r.handlers(), first, "no copy per call while nothing changed");
  r.register(a);
  assert.is(r.handlers(), first, "registering an already registered handler changes nothing");
  const unregisterB = r.register(b);
  const second = r.handlers();
  assert.is.not(second, first);
  assert.equal(second.map((h) => h.handler), [a, b]);
  unregisterB();
  unregisterB();
  const third = r.handlers();
  assert.equal(third.map((h) => h.handler), [a]);
  assert.equal(first.map((h) => h.handler), [a], "an earlier snapshot is never changed");
  assert.equal(second.map((h) => h.handler), [a, b]);
});

registry("an already frozen info is handed on as is; an unfrozen one as a frozen copy", async (ctx) => {
  const seen: RemovalInfo[] = [];
  ctx.registry.register(handler("h", (_, i) => void seen.push(i)));
  const frozen = Object.freeze({ source: "heartbeat" as const });
  await dispatchRemoval(ctx.registry, "p", frozen, { timeoutMs: 10, clock: ctx.clock, logger: ctx.logger });
  assert.is(seen[0], frozen);
  const open: RemovalInfo = { source: "heartbeat" };
  await dispatchRemoval(ctx.registry, "p", open, { timeoutMs: 10, clock: ctx.clock, logger: ctx.logger });
  assert.is.not(seen[1], open);
  assert.ok(Object.isFrozen(seen[1]));
  assert.not.ok(Object.isFrozen(open), "the caller's object is not frozen behind its back");
});

registry.run();
