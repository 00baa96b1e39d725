/**
 * Starts bench/lib/server-process.ts as a child process and drives its dev
 * server over IPC. Everything binds to 127.0.0.1.
 */
import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { DevServerStats } from "../../src/dev-server/index.js";
import type { ServerReply, ServerRequest } from "./server-protocol.js";

export interface ServerHandle {
  readonly url: string;
  readonly port: number;
  /** Buffers `n` REMOVED events with ids `${prefix}0…` in one synchronous loop. */
  burst(n: number, prefix: string): Promise<void>;
  /** Emits `n` events, one per `intervalMs`, each stamped with process.hrtime in `reason`; resolves when all were emitted. */
  paced(n: number, intervalMs: number, prefix: string): Promise<void>;
  createProjects(n: number, prefix: string): Promise<void>;
  waitForStreams(n: number, timeoutMs?: number): Promise<void>;
  waitForStreamsClosed(n?: number, timeoutMs?: number): Promise<void>;
  /** Closes the server (GOAWAY, reset), waits `downMs`, listens again on the same port with the same store. */
  restart(downMs: number): Promise<{ closedAtNs: bigint; listeningAtNs: bigint }>;
  stats(): Promise<DevServerStats>;
  /** process.hrtime (ns) of each stream the current server instance accepted, oldest first. */
  streamOpenTimes(): Promise<bigint[]>;
  /** Closes the server and ends the child process. */
  close(): Promise<void>;
}

/**
 * "dev": the dev server (`startDevServer()`, bench/lib/server-process.ts).
 * "fast": bench/lib/fast-server-process.ts, a bare node:http2 server that
 * writes pre-encoded frames (no restart, no createProjects).
 */
export type BenchServerKind = "dev" | "fast";

export interface StartServerOptions {
  /** Events buffered per stream before the dev server drops. Defaults to 64 (the dev server's own default). The fast server never drops. */
  streamBufferSize?: number;
  /** Which server runs in the child process. Defaults to "dev". */
  kind?: BenchServerKind;
}

export async function startServerProcess(options: StartServerOptions = {}): Promise<ServerHandle> {
  const entry = fileURLToPath(new URL(options.kind === "fast" ? "./fast-server-process.ts" : "./server-process.ts", import.meta.url));
  const child: ChildProcess = fork(entry, [], { execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"] });
  let nextId = 1;
  const waiting = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  let ready!: () => void;
  const readyP = new Promise<void>((r) => (ready = r));
  child.on("message", (reply: ServerReply) => {
    if (reply.id === 0) return ready();
    const w = waiting.get(reply.id);
    if (!w) return;
    waiting.delete(reply.id);
    if (reply.ok) w.resolve(reply.value);
    else w.reject(new Error(`dev server process: ${reply.error}`));
  });
  child.on("exit", (code) => {
    for (const w of waiting.values()) w.reject(new Error(`dev server process exited (${code})`));
    waiting.clear();
  });
  await readyP;
  const call = <T>(req: ServerRequest): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const id = nextId++;
      waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      child.send({ id, req });
    });
  const started = await call<{ url: string; port: number }>({ op: "start", streamBufferSize: options.streamBufferSize ?? 64 });
  return {
    url: started.url,
    port: started.port,
    burst: (n, prefix) => call({ op: "burst", n, prefix }),
    paced: (n, intervalMs, prefix) => call({ op: "paced", n, intervalMs, prefix }),
    createProjects: (n, prefix) => call({ op: "createProjects", n, prefix }),
    waitForStreams: (n, timeoutMs = 10_000) => call({ op: "waitForStreams", n, timeoutMs }),
    waitForStreamsClosed: (n = 0, timeoutMs = 10_000) => call({ op: "waitForStreamsClosed", n, timeoutMs }),
    async restart(downMs) {
      const r = await call<{ closedAtNs: string; listeningAtNs: string }>({ op: "restart", downMs });
      return { closedAtNs: BigInt(r.closedAtNs), listeningAtNs: BigInt(r.listeningAtNs) };
    },
    stats: () => call<DevServerStats>({ op: "stats" }),
    streamOpenTimes: async () => (await call<string[]>({ op: "streamOpenTimes" })).map((t) => BigInt(t)),
    async close() {
      if (child.exitCode !== null) return;
      await call({ op: "close" }).catch(() => {});
      const exited = new Promise<void>((r) => child.once("exit", () => r()));
      child.disconnect();
      await exited;
    },
  };
}
