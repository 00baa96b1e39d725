import { suite } from "uvu";
import * as assert from "uvu/assert";
import { Writable } from "node:stream";
import { createLineOutput, createLogSink } from "../../src/cli/line-output.js";
import { createRemovalLineHandler } from "../../src/cli/removal-lines.js";
import { seededRandom } from "../helpers/seeded-random.js";

const lo = suite("stdout and stderr output channels (issue 20 items 1, 2)");

/** A pipe whose reader can pause, resume, go slow or go away (EPIPE). */
class TestPipe extends Writable {
  readonly received: string[] = [];
  paused = false;
  slow = false;
  private held: Array<() => void> = [];
  constructor(highWaterMark = 256) {
    super({ highWaterMark, decodeStrings: false });
  }
  override _write(chunk: string | Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    const take = () => {
      this.received.push(String(chunk));
      cb();
    };
    if (this.paused) this.held.push(take);
    else if (this.slow) setImmediate(take);
    else take();
  }
  pause(): void {
    this.paused = true;
  }
  resumeReader(): void {
    this.paused = false;
    for (const take of this.held.splice(0)) take();
  }
  /** The reader went away: the next write fails asynchronously, as EPIPE does. */
  breakPipe(): void {
    this.held = [];
    this.destroy(Object.assign(new Error("write EPIPE"), { code: "EPIPE" }));
  }
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

lo("a line's write resolves only once the stream took it without back-pressure; a paused reader pauses the writer", async () => {
  const pipe = new TestPipe(64);
  const out = createLineOutput(pipe);
  pipe.pause();
  let resolved = 0;
  const line = `${"x".repeat(99)}\n`;
  const first = out.write(line).then(() => resolved++);
  await tick();
  assert.is(resolved, 0, "over the high-water mark: the writer waits");
  pipe.resumeReader();
  await first;
  assert.is(resolved, 1);
  assert.is(await out.flush(performance.now() + 1000), 0);
  assert.equal(pipe.received, [line]);
});

lo("a caller that stops waiting (a timed-out handler) loses nothing and reorders nothing", async () => {
  const pipe = new TestPipe(16);
  const out = createLineOutput(pipe);
  pipe.pause();
  const lines = Array.from({ length: 50 }, (_, i) => `line-${i}\n`);
  // Every caller gives up at once, like a dispatcher timing its handler out.
  for (const l of lines) void out.write(l);
  assert.is(out.unwritten, 50);
  pipe.resumeReader();
  assert.is(await out.flush(performance.now() + 2000), 0);
  assert.equal(pipe.received, lines);
});

lo("the queue is bounded: past maxQueuedLines lines are dropped and counted, and flush() reports them", async () => {
  const pipe = new TestPipe(16);
  const out = createLineOutput(pipe, { maxQueuedLines: 10 });
  pipe.pause();
  for (let i = 0; i < 30; i++) void out.write(`l${i}\n`);
  // The stream's own buffer took a few, the queue ten, the rest is dropped.
  assert.ok(out.stats.dropped >= 10, `dropped ${out.stats.dropped}`);
  const notWritten = await out.flush(performance.now() + 50);
  assert.is(notWritten, 30, "every line the reader did not get is counted");
});

lo("EPIPE (an asynchronous 'error') and a write() that throws never escape; onError is called once and the lines are counted", async () => {
  const pipe = new TestPipe(16);
  let errors = 0;
  const out = createLineOutput(pipe, { onError: () => errors++ });
  pipe.pause();
  for (let i = 0; i < 5; i++) void out.write(`l${i}\n`);
  pipe.breakPipe();
  await tick();
  await out.write("after\n");
  assert.is(errors, 1);
  assert.ok(out.failed);
  assert.is(await out.flush(performance.now() + 100), 6);

  // A stream whose write() throws (written after end(), say).
  const throwing = {
    on: () => throwing,
    off: () => throwing,
    write: () => {
      throw new Error("write after end");
    },
  };
  const out2 = createLineOutput(throwing as unknown as NodeJS.WritableStream);
  await out2.write("x\n");
  assert.ok(out2.failed);
});

lo("a dead stderr turns logging off: writes are ignored and counted, never thrown; a slow one drops past its bound", async () => {
  const pipe = new TestPipe(16);
  const sink = createLogSink(pipe, { maxBufferedBytes: 100 });
  pipe.pause();
  for (let i = 0; i < 20; i++) sink.write(`${"y".repeat(20)}\n`);
  assert.ok(sink.dropped > 0, "behind by more than its bound: lines dropped");
  pipe.breakPipe();
  await tick();
  assert.ok(sink.dead);
  const before = sink.dropped;
  sink.write("after\n");
  assert.is(sink.dropped, before + 1);
  await sink.flush(performance.now() + 10);
});

/**
 * The pipe harness, in process: a removal burst through the stdout handler,
 * each call raced against a short "handler timeout" as the dispatcher does,
 * while the reader pauses, resumes, goes slow or away at random points.
 * Then the stop: a flush to a deadline. Nothing handed on may be lost
 * silently: the reader got the lines in order, each once, and what it did
 * not get is exactly what flush() reports.
 */
lo("harness: pauses, slow reads and a closed pipe at random points lose nothing silently and keep the order", async () => {
  let runs = 0;
  for (let seed = 1; seed <= 25; seed++) {
    const rand = seededRandom(seed);
    const pipe = new TestPipe(1 + Math.floor(rand() * 512));
    const logPipe = new TestPipe(64);
    const log = createLogSink(logPipe, { maxBufferedBytes: 256 });
    const out = createLineOutput(pipe, { maxQueuedLines: 1 + Math.floor(rand() * 400), onError: () => log.write("stdout failed\n") });
    const handler = createRemovalLineHandler(out.write, () => new Date(0));
    const n = 100 + Math.floor(rand() * 300);
    let closedAt: number | undefined;
    for (let i = 0; i < n; i++) {
      const r = rand();
      if (r < 0.03) pipe.pause();
      else if (r < 0.06) pipe.resumeReader();
      else if (r < 0.08) pipe.slow = !pipe.slow;
      else if (r < 0.085 && closedAt === undefined) {
        pipe.breakPipe();
        closedAt = i;
      } else if (r < 0.09) logPipe.breakPipe();
      else if (r < 0.1) logPipe.pause();
      log.write(`dispatching ${i}\n`);
      const call = handler.onProjectRemoved(`p-${i}`, { source: "heartbeat" }) as Promise<void>;
      // The dispatcher's handler timeout, shortened: sometimes it waits, sometimes it gives up.
      await Promise.race([call, new Promise((r) => setTimeout(r, rand() < 0.5 ? 0 : 2))]);
    }
    if (rand() < 0.7) pipe.resumeReader();
    const notWritten = await out.flush(performance.now() + (pipe.paused ? 20 : 2000));
    const got = pipe.received.map((l) => (JSON.parse(l) as { projectId: string }).projectId);
    const expected = Array.from({ length: n }, (_, i) => `p-${i}`);
    // In order and each once: the reader's lines are a subsequence of the burst.
    let k = 0;
    for (const id of got) {
      while (k < n && expected[k] !== id) k++;
      assert.ok(k < n, `seed ${seed}: ${id} out of order or repeated`);
      k++;
    }
    assert.is(got.length + notWritten, n, `seed ${seed}: read ${got.length} + reported ${notWritten} != ${n}`);
    if (closedAt === undefined && !pipe.paused && out.stats.dropped === 0)
      assert.is(got.length, n, `seed ${seed}: a reading reader gets every line`);
    out.dispose();
    runs++;
  }
  assert.is(runs, 25);
});

lo.run();
