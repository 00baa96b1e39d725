/**
 * Server data is untrusted input: the bounds and checks applied where a
 * project id, a reason or an event id enters the bridge (the ProjectEvents
 * actor and the SyncProjectState actor), before anything reaches the dedup
 * window, the handlers, logs, inspection events or metrics.
 *
 * - A project id longer than PROJECT_ID_MAX_BYTES (UTF-8) or holding a
 *   control character (C0, DEL, C1, or a lone surrogate) is refused: counted
 *   and logged as a short escaped preview, never handed on.
 * - A reason is cut at REASON_MAX_BYTES and an event id at
 *   EVENT_ID_MAX_BYTES (on a character boundary, with "…" appended); their
 *   control characters become U+FFFD. Both are informational, so they are
 *   bounded rather than refused.
 */

/** The longest project id accepted, in UTF-8 bytes. */
export const PROJECT_ID_MAX_BYTES = 512;
/** Reasons are cut to this many UTF-8 bytes. */
export const REASON_MAX_BYTES = 1024;
/** Event ids are cut to this many UTF-8 bytes. */
export const EVENT_ID_MAX_BYTES = 128;
/** How many characters of a refused id a log line shows (escaped). */
export const PREVIEW_MAX_CHARS = 64;

/** Why a project id was refused. */
export type RefusedWhy = "too_long" | "control_character";

// C0 controls, DEL, C1 controls, and lone surrogates (with the u flag a
// surrogate range matches only unpaired ones; they are not valid UTF-8).
const CONTROL = /[\u0000-\u001f\u007f-\u009f\ud800-\udfff]/u;
const CONTROL_ALL = new RegExp(CONTROL.source, "gu");

const encoder = new TextEncoder();

/**
 * Whether `s` holds a character CONTROL matches: the same test as the
 * regular expression, as a loop over UTF-16 units (faster for the short ids
 * of every event).
 */
export function hasControlCharacter(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) return true;
    if (c < 0xd800 || c > 0xdfff) continue;
    // A high surrogate followed by a low one is one valid character.
    const next = c <= 0xdbff && i + 1 < s.length ? s.charCodeAt(i + 1) : 0;
    if (next < 0xdc00 || next > 0xdfff) return true;
    i++;
  }
  return false;
}

function utf8Bytes(s: string): number {
  // Cheap bound first: a string is at most 3 bytes per UTF-16 unit.
  if (s.length * 3 <= PROJECT_ID_MAX_BYTES) return s.length;
  return encoder.encode(s).length;
}

/** undefined when the id may pass; else why it is refused. Empty ids are the caller's business. */
export function refuseProjectId(id: string): RefusedWhy | undefined {
  if (id.length > PROJECT_ID_MAX_BYTES || utf8Bytes(id) > PROJECT_ID_MAX_BYTES) return "too_long";
  if (hasControlCharacter(id)) return "control_character";
  return undefined;
}

/**
 * A short, printable preview of untrusted text for a log line: at most
 * PREVIEW_MAX_CHARS characters, control characters escaped as \\uXXXX, and
 * the full length noted when cut.
 */
export function previewOf(text: string, maxChars = PREVIEW_MAX_CHARS): string {
  const head = text.slice(0, maxChars).replace(CONTROL_ALL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
  return text.length > maxChars ? `${head}… (${text.length} chars)` : head;
}

/** `text` cut to `maxBytes` UTF-8 bytes on a character boundary ("…" appended when cut), control characters as U+FFFD. */
export function boundText(text: string, maxBytes: number): string {
  // The common case: short, clean text passes as it is (no copy).
  if (text.length * 3 <= maxBytes && !hasControlCharacter(text)) return text;
  // Every character takes at least one byte: look at no more than maxBytes + 1 of them.
  const long = text.length > maxBytes;
  let out = (long ? text.slice(0, maxBytes + 1) : text).replace(CONTROL_ALL, "\ufffd");
  if (!long && (out.length * 3 <= maxBytes || encoder.encode(out).length <= maxBytes)) return out;
  let bytes = 0;
  let end = 0;
  const budget = maxBytes - 3; // "…" is 3 bytes
  for (const ch of out) {
    const n = encoder.encode(ch).length;
    if (bytes + n > budget) break;
    bytes += n;
    end += ch.length;
  }
  out = `${out.slice(0, end)}…`;
  return out;
}
