/**
 * BridgeOptions and the one place where their defaults are filled in:
 * options first, then the environment (ENGRAM_URL, the deprecated
 * ENGRAM_SERVER_URL, ENGRAM_TOKEN, ENGRAM_TLS_CA, ENGRAM_ALLOW_INSECURE).
 */
import { resolveDispatchBounds, type DispatchBounds } from "./dispatch-bounds.js";
import { safeInspect } from "./safe-inspect.js";
import type { MeterProvider } from "@opentelemetry/api";
import { bearerTokenProblem, trimBearerToken } from "./bearer-token.js";
import { BridgeError } from "./errors.js";
import type { HandlerRegistry } from "./handler-registry.js";
import { createStderrLogger, safeLogger } from "./logger.js";
import { parseServerUrl, redactUrl, type ServerAddress } from "./server-url.js";
import { defaultBridgeTiming, resolveTiming, timingViolation, type BridgeTiming } from "./timing.js";
import type { Clock, EventsClient, Logger, ProjectTracker, TokenSource } from "./types.js";

/**
 * One XState inspection event, as the bridge's inspect option passes it on
 * (xstate's `InspectionEvent`; declared here so that the root entry's types
 * do not import xstate's).
 */
export interface InspectionEventLike {
  /** "@xstate.actor", "@xstate.event", "@xstate.snapshot", "@xstate.microstep" or "@xstate.action". */
  type: string;
  /** The session id of the root actor. */
  rootId: string;
}

/**
 * An XState inspection observer, passed to the bridge actor: a function or an
 * observer object, as `createActor(…, { inspect })` takes it. Any xstate
 * `Observer<InspectionEvent>` (the inspector's among them) fits.
 */
export type InspectionObserver =
  | { bivariance(event: InspectionEventLike): void }["bivariance"]
  | {
      next?(event: InspectionEventLike): void;
      error?(error: unknown): void;
      complete?(): void;
    };

export interface BridgeOptions {
  /** Who hears removals. Required. */
  registry: HandlerRegistry;
  /** Local project ids for the heartbeat. Defaults to none: the heartbeat reports no ids. */
  tracker?: ProjectTracker | undefined;
  /**
   * The engram server, `http://host:port` (plaintext h2c) or `https://…`. A
   * value without a scheme (`localhost:37777`, `engram.example.com`) is read
   * as `http:`. Defaults to ENGRAM_URL, else ENGRAM_SERVER_URL (deprecated: warns).
   */
  serverUrl?: string | undefined;
  /**
   * Bearer token, or a function read for every call (rotation). It must be an
   * RFC 6750 b64token (letters, digits, `-._~+/`, trailing `=`) once surrounding
   * spaces, tabs and line breaks are dropped: a bad string
   * refuses to start, a bad function result fails that call as
   * `unauthenticated`; neither is ever quoted. Defaults to ENGRAM_TOKEN.
   */
  token?: string | (() => string | Promise<string>) | undefined;
  /** PEM CA file for https (with an `http:` URL it is unused: warns). Defaults to ENGRAM_TLS_CA, else the system roots. */
  tlsCaFile?: string | undefined;
  /** Allow sending a token in plaintext to a non-loopback host. Defaults to ENGRAM_ALLOW_INSECURE=1. */
  allowInsecure?: boolean | undefined;
  /** An injected client: bypasses URL, transport and TLS. Defaults to a connect-node gRPC client. */
  client?: EventsClient | undefined;
  /** pino-compatible logger. Defaults to warn and above to stderr as JSON lines. */
  logger?: Logger | undefined;
  /**
   * Timing overrides. Defaults to DESIGN.md's table (defaultBridgeTiming); a
   * field not set is derived from a related field that was, so it fits
   * (heartbeatJitterMs = heartbeatMs/12, backoffMinMs <= backoffMaxMs: see resolveTiming).
   */
  timing?: Partial<BridgeTiming> | undefined;
  /** Size of the dedup window. Defaults to DEFAULT_DEDUP_CAPACITY (256). */
  dedupCapacity?: number | undefined;
  /**
   * The most removals queued for the handlers or in flight. The stream may
   * fill half of it: then the bridge stops reading the stream (HTTP/2 flow
   * control pushes back on the server) until there is room; the other half
   * is kept for removals of tracked projects. Defaults to
   * DEFAULT_MAX_QUEUED_REMOVALS (1000).
   */
  maxQueuedRemovals?: number | undefined;
  /** The most bytes (estimated heap) the queued removals may hold, split the same way. Defaults to DEFAULT_MAX_QUEUED_BYTES (1 MiB). */
  maxQueuedBytes?: number | undefined;
  /** Identifies this daemon to the server. Defaults to `${pid}-${startUnixSeconds}`. */
  clientId?: string | undefined;
  /** Clock for every timer of the bridge. Defaults to the real clock; tests pass SimulatedClock. */
  clock?: Clock | undefined;
  /** Jitter source in [0, 1). Defaults to Math.random. */
  random?: (() => number) | undefined;
  /** Passed to the XState actor as its inspection observer. Defaults to none. */
  inspect?: InspectionObserver | undefined;
  /** Environment to read. Defaults to process.env. */
  env?: Record<string, string | undefined> | undefined;
  /** Where the bridge's OpenTelemetry meter comes from. Defaults to the global provider at createBridge() (a no-op unless the host installed an SDK). */
  meterProvider?: MeterProvider | undefined;
}

/** Where the bridge connects: an injected client, a URL, or nowhere (stays idle). */
export type BridgeTarget =
  | { kind: "client"; client: EventsClient }
  | { kind: "url"; address: ServerAddress }
  | { kind: "none"; why: string }
  | { kind: "invalid"; error: BridgeError };

export interface ResolvedBridgeOptions {
  registry: HandlerRegistry;
  tracker: ProjectTracker | undefined;
  target: BridgeTarget;
  /** The URL as it may be logged (user info dropped). */
  redactedUrl: string | undefined;
  token: TokenSource | undefined;
  tlsCaFile: string | undefined;
  allowInsecure: boolean;
  logger: Logger;
  timing: BridgeTiming;
  dedupCapacity: number;
  dispatchBounds: DispatchBounds;
  clientId: string;
  clock: Clock;
  /** The bridge clock's wall time in ms: `clock.now()` when it has one (SimulatedClock), else Date.now. */
  now: () => number;
  random: () => number;
  inspect: InspectionObserver | undefined;
  meterProvider: MeterProvider | undefined;
}

/** How many recent removals the dedup window remembers (BridgeOptions.dedupCapacity). */
export const DEFAULT_DEDUP_CAPACITY = 256;

/** The real clock: Node's timers. */
export const realClock: Clock & { now: () => number } = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (id) => clearTimeout(id as ReturnType<typeof setTimeout>),
  now: () => Date.now(),
};

const processStartUnixSeconds = Math.floor(Date.now() / 1000);

/**
 * Fills every default in one place. Throws BridgeError("invalid_config") for
 * programming errors (no registry, bad timing); a bad or unsafe server URL is
 * not thrown but returned as target "invalid", so start() can log it and stay
 * idle.
 */
export function validateBridgeOptions(options: BridgeOptions): ResolvedBridgeOptions {
  if (!options || typeof options.registry?.register !== "function") {
    throw new BridgeError("BridgeOptions.registry must be a HandlerRegistry", "invalid_config");
  }
  const env = options.env ?? process.env;
  const logger = safeLogger(options.logger ?? createStderrLogger());
  const timing = validateTiming(options.timing);
  const dedupCapacity = options.dedupCapacity ?? DEFAULT_DEDUP_CAPACITY;
  if (!Number.isInteger(dedupCapacity) || dedupCapacity < 1) {
    throw new BridgeError(`dedupCapacity must be a positive integer, got ${dedupCapacity}`, "invalid_config");
  }

  let rawUrl = options.serverUrl;
  if (rawUrl === undefined && nonEmpty(env.ENGRAM_URL)) rawUrl = env.ENGRAM_URL;
  if (rawUrl === undefined && nonEmpty(env.ENGRAM_SERVER_URL)) {
    rawUrl = env.ENGRAM_SERVER_URL;
    logger.warn({ env: "ENGRAM_SERVER_URL" }, "ENGRAM_SERVER_URL is deprecated: set ENGRAM_URL instead");
  }
  const tokenFromEnv = options.token === undefined && nonEmpty(env.ENGRAM_TOKEN);
  const given = options.token ?? (tokenFromEnv ? env.ENGRAM_TOKEN : undefined);
  const tokenOption = typeof given === "string" ? trimBearerToken(given) : given;
  const tokenError = checkTokenString(tokenOption, tokenFromEnv ? "ENGRAM_TOKEN" : "the token option");
  const token = tokenError === undefined ? toTokenSource(tokenOption) : undefined;
  const tlsCaFile = options.tlsCaFile ?? (nonEmpty(env.ENGRAM_TLS_CA) ? env.ENGRAM_TLS_CA : undefined);
  const allowInsecure = options.allowInsecure ?? env.ENGRAM_ALLOW_INSECURE === "1";

  let target: BridgeTarget;
  if (options.client) {
    target = { kind: "client", client: options.client };
  } else if (tokenError !== undefined) {
    target = { kind: "invalid", error: tokenError };
  } else if (rawUrl === undefined || rawUrl.trim() === "") {
    target = { kind: "none", why: "no server URL: set ENGRAM_URL or pass serverUrl or client" };
  } else {
    target = resolveUrlTarget(rawUrl, token !== undefined, allowInsecure);
  }
  if (target.kind === "url" && !target.address.secure && tlsCaFile !== undefined) {
    logger.warn(
      { url: target.address.redacted },
      "tlsCaFile (ENGRAM_TLS_CA) is set but the server URL is http:, which is plaintext: the CA file is not used and nothing is encrypted; use https: for TLS",
    );
  }

  const clock: Clock & { now?: () => number } = options.clock ?? realClock;
  return {
    registry: options.registry,
    tracker: options.tracker,
    target,
    redactedUrl: rawUrl === undefined ? undefined : redactUrl(rawUrl),
    token,
    tlsCaFile,
    allowInsecure,
    logger,
    timing,
    dedupCapacity,
    dispatchBounds: resolveDispatchBounds(options),
    clientId: options.clientId ?? `${process.pid}-${processStartUnixSeconds}`,
    clock,
    now: wallNowOf(clock),
    random: options.random ?? Math.random,
    inspect: options.inspect === undefined ? undefined : safeInspect(options.inspect, logger),
    meterProvider: options.meterProvider,
  };
}

function resolveUrlTarget(rawUrl: string, hasToken: boolean, allowInsecure: boolean): BridgeTarget {
  let address: ServerAddress;
  try {
    address = parseServerUrl(rawUrl);
  } catch (reason) {
    return { kind: "invalid", error: BridgeError.from(reason, "invalid_config") };
  }
  if (hasToken && !address.secure && !address.loopback && !allowInsecure) {
    const why = address.implicitScheme ? " (the URL has no scheme, so it is read as http:)" : "";
    return {
      kind: "invalid",
      error: new BridgeError(
        `refusing to send the token in plaintext to ${address.redacted}${why}: use https, a loopback host (an IP loopback address or exactly localhost), or set allowInsecure (ENGRAM_ALLOW_INSECURE=1)`,
        "insecure_token",
      ),
    };
  }
  return { kind: "url", address };
}

/**
 * A configured token string that is not an RFC 6750 b64token is a
 * configuration error whose message names the problem, never the value.
 */
function checkTokenString(token: unknown, source: string): BridgeError | undefined {
  if (token === undefined || token === "" || typeof token === "function") return undefined;
  const problem = bearerTokenProblem(token);
  if (problem === undefined) return undefined;
  return new BridgeError(`${source} is not a valid bearer token: it ${problem}`, "invalid_config");
}

function toTokenSource(token: BridgeOptions["token"]): TokenSource | undefined {
  if (token === undefined || token === "") return undefined;
  if (typeof token === "string") return () => Promise.resolve(token);
  const read = token;
  return async () => {
    try {
      return await read();
    } catch (cause) {
      // The token function's own error could carry the token: keep it out of messages.
      throw new BridgeError("the token function failed", "unauthenticated", { cause: new Error(describeTokenError(cause)) });
    }
  };
}

function describeTokenError(cause: unknown): string {
  return cause instanceof Error ? cause.name : typeof cause;
}

/**
 * Every timing option within its documented range (timingBounds): a value
 * outside it is a config error that names the field, the value and the range
 * (and the related field only when the user set both). Unset fields are
 * derived from the set ones so that defaults always fit (resolveTiming).
 */
function validateTiming(overrides: Partial<BridgeTiming> | undefined): BridgeTiming {
  if (overrides !== undefined && (overrides === null || typeof overrides !== "object")) {
    throw new BridgeError("timing must be an object of timing options", "invalid_config");
  }
  const given = new Set<keyof BridgeTiming>();
  for (const [name, value] of Object.entries(overrides ?? {})) {
    if (!Object.hasOwn(defaultBridgeTiming, name)) {
      throw new BridgeError(
        `timing.${name.slice(0, 40)} is not a timing option (known: ${Object.keys(defaultBridgeTiming).join(", ")})`,
        "invalid_config",
      );
    }
    // An explicit undefined means "the default", as an absent field does.
    if (value !== undefined) given.add(name as keyof BridgeTiming);
  }
  // A field not set is derived from the related fields that were (resolveTiming).
  const timing = resolveTiming(overrides ?? {});
  const violation = timingViolation(timing, given);
  if (violation) throw new BridgeError(violation.message, "invalid_config");
  return timing;
}

/** The clock's own now() (SimulatedClock has one), else the real wall clock. */
function wallNowOf(clock: Clock & { now?: () => number }): () => number {
  return () => (typeof clock.now === "function" ? clock.now() : Date.now());
}

function nonEmpty(v: string | undefined): v is string {
  return v !== undefined && v.trim() !== "";
}
