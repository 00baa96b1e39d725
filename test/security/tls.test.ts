/**
 * TLS with a test CA made at test time by openssl: `https:` with tlsCaFile
 * works (token included), a wrong CA or no CA fails with a clear error and
 * keeps backing off, an unreadable CA file refuses to start.
 */
import dns from "node:dns";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { SessionTracker, startDevServer, type DevServer } from "../../src/index.js";
import { eventually, createBridgeFixture, type BridgeFixture } from "../helpers/e2e.js";
import { createTestPki, type TestPki } from "./test-ca.js";

interface Ctx {
  pki: TestPki;
  server: DevServer;
  bridges: BridgeFixture;
  make: BridgeFixture["make"];
}

const tls = suite<Ctx>("TLS");
const token = "tls-token-value";

tls.before(async (ctx) => {
  ctx.pki = createTestPki();
});

tls.after(async (ctx) => {
  ctx.pki.dispose();
});

tls.before.each(async (ctx) => {
  ctx.server = await startDevServer({ tls: { cert: ctx.pki.cert, key: ctx.pki.key }, token });
  ctx.bridges = createBridgeFixture(() => ({ serverUrl: ctx.server.url, token, clientId: "tls" }));
  ctx.make = ctx.bridges.make;
});

tls.after.each(async (ctx) => {
  await ctx.bridges.stopAll();
  await ctx.server.close();
});

tls("https with tlsCaFile: both RPCs work over TLS with the token", async (ctx) => {
  assert.match(ctx.server.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  const tracker = new SessionTracker();
  tracker.connect("secure");
  ctx.server.createProject("secure");
  const { bridge, handler, logger } = ctx.make({ tlsCaFile: ctx.pki.caFile, tracker });
  bridge.start();
  await ctx.server.waitForStreams(1);
  await eventually("sync over TLS", () => bridge.status().counters.syncs >= 1);
  ctx.server.removeProject("secure");
  await eventually("removal over TLS", () => handler.ids().includes("secure"));
  assert.equal(ctx.server.stats().tokensSeen, { projectEvents: [token], syncProjectState: [token] });
  assert.is(bridge.status().lastError, null);
  assert.not.ok(logger.lines.some((l) => l.text.includes(token)));
});

tls("https://localhost is pinned to loopback too: TLS to the name in the certificate, no DNS lookup", async (ctx) => {
  const lookups: string[] = [];
  const original = dns.lookup;
  dns.lookup = function (this: unknown, hostname: string, ...rest: unknown[]) {
    lookups.push(hostname);
    return (original as (...a: unknown[]) => unknown).call(this, hostname, ...rest);
  } as typeof dns.lookup;
  try {
    const { bridge } = ctx.make({ serverUrl: ctx.server.url.replace("127.0.0.1", "localhost"), tlsCaFile: ctx.pki.caFile });
    bridge.start();
    await ctx.server.waitForStreams(1);
    await eventually("streaming", () => bridge.status().state === "streaming");
    assert.equal(ctx.server.stats().tokensSeen.projectEvents, [token]);
    assert.equal(lookups, []);
  } finally {
    dns.lookup = original;
  }
});

tls("ENGRAM_TLS_CA is read when tlsCaFile is not given", async (ctx) => {
  const { bridge } = ctx.make({ env: { ENGRAM_TLS_CA: ctx.pki.caFile } });
  bridge.start();
  await ctx.server.waitForStreams(1);
  await eventually("streaming", () => bridge.status().state === "streaming");
});

tls("a wrong CA fails with a clear error and keeps backing off", async (ctx) => {
  const { bridge, logger } = ctx.make({ tlsCaFile: ctx.pki.wrongCaFile });
  bridge.start();
  await eventually("several failures", () => bridge.status().counters.streamFailures >= 4, 5000);
  const s = bridge.status();
  assert.ok(s.attempt >= 4);
  assert.ok(["backoff", "connecting"].includes(s.state));
  assert.is(ctx.server.stats().streamsOpened, 0);
  assert.is(ctx.server.stats().tokensSeen.projectEvents.length, 0, "no token went to an untrusted server");
  const line = logger.at("warn").find((l) => /ProjectEvents failed/.test(l.msg ?? ""));
  assert.ok(line);
  assert.match(line!.text, /TLS: the server's certificate is not trusted \(unable to verify the first certificate\)/);
  assert.match(line!.text, /tlsCaFile \(ENGRAM_TLS_CA\)/);
  console.log(`# wrong CA: ${line!.text}`);
});

tls("without a CA file the system roots do not trust the test CA", async (ctx) => {
  const { bridge, logger } = ctx.make();
  bridge.start();
  await eventually("failures", () => bridge.status().counters.streamFailures >= 2, 5000);
  assert.ok(logger.lines.some((l) => /certificate is not trusted/.test(l.text)));
  assert.is(ctx.server.stats().tokensSeen.projectEvents.length, 0);
});

tls("a CA file that cannot be read refuses to start with a clear error", async (ctx) => {
  const { bridge, logger } = ctx.make({ tlsCaFile: `${ctx.pki.dir}/missing.pem` });
  bridge.start();
  assert.is(bridge.status().state, "idle");
  assert.is(bridge.status().lastError?.code, "invalid_config");
  const line = logger.at("error")[0];
  assert.ok(line);
  assert.match(line!.text, /cannot read the TLS CA file/);
  assert.is(ctx.server.stats().streamsOpened, 0);
});

tls("a plaintext URL to the TLS port fails and keeps backing off", async (ctx) => {
  const { bridge, logger } = ctx.make({ serverUrl: ctx.server.url.replace("https:", "http:") });
  bridge.start();
  await eventually("failures", () => bridge.status().counters.streamFailures >= 3, 5000);
  assert.ok(logger.at("warn").some((l) => /ProjectEvents failed/.test(l.msg ?? "")));
  assert.is(ctx.server.stats().tokensSeen.projectEvents.length, 0);
});

tls("tlsCaFile with an http: URL warns that it means plaintext (the Go daemon used TLS whenever a CA was set)", async (ctx) => {
  const plain = await startDevServer({ token });
  try {
    for (const options of [{ tlsCaFile: ctx.pki.caFile }, { env: { ENGRAM_TLS_CA: ctx.pki.caFile } }]) {
      const { bridge, logger } = ctx.make({ serverUrl: plain.url, ...options });
      const warning = logger.at("warn").find((l) => /tlsCaFile/.test(l.msg ?? ""));
      assert.ok(warning, "a warning at once, before start()");
      assert.match(warning!.msg ?? "", /ENGRAM_TLS_CA/);
      assert.match(warning!.msg ?? "", /http:, which is plaintext/);
      assert.match(warning!.msg ?? "", /use https: for TLS/);
      assert.not.ok(warning!.text.includes(token));
      // A warning, not a refusal: it still works, in plaintext.
      bridge.start();
      await eventually("streaming in plaintext", () => bridge.status().state === "streaming");
    }
    // No warning where the CA file is used.
    assert.not.ok(ctx.make({ tlsCaFile: ctx.pki.caFile }).logger.lines.some((l) => /tlsCaFile/.test(l.msg ?? "")));
  } finally {
    await ctx.bridges.stopAll();
    await plain.close();
  }
});

tls.run();
