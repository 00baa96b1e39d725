/**
 * The token: never sent in plaintext to a host other than loopback (refused
 * before any socket is opened), read fresh for every call when it is a
 * function (rotation), and kept out of every log line.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { createBridge, HandlerRegistry, SessionTracker, startDevServer, type Bridge, type DevServer } from "../../src/index.js";
import { capturingLogger, eventually, fastTiming, recordingHandler } from "../helpers/e2e.js";
import { installNetGuard, type NetGuard } from "./net-guard.js";

interface Ctx {
  guard: NetGuard;
  sockets: string[];
  onSocket: (message: unknown) => void;
  bridges: Bridge[];
  server: DevServer | undefined;
}

const token = suite<Ctx>("token safety");
/** TEST-NET-1 (RFC 5737): a documentation address. Only ever a string here: the guard refuses to dial it. */
const NON_ROUTABLE = "http://192.0.2.1";

token.before.each((ctx) => {
  ctx.guard = installNetGuard();
  ctx.sockets = [];
  // Every TCP client socket node creates is announced on this channel.
  ctx.onSocket = (message) => {
    const socket = (message as { socket?: { remoteAddress?: string } }).socket;
    ctx.sockets.push(String(socket?.remoteAddress ?? "pending"));
  };
  subscribe("net.client.socket", ctx.onSocket);
  ctx.bridges = [];
  ctx.server = undefined;
});

token.after.each(async (ctx) => {
  await Promise.all(ctx.bridges.map((b) => b.stop()));
  await ctx.server?.close();
  unsubscribe("net.client.socket", ctx.onSocket);
  ctx.guard.uninstall();
});

token("the guard sees a loopback dial (so that seeing none below means something)", async (ctx) => {
  ctx.server = await startDevServer();
  const bridge = createBridge({
    registry: new HandlerRegistry(),
    serverUrl: ctx.server.url,
    token: "t",
    env: {},
    logger: capturingLogger(),
    timing: fastTiming,
  });
  ctx.bridges.push(bridge);
  bridge.start();
  await ctx.server.waitForStreams(1);
  assert.ok(ctx.guard.attempts.some((a) => a.host === "127.0.0.1" && !a.blocked));
  assert.ok(ctx.sockets.length >= 1);
});

for (const [name, options] of [
  ["an option", { serverUrl: NON_ROUTABLE, token: "secret-plain" }],
  ["the environment", { env: { ENGRAM_URL: `${NON_ROUTABLE}:37777`, ENGRAM_TOKEN: "secret-plain" } }],
  ["a token function", { serverUrl: `${NON_ROUTABLE}:8080/engram`, token: () => "secret-plain" }],
  ["a URL with user info", { serverUrl: `http://user:secret-plain@192.0.2.1:1234`, token: "secret-plain" }],
] as const) {
  token(`a token for a plaintext non-loopback host (${name}) is refused before any socket opens`, async (ctx) => {
    const logger = capturingLogger();
    const bridge = createBridge({ registry: new HandlerRegistry(), logger, timing: fastTiming, env: {}, ...options });
    ctx.bridges.push(bridge);
    bridge.start();
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(ctx.guard.attempts, [], "no dial was even attempted");
    assert.equal(ctx.sockets, [], "no socket was created");
    const s = bridge.status();
    assert.is(s.state, "idle");
    assert.is(s.lastError?.code, "insecure_token");
    const line = logger.at("error")[0];
    assert.ok(line, "an error line says why");
    assert.match(line!.text, /refusing to send the token in plaintext to http:\/\/192\.0\.2\.1:\d+/);
    assert.match(line!.text, /allowInsecure \(ENGRAM_ALLOW_INSECURE=1\)/);
    assert.not.ok(
      logger.lines.some((l) => l.text.includes("secret-plain")),
      "the token is in no log line",
    );
    assert.not.ok(JSON.stringify(s).includes("secret-plain"));
    await bridge.stop();
    assert.equal(ctx.guard.attempts, []);
  });
}

token("https to a non-loopback host or allowInsecure are accepted (checked without dialling)", async (ctx) => {
  for (const options of [
    { serverUrl: "https://192.0.2.1", token: "t" },
    { serverUrl: NON_ROUTABLE, token: "t", allowInsecure: true },
  ]) {
    const logger = capturingLogger();
    const bridge = createBridge({ registry: new HandlerRegistry(), logger, timing: fastTiming, env: {}, ...options });
    ctx.bridges.push(bridge);
    bridge.start();
    assert.not.equal(bridge.status().lastError?.code, "insecure_token");
    // The guard refuses the dial itself: nothing leaves the machine.
    await eventually("the guarded dial failed", () => bridge.status().counters.streamFailures >= 1, 3000);
    await bridge.stop();
  }
  assert.ok(ctx.guard.attempts.length >= 2);
  assert.ok(ctx.guard.attempts.every((a) => a.blocked && a.host === "192.0.2.1"));
});

token("a token function is read for every call, so a rotated token is used without a restart", async (ctx) => {
  ctx.server = await startDevServer({ token: "v1" });
  let current = "v1";
  let reads = 0;
  const tracker = new SessionTracker();
  tracker.connect("p");
  const handler = recordingHandler();
  const registry = new HandlerRegistry();
  registry.register(handler);
  const logger = capturingLogger();
  const bridge = createBridge({
    registry,
    tracker,
    serverUrl: ctx.server.url,
    env: {},
    logger,
    timing: fastTiming,
    token: async () => {
      reads++;
      return current;
    },
  });
  ctx.bridges.push(bridge);
  bridge.start();
  await ctx.server.waitForStreams(1);
  await eventually("first sync", () => bridge.status().counters.syncs >= 1);
  const calls = () => ctx.server!.stats().streamsOpened + ctx.server!.stats().syncCalls;
  assert.is(reads, calls(), "one read per call");

  // Rotation: the server wants v2 from now on; the daemon's source follows.
  ctx.server.setToken("v2");
  current = "v2";
  bridge.syncNow();
  await eventually("sync with v2", () => ctx.server!.stats().tokensSeen.syncProjectState.includes("v2"));
  ctx.server.dropStreams();
  await eventually(
    "stream reopened with v2",
    () => ctx.server!.stats().tokensSeen.projectEvents.includes("v2") && ctx.server!.stats().openStreams === 1,
  );
  ctx.server.createProject("rotated");
  ctx.server.removeProject("rotated");
  await eventually("removal after rotation", () => handler.ids().includes("rotated"));
  assert.is(ctx.server.stats().authFailures, 0);
  assert.ok(reads >= 4);

  // The source lags behind a rotation: refused once per streak, then it recovers.
  ctx.server.setToken("v3");
  ctx.server.dropStreams();
  await eventually("refused", () => ctx.server!.stats().authFailures >= 2);
  current = "v3";
  await eventually(
    "recovered with v3",
    () => ctx.server!.stats().tokensSeen.projectEvents.includes("v3") && ctx.server!.stats().openStreams === 1,
    5000,
  );
  // Once per streak for each RPC: the stream's line, and at most one for the heartbeat.
  assert.is(logger.at("error").filter((l) => /ProjectEvents failed with unauthenticated/.test(l.text)).length, 1);
  assert.ok(logger.at("error").filter((l) => /heartbeat failed with unauthenticated/.test(l.text)).length <= 1);
  for (const t of ["v1", "v2", "v3"])
    assert.not.ok(
      logger.lines.some((l) => l.text.includes(`"${t}"`)),
      `token ${t} logged`,
    );
});

token("a token function that throws is reported without its message and the bridge keeps trying", async (ctx) => {
  ctx.server = await startDevServer({ token: "ok" });
  let fail = true;
  const logger = capturingLogger();
  const bridge = createBridge({
    registry: new HandlerRegistry(),
    serverUrl: ctx.server.url,
    env: {},
    logger,
    timing: fastTiming,
    token: () => {
      if (fail) throw new Error("vault says: token=leaked-value");
      return "ok";
    },
  });
  ctx.bridges.push(bridge);
  bridge.start();
  await eventually("failures", () => bridge.status().counters.streamFailures >= 2);
  assert.is(bridge.status().lastError?.code, "unauthenticated");
  fail = false;
  await ctx.server.waitForStreams(1, 5000);
  assert.not.ok(logger.lines.some((l) => l.text.includes("leaked-value")));
});

token.run();
