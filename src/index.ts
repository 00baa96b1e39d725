// engram-serverevents: the daemon-side bridge to the engram server's project
// lifecycle. User-facing symbols first; types with `export type`.
import type { Bridge } from "./bridge-api.js";
import type { BridgeOptions } from "./bridge-options.js";
import { createBridge as createBridgeImpl } from "./bridge.js";

/**
 * Creates a bridge: see Bridge and BridgeOptions. (Declared here with the
 * public types only, so the root entry's declarations never reach xstate's.)
 */
export const createBridge: (options: BridgeOptions) => Bridge = createBridgeImpl;
export type { Bridge, BridgeActor, BridgeActorObserver, BridgeActorSnapshot, BridgeSubscription } from "./bridge-api.js";
export { CONNECTION_CHANGES_BUFFER } from "./bridge-connection-events.js";
export type { BridgeConnectionApi, BridgeEventName, ConnectionChange, ConnectionListener } from "./bridge-connection-events.js";
export { DEFAULT_DEDUP_CAPACITY } from "./bridge-options.js";
export type { BridgeOptions, InspectionEventLike, InspectionObserver } from "./bridge-options.js";
export type { BridgeStatus, ConnectionState, HeartbeatState, BridgeTimestamps, DispatchCounters, IdleReason } from "./bridge-status.js";
export { HandlerRegistry } from "./handler-registry.js";
export type { RegisteredHandler } from "./handler-registry.js";
export { SessionTracker } from "./session-tracker.js";
export type { ProjectRemovalAware, RemovalInfo, RemovalSource, ProjectTracker, Logger } from "./types.js";
export { defaultBridgeTiming, timingBounds } from "./timing.js";
export type { BridgeTiming, TimingBound } from "./timing.js";
export { BridgeError, bridgeErrorCodes } from "./errors.js";
export type { BridgeErrorCode, ErrorSummary } from "./errors.js";
export { createStderrLogger } from "./logger.js";
export type { LogLevel, StderrLoggerOptions } from "./logger.js";
export { bridgeMetricNames, bridgeMeterName } from "./metrics/metric-names.js";

// ---------------------------------------------------------------------------
// For integrators: your own EventsClient, clock or transport, the statechart's
// types, and the in-process dev server for tests. Nothing here may reach
// xstate's or connect's declarations (a strict project with
// exactOptionalPropertyTypes and no DOM compiles this entry with
// skipLibCheck off): the machine itself, bridgeMachine and
// createBridgeDelays, is exported by "engram-serverevents/machines". An injected EventsClient
// throws ServerGoawayError from its stream to ask for a GOAWAY reopen, and
// SyncDeadlineError when its own per-call deadline runs out (connection
// suspect).
// ---------------------------------------------------------------------------
export type { EventsClient, Clock, ProjectEventsCallOptions, SyncProjectStateCallOptions } from "./types.js";
export { ServerGoawayError, SyncDeadlineError } from "./call-errors.js";
export { createGrpcEventsClient } from "./grpc-client.js";
export type { GrpcEventsClientOptions } from "./grpc-client.js";
export { parseServerUrl } from "./server-url.js";
export type { ServerAddress } from "./server-url.js";
export { createBearerInterceptor } from "./bearer-interceptor.js";
export type { BearerInterceptor, TokenSource } from "./bearer-interceptor.js";
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
