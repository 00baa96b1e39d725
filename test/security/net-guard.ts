/**
 * A guard that keeps a test from dialling anything but loopback: while
 * installed, every outgoing TCP connect (net, tls, http2 all go through
 * `net.Socket.prototype.connect`) is recorded, and one to a host that is not
 * loopback is refused on the spot (the socket is destroyed before any
 * packet or DNS lookup), so a bug can never reach a real address.
 */
import * as net from "node:net";
import { isLoopbackHost } from "../../src/server-url.js";

export interface DialAttempt {
  host: string;
  port: number;
  blocked: boolean;
}

export interface NetGuard {
  readonly attempts: DialAttempt[];
  uninstall(): void;
}

function targetOf(args: unknown[]): { host: string; port: number } {
  const first = args[0];
  if (Array.isArray(first)) return targetOf(first);
  if (first !== null && typeof first === "object") {
    const o = first as { host?: unknown; port?: unknown; path?: unknown };
    if (typeof o.path === "string") return { host: `unix:${o.path}`, port: 0 };
    return { host: typeof o.host === "string" ? o.host : "localhost", port: Number(o.port ?? 0) };
  }
  if (typeof first === "string" && Number.isNaN(Number(first))) return { host: `unix:${first}`, port: 0 };
  return { host: typeof args[1] === "string" ? args[1] : "localhost", port: Number(first ?? 0) };
}

/** Installs the guard; `allowLoopback: false` refuses loopback dials too. */
export function installNetGuard(options: { allowLoopback?: boolean } = {}): NetGuard {
  const allowLoopback = options.allowLoopback ?? true;
  const original = net.Socket.prototype.connect;
  const attempts: DialAttempt[] = [];
  const guarded = function (this: net.Socket, ...args: unknown[]): net.Socket {
    const { host, port } = targetOf(args);
    const allowed = allowLoopback && (isLoopbackHost(host) || host.startsWith("unix:"));
    attempts.push({ host, port, blocked: !allowed });
    if (!allowed) {
      // Look like a connect in progress that then fails, as a real one does;
      // a socket that seems connected would be used at once.
      const err = Object.assign(new Error(`net guard: refused to dial ${host}:${port}`), { code: "ENETUNREACH" });
      (this as { connecting: boolean }).connecting = true;
      setImmediate(() => this.destroy(err));
      return this;
    }
    return (original as (...a: unknown[]) => net.Socket).apply(this, args);
  };
  net.Socket.prototype.connect = guarded as typeof net.Socket.prototype.connect;
  return {
    attempts,
    uninstall() {
      if (net.Socket.prototype.connect === guarded) net.Socket.prototype.connect = original;
    },
  };
}
