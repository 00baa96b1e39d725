import { createHash, timingSafeEqual } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";

/** The RPCs that require a token (every one but Ping). */
export type AuthenticatedRpc = "projectEvents" | "syncProjectState";

/** Distinct bearer tokens kept per RPC: the most recent ones, so a flood of bad tokens cannot grow the server. */
export const maxTokensSeen = 16;

/** Distinct bearer tokens presented per RPC, in order of first sight (at most `maxTokensSeen`, oldest forgotten first). */
export interface TokensSeen {
  projectEvents: string[];
  syncProjectState: string[];
}

/**
 * Checks `authorization: Bearer <token>` and remembers which tokens each RPC
 * presented (valid or not), so tests can see what a client sent: the last
 * `maxTokensSeen` distinct ones per RPC, nothing more (6,000 calls with
 * distinct 16 kB tokens once grew `serve` by 190 MB). Error messages never
 * echo a token.
 */
export class BearerAuth {
  private readonly seen = { projectEvents: new Set<string>(), syncProjectState: new Set<string>() };
  private expected: Buffer | undefined;
  private failureCount = 0;

  /** @param token the required token; undefined accepts every call. */
  constructor(token: string | undefined) {
    this.setToken(token);
  }

  /** Replaces the required token (undefined: no authentication). */
  setToken(token: string | undefined): void {
    this.expected = token === undefined ? undefined : digest(token);
  }

  /** Records the call's token and throws Unauthenticated unless it is acceptable. */
  check(rpc: AuthenticatedRpc, header: Headers): void {
    const token = bearerToken(header.get("authorization"));
    if (token !== undefined) remember(this.seen[rpc], token);
    if (this.expected === undefined) return;
    if (token === undefined) throw this.fail("missing bearer token");
    if (!timingSafeEqual(digest(token), this.expected)) throw this.fail("invalid bearer token");
  }

  /** Whether calls need a token. */
  get required(): boolean {
    return this.expected !== undefined;
  }

  get failures(): number {
    return this.failureCount;
  }

  tokensSeen(): TokensSeen {
    return { projectEvents: [...this.seen.projectEvents], syncProjectState: [...this.seen.syncProjectState] };
  }

  private fail(message: string): ConnectError {
    this.failureCount++;
    return new ConnectError(message, Code.Unauthenticated);
  }
}

/** Adds `token` to `seen` unless present, forgetting the oldest beyond maxTokensSeen. */
function remember(seen: Set<string>, token: string): void {
  if (seen.has(token)) return;
  seen.add(token);
  if (seen.size > maxTokensSeen) seen.delete(seen.values().next().value as string);
}

/** The token of an `authorization` header value with the Bearer scheme (case-insensitive), else undefined. */
function bearerToken(value: string | null): string | undefined {
  const match = value === null ? null : /^bearer[ \t]+(\S+)[ \t]*$/i.exec(value);
  return match?.[1];
}

/** Fixed-length digests let timingSafeEqual compare tokens of any length. */
function digest(token: string): Buffer {
  return createHash("sha256").update(token).digest();
}
