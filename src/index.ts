// engram-serverevents: the daemon-side bridge to the engram server's project
// lifecycle. User-facing symbols first; types with `export type`.
export { createBridge } from "./bridge.js";
export type { Bridge } from "./bridge.js";
export { DEFAULT_DEDUP_CAPACITY } from "./bridge-options.js";
export type { BridgeOptions, InspectionObserver } from "./bridge-options.js";
export type { BridgeStatus, ConnectionState, HeartbeatState, BridgeTimestamps, DispatchCounters, IdleReason } from "./bridge-status.js";
export { HandlerRegistry } from "./handler-registry.js";
export { SessionTracker } from "./session-tracker.js";
export type { ProjectRemovalAware, RemovalInfo, RemovalSource, ProjectTracker, Logger } from "./types.js";
export { defaultBridgeTiming, timingBounds } from "./timing.js";
export type { BridgeTiming, TimingBound } from "./timing.js";
export { BridgeError, bridgeErrorCodes } from "./errors.js";
export type { BridgeErrorCode, ErrorSummary } from "./errors.js";
export { createStderrLogger } from "./logger.js";
export { bridgeMetricNames, bridgeMeterName } from "./metrics/metric-names.js";

// ---------------------------------------------------------------------------
// For integrators: your own EventsClient, clock or transport, the statechart
// itself, and the in-process dev server for tests. An injected EventsClient
// throws ServerGoawayError from its stream to ask for a GOAWAY reopen, and
// SyncDeadlineError when its own per-call deadline runs out (connection
// suspect).
// ---------------------------------------------------------------------------
export type { EventsClient, Clock, ProjectEventsCallOptions, SyncProjectStateCallOptions } from "./types.js";
export { ServerGoawayError, SyncDeadlineError } from "./call-errors.js";
export { createGrpcEventsClient } from "./grpc-client.js";
export type { GrpcEventsClientOptions } from "./grpc-client.js";
export { createBearerInterceptor } from "./bearer-interceptor.js";
export type { TokenSource } from "./bearer-interceptor.js";
export { bridgeMachine, createBridgeDelays } from "../machines/bridge.machine.js";
export type { BridgeContext, BridgeEvent, BridgeEmitted, BridgeCounters } from "../machines/bridge.types.js";
export { startDevServer } from "./dev-server/index.js";
export type { DevServer, DevServerOptions, DevServerShutdownOptions, DevServerShutdownResult } from "./dev-server/index.js";
export type {
  DevServerStats,
  DevServerCode,
  DevServerCodeName,
  DevServerTlsOptions,
  EmitEventInit,
  StreamOpenedInfo,
  StreamClosedInfo,
  SyncCallInfo,
  LastClientIds,
  TokensSeen,
  ProjectStore,
  SyncOutcome,
} from "./dev-server/index.js";
export type { ProjectEvent } from "./gen/engram/v1/engram_pb.js";
