import { suite } from "uvu";
import * as assert from "uvu/assert";
import { BridgeError } from "../../src/errors.js";
import { createStderrLogger, noopLogger, safeLogger } from "../../src/logger.js";
import type { Logger } from "../../src/types.js";

interface Context {
  lines: string[];
}

const logger = suite<Context>("logger", { lines: [] });

logger.before.each((ctx) => {
  ctx.lines = [];
});

const parse = (line: string | undefined): Record<string, unknown> => JSON.parse(line ?? "null") as Record<string, unknown>;

logger("writes pino-style JSON lines with numeric level, time, name and msg", (ctx) => {
  const log = createStderrLogger({ level: "debug", write: (l) => ctx.lines.push(l), now: () => 1234 });
  log.warn({ projectId: "p1" }, "something happened");
  assert.is(ctx.lines.length, 1);
  assert.ok(ctx.lines[0]?.endsWith("}\n"));
  assert.is(ctx.lines[0], '{"level":40,"time":1234,"name":"engram-serverevents","msg":"something happened","projectId":"p1"}\n');
});

logger("uses pino's numbers for each level", (ctx) => {
  const log = createStderrLogger({ level: "debug", write: (l) => ctx.lines.push(l) });
  log.debug({});
  log.info({});
  log.warn({});
  log.error({});
  assert.equal(
    ctx.lines.map((l) => parse(l)["level"]),
    [20, 30, 40, 50],
  );
});

logger("writes only warn and above by default", (ctx) => {
  const log = createStderrLogger({ write: (l) => ctx.lines.push(l) });
  log.debug({}, "d");
  log.info({}, "i");
  log.warn({}, "w");
  log.error({}, "e");
  assert.equal(
    ctx.lines.map((l) => parse(l)["msg"]),
    ["w", "e"],
  );
});

logger("writes nothing at level silent", (ctx) => {
  const log = createStderrLogger({ level: "silent", write: (l) => ctx.lines.push(l) });
  log.error({}, "e");
  assert.is(ctx.lines.length, 0);
});

logger("refuses an unknown level", () => {
  try {
    createStderrLogger({ level: "verbose" as "debug" });
    assert.unreachable("should have thrown");
  } catch (err) {
    assert.instance(err, BridgeError);
    assert.is((err as BridgeError).code, "invalid_config");
  }
});

logger("serialises errors as type, message and code without a stack", (ctx) => {
  const log = createStderrLogger({ write: (l) => ctx.lines.push(l), name: "test" });
  const plain = new TypeError("bad thing");
  log.error({ err: new BridgeError("handler x timed out", "handler_timeout"), nested: { cause: plain } }, "failed");
  const rec = parse(ctx.lines[0]);
  assert.is(rec["name"], "test");
  assert.equal(rec["err"], { type: "BridgeError", message: "handler x timed out", code: "handler_timeout" });
  assert.equal(rec["nested"], { cause: { type: "TypeError", message: "bad thing" } });
  assert.not.match(ctx.lines[0] ?? "", "stack");
});

logger("an Error passed as the object is written under err", (ctx) => {
  const log = createStderrLogger({ write: (l) => ctx.lines.push(l) });
  log.error(new RangeError("out"), "boom");
  assert.equal(parse(ctx.lines[0])["err"], { type: "RangeError", message: "out" });
});

logger("keeps its own fields when the object has the same keys", (ctx) => {
  const log = createStderrLogger({ write: (l) => ctx.lines.push(l), now: () => 5 });
  log.warn({ level: "x", time: "y", name: "z", msg: "obj msg" }, "real msg");
  log.warn({ msg: "only msg" });
  const [a, b] = ctx.lines.map((l) => parse(l));
  assert.equal(a, { level: 40, time: 5, name: "engram-serverevents", msg: "real msg" });
  assert.is(b?.["msg"], "only msg");
});

logger("writes bigints as strings and cycles as [Circular]", (ctx) => {
  const log = createStderrLogger({ write: (l) => ctx.lines.push(l) });
  const loop: Record<string, unknown> = { id: 1n };
  loop["self"] = loop;
  log.warn({ loop, serverTime: 1700000000000n }, "odd values");
  const rec = parse(ctx.lines[0]);
  assert.equal(rec["loop"], { id: "1", self: "[Circular]" });
  assert.is(rec["serverTime"], "1700000000000");
});

logger("never throws when the sink throws", () => {
  const log = createStderrLogger({
    write: () => {
      throw new Error("EPIPE");
    },
  });
  log.error({}, "lost");
});

logger("safeLogger swallows throwing methods and rejected promises", async () => {
  const calls: string[] = [];
  const bad: Logger = {
    debug: () => {
      throw new Error("debug broke");
    },
    info: () => Promise.reject(new Error("async broke")) as unknown as undefined,
    warn: (_obj, msg) => {
      calls.push(`warn:${msg ?? ""}`);
    },
    error: undefined as unknown as Logger["error"],
  };
  const safe = safeLogger(bad);
  safe.debug({}, "a");
  safe.info({}, "b");
  safe.warn({}, "c");
  safe.error({}, "d");
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(calls, ["warn:c"]);
});

logger("safeLogger passes arguments through and is idempotent", () => {
  const seen: unknown[][] = [];
  const inner: Logger = {
    debug: (...args) => void seen.push(["debug", ...args]),
    info: (...args) => void seen.push(["info", ...args]),
    warn: (...args) => void seen.push(["warn", ...args]),
    error: (...args) => void seen.push(["error", ...args]),
  };
  const safe = safeLogger(inner);
  assert.is(safeLogger(safe), safe);
  safe.info({ a: 1 }, "m");
  safe.error({ b: 2 });
  assert.equal(seen, [
    ["info", { a: 1 }, "m"],
    ["error", { b: 2 }],
  ]);
});

logger("the noop logger accepts every level and writes nothing", () => {
  noopLogger.debug({}, "x");
  noopLogger.error({ err: new Error("x") });
  assert.is(safeLogger(noopLogger), noopLogger);
});

logger.run();
