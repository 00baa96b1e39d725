/**
 * A bench server that is not the bottleneck: a bare node:http2 server in its
 * own process that answers `engram.v1.EngramService` just enough for the
 * bench clients, and writes ProjectEvent frames (gRPC length-prefixed
 * protobuf) straight to every open ProjectEvents stream. A burst is encoded
 * once into one buffer and written in large chunks (honouring the stream's
 * backpressure), so the server spends well under a microsecond per event and
 * the client is what a throughput run measures.
 *
 * Speaks the IPC protocol of bench/lib/server-process.ts (server-protocol.ts)
 * for the ops the throughput and latency cases use: start, waitForStreams,
 * waitForStreamsClosed, burst, paced, stats, streamOpenTimes, close. Every
 * call is answered: SyncProjectState with an empty response (nothing
 * removed), Ping with "ok", ProjectEvents with headers at once and then the
 * bursts; anything else UNIMPLEMENTED. No auth, no event buffer limit: every
 * event goes to every open stream. Listens on 127.0.0.1 only.
 */
import { createServer, constants, type Http2Server, type ServerHttp2Session, type ServerHttp2Stream } from "node:http2";
import type { AddressInfo } from "node:net";
import { create, toBinary } from "@bufbuild/protobuf";
import {
  PingResponseSchema,
  ProjectEventSchema,
  ProjectEventType,
  SyncProjectStateResponseSchema,
} from "../../src/gen/engram/v1/engram_pb.js";
import type { DevServerStats } from "../../src/dev-server/index.js";
import { pace, type Pacing, type ServerReply, type ServerRequest } from "./server-protocol.js";

const service = "/engram.v1.EngramService/";
/** Bytes handed to one `stream.write()` of a burst. */
const chunkBytes = 256 * 1024;

let server: Http2Server | undefined;
const streams = new Set<ServerHttp2Stream>();
const sessions = new Set<ServerHttp2Session>();
const streamWaiters = new Set<() => void>();
let streamOpenedAtNs: bigint[] = [];
let nextEventId = 1;
const stats = { streamsOpened: 0, eventsSent: 0, syncCalls: 0 };
let pacing: Pacing | undefined;

/** One gRPC message frame: flag 0 (uncompressed), 4-byte big-endian length, the message. */
function frame(message: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(5 + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  out.set(message, 5);
  return out;
}

function eventFrame(projectId: string, reason: string): Buffer {
  return frame(
    toBinary(
      ProjectEventSchema,
      create(ProjectEventSchema, {
        eventId: String(nextEventId++),
        eventType: ProjectEventType.REMOVED,
        projectId,
        timestampUnixMs: BigInt(Date.now()),
        reason,
      }),
    ),
  );
}

function notify(): void {
  for (const w of streamWaiters) w();
}

function answerUnary(stream: ServerHttp2Stream, body: Uint8Array): void {
  stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
  stream.once("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
  stream.end(frame(body));
}

function onStream(stream: ServerHttp2Stream, headers: Record<string, string | string[] | undefined>): void {
  stream.on("error", () => {});
  const path = String(headers[":path"] ?? "");
  // Read (and ignore) the request body; unary calls answer once it ended.
  stream.resume();
  switch (path) {
    case `${service}ProjectEvents`: {
      stream.respond({ ":status": 200, "content-type": "application/grpc" });
      streams.add(stream);
      stats.streamsOpened += 1;
      streamOpenedAtNs.push(process.hrtime.bigint());
      stream.once("close", () => {
        streams.delete(stream);
        notify();
      });
      notify();
      return;
    }
    case `${service}SyncProjectState`:
      stats.syncCalls += 1;
      stream.once("end", () =>
        answerUnary(
          stream,
          toBinary(SyncProjectStateResponseSchema, create(SyncProjectStateResponseSchema, { serverTimeUnixMs: BigInt(Date.now()) })),
        ),
      );
      return;
    case `${service}Ping`:
      stream.once("end", () => answerUnary(stream, toBinary(PingResponseSchema, create(PingResponseSchema, { status: "ok" }))));
      return;
    default:
      stream.respond(
        { ":status": 200, "content-type": "application/grpc", "grpc-status": String(12), "grpc-message": "not served by the bench server" },
        { endStream: true },
      );
  }
}

/** Writes `data` to every open stream in chunks, waiting for 'drain' when a stream's buffer is full. */
async function writeAll(data: Buffer): Promise<void> {
  await Promise.all(
    Array.from(streams, async (s) => {
      for (let off = 0; off < data.length && !s.destroyed; off += chunkBytes) {
        if (!s.write(data.subarray(off, off + chunkBytes))) {
          await new Promise<void>((resolve) => {
            const done = (): void => {
              s.off("drain", done);
              s.off("close", done);
              resolve();
            };
            s.on("drain", done);
            s.on("close", done);
          });
        }
      }
    }),
  );
}

function waitUntil(ok: () => boolean, timeoutMs: number, what: string): Promise<void> {
  if (ok()) return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    const check = (): void => {
      if (!ok()) return;
      clearTimeout(timer);
      streamWaiters.delete(check);
      resolve();
    };
    const timer = setTimeout(() => {
      streamWaiters.delete(check);
      reject(new Error(`${what} within ${timeoutMs} ms (open streams: ${streams.size})`));
    }, timeoutMs);
    streamWaiters.add(check);
  });
}

function currentStats(): DevServerStats {
  // The DevServerStats shape, so that the cases read either server alike.
  return {
    openStreams: streams.size,
    streamsOpened: stats.streamsOpened,
    eventsSent: stats.eventsSent,
    eventsDropped: 0,
    syncCalls: stats.syncCalls,
  } as DevServerStats;
}

async function handle(req: ServerRequest): Promise<unknown> {
  switch (req.op) {
    case "start": {
      const s = createServer({ settings: { initialWindowSize: 16 * 1024 * 1024 } });
      s.on("stream", onStream);
      s.on("session", (session) => {
        sessions.add(session);
        session.once("close", () => sessions.delete(session));
        session.on("error", () => {});
        session.setLocalWindowSize(16 * 1024 * 1024);
      });
      await new Promise<void>((resolve, reject) => {
        s.once("error", reject);
        s.listen(req.port ?? 0, "127.0.0.1", () => resolve());
      });
      server = s;
      streamOpenedAtNs = [];
      const { port } = s.address() as AddressInfo;
      return { url: `http://127.0.0.1:${port}`, port };
    }
    case "waitForStreams":
      await waitUntil(() => streams.size >= req.n, req.timeoutMs, `fewer than ${req.n} streams opened`);
      return null;
    case "waitForStreamsClosed":
      await waitUntil(() => streams.size <= req.n, req.timeoutMs, `streams still open (more than ${req.n})`);
      return null;
    case "burst": {
      // Encoded once into one buffer before the first byte goes out.
      const frames: Buffer[] = new Array(req.n);
      for (let i = 0; i < req.n; i++) frames[i] = eventFrame(`${req.prefix}${i}`, "");
      const data = Buffer.concat(frames);
      stats.eventsSent += req.n * streams.size;
      await writeAll(data);
      return null;
    }
    case "paced": {
      // As the dev server's process: one event about every intervalMs, its
      // `reason` the monotonic clock (ns) when it was written.
      pacing = { stop: false };
      await pace(req.n, req.intervalMs, pacing, (i) => {
        const data = eventFrame(`${req.prefix}${i}`, process.hrtime.bigint().toString());
        stats.eventsSent += streams.size;
        for (const s of streams) s.write(data);
      });
      pacing = undefined;
      return null;
    }
    case "streamOpenTimes":
      return streamOpenedAtNs.map(String);
    case "stats":
      return currentStats();
    case "close":
      if (pacing) pacing.stop = true;
      await closeServer();
      return null;
    case "restart":
    case "createProjects":
      throw new Error(`the fast bench server does not support "${req.op}"; use the dev server`);
  }
}

async function closeServer(): Promise<void> {
  const s = server;
  server = undefined;
  if (!s) return;
  for (const st of streams) st.close(constants.NGHTTP2_CANCEL);
  for (const session of sessions) session.destroy();
  await new Promise<void>((resolve) => s.close(() => resolve()));
}

process.on("message", (msg: { id: number; req: ServerRequest }) => {
  handle(msg.req).then(
    (value) => process.send?.({ id: msg.id, ok: true, value } satisfies ServerReply),
    (err: unknown) => process.send?.({ id: msg.id, ok: false, error: String((err as Error)?.message ?? err) } satisfies ServerReply),
  );
});
process.on("disconnect", () => {
  void closeServer().finally(() => process.exit(0));
});
process.send?.({ id: 0, ok: true, value: "ready" } satisfies ServerReply);
