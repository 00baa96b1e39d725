/**
 * Runs bridgeMachine with controllable fake actors on a SimulatedClock, for
 * machine-level tests. Each fake records its calls so a test can answer them.
 */
import { createActor, fromPromise, SimulatedClock, type AnyActorRef } from "xstate";
import { bridgeMachine, createBridgeDelays } from "../../machines/bridge.machine.js";
import type {
  BridgeEmitted,
  ProbeLinkInput,
  ProjectEventsInput,
  StreamEvent,
  SyncProjectStateInput,
  SyncResult,
} from "../../machines/bridge.types.js";
import { flattenConnection, heartbeatOf } from "../../src/bridge-status.js";
import { ServerGoawayError, SyncDeadlineError } from "../../src/call-errors.js";
import { BridgeError, type BridgeErrorCode } from "../../src/errors.js";
import { defaultBridgeTiming, type BridgeTiming } from "../../src/timing.js";

export interface FakeCall<TInput, TOutput> {
  input: TInput;
  signal: AbortSignal;
  settled: boolean;
  resolve(value: TOutput): void;
  reject(error: unknown): void;
}

function deferredActor<TOutput, TInput>(calls: FakeCall<TInput, TOutput>[], onStart?: (input: TInput) => void) {
  return fromPromise<TOutput, TInput>(
    ({ input, signal }) =>
      new Promise<TOutput>((resolve, reject) => {
        onStart?.(input);
        const call: FakeCall<TInput, TOutput> = {
          input,
          signal,
          settled: false,
          resolve: (v) => {
            call.settled = true;
            resolve(v);
          },
          reject: (e) => {
            call.settled = true;
            reject(e);
          },
        };
        calls.push(call);
      }),
  );
}

export interface HarnessOptions {
  timing?: Partial<BridgeTiming>;
  random?: () => number;
  dedupCapacity?: number;
  drain?: () => Promise<void>;
  /**
   * What the link probe answers after a heartbeat deadline while streaming:
   * false (the link is suspect, as without a probe) or true (a slow server).
   * Defaults to false.
   */
  linkAnswers?: boolean;
}

export function createMachineHarness(options: HarnessOptions = {}) {
  const clock = new SimulatedClock();
  const streams: FakeCall<ProjectEventsInput, void>[] = [];
  const syncs: FakeCall<SyncProjectStateInput, SyncResult>[] = [];
  const emitted: BridgeEmitted[] = [];
  const delaysAsked: { name: string; ms: number }[] = [];
  const random = options.random ?? (() => 0.5);
  const delays = createBridgeDelays(random);
  const recorded = Object.fromEntries(
    Object.entries(delays).map(([name, fn]) => [
      name,
      (args: Parameters<typeof fn>[0]) => {
        const ms = fn(args);
        delaysAsked.push({ name, ms });
        return ms;
      },
    ]),
  ) as typeof delays;
  const machine = bridgeMachine.provide({
    actors: {
      // A fake call's request is on the wire as soon as it is made (as with an injected client).
      projectEvents: deferredActor<void, ProjectEventsInput>(streams, (input) => input.parent.send({ type: "stream.sent" })),
      syncProjectState: deferredActor<SyncResult, SyncProjectStateInput>(syncs),
      drainDispatch: fromPromise<void, void>(options.drain ?? (() => Promise.resolve())),
      probeLink: fromPromise<boolean, ProbeLinkInput>(() => Promise.resolve(options.linkAnswers ?? false)),
    },
    delays: recorded,
  });
  const actor = createActor(machine, {
    clock,
    input: {
      clientId: "test-client",
      timing: { ...defaultBridgeTiming, ...options.timing },
      dedupCapacity: options.dedupCapacity ?? 256,
    },
  });
  for (const type of [
    "projectRemoved",
    "duplicateSuppressed",
    "eventIgnored",
    "streamFailed",
    "streamEnded",
    "syncCompleted",
    "syncFailed",
    "serverGoaway",
    "idsRefused",
    "serverSlow",
  ] as const) {
    actor.on(type, (e) => emitted.push(e));
  }
  actor.start();

  const lastStream = () => {
    const s = streams.at(-1);
    if (!s) throw new Error("no stream call yet");
    return s;
  };
  const lastSync = () => {
    const s = syncs.at(-1);
    if (!s) throw new Error("no sync call yet");
    return s;
  };
  return {
    clock,
    actor,
    streams,
    syncs,
    emitted,
    delaysAsked,
    lastStream,
    lastSync,
    /** Flattened connection state, as bridge.status() shows it. */
    connection(): string {
      const v = actor.getSnapshot().value as { connection: string | { open: string } };
      return typeof v.connection === "string" ? v.connection : v.connection.open;
    },
    /** The connection state as status() shows it (reopening after GOAWAY shows as backoff). */
    status(): string {
      return flattenConnection(actor.getSnapshot().value);
    },
    heartbeat(): string {
      return heartbeatOf(actor.getSnapshot().value);
    },
    openStreams(): number {
      return streams.filter((s) => !s.signal.aborted && !s.settled).length;
    },
    sendHeaders(): void {
      (lastStream().input.parent as AnyActorRef).send({ type: "stream.opened" });
    },
    sendEvent(init: Partial<StreamEvent> & { projectId: string }): void {
      const event: StreamEvent = { eventId: "1", eventType: 1, timestampUnixMs: 0, reason: "", receivedAtMs: 0, ...init };
      lastStream().input.parent.send({ type: "stream.events", events: [event] });
    },
    failStream(code: BridgeErrorCode = "unavailable"): void {
      lastStream().reject(new BridgeError("stream failed", code));
    },
    answerSync(removed: string[] = [], unknown: string[] = []): void {
      // As the real actor does: the removed ids first, as sync.removed, then the result.
      if (removed.length > 0) lastSync().input.parent.send({ type: "sync.removed", projectIds: removed, receivedAtMs: 0 });
      lastSync().resolve({ removed, unknown, serverTimeUnixMs: 0, skewMs: 0, reported: 0, receivedAtMs: 0 });
    },
    failSync(code: BridgeErrorCode = "unavailable"): void {
      lastSync().reject(new BridgeError("sync failed", code));
    },
    /**
     * The round's deadline (timeoutMs) passed with its request on the wire:
     * what the runtime's actor does then, sending sync.late while the call
     * goes on (the machine probes the link, then waits on or gives up).
     */
    timeOutSync(): void {
      lastSync().input.parent.send({ type: "sync.late", timeoutMs: lastSync().input.timeoutMs });
    },
    /**
     * START, the stream opens, its resync passes its deadline and (with
     * `linkAnswers: true`) the link answers: the round runs on. Returns the
     * late call.
     */
    async lateRound(): Promise<FakeCall<SyncProjectStateInput, SyncResult>> {
      actor.send({ type: "START" });
      (lastStream().input.parent as AnyActorRef).send({ type: "stream.opened" });
      const late = lastSync();
      late.input.parent.send({ type: "sync.late", timeoutMs: late.input.timeoutMs });
      await flush();
      await flush();
      return late;
    },
    /** The longest a late call may run on (runOnMs) passed: the runtime's actor throws. */
    giveUpSync(): void {
      const input = lastSync().input;
      lastSync().reject(new SyncDeadlineError(input.runOnMs ?? input.timeoutMs));
    },
    /** The client ended the stream because the server sent GOAWAY. */
    goawayStream(): void {
      lastStream().reject(new ServerGoawayError());
    },
    removals(): string[] {
      return emitted.flatMap((e) => (e.type === "projectRemoved" ? [`${e.info.source}:${e.projectId}`] : []));
    },
  };
}

/** Lets promise callbacks (actor done/error) run. */
export async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
  await new Promise<void>((r) => setImmediate(r));
}
