/**
 * Turns a path of the machine graph into a schedule the world can play on a
 * SimulatedClock, and predicts what the bridge shows after each step.
 *
 * The graph has no time: any pending delayed event may come next. The world
 * has one clock, so a time-driven step (an `after` delay, or the sync
 * deadline that the runtime's SyncProjectState actor keeps on the bridge
 * clock) can only be caused when its timer is the earliest one pending. The
 * planner follows the path through the pure machine (`transition()`, with
 * the same named delays the runtime computes from `random`), keeps the
 * world's pending timers, and picks the jitter draws (the `random` values the
 * bridge will be given) by a small backtracking search so that every timed
 * step is the next timer due. A path no draw can order is infeasible; the
 * path generator then tries another prefix.
 */
import { initialTransition, transition, type AnyEventObject, type AnyMachineSnapshot, type AnyStateMachine } from "xstate";
import { bridgeMachine, createBridgeDelays } from "../../machines/bridge.machine.js";
import type { BridgeContext, BridgeEmitted, BridgeInput } from "../../machines/bridge.types.js";
import { graphMachine, withSyncRemovals } from "./graph-model.js";
import { SyncDeadlineError } from "../../src/call-errors.js";
import { syncRunOnMs } from "../../src/timing.js";

/** The round's deadline (syncTimeoutMs): a sent call is late and the actor sends sync.late. */
export const SYNC_LATE = "sync-late";
/** The longest a late call runs on (syncRunOnMs from its start): armed when it is late. */
export const SYNC_DEADLINE = "sync-deadline";
/** The link probe's own deadline (half the sync deadline), on the bridge clock. */
export const PROBE_DEADLINE = "probe-deadline";
export const STOP_TIMEOUT = "stop-timeout";
export const HANDLER_TIMEOUT = "handler-timeout";

/** Jitter draws the search may give a delay (uniform draws in [0, 1)). */
const DRAWS = [0.0005, 0.02, 0.06, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.999];

export interface PlannedStep {
  event: AnyEventObject;
  /** The timer whose firing causes this step, if it is time-driven. */
  timer: string | undefined;
  /** How far the clock advances for this step (0 for an instant step). */
  advanceMs: number;
  /** The clock after the step. */
  atMs: number;
  before: AnyMachineSnapshot;
  after: AnyMachineSnapshot;
  /** What the machine emits in this step. */
  emitted: BridgeEmitted[];
  /** Pending timers after the step (key -> due ms), as the bridge clock should hold them. */
  timers: ReadonlyMap<string, number>;
  /** Removals the handler has been called with after this step, in order. */
  handlerCalls: string[];
}

export interface Plan {
  initial: AnyMachineSnapshot;
  initialTimers: ReadonlyMap<string, number>;
  steps: PlannedStep[];
  /** The values the bridge's `random` must return, in order. */
  random: number[];
  /**
   * From which handler call on (0-based) the world's handler holds its calls
   * until the drain step releases them: the last removal before stop(), so
   * stop() finds a dispatch in flight and the drain (or the stop budget) is
   * a step of its own. Undefined when no removal precedes stop().
   */
  holdFromCall: number | undefined;
}

export type PlanResult = { ok: true; plan: Plan } | { ok: false; why: string };

interface SimState {
  snapshot: AnyMachineSnapshot;
  now: number;
  timers: Map<string, number>;
  removals: string[];
  released: boolean;
}

/** The machine with the runtime's named delays, drawing from a queue the search fills. */
function createModel() {
  let draws: number[] = [];
  const names: string[] = [];
  const random = () => {
    const v = draws.shift();
    if (v === undefined) throw new Error("planner: no draw left");
    return v;
  };
  const delays = createBridgeDelays(random);
  // Typed as any machine: the graph's events include xstate.after/done/error ones.
  const machine: AnyStateMachine = graphMachine.provide({
    delays: {
      ...delays,
      backoffDelay: (args) => {
        names.push("backoffDelay");
        return delays.backoffDelay(args);
      },
      heartbeatDelay: (args) => {
        names.push("heartbeatDelay");
        return delays.heartbeatDelay(args);
      },
      reopenDelay: (args) => {
        names.push("reopenDelay");
        return delays.reopenDelay(args);
      },
    },
  });
  return {
    machine,
    /** Runs `fn` with `values` as the draws; returns how many were drawn and for which delays. */
    withDraws<T>(values: number[], fn: () => T): { result: T; used: string[] } {
      draws = [...values];
      names.length = 0;
      const result = fn();
      return { result, used: [...names] };
    },
  };
}

const model = createModel();

type Action = { type: string; params?: unknown };

/** Applies the timer effects of one macrostep's actions. */
function applyActions(actions: readonly Action[], timers: Map<string, number>, now: number, ctx: BridgeContext): BridgeEmitted[] {
  const emitted: BridgeEmitted[] = [];
  for (const a of actions) {
    const p = (a.params ?? {}) as { id?: string; sendId?: string; delay?: number; event?: unknown; src?: unknown };
    switch (a.type) {
      case "xstate.raise":
        if (typeof p.delay === "number" && p.id !== undefined) timers.set(p.id, now + p.delay);
        break;
      case "xstate.cancel":
        if (p.sendId !== undefined) timers.delete(p.sendId);
        break;
      case "xstate.spawnChild":
        if (p.id === "syncProjectState") timers.set(SYNC_LATE, now + ctx.timing.syncTimeoutMs);
        if (p.id === "probeLink") timers.set(PROBE_DEADLINE, now + Math.ceil(ctx.timing.syncTimeoutMs / 2));
        break;
      case "xstate.stopChild":
        if (p.id === "syncProjectState") {
          timers.delete(SYNC_LATE);
          timers.delete(SYNC_DEADLINE);
        }
        if (p.id === "probeLink") timers.delete(PROBE_DEADLINE);
        break;
      case "xstate.emit":
        emitted.push(p.event as BridgeEmitted);
        break;
    }
  }
  return emitted;
}

/** The timer whose firing causes `event`, or undefined for an instant step. */
export function timerOf(event: AnyEventObject): string | undefined {
  if (event.type.startsWith("xstate.after.")) return event.type;
  if (event.type === "xstate.error.actor.syncProjectState" && event.error instanceof SyncDeadlineError) {
    return SYNC_DEADLINE;
  }
  if (event.type === "sync.late") return SYNC_LATE;
  // The connection that does not answer: the probe's own deadline runs out.
  if (event.type === "xstate.done.actor.probeLink" && event.output === false) return PROBE_DEADLINE;
  return undefined;
}

const isStopBudget = (event: AnyEventObject) => event.type.startsWith("xstate.after.stopBudget.");

/** One world step through the pure machine: every machine event it delivers, in order. */
function stepTransition(snapshot: AnyMachineSnapshot, event: AnyEventObject): [AnyMachineSnapshot, Action[]] {
  let current = snapshot;
  const all: Action[] = [];
  for (const e of withSyncRemovals(event, snapshot)) {
    const [next, actions] = transition(model.machine, current, e) as [AnyMachineSnapshot, Action[]];
    current = next;
    all.push(...actions);
  }
  return [current, all];
}

export function planPath(events: readonly AnyEventObject[], input: BridgeInput): PlanResult {
  const holdFromCall = lastRemovalBeforeStop(events, input);
  const holding = (removals: number, released: boolean) => holdFromCall !== undefined && removals > holdFromCall && !released;
  const failed = new Set<string>();
  let deepestFailure = { index: -1, why: "no step" };
  const fail = (index: number, why: string): undefined => {
    if (index > deepestFailure.index) deepestFailure = { index, why };
    return undefined;
  };

  /** Whether a timer of `delayName` fires after step `i`: then its draw is searched, short first. */
  const firesLater = (i: number, delayName: string) => events.slice(i + 1).some((e) => e.type.startsWith(`xstate.after.${delayName}.`));

  function search(i: number, s: SimState): { steps: PlannedStep[]; draws: number[] } | undefined {
    if (i === events.length) return { steps: [], draws: [] };
    const event = events[i]!;
    const memoKey = `${i}|${s.removals.length}|${s.released}|${[...s.timers]
      .map(([k, v]) => `${k}:${v - s.now}`)
      .sort()
      .join(",")}`;
    if (failed.has(memoKey)) return undefined;

    const timer = timerOf(event);
    let now = s.now;
    const timers = new Map(s.timers);
    if (timer !== undefined) {
      const due = timers.get(timer);
      if (due === undefined) return fail(i, `step ${i + 1} (${event.type}): its timer is not pending`);
      for (const [k, d] of timers) {
        if (k !== timer && d <= due) return fail(i, `step ${i + 1} (${event.type}): ${k} is due first (${d} <= ${due})`);
      }
      timers.delete(timer);
      now = due;
    }
    if (isStopBudget(event) && !holding(s.removals.length, s.released)) {
      return fail(i, `step ${i + 1}: the stop budget runs out only while a dispatch is in flight`);
    }

    // How many draws does this step take, and for which delays?
    const machineEvent = withRoundMs(event, timers, now, s.snapshot.context as BridgeContext);
    const dry = model.withDraws(Array(4).fill(0.5), () => stepTransition(s.snapshot, machineEvent));
    // A wait that no later step fires only has to outlast the others: the longest draw does.
    const combos = drawCombos(dry.used.map((name) => (firesLater(i, name) ? DRAWS : DRAWS.slice(-1))));
    for (const draws of combos) {
      const stepTimers = new Map(timers);
      const { result } = model.withDraws(draws, () => stepTransition(s.snapshot, machineEvent));
      const [after, actions] = result as [AnyMachineSnapshot, Action[]];
      // The late call runs on: its last deadline is armed now, counted from the call's start.
      if (event.type === "sync.late") {
        const timing = (after.context as BridgeContext).timing;
        stepTimers.set(SYNC_DEADLINE, now + syncRunOnMs(timing) - timing.syncTimeoutMs);
      }
      const emitted = applyActions(actions, stepTimers, now, after.context as BridgeContext);
      let released = s.released;
      const removals = [...s.removals];
      for (const e of emitted) if (e.type === "projectRemoved") removals.push(`${e.info.source}:${e.projectId}`);
      if (event.type === "STOP") stepTimers.set(STOP_TIMEOUT, now + (after.context as BridgeContext).timing.stopTimeoutMs);
      if (event.type === "xstate.done.actor.drainDispatch") released = true;
      // The held call runs under its handler timeout until it is released or given up.
      if (holding(removals.length, released) && !holding(s.removals.length, s.released)) {
        stepTimers.set(HANDLER_TIMEOUT, now + (after.context as BridgeContext).timing.handlerTimeoutMs);
      }
      if (after.status === "done") {
        // stop() resolves: its timer is cleared and the dispatcher is closed (a held call is given up).
        stepTimers.delete(STOP_TIMEOUT);
        stepTimers.delete(HANDLER_TIMEOUT);
        for (const k of [...stepTimers.keys()]) if (k.startsWith("xstate.after.")) stepTimers.delete(k);
      }
      if (released) stepTimers.delete(HANDLER_TIMEOUT);
      const handlerCalls = holding(removals.length, released) ? removals.slice(0, holdFromCall! + 1) : removals;
      const step: PlannedStep = {
        event,
        timer,
        advanceMs: now - s.now,
        atMs: now,
        before: s.snapshot,
        after,
        emitted,
        timers: stepTimers,
        handlerCalls,
      };
      const rest = search(i + 1, { snapshot: after, now, timers: stepTimers, removals, released });
      if (rest) return { steps: [step, ...rest.steps], draws: [...draws, ...rest.draws] };
    }
    failed.add(memoKey);
    return undefined;
  }

  // The heartbeat wait armed when the actor starts (idle) is a draw too.
  const initialOrder = firesLater(-1, "heartbeatDelay") ? DRAWS : DRAWS.slice(-1);
  for (const first of initialOrder) {
    const init = model.withDraws([first], () => initialTransition(model.machine, input));
    const [initial, initialActions] = init.result as [AnyMachineSnapshot, Action[]];
    const initialTimers = new Map<string, number>();
    applyActions(initialActions, initialTimers, 0, initial.context as BridgeContext);
    const found = search(0, { snapshot: initial, now: 0, timers: initialTimers, removals: [], released: false });
    if (found) {
      return {
        ok: true,
        plan: { initial, initialTimers, steps: found.steps, random: [first, ...found.draws], holdFromCall },
      };
    }
  }
  return { ok: false, why: deepestFailure.why };
}

/**
 * The sync answer as the runtime's actor reports it: with `roundMs`, how
 * long the call took (from the round's pending deadline), which a late
 * round's slowdown reads.
 */
function withRoundMs(event: AnyEventObject, timers: ReadonlyMap<string, number>, now: number, ctx: BridgeContext): AnyEventObject {
  if (event.type !== "xstate.done.actor.syncProjectState") return event;
  const late = timers.get(SYNC_LATE);
  const hard = timers.get(SYNC_DEADLINE);
  const startedAt = late !== undefined ? late - ctx.timing.syncTimeoutMs : hard !== undefined ? hard - syncRunOnMs(ctx.timing) : now;
  return { ...event, output: { ...(event.output as object), roundMs: now - startedAt } };
}

/** Index of the last removal emitted before STOP (draws do not change what is emitted). */
function lastRemovalBeforeStop(events: readonly AnyEventObject[], input: BridgeInput): number | undefined {
  return model.withDraws(Array(events.length * 2 + 1).fill(0.5), () => {
    let [snapshot] = initialTransition(model.machine, input) as [AnyMachineSnapshot, Action[]];
    let removals = 0;
    for (const event of events) {
      if (event.type === "STOP") break;
      const [next, actions] = stepTransition(snapshot, event);
      removals += actions.filter(
        (a) => a.type === "xstate.emit" && (a.params as { event?: { type?: string } }).event?.type === "projectRemoved",
      ).length;
      snapshot = next;
    }
    return removals > 0 ? removals - 1 : undefined;
  }).result;
}

function drawCombos(choices: number[][]): number[][] {
  let out: number[][] = [[]];
  for (const options of choices) out = out.flatMap((prefix) => options.map((v) => [...prefix, v]));
  return out;
}
