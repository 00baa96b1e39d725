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
