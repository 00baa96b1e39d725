/**
 * InspectorOptions and the one place where their defaults are filled in.
 */
import type { AnyStateMachine } from "xstate";
import { bridgeMachine } from "../machines/bridge.machine.js";
import { BridgeError } from "../src/errors.js";
import { hostName, loopbackHostNames } from "../src/listener/host-rule.js";
import { isLoopbackHost } from "../src/server-url.js";

/** Options of `startInspector()`. */
export interface InspectorOptions {
  /**
   * Address the inspector listens on. Anything but a loopback address is
   * refused unless `allowNonLoopback` is set: the page shows the bridge's
   * state and events to whoever can reach it. Defaults to "127.0.0.1".
   */
  host?: string | undefined;
  /** Port to listen on; 0 picks a free one (read it from the handle's `url`). Defaults to 0. */
  port?: number | undefined;
  /** Allows `host` to be a non-loopback address. Defaults to false. */
  allowNonLoopback?: boolean | undefined;
  /**
   * Further host names the Host header may carry (the check that defeats DNS
   * rebinding), e.g. a name of this machine when `allowNonLoopback` is set.
   * Defaults to none: only 127.0.0.1, localhost, [::1] and `host` itself.
   */
  allowedHosts?: readonly string[] | undefined;
  /** The machine whose statechart the page draws. Defaults to bridgeMachine. */
  machine?: AnyStateMachine | undefined;
  /** Inspection messages kept for a page that connects later. Defaults to 1000. */
  historySize?: number | undefined;
  /** Bytes of inspection messages kept for a page that connects later (the older ones go first). Defaults to 2097152 (2 MiB). */
  historyBytes?: number | undefined;
  /** Pages connected at once; one more is refused with HTTP 503. Defaults to 8. */
  maxViewers?: number | undefined;
  /**
   * Strings that must never leave the process, e.g. the bridge's token: any
   * occurrence in an inspection event is replaced by "[redacted]". Inspection
   * events carry no token by construction; this is a second line of defence.
   * Defaults to none.
   */
  redact?: readonly string[] | undefined;
  /**
   * The hosted Stately inspector that the `/stately` page embeds (it needs
   * internet; the offline page at `/` does not). Defaults to
   * "https://stately.ai/inspect".
   */
  statelyUrl?: string | undefined;
  /** Aborting it closes the inspector. Defaults to none. */
  signal?: AbortSignal | undefined;
}

/** InspectorOptions with every default filled in. */
export interface ResolvedInspectorOptions {
  host: string;
  port: number;
  allowNonLoopback: boolean;
  /** Host names (lower case, IPv6 in brackets) accepted in the Host header. */
  allowedHostNames: ReadonlySet<string>;
  machine: AnyStateMachine;
  historySize: number;
  historyBytes: number;
  maxViewers: number;
  redact: readonly string[];
  statelyUrl: URL;
  signal: AbortSignal | undefined;
}

/** Host names every inspector accepts in the Host header (the shared listener Host rule's loopback names). */
export { loopbackHostNames };

/** Fills in the defaults of InspectorOptions and rejects values that cannot work or are unsafe. */
export function validateInspectorOptions(options: InspectorOptions = {}): ResolvedInspectorOptions {
  const host = options.host ?? "127.0.0.1";
  const port = options.port ?? 0;
  const allowNonLoopback = options.allowNonLoopback ?? false;
  if (typeof host !== "string" || host.trim() === "") throw invalid("host must be a non-empty address");
  if (!isLoopbackHost(host) && !allowNonLoopback) {
    throw invalid(`refusing to listen on ${host}: the inspector binds to loopback only unless allowNonLoopback is set`);
  }
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw invalid(`port must be an integer in [0, 65535], got ${port}`);
  const historySize = options.historySize ?? 1000;
  if (!Number.isInteger(historySize) || historySize < 1) throw invalid(`historySize must be a positive integer, got ${historySize}`);
  const historyBytes = options.historyBytes ?? 2 * 1024 * 1024;
  if (!Number.isInteger(historyBytes) || historyBytes < 1) throw invalid(`historyBytes must be a positive integer, got ${historyBytes}`);
  const maxViewers = options.maxViewers ?? 8;
  if (!Number.isInteger(maxViewers) || maxViewers < 1) throw invalid(`maxViewers must be a positive integer, got ${maxViewers}`);

  let statelyUrl: URL;
  try {
    statelyUrl = new URL(options.statelyUrl ?? "https://stately.ai/inspect");
  } catch {
    throw invalid("statelyUrl must be an absolute URL");
  }
  if (statelyUrl.protocol !== "https:" && statelyUrl.protocol !== "http:") throw invalid("statelyUrl must be http: or https:");

  const names = new Set(loopbackHostNames);
  names.add(hostName(host));
  for (const h of options.allowedHosts ?? []) {
    if (typeof h !== "string" || h.trim() === "") throw invalid("allowedHosts must hold non-empty host names");
    names.add(hostName(h));
  }
  const redact = (options.redact ?? []).filter((s) => typeof s === "string" && s !== "");

  return {
    host,
    port,
    allowNonLoopback,
    allowedHostNames: names,
    machine: options.machine ?? bridgeMachine,
    historySize,
    historyBytes,
    maxViewers,
    redact,
    statelyUrl,
    signal: options.signal,
  };
}

/** A host name as the Host header spells it: lower case, IPv6 literals in brackets. */
export { hostName };

function invalid(message: string): BridgeError {
  return new BridgeError(`inspector: ${message}`, "invalid_config");
}
