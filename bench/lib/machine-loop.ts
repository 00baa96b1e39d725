/**
 * The floor of any design that steps the statechart once per lone message:
 * a bare connect-node `for await` loop whose body hands each message to the
 * bridge statechart on its own (bridgeMachine with stub actors, in
 * `streaming`) as a one-message `stream.events`; the receiver is called from
 * the machine's `projectRemoved`. No dispatcher, no transport wrappers, no
 * subscribers: the transport plus one machine step, nothing else.
 */
import { createActor, fromPromise } from "xstate";
import { bridgeMachine } from "../../machines/bridge.machine.js";
import type { BridgeParentRef, ProjectEventsInput, StreamEvent, SyncProjectStateInput, SyncResult } from "../../machines/bridge.types.js";
import { defaultBridgeTiming } from "../../src/index.js";
import { connectNodeStream, type OnEvent, type StreamLoop } from "./raw-clients.js";

/**
 * The bridge statechart alone, started and in `streaming`: its stream actor
 * a stub that hands back the machine (`parent`, where `stream.events` go),
 * its sync actor one that never settles. `onRemoved` hears every emitted
 * `projectRemoved`.
 */
export async function startStreamingMachine(
  onRemoved: (projectId: string, reason: string) => void = () => {},
): Promise<{ parent: BridgeParentRef; stop: () => void }> {
  let parent: BridgeParentRef | undefined;
  const machine = bridgeMachine.provide({
    actors: {
      projectEvents: fromPromise<void, ProjectEventsInput>(({ input }) => {
        parent = input.parent;
        return new Promise<void>(() => {});
      }),
      syncProjectState: fromPromise<SyncResult, SyncProjectStateInput>(() => new Promise<never>(() => {})),
    },
  });
  const actor = createActor(machine, { input: { clientId: "machine-floor", timing: { ...defaultBridgeTiming }, dedupCapacity: 256 } });
  actor.on("projectRemoved", (e) => onRemoved(e.projectId, e.info.reason ?? ""));
  actor.start();
  actor.send({ type: "START" });
  await new Promise((r) => setTimeout(r, 1));
  if (parent === undefined) throw new Error("machine-loop: the stub stream actor did not start");
  parent.send({ type: "stream.opened" });
  return { parent, stop: () => actor.stop() };
}

export interface MachineLoopOptions {
  /**
   * Call the receiver in the loop body, before the step (the step still
   * runs, after it): times how the machine's code footprint slows the
   * transport's own receive path. Defaults to false (the receiver hears the
   * machine's `projectRemoved`).
   */
  receiveOnly?: boolean;
  /**
   * Hand the messages of one event-loop turn to the machine as one
   * `stream.events` from process.nextTick, as the bridge's actor does.
   * Defaults to false: one step per message, sent from the loop body.
   */
  batchPerTurn?: boolean;
}

/** A bare connect-node client on its own HTTP/2 session that steps the bridge statechart with what it reads. */
export function connectNodeMachineLoop(baseUrl: string, onEvent: OnEvent, options: MachineLoopOptions = {}): StreamLoop {
  const receiveOnly = options.receiveOnly === true;
  let stopMachine = () => {};
  return connectNodeStream(
    baseUrl,
    "raw-connect-machine",
    async (messages) => {
      let stopReading = false;
      const { parent, stop } = await startStreamingMachine((projectId, reason) => {
        if (!receiveOnly && onEvent(projectId, reason) === true) stopReading = true;
      });
      stopMachine = stop;
      let pending: StreamEvent[] = [];
      let flushing = false;
      const flush = () => {
        flushing = false;
        if (pending.length === 0) return;
        const events = pending;
        pending = [];
        parent.send({ type: "stream.events", events });
      };
      try {
        for await (const ev of messages) {
          if (receiveOnly && onEvent(ev.projectId, ev.reason) === true) stopReading = true;
          const event: StreamEvent = {
            eventId: ev.eventId,
            eventType: ev.eventType,
            projectId: ev.projectId,
            timestampUnixMs: Number(ev.timestampUnixMs),
            reason: ev.reason,
            receivedAtMs: 0,
          };
          if (options.batchPerTurn === true) {
            pending.push(event);
            if (!flushing) {
              flushing = true;
              process.nextTick(flush);
            }
          } else parent.send({ type: "stream.events", events: [event] });
          if (stopReading) break;
        }
        flush();
      } finally {
        stop();
      }
    },
    () => stopMachine(),
  );
}
