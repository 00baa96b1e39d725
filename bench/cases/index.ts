/** The benchmark cases by name, as bench/case-main.ts runs them. */
import { runBreakdown, type BreakdownOptions } from "./breakdown.js";
import { runDedup, type DedupOptions } from "./dedup.js";
import { runHeartbeat, type HeartbeatOptions } from "./heartbeat.js";
import { runLatency, type LatencyOptions } from "./latency.js";
import { runMemory, type MemoryOptions } from "./memory.js";
import { runReconnect, type ReconnectOptions } from "./reconnect.js";
import { runStopLatency, type StopOptions } from "./stop-latency.js";
import { runThroughput, type ThroughputOptions } from "./throughput.js";

export const cases = {
  throughput: (o: ThroughputOptions) => runThroughput(o),
  latency: (o: LatencyOptions) => runLatency(o),
  stop: (o: StopOptions) => runStopLatency(o),
  reconnect: (o: ReconnectOptions) => runReconnect(o),
  heartbeat: (o: HeartbeatOptions) => runHeartbeat(o),
  memory: (o: MemoryOptions) => runMemory(o),
  dedup: async (o: DedupOptions) => runDedup(o),
  breakdown: (o: BreakdownOptions) => runBreakdown(o),
};

export type CaseName = keyof typeof cases;

export function runCase(name: CaseName, options: Record<string, unknown>): Promise<unknown> {
  const run = (cases as Record<string, unknown>)[name] as ((o: Record<string, unknown>) => Promise<unknown>) | undefined;
  if (!run) throw new Error(`unknown bench case "${name}"; known: ${Object.keys(cases).join(", ")}`);
  return run(options);
}
