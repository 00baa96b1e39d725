// engram-serverevents/testing: what a daemon's own tests need. A clock whose
// time moves only when told (epoch ms), an in-memory engram server whose
// client goes in BridgeOptions.client, the helpers that drive time, and a
// recording handler and logger. No sockets, no real timers, no xstate import.
export { SimulatedClock, SIMULATED_EPOCH_MS } from "./simulated-clock.js";
export type { SimulatedClockOptions } from "./simulated-clock.js";
export { createMemoryServer } from "./memory-server.js";
export type {
  MemoryServer,
  MemoryServerOptions,
  MemoryServerStats,
  MemoryServerTraceEntry,
  MemoryEventsClient,
  MemoryClientOptions,
  HeaderMode,
  HangOptions,
  GoawayOptions,
} from "./memory-server.js";
export { advance, runUntil, settle, eventually, SETTLE_TURNS } from "./drive.js";
export type { RunUntilOptions } from "./drive.js";
export { recordingHandler, capturingLogger } from "./recorders.js";
export type { RecordingHandler, RecordedCall, CapturingLogger, CapturedLine, LogLevel } from "./recorders.js";
export { grpcCodeNames, grpcCode, grpcError } from "./grpc-codes.js";
export type { GrpcCodeName } from "./grpc-codes.js";
