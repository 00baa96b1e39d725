/**
 * Memory: heap of one idle bridge (created, not started), heap of 1,000 idle
 * bridges in one process, and what one open stream adds: the heap and RSS of
 * a streaming bridge against a bare connect-node stream. Needs --expose-gc
 * (bench/run.ts runs every case in a child process that has it).
 */
import { execFileSync } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { bridgeMachine } from "../../machines/bridge.machine.js";
import { createBridge, HandlerRegistry, type Bridge } from "../../src/index.js";
import { createBenchBridge, defaultLogger, waitForState } from "../lib/bridge-fixture.js";
import { connectNodeLoop, type StreamLoop } from "../lib/raw-clients.js";
import { startServerProcess } from "../lib/server-handle.js";
import { RunSet, sleep, spread, type Spread } from "../lib/stats.js";

/** Readings of one idle bridge per run; the run's figure is their median. */
const ONE_READINGS = 9;

export interface MemoryOptions {
  runs: number;
  /** Bridges created at once for the per-bridge average. */
  fleet: number;
  /** Streams opened at once for the per-stream average. */
  streams: number;
}

export interface MemoryResult {
  runs: number;
  fleet: number;
  streams: number;
  /** Bytes of heap held by one idle bridge (one created alone). */
  idleBridgeHeapBytes: Spread;
  /** Bytes of heap held by `fleet` idle bridges, and per bridge. */
  fleetHeapBytes: Spread;
  fleetHeapPerBridgeBytes: Spread;
  /**
   * The same two figures for the compiled package (built into a scratch dir, run
   * by plain node): what users run. Under tsx every named function costs
   * more heap (see bench/lib/idle-heap-compiled.mjs).
   */
  compiledIdleBridgeHeapBytes?: Spread;
  compiledFleetHeapPerBridgeBytes?: Spread;
  /** One `bridgeMachine.provide()`: the statechart copy each createBridge made before the machine was shared, per copy. */
  providedMachineHeapBytes: Spread;
  /** Per open stream (averaged over `streams`): heap and RSS, bridge vs bare connect-node. */
  bridgeStreamHeapBytes: Spread;
  rawStreamHeapBytes: Spread;
  bridgeStreamRssBytes: Spread;
  rawStreamRssBytes: Spread;
}

function gc(): void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (!g) throw new Error("memory bench needs node --expose-gc");
  g();
  g();
}

async function settled(): Promise<NodeJS.MemoryUsage> {
  await sleep(20);
  gc();
  await sleep(5);
  gc();
  return process.memoryUsage();
}

function idleBridge(): Bridge {
  const registry = new HandlerRegistry();
  registry.register({ name: "noop", onProjectRemoved() {} });
  return createBridge({ registry, env: {}, serverUrl: "http://127.0.0.1:9", logger: defaultLogger, clientId: "mem" });
}

/**
 * Builds the package (scripts/build.mjs) into a scratch directory under
 * node_modules/.cache (so that its imports resolve; dist/ is left alone for
 * the tests that use it) and measures idle bridges of it in plain node.
 */
function compiledIdleHeap(fleet: number, runs: number): Array<{ one: number; perBridge: number }> {
  const root = fileURLToPath(new URL("../..", import.meta.url));
  const outDir = join(root, "node_modules", ".cache", `bench-compiled-${process.pid}`);
  try {
    execFileSync(process.execPath, [join(root, "scripts", "build.mjs"), "--out-dir", outDir], { cwd: root, stdio: "ignore" });
    const index = pathToFileURL(join(outDir, "src", "index.js")).href;
    return Array.from({ length: runs }, () => {
      const out = execFileSync(
        process.execPath,
        ["--expose-gc", join(root, "bench", "lib", "idle-heap-compiled.mjs"), index, String(fleet)],
        { cwd: root, encoding: "utf8" },
      );
      return JSON.parse(out) as { one: number; perBridge: number };
    });
  } finally {
    rmSync(outDir, { recursive: true, force: true });
  }
}

export async function runMemory(options: MemoryOptions): Promise<MemoryResult> {
  const set = new RunSet<keyof Omit<MemoryResult, "runs" | "fleet" | "streams">>();
  for (const compiled of compiledIdleHeap(options.fleet, options.runs)) {
    set.add("compiledIdleBridgeHeapBytes", compiled.one);
    set.add("compiledFleetHeapPerBridgeBytes", compiled.perBridge);
  }
  const server = await startServerProcess();
  try {
    // Warm-up: one streaming bridge loads what streaming needs (http2, connect-node, protobuf code).
    {
      const first = createBenchBridge({ url: server.url, timing: { openConfirmMs: 5 } });
      first.bridge.start();
      await waitForState(first.bridge, "streaming");
      await server.waitForStreams(1);
      await first.bridge.stop();
      await server.waitForStreamsClosed(0);
    }
    // Warm-up: shapes, feedback vectors and lazily loaded modules are not a bridge's own cost.
    for (let i = 0; i < 20; i++) idleBridge();
    const warm: StreamLoop = connectNodeLoop(server.url, () => {});
    await server.waitForStreams(1);
    warm.close();
    await server.waitForStreamsClosed(0);

    for (let r = 0; r < options.runs; r++) {
      const keep: Bridge[] = [];
      // One bridge alone: the median of ONE_READINGS readings. A GC can free
      // something else between two readings (a closed stream's session torn
      // down late on a loaded machine), so one reading alone may even come out
      // negative; idle-heap-compiled.mjs does the same.
      const ones: number[] = [];
      for (let i = 0; i < ONE_READINGS; i++) {
        const a0 = await settled();
        keep.push(idleBridge());
        const a1 = await settled();
        ones.push(a1.heapUsed - a0.heapUsed);
      }
      set.add("idleBridgeHeapBytes", spread(ones).median);

      const b0 = await settled();
      for (let i = 0; i < options.fleet; i++) keep.push(idleBridge());
      const b1 = await settled();
      set.add("fleetHeapBytes", b1.heapUsed - b0.heapUsed);
      set.add("fleetHeapPerBridgeBytes", (b1.heapUsed - b0.heapUsed) / options.fleet);
      keep.length = 0;

      const machines: unknown[] = [];
      const m0 = await settled();
      for (let i = 0; i < options.fleet; i++) machines.push(bridgeMachine.provide({}));
      const m1 = await settled();
      set.add("providedMachineHeapBytes", (m1.heapUsed - m0.heapUsed) / options.fleet);
      machines.length = 0;

      // Open streams: bridges, then bare connect-node loops, `streams` at a time.
      const c0 = await settled();
      const bridges = Array.from(
        { length: options.streams },
        () => createBenchBridge({ url: server.url, timing: { openConfirmMs: 5 } }).bridge,
      );
      for (const b of bridges) b.start();
      for (const b of bridges) await waitForState(b, "streaming");
      await server.waitForStreams(options.streams);
      const c1 = await settled();
      set.add("bridgeStreamHeapBytes", (c1.heapUsed - c0.heapUsed) / options.streams);
      set.add("bridgeStreamRssBytes", (c1.rss - c0.rss) / options.streams);
      await Promise.all(bridges.map((b) => b.stop()));
      await server.waitForStreamsClosed(0);

      const d0 = await settled();
      const loops = Array.from({ length: options.streams }, () => connectNodeLoop(server.url, () => {}));
      await server.waitForStreams(options.streams);
      const d1 = await settled();
      set.add("rawStreamHeapBytes", (d1.heapUsed - d0.heapUsed) / options.streams);
      set.add("rawStreamRssBytes", (d1.rss - d0.rss) / options.streams);
      for (const l of loops) l.close();
      await server.waitForStreamsClosed(0);
    }
  } finally {
    await server.close();
  }
  return {
    runs: options.runs,
    fleet: options.fleet,
    streams: options.streams,
    idleBridgeHeapBytes: set.get("idleBridgeHeapBytes"),
    fleetHeapBytes: set.get("fleetHeapBytes"),
    fleetHeapPerBridgeBytes: set.get("fleetHeapPerBridgeBytes"),
    providedMachineHeapBytes: set.get("providedMachineHeapBytes"),
    compiledIdleBridgeHeapBytes: set.get("compiledIdleBridgeHeapBytes"),
    compiledFleetHeapPerBridgeBytes: set.get("compiledFleetHeapPerBridgeBytes"),
    bridgeStreamHeapBytes: set.get("bridgeStreamHeapBytes"),
    rawStreamHeapBytes: set.get("rawStreamHeapBytes"),
    bridgeStreamRssBytes: set.get("bridgeStreamRssBytes"),
    rawStreamRssBytes: set.get("rawStreamRssBytes"),
  };
}
