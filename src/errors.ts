/**
 * The closed set of codes a BridgeError carries. The first group mirrors the
 * gRPC status codes (as connect-es spells them); the second is the bridge's own.
 */
export const bridgeErrorCodes = [
  "canceled",
  "unknown",
  "invalid_argument",
  "deadline_exceeded",
  "not_found",
  "already_exists",
  "permission_denied",
  "resource_exhausted",
  "failed_precondition",
  "aborted",
  "out_of_range",
  "unimplemented",
  "internal",
  "unavailable",
  "data_loss",
  "unauthenticated",
  // The bridge's own codes.
  "invalid_config",
  "insecure_token",
  "stream_ended",
  "handler_failed",
  "handler_timeout",
  "stopped",
] as const;

export type BridgeErrorCode = (typeof bridgeErrorCodes)[number];

const grpcCodeNames: readonly BridgeErrorCode[] = bridgeErrorCodes.slice(0, 16);

/**
 * The one error class of engram-serverevents. Its message never carries a
 * token; `cause` keeps the original reason for debugging.
 */
export class BridgeError extends Error {
  override readonly name = "BridgeError";
  readonly code: BridgeErrorCode;
  /** The message without the code prefix. */
  readonly rawMessage: string;

  constructor(message: string, code: BridgeErrorCode = "unknown", options?: { cause?: unknown }) {
    super(`[${code}] ${message}`, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.rawMessage = message;
  }

  /**
   * Normalises anything thrown into a BridgeError. A ConnectError (or any
   * error with a numeric gRPC `code`) keeps its code; an AbortError becomes
   * "canceled"; anything else becomes "unknown".
   */
  static from(reason: unknown, fallback: BridgeErrorCode = "unknown"): BridgeError {
    if (reason instanceof BridgeError) return reason;
    if (reason instanceof Error) {
      const code = codeOf(reason) ?? fallback;
      const raw = "rawMessage" in reason && typeof reason.rawMessage === "string" ? reason.rawMessage : reason.message;
      return new BridgeError(raw, code, { cause: reason });
    }
    return new BridgeError(String(reason), fallback, { cause: reason });
  }
}

function codeOf(error: Error): BridgeErrorCode | undefined {
  if (error.name === "AbortError") return "canceled";
  const code: unknown = (error as { code?: unknown }).code;
  if (typeof code === "number" && code >= 1 && code <= 16) return grpcCodeNames[code - 1];
  if (typeof code === "string" && (bridgeErrorCodes as readonly string[]).includes(code)) {
    return code as BridgeErrorCode;
  }
  return undefined;
}

/** A JSON-serialisable summary of an error, as kept in machine context and status(). */
export interface ErrorSummary {
  code: BridgeErrorCode;
  message: string;
  /**
   * The server's pushback (gRFC A6 `grpc-retry-pushback-ms` in the call's
   * trailers or headers): wait at least this long before the next call.
   * Absent when the server sent none.
   */
  retryAfterMs?: number;
}

export function summarizeError(reason: unknown): ErrorSummary {
  const e = BridgeError.from(reason);
  const retryAfterMs = pushbackMsOf(e);
  return retryAfterMs === undefined ? { code: e.code, message: e.rawMessage } : { code: e.code, message: e.rawMessage, retryAfterMs };
}

/** The most pushback honoured: Node's timer limit. */
const MAX_PUSHBACK_MS = 2 ** 31 - 1;

/**
 * The `grpc-retry-pushback-ms` value carried by the error or its causes
 * (connect's errors keep trailers in `metadata`): a decimal integer in
 * [0, 2^31-1]; anything else is ignored (gRFC A6 says a malformed value
 * means "do not retry", but the bridge never stops retrying: its own
 * backoff stands).
 */
export function pushbackMsOf(reason: unknown): number | undefined {
  const seen = new Set<unknown>();
  for (let e: unknown = reason; e instanceof Error && !seen.has(e) && seen.size < 8; e = (e as { cause?: unknown }).cause) {
    seen.add(e);
    const metadata = (e as { metadata?: unknown }).metadata;
    if (!(metadata instanceof Headers)) continue;
    // Sent in headers and trailers alike, connect joins the two: "3000, 3000". The first counts.
    const raw = metadata.get("grpc-retry-pushback-ms")?.split(",")[0]?.trim();
    if (raw === undefined || !/^\d{1,10}$/.test(raw)) continue;
    const ms = Number(raw);
    if (ms <= MAX_PUSHBACK_MS) return ms;
  }
  return undefined;
}
