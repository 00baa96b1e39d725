import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type ConnectRouter, type ServiceImpl } from "@connectrpc/connect";
import { EngramService, PingResponseSchema, SyncProjectStateResponseSchema } from "../gen/engram/v1/engram_pb.js";
import type { BearerAuth } from "./bearer-auth.js";
import type { CallCapacity } from "./call-capacity.js";
import type { CallLog } from "./call-log.js";
import type { ResolvedDevServerOptions } from "./dev-server-options.js";
import { sendHeadersNow } from "./early-headers.js";
import type { EventHub } from "./event-hub.js";
import type { FaultInjector } from "./fault-injection.js";

/** What the RPC handlers work with. */
export interface EngramServiceDeps {
  options: ResolvedDevServerOptions;
  hub: EventHub;
  auth: BearerAuth;
  faults: FaultInjector;
  calls: CallLog;
  /** Aborted once the server began to shut down: new ProjectEvents calls fail with UNAVAILABLE. */
  stopping: AbortSignal;
  /** The server's finite capacity, if it has one: each call waits for its unit of work. */
  capacity?: CallCapacity | undefined;
}

/** The connect routes of the dev server: engram.v1.EngramService. */
export function engramRoutes(deps: EngramServiceDeps): (router: ConnectRouter) => void {
  return (router) => router.service(EngramService, createEngramServiceImpl(deps));
}

/** engram.v1.EngramService with the upstream server's semantics (DESIGN.md "Wire contract"). */
export function createEngramServiceImpl(deps: EngramServiceDeps): ServiceImpl<typeof EngramService> {
  const { options, hub, auth, faults, calls, stopping, capacity } = deps;
  return {
    async syncProjectState(req, context) {
      await capacity?.admit(context.signal);
      auth.check("syncProjectState", context.requestHeader);
      calls.syncReceived(req.clientId, req.localProjectIds.length);
      const injected = faults.takeSyncFailure();
      if (injected !== undefined) throw injected;
      await faults.delaySync(context.signal);
      if (req.clientId === "") throw new ConnectError("client_id is required", Code.InvalidArgument);
      if (req.localProjectIds.length > options.maxSyncIds) {
        throw new ConnectError(`too many local_project_ids: ${req.localProjectIds.length} > ${options.maxSyncIds}`, Code.InvalidArgument);
      }
      calls.syncAnswered(req.localProjectIds.length);
      const nowMs = options.now();
      const outcome = options.store.sync(req.localProjectIds, nowMs, options.unknownAfterMs);
      return create(SyncProjectStateResponseSchema, { ...outcome, serverTimeUnixMs: BigInt(Math.trunc(nowMs)) });
    },

    async *projectEvents(req, context) {
      // A stream opened into a draining server would only hold its shutdown
      // up; the client is to reopen on the next instance.
      if (stopping.aborted) throw new ConnectError("the server is shutting down", Code.Unavailable);
      await capacity?.admit(context.signal);
      auth.check("projectEvents", context.requestHeader);
      const rejection = faults.streamRejectionError();
      if (rejection !== undefined) {
        calls.streamRejected();
        throw rejection;
      }
      if (req.sinceEventId !== "") {
        throw new ConnectError("resuming from since_event_id is not supported", Code.OutOfRange);
      }
      calls.streamAccepted(req.clientId);
      yield* hub.subscribe(req.clientId, context.signal, () => sendHeadersNow(context));
    },

    ping() {
      return create(PingResponseSchema, { status: "ok" });
    },
  };
}
