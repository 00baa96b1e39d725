/**
 * Reconnect after a server restart on the same port (GOAWAY, streams reset,
 * listening again at once with the same store). The bridge runs with its
 * default timing, so its time back is dominated by the first jittered backoff
 * (1 s ± 20 %); the figures split it into detection, the backoff wait it drew,
 * and the reopen. The baseline is a bare connect-node client that retries
 * every 1 ms until a call stays up: the transport's own floor. "Back" means
 * the restarted server accepted the call (its onStreamOpened, stamped with
 * the machine-wide monotonic clock): the dev server sends response headers
 * only with the first message, so the client cannot see it earlier.
 */
import { createBenchBridge, waitForState } from "../lib/bridge-fixture.js";
import { connectNodeLoop, type StreamLoop } from "../lib/raw-clients.js";
import { startServerProcess, type ServerHandle } from "../lib/server-handle.js";
import { RunSet, sleep, type Spread } from "../lib/stats.js";

export interface ReconnectOptions {
  runs: number;
}

export interface ReconnectResult {
  runs: number;
  /** ms, server closed → bridge in backoff. */
  detectMs: Spread;
  /** ms, the backoff wait the bridge drew (backoff → connecting). */
  backoffMs: Spread;
  /** ms, connecting → the restarted server accepted the call. */
  reopenMs: Spread;
  /** ms, server listening again → it accepted the bridge's call. */
  afterListeningMs: Spread;
  /** ms, server listening again → it accepted the call, minus the part of the drawn backoff still to run then. */
  afterListeningLessBackoffMs: Spread;
  /** ms, server listening again → first removal delivered to the handler. */
  firstRemovalAfterListeningMs: Spread;
  /** ms, bare connect-node retrying every 1 ms: server listening again → it accepted the call. */
  rawAfterListeningMs: Spread;
}

const nsToMs = (ns: bigint) => Number(ns) / 1e6;

async function lastStreamOpen(server: ServerHandle, after: bigint): Promise<bigint> {
  const deadline = performance.now() + 10_000;
  for (;;) {
    const t = (await server.streamOpenTimes()).filter((x) => x >= after);
    if (t.length > 0) return t[0] as bigint;
    if (performance.now() > deadline) throw new Error("reconnect: no stream opened on the restarted server");
    await sleep(1);
  }
}

export async function runReconnect(options: ReconnectOptions): Promise<ReconnectResult> {
  const server = await startServerProcess();
  const set = new RunSet<keyof Omit<ReconnectResult, "runs">>();
  try {
    for (let r = 0; r < options.runs; r++) {
      // --- the bridge, default timing (openConfirmMs short only because the
      // dev server sends headers with the first message)
      let removedAtNs = 0n;
      const { bridge } = createBenchBridge({
        url: server.url,
        timing: { openConfirmMs: 5 },
        onRemoval: () => {
          if (removedAtNs === 0n) removedAtNs = process.hrtime.bigint();
        },
      });
      // When the connection state changed: `${state}#${n}` for the n-th entry.
      const marks: Record<string, bigint> = {};
      let last = "";
      bridge.actor.subscribe(() => {
        const state = bridge.status().state;
        if (state === last) return;
        last = state;
        let n = 0;
        while (marks[`${state}#${n}`] !== undefined) n++;
        marks[`${state}#${n}`] = process.hrtime.bigint();
      });
      bridge.start();
      await waitForState(bridge, "streaming");
      // Restart only once the server holds the call and the first heartbeat is
      // answered: a restart racing the call's setup can leave connect-node's
      // call pending forever (see REPORT.md, "Findings").
      await server.waitForStreams(1);
      while (bridge.status().counters.syncs < 1) await sleep(1);
      const restart = await server.restart(0);
      const openedAt = await lastStreamOpen(server, restart.listeningAtNs);
      await server.burst(1, `reconnect-${r}-`);
      const deadline = performance.now() + 10_000;
      while (removedAtNs === 0n && performance.now() < deadline) await sleep(1);
      const backoffAt = marks["backoff#0"];
      const connectingAt = marks["connecting#1"];
      if (backoffAt === undefined || connectingAt === undefined || removedAtNs === 0n) {
        throw new Error(`reconnect: missing marks ${JSON.stringify(Object.keys(marks))}`);
      }
      set.add("detectMs", nsToMs(backoffAt - restart.closedAtNs));
      set.add("backoffMs", nsToMs(connectingAt - backoffAt));
      set.add("reopenMs", nsToMs(openedAt - connectingAt));
      set.add("afterListeningMs", nsToMs(openedAt - restart.listeningAtNs));
      const backoffLeft = connectingAt > restart.listeningAtNs ? connectingAt - restart.listeningAtNs : 0n;
      set.add("afterListeningLessBackoffMs", nsToMs(openedAt - restart.listeningAtNs - backoffLeft));
      set.add("firstRemovalAfterListeningMs", nsToMs(removedAtNs - restart.listeningAtNs));
      await bridge.stop();
      await server.waitForStreamsClosed(0);

      // --- bare connect-node, retrying every 1 ms until a call stays up 50 ms
      let loop: StreamLoop = connectNodeLoop(server.url, () => {});
      await server.waitForStreams(1);
      const rawRestart = server.restart(0);
      for (;;) {
        const outcome = await Promise.race([
          loop.done.then(
            () => "ended",
            () => "failed",
          ),
          sleep(50).then(() => "alive"),
        ]);
        if (outcome === "alive" && (await server.stats()).openStreams > 0) break;
        loop.close();
        await sleep(1);
        loop = connectNodeLoop(server.url, () => {});
      }
      const rr = await rawRestart;
      const rawOpenedAt = await lastStreamOpen(server, rr.listeningAtNs);
      set.add("rawAfterListeningMs", nsToMs(rawOpenedAt - rr.listeningAtNs));
      loop.close();
      await server.waitForStreamsClosed(0);
    }
  } finally {
    await server.close();
  }
  return {
    runs: options.runs,
    detectMs: set.get("detectMs"),
    backoffMs: set.get("backoffMs"),
    reopenMs: set.get("reopenMs"),
    afterListeningMs: set.get("afterListeningMs"),
    afterListeningLessBackoffMs: set.get("afterListeningLessBackoffMs"),
    firstRemovalAfterListeningMs: set.get("firstRemovalAfterListeningMs"),
    rawAfterListeningMs: set.get("rawAfterListeningMs"),
  };
}
