/**
 * Host and Origin checks of the inspector server. Binding to loopback keeps
 * other machines out; checking the Host header keeps out a web page whose
 * own host name an attacker re-points at 127.0.0.1 (DNS rebinding), and
 * checking Origin on WebSocket upgrades keeps out cross-site pages, which
 * may open WebSockets to any host.
 */

/**
 * Whether a Host header names this server: one of `names` (lower case, IPv6
 * in brackets) with the port it listens on (or no port when that is 80).
 */
export function isAllowedHostHeader(header: string | undefined, names: ReadonlySet<string>, port: number): boolean {
  if (header === undefined) return false;
  const parsed = splitHostPort(header.trim().toLowerCase());
  if (!parsed) return false;
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
