import { EventEmitter } from "node:events";
import type { ClientHttp2Stream } from "node:http2";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { SimulatedClock } from "xstate";
import { ServerGoawayError } from "../../src/call-errors.js";
import { BridgeError } from "../../src/errors.js";
import { createStreamCloseWatch } from "../../src/stream-close-watch.js";

const watch = suite("stream close watch");

function fakeStream(): ClientHttp2Stream & EventEmitter {
  return Object.assign(new EventEmitter(), { rstCode: 0 }) as unknown as ClientHttp2Stream & EventEmitter;
}

/** Reads `messages` into `got` through the watch; resolves with the error the read ended with, or undefined. */
function readAll<T>(w: ReturnType<typeof createStreamCloseWatch>, messages: AsyncIterable<T>, got: T[] = []): Promise<unknown> {
  return (async () => {
    for await (const m of w.wrap(messages)) got.push(m);
  })().then(
    () => undefined,
    (e: unknown) => e,
  );
}

/** An iterable that yields `items` and then never settles unless `signal` aborts. */
async function* stalled<T>(items: T[], signal: AbortSignal): AsyncIterable<T> {
  for (const item of items) yield item;
  await new Promise((_, reject) => signal.addEventListener("abort", () => reject(new Error("aborted by signal"))));
}

watch("a stream that closes and then stays silent is abandoned with UNAVAILABLE", async () => {
  const clock = new SimulatedClock();
  const caller = new AbortController();
  const w = createStreamCloseWatch(caller.signal, { graceMs: 20, clock });
  const stream = fakeStream();
  w.attach(stream);
  const got: number[] = [];
  const run = readAll(w, stalled([1, 2], w.signal), got);
  await new Promise((r) => setImmediate(r));
  stream.emit("close");
  clock.increment(19);
  await new Promise((r) => setImmediate(r));
  assert.not.ok(w.signal.aborted, "not before the grace");
  clock.increment(1);
  const error = await run;
  assert.equal(got, [1, 2]);
  assert.ok(error instanceof BridgeError);
  assert.is((error as BridgeError).code, "unavailable");
  assert.not.ok(caller.signal.aborted, "the caller's own signal is untouched");
});

watch("messages still flowing after close are not cut short", async () => {
  const clock = new SimulatedClock();
  const w = createStreamCloseWatch(new AbortController().signal, { graceMs: 20, clock });
  const stream = fakeStream();
  w.attach(stream);
  async function* slowEnd() {
    yield 1;
    stream.emit("close");
    for (let i = 2; i <= 5; i++) {
      // Each message comes 15 ms after the consumer started waiting: within the grace, 60 ms in all.
      await new Promise((r) => setImmediate(r));
      clock.increment(15);
      yield i;
    }
  }
  const got: number[] = [];
  for await (const n of w.wrap(slowEnd())) got.push(n);
  assert.equal(got, [1, 2, 3, 4, 5]);
  assert.not.ok(w.signal.aborted);
});

watch("a call that ended normally is left alone when its stream closes", async () => {
  const clock = new SimulatedClock();
  const w = createStreamCloseWatch(new AbortController().signal, { graceMs: 5, clock });
  const stream = fakeStream();
  w.attach(stream);
  async function* two() {
    yield 1;
    yield 2;
  }
  const got: number[] = [];
  for await (const n of w.wrap(two())) got.push(n);
  stream.emit("close");
  clock.increment(1000);
  assert.equal(got, [1, 2]);
  assert.not.ok(w.signal.aborted);
});

watch("the caller's abort reaches the call's signal", () => {
  const caller = new AbortController();
  const w = createStreamCloseWatch(caller.signal);
  caller.abort(new Error("stop"));
  assert.ok(w.signal.aborted);
});

/** An iterable fed by hand: push() a message, or never settle. */
function feed<T>(signal: AbortSignal) {
  const queue: T[] = [];
  let wake: (() => void) | undefined;
  return {
    push(v: T) {
      queue.push(v);
      wake?.();
    },
    async *iterate(): AsyncIterable<T> {
      for (;;) {
        const v = queue.shift();
        if (v !== undefined) {
          yield v;
          continue;
        }
        await new Promise<void>((resolve, reject) => {
          wake = resolve;
          signal.addEventListener("abort", () => reject(new Error("aborted by signal")), { once: true });
        });
      }
    },
  };
}

const ticks = async () => {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
};

watch("re-arms after a message within the grace, on the bridge clock: a call that then hangs is abandoned (issue 10 item 8)", async () => {
  const clock = new SimulatedClock();
  const w = createStreamCloseWatch(new AbortController().signal, { graceMs: 100, clock });
  const stream = fakeStream();
  w.attach(stream);
  const f = feed<number>(w.signal);
  const got: number[] = [];
  const run = readAll(w, f.iterate(), got);
  await ticks();
  stream.emit("close");
  clock.increment(50);
  f.push(1); // progress inside the grace
  await ticks();
  clock.increment(99);
  await ticks();
  assert.not.ok(w.signal.aborted, "the grace starts again after the message");
  clock.increment(1);
  const error = await run;
  assert.equal(got, [1]);
  assert.ok(error instanceof BridgeError && error.code === "unavailable", "the hang after the late message is ended");
});

watch("the grace runs on the given clock, not Node's timers (issue 10 item 8)", async () => {
  const clock = new SimulatedClock();
  const w = createStreamCloseWatch(new AbortController().signal, { graceMs: 5, clock });
  const stream = fakeStream();
  w.attach(stream);
  const f = feed<number>(w.signal);
  const run = readAll(w, f.iterate());
  await ticks();
  stream.emit("close");
  await new Promise((r) => setTimeout(r, 30));
  assert.not.ok(w.signal.aborted, "real time alone does not end it");
  clock.increment(5);
  assert.ok((await run) instanceof BridgeError);
});

watch("GOAWAY ends the call once what was received is handed on (issue 10 item 4)", async () => {
  const clock = new SimulatedClock();
  const w = createStreamCloseWatch(new AbortController().signal, { graceMs: 100, clock });
  const f = feed<number>(w.signal);
  f.push(1);
  f.push(2);
  const got: number[] = [];
  w.goaway();
  const run = readAll(w, f.iterate(), got);
  await ticks();
  f.push(3);
  await ticks();
  clock.increment(100);
  const error = await run;
  assert.equal(got, [1, 2, 3], "nothing received is cut short");
  assert.ok(error instanceof ServerGoawayError);
});

watch.run();
