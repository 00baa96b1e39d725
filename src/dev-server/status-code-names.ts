/**
 * gRPC status code names for the dev server's public API, without
 * connect's types (their declarations need DOM's HeadersInit, so a strict
 * consumer without DOM in lib could not compile them).
 */
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

/** A gRPC status code: its number (connect's numeric `Code` fits) or its name. */
export type DevServerCode = number | DevServerCodeName;
