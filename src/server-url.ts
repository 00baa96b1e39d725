import { isIPv4, isIPv6 } from "node:net";
import { BridgeError } from "./errors.js";

/** What stands in for a URL that is empty or not a string, in messages and logs. */
export const invalidUrlPlaceholder = "<invalid-url>";

/** Longest URL text shown in a message or log line; the rest is cut with "…". */
export const maxShownUrlLength = 256;

/** The port used for `http:` when the URL names none (the engram server's default). */
export const defaultHttpPort = 37777;

/** The port used for `https:` when the URL names none. */
export const defaultHttpsPort = 443;

/** A parsed, validated engram server address. Carries no user info. */
export interface ServerAddress {
  /**
   * Normalised `scheme://host:port`, the port always spelled out, followed by
   * the path if there is one (without a trailing slash). User info, query
   * and fragment are dropped. IPv6 hosts keep their brackets here.
   */
  baseUrl: string;
  /** For logs: `baseUrl` plus the query string if one was given. No user info. */
  redacted: string;
  /** True for `https:`. */
  secure: boolean;
  /** Lower-cased host name or address, IPv6 without brackets. */
  host: string;
  /** The explicit port, else 37777 for `http:` and 443 for `https:`. */
  port: number;
  /**
   * True when `host` is an IP loopback literal or exactly `localhost` (see
   * `isLoopbackHost`). A connection to `localhost` must pin it to
   * 127.0.0.1/::1 (see `loopbackLookup`) so that no DNS answer decides it.
   */
  loopback: boolean;
  /** True when the value had no scheme and was read as `http:`. */
  implicitScheme: boolean;
}

/**
 * Parses the server URL a user configured (`ENGRAM_URL` and the like).
 *
 * - Only `http:` and `https:` are accepted. A value without a scheme
 *   (`host`, `host:port`, `[::1]:8080`) is taken as `http:` (plaintext h2c,
 *   the engram server's default) and flagged `implicitScheme`; write
 *   `https://` for TLS.
 * - Without a port, `http:` uses 37777 and `https:` 443.
 * - Host names go through the WHATWG URL parser (lower case, IDNA, percent
 *   decoding, IPv4 forms such as `0x7f000001`), and the connection is made to
 *   the name it produced, so the loopback check and the dial agree.
 * - User info (`user:pass@`) is dropped and never appears in a result or a
 *   message; an unparsable value is shown as `redactUrl` shows it (user info
 *   removed).
 *
 * Throws a BridgeError with code "invalid_config" when the value is empty or
 * unparsable, has another scheme, has no host, or its port is outside 1-65535.
 */
export function parseServerUrl(raw: string): ServerAddress {
  if (typeof raw !== "string" || raw.trim() === "") throw invalidConfig("server URL is empty");
  const parts = splitUrl(raw.trim());
  if (parts.kind === "opaque") {
    if (parts.scheme === "http:" || parts.scheme === "https:") {
      throw invalidConfig(`server URL must look like ${parts.scheme}//host:port`);
    }
    throw invalidConfig(`server URL has unsupported scheme "${parts.scheme}"; use http: or https:`);
  }
  const { scheme } = parts;
  if (scheme !== "http:" && scheme !== "https:") {
    throw invalidConfig(`server URL has unsupported scheme "${scheme}"; use http: or https:`);
  }
  const hostPort = splitHostPort(parts.hostPort);
  if (hostPort === undefined) throw invalidConfig(`server URL ${redactUrl(raw)} cannot be parsed`);
  if (hostPort.host === "") throw invalidConfig("server URL has no host");
  const port = parsePort(hostPort.portText, scheme);

  const hostInUrl = hostPort.bracketed ? `[${hostPort.host}]` : hostPort.host;
  let url: URL;
  try {
    url = new URL(`${scheme}//${hostInUrl}${parts.rest}`);
  } catch {
    throw invalidConfig(`server URL ${redactUrl(raw)} cannot be parsed`);
  }
  if (url.hostname === "") throw invalidConfig("server URL has no host");
  const host = stripBrackets(url.hostname);
  const path = url.pathname === "/" ? "" : url.pathname.replace(/\/+$/, "");
  const baseUrl = `${scheme}//${url.hostname}:${port}${path}`;
  return {
    baseUrl,
    redacted: baseUrl + url.search,
    secure: scheme === "https:",
    host,
    port,
    loopback: isLoopbackHost(host),
    implicitScheme: parts.implicitScheme,
  };
}

/**
 * Returns the URL as written with its user info (`user:pass@`) removed, for
 * logs and status. Scheme, host, port, path, query and fragment are kept as
 * given (a query is not redacted: do not put secrets there). A value the URL
 * parser refuses is shown too, with everything up to its last `@` (or a
 * look-alike: `＠`, `﹫`, `%40`) after the scheme removed, so user info is
 * dropped even where the parser would not find it. Control and bidi
 * characters become `?`; more than 256 characters are cut. Returns
 * `<invalid-url>` only for an empty value or a non-string. Never throws.
 */
export function redactUrl(raw: string): string {
  try {
    if (typeof raw !== "string") return invalidUrlPlaceholder;
    const text = raw.trim();
    if (text === "") return invalidUrlPlaceholder;
    const parts = splitUrl(text);
    if (parts.kind === "opaque") {
      const at = parts.body.lastIndexOf("@");
      return forDisplay(parts.scheme + parts.body.slice(at + 1));
    }
    const prefix = parts.implicitScheme ? "" : `${parts.scheme}//`;
    let checked: URL;
    try {
      // Validate with the WHATWG parser; a scheme-less value is read as http.
      checked = new URL(`${parts.implicitScheme ? "http:" : parts.scheme}//${parts.hostPort}${parts.rest}`);
    } catch {
      return forDisplay(withoutAnyUserInfo(text));
    }
    // Where WHATWG still sees user info ("//user:pass@host", "http:///:pass@host"),
    // the split above disagrees with it: fall back to the cruder cut.
    if (checked.username !== "" || checked.password !== "") return forDisplay(withoutAnyUserInfo(text));
    return forDisplay(prefix + parts.hostPort + parts.rest);
  } catch {
    return invalidUrlPlaceholder;
  }
}

/**
 * For a value no parser agrees on: keeps an `http:`/`https:` scheme or any
 * scheme followed by slashes, and of the rest only what follows its last
 * `@` (or look-alike). Errs on the side of cutting: a path with an `@` loses
 * its beginning.
 */
function withoutAnyUserInfo(text: string): string {
  const scheme = /^([a-z][a-z0-9+.-]*):([/\\]*)/i.exec(text);
  const keep = scheme !== null && (scheme[2] !== "" || /^https?$/i.test(scheme[1] ?? ""));
  const prefix = keep ? (scheme?.[0] ?? "") : "";
  const body = text.slice(prefix.length);
  let cut = 0;
  for (const m of body.matchAll(/[@\uFF20\uFE6B]|%40/gi)) cut = m.index + m[0].length;
  return prefix + body.slice(cut);
}

/** Control characters (C0, C1, line separators) and bidi overrides, which could forge or hide log text. */
const unsafeForDisplay = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

function forDisplay(shown: string): string {
  const safe = shown.replace(unsafeForDisplay, "?");
  return safe.length > maxShownUrlLength ? `${safe.slice(0, maxShownUrlLength)}…` : safe;
}

/**
 * Whether a host name or address is this machine's loopback, decided
 * without DNS: an IP loopback literal (127.0.0.0/8, `::1`, IPv4-mapped
 * `::ffff:127.x.y.z` in dotted or hex form; IPv6 with or without brackets,
 * a zone id ignored) or exactly the name `localhost` (ASCII, any case, no
 * surrounding space).
 * Nothing else: not `localhost.` nor `*.localhost` (glibc asks the
 * network's DNS for those), nor other spellings of 127.0.0.1 that only some
 * resolvers read as an address (`2130706433`, `0x7f000001`; the URL parser
 * turns these into `127.0.0.1` before this check). A connection to
 * `localhost` must be pinned to loopback (`loopbackLookup`), so the check and
 * the dial agree.
 */
export function isLoopbackHost(host: string): boolean {
  if (typeof host !== "string") return false;
  // No trimming: " 127.0.0.1" is not an address to net, it would go to a resolver.
  let h = stripBrackets(host);
  if (/^localhost$/i.test(h)) return true;
  if (isIPv4(h)) return h.startsWith("127.");
  const zone = h.indexOf("%");
  if (zone >= 0) h = h.slice(0, zone);
  const groups = ipv6Groups(h.toLowerCase());
  if (groups === undefined) return false;
  const zeros = (n: number) => groups.slice(0, n).every((g) => g === 0);
  if (zeros(7) && groups[7] === 1) return true;
  return zeros(5) && groups[5] === 0xffff && (groups[6] ?? 0) >> 8 === 127;
}

type UrlParts =
  | { kind: "authority"; scheme: string; implicitScheme: boolean; hostPort: string; rest: string }
  | { kind: "opaque"; scheme: string; body: string };

/**
 * Splits a URL into scheme, host-and-port (user info removed) and the rest.
 * The authority ends at the first `/`, `?` or `#`; user info ends at its last
 * `@`, as in the WHATWG parser.
 */
function splitUrl(text: string): UrlParts {
  let scheme = "http:";
  let implicitScheme = true;
  let afterScheme = text;
  const withSlashes = /^([a-z][a-z0-9+.-]*):\/\//i.exec(text);
  if (withSlashes) {
    scheme = `${(withSlashes[1] ?? "").toLowerCase()}:`;
    implicitScheme = false;
    afterScheme = text.slice(withSlashes[0].length);
  } else {
    // "name:rest" is a scheme unless rest is a port ("host:8080") or the
    // value has user info ("user:pass@host", read as http).
    const opaque = /^([a-z][a-z0-9+.-]*):(?!\d*$)(?!\d+[/?#\\])/i.exec(text);
    const authorityEnd = text.search(/[/?#]/);
    const authority = authorityEnd < 0 ? text : text.slice(0, authorityEnd);
    if (opaque && !authority.includes("@")) {
      return { kind: "opaque", scheme: `${(opaque[1] ?? "").toLowerCase()}:`, body: text.slice(opaque[0].length) };
    }
  }
  const end = afterScheme.search(/[/?#]/);
  const authority = end < 0 ? afterScheme : afterScheme.slice(0, end);
  let rest = end < 0 ? "" : afterScheme.slice(end);
  const at = authority.lastIndexOf("@");
  let hostPort = authority.slice(at + 1);
  // A backslash after the host acts as a path separator for http(s).
  const backslash = hostPort.indexOf("\\");
  if (backslash >= 0) {
    rest = hostPort.slice(backslash) + rest;
    hostPort = hostPort.slice(0, backslash);
  }
  return { kind: "authority", scheme, implicitScheme, hostPort, rest };
}

function splitHostPort(hostPort: string): { host: string; portText: string; bracketed: boolean } | undefined {
  if (hostPort.startsWith("[")) {
    const close = hostPort.indexOf("]");
    if (close < 0) return undefined;
    const after = hostPort.slice(close + 1);
    if (after !== "" && !after.startsWith(":")) return undefined;
    return { host: hostPort.slice(1, close), portText: after.slice(1), bracketed: true };
  }
  const colon = hostPort.indexOf(":");
  if (colon < 0) return { host: hostPort, portText: "", bracketed: false };
  // More than one colon: an IPv6 address without brackets.
  if (hostPort.indexOf(":", colon + 1) >= 0) return undefined;
  return { host: hostPort.slice(0, colon), portText: hostPort.slice(colon + 1), bracketed: false };
}

function parsePort(portText: string, scheme: "http:" | "https:"): number {
  if (portText === "") return scheme === "https:" ? defaultHttpsPort : defaultHttpPort;
  if (!/^\d+$/.test(portText)) throw invalidConfig("server URL has a port that is not a number");
  const port = Number(portText);
  if (port < 1 || port > 65535) {
    const shown = portText.length > 12 ? `${portText.slice(0, 12)}…` : portText;
    throw invalidConfig(`server URL port ${shown} is out of range (1-65535)`);
  }
  return port;
}

function stripBrackets(host: string): string {
  return host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
}

/** The eight 16-bit groups of an IPv6 address, or undefined if it is not one. */
function ipv6Groups(address: string): number[] | undefined {
  if (!isIPv6(address)) return undefined;
  let text = address;
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4) {
    const [a = 0, b = 0, c = 0, d = 0] = v4.slice(1).map(Number);
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const halves = text.split("::");
  const groupsOf = (part: string) => (part === "" ? [] : part.split(":").map((g) => Number.parseInt(g, 16)));
  const head = groupsOf(halves[0] ?? "");
  if (halves.length === 1) return head.length === 8 ? head : undefined;
  const tail = groupsOf(halves[1] ?? "");
  const fill = 8 - head.length - tail.length;
  if (fill < 0) return undefined;
  return [...head, ...new Array<number>(fill).fill(0), ...tail];
}

function invalidConfig(message: string): BridgeError {
  return new BridgeError(message, "invalid_config");
}
