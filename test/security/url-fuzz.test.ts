/**
 * Server URLs fuzzed with fast-check: `parseServerUrl` throws nothing but a
 * BridgeError "invalid_config", `redactUrl` never throws, and
 * `createBridge({ serverUrl })` + start() + stop() never throw and never put
 * the URL's user info or the token in a log line, status or error. A net
 * guard refuses every dial, so no fuzzed host is ever contacted.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { createBridge, HandlerRegistry, BridgeError } from "../../src/index.js";
import { parseServerUrl, redactUrl } from "../../src/server-url.js";
import { capturingLogger } from "../helpers/e2e.js";
import { installNetGuard, type NetGuard } from "./net-guard.js";

/** Markers that only ever appear in user info or the token, so any sighting is a leak. */
const USER = "usrMARKq7";
const PASS = "pwdMARKz3";
const TOKEN = "tokMARKx9";
const leaked = (text: string) => [USER, PASS, TOKEN].find((m) => text.includes(m));

const anyText = fc.string({ unit: "binary", maxLength: 80 });
const schemes = fc.constantFrom("http://", "https://", "HTTP://", "hTTps://", "", "//", "http:", "https:/", "ftp://", "unix://", "h2c://", "http:\\\\", " http://");
const hosts = fc.oneof(
  fc.constantFrom("localhost", "127.0.0.1", "[::1]", "::1", "[::ffff:127.0.0.1]", "engram.example", "192.0.2.1", "", "[", "]", "[::1", "a b", "%", "xn--"),
  fc.domain(),
  fc.ipV4(),
  fc.ipV6().map((h) => `[${h}]`),
  fc.string({ unit: "grapheme-ascii", maxLength: 12 }),
);
const ports = fc.option(fc.oneof(fc.integer({ min: -1, max: 70_000 }).map(String), fc.constantFrom("", "0", "65535", "65536", "99999999999999999999", "8o", " 1"), fc.string({ maxLength: 4 })), { nil: undefined });
const tails = fc.oneof(fc.constant(""), fc.webPath(), fc.string({ unit: "grapheme-ascii", maxLength: 20 }), fc.constantFrom("/?q=1#f", "?x", "#y", "/a/b/", "\\x", "/%2e%2e/"));
const userInfos = fc.constantFrom(`${USER}:${PASS}@`, `${USER}@`, `:${PASS}@`, `${USER}:${PASS}@${USER}@`, `${USER}:${PASS}:x@`, `${USER}%40:${PASS}@`);

/** Structured URLs with user info in every shape, around hosts, ports and tails of every kind. */
const urlsWithUserInfo = fc.tuple(schemes, userInfos, hosts, ports, tails).map(([s, u, h, p, t]) => `${s}${u}${h}${p === undefined ? "" : `:${p}`}${t}`);
/** Unstructured noise, and real-looking URLs. */
const noise = fc.oneof(anyText, fc.webUrl({ withQueryParameters: true, withFragments: true, authoritySettings: { withIPv4: true, withIPv6: true, withPort: true } }));

interface Ctx {
  guard: NetGuard;
}

const fuzz = suite<Ctx>("server URL fuzzing");

fuzz.before.each((ctx) => {
  ctx.guard = installNetGuard({ allowLoopback: false });
});

fuzz.after.each((ctx) => {
  ctx.guard.uninstall();
});

function checkParse(raw: string): void {
  let address;
  try {
    address = parseServerUrl(raw);
  } catch (err) {
    if (!(err instanceof BridgeError) || err.code !== "invalid_config") throw new Error(`unexpected ${String(err)} for ${JSON.stringify(raw)}`);
    if (leaked(err.message)) throw new Error(`error message leaks ${leaked(err.message)}: ${err.message}`);
    return;
  }
  const shown = JSON.stringify(address);
  if (leaked(shown)) throw new Error(`parsed address leaks ${leaked(shown)}: ${shown}`);
  if (!/^https?:\/\//.test(address.baseUrl)) throw new Error(`baseUrl ${address.baseUrl}`);
  if (!(address.port >= 1 && address.port <= 65535)) throw new Error(`port ${address.port}`);
}

function checkRedact(raw: string): void {
  const out = redactUrl(raw);
  if (typeof out !== "string") throw new Error("redactUrl returned no string");
  if (leaked(out)) throw new Error(`redactUrl(${JSON.stringify(raw)}) leaks ${leaked(out)}: ${out}`);
}

fuzz("parseServerUrl throws only BridgeError invalid_config and never keeps user info", () => {
  fc.assert(fc.property(fc.oneof(urlsWithUserInfo, noise), (raw) => checkParse(raw)), { numRuns: 3000 });
});

fuzz("redactUrl never throws and always drops user info", () => {
  fc.assert(fc.property(fc.oneof(urlsWithUserInfo, noise), (raw) => checkRedact(raw)), { numRuns: 3000 });
});

fuzz("createBridge({ serverUrl }) never throws, and no log line, status or error carries user info or the token", async (ctx) => {
  let runs = 0;
  await fc.assert(
    fc.asyncProperty(fc.oneof(urlsWithUserInfo, noise), fc.boolean(), async (raw, viaEnv) => {
      runs++;
      const logger = capturingLogger();
      const bridge = createBridge({
        registry: new HandlerRegistry(),
        logger,
        timing: { backoffMinMs: 5, backoffMaxMs: 10, stopTimeoutMs: 200 },
        ...(viaEnv ? { env: { ENGRAM_URL: raw, ENGRAM_TOKEN: TOKEN } } : { env: {}, serverUrl: raw, token: TOKEN }),
      });
      bridge.start();
      await new Promise((r) => setImmediate(r));
      const status = JSON.stringify(bridge.status());
      await bridge.stop();
      for (const line of logger.lines) {
        if (leaked(line.text)) throw new Error(`log line leaks ${leaked(line.text)} for ${JSON.stringify(raw)}: ${line.text}`);
      }
      if (leaked(status)) throw new Error(`status leaks ${leaked(status)} for ${JSON.stringify(raw)}: ${status}`);
    }),
    { numRuns: 400 },
  );
  assert.is(runs, 400);
  assert.ok(ctx.guard.attempts.every((a) => a.blocked), "every dial was refused by the guard");
  console.log(`# URL fuzzing: 3000 + 3000 parse/redact runs, ${runs} bridges; ${ctx.guard.attempts.length} dials, all refused by the guard`);
});

fuzz("known tricky spellings", () => {
  for (const raw of [
    `http:///:${PASS}@127.0.0.1`,
    `http://${USER}:${PASS}@127.0.0.1\\@evil`,
    `http:\\\\${USER}:${PASS}@127.0.0.1`,
    `${USER}:${PASS}@127.0.0.1:8080`,
    `https://${USER}:${PASS}@[::1]:443/p?q#f`,
    `http://${USER}:${PASS}@`,
    `http://[${USER}]:${PASS}@host`,
  ]) {
    checkParse(raw);
    checkRedact(raw);
  }
});

fuzz.run();
