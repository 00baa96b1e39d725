/**
 * stop() latency from `streaming`: per cycle a fresh bridge connects to the
 * dev server, reaches streaming, and stop() is timed until it resolves. The
 * baseline is a bare connect-node loop: abort the call, close the session,
 * and wait for the loop to settle.
 */
import { createBenchBridge, waitForState } from "../lib/bridge-fixture.js";
import { connectNodeLoop } from "../lib/raw-clients.js";
import { startServerProcess } from "../lib/server-handle.js";
import { percentile, RunSet, sortNumbers, type Spread } from "../lib/stats.js";

export interface StopOptions {
  cycles: number;
  runs: number;
  warmupCycles: number;
}

export interface StopResult {
  cycles: number;
  runs: number;
  /** ms; each Spread is over runs of `cycles` cycles. */
  bridge: { p50: Spread; p99: Spread; max: Spread };
  raw: { p50: Spread; p99: Spread; max: Spread };
  /** Every bridge stop() resolved and left the bridge in `stopped`. */
  verified: { stopped: number; expected: number };
}

export async function runStopLatency(options: StopOptions): Promise<StopResult> {
  const server = await startServerProcess();
  const bridgeSet = new RunSet<"p50" | "p99" | "max">();
  const rawSet = new RunSet<"p50" | "p99" | "max">();
  let stopped = 0;
  const bridgeCycle = async (): Promise<number> => {
    // openConfirmMs short: the dev server sends headers only with the first message.
    const { bridge } = createBenchBridge({ url: server.url, timing: { openConfirmMs: 5 } });
    bridge.start();
    await waitForState(bridge, "streaming");
    const t0 = performance.now();
    await bridge.stop();
    const ms = performance.now() - t0;
    if (bridge.status().state === "stopped") stopped++;
    return ms;
  };
  const rawCycle = async (): Promise<number> => {
    const loop = connectNodeLoop(server.url, () => {});
    await server.waitForStreams(1);
    const t0 = performance.now();
    loop.close();
    await loop.done.catch(() => {});
    return performance.now() - t0;
  };
  try {
    for (let i = 0; i < options.warmupCycles; i++) {
      await bridgeCycle();
      await rawCycle();
    }
    stopped = 0;
    for (let r = 0; r < options.runs; r++) {
      const b: number[] = [];
      const raw: number[] = [];
      for (let i = 0; i < options.cycles; i++) {
        b.push(await bridgeCycle());
        raw.push(await rawCycle());
      }
      const sb = sortNumbers(b);
      const sr = sortNumbers(raw);
      bridgeSet.add("p50", percentile(sb, 50));
      bridgeSet.add("p99", percentile(sb, 99));
      bridgeSet.add("max", sb[sb.length - 1] as number);
      rawSet.add("p50", percentile(sr, 50));
      rawSet.add("p99", percentile(sr, 99));
      rawSet.add("max", sr[sr.length - 1] as number);
    }
  } finally {
    await server.close();
  }
  return {
    cycles: options.cycles,
    runs: options.runs,
    bridge: { p50: bridgeSet.get("p50"), p99: bridgeSet.get("p99"), max: bridgeSet.get("max") },
    raw: { p50: rawSet.get("p50"), p99: rawSet.get("p99"), max: rawSet.get("max") },
    verified: { stopped, expected: options.cycles * options.runs },
  };
}
