/**
 * gRPC status codes by name for the dev server's fault switches
 * (failNextSyncs(), rejectStreams()) and the `serve`/`dev` commands, so a
 * test need not import connect's numeric `Code`.
 */
import { Code } from "@connectrpc/connect";
import type { DevServerCode, DevServerCodeName } from "./status-code-names.js";

export type { DevServerCode, DevServerCodeName } from "./status-code-names.js";

/**
 * The numeric code for `code`: a name in any spelling ("unavailable",
 * "PERMISSION_DENIED", "PermissionDenied", "permission-denied"), a decimal
 * number 1..16 as a string, or a Code. Undefined for anything else (OK, 0,
 * is no failure and is refused too).
 */
export function toStatusCode(code: DevServerCode | string | number): number | undefined {
  if (typeof code === "number") return Number.isInteger(code) && code >= 1 && code <= 16 ? code : undefined;
  if (/^\d{1,2}$/.test(code)) return toStatusCode(Number(code));
  const wanted = code.replace(/[_\s-]/g, "").toLowerCase();
  for (const [key, value] of Object.entries(Code)) {
    if (typeof value === "number" && key.toLowerCase() === wanted) return value;
  }
  return undefined;
}

/** `Code.PermissionDenied` → "permission_denied". */
export function statusCodeName(code: number): DevServerCodeName {
  return (Code[code] ?? "Unknown").replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase() as DevServerCodeName;
}
