/**
 * A dev server in its own process, driven over IPC by bench/lib/server-handle.ts.
 * Running the server in another process keeps its CPU out of the client's
 * figures (the client is what the benchmarks compare) and lets the client's
 * process.cpuUsage() measure the client alone.
 */
import { startDevServer, type DevServer } from "../../src/dev-server/index.js";
import { pace, type Pacing, type ServerReply, type ServerRequest } from "./server-protocol.js";

let server: DevServer | undefined;
let bufferSize = 64;
let pacing: Pacing | undefined;
/** process.hrtime of each stream open on the current server instance. */
let streamOpenedAtNs: bigint[] = [];

function watch(s: DevServer): DevServer {
  streamOpenedAtNs = [];
  s.onStreamOpened(() => streamOpenedAtNs.push(process.hrtime.bigint()));
  return s;
}

function current(): DevServer {
  if (!server) throw new Error("no dev server running");
  return server;
}

async function handle(req: ServerRequest): Promise<unknown> {
  switch (req.op) {
    case "start": {
      bufferSize = req.streamBufferSize;
      server = watch(await startDevServer({ streamBufferSize: bufferSize, ...(req.port !== undefined ? { port: req.port } : {}) }));
      return { url: server.url, port: server.port };
    }
    case "restart": {
      const old = current();
      const { port, store } = old;
      const closedAt = process.hrtime.bigint();
      await old.close();
      if (req.downMs > 0) await new Promise((r) => setTimeout(r, req.downMs));
      server = watch(await startDevServer({ port, store, streamBufferSize: bufferSize }));
      const listeningAt = process.hrtime.bigint();
      return { closedAtNs: closedAt.toString(), listeningAtNs: listeningAt.toString() };
    }
    case "waitForStreams":
      await current().waitForStreams(req.n, req.timeoutMs);
      return null;
    case "waitForStreamsClosed":
      await current().waitForStreamsClosed(req.n, req.timeoutMs);
      return null;
    case "burst": {
      // Synchronous: every event is buffered before the first one is written.
      const s = current();
      for (let i = 0; i < req.n; i++) s.emitEvent({ projectId: `${req.prefix}${i}` });
      return null;
    }
    case "paced": {
      // About one event every intervalMs (drift-corrected timers), each stamped
      // with the monotonic clock, which every process on the machine shares,
      // in `reason`: the receiver subtracts it for the delivery latency.
      const s = current();
      pacing = { stop: false };
      await pace(req.n, req.intervalMs, pacing, (i) =>
        s.emitEvent({ projectId: `${req.prefix}${i}`, reason: process.hrtime.bigint().toString() }),
      );
      pacing = undefined;
      return null;
    }
    case "createProjects": {
      const s = current();
      for (let i = 0; i < req.n; i++) s.createProject(`${req.prefix}${i}`);
      return null;
    }
    case "streamOpenTimes":
      return streamOpenedAtNs.map(String);
    case "stats":
      return current().stats();
    case "close":
      if (pacing) pacing.stop = true;
      await server?.close();
      server = undefined;
      return null;
  }
}

process.on("message", (msg: { id: number; req: ServerRequest }) => {
  handle(msg.req).then(
    (value) => process.send?.({ id: msg.id, ok: true, value } satisfies ServerReply),
    (err: unknown) => process.send?.({ id: msg.id, ok: false, error: String((err as Error)?.message ?? err) } satisfies ServerReply),
  );
});
process.on("disconnect", () => {
  void server?.close().finally(() => process.exit(0));
  if (!server) process.exit(0);
});
process.send?.({ id: 0, ok: true, value: "ready" } satisfies ServerReply);
