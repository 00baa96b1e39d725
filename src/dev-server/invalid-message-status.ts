/**
 * connect-node answers a request message that does not parse with INTERNAL
 * ("parse binary: …"), as if the server had failed. The client sent bytes
 * that are not the message, so the dev server answers INVALID_ARGUMENT:
 * this wraps the node request handler and rewrites exactly that status in
 * the trailers (unary and streaming calls alike). Nothing else changes.
 */
import type * as http2 from "node:http2";
import type { OutgoingHttpHeaders } from "node:http";
import { Code } from "@connectrpc/connect";

export type RequestHandler = (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void;

/** The grpc-message prefix connect gives a request that fails to parse (percent-encoded, as on the wire). */
const parseFailurePrefix = encodeURIComponent("parse binary: ");

/** Wraps `handler` so that a request message that does not parse fails with INVALID_ARGUMENT. */
export function answerInvalidArgumentOnParseError(handler: RequestHandler): RequestHandler {
  return (req, res) => {
    const addTrailers = res.addTrailers.bind(res);
    res.addTrailers = (headers: OutgoingHttpHeaders) => addTrailers(rewriteParseFailure(headers));
    handler(req, res);
  };
}

/** The trailers with a request-parse INTERNAL turned into INVALID_ARGUMENT; other trailers as given. */
export function rewriteParseFailure(headers: OutgoingHttpHeaders): OutgoingHttpHeaders {
  const status = headers["grpc-status"];
  const message = headers["grpc-message"];
  if (String(status) !== String(Code.Internal) || typeof message !== "string" || !message.startsWith(parseFailurePrefix)) return headers;
  return {
    ...headers,
    "grpc-status": String(Code.InvalidArgument),
    "grpc-message": `${encodeURIComponent("invalid request message: ")}${message.slice(parseFailurePrefix.length)}`,
  };
}
