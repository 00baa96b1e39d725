/**
 * Issue 10, security item 1: a token that is not a valid HTTP header value
 * is never echoed. A configured string refuses to start with a fixed message;
 * a token function's bad value fails that call only, as unauthenticated.
 * Each case runs a bridge against the dev server and scans log lines,
 * status(), the actor snapshot and every inspection event for the secret.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import * as http2 from "node:http2";
import { startDevServer, type DevServer } from "../../src/index.js";
import { bearerTokenProblem } from "../../src/bearer-token.js";
import { eventually, fastTiming } from "../helpers/e2e.js";
import { findLeaks, watchedBridge, type WatchedBridge } from "./leak-scan.js";

interface Ctx {
  server: DevServer;
  bridges: WatchedBridge[];
}

const header = suite<Ctx>("token header safety");
const GOOD = "good-token_1.2~3+4/5==";
const MARK = "SECRETmarkQ7";

/** A recognisable secret with each kind of character a header refuses or changes. */
const badTokens: ReadonlyArray<[string, string, RegExp]> = [
  ["a newline", `${MARK}\nsecond-line`, /line break/],
  ["a carriage return", `${MARK}\rrest`, /line break/],
  ["a NUL", `${MARK}\0rest`, /control character/],
  ["a space", `${MARK} rest`, /whitespace/],
  ["an inner tab", `${MARK}\tx`, /whitespace/],
  ["Latin-1", `${MARK}é`, /non-ASCII/],
  ["non-Latin-1", `${MARK}中文`, /non-ASCII/],
  ["a Bearer prefix", `Bearer ${MARK}`, /give the token alone/],
  ["a comma", `${MARK},x`, /b64token/],
];

header.before.each(async (ctx) => {
  ctx.server = await startDevServer({ token: GOOD });
  ctx.bridges = [];
});

header.after.each(async (ctx) => {
  await Promise.all(ctx.bridges.map((w) => w.bridge.stop()));
  await ctx.server.close();
});

function watch(ctx: Ctx, options: Parameters<typeof watchedBridge>[0]): WatchedBridge {
  const w = watchedBridge({ serverUrl: ctx.server.url, timing: fastTiming, ...options });
  ctx.bridges.push(w);
  return w;
}

header("the token rule is RFC 6750 b64token", () => {
  for (const ok of [GOOD, "a", "A-._~+/", "abc==", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"])
    assert.is(bearerTokenProblem(ok), undefined, ok);
  for (const bad of ["", "=abc", "a=b", "a b", "a\tb", "a\u0000", "a\u007f", "ä", "a;b", '"a"', "a,b"])
    assert.ok(bearerTokenProblem(bad), JSON.stringify(bad));
  for (const [, token] of badTokens) assert.not.match(bearerTokenProblem(token) ?? "", MARK);
});

for (const [what, token, problem] of badTokens) {
  header(`a token string with ${what} refuses to start with a fixed message, and is echoed nowhere`, async (ctx) => {
    for (const options of [{ token }, { env: { ENGRAM_TOKEN: token } }]) {
      const w = watch(ctx, options);
      w.bridge.start();
      const s = w.bridge.status();
      assert.is(s.state, "idle");
      assert.is(s.lastError?.code, "invalid_config");
      assert.match(
        s.lastError?.message ?? "",
        "token" in options ? /^the token option is not a valid bearer token: it / : /^ENGRAM_TOKEN is not a valid bearer token: it /,
      );
      assert.match(s.lastError?.message ?? "", problem);
      assert.ok(
        w.logger.at("error").some((l) => /the bridge refuses to start: .*not a valid bearer token/.test(l.msg ?? "")),
        "an error line says why",
      );
      await w.bridge.stop();
      assert.equal(findLeaks(w, [MARK]), []);
    }
    assert.is(ctx.server.stats().streamsOpened + ctx.server.stats().syncCalls, 0, "no call was made");
  });

  header(`a token function returning ${what} fails those calls as unauthenticated, then recovers; echoed nowhere`, async (ctx) => {
    let current = token;
    let reads = 0;
    const w = watch(ctx, {
      token: async () => {
        reads++;
        return current;
      },
    });
    w.bridge.start();
    await eventually("two failed opens", () => w.bridge.status().counters.streamFailures >= 2);
    const failed = w.bridge.status();
    assert.is(failed.lastError?.code, "unauthenticated");
    assert.match(failed.lastError?.message ?? "", /^the token read for this call is not a valid bearer token: it /);
    assert.match(failed.lastError?.message ?? "", problem);
    assert.is(ctx.server.stats().streamsOpened, 0, "no call left with the bad token");
    assert.ok(reads >= 2, "the function is read again for each call");
    // Only those calls failed: the next good value streams.
    current = GOOD;
    await ctx.server.waitForStreams(1);
    await eventually("streaming", () => w.bridge.status().state === "streaming");
    assert.equal(ctx.server.stats().tokensSeen.projectEvents, [GOOD]);
    await w.bridge.stop();
    // The scan reaches errors: the fixed message is in the inspection events and a log line.
    assert.ok(w.channels().some((c) => c.channel.startsWith("inspection") && c.text.includes("is not a valid bearer token")));
    assert.ok(w.logger.lines.some((l) => l.text.includes("is not a valid bearer token")));
    assert.equal(findLeaks(w, [MARK, `Bearer ${MARK}`]), []);
  });
}

header(
  "surrounding spaces and line breaks are dropped, as Headers.set always did (a token file's trailing newline keeps working)",
  async (ctx) => {
    for (const options of [{ token: `${GOOD}\n` }, { env: { ENGRAM_TOKEN: `  ${GOOD}\r\n` } }, { token: () => `\t${GOOD}\n` }]) {
      const w = watch(ctx, options);
      w.bridge.start();
      await eventually("streaming", () => w.bridge.status().state === "streaming");
      await w.bridge.stop();
    }
    assert.equal(ctx.server.stats().tokensSeen.projectEvents, [GOOD]);
    assert.is(ctx.server.stats().authFailures, 0);
  },
);

header("a heartbeat with a bad function value fails alone and leaks nothing", async (ctx) => {
  let n = 0;
  // Good for the stream, bad for the sync that its open asks for.
  const w = watch(ctx, { token: () => (++n === 1 ? GOOD : `${MARK}\nx`) });
  w.bridge.start();
  await ctx.server.waitForStreams(1);
  await eventually("failed sync", () => w.bridge.status().counters.syncFailures >= 1);
  assert.is(w.bridge.status().state, "streaming", "the stream is not touched");
  assert.is(ctx.server.stats().syncCalls, 0);
  await w.bridge.stop();
  assert.ok(w.logger.lines.some((l) => /heartbeat failed/.test(l.msg ?? "") && l.text.includes("not a valid bearer token")));
  assert.equal(findLeaks(w, [MARK]), []);
});

/** A hostile server on loopback that quotes the token it received back in its errors. */
async function echoingServer(midStream: boolean): Promise<{ url: string; calls: () => number; close(): Promise<void> }> {
  let calls = 0;
  const server = http2.createServer();
  server.on("stream", (stream, headers) => {
    calls++;
    stream.on("error", () => {}); // the bridge aborts calls; that is not this test's business
    const echo = encodeURIComponent(`token ${String(headers.authorization)} is not welcome`);
    if (!midStream) {
      stream.respond(
        {
          ":status": 200,
          "content-type": "application/grpc",
          "grpc-status": "16",
          "grpc-message": echo,
          "x-echo": String(headers.authorization),
        },
        { endStream: true },
      );
      return;
    }
    stream.respond(
      { ":status": 200, "content-type": "application/grpc", "x-echo": String(headers.authorization) },
      { waitForTrailers: true },
    );
    stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "13", "grpc-message": echo }));
    setTimeout(() => {
      if (!stream.destroyed) stream.end();
    }, 20);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    calls: () => calls,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

for (const midStream of [false, true]) {
  header(
    `a server that echoes the token in its ${midStream ? "trailers after headers" : "trailers-only refusal"} has it cut out of every error`,
    async (ctx) => {
      const hostile = await echoingServer(midStream);
      const token = `${MARK}echo`;
      const w = watchedBridge({ serverUrl: hostile.url, token, timing: fastTiming });
      ctx.bridges.push(w);
      try {
        w.bridge.start();
        w.bridge.syncNow();
        await eventually("stream failures", () => w.bridge.status().counters.streamFailures >= 2);
        await eventually("a failed sync", () => w.bridge.status().counters.syncFailures >= 1);
        const failures = w.logger.lines.filter((l) => /failed/.test(l.msg ?? "")).map((l) => l.text);
        assert.ok(
          failures.some((t) => t.includes("token Bearer <token> is not welcome")),
          `the server's text is kept, the token cut out: ${failures.join("\n")}`,
        );
        await w.bridge.stop();
        assert.ok(hostile.calls() >= 3);
        assert.equal(findLeaks(w, [MARK]), []);
      } finally {
        await w.bridge.stop();
        await hostile.close();
      }
    },
  );
}

header.run();
