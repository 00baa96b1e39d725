/** gRPC status codes by the names the bridge's errors use (BridgeErrorCode), for the in-memory server. */
import { type Code, ConnectError } from "@connectrpc/connect";
import { bridgeErrorCodes } from "../errors.js";

/** The 16 gRPC status codes other than OK, as connect-es spells them: "unavailable", "deadline_exceeded", … */
export type GrpcCodeName =
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

/** Every GrpcCodeName, in gRPC's numeric order (canceled = 1 … unauthenticated = 16). */
export const grpcCodeNames: readonly GrpcCodeName[] = bridgeErrorCodes.slice(0, 16) as readonly GrpcCodeName[];

/** The numeric gRPC code of a name. Throws on a name that is not one. */
export function grpcCode(name: GrpcCodeName): Code {
  const index = grpcCodeNames.indexOf(name);
  if (index < 0) throw new TypeError(`not a gRPC code name: ${String(name)}`);
  return (index + 1) as Code;
}

/** The error a connect client throws when the server answers with this code. */
export function grpcError(name: GrpcCodeName, message = `the server answered ${name}`): ConnectError {
  return new ConnectError(message, grpcCode(name));
}
