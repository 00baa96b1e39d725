/**
 * A small controllable in-process engram server for the graph replay and the
 * property tests, seen by the bridge as an injected EventsClient.
 *
 * Why this and not the dev server over loopback or connect-es's
 * createRouterTransport: a path from the machine graph names one step at a
 * time, and each must be caused on its own and observed before the next.
 * connect-node and the router transport send response headers only together
 * with the first message, so "the server accepts and sends headers, no
 * message yet" (connecting --stream.opened--> streaming) could not be caused
 * through them, nor could a first message without a header callback (the
 * EventsClient contract leaves onHeader optional). Here the test holds every
 * call: it sends headers, messages, a status or an end when the step says so,
 * answers or fails each SyncProjectState call, and sees every abort the way a
 * server sees RST_STREAM. Everything runs on microtasks, so the bridge's
 * SimulatedClock is the only time there is; no real-time deadline races it.
 * Errors are ConnectErrors with gRPC codes and messages are protobuf-es
 * messages, as connect-es hands them to the bridge. The real socket stack is
 * covered by test/e2e against the dev server.
 */
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  ProjectEventSchema,
  SyncProjectStateResponseSchema,
  type ProjectEvent,
  type ProjectEventsRequest,
  type SyncProjectStateRequest,
  type SyncProjectStateResponse,
} from "../../src/gen/engram/v1/engram_pb.js";
import { ServerGoawayError } from "../../src/call-errors.js";
import type { EventsClient } from "../../src/types.js";

export type CallStatus = "open" | "ended" | "failed" | "aborted";

/** One message for a stream: the fields the bridge reads. */
export interface EventInit {
  eventId?: string;
  eventType: number;
  projectId: string;
  reason?: string;
  timestampUnixMs?: number;
}

/** One ProjectEvents call as the server holds it. */
export interface StreamCall {
  readonly index: number;
  readonly request: ProjectEventsRequest;
  readonly sessionEpoch: number;
  /** Server time (the bridge clock) when the call arrived. */
  readonly openedAtMs: number;
  status: CallStatus;
  closedAtMs: number | undefined;
  headersSent: boolean;
  messagesSent: number;
  /** Sends the response headers (no message). */
  sendHeaders(): void;
  /** Sends one message; headers are not reported with it (the callback is optional). */
  send(init: EventInit): ProjectEvent;
  /** Ends the call with an error status. */
  fail(code: Code, message?: string): void;
  /** Ends the call with OK. */
  end(): void;
  /**
   * The server sends GOAWAY on the call's session: the client ends the call
   * with ServerGoawayError, as the connect-node client's stream-close watch
   * does once everything received is handed on.
   */
  goaway(): void;
}

/** One SyncProjectState call as the server holds it. */
export interface SyncCall {
  readonly index: number;
  readonly request: SyncProjectStateRequest;
  readonly timeoutMs: number;
  readonly sessionEpoch: number;
  readonly receivedAtMs: number;
  status: CallStatus;
  answer(init?: { removed?: string[]; unknown?: string[]; serverTimeUnixMs?: number }): void;
  fail(code: Code, message?: string): void;
}

/** A link probe (EventsClient.checkConnection) the test answers. */
export interface ProbeCall {
  readonly index: number;
  status: CallStatus;
  answer(answered: boolean): void;
  fail(): void;
}

export interface ScriptedServerOptions {
  /** Server time, for the call records. Defaults to 0. */
  now?: () => number;
  /** Called when a ProjectEvents call arrives (e.g. to answer it by policy). Defaults to none. */
  onStream?: (call: StreamCall) => void;
  /** Called when a SyncProjectState call arrives. Defaults to none. */
  onSync?: (call: SyncCall) => void;
}

export interface ScriptedServer {
  readonly client: EventsClient;
  readonly streams: readonly StreamCall[];
  readonly syncs: readonly SyncCall[];
  /** Streams the server holds open now. */
  openStreams(): number;
  /** The most streams that were ever open at once. */
  readonly maxOpenStreams: number;
  /** SyncProjectState calls neither answered, failed nor aborted. */
  syncsInFlight(): number;
  /** The one open stream; throws when there is none. */
  currentStream(): StreamCall;
  /** The one sync in flight; throws when there is none. */
  currentSync(): SyncCall;
  readonly probes: readonly ProbeCall[];
  /** The one link probe in flight; throws when there is none. */
  currentProbe(): ProbeCall;
}

const abortedError = () => new ConnectError("This operation was aborted", Code.Canceled);

export function createScriptedServer(options: ScriptedServerOptions = {}): ScriptedServer {
  const now = options.now ?? (() => 0);
  const streams: StreamCall[] = [];
  const syncs: SyncCall[] = [];
  let maxOpen = 0;
  let nextEventId = 1;
  const openStreams = () => streams.filter((s) => s.status === "open").length;

  const probes: ProbeCall[] = [];
  const client: EventsClient = {
    checkConnection(opts) {
      return new Promise<boolean>((resolve, reject) => {
        const finish = (status: CallStatus) => {
          if (call.status !== "open") throw new Error(`probe #${call.index} is already ${call.status}`);
          call.status = status;
          opts.signal.removeEventListener("abort", onAbort);
        };
        const call: ProbeCall = {
          index: probes.length,
          status: "open",
          answer(answered) {
            finish("ended");
            resolve(answered);
          },
          fail() {
            finish("failed");
            reject(new Error("the probe failed"));
          },
        };
        const onAbort = () => {
          if (call.status !== "open") return;
          call.status = "aborted";
          reject(abortedError());
        };
        probes.push(call);
        if (opts.signal.aborted) {
          onAbort();
          return;
        }
        opts.signal.addEventListener("abort", onAbort, { once: true });
      });
    },
    projectEvents(request, opts) {
      type Item = { kind: "message"; message: ProjectEvent } | { kind: "fail"; error: Error } | { kind: "end" };
      const queue: Item[] = [];
      let wake: (() => void) | undefined;
      const push = (item: Item) => {
        queue.push(item);
        wake?.();
      };
      const close = (status: CallStatus) => {
        if (call.status !== "open") throw new Error(`stream #${call.index} is already ${call.status}`);
        call.status = status;
        call.closedAtMs = now();
      };
      const call: StreamCall = {
        index: streams.length,
        request,
        sessionEpoch: opts.sessionEpoch ?? 0,
        openedAtMs: now(),
        status: "open",
        closedAtMs: undefined,
        headersSent: false,
        messagesSent: 0,
        sendHeaders() {
          if (call.status !== "open") throw new Error(`stream #${call.index} is ${call.status}: cannot send headers`);
          call.headersSent = true;
          opts.onHeader?.(new Headers({ "content-type": "application/grpc" }));
        },
        send(init) {
          if (call.status !== "open") throw new Error(`stream #${call.index} is ${call.status}: cannot send`);
          const message = create(ProjectEventSchema, {
            eventId: init.eventId ?? String(nextEventId++),
            eventType: init.eventType,
            projectId: init.projectId,
            reason: init.reason ?? "",
            timestampUnixMs: BigInt(init.timestampUnixMs ?? 0),
          });
          call.messagesSent += 1;
          push({ kind: "message", message });
          return message;
        },
        fail(code, message = "stream failed by the test server") {
          close("failed");
          push({ kind: "fail", error: new ConnectError(message, code) });
        },
        end() {
          close("ended");
          push({ kind: "end" });
        },
        goaway() {
          close("ended");
          push({ kind: "fail", error: new ServerGoawayError() });
        },
      };
      const onAbort = () => {
        if (call.status === "open") {
          call.status = "aborted";
          call.closedAtMs = now();
        }
        wake?.();
      };
      opts.signal.addEventListener("abort", onAbort, { once: true });
      streams.push(call);
      maxOpen = Math.max(maxOpen, openStreams());
      options.onStream?.(call);
      return (async function* () {
        try {
          for (;;) {
            if (opts.signal.aborted) throw abortedError();
            const item = queue.shift();
            if (item === undefined) {
              await new Promise<void>((resolve) => (wake = resolve));
              wake = undefined;
              continue;
            }
            if (item.kind === "message") yield item.message;
            else if (item.kind === "fail") throw item.error;
            else return;
          }
        } finally {
          opts.signal.removeEventListener("abort", onAbort);
        }
      })();
    },

    syncProjectState(request, opts) {
      return new Promise<SyncProjectStateResponse>((resolve, reject) => {
        const finish = (status: CallStatus) => {
          if (call.status !== "open") throw new Error(`sync #${call.index} is already ${call.status}`);
          call.status = status;
          opts.signal.removeEventListener("abort", onAbort);
        };
        const call: SyncCall = {
          index: syncs.length,
          request,
          timeoutMs: opts.timeoutMs,
          sessionEpoch: opts.sessionEpoch ?? 0,
          receivedAtMs: now(),
          status: "open",
          answer(init = {}) {
            finish("ended");
            resolve(
              create(SyncProjectStateResponseSchema, {
                removed: init.removed ?? [],
                unknown: init.unknown ?? [],
                serverTimeUnixMs: BigInt(init.serverTimeUnixMs ?? 0),
              }),
            );
          },
          fail(code, message = "sync failed by the test server") {
            finish("failed");
            reject(new ConnectError(message, code));
          },
        };
        const onAbort = () => {
          if (call.status !== "open") return;
          call.status = "aborted";
          reject(abortedError());
        };
        syncs.push(call);
        if (opts.signal.aborted) {
          onAbort();
          return;
        }
        opts.signal.addEventListener("abort", onAbort, { once: true });
        options.onSync?.(call);
      });
    },
  };

  return {
    client,
    streams,
    syncs,
    openStreams,
    get maxOpenStreams() {
      return maxOpen;
    },
    syncsInFlight: () => syncs.filter((s) => s.status === "open").length,
    probes,
    currentProbe() {
      const open = probes.filter((p) => p.status === "open");
      if (open.length !== 1) throw new Error(`expected one link probe in flight, found ${open.length}`);
      return open[0]!;
    },
    currentStream() {
      const open = streams.filter((s) => s.status === "open");
      if (open.length !== 1) throw new Error(`expected one open stream on the server, found ${open.length}`);
      return open[0]!;
    },
    currentSync() {
      const open = syncs.filter((s) => s.status === "open");
      if (open.length !== 1) throw new Error(`expected one sync in flight on the server, found ${open.length}`);
      return open[0]!;
    },
  };
}
