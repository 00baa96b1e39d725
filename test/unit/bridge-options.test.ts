import { suite } from "uvu";
import * as assert from "uvu/assert";
import { validateBridgeOptions } from "../../src/bridge-options.js";
import { createBridge } from "../../src/bridge.js";
import { BridgeError } from "../../src/errors.js";
import { HandlerRegistry } from "../../src/handler-registry.js";
import { defaultBridgeTiming } from "../../src/timing.js";
import { capturingLogger } from "../helpers/e2e.js";

const options = suite("bridge options");

const base = () => ({ registry: new HandlerRegistry(), logger: capturingLogger() });

options("serverUrl wins over ENGRAM_URL, which wins over the deprecated ENGRAM_SERVER_URL", () => {
  const a = validateBridgeOptions({ ...base(), serverUrl: "http://127.0.0.1:1", env: { ENGRAM_URL: "http://127.0.0.1:2" } });
  assert.is(a.target.kind === "url" && a.target.address.port, 1);
  const logger = capturingLogger();
  const b = validateBridgeOptions({ ...base(), logger, env: { ENGRAM_URL: "http://127.0.0.1:2", ENGRAM_SERVER_URL: "http://127.0.0.1:3" } });
  assert.is(b.target.kind === "url" && b.target.address.port, 2);
  assert.is(logger.lines.length, 0, "no deprecation warning when ENGRAM_URL is set");
  const c = validateBridgeOptions({ ...base(), logger, env: { ENGRAM_SERVER_URL: "http://127.0.0.1:3" } });
  assert.is(c.target.kind === "url" && c.target.address.port, 3);
  assert.ok(logger.at("warn").some((l) => /ENGRAM_SERVER_URL is deprecated/.test(l.msg ?? "")));
});

options("default ports are 37777 for http and 443 for https", () => {
  const http = validateBridgeOptions({ ...base(), env: { ENGRAM_URL: "http://localhost" } });
  const https = validateBridgeOptions({ ...base(), env: { ENGRAM_URL: "https://engram.example" } });
  assert.is(http.target.kind === "url" && http.target.address.port, 37777);
  assert.is(https.target.kind === "url" && https.target.address.port, 443);
});

options("token, CA file and allowInsecure come from the environment when not given", async () => {
  const r = validateBridgeOptions({
    ...base(),
    env: { ENGRAM_URL: "https://h", ENGRAM_TOKEN: "t0k", ENGRAM_TLS_CA: "/ca.pem", ENGRAM_ALLOW_INSECURE: "1" },
  });
  assert.is(await r.token?.(), "t0k");
  assert.is(r.tlsCaFile, "/ca.pem");
  assert.is(r.allowInsecure, true);
  let n = 0;
  const rotating = validateBridgeOptions({ ...base(), token: () => `v${++n}`, env: { ENGRAM_TOKEN: "ignored" } });
  assert.is(await rotating.token?.(), "v1");
  assert.is(await rotating.token?.(), "v2", "a token function is read per call");
});

options("a token is refused in plaintext to a non-loopback host unless allowInsecure", () => {
  const refused = validateBridgeOptions({ ...base(), token: "secret", serverUrl: "http://engram.example:37777" });
  assert.is(refused.target.kind, "invalid");
  assert.is(refused.target.kind === "invalid" && refused.target.error.code, "insecure_token");
  assert.not.ok(refused.target.kind === "invalid" && refused.target.error.message.includes("secret"));
  assert.is(validateBridgeOptions({ ...base(), token: "secret", serverUrl: "http://engram.example", allowInsecure: true }).target.kind, "url");
  assert.is(validateBridgeOptions({ ...base(), token: "secret", serverUrl: "http://127.0.0.1:9" }).target.kind, "url", "loopback is fine");
  assert.is(validateBridgeOptions({ ...base(), token: "secret", serverUrl: "https://engram.example" }).target.kind, "url", "TLS is fine");
  assert.is(validateBridgeOptions({ ...base(), serverUrl: "http://engram.example" }).target.kind, "url", "no token, nothing to protect");
});

options("a token string that is not an RFC 6750 b64token is a config error that names the problem, never the value", async () => {
  for (const [token, problem] of [
    ["tok\nMARK", /line break/],
    ["tok\u0000MARK", /control character/],
    ["tok MARK", /whitespace/],
    ["tokMARK\u00e9", /non-ASCII/],
    ["Bearer tokMARK", /give the token alone/],
    ["tok;MARK", /b64token/],
  ] as const) {
    for (const [source, opts] of [
      ["the token option", { token }],
      ["ENGRAM_TOKEN", { env: { ENGRAM_TOKEN: token } }],
    ] as const) {
      const r = validateBridgeOptions({ ...base(), serverUrl: "http://127.0.0.1:1", ...opts });
      assert.is(r.target.kind, "invalid", JSON.stringify(token));
      const error = r.target.kind === "invalid" ? r.target.error : undefined;
      assert.is(error?.code, "invalid_config");
      assert.ok(error?.rawMessage.startsWith(`${source} is not a valid bearer token: it `), error?.rawMessage);
      assert.match(error?.rawMessage ?? "", problem);
      assert.not.match(error?.message ?? "", "MARK");
      assert.is(r.token, undefined, "a bad token is not kept");
    }
  }
  // Without a URL the token problem is the reason given; an injected client never uses the token.
  assert.is(validateBridgeOptions({ ...base(), token: "a\nb" }).target.kind, "invalid");
  const client = { projectEvents: () => ({ [Symbol.asyncIterator]: () => ({ next: () => new Promise<never>(() => {}) }) }), syncProjectState: () => new Promise<never>(() => {}) };
  assert.is(validateBridgeOptions({ ...base(), client, token: "a\nb" }).target.kind, "client");
  // A function is checked per call (in the interceptor), not here.
  assert.is(validateBridgeOptions({ ...base(), serverUrl: "http://127.0.0.1:1", token: () => "a\nb" }).target.kind, "url");
  assert.is(await validateBridgeOptions({ ...base(), serverUrl: "http://127.0.0.1:1", token: "abc-._~+/==" }).token?.(), "abc-._~+/==");
});

options("a URL without a scheme is read as http:, and the plaintext refusal says so", () => {
  const ok = validateBridgeOptions({ ...base(), serverUrl: "localhost:37777", token: "t" });
  assert.is(ok.target.kind === "url" && ok.target.address.baseUrl, "http://localhost:37777");
  const refused = validateBridgeOptions({ ...base(), serverUrl: "engram.example.com:443", token: "t" });
  assert.is(refused.target.kind === "invalid" && refused.target.error.code, "insecure_token");
  assert.match(refused.target.kind === "invalid" ? refused.target.error.message : "", "the URL has no scheme, so it is read as http:");
  const explicit = validateBridgeOptions({ ...base(), serverUrl: "http://engram.example.com", token: "t" });
  assert.not.match(explicit.target.kind === "invalid" ? explicit.target.error.message : "", "no scheme");
});

options("tlsCaFile with an http: URL warns that it means plaintext; with https: it does not", () => {
  const logger = capturingLogger();
  validateBridgeOptions({ ...base(), logger, serverUrl: "http://127.0.0.1:1", tlsCaFile: "/ca.pem" });
  assert.is(logger.at("warn").length, 1);
  assert.match(logger.at("warn")[0]?.msg ?? "", /tlsCaFile \(ENGRAM_TLS_CA\) is set but the server URL is http:, which is plaintext/);
  const quiet = capturingLogger();
  validateBridgeOptions({ ...base(), logger: quiet, serverUrl: "https://127.0.0.1:1", env: { ENGRAM_TLS_CA: "/ca.pem" } });
  validateBridgeOptions({ ...base(), logger: quiet, serverUrl: "http://127.0.0.1:1" });
  assert.is(quiet.lines.length, 0);
});

options("an unparsable URL is shown with user info removed in the error and status().server", async () => {
  const logger = capturingLogger();
  const bridge = createBridge({ registry: new HandlerRegistry(), logger, env: { ENGRAM_URL: "http://user:hunter2@exa mple.com:8080/x" } });
  bridge.start();
  const s = bridge.status();
  assert.is(s.server, "http://exa mple.com:8080/x");
  assert.is(s.lastError?.message, "server URL http://exa mple.com:8080/x cannot be parsed");
  assert.not.ok(logger.lines.some((l) => l.text.includes("hunter2") || l.text.includes("user")));
  await bridge.stop();
});

options("an injected client bypasses the URL", () => {
  const client = { projectEvents: () => ({ [Symbol.asyncIterator]: () => ({ next: () => new Promise<never>(() => {}) }) }), syncProjectState: () => new Promise<never>(() => {}) };
  assert.is(validateBridgeOptions({ ...base(), client, serverUrl: "not a url" }).target.kind, "client");
});

options("defaults: timing from DESIGN, dedup 256, clientId pid-startSeconds", () => {
  const r = validateBridgeOptions({ ...base(), env: {} });
  assert.equal(r.timing, { ...defaultBridgeTiming });
  assert.is(r.dedupCapacity, 256);
  assert.match(r.clientId, new RegExp(`^${process.pid}-\\d{10}$`));
  assert.is(r.target.kind, "none");
});

options("programming errors throw invalid_config at once", () => {
  const bad: Array<() => unknown> = [
    () => validateBridgeOptions({ ...base(), timing: { backoffMinMs: -1 } }),
    () => validateBridgeOptions({ ...base(), timing: { backoffMinMs: 10, backoffMaxMs: 5 } }),
    () => validateBridgeOptions({ ...base(), timing: { backoffJitter: 1 } }),
    () => validateBridgeOptions({ ...base(), timing: { heartbeatMs: 1000, heartbeatJitterMs: 2000 } }),
    () => validateBridgeOptions({ ...base(), timing: { stopTimeoutMs: Number.NaN } }),
    // The dispatcher and the fan-out take handlerTimeoutMs as validated here, and check nothing again.
    ...[0, -5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 31].map(
      (handlerTimeoutMs) => () => validateBridgeOptions({ ...base(), timing: { handlerTimeoutMs } }),
    ),
    () => validateBridgeOptions({ ...base(), dedupCapacity: 0 }),
    () => validateBridgeOptions({ logger: capturingLogger() } as unknown as Parameters<typeof validateBridgeOptions>[0]),
  ];
  for (const f of bad) {
    try {
      f();
      assert.unreachable("should have thrown");
    } catch (e) {
      assert.instance(e, BridgeError);
      assert.is((e as BridgeError).code, "invalid_config");
    }
  }
});

options("start() without a URL warns and stays idle; stop() still ends in stopped", async () => {
  const logger = capturingLogger();
  const bridge = createBridge({ registry: new HandlerRegistry(), logger, env: {} });
  bridge.start();
  assert.is(bridge.status().state, "idle");
  assert.ok(logger.at("warn").some((l) => /ENGRAM_URL/.test(l.msg ?? "")));
  await bridge.stop();
  assert.is(bridge.status().state, "stopped");
});

options("start() with a bad URL logs one clear error, keeps the secret out, and stays idle", async () => {
  for (const [url, code] of [
    ["ftp://user:hunter2@host", "invalid_config"],
    ["http://user:hunter2@", "invalid_config"],
    ["http://user:hunter2@[::1", "invalid_config"],
  ] as const) {
    const logger = capturingLogger();
    const bridge = createBridge({ registry: new HandlerRegistry(), logger, env: { ENGRAM_URL: url } });
    bridge.start();
    const status = bridge.status();
    assert.is(status.state, "idle", url);
    assert.is(status.lastError?.code, code, url);
    assert.is(logger.at("error").length, 1, url);
    assert.not.ok(logger.lines.some((l) => l.text.includes("hunter2")), `${url}: password in a log line`);
    assert.not.ok(JSON.stringify(status).includes("hunter2"), `${url}: password in status()`);
    await bridge.stop();
  }
});

options.run();
