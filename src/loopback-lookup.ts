/**
 * A `lookup` for net/tls/http2 connections that answers `localhost` with
 * 127.0.0.1 and ::1 itself, so no resolver (no /etc/hosts entry, no DNS
 * server) ever decides where a connection the bridge calls loopback goes
 * (RFC 6761 §6.3). Any other name is refused with ENOTFOUND: it is set only
 * on connections whose host passed `isLoopbackHost`.
 */
import type { LookupAddress, LookupOneOptions } from "node:dns";
import type { LookupFunction } from "node:net";

/** The addresses `localhost` is pinned to, IPv4 first (the dev server and most daemons listen there). */
export const loopbackAddresses: readonly LookupAddress[] = [
  { address: "127.0.0.1", family: 4 },
  { address: "::1", family: 6 },
];

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

export const loopbackLookup: LookupFunction = (hostname, options, callback) => {
  const done = callback as unknown as LookupCallback;
  const opts = (options ?? {}) as LookupOneOptions & { all?: boolean };
  // Answer asynchronously, as dns.lookup does.
  queueMicrotask(() => {
    if (!/^localhost$/i.test(hostname)) {
      const err: NodeJS.ErrnoException = Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname} (only localhost is resolved here)`), {
        code: "ENOTFOUND",
        errno: -3008,
        syscall: "getaddrinfo",
        hostname,
      });
      done(err, opts.all ? [] : "", 0);
      return;
    }
    const family = opts.family === 4 || opts.family === "IPv4" ? 4 : opts.family === 6 || opts.family === "IPv6" ? 6 : 0;
    const answers = loopbackAddresses.filter((a) => family === 0 || a.family === family);
    if (opts.all)
      done(
        null,
        answers.map((a) => ({ ...a })),
      );
    else done(null, answers[0]?.address ?? "127.0.0.1", answers[0]?.family ?? 4);
  });
};
