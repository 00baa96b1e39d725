/**
 * The bridge's OpenTelemetry metrics. They are fed by what the statechart
 * already emits (`actor.on`), by its counters (events received, reconnects)
 * and by the dispatcher's `onOutcome` hook, so no logic is duplicated here.
 * Recording goes through `@opentelemetry/api`: without an SDK installed by
 * the host every instrument is a no-op.
 */
import { metrics, ValueType, type Attributes, type MeterProvider, type ObservableResult } from "@opentelemetry/api";
import type { Actor } from "xstate";
import type { bridgeMachine } from "../../machines/bridge.machine.js";
import type { ConnectionState } from "../bridge-status.js";
import type { DeliveryTimes } from "../dispatcher.js";
import type { DispatchOutcome } from "../removal-fan-out.js";
import type { RemovalInfo } from "../types.js";
import { bridgeMeterName, bridgeMetricNames as names } from "./metric-names.js";

export interface BridgeMetricsOptions {
  /** Where the meter comes from. Defaults to the global provider (`metrics.getMeterProvider()`) at creation. */
  meterProvider?: MeterProvider | undefined;
  /** The bridge's connection state now, read by the state gauge at each collection. */
  connectionState: () => ConnectionState;
}

export interface BridgeMetrics {
  /** Records what the actor emits and counts from now on. Call once, before the actor starts. */
  observe(actor: Actor<typeof bridgeMachine>): void;
  /** The dispatcher's `onOutcome` hook: delivered removals, latency, handler failures. */
  recordDispatch(projectId: string, info: RemovalInfo, outcome: DispatchOutcome, delivery: DeliveryTimes): void;
  /** Stops observing the actor and removes the gauge's callback. Idempotent. */
  close(): void;
}

const connectionStates: readonly ConnectionState[] = ["idle", "connecting", "streaming", "backoff", "stopping", "stopped"];

/** The attributes of a delivery, one object per source (not one per removal). */
const sourceAttributes: Readonly<Record<RemovalInfo["source"], Attributes>> = {
  stream: Object.freeze({ source: "stream" }),
  heartbeat: Object.freeze({ source: "heartbeat" }),
};

/** Latency buckets in ms: loopback deliveries take about a millisecond, slow handlers seconds. */
const latencyBucketsMs = [0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];

/** Creates the instruments of one bridge. */
export function createBridgeMetrics(options: BridgeMetricsOptions): BridgeMetrics {
  const provider = options.meterProvider ?? metrics.getMeterProvider();
  const meter = provider.getMeter(bridgeMeterName);
  const counter = (name: string, description: string, unit: string) =>
    meter.createCounter(name, { description, unit, valueType: ValueType.INT });

  const eventsReceived = counter(names.eventsReceived, "ProjectEvents messages received", "{event}");
  const eventsIgnored = counter(names.eventsIgnored, "Messages or heartbeat ids dropped: empty project id or not a removal", "{event}");
  const duplicates = counter(names.duplicatesSuppressed, "Removals already seen in the dedup window", "{removal}");
  const delivered = counter(names.removalsDelivered, "Removals whose fan-out to the handlers finished", "{removal}");
  const handlerErrors = counter(names.handlerErrors, "Handler calls that threw or rejected", "{call}");
  const handlerTimeouts = counter(names.handlerTimeouts, "Handler calls that ran past handlerTimeoutMs", "{call}");
  const streamFailures = counter(names.streamFailures, "ProjectEvents calls that failed or were ended by the server", "{call}");
  const reconnects = counter(names.reconnects, "Reconnect attempts after a backoff", "{attempt}");
  const syncCalls = counter(names.syncCalls, "SyncProjectState rounds that completed or failed", "{call}");
  const syncFailures = counter(names.syncFailures, "SyncProjectState rounds that failed", "{call}");
  const latency = meter.createHistogram(names.deliveryLatency, {
    description: "Time from receipt of a removal to the end of its fan-out to every handler",
    unit: "ms",
    advice: { explicitBucketBoundaries: latencyBucketsMs },
  });
  const stateGauge = meter.createObservableGauge(names.connectionState, {
    description: "1 for the connection state the bridge is in, 0 for the others",
    unit: "1",
    valueType: ValueType.INT,
  });
  const observeState = (result: ObservableResult<Attributes>): void => {
    const current = options.connectionState();
    for (const state of connectionStates) result.observe(state === current ? 1 : 0, { state });
  };
  stateGauge.addCallback(observeState);

  const unsubscribers: Array<() => void> = [];
  let closed = false;

  return {
    observe(actor) {
      if (closed) return;
      const subs = [
        actor.on("duplicateSuppressed", (e) => duplicates.add(1, { source: e.source })),
        actor.on("eventIgnored", (e) => eventsIgnored.add(1, { source: "stream", reason: e.why })),
        actor.on("streamFailed", (e) => streamFailures.add(1, { "error.type": e.error.code })),
        actor.on("streamEnded", () => streamFailures.add(1, { "error.type": "stream_ended" })),
        actor.on("syncCompleted", ({ result }) => {
          syncCalls.add(1);
          // The machine drops empty ids from a heartbeat answer and counts them as ignored.
          const empty = result.removed.filter((id) => id === "").length;
          if (empty > 0) eventsIgnored.add(empty, { source: "heartbeat", reason: "empty_project_id" });
        }),
        actor.on("syncFailed", (e) => {
          syncCalls.add(1);
          syncFailures.add(1, { "error.type": e.error.code });
        }),
      ];
      // Received messages and reconnects are not emitted: follow the machine's own counters.
      // Counters in context are never changed in place (each change is a new
      // object), so the last one seen is kept by reference.
      let seen = actor.getSnapshot().context.counters;
      const snapshots = actor.subscribe({
        next: (snapshot) => {
          const now = snapshot.context.counters;
          if (now.eventsReceived > seen.eventsReceived) eventsReceived.add(now.eventsReceived - seen.eventsReceived);
          if (now.reconnects > seen.reconnects) reconnects.add(now.reconnects - seen.reconnects);
          seen = now;
        },
        error: () => {},
      });
      for (const sub of [...subs, snapshots]) unsubscribers.push(() => sub.unsubscribe());
    },
    recordDispatch(_projectId, info, outcome, delivery) {
      for (const failure of outcome.failed) {
        if (failure.code === "handler_timeout") handlerTimeouts.add(1, { handler: failure.name });
        else handlerErrors.add(1, { handler: failure.name });
      }
      // A dispatch cut short by stop() is not a delivery.
      if (outcome.skipped > 0) return;
      const attributes = sourceAttributes[info.source];
      delivered.add(1, attributes);
      latency.record(Math.max(0, delivery.settledAtMs - delivery.queuedAtMs), attributes);
    },
    close() {
      if (closed) return;
      closed = true;
      for (const unsubscribe of unsubscribers.splice(0)) unsubscribe();
      stateGauge.removeCallback(observeState);
    },
  };
}
