/**
 * Tokens fuzzed with fast-check (arbitrary strings: control characters,
 * unicode, b64token look-alikes) around a recognisable marker. For every
 * token, as a string option, ENGRAM_TOKEN, or a token function (sync, async,
 * throwing, rejecting with the token itself), the bridge runs against the dev
 * server and every output channel is scanned for the marker: log lines,
 * status(), the actor snapshot, inspection events, and anything thrown.
 * Seeded and bounded: PROPERTY_SEED=<n> replays a run.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import * as http2 from "node:http2";
import { Code, ConnectError } from "@connectrpc/connect";
import { startDevServer, type DevServer } from "../../src/index.js";
import { createBearerInterceptor, withoutToken } from "../../src/bearer-interceptor.js";
import { bearerTokenProblem, bearerTokenProblems, trimBearerToken } from "../../src/bearer-token.js";
import { validateBridgeOptions } from "../../src/bridge-options.js";
import { HandlerRegistry } from "../../src/handler-registry.js";
import { capturingLogger, eventually, fastTiming } from "../helpers/e2e.js";
import { findLeaks, watchedBridge } from "./leak-scan.js";

const seed = Number(process.env.PROPERTY_SEED ?? 20_261_130);
const MARK = "tkMARKv8";
const b64 = /^[A-Za-z0-9\-._~+/]+=*$/;
/** What is sent: surrounding space, tab, CR and LF dropped (as Headers.set does). */
const sent = (token: string) => token.replace(/^[\t\n\r ]+|[\t\n\r ]+$/g, "");

/** What a header refuses or changes, and what RFC 6750 does not allow. */
const hostileChars = fc.constantFrom(
  "\n",
  "\r",
  "\r\n",
  "\0",
  "\t",
  " ",
  "\u007f",
  "\u0085",
  "\u00a0",
  "\u2028",
  "\u202e",
  "é",
  "中",
  "😀",
  "\ud800",
  ",",
  ";",
  '"',
  "\\",
  "=x",
  ":",
  "@",
  "%0A",
);
const b64Chars = fc.string({ unit: fc.constantFrom(..."ABCxyz019-._~+/"), maxLength: 12 });
/** Tokens that carry the marker: hostile ones, arbitrary ones, and valid ones. */
const tokens = fc.oneof(
  fc.tuple(b64Chars, hostileChars, b64Chars).map(([a, h, b]) => `${a}${MARK}${b}${h}${a}`),
  fc.tuple(hostileChars, b64Chars).map(([h, b]) => `${h}${MARK}${b}`),
  fc.tuple(fc.string({ unit: "binary", maxLength: 20 }), fc.string({ unit: "binary", maxLength: 20 })).map(([a, b]) => `${a}${MARK}${b}`),
  fc.tuple(fc.string({ unit: "grapheme", maxLength: 10 }), fc.constantFrom("", "=", "==")).map(([a, pad]) => `${a}${MARK}${pad}`),
  fc.tuple(b64Chars, fc.constantFrom("", "=", "==")).map(([a, pad]) => `${MARK}${a}${pad}`),
  fc.constantFrom(`Bearer ${MARK}`, `bearer\t${MARK}`, `${MARK}\n`, ` ${MARK}`, `${MARK}==x`),
);
type Mode = "string" | "env" | "function" | "async function" | "throws" | "rejects with the token";
const modes = fc.constantFrom<Mode>("string", "env", "function", "async function", "throws", "rejects with the token");

const fuzz = suite<{ server: DevServer }>("token fuzzing");

fuzz.before(async (ctx) => {
  ctx.server = await startDevServer({ token: "the-right-token" });
});

fuzz.after(async (ctx) => {
  await ctx.server.close();
});

fuzz("the token rule: valid exactly when RFC 6750 b64token, else one fixed phrase; trimming drops only surrounding HTTP whitespace", () => {
  fc.assert(
    fc.property(fc.string({ unit: "binary", maxLength: 30 }), (token) => trimBearerToken(token) === sent(token)),
    { seed, numRuns: 1000 },
  );
  const phrases = new Set<string>(Object.values(bearerTokenProblems));
  fc.assert(
    fc.property(fc.oneof(tokens, fc.string({ unit: "binary", maxLength: 30 })), (token) => {
      const problem = bearerTokenProblem(token);
      if (b64.test(token)) return problem === undefined;
      return problem !== undefined && phrases.has(problem);
    }),
    { seed, numRuns: 3000 },
  );
});

fuzz("the interceptor sets exactly `Bearer <token>` for a valid token and fails the call with a fixed message otherwise", async () => {
  await fc.assert(
    fc.asyncProperty(tokens, fc.boolean(), async (token, stream) => {
      const header = new Headers();
      let authorization: string | null = null;
      const call = createBearerInterceptor(async () => token)(async (req: { header: Headers }) => {
        authorization = req.header.get("authorization");
        return { stream } as never;
      });
      const valid = b64.test(sent(token));
      try {
        await call({ header, stream } as never);
      } catch (err) {
        if (!(err instanceof ConnectError) || err.code !== Code.Unauthenticated) throw new Error(`unexpected ${String(err)}`);
        if (valid) throw new Error(`a valid token failed: ${JSON.stringify(token)}`);
        const text = `${err.message}\n${err.stack}\n${String(err.cause)}\n${JSON.stringify([...err.metadata])}`;
        if (text.includes(MARK)) throw new Error(`the error leaks the token: ${text}`);
        return authorization === null;
      }
      return valid && authorization === `Bearer ${sent(token)}`;
    }),
    { seed, numRuns: 2000 },
  );
});

fuzz("an error of the call that echoes the token (a hostile server) loses the token and keeps its code", () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 20 }), fc.string({ maxLength: 20 }), fc.integer({ min: 1, max: 16 }), (a, b, code) => {
      const token = `${MARK}${a.replace(/[^A-Za-z0-9]/g, "")}`;
      const inner = new Error(`${a}${token}${b}`);
      const reason = new ConnectError(`server says ${a}${token}`, code as Code, { "x-echo": token }, undefined, inner);
      const out = withoutToken(reason, token);
      if (!(out instanceof ConnectError) || out.code !== code) return false;
      const text = `${out.message}\n${out.stack}\n${String(out.cause)}\n${JSON.stringify([...out.metadata])}`;
      return !text.includes(token) && out.cause === undefined;
    }),
    { seed, numRuns: 1000 },
  );
  // A header refused on this side (a TypeError that quotes the header) never passes, whatever token it holds.
  for (const typeError of [
    new TypeError(`Headers.set: "Bearer ${MARK}\nx" is an invalid header value.`),
    new TypeError(
      `Cannot convert argument to a ByteString because the character at index 9 has a value of 20013 which is greater than 255.`,
    ),
    Object.assign(new TypeError(`Invalid character in header content ["authorization"]`), { code: "ERR_INVALID_CHAR" }),
  ]) {
    const out = withoutToken(new ConnectError(typeError.message, Code.Internal, undefined, undefined, typeError), "other");
    assert.instance(out, ConnectError);
    assert.is((out as ConnectError).rawMessage, "a request header was refused (its text is not shown: it may hold the token)");
    assert.is((out as ConnectError).cause, undefined);
  }
  const clean = new ConnectError("unrelated", Code.Unavailable);
  assert.is(withoutToken(clean, MARK), clean, "an error without the token passes unchanged");
});

fuzz("every output channel of a running bridge stays clean, whatever the token and however it is given", async (ctx) => {
  const counts: Record<string, number> = {};
  const numRuns = Number(process.env.PROPERTY_RUNS ?? 80);
  const t0 = performance.now();
  await fc.assert(
    fc.asyncProperty(tokens, modes, async (token, mode) => {
      const valid = bearerTokenProblem(sent(token)) === undefined;
      const key = `${mode}/${valid ? "valid" : "invalid"}`;
      counts[key] = (counts[key] ?? 0) + 1;
      const source: Record<Mode, () => object> = {
        string: () => ({ token }),
        env: () => ({ env: { ENGRAM_TOKEN: token } }),
        function: () => ({ token: () => token }),
        "async function": () => ({ token: async () => token }),
        throws: () => ({
          token: () => {
            throw new Error(`vault: ${token}`);
          },
        }),
        "rejects with the token": () => ({ token: () => Promise.reject(token) }),
      };
      const w = watchedBridge({
        serverUrl: ctx.server.url,
        timing: { ...fastTiming, backoffMinMs: 5, backoffMaxMs: 10 },
        ...source[mode](),
      });
      try {
        w.bridge.start();
        w.bridge.syncNow();
        // Started: at least one call failed (the server wants another token) or it refused to start.
        await eventually("a failure or a refusal", () => w.bridge.status().lastError !== null, 3000);
      } catch (err) {
        w.thrown.push(err);
      }
      try {
        await w.bridge.stop();
      } catch (err) {
        w.thrown.push(err);
      }
      const leaks = findLeaks(w, [MARK]);
      if (leaks.length > 0) throw new Error(`${mode} ${JSON.stringify(token)} leaks:\n${leaks.join("\n")}`);
      // A string that is no b64token never reaches the wire; a valid one is refused by the server.
      const code = w.bridge.status().lastError?.code;
      if ((mode === "string" || mode === "env") && !valid && code !== "invalid_config") {
        throw new Error(`${mode} ${JSON.stringify(token)}: expected invalid_config, got ${code}`);
      }
      if (mode !== "string" && mode !== "env" && code !== "unauthenticated")
        throw new Error(`${mode}: expected unauthenticated, got ${code}`);
    }),
    { seed, numRuns },
  );
  // Every invalid token that reached the server is a bug: only valid ones may (and did) arrive.
  const seen = [...ctx.server.stats().tokensSeen.projectEvents, ...ctx.server.stats().tokensSeen.syncProjectState];
  assert.ok(
    seen.every((t) => b64.test(t)),
    "only b64tokens went on the wire",
  );
  assert.ok(
    seen.some((t) => t.includes(MARK)),
    "valid tokens did reach the server (the runs exercised the wire)",
  );
  assert.ok(Object.keys(counts).length >= 8, `modes × validity covered: ${JSON.stringify(counts)}`);
  console.log(`# token fuzzing: ${numRuns} bridges in ${(performance.now() - t0).toFixed(0)} ms, seed ${seed}: ${JSON.stringify(counts)}`);
});

type Echo = "refusal message" | "trailer message after headers" | "refusal metadata" | "trailer metadata";

/** A hostile server on loopback that quotes the Authorization header it got where `echo()` says. */
async function startEchoServer(echo: () => Echo): Promise<{ url: string; calls: () => number; close(): Promise<void> }> {
  let calls = 0;
  const server = http2.createServer();
  server.on("stream", (stream, headers) => {
    calls++;
    stream.on("error", () => {});
    const quoted = String(headers.authorization);
    const where = echo();
    const message = where.includes("message") ? encodeURIComponent(`no: ${quoted}`) : "no";
    const meta = where.endsWith("metadata") ? { "x-echo": quoted } : {};
    if (where.startsWith("refusal")) {
      stream.respond(
        { ":status": 200, "content-type": "application/grpc", "grpc-status": "16", "grpc-message": message, ...meta },
        { endStream: true },
      );
      return;
    }
    stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
    stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "7", "grpc-message": message, ...meta }));
    setImmediate(() => {
      if (!stream.destroyed) stream.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    calls: () => calls,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

fuzz("a hostile server that quotes the token back, anywhere in its answer, gets it into no output channel", async () => {
  let where: Echo = "refusal message";
  const hostile = await startEchoServer(() => where);
  const validTokens = fc.tuple(b64Chars, b64Chars, fc.constantFrom("", "=", "==")).map(([a, b, pad]) => `${a}${MARK}${b}${pad}`);
  const places = fc.constantFrom<Echo>("refusal message", "trailer message after headers", "refusal metadata", "trailer metadata");
  const numRuns = Number(process.env.PROPERTY_RUNS ?? 80) / 2;
  try {
    await fc.assert(
      fc.asyncProperty(validTokens, places, fc.boolean(), async (token, place, asFunction) => {
        where = place;
        const w = watchedBridge({
          serverUrl: hostile.url,
          timing: { ...fastTiming, backoffMinMs: 5, backoffMaxMs: 10 },
          token: asFunction ? () => token : token,
        });
        w.bridge.start();
        w.bridge.syncNow();
        try {
          await eventually(
            "a failed stream and sync",
            () => w.bridge.status().counters.streamFailures >= 1 && w.bridge.status().counters.syncFailures >= 1,
            3000,
          );
        } catch (err) {
          w.thrown.push(err);
        }
        await w.bridge.stop();
        const leaks = findLeaks(w, [MARK]);
        if (leaks.length > 0) throw new Error(`${place} ${JSON.stringify(token)} leaks:\n${leaks.join("\n")}`);
      }),
      { seed, numRuns },
    );
    assert.ok(hostile.calls() >= numRuns * 2, "every run reached the hostile server");
  } finally {
    await hostile.close();
  }
});

fuzz("option resolution never keeps or quotes a bad token string", () => {
  fc.assert(
    fc.property(tokens, fc.boolean(), (token, viaEnv) => {
      const r = validateBridgeOptions({
        registry: new HandlerRegistry(),
        logger: capturingLogger(),
        serverUrl: "http://127.0.0.1:1",
        ...(viaEnv ? { env: { ENGRAM_TOKEN: token } } : { env: {}, token }),
      });
      if (bearerTokenProblem(sent(token)) === undefined) return r.target.kind === "url" && r.token !== undefined;
      return r.target.kind === "invalid" && r.token === undefined && !r.target.error.message.includes(MARK);
    }),
    { seed, numRuns: 2000 },
  );
});

fuzz.run();
