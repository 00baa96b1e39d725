/**
 * The simulator's fault schedule: one seed draws the whole run (round trip,
 * header mode, how long the chaos lasts, and every fault with its time), so
 * a seed replays exactly. A schedule is plain JSON, so a shrunk one prints.
 */
import type { GrpcCodeName, HeaderMode } from "../../src/testing/index.js";
import { PROJECT_ID_MAX_BYTES } from "../../src/server-data.js";
import { seededRandom } from "../helpers/seeded-random.js";

export type HandlerMode = "throw" | "hang" | "slow" | "stop";

/**
 * A tracker fault: connectedProjectIds() throws at the call ("throw") or
 * after yielding some ids ("throwMidway"), returns something that is not
 * iterable ("notIterable": null, a number), returns its ids mixed with
 * garbage (null, 5, {}, "", duplicates: "garbage"), or has() throws
 * ("hasThrows").
 */
export type TrackerFaultMode = "throw" | "throwMidway" | "notIterable" | "garbage" | "hasThrows";
/** One fault, at `at` ms after the start (simulated). */
export type Fault = { at: number } & (
  | { kind: "create" | "remove" | "recreate" | "connect" | "disconnect"; id: string }
  | { kind: "drop"; code: GrpcCodeName }
  | { kind: "reset" | "end" | "stop" }
  | { kind: "goaway"; midMessage: boolean }
  | { kind: "churn"; everyMs: number; forMs: number }
  | { kind: "inspectThrows"; forMs: number }
  | { kind: "hang"; forMs: number; ignoreAbort: boolean }
  | { kind: "slow"; ms: number; forMs: number }
  | { kind: "failSyncs" | "rejectStreams"; n: number; code: GrpcCodeName }
  | { kind: "down"; forMs: number }
  | { kind: "duplicate" | "reorder" | "flood" | "syncNow"; n: number }
  | { kind: "limit"; max: number; forMs: number }
  | { kind: "handler"; mode: HandlerMode; forMs: number }
  /** A tracker fault; unlike the server's, it may outlast the chaos (it is lifted at at + forMs). */
  | { kind: "tracker"; mode: TrackerFaultMode; forMs: number }
);

export interface Scenario {
  seed: number;
  rttMs: number;
  headers: HeaderMode;
  /** Faults happen in [0, chaosMs); at chaosMs every server and handler fault is lifted. */
  chaosMs: number;
  /** Project ids of the world; all live at the start. */
  projects: string[];
  /** Ids the daemon holds at the start. */
  tracked: string[];
  faults: Fault[];
  /** BridgeOptions.maxQueuedRemovals and maxQueuedBytes of the run. */
  maxQueuedRemovals: number;
  maxQueuedBytes: number;
  /** Length of every REMOVED event's reason the schedule makes (removals and floods); 0 = empty. */
  reasonChars: number;
  /** Whether reasons are multi-byte text (2 UTF-8 bytes a character), so a long one passes 1 KiB and is cut. */
  reasonWide: boolean;
  /** Prefix of the flood's ids (`prefix-N`): long ones make the byte bound bite before the count. */
  floodPrefix: string;
  /** The memory server's per-stream buffer (streamBufferSize): a slow stream's further events are dropped. */
  streamBufferSize?: number;
  /** The memory server's heartbeat book (unknownAfterMs): live projects not reported this long are answered as unknown. */
  unknownAfterMs?: number;
}

/** Codes a stream may end with (dropStreams) or be refused with. */
const streamCodes: GrpcCodeName[] = [
  "unavailable",
  "internal",
  "unknown",
  "resource_exhausted",
  "unauthenticated",
  "permission_denied",
  "deadline_exceeded",
  "canceled",
  "aborted",
  "failed_precondition",
];
/** Codes a sync may fail with; deadline_exceeded here is one the server sent. */
const syncCodes: GrpcCodeName[] = [
  "unavailable",
  "deadline_exceeded",
  "internal",
  "unknown",
  "unauthenticated",
  "permission_denied",
  "resource_exhausted",
  "invalid_argument",
  "canceled",
];

export function drawScenario(seed: number): Scenario {
  const rnd = seededRandom(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
  const chance = (p: number) => rnd() < p;

  // The dimensions added later (bounds, long ids, tracker faults, the server's
  // buffer and heartbeat book) come from a second stream, so the first one
  // draws the same faults as it always did.
  const extra = seededRandom(seed ^ 0x5bd1e995);
  const xint = (lo: number, hi: number) => lo + Math.floor(extra() * (hi - lo + 1));
  const xpick = <T>(xs: readonly T[]): T => xs[Math.floor(extra() * xs.length)] as T;
  const xchance = (p: number) => extra() < p;
  // Long ids (up to the 512 bytes the bridge accepts): `p3-yyyy…`, some multi-byte.
  const idPad = xchance(0.3) ? xint(20, 500) : 0;
  const wideIds = xchance(0.3);
  const padId = (base: string): string => {
    if (idPad === 0) return base;
    const unit = wideIds ? "\u00fc" : "y";
    const room = Math.floor((PROJECT_ID_MAX_BYTES - base.length - 1) / (wideIds ? 2 : 1));
    return `${base}-${unit.repeat(Math.min(idPad, room))}`;
  };
  const projects = Array.from({ length: int(3, 8) }, (_, i) => padId(`p${i}`));
  const tracked = projects.filter(() => chance(0.6));
  // With long ids, more projects, mostly tracked: enough bytes for one heartbeat answer to fill the byte bound.
  if (idPad > 0) {
    for (let i = xint(0, 6); i > 0; i--) {
      const id = padId(`q${i}`);
      projects.push(id);
      if (xchance(0.8)) tracked.push(id);
    }
  }
  const chaosMs = int(5, 40) * 1000;
  const scenario: Scenario = {
    seed,
    rttMs: pick([0, 2, 10, 40, 100]),
    headers: pick<HeaderMode>(["on-open", "on-open", "first-event", "never"]),
    chaosMs,
    projects,
    tracked,
    faults: [],
    maxQueuedRemovals: xpick([2, 3, 8, 50, 200, 200, 1000]),
    maxQueuedBytes: xpick([4096, 4096, 8192, 32768, 262144, 1 << 20]),
    reasonChars: xchance(0.4) ? xpick([16, 200, 700, 1024, 1200]) : 0,
    reasonWide: xchance(0.3),
    floodPrefix: xchance(0.4) ? `flood-${"x".repeat(xint(10, 490))}` : "flood",
  };
  if (xchance(0.45)) scenario.streamBufferSize = xpick([1, 2, 4, 64]);
  if (xchance(0.3)) scenario.unknownAfterMs = xpick([0, 1000, 3000, 8000]);
  const count = int(3, 40);
  const at = () => int(0, chaosMs - 1);
  const span = () => int(200, 8000);
  const id = () => pick(projects);
  for (let i = 0; i < count; i++) {
    const r = rnd();
    let f: Fault;
    if (r < 0.3) f = { at: at(), kind: pick(["create", "remove", "remove", "recreate"] as const), id: id() };
    else if (r < 0.36) f = { at: at(), kind: "drop", code: pick(streamCodes) };
    else if (r < 0.39) f = { at: at(), kind: pick(["reset", "end"] as const) };
    else if (r < 0.42) f = { at: at(), kind: "goaway", midMessage: chance(0.5) };
    else if (r < 0.44)
      f = chance(0.6)
        ? { at: at(), kind: "churn", everyMs: pick([150, 300, 700]), forMs: span() }
        : { at: at(), kind: "inspectThrows", forMs: span() };
    else if (r < 0.48) f = { at: at(), kind: "hang", forMs: span(), ignoreAbort: chance(0.3) };
    else if (r < 0.52) f = { at: at(), kind: "slow", ms: pick([100, 500, 900, 1500, 4000]), forMs: span() };
    else if (r < 0.57) f = { at: at(), kind: "failSyncs", n: int(1, 5), code: pick(syncCodes) };
    else if (r < 0.6) f = { at: at(), kind: "rejectStreams", n: int(1, 5), code: pick(streamCodes) };
    else if (r < 0.63) f = { at: at(), kind: "down", forMs: span() };
    else if (r < 0.66) f = { at: at(), kind: pick(["duplicate", "reorder"] as const), n: int(1, 4) };
    else if (r < 0.69) f = { at: at(), kind: "flood", n: pick([5, 50, 300, 700]) };
    else if (r < 0.72) f = { at: at(), kind: "limit", max: pick([1, 1, 2]), forMs: span() };
    else if (r < 0.84) f = { at: at(), kind: pick(["connect", "connect", "disconnect"] as const), id: id() };
    else if (r < 0.91)
      f = { at: at(), kind: "handler", mode: pick<HandlerMode>(["throw", "hang", "slow", "throw", "hang", "slow", "stop"]), forMs: span() };
    else if (r < 0.98) f = { at: at(), kind: "syncNow", n: int(1, 30) };
    else f = { at: at(), kind: "stop" };
    scenario.faults.push(f);
  }
  // Tracker faults (a second stream, see above).
  for (let i = xchance(0.35) ? xint(1, 4) : 0; i > 0; i--) {
    scenario.faults.push({
      at: xint(0, chaosMs - 1),
      kind: "tracker",
      mode: xpick<TrackerFaultMode>(["throw", "throwMidway", "notIterable", "garbage", "hasThrows"]),
      forMs: xint(200, 12000),
    });
  }
  // A burst: a flood with slow handlers, and removals of tracked projects in its
  // wake (behind a paused stream, where a bounded server buffer drops them).
  if (xchance(0.3)) {
    const burstAt = xint(0, Math.max(0, chaosMs - 2000));
    scenario.faults.push({ at: burstAt, kind: "flood", n: xpick([20, 100, 400]) });
    if (xchance(0.6))
      scenario.faults.push({ at: burstAt, kind: "handler", mode: xpick<HandlerMode>(["slow", "hang"]), forMs: xint(500, 4000) });
    for (let i = xint(1, 3); i > 0; i--)
      scenario.faults.push({ at: burstAt + xint(0, 1500), kind: "remove", id: xpick(tracked.length > 0 ? tracked : projects) });
  }
  // A mass removal: most tracked projects at once, with slow handlers, so the
  // heartbeat lane fills the whole bound (with long ids, the byte bound first).
  if (tracked.length > 1 && xchance(0.3)) {
    const massAt = xint(0, Math.max(0, chaosMs - 1000));
    scenario.faults.push({ at: massAt, kind: "handler", mode: xpick<HandlerMode>(["slow", "hang"]), forMs: xint(1000, 6000) });
    if (xchance(0.5)) scenario.faults.push({ at: massAt, kind: "down", forMs: xint(200, 3000) });
    for (const id of tracked) if (xchance(0.8)) scenario.faults.push({ at: massAt + xint(0, 200), kind: "remove", id });
  }
  // Removals after the chaos, so every run also checks delivery on a healthy server.
  for (let i = int(0, 2); i > 0; i--) scenario.faults.push({ at: chaosMs + int(0, 3000), kind: "remove", id: id() });
  // A blind tracker across the heal: a removal of a tracked project while the
  // server is down (no stream sees it) can reach the bridge only by a
  // heartbeat round, and none runs until the tracker reads again; from then
  // on it is owed. Its own id, held from the start, so no other fault touches it.
  if (xchance(0.25)) {
    const blindAt = Math.max(0, chaosMs - xint(500, 3000));
    const id = padId("blind");
    scenario.projects.push(id);
    scenario.tracked.push(id);
    scenario.faults.push({
      at: blindAt,
      kind: "tracker",
      mode: xpick<TrackerFaultMode>(["throw", "throwMidway", "notIterable"]),
      forMs: xint(2000, 12000),
    });
    scenario.faults.push({ at: blindAt, kind: "down", forMs: 4000 });
    scenario.faults.push({ at: blindAt + xint(1, 400), kind: "remove", id });
  }
  scenario.faults.sort((a, b) => a.at - b.at);
  return scenario;
}

/** One line per fault, for --verbose and failure reports. */
export function describeFault(f: Fault): string {
  const { at, kind, ...rest } = f;
  const args = Object.entries(rest)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(" ");
  return `+${at}ms ${kind}${args ? ` ${args}` : ""}`;
}

/** The reason a scheduled removal or flood carries. */
export function reasonOf(s: Scenario): string {
  return (s.reasonWide ? "\u00e9" : "r").repeat(s.reasonChars);
}

/** When the last fault ends (a tracker fault may outlast the chaos). */
export function lastFaultEndMs(s: Scenario): number {
  return s.faults.reduce((m, f) => Math.max(m, f.at + (f.kind === "tracker" ? f.forMs : 0)), 0);
}
