/**
 * gRPC status codes by name for the dev server's fault switches
 * (failNextSyncs(), rejectStreams()) and the `serve`/`dev` commands, so a
 * test need not import connect's numeric `Code`.
 */
import { Code } from "@connectrpc/connect";

/** A gRPC status code by its snake_case name, as the CLI and gRPC's docs spell it. */
export type DevServerCodeName =
  | "canceled"
  | "unknown"
  | "invalid_argument"
  | "deadline_exceeded"
  | "not_found"
  | "already_exists"
  | "permission_denied"
  | "resource_exhausted"
  | "failed_precondition"
  | "aborted"
  | "out_of_range"
  | "unimplemented"
  | "internal"
  | "unavailable"
  | "data_loss"
  | "unauthenticated";

/** A gRPC status code: connect's numeric `Code` or its name. */
export type DevServerCode = Code | DevServerCodeName;

/**
 * The numeric code for `code`: a name in any spelling ("unavailable",
 * "PERMISSION_DENIED", "PermissionDenied", "permission-denied"), a decimal
 * number 1..16 as a string, or a Code. Undefined for anything else (OK, 0,
 * is no failure and is refused too).
 */
export function toStatusCode(code: DevServerCode | string | number): Code | undefined {
  if (typeof code === "number") return Number.isInteger(code) && code >= 1 && code <= 16 ? (code as Code) : undefined;
  if (/^\d{1,2}$/.test(code)) return toStatusCode(Number(code));
  const wanted = code.replace(/[_\s-]/g, "").toLowerCase();
  for (const [key, value] of Object.entries(Code)) {
    if (typeof value === "number" && key.toLowerCase() === wanted) return value;
  }
  return undefined;
}

/** `Code.PermissionDenied` → "permission_denied". */
export function statusCodeName(code: Code): DevServerCodeName {
  return Code[code].replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase() as DevServerCodeName;
}
