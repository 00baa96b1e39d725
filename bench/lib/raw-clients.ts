/**
 * The baselines: the same ProjectEvents stream read by a bare connect-node
 * client and by a bare @grpc/grpc-js client (proto loaded at run time with
 * @grpc/proto-loader from proto/engram/v1/engram.proto), each in a plain
 * `for await` loop with nothing on top.
 */
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { EngramService, type ProjectEvent } from "../../src/gen/engram/v1/engram_pb.js";

/** What a stream loop does with each event: return true to stop reading. */
export type OnEvent = (projectId: string, reason: string) => boolean | undefined;

export interface StreamLoop {
  /** Resolves when the call is open (response headers arrived). */
  readonly opened: Promise<void>;
  /** Resolves when the loop ends (onEvent returned true, or the stream ended or failed). */
  readonly done: Promise<void>;
  /** Aborts the call and closes the connection. */
  close(): void;
}

/**
 * A connect-node ProjectEvents call on its own HTTP/2 session, read by
 * `consume`; the call's abort ends the loop quietly. The scaffold of the
 * connect-node baselines.
 */
export function connectNodeStream(
  baseUrl: string,
  clientId: string,
  consume: (messages: AsyncIterable<ProjectEvent>) => Promise<void>,
  onClose: () => void = () => {},
): StreamLoop {
  const manager = new Http2SessionManager(baseUrl);
  const client: Client<typeof EngramService> = createClient(EngramService, createGrpcTransport({ baseUrl, sessionManager: manager }));
  const abort = new AbortController();
  let opened!: () => void;
  const openedP = new Promise<void>((r) => (opened = r));
  const done = (async () => {
    try {
      await consume(client.projectEvents({ clientId }, { signal: abort.signal, onHeader: () => opened() }));
    } catch (err) {
      if (!abort.signal.aborted) throw err;
    }
  })();
  done.catch(() => {}); // callers that care await `done` themselves
  return {
    opened: openedP,
    done,
    close() {
      abort.abort();
      manager.abort();
      onClose();
    },
  };
}

/** A bare connect-node client on its own HTTP/2 session. */
export function connectNodeLoop(baseUrl: string, onEvent: OnEvent): StreamLoop {
  return connectNodeStream(baseUrl, "raw-connect", async (messages) => {
    for await (const ev of messages) {
      if (onEvent(ev.projectId, ev.reason) === true) break;
    }
  });
}

interface GrpcJsEvent {
  project_id: string;
  reason: string;
}
type GrpcJsServiceCtor = new (
  address: string,
  creds: grpc.ChannelCredentials,
  options?: grpc.ChannelOptions,
) => grpc.Client & {
  ProjectEvents(req: { client_id: string }): grpc.ClientReadableStream<GrpcJsEvent>;
};

let grpcJsService: GrpcJsServiceCtor | undefined;

function loadGrpcJsService(): GrpcJsServiceCtor {
  if (grpcJsService) return grpcJsService;
  const protoPath = fileURLToPath(new URL("../../proto/engram/v1/engram.proto", import.meta.url));
  const def = protoLoader.loadSync(protoPath, { keepCase: true, longs: String, enums: Number, defaults: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { engram: { v1: { EngramService: GrpcJsServiceCtor } } };
  grpcJsService = pkg.engram.v1.EngramService;
  return grpcJsService;
}

/** A bare @grpc/grpc-js client on its own channel. */
export function grpcJsLoop(baseUrl: string, onEvent: OnEvent): StreamLoop {
  const Service = loadGrpcJsService();
  const address = new URL(baseUrl).host;
  // A unique option keeps grpc-js from sharing a subchannel between loops.
  const client = new Service(address, grpc.credentials.createInsecure(), { "grpc.bench_unique": Math.random() } as grpc.ChannelOptions);
  const call = client.ProjectEvents({ client_id: "raw-grpc-js" });
  let opened!: () => void;
  const openedP = new Promise<void>((r) => (opened = r));
  call.on("metadata", () => opened());
  let closing = false;
  const done = (async () => {
    try {
      for await (const ev of call as AsyncIterable<GrpcJsEvent>) {
        if (onEvent(ev.project_id, ev.reason) === true) break;
      }
    } catch (err) {
      if (!closing) throw err;
    } finally {
      closing = true;
      call.cancel();
    }
  })();
  done.catch(() => {}); // callers that care await `done` themselves
  return {
    opened: openedP,
    done,
    close() {
      closing = true;
      call.cancel();
      client.close();
    },
  };
}
