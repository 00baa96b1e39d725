/**
 * PROTOTYPE, bench only: what batching stream events through the machine
 * would gain. Two provided implementations replace their namesakes:
 *
 * - `projectEvents`: the same call as src/bridge-actors.ts, but the messages
 *   that arrive before the event loop's next check phase are sent to the
 *   machine as ONE `stream.event` (the first event, plus `batch` with all of
 *   them), flushed with setImmediate;
 * - `acceptStreamEvent`: the same bookkeeping as the machine's action, but for
 *   every event of `batch` at once: one admitRemovals() call, one counters
 *   update, one assign, one emit per fresh removal.
 *
 * The machine's states and transitions are untouched. The bridge gets an
 * injected client (createGrpcEventsClient, the bridge's default) so that the
 * prototype actor can reach it.
 */
import { create } from "@bufbuild/protobuf";
import { enqueueActions, fromPromise } from "xstate";
import { REMOVED_EVENT_TYPE, streamRemovalInfo } from "../../machines/bridge.machine.js";
import type { BridgeContext, BridgeCounters, BridgeEmitted, BridgeEvent, ProjectEventsInput, StreamEvent } from "../../machines/bridge.types.js";
import { admitRemovals } from "../../machines/dedup-window.js";
import { toStreamEvent } from "../../src/bridge-actors.js";
import { BridgeError } from "../../src/errors.js";
import { ProjectEventsRequestSchema } from "../../src/gen/engram/v1/engram_pb.js";
import { createBridge, createGrpcEventsClient, HandlerRegistry, type Bridge, type BridgeTiming, type EventsClient, type Logger } from "../../src/index.js";
import { parseServerUrl } from "../../src/server-url.js";
import { withBridgeMachineVariant, type Implementations } from "./machine-variant.js";

type BatchedEvent = { type: "stream.event"; event: StreamEvent; batch?: StreamEvent[] };

function batchingProjectEventsActor(client: EventsClient) {
  return fromPromise<void, ProjectEventsInput>(async ({ input, signal }) => {
    const req = create(ProjectEventsRequestSchema, { clientId: input.clientId });
    let opened = false;
    let pending: StreamEvent[] = [];
    let scheduled = false;
    const flush = () => {
      scheduled = false;
      if (signal.aborted || pending.length === 0) return;
      const batch = pending;
      pending = [];
      input.parent.send({ type: "stream.event", event: batch[0] as StreamEvent, batch } satisfies BatchedEvent);
    };
    try {
      const stream = client.projectEvents(req, {
        signal,
        sessionEpoch: input.sessionEpoch,
        onHeader: () => {
          if (opened || signal.aborted) return;
          opened = true;
          input.parent.send({ type: "stream.opened" });
        },
      });
      for await (const ev of stream) {
        if (signal.aborted) return;
        pending.push(toStreamEvent(ev, performance.now()));
        if (!scheduled) {
          scheduled = true;
          setImmediate(flush);
        }
      }
      flush();
    } catch (reason) {
      if (signal.aborted) return;
      flush();
      throw BridgeError.from(reason);
    }
  });
}

interface Enqueue {
  assign(patch: Partial<BridgeContext>): void;
  emit(event: BridgeEmitted): void;
}

const batchedAcceptStreamEvent = enqueueActions((args) => {
  const { context, event, enqueue } = args as unknown as { context: BridgeContext; event: BridgeEvent; enqueue: Enqueue };
  if (event.type !== "stream.event") return;
  const events = (event as BatchedEvent).batch ?? [event.event];
  const counters: BridgeCounters = { ...context.counters };
  const patch: Partial<BridgeContext> = {};
  if (context.attempt !== 0) {
    patch.attempt = 0;
    patch.errorStreak = 0;
  }
  counters.eventsReceived += events.length;
  const removals: StreamEvent[] = [];
  for (const ev of events) {
    if (ev.projectId === "" || ev.eventType !== REMOVED_EVENT_TYPE) {
      counters.ignoredEvents += 1;
      enqueue.emit({ type: "eventIgnored", eventId: ev.eventId, eventType: ev.eventType, projectId: ev.projectId, why: ev.projectId === "" ? "empty_project_id" : "not_removed" });
    } else removals.push(ev);
  }
  const admitted = admitRemovals(context.recentRemovals, removals.map((e) => e.projectId), context.dedupCapacity);
  counters.duplicatesSuppressed += admitted.duplicates.length;
  counters.removalsFromStream += admitted.fresh.length;
  enqueue.assign({ ...patch, recentRemovals: admitted.keys, counters });
  for (const projectId of admitted.duplicates) enqueue.emit({ type: "duplicateSuppressed", projectId, source: "stream" });
  // admitRemovals keeps order; a repeated id inside one batch counts once.
  const fresh = new Set(admitted.fresh);
  for (const ev of removals) {
    if (!fresh.delete(ev.projectId)) continue;
    enqueue.emit({ type: "projectRemoved", projectId: ev.projectId, info: streamRemovalInfo(ev), receivedAtMs: ev.receivedAtMs });
  }
});

export interface BatchedBridgeOptions {
  url: string;
  onRemoval: (projectId: string, reason: string | undefined) => void;
  logger: Logger;
  timing?: Partial<BridgeTiming>;
}

/** A bridge whose stream events go through the machine in batches (see above). */
export function createBatchedBridge(options: BatchedBridgeOptions): Bridge {
  const client = createGrpcEventsClient({ address: parseServerUrl(options.url) });
  const registry = new HandlerRegistry();
  registry.register({ name: "bench-counter", onProjectRemoved: (id, info) => options.onRemoval(id, info.reason) });
  const bridge = withBridgeMachineVariant(
    (impl: Implementations) =>
      ({
        ...impl,
        actors: { ...impl.actors, projectEvents: batchingProjectEventsActor(client) },
        actions: { ...impl.actions, acceptStreamEvent: batchedAcceptStreamEvent },
      }) as unknown as Implementations,
    () => createBridge({ registry, client, env: {}, clientId: "bench-batched", logger: options.logger, ...(options.timing ? { timing: options.timing } : {}) }),
  );
  const stop = bridge.stop;
  return {
    ...bridge,
    actor: bridge.actor,
    async stop() {
      await stop();
      client.close();
    },
  };
}
