/**
 * connect-node builds each request's URL from its `:authority` (or Host)
 * synchronously, in the server's "request" listener and outside any RPC
 * handler: an authority that is no valid URL host throws there and the
 * process dies. Node's own HTTP/2 client sends exactly that for an IPv6
 * address (`::1:35963`, no brackets), so one such request used to kill the
 * dev server. This wraps the node request handler: a request whose authority
 * does not parse gets a gRPC INVALID_ARGUMENT answer, anything else the
 * handler throws synchronously an INTERNAL one, and the server goes on serving.
 */
import * as http2 from "node:http2";
import { Code } from "@connectrpc/connect";

export type RequestHandler = (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void;

/** Longest piece of a bad authority quoted back in the error message. */
const maxQuotedChars = 64;

/** Wraps `handler` so that no request can throw out of it. */
export function guardRequests(handler: RequestHandler): RequestHandler {
  return (req, res) => {
    const problem = authorityProblem(req);
    if (problem !== undefined) return answerError(req, res, Code.InvalidArgument, problem);
    try {
      handler(req, res);
    } catch {
      answerError(req, res, Code.Internal, "the request could not be handled");
    }
  };
}

/** Why connect-node could not build this request's URL, or undefined when it can. */
export function authorityProblem(req: http2.Http2ServerRequest): string | undefined {
  const authority = req.authority as string | undefined;
  if (authority === undefined || authority === "") return "the request has no :authority (or Host) header";
  const scheme = "encrypted" in req.socket && req.socket.encrypted === true ? "https" : "http";
  try {
    new URL(req.url ?? "", `${scheme}://${authority}`);
    return undefined;
  } catch {
    const quoted = JSON.stringify(authority.length > maxQuotedChars ? `${authority.slice(0, maxQuotedChars)}…` : authority);
    const hint = !authority.startsWith("[") && authority.split(":").length > 2 ? " (an IPv6 address needs brackets: [::1]:port)" : "";
    return `invalid :authority ${quoted}${hint}`;
  }
}

/** A trailers-only gRPC answer with `code`; the request body is read and discarded. */
function answerError(req: http2.Http2ServerRequest, res: http2.Http2ServerResponse, code: Code, message: string): void {
  req.resume();
  if (res.stream.destroyed) return;
  if (res.headersSent) return void res.stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
  res.stream.respond(
    {
      ":status": 200,
      "content-type": "application/grpc+proto",
      "grpc-status": String(code),
      "grpc-message": encodeURIComponent(message),
    },
    { endStream: true },
  );
}
