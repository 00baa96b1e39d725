/**
 * Answers an authenticated RPC that carries no valid bearer token from its
 * request headers alone, before any of its body is buffered. connect-node
 * reads a request message whole (up to 4 MiB) before the RPC handler runs
 * and checks the token, so without this an unauthenticated client could make
 * the server buffer 4 MiB per stream, 100 streams per session. The body of
 * a refused call is read and discarded, never kept; the answer is the same
 * trailers-only UNAUTHENTICATED the handler gives, counted and recorded by
 * the same BearerAuth.
 */
import type * as http2 from "node:http2";
import { constants } from "node:http2";
import { Code, ConnectError } from "@connectrpc/connect";
import type { AuthenticatedRpc, BearerAuth } from "./bearer-auth.js";

const { NGHTTP2_NO_ERROR } = constants;

/** How long after its answer a refused call's stream is closed if the client has not ended it. */
const REFUSED_STREAM_CLOSE_MS = 1000;

export type RequestHandler = (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void;

/** The paths of the RPCs that need a token. */
const authenticatedPaths: Readonly<Record<string, AuthenticatedRpc>> = {
  "/engram.v1.EngramService/ProjectEvents": "projectEvents",
  "/engram.v1.EngramService/SyncProjectState": "syncProjectState",
};

/**
 * Wraps `handler`: a call to an authenticated RPC whose token `auth` refuses
 * is answered at once. `auth` undefined (a server with a finite capacity,
 * where the check is part of each call's work) or no token required: nothing
 * changes. Once `stopping` aborted, ProjectEvents calls go to the handler,
 * which answers UNAVAILABLE first, as before.
 */
export function rejectUnauthenticatedEarly(
  auth: BearerAuth | undefined,
  stopping: AbortSignal,
): (handler: RequestHandler) => RequestHandler {
  return (handler) => (req, res) => {
    const rpc = authenticatedPaths[(req.url ?? "").split("?")[0] ?? ""];
    if (auth === undefined || !auth.required || rpc === undefined || (rpc === "projectEvents" && stopping.aborted)) {
      return handler(req, res);
    }
    const authorization = req.headers.authorization;
    try {
      auth.check(rpc, new Headers(typeof authorization === "string" ? { authorization } : {}));
    } catch (err) {
      if (!(err instanceof ConnectError)) throw err;
      return answerUnauthenticated(req, res, err.rawMessage);
    }
    handler(req, res);
  };
}

/** A trailers-only gRPC UNAUTHENTICATED answer; the body that still comes is discarded. */
function answerUnauthenticated(req: http2.Http2ServerRequest, res: http2.Http2ServerResponse, message: string): void {
  req.resume();
  if (res.stream.destroyed || res.headersSent) return;
  res.stream.respond(
    {
      ":status": 200,
      "content-type": "application/grpc+proto",
      "grpc-status": String(Code.Unauthenticated),
      "grpc-message": encodeURIComponent(message),
    },
    { endStream: true },
  );
  // The answer is complete: RST_STREAM(NO_ERROR) tells the client to stop
  // sending (RFC 9113 §8.1), so a stream whose request never ends is not
  // held open (and never counts toward the session's busy streams). Not at
  // once: a close right after respond() can drop the answer's HEADERS frame
  // (Node 22), and the client would see a reset instead of UNAUTHENTICATED.
  const stream = res.stream;
  const timer = setTimeout(() => {
    if (!stream.destroyed && !stream.closed) stream.close(NGHTTP2_NO_ERROR);
  }, REFUSED_STREAM_CLOSE_MS);
  timer.unref();
  stream.once("close", () => clearTimeout(timer));
}
