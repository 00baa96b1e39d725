/**
 * What a bearer token may look like: RFC 6750 §2.1 `b64token`, that is
 * `[A-Za-z0-9\-._~+/]+=*`. Anything else could not travel in an HTTP header
 * (a line break, NUL, a non-Latin-1 character) or would be changed on the
 * way (spaces, surrounding whitespace), and the errors Node and undici throw
 * for it quote the whole header, `Bearer <token>` included. So a token is
 * checked before it goes near a header, and a bad one is described by a
 * fixed phrase that never quotes it, not even in part.
 *
 * Surrounding HTTP whitespace (space, tab, CR, LF) is dropped first, as
 * `Headers.set` always did: a token file or secret with a trailing newline
 * keeps working. Whitespace inside the token is refused.
 */

const b64token = /^[A-Za-z0-9\-._~+/]+=*$/;

/** The token without surrounding space, tab, CR or LF (what `Headers.set` would send). */
export function trimBearerToken(value: string): string {
  return value.replace(/^[\t\n\r ]+|[\t\n\r ]+$/g, "");
}

/** The fixed phrases that say what is wrong with a token, never what it is. */
export const bearerTokenProblems = {
  notAString: "is not a string",
  bearerPrefix: 'starts with "Bearer ": give the token alone',
  lineBreak: "contains a line break (a token file with two lines, or a pasted multi-line value?)",
  control: "contains a control character",
  whitespace: "contains whitespace",
  nonAscii: "contains a non-ASCII character",
  otherCharacter: "contains a character outside RFC 6750 b64token (letters, digits, - . _ ~ + / and trailing =)",
} as const;

export type BearerTokenProblem = (typeof bearerTokenProblems)[keyof typeof bearerTokenProblems];

/**
 * Returns undefined when `value` is a valid RFC 6750 b64token, else one of
 * `bearerTokenProblems`. Never throws; the result never contains the value.
 */
export function bearerTokenProblem(value: unknown): BearerTokenProblem | undefined {
  if (typeof value !== "string") return bearerTokenProblems.notAString;
  if (b64token.test(value)) return undefined;
  if (/^bearer\s/i.test(value)) return bearerTokenProblems.bearerPrefix;
  if (/[\r\n]/.test(value)) return bearerTokenProblems.lineBreak;
  if (/\s/.test(value)) return bearerTokenProblems.whitespace;
  if (/[\u0000-\u001f\u007f]/.test(value)) return bearerTokenProblems.control;
  if (/[^\u0000-\u007f]/.test(value)) return bearerTokenProblems.nonAscii;
  return bearerTokenProblems.otherCharacter;
}
