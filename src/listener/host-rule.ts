/**
 * The Host rule every listener applies (inspector, health server). Binding
 * to loopback keeps other machines out; checking the Host header keeps out a
 * web page whose own host name an attacker re-points at 127.0.0.1 (DNS
 * rebinding): such a request names the attacker's domain, never an address
 * or a name this server knows. Checking Origin on WebSocket upgrades keeps
 * out cross-site pages, which may open WebSockets to any host.
 */
import { isIP } from "node:net";

/** Host names every listener accepts in the Host header. */
export const loopbackHostNames: readonly string[] = ["127.0.0.1", "localhost", "[::1]"];

/** A host name as the Host header spells it: lower case, IPv6 literals in brackets. */
export function hostName(host: string): string {
  const h = host.trim().toLowerCase();
  return h.includes(":") && !h.startsWith("[") ? `[${h}]` : h;
}

export interface HostRuleOptions {
  /** Names accepted besides the loopback names, as given (`hostName()` normalises them). Defaults to none. */
  names?: Iterable<string> | undefined;
  /**
   * Accept any IP literal (`10.1.2.3`, `[fd00::1]`): a kubelet probe or a
   * scraper addressing a pod by its IP sends that. A rebinding page cannot
   * name an IP literal of its own choosing and still be same-origin with
   * its domain, so this keeps the DNS-rebinding protection. Defaults to false.
   */
  allowIpLiterals?: boolean | undefined;
}

/** Decides whether a Host header names this listener. */
export interface HostRule {
  /** The names accepted by name (lower case, IPv6 in brackets). */
  readonly names: ReadonlySet<string>;
  readonly allowIpLiterals: boolean;
  /** Whether `header` names this listener on `port` (no port in the header means 80). */
  allows(header: string | undefined, port: number): boolean;
}

/** Creates the Host rule: the loopback names, `names`, and IP literals when asked. */
export function createHostRule(options: HostRuleOptions = {}): HostRule {
  const names = new Set(loopbackHostNames);
  for (const name of options.names ?? []) names.add(hostName(name));
  const allowIpLiterals = options.allowIpLiterals ?? false;
  return {
    names,
    allowIpLiterals,
    allows(header, port) {
      const parsed = parseHostHeader(header);
      if (parsed === undefined) return false;
      const portOk = parsed.port === undefined ? port === 80 : parsed.port === port;
      if (!portOk) return false;
      return names.has(parsed.name) || (allowIpLiterals && isIpLiteral(parsed.name));
    },
  };
}

/**
 * Whether a Host header names this server: one of `names` (lower case, IPv6
 * in brackets) with the port it listens on (or no port when that is 80).
 */
export function isAllowedHostHeader(header: string | undefined, names: ReadonlySet<string>, port: number): boolean {
  const parsed = parseHostHeader(header);
  if (parsed === undefined) return false;
  const portOk = parsed.port === undefined ? port === 80 : parsed.port === port;
  return portOk && names.has(parsed.name);
}

/**
 * Whether an Origin header is acceptable for a WebSocket upgrade: absent
 * (a non-browser client), or this server's own http origin.
 */
export function isAllowedOrigin(origin: string | undefined, names: ReadonlySet<string>, port: number): boolean {
  if (origin === undefined) return true;
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  if (url.protocol !== "http:") return false;
  const originPort = url.port === "" ? 80 : Number(url.port);
  return originPort === port && names.has(url.hostname.toLowerCase());
}

/** `10.0.0.1` or `[fd00::1]` (brackets required, as in a Host header). */
function isIpLiteral(name: string): boolean {
  if (name.startsWith("[")) return name.endsWith("]") && isIP(name.slice(1, -1)) === 6;
  return isIP(name) === 4;
}

function parseHostHeader(header: string | undefined): { name: string; port: number | undefined } | undefined {
  if (header === undefined) return undefined;
  return splitHostPort(header.trim().toLowerCase());
}

function splitHostPort(value: string): { name: string; port: number | undefined } | undefined {
  let name: string;
  let rest: string;
  if (value.startsWith("[")) {
    const end = value.indexOf("]");
    if (end < 0) return undefined;
    name = value.slice(0, end + 1);
    rest = value.slice(end + 1);
  } else {
    const colon = value.indexOf(":");
    if (colon < 0) return { name: value, port: undefined };
    if (value.indexOf(":", colon + 1) >= 0) return undefined;
    name = value.slice(0, colon);
    rest = value.slice(colon);
  }
  if (name === "" || name === "[]") return undefined;
  if (rest === "") return { name, port: undefined };
  if (!/^:\d{1,5}$/.test(rest)) return undefined;
  return { name, port: Number(rest.slice(1)) };
}
