/**
 * The names of every metric the bridge records, in OpenTelemetry
 * semantic-convention style (dot-separated namespace, plural nouns for
 * counts, the unit in `unit`, not in the name). README "Metrics" lists them
 * with their attributes; keep the two in step.
 */
export const bridgeMetricNames = Object.freeze({
  /** Counter: ProjectEvents messages received. */
  eventsReceived: "engram.bridge.events.received",
  /** Counter {source, reason}: messages or heartbeat ids dropped (empty id, not a removal). */
  eventsIgnored: "engram.bridge.events.ignored",
  /** Counter {source}: removals the dedup window had already seen. */
  duplicatesSuppressed: "engram.bridge.duplicates.suppressed",
  /** Counter {source}: removals whose fan-out finished (every handler settled or timed out). */
  removalsDelivered: "engram.bridge.removals.delivered",
  /** Histogram {source}, ms: from receipt of a removal to the end of its fan-out. */
  deliveryLatency: "engram.bridge.delivery.latency",
  /** Counter {handler}: handler calls that threw or rejected. */
  handlerErrors: "engram.bridge.handler.errors",
  /** Counter {handler}: handler calls that ran past handlerTimeoutMs. */
  handlerTimeouts: "engram.bridge.handler.timeouts",
  /** Counter {error.type}: ProjectEvents calls that failed or were ended by the server. */
  streamFailures: "engram.bridge.stream.failures",
  /** Counter: reconnect attempts (backoff over, a new ProjectEvents call). */
  reconnects: "engram.bridge.reconnects",
  /** Counter: SyncProjectState rounds that completed or failed. */
  syncCalls: "engram.bridge.sync.calls",
  /** Counter {error.type}: SyncProjectState rounds that failed. */
  syncFailures: "engram.bridge.sync.failures",
  /** Observable gauge {state}: 1 for the connection state the bridge is in, 0 for the others. */
  connectionState: "engram.bridge.connection.state",
});

/** The instrumentation scope every bridge meter uses. */
export const bridgeMeterName = "engram-serverevents";
