/**
 * The simulator's fault schedule: one seed draws the whole run (round trip,
 * header mode, how long the chaos lasts, and every fault with its time), so
 * a seed replays exactly. A schedule is plain JSON, so a shrunk one prints.
 */
import type { GrpcCodeName, HeaderMode } from "../../src/testing/index.js";
import { seededRandom } from "../helpers/seeded-random.js";

export type HandlerMode = "throw" | "hang" | "slow" | "stop";

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

  const projects = Array.from({ length: int(3, 8) }, (_, i) => `p${i}`);
  const tracked = projects.filter(() => chance(0.6));
  const chaosMs = int(5, 40) * 1000;
  const scenario: Scenario = {
    seed,
    rttMs: pick([0, 2, 10, 40, 100]),
    headers: pick<HeaderMode>(["on-open", "on-open", "first-event", "never"]),
    chaosMs,
    projects,
    tracked,
    faults: [],
  };
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
  // Removals after the chaos, so every run also checks delivery on a healthy server.
  for (let i = int(0, 2); i > 0; i--) scenario.faults.push({ at: chaosMs + int(0, 3000), kind: "remove", id: id() });
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
