// engram-serverevents: the daemon-side bridge to the engram server's project
// lifecycle. User-facing symbols first; types with `export type`.
export { createBridge } from "./bridge.js";
export type { Bridge } from "./bridge.js";
export type { BridgeOptions, InspectionObserver } from "./bridge-options.js";
export type { BridgeStatus, ConnectionState, HeartbeatState, BridgeTimestamps, DispatchCounters } from "./bridge-status.js";
export { HandlerRegistry } from "./handler-registry.js";
export { SessionTracker } from "./session-tracker.js";
export type {
  ProjectRemovalAware,
  RemovalInfo,
  RemovalSource,
  ProjectTracker,
  EventsClient,
  Logger,
  Clock,
  ProjectEventsCallOptions,
  SyncProjectStateCallOptions,
} from "./types.js";
export { defaultBridgeTiming } from "./timing.js";
export type { BridgeTiming } from "./timing.js";
export { BridgeError, bridgeErrorCodes } from "./errors.js";
export type { BridgeErrorCode, ErrorSummary } from "./errors.js";
export { bridgeMachine, createBridgeDelays } from "../machines/bridge.machine.js";
export type { BridgeContext, BridgeEvent, BridgeEmitted, BridgeCounters } from "../machines/bridge.types.js";
export { createGrpcEventsClient } from "./grpc-client.js";
export { createBearerInterceptor } from "./bearer-interceptor.js";
export type { GrpcEventsClientOptions } from "./grpc-client.js";
export { createStderrLogger } from "./logger.js";
export { bridgeMetricNames, bridgeMeterName } from "./metrics/metric-names.js";
export { startDevServer } from "./dev-server/index.js";
export type { DevServer, DevServerOptions } from "./dev-server/index.js";
