/**
 * The dispatch queue's bounds (BridgeOptions.maxQueuedRemovals and
 * maxQueuedBytes): defaults and validation in one place.
 */
import { BridgeError } from "./errors.js";

/** The most removals queued or in flight. The stream may fill half; the rest is kept for tracked projects. */
export const DEFAULT_MAX_QUEUED_REMOVALS = 1000;
/** The most bytes (estimated heap) the queued removals may hold, split the same way. */
export const DEFAULT_MAX_QUEUED_BYTES = 1024 * 1024;

export interface DispatchBounds {
  maxQueuedRemovals: number;
  maxQueuedBytes: number;
}

/** Fills and checks the bounds; throws BridgeError("invalid_config") naming the field. */
export function resolveDispatchBounds(options: {
  maxQueuedRemovals?: number | undefined;
  maxQueuedBytes?: number | undefined;
}): DispatchBounds {
  const maxQueuedRemovals = options.maxQueuedRemovals ?? DEFAULT_MAX_QUEUED_REMOVALS;
  const maxQueuedBytes = options.maxQueuedBytes ?? DEFAULT_MAX_QUEUED_BYTES;
  // At least 2 so that the stream's half is never zero.
  check("maxQueuedRemovals", maxQueuedRemovals, 2, 10_000_000);
  check("maxQueuedBytes", maxQueuedBytes, 4096, 2 ** 40);
  return { maxQueuedRemovals, maxQueuedBytes };
}

function check(name: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new BridgeError(`${name} must be an integer in [${min}, ${max}], got ${String(value)}`, "invalid_config");
  }
}
