/** The IPC requests of bench/lib/server-process.ts and their replies. */
export type ServerRequest =
  | { op: "start"; streamBufferSize: number; port?: number }
  | { op: "restart"; downMs: number }
  | { op: "waitForStreams"; n: number; timeoutMs: number }
  | { op: "waitForStreamsClosed"; n: number; timeoutMs: number }
  | { op: "burst"; n: number; prefix: string }
  | { op: "paced"; n: number; intervalMs: number; prefix: string }
  | { op: "createProjects"; n: number; prefix: string }
  | { op: "streamOpenTimes" }
  | { op: "stats" }
  | { op: "close" };

export type ServerReply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: string };

/** A paced run a later `close` can cut short. */
export interface Pacing {
  stop: boolean;
}

/**
 * Calls `emit(i)` for i = 0…n-1, about one every `intervalMs` (drift-corrected
 * timers: each wait aims at start + i × intervalMs), until `pacing.stop`.
 * What both bench servers do for the `paced` request.
 */
export async function pace(n: number, intervalMs: number, pacing: Pacing, emit: (i: number) => void): Promise<void> {
  const start = performance.now();
  for (let i = 0; i < n && !pacing.stop; i++) {
    const wait = start + i * intervalMs - performance.now();
    await new Promise((r) => setTimeout(r, Math.max(0, wait)));
    emit(i);
  }
}
