import { EventEmitter } from "node:events";
import type { ClientHttp2Stream } from "node:http2";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { BridgeError } from "../../src/errors.js";
import { createStreamCloseWatch } from "../../src/stream-close-watch.js";

const watch = suite("stream close watch");

function fakeStream(): ClientHttp2Stream & EventEmitter {
  return Object.assign(new EventEmitter(), { rstCode: 0 }) as unknown as ClientHttp2Stream & EventEmitter;
}

/** An iterable that yields `items` and then never settles unless `signal` aborts. */
async function* stalled<T>(items: T[], signal: AbortSignal): AsyncIterable<T> {
  for (const item of items) yield item;
  await new Promise((_, reject) => signal.addEventListener("abort", () => reject(new Error("aborted by signal"))));
}

watch("a stream that closes and then stays silent is abandoned with UNAVAILABLE", async () => {
  const caller = new AbortController();
  const w = createStreamCloseWatch(caller.signal, { graceMs: 20 });
  const stream = fakeStream();
  w.attach(stream);
  const got: number[] = [];
  const run = (async () => {
    for await (const n of w.wrap(stalled([1, 2], w.signal))) got.push(n);
  })();
  await new Promise((r) => setImmediate(r));
  stream.emit("close");
  const error = await run.then(() => undefined, (e: unknown) => e);
  assert.equal(got, [1, 2]);
  assert.ok(error instanceof BridgeError);
  assert.is((error as BridgeError).code, "unavailable");
  assert.not.ok(caller.signal.aborted, "the caller's own signal is untouched");
});

watch("messages still flowing after close are not cut short", async () => {
  const w = createStreamCloseWatch(new AbortController().signal, { graceMs: 20 });
  const stream = fakeStream();
  w.attach(stream);
  async function* slowEnd() {
    yield 1;
    stream.emit("close");
    for (let i = 2; i <= 5; i++) {
      await new Promise((r) => setTimeout(r, 5));
      yield i;
    }
  }
  const got: number[] = [];
  for await (const n of w.wrap(slowEnd())) got.push(n);
  assert.equal(got, [1, 2, 3, 4, 5]);
  assert.not.ok(w.signal.aborted);
});

watch("a call that ended normally is left alone when its stream closes", async () => {
  const w = createStreamCloseWatch(new AbortController().signal, { graceMs: 5 });
  const stream = fakeStream();
  w.attach(stream);
  async function* two() {
    yield 1;
    yield 2;
  }
  const got: number[] = [];
  for await (const n of w.wrap(two())) got.push(n);
  stream.emit("close");
  await new Promise((r) => setTimeout(r, 15));
  assert.equal(got, [1, 2]);
  assert.not.ok(w.signal.aborted);
});

watch("the caller's abort reaches the call's signal", () => {
  const caller = new AbortController();
  const w = createStreamCloseWatch(caller.signal);
  caller.abort(new Error("stop"));
  assert.ok(w.signal.aborted);
});

watch.run();
