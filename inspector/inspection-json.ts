/**
 * The plain, bounded, redacted JSON copy of whatever an inspection event
 * carries. Inspection events hold server data (project ids, reasons, whole
 * heartbeat answers with up to 10,000 removed ids per chunk), so every copy
 * is cut to a bounded size where it is made: long arrays keep their first
 * items and say how many were left out, long strings their first characters,
 * wide objects their first keys, deep values stop at a depth, and one
 * message never holds more than `maxChars` characters of values. One large
 * heartbeat answer then makes one ordinary message, not one the page cannot
 * take.
 */
import { summarizeError } from "../src/errors.js";

/** Bounds of one inspection message; see `inspectionLimits`. */
export interface InspectionLimits {
  /** Items kept of an array; the rest are replaced by one `{ "…": n }` marker. */
  arrayItems: number;
  /** UTF-16 code units kept of a string; the rest are replaced by "… [+n chars]". */
  stringChars: number;
  /** Keys kept of an object; the rest are replaced by one `"…": "+n keys"` entry. */
  objectKeys: number;
  /** Nesting depth; deeper values become "[depth limit]". */
  depth: number;
  /** Characters of strings and keys in one message; past it, values become "[truncated]". */
  maxChars: number;
}

/** The bounds every inspection message is cut to. */
export const inspectionLimits: Readonly<InspectionLimits> = {
  arrayItems: 100,
  stringChars: 1024,
  objectKeys: 100,
  depth: 12,
  maxChars: 256 * 1024,
};

/** The key of the marker that stands for the items cut from an array. */
export const truncatedItemsKey = "…";

const redactedText = "[redacted]";

/** Replaces every occurrence of each secret in a string. */
export function createRedactor(secrets: readonly string[]): (text: string) => string {
  const list = [...new Set(secrets.filter((s) => s !== ""))].sort((a, b) => b.length - a.length);
  if (list.length === 0) return (text) => text;
  return (text) => {
    let out = text;
    for (const s of list) if (out.includes(s)) out = out.split(s).join(redactedText);
    return out;
  };
}

/**
 * A plain-JSON copy of `value` that is safe to send: errors become
 * `{ name, code, message }` (never their cause, metadata or stack),
 * functions are left out, `toJSON` is honoured (actor refs become
 * `{ id }` stubs), cycles are cut, every string and key goes through
 * `redact` (before it is shortened, so no cut leaves part of a secret), and
 * everything is cut to `limits` (see InspectionLimits).
 */
export function toInspectionJson(value: unknown, redact: (text: string) => string, limits: Partial<InspectionLimits> = {}): unknown {
  const lim: InspectionLimits = { ...inspectionLimits, ...limits };
  const ancestors = new Set<object>();
  let budget = lim.maxChars;
  const text = (s: string): string => {
    const safe = shorten(redact(s), Math.max(0, Math.min(lim.stringChars, budget)));
    budget -= Math.min(safe.length, budget);
    return safe;
  };
  const walk = (v: unknown, depth: number): unknown => {
    if (budget <= 0 && v !== null && (typeof v === "string" || typeof v === "object")) return "[truncated]";
    switch (typeof v) {
      case "string":
        return text(v);
      case "number":
        return Number.isFinite(v) ? v : null;
      case "boolean":
        return v;
      case "bigint":
        return v.toString();
      case "undefined":
      case "function":
      case "symbol":
        return undefined;
    }
    if (v === null) return null;
    const obj = v as object;
    if (depth > lim.depth) return "[depth limit]";
    if (ancestors.has(obj)) return "[circular]";
    if (obj instanceof Error) {
      const summary = summarizeError(obj);
      return { name: text(obj.name), code: summary.code, message: text(summary.message) };
    }
    ancestors.add(obj);
    try {
      const toJSON = (obj as { toJSON?: unknown }).toJSON;
      if (typeof toJSON === "function") {
        const replaced: unknown = toJSON.call(obj);
        if (replaced !== obj) return walk(replaced, depth);
      }
      if (Array.isArray(obj)) {
        const out: unknown[] = [];
        const kept = Math.min(obj.length, lim.arrayItems);
        for (let i = 0; i < kept && budget > 0; i++) out.push(walk(obj[i], depth + 1) ?? null);
        if (out.length < obj.length) out.push({ [truncatedItemsKey]: obj.length - out.length });
        return out;
      }
      if (obj instanceof Map) {
        const out = walk(Object.fromEntries(take(obj.entries(), lim.objectKeys)), depth);
        if (obj.size > lim.objectKeys && isRecord(out)) out[truncatedItemsKey] = `+${obj.size - lim.objectKeys} keys`;
        return out;
      }
      if (obj instanceof Set) {
        const out = walk([...take(obj.values(), lim.arrayItems)], depth);
        if (obj.size > lim.arrayItems && Array.isArray(out)) out.push({ [truncatedItemsKey]: obj.size - lim.arrayItems });
        return out;
      }
      const out: Record<string, unknown> = {};
      let keys = 0;
      let skipped = 0;
      for (const key in obj) {
        if (!Object.hasOwn(obj, key)) continue;
        if (keys >= lim.objectKeys || budget <= 0) {
          skipped++;
          continue;
        }
        const safe = walk((obj as Record<string, unknown>)[key], depth + 1);
        if (safe === undefined) continue;
        out[text(key)] = safe;
        keys++;
      }
      if (skipped > 0) out[truncatedItemsKey] = `+${skipped} keys`;
      return out;
    } finally {
      ancestors.delete(obj);
    }
  };
  return walk(value, 0);
}

/** `s` cut to `max` code units (never inside a surrogate pair) plus a note of what was cut. */
export function shorten(s: string, max: number): string {
  if (s.length <= max) return s;
  let end = max;
  const last = s.charCodeAt(end - 1);
  if (end > 0 && last >= 0xd800 && last <= 0xdbff) end--;
  return `${s.slice(0, end)}… [+${s.length - end} chars]`;
}

/** A plain object (not null, not an array). */
export function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function* take<T>(it: Iterator<T>, n: number): Generator<T> {
  for (let i = 0; i < n; i++) {
    const r = it.next();
    if (r.done === true) return;
    yield r.value;
  }
}
