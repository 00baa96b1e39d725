/**
 * The timing flags every bridge-running command accepts (`--heartbeat-ms`,
 * `--handler-timeout-ms`, …), turned into a Partial<BridgeTiming>.
 */
import { timingBounds, type BridgeTiming } from "../timing.js";
import { usageError } from "./cli-args.js";
import { quoteValue, strictInt } from "./command-numbers.js";

/** flag name → BridgeTiming field (all in ms). */
const timingFlags = {
  "heartbeat-ms": "heartbeatMs",
  "heartbeat-jitter-ms": "heartbeatJitterMs",
  "sync-timeout-ms": "syncTimeoutMs",
  "handler-timeout-ms": "handlerTimeoutMs",
  "stop-timeout-ms": "stopTimeoutMs",
  "backoff-min-ms": "backoffMinMs",
  "backoff-max-ms": "backoffMaxMs",
  "open-confirm-ms": "openConfirmMs",
  "stable-after-ms": "stableAfterMs",
} as const satisfies Record<string, keyof BridgeTiming>;

type TimingFlag = keyof typeof timingFlags;

/** parseArgs option entries for the timing flags. */
export const timingFlagOptions = Object.fromEntries(Object.keys(timingFlags).map((flag) => [flag, { type: "string" as const }])) as Record<
  TimingFlag,
  { type: "string" }
>;

/** The help lines of the timing flags. */
export const timingFlagsHelp = `Timing (ms; defaults as in the README's configuration table unless noted):
  --heartbeat-ms N          mean heartbeat period (the jitter then defaults to N/12)
  --heartbeat-jitter-ms N   heartbeat jitter
  --sync-timeout-ms N       deadline of one SyncProjectState call
  --handler-timeout-ms N    one handler's budget for one removal (also kills an --exec child)
  --stop-timeout-ms N       graceful stop budget after SIGINT/SIGTERM/SIGHUP
  --backoff-min-ms N / --backoff-max-ms N / --open-confirm-ms N / --stable-after-ms N`;

/**
 * Reads the timing flags over `base`. A heartbeat period given without a
 * jitter gets a jitter of period/12 (the default ratio, 5 s of 60 s), so a
 * short period stays valid.
 */
export function readTimingFlags(values: Partial<Record<string, unknown>>, base: Partial<BridgeTiming> = {}): Partial<BridgeTiming> {
  const timing: Partial<BridgeTiming> = { ...base };
  for (const [flag, field] of Object.entries(timingFlags) as Array<[TimingFlag, keyof BridgeTiming]>) {
    const raw = values[flag];
    if (typeof raw === "string") timing[field] = timingFlag(raw, flag, field);
  }
  if (values["heartbeat-ms"] !== undefined && values["heartbeat-jitter-ms"] === undefined && timing.heartbeatMs !== undefined) {
    timing.heartbeatJitterMs = Math.floor(timing.heartbeatMs / 12);
  }
  return timing;
}

/**
 * One timing flag as plain decimal digits within the library's own range
 * for its field (timingBounds), at most 2^31 - 1. A range that depends on another field (jitter <=
 * period, backoff max >= min) is checked by validateBridgeOptions.
 */
function timingFlag(raw: string, flag: TimingFlag, field: keyof BridgeTiming): number {
  const { min, max } = timingBounds[field];
  const n = strictInt(raw);
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw usageError(`--${flag} must be an integer in [${min}, ${max}], got ${quoteValue(raw)} (plain decimal digits)`);
  }
  return n;
}
