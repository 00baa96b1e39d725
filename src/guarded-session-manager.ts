/**
 * The HTTP/2 session manager the gRPC client uses: connect-node's, with a
 * hook on every request (the client watches the ProjectEvents stream's
 * close and its session's GOAWAY there) and a guard against an unhandled
 * session "error".
 */
import type * as http2 from "node:http2";
import { Http2SessionManager } from "@connectrpc/connect-node";

/**
 * connect-node's session manager removes its "error" listener from a session
 * it leaves (abort(), or a new connection after a failure). When that session
 * was already destroyed by an error, Node emits the "error" only once its
 * socket has closed, a turn later, with no listener left, and the process
 * dies of an unhandled 'error' event (seen with an HTTP/1.1 server and
 * stop() at the moment of the failure). Every session a request used gets a
 * listener of its own; connect-node still handles the error itself.
 */
export class GuardedSessionManager extends Http2SessionManager {
  constructor(
    private readonly onRequest: (path: string, stream: http2.ClientHttp2Stream) => void,
    ...args: ConstructorParameters<typeof Http2SessionManager>
  ) {
    super(...args);
  }

  override async request(...args: Parameters<Http2SessionManager["request"]>): Promise<http2.ClientHttp2Stream> {
    const stream = await super.request(...args);
    this.onRequest(args[1], stream);
    const session = stream.session;
    if (session !== undefined && !guardedSessions.has(session)) {
      guardedSessions.add(session);
      session.on("error", ignoreSessionError);
    }
    return stream;
  }
}

const guardedSessions = new WeakSet<http2.Http2Session>();
function ignoreSessionError(): void {}
