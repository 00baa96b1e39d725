/**
 * The bridge's errors under a real pino logger (issue 22 item 8): pino's
 * default `err` serialiser renders them with their type, message and code,
 * not as `{"type":"Object","stack":""}`.
 */
import { Writable } from "node:stream";
import pino from "pino";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { SimulatedClock } from "xstate";
import { createBridge, HandlerRegistry } from "../../src/index.js";
import { loggableError, safeLogger } from "../../src/logger.js";
import { eventually } from "../helpers/e2e.js";

/** A pino logger at debug writing into `lines` (synchronously). */
function pinoInto(lines: Array<Record<string, unknown>>) {
  const dest = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString("utf8").split("\n")) if (line !== "") lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return pino({ level: "debug" }, dest);
}

interface PinoErr {
  type: string;
  message: string;
  code: string;
  stack: string;
}

const withPino = suite("the bridge's errors under pino");

withPino("a stream failure's err is rendered by pino as a BridgeError with its code and message", async () => {
  const lines: Array<Record<string, unknown>> = [];
  const clock = new SimulatedClock();
  const bridge = createBridge({
    registry: new HandlerRegistry(),
    logger: pinoInto(lines),
    env: {},
    clock,
    timing: { backoffMinMs: 100 },
    client: {
      // biome-ignore lint/correctness/useYield: fails before its first message
      async *projectEvents() {
        throw Object.assign(new Error("connection refused"), { code: 14 });
      },
      syncProjectState: () => new Promise(() => {}),
    },
  });
  try {
    bridge.start();
    await eventually("the failure is logged", () => lines.find((l) => l["msg"] === "ProjectEvents failed; reconnecting after backoff"));
    const failure = lines.find((l) => l["msg"] === "ProjectEvents failed; reconnecting after backoff");
    const err = failure?.["err"] as PinoErr;
    assert.is(err.type, "BridgeError");
    assert.is(err.code, "unavailable");
    assert.is(err.message, "[unavailable] connection refused");
    assert.is(err.stack, "BridgeError: [unavailable] connection refused", "one line: a summary keeps no frames");
    const backoff = lines.find((l) => l["msg"] === "connection backoff");
    assert.is((backoff?.["err"] as PinoErr | undefined)?.type, "BridgeError", "the connection line's err too");
  } finally {
    const stopping = bridge.stop();
    clock.increment(10_000);
    await stopping;
  }
});

withPino("safeLogger hands a summary under err on as a real Error and leaves other err values alone", () => {
  const lines: Array<Record<string, unknown>> = [];
  const log = safeLogger(pinoInto(lines));
  log.warn({ err: { code: "unauthenticated", message: "bad token" }, attempt: 2 }, "summary");
  const own = new RangeError("out");
  log.warn({ err: own }, "error");
  log.warn({ err: { code: "not-a-code", message: "x" } }, "other");
  assert.equal(lines[0]?.["err"], {
    type: "BridgeError",
    message: "[unauthenticated] bad token",
    stack: "BridgeError: [unauthenticated] bad token",
    name: "BridgeError",
    code: "unauthenticated",
    rawMessage: "bad token",
  });
  assert.is(lines[0]?.["attempt"], 2);
  assert.is((lines[1]?.["err"] as PinoErr | undefined)?.type, "RangeError");
  // Only the bridge's own summaries are converted: pino renders any other plain object as one.
  assert.is((lines[2]?.["err"] as PinoErr | undefined)?.type, "Object");
});

withPino("loggableError keeps the code on a real BridgeError", () => {
  const e = loggableError({ code: "deadline_exceeded", message: "sync took too long" });
  assert.instance(e, Error);
  assert.is(e.code, "deadline_exceeded");
  assert.is(e.rawMessage, "sync took too long");
});

withPino.run();
