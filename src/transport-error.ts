/**
 * Node's TLS and HTTP/2 errors, said in words a person can act on (as
 * connect-node keeps its Node error mapping in node-error.ts).
 */
import { BridgeError } from "./errors.js";

/** Node error codes of a server certificate that cannot be trusted. */
const untrustedCertificateCodes = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "CERT_UNTRUSTED",
  "CERT_SIGNATURE_FAILURE",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);

/**
 * Says what a person can do about transport failures whose text alone is
 * cryptic: an untrusted TLS certificate ("unable to verify the first
 * certificate") and a peer that does not speak HTTP/2 ("Protocol error").
 * Keeps the code; the original error stays as `cause`. Anything else is
 * returned unchanged.
 */
export function explainTransportError(reason: unknown): unknown {
  const chain: Array<{ code?: unknown; message?: unknown }> = [];
  for (let e: unknown = reason; e instanceof Error && chain.length < 8; e = (e as { cause?: unknown }).cause) chain.push(e);
  const nodeCode = (e: { code?: unknown }) => (typeof e.code === "string" ? e.code : "");
  const code = BridgeError.from(reason).code;
  const tls = chain.find((e) => untrustedCertificateCodes.has(nodeCode(e)));
  if (tls !== undefined) {
    return new BridgeError(
      `TLS: the server's certificate is not trusted (${String(tls.message)}); set tlsCaFile (ENGRAM_TLS_CA) to the PEM of the CA that signed it`,
      code,
      { cause: reason },
    );
  }
  if (chain.some((e) => nodeCode(e) === "ERR_HTTP2_ERROR")) {
    return new BridgeError(
      "HTTP/2 protocol error: the server does not speak HTTP/2 as gRPC needs (an HTTP/1.1 server answers so); check that ENGRAM_URL names the engram gRPC port, with https: for a TLS port",
      code,
      { cause: reason },
    );
  }
  return reason;
}
