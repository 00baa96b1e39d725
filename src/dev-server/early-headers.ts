/**
 * Response headers when a ProjectEvents stream opens. connect-node sends a
 * streaming call's headers only with its first message (as grpc-go does), so
 * a client cannot tell an accepted stream from one still being decided until
 * the first event; a bridge then waits its `openConfirmMs`. The reference
 * server tells it at once: the RPC handler calls `sendHeadersNow(context)`
 * once it accepted the stream (after authentication and the fault checks, so
 * a refusal is still a trailers-only answer), which writes the gRPC response
 * headers on the HTTP/2 stream; connect's own writeHead later is a no-op.
 */
import type * as http2 from "node:http2";
import { createContextKey, createContextValues, type ContextValues, type HandlerContext } from "@connectrpc/connect";

export type RequestHandler = (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void;

/** Sends the response headers of the call now (a no-op where the server does not do that). */
const sendHeadersKey = createContextKey<(headers: Headers) => void>(() => {}, { description: "send the response headers now" });

/** Sends `context`'s response headers (content type, grpc-encoding) now, if the server was set up to. */
export function sendHeadersNow(context: HandlerContext): void {
  context.values.get(sendHeadersKey)(context.responseHeader);
}

/**
 * Wraps `handler` (connect-node's adapter, built with the returned
 * `contextValues`) so that sendHeadersNow() can reach the node response.
 * With `enabled` false, nothing changes: headers go with the first message.
 */
export function earlyHeaders(enabled: boolean): {
  wrap(handler: RequestHandler): RequestHandler;
  contextValues(req: object): ContextValues;
} {
  const responses = new WeakMap<object, http2.Http2ServerResponse>();
  return {
    wrap: (handler) => (req, res) => {
      if (enabled) responses.set(req, res);
      handler(req, res);
    },
    contextValues(req) {
      const values = createContextValues();
      const res = responses.get(req);
      if (res === undefined) return values;
      return values.set(sendHeadersKey, (headers) => {
        if (res.headersSent || res.stream.destroyed) return;
        res.writeHead(200, Object.fromEntries(headers));
        const writeHead = res.writeHead.bind(res);
        // connect writes its headers with the first message or the status: already done.
        res.writeHead = ((...args: Parameters<typeof writeHead>) => (res.headersSent ? res : writeHead(...args))) as typeof res.writeHead;
      });
    },
  };
}
