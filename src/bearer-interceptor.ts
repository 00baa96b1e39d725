/**
 * The bearer-token interceptor of the default client: reads the token for
 * every call (unary and streaming alike) and sets `authorization: Bearer
 * <token>`. A token that is not a valid header value fails that one call
 * with `unauthenticated` and a fixed message; no error that could carry the
 * token (the token function's own, or the `TypeError` that `Headers.set`
 * throws, which quotes `Bearer <token>`) is passed on, not even as a cause.
 * An error of the call whose text holds the token it sent (a server that
 * echoes it) or looks like a refused header is replaced by one with the
 * token cut out and no cause, metadata or details.
 */
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { bearerTokenProblem, trimBearerToken } from "./bearer-token.js";
import { BridgeError } from "./errors.js";
import type { Clock, TokenSource } from "./types.js";

/** How long one read of the token may take before the call fails (a token function that never settles). */
export const DEFAULT_TOKEN_TIMEOUT_MS = 10_000;

export interface BearerInterceptorOptions {
  /** How long one read of the token may take, in ms. Defaults to DEFAULT_TOKEN_TIMEOUT_MS (10 s). */
  timeoutMs?: number | undefined;
  /** The clock of that timer. Defaults to Node's timers. */
  clock?: Clock | undefined;
}

export type { TokenSource } from "./types.js";

/**
 * A connect interceptor, declared without connect's types (which need
 * `DOM` in `lib` for `HeadersInit`): any connect `Interceptor` slot takes it,
 * as the function's type parameter becomes connect's own call type.
 */
export type BearerInterceptor = <Next extends (req: never) => Promise<unknown>>(next: Next) => Next;

/** The message of a call that failed because no valid token could be read. */
export const tokenFunctionFailedMessage = "the token function failed";

/**
 * An interceptor that adds `authorization: Bearer <token>` to every call,
 * unary and streaming. A token read that does not settle within
 * `timeoutMs`, or before the call is aborted, fails the call (the request
 * is never sent), so a hanging token function never wedges a call.
 */
export function createBearerInterceptor(token: TokenSource, options: BearerInterceptorOptions = {}): BearerInterceptor {
  return bearerInterceptor(token, options) as unknown as BearerInterceptor;
}

function bearerInterceptor(token: TokenSource, options: BearerInterceptorOptions): Interceptor {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TOKEN_TIMEOUT_MS;
  const clock = options.clock;
  return (next) => async (req) => {
    let value: unknown;
    try {
      // A connect request always has its signal; a hand-made one (tests) may not.
      value = await readBounded(token, timeoutMs, clock, (req as { signal?: AbortSignal }).signal);
    } catch (cause) {
      if (cause instanceof TokenReadAborted) throw new ConnectError("the call was aborted while its token was being read", Code.Canceled);
      // Keep the code (connect would report a plain throw as UNKNOWN) but only
      // a message the bridge wrote itself: the function's own could carry the token.
      const own = cause instanceof BridgeError && cause.code === "unauthenticated" ? cause.rawMessage : tokenFunctionFailedMessage;
      throw new ConnectError(own, Code.Unauthenticated);
    }
    if (typeof value === "string") value = trimBearerToken(value);
    if (value === undefined || value === "") return next(req);
    const problem = bearerTokenProblem(value);
    if (problem !== undefined) {
      throw new ConnectError(`the token read for this call is not a valid bearer token: it ${problem}`, Code.Unauthenticated);
    }
    const sent = value as string;
    try {
      req.header.set("authorization", `Bearer ${sent}`);
    } catch {
      // Unreachable after the check above; the TypeError would quote the header.
      throw new ConnectError("the bearer token was refused as a header value", Code.Unauthenticated);
    }
    let res: Awaited<ReturnType<typeof next>>;
    try {
      res = await next(req);
    } catch (reason) {
      throw withoutToken(reason, sent);
    }
    if (!res.stream) return res;
    return { ...res, message: messagesWithoutToken(res.message, sent) };
  };
}

class TokenReadAborted extends Error {}

/** One read of the token, failed after `timeoutMs` or when `signal` aborts (the read itself is left to settle). */
function readBounded(
  token: TokenSource,
  timeoutMs: number,
  clock: Clock | undefined,
  signal: AbortSignal | undefined,
): Promise<string | undefined> {
  if (signal?.aborted) return Promise.reject(new TokenReadAborted());
  return new Promise<string | undefined>((resolve, reject) => {
    const set = clock ? clock.setTimeout.bind(clock) : setTimeout;
    const clear = clock ? clock.clearTimeout.bind(clock) : (id: unknown) => clearTimeout(id as ReturnType<typeof setTimeout>);
    let done = false;
    const finish = () => {
      done = true;
      clear(timer);
      signal?.removeEventListener("abort", onAbort);
    };
    const onAbort = () => {
      if (done) return;
      finish();
      reject(new TokenReadAborted());
    };
    const timer = set(() => {
      if (done) return;
      finish();
      reject(new BridgeError(`the token function did not settle within ${timeoutMs} ms`, "unauthenticated"));
    }, timeoutMs);
    signal?.addEventListener("abort", onAbort, { once: true });
    let read: Promise<string | undefined>;
    try {
      read = Promise.resolve(token());
    } catch (reason) {
      read = Promise.reject(reason);
    }
    read.then(
      (value) => {
        if (done) return;
        finish();
        resolve(value);
      },
      (reason: unknown) => {
        if (done) return;
        finish();
        reject(reason);
      },
    );
  });
}

/** The same messages; a failure of the stream goes through withoutToken. One `.catch` per message, no generator. */
function messagesWithoutToken<T>(messages: AsyncIterable<T>, token: string): AsyncIterable<T> {
  return {
    [Symbol.asyncIterator]() {
      const it = messages[Symbol.asyncIterator]();
      const scrub = (reason: unknown) => Promise.reject(withoutToken(reason, token));
      return {
        next: () => it.next().catch(scrub),
        return: (value?: unknown) =>
          it.return ? it.return(value).catch(scrub) : Promise.resolve({ done: true as const, value: value as T }),
        throw: (reason?: unknown) => (it.throw ? it.throw(reason).catch(scrub) : Promise.reject(reason)),
      };
    },
  };
}

/** Node's and undici's errors for a header they refuse (TypeErrors); their messages may quote the header. */
const headerErrorCodes = new Set([
  "ERR_INVALID_CHAR",
  "ERR_INVALID_HTTP_TOKEN",
  "ERR_HTTP2_INVALID_HEADER_VALUE",
  "ERR_HTTP_INVALID_HEADER_VALUE",
]);
const headerErrorText = /\bbearer\b|invalid header value|header content|ByteString/i;

/**
 * Returns `reason` itself when nothing in its cause chain mentions the token
 * or a refused header; else a ConnectError with the same code, the token cut
 * out of its message, and nothing else kept.
 */
export function withoutToken(reason: unknown, token: string): unknown {
  const messages: string[] = [];
  const texts: string[] = [];
  let headerError = false;
  const seen = new Set<unknown>();
  for (let e: unknown = reason; e instanceof Error && !seen.has(e) && seen.size < 8; e = (e as { cause?: unknown }).cause) {
    seen.add(e);
    const { code, metadata, details } = e as { code?: unknown; metadata?: unknown; details?: unknown };
    if (typeof code === "string" && headerErrorCodes.has(code)) headerError = true;
    // A header refused on this side shows as a TypeError; a server's text never does.
    if (e instanceof TypeError && headerErrorText.test(e.message)) headerError = true;
    messages.push(e.message);
    texts.push(String(e.stack ?? ""), safeJson(metadata ?? null), safeJson(details ?? null));
  }
  if (reason !== null && typeof reason !== "object") messages.push(String(reason));
  const leaks = token !== "" && [...messages, ...texts].some((t) => t.includes(token));
  if (!leaks && !headerError) return reason;
  const original = ConnectError.from(reason);
  const message = headerError
    ? "a request header was refused (its text is not shown: it may hold the token)"
    : original.rawMessage.split(token).join("<token>");
  return new ConnectError(message, original.code);
}

function safeJson(value: unknown): string {
  try {
    return (
      JSON.stringify(value, (_k, v: unknown) =>
        v instanceof Headers ? [...v.entries()] : v instanceof Uint8Array ? Buffer.from(v).toString("latin1") : v,
      ) ?? ""
    );
  } catch {
    return "";
  }
}
