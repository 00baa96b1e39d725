/**
 * The one parser for every number typed into a stdin command of `serve` and
 * `dev` (fail-sync N, delay-sync MS, a numeric status code): plain decimal
 * digits only, range-checked, or a usage error that says what was expected
 * and what was given. Never coerces (no "1e3", "0x10", "1.5", " 7").
 */
import { usageError } from "./cli-args.js";

/** The largest number a command takes: Node's timer limit (2^31 - 1); a longer delay would fire after 1 ms. */
export const maxCommandInt = 2 ** 31 - 1;

/** Longest piece of a bad value quoted back. */
const maxQuotedChars = 32;

/** Parses `value` as an integer in [min, max] for `what` (e.g. "delay-sync MS"); throws a usage error otherwise. */
export function commandInt(value: string | undefined, what: string, range: { min: number; max: number }): number {
  const expected = `expected an integer in [${range.min}, ${range.max}]`;
  if (value === undefined || value === "") throw usageError(`${what}: ${expected}, got nothing`);
  const n = /^-?\d{1,16}$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < range.min || n > range.max) {
    const quoted = JSON.stringify(value.length > maxQuotedChars ? `${value.slice(0, maxQuotedChars)}…` : value);
    throw usageError(`${what}: ${expected}, got ${quoted}`);
  }
  return n;
}
