/**
 * The sidecar's own rules for a project id it passes on (exec argv, the
 * projects file, `--project`). The bridge bounds what the server sends where
 * it enters; the sidecar checks again, because it hands ids to programs that
 * may read them as options or print them.
 */

/** The longest project id the sidecar accepts, in UTF-8 bytes. */
export const maxProjectIdBytes = 512;

/** C0, DEL and C1 controls (NUL, newline, escape sequences, …) and lone surrogates. */
const unsafeChars = /[\p{Cc}\p{Cs}]/u;

/** Why an id is refused, or undefined when it is acceptable. Never quotes the id. */
export function projectIdProblem(id: string): string | undefined {
  if (id === "") return "empty";
  if (Buffer.byteLength(id, "utf8") > maxProjectIdBytes) return `longer than ${maxProjectIdBytes} bytes`;
  if (unsafeChars.test(id)) return "contains a control character";
  return undefined;
}

/**
 * A short, printable preview of untrusted text for a log line: control
 * characters escaped as \u…, cut after `maxChars` with the full length noted.
 */
export function previewOf(text: string, maxChars = 64): string {
  const cut = text.length > maxChars ? `${text.slice(0, maxChars)}… (${text.length} chars)` : text;
  return cut.replace(/[\p{Cc}\p{Cs}]/gu, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/**
 * Makes untrusted text safe for one environment variable: control characters
 * (NUL included, which spawn refuses) become spaces, lone surrogates U+FFFD,
 * and the result is cut to at most `maxBytes` UTF-8 bytes on a character
 * boundary (one argument or variable over 128 KiB fails exec with E2BIG).
 */
export function envSafe(text: string, maxBytes: number): string {
  let s = text.replace(/\p{Cc}/gu, " ").replace(/\p{Cs}/gu, "\uFFFD");
  if (Buffer.byteLength(s, "utf8") <= maxBytes) return s;
  let bytes = 0;
  let end = 0;
  for (const ch of s) {
    const n = Buffer.byteLength(ch, "utf8");
    if (bytes + n > maxBytes) break;
    bytes += n;
    end += ch.length;
  }
  s = s.slice(0, end);
  return s;
}
