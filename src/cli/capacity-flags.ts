/**
 * The `serve` flags of a finite capacity (issue 21): the dev server then
 * serves at most N calls a second, as an engram server whose every call
 * costs a bcrypt check does (src/dev-server/call-capacity.ts).
 */
import type { CallCapacityOptions } from "../dev-server/call-capacity.js";
import { intFlag, usageError } from "./cli-args.js";
import { maxCommandInt } from "./command-numbers.js";

export const capacityFlagOptions = {
  "max-calls-per-second": { type: "string" },
  "max-queue-seconds": { type: "string" },
  pushback: { type: "boolean" },
  "processor-sharing": { type: "boolean" },
} as const;

export const capacityFlagsHelp = `  --max-calls-per-second N   serve at most N calls (opens + syncs) a second; the rest wait in a FIFO queue
  --processor-sharing   with --max-calls-per-second: every call in service at once, sharing the capacity
  --max-queue-seconds S refuse at once (RESOURCE_EXHAUSTED) a call past S seconds of pending work
  --pushback            refusals carry grpc-retry-pushback-ms (implies --max-queue-seconds 5)`;

export interface CapacityFlagValues {
  "max-calls-per-second"?: string | undefined;
  "max-queue-seconds"?: string | undefined;
  pushback?: boolean | undefined;
  "processor-sharing"?: boolean | undefined;
}

/** The capacity the flags ask for, or undefined without --max-calls-per-second. */
export function capacityFromFlags(values: CapacityFlagValues): CallCapacityOptions | undefined {
  const cps = intFlag(values["max-calls-per-second"], "max-calls-per-second", 1);
  // In ms it must fit Node's timers (2^31 - 1 ms).
  const queueS = intFlag(values["max-queue-seconds"], "max-queue-seconds", 1, Math.floor(maxCommandInt / 1000));
  if (cps === undefined) {
    if (queueS !== undefined || values.pushback || values["processor-sharing"])
      throw usageError("--max-queue-seconds, --pushback and --processor-sharing need --max-calls-per-second");
    return undefined;
  }
  const boundS = queueS ?? (values.pushback ? 5 : undefined);
  return {
    callsPerSecond: cps,
    discipline: values["processor-sharing"] ? "processor-sharing" : "fifo",
    ...(boundS !== undefined ? { maxPendingCalls: boundS * cps } : {}),
    ...(values.pushback ? { pushback: true } : {}),
  };
}
