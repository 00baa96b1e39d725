/**
 * What start() connects to: the validated target becomes the client the
 * actors call (an injected one, or a connect-node gRPC client the bridge
 * owns), or the reason the bridge stays idle (logged here).
 */
import type { BridgeTarget } from "./bridge-options.js";
import type { IdleReason } from "./bridge-status.js";
import { BridgeError, type ErrorSummary } from "./errors.js";
import { createGrpcEventsClient, type GrpcEventsClientOptions } from "./grpc-client.js";
import type { EventsClient, Logger } from "./types.js";

export type OpenedTarget =
  | { kind: "open"; client: EventsClient; close: (() => void) | undefined }
  | { kind: "idle"; idleReason: IdleReason; configError: ErrorSummary };

export interface OpenBridgeTargetOptions extends Omit<GrpcEventsClientOptions, "address"> {
  target: BridgeTarget;
  /** The URL as it may be logged. */
  redactedUrl: string | undefined;
  clientId: string;
  logger: Logger;
}

/** Opens the target; never throws (a client that cannot be made leaves the bridge idle). */
export function openBridgeTarget(options: OpenBridgeTargetOptions): OpenedTarget {
  const { target, logger: log } = options;
  switch (target.kind) {
    case "none":
      log.warn({}, `${target.why}; the bridge stays idle`);
      return { kind: "idle", idleReason: "no_url", configError: { code: "invalid_config", message: target.why } };
    case "invalid": {
      const configError = { code: target.error.code, message: target.error.rawMessage };
      log.error({ err: configError, url: options.redactedUrl }, `the bridge refuses to start: ${target.error.rawMessage}`);
      return { kind: "idle", idleReason: target.error.code === "insecure_token" ? "insecure_token" : "invalid_url", configError };
    }
    case "client":
      return { kind: "open", client: target.client, close: undefined };
    case "url": {
      let client: EventsClient & { close(): void };
      try {
        client = createGrpcEventsClient({
          address: target.address,
          token: options.token,
          tlsCaFile: options.tlsCaFile,
          clock: options.clock,
          tokenTimeoutMs: options.tokenTimeoutMs,
        });
      } catch (reason) {
        const err = BridgeError.from(reason, "invalid_config");
        const configError = { code: err.code, message: err.rawMessage };
        log.error({ err: configError }, `the bridge refuses to start: ${err.rawMessage}`);
        return { kind: "idle", idleReason: "invalid_config", configError };
      }
      log.info({ url: target.address.redacted, clientId: options.clientId }, "bridge starting");
      return { kind: "open", client, close: () => client.close() };
    }
  }
}
