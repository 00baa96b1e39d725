/**
 * Heartbeat cost with many tracked ids: the bridge's SyncProjectState round
 * (ids read from a SessionTracker, de-duplicated, chunked by 10,000, sent,
 * answers merged and passed through the machine) against a bare connect-node
 * client sending the same chunks, prepared in advance. All ids are live
 * projects on the server, so nothing is dispatched.
 */
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { SessionTracker } from "../../src/index.js";
import { EngramService } from "../../src/gen/engram/v1/engram_pb.js";
import { createBenchBridge, waitForState } from "../lib/bridge-fixture.js";
import { startServerProcess } from "../lib/server-handle.js";
import { RunSet, type Spread } from "../lib/stats.js";

export interface HeartbeatOptions {
  sizes: number[];
  runs: number;
}

export interface HeartbeatRow {
  ids: number;
  /** ms from syncNow() to the machine's syncCompleted. */
  bridgeMs: Spread;
  /** ms for the bare client's chunked calls. */
  rawMs: Spread;
  /** Client CPU ms of one bridge round / of one raw round. */
  bridgeCpuMs: Spread;
  rawCpuMs: Spread;
  /** bridgeMs / rawMs per run. */
  ratio: Spread;
}

export interface HeartbeatResult {
  runs: number;
  rows: HeartbeatRow[];
  verified: { syncsAnswered: number; idsReportedPerRound: Record<string, number> };
}

const CHUNK = 10_000;

export async function runHeartbeat(options: HeartbeatOptions): Promise<HeartbeatResult> {
  const server = await startServerProcess();
  const rows: HeartbeatRow[] = [];
  const reported: Record<string, number> = {};
  let answered = 0;
  try {
    const maxIds = Math.max(...options.sizes);
    await server.createProjects(maxIds, "hb-");
    const manager = new Http2SessionManager(server.url);
    const raw = createClient(EngramService, createGrpcTransport({ baseUrl: server.url, sessionManager: manager }));
    for (const size of options.sizes) {
      const tracker = new SessionTracker();
      const ids: string[] = [];
      for (let i = 0; i < size; i++) {
        ids.push(`hb-${i}`);
        tracker.connect(`hb-${i}`);
      }
      const chunks: string[][] = [];
      for (let i = 0; i < ids.length; i += CHUNK) chunks.push(ids.slice(i, i + CHUNK));
      const { bridge } = createBenchBridge({ url: server.url, tracker, timing: { openConfirmMs: 5 } });
      let lastReported = 0;
      let completions = 0;
      let onCompleted: (() => void) | undefined;
      bridge.actor.on("syncCompleted", (e) => {
        lastReported = e.result.reported;
        completions++;
        onCompleted?.();
      });
      bridge.start();
      await waitForState(bridge, "streaming");
      while (completions < 1) await new Promise((r) => setTimeout(r, 1));
      const bridgeRound = async (): Promise<{ ms: number; cpuMs: number }> => {
        // Wait on the event itself: polling would burn the CPU being measured.
        const completed = new Promise<void>((r) => (onCompleted = r));
        const cpu0 = process.cpuUsage();
        const t0 = performance.now();
        bridge.syncNow();
        await completed;
        const ms = performance.now() - t0;
        const cpu = process.cpuUsage(cpu0);
        return { ms, cpuMs: (cpu.user + cpu.system) / 1000 };
      };
      const rawRound = async (): Promise<{ ms: number; cpuMs: number }> => {
        const cpu0 = process.cpuUsage();
        const t0 = performance.now();
        for (const chunk of chunks) await raw.syncProjectState({ clientId: "raw", localProjectIds: chunk }, { timeoutMs: 10_000 });
        const ms = performance.now() - t0;
        const cpu = process.cpuUsage(cpu0);
        return { ms, cpuMs: (cpu.user + cpu.system) / 1000 };
      };
      await bridgeRound();
      await rawRound();
      const set = new RunSet<"b" | "r" | "bc" | "rc" | "ratio">();
      for (let r = 0; r < options.runs; r++) {
        const b = await bridgeRound();
        const w = await rawRound();
        set.add("b", b.ms);
        set.add("r", w.ms);
        set.add("bc", b.cpuMs);
        set.add("rc", w.cpuMs);
        set.add("ratio", b.ms / w.ms);
      }
      answered += completions;
      reported[String(size)] = lastReported;
      rows.push({
        ids: size,
        bridgeMs: set.get("b"),
        rawMs: set.get("r"),
        bridgeCpuMs: set.get("bc"),
        rawCpuMs: set.get("rc"),
        ratio: set.get("ratio"),
      });
      await bridge.stop();
    }
    manager.abort();
  } finally {
    await server.close();
  }
  return { runs: options.runs, rows, verified: { syncsAnswered: answered, idsReportedPerRound: reported } };
}
