/**
 * Leak soak: 10,000 reconnect cycles on simulated time (an injected client)
 * and 1,000 on real loopback sockets (half of them on a fresh HTTP/2 session
 * through the fault proxy). After a warm-up, the heap may grow by less than
 * 5 MB after GC, the active handles must not grow, and no
 * MaxListenersExceededWarning may appear. Run by `npm run test:soak`.
 */
import v8 from "node:v8";
import vm from "node:vm";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { SimulatedClock } from "xstate";
import { create } from "@bufbuild/protobuf";
import { SyncProjectStateResponseSchema, type ProjectEvent } from "../../src/gen/engram/v1/engram_pb.js";
import {
  createBridge,
  HandlerRegistry,
  SessionTracker,
  startDevServer,
  type EventsClient,
  type ProjectEventsCallOptions,
} from "../../src/index.js";
import { eventually, fastTiming } from "../helpers/e2e.js";
import { startFaultProxy } from "../helpers/fault-proxy.js";

v8.setFlagsFromString("--expose-gc");
const gc = vm.runInNewContext("gc") as () => void;

const warnings: string[] = [];
process.on("warning", (w) => warnings.push(`${w.name}: ${w.message}`));

/** A logger that keeps only counts and the last line: a capturing logger would be the leak. */
function countingLogger() {
  const counts = { debug: 0, info: 0, warn: 0, error: 0 };
  let last = "";
  const at = (level: keyof typeof counts) => (obj: object, msg?: string) => {
    counts[level]++;
    last = `${level} ${msg ?? ""} ${JSON.stringify(obj)}`;
  };
  return { counts, last: () => last, debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}

function heapAfterGc(): number {
  for (let i = 0; i < 3; i++) gc();
  return process.memoryUsage().heapUsed;
}

/** Active resources by type, TTY and the like left out. */
function resources(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) if (r !== "TTYWrap") out[r] = (out[r] ?? 0) + 1;
  return out;
}

function total(r: Record<string, number>): number {
  return Object.values(r).reduce((a, b) => a + b, 0);
}

const settle = async () => {
  for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
};

const soak = suite("reconnect soak");

soak("10,000 reconnect cycles on simulated time: no heap growth, no handles, no listener warnings", async () => {
  const clock = new SimulatedClock();
  /** The current stream: the test opens it (headers) and then fails it. */
  let current: { opts: ProjectEventsCallOptions; fail: (err: Error) => void } | undefined;
  let streamCalls = 0;
  let syncCalls = 0;
  const client: EventsClient = {
    projectEvents(_req, opts) {
      streamCalls++;
      return {
        [Symbol.asyncIterator]() {
          let reject: ((err: Error) => void) | undefined;
          const failed = new Promise<never>((_, rej) => (reject = rej));
          const onAbort = () => reject?.(new Error("aborted"));
          opts.signal.addEventListener("abort", onAbort, { once: true });
          current = { opts, fail: (err) => reject?.(err) };
          return {
            next: () => failed.finally(() => opts.signal.removeEventListener("abort", onAbort)) as Promise<IteratorResult<ProjectEvent>>,
          };
        },
      };
    },
    syncProjectState() {
      syncCalls++;
      return Promise.resolve(create(SyncProjectStateResponseSchema, { removed: [], unknown: [] }));
    },
  };
  const tracker = new SessionTracker();
  tracker.connect("p");
  const bridge = createBridge({
    registry: new HandlerRegistry(),
    tracker,
    client,
    clock,
    random: () => 0.5,
    env: {},
    logger: countingLogger(),
    timing: { backoffMinMs: 1000, backoffMaxMs: 1000, backoffJitter: 0 },
  });
  const before = resources();
  bridge.start();
  const cycle = async () => {
    await settle();
    const c = current!;
    c.opts.onHeader?.(new Headers());
    await settle();
    c.fail(Object.assign(new Error("connection reset"), { code: 14 }));
    await settle();
    clock.increment(1000);
  };
  for (let i = 0; i < 500; i++) await cycle(); // warm-up
  const heap0 = heapAfterGc();
  const t0 = performance.now();
  for (let i = 0; i < 10_000; i++) await cycle();
  const ms = performance.now() - t0;
  const heap1 = heapAfterGc();
  const s = bridge.status();
  await bridge.stop();
  const after = resources();
  const growthMb = (heap1 - heap0) / 1e6;
  console.log(
    `# simulated: 10,000 reconnect cycles in ${(ms / 1000).toFixed(1)} s; heap ${(heap0 / 1e6).toFixed(1)} → ${(heap1 / 1e6).toFixed(1)} MB ` +
      `(${growthMb >= 0 ? "+" : ""}${growthMb.toFixed(2)} MB); ${streamCalls} streams, ${syncCalls} syncs; resources ${total(before)} → ${total(after)}`,
  );
  assert.ok(s.counters.reconnects >= 10_500, `reconnects ${s.counters.reconnects}`);
  assert.ok(syncCalls >= 10_500, "a sync on every reopen");
  assert.ok(growthMb < 5, `heap grew ${growthMb} MB`);
  assert.ok(total(after) <= total(before), `resources ${JSON.stringify(before)} → ${JSON.stringify(after)}`);
  assert.equal(
    warnings.filter((w) => /MaxListeners/.test(w)),
    [],
  );
});

soak("1,000 reconnect cycles on loopback sockets (500 on a fresh session): no heap growth, no handles", async () => {
  const server = await startDevServer();
  const proxy = await startFaultProxy({ targetPort: server.port });
  const tracker = new SessionTracker();
  tracker.connect("p");
  const bridge = createBridge({
    registry: new HandlerRegistry(),
    tracker,
    serverUrl: proxy.url,
    env: {},
    logger: countingLogger(),
    timing: { ...fastTiming, backoffMinMs: 1, backoffMaxMs: 4, openConfirmMs: 5000 },
  });
  const before = resources();
  bridge.start();
  await server.waitForStreams(1);
  const cycle = async (i: number) => {
    const opened = server.stats().streamsOpened;
    if (i % 2 === 0) {
      server.dropStreams(); // the same HTTP/2 session carries the next stream
    } else {
      await proxy.cut(); // a fresh TCP connection and HTTP/2 session
      await proxy.pass();
    }
    await eventually(`stream back (cycle ${i})`, () => server.stats().streamsOpened > opened && server.stats().openStreams === 1, 10_000);
  };
  for (let i = 0; i < 100; i++) await cycle(i); // warm-up
  const heap0 = heapAfterGc();
  const t0 = performance.now();
  for (let i = 0; i < 1000; i++) await cycle(i);
  const ms = performance.now() - t0;
  const heap1 = heapAfterGc();
  const s = bridge.status();
  await bridge.stop();
  await proxy.close();
  await server.close();
  await eventually("sockets released", () => total(resources()) <= total(before), 5000).catch(() => undefined);
  const after = resources();
  const growthMb = (heap1 - heap0) / 1e6;
  console.log(
    `# loopback: 1,000 reconnect cycles in ${(ms / 1000).toFixed(1)} s (${proxy.stats().accepted} TCP connections); heap ${(heap0 / 1e6).toFixed(1)} → ${(heap1 / 1e6).toFixed(1)} MB ` +
      `(${growthMb >= 0 ? "+" : ""}${growthMb.toFixed(2)} MB); resources ${total(before)} → ${total(after)} ${JSON.stringify(after)}`,
  );
  assert.ok(s.counters.reconnects >= 1100);
  assert.ok(proxy.stats().accepted >= 550, "half the cycles on a fresh session");
  assert.ok(growthMb < 5, `heap grew ${growthMb} MB`);
  assert.ok(total(after) <= total(before), `resources ${JSON.stringify(before)} → ${JSON.stringify(after)}`);
  assert.equal(
    warnings.filter((w) => /MaxListeners/.test(w)),
    [],
  );
});

soak.run();
