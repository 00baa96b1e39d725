/**
 * Server URLs fuzzed with fast-check: `parseServerUrl` throws nothing but a
 * BridgeError "invalid_config", `redactUrl` never throws, and
 * `createBridge({ serverUrl })` + start() + stop() never throw and never put
 * the URL's user info or the token in any output channel (log lines,
 * status(), the actor snapshot, inspection events). An unparsable URL is
 * shown without its user info, never as `<invalid-url>`; loopback is only
 * ever an IP loopback literal or exactly `localhost`. A net guard refuses
 * every dial, so no fuzzed host is ever contacted.
 * Seeded: PROPERTY_SEED=<n> replays a run.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { isIP } from "node:net";
import { BridgeError } from "../../src/index.js";
import { isLoopbackHost, parseServerUrl, redactUrl, type ServerAddress } from "../../src/server-url.js";
import { findLeaks, watchedBridge } from "./leak-scan.js";
import { installNetGuard, type NetGuard } from "./net-guard.js";

const seed = Number(process.env.PROPERTY_SEED ?? 20_261_130);

/** Markers that only ever appear in user info or the token, so any sighting is a leak. */
const USER = "usrMARKq7";
const PASS = "pwdMARKz3";
const TOKEN = "tokMARKx9";
const leaked = (text: string) => [USER, PASS, TOKEN].find((m) => text.includes(m));

const anyText = fc.string({ unit: "binary", maxLength: 80 });
const schemes = fc.constantFrom(
  "http://",
  "https://",
  "HTTP://",
  "hTTps://",
  "",
  "//",
  "http:",
  "https:/",
  "ftp://",
  "unix://",
  "h2c://",
  "http:\\\\",
  " http://",
);
/** Names that look like loopback and are not, or are only after the URL parser. */
const lookAlikeHosts = fc.constantFrom(
  "localhost.",
  "foo.localhost",
  "ｌｏｃａｌｈｏｓｔ",
  "%6cocalhost",
  "LOCALHOST%2E",
  "127.0.0.1.nip.io",
  "localhost.evil.com",
  "0x7f000001",
  "2130706433",
  "0177.1",
  "127.1",
  "[::ffff:127.0.0.1]",
  "[::127.0.0.1]",
  "[0::1]",
  "[::1%25lo]",
  "lo\u00adcalhost",
  "localhost\u3002",
  "locaｌhost",
  "xn--lcalhost-9za",
  "localhost:",
  "[::ffff:7f00:1]",
  "0.0.0.0",
  "127.0.0.256",
);
const hosts = fc.oneof(
  fc.constantFrom(
    "localhost",
    "127.0.0.1",
    "[::1]",
    "::1",
    "[::ffff:127.0.0.1]",
    "engram.example",
    "192.0.2.1",
    "",
    "[",
    "]",
    "[::1",
    "a b",
    "%",
    "xn--",
  ),
  lookAlikeHosts,
  fc.domain(),
  fc.ipV4(),
  fc.ipV6().map((h) => `[${h}]`),
  fc.string({ unit: "grapheme-ascii", maxLength: 12 }),
);
const ports = fc.option(
  fc.oneof(
    fc.integer({ min: -1, max: 70_000 }).map(String),
    fc.constantFrom("", "0", "65535", "65536", "99999999999999999999", "8o", " 1"),
    fc.string({ maxLength: 4 }),
  ),
  { nil: undefined },
);
const tails = fc.oneof(
  fc.constant(""),
  fc.webPath(),
  fc.string({ unit: "grapheme-ascii", maxLength: 20 }),
  fc.constantFrom("/?q=1#f", "?x", "#y", "/a/b/", "\\x", "/%2e%2e/"),
);
const userInfos = fc.constantFrom(
  `${USER}:${PASS}@`,
  `${USER}@`,
  `:${PASS}@`,
  `${USER}:${PASS}@${USER}@`,
  `${USER}:${PASS}:x@`,
  `${USER}%40:${PASS}@`,
);

/** Structured URLs with user info in every shape, around hosts, ports and tails of every kind. */
const urlsWithUserInfo = fc
  .tuple(schemes, userInfos, hosts, ports, tails)
  .map(([s, u, h, p, t]) => `${s}${u}${h}${p === undefined ? "" : `:${p}`}${t}`);
/** Unstructured noise, and real-looking URLs. */
const noise = fc.oneof(
  anyText,
  fc.webUrl({ withQueryParameters: true, withFragments: true, authoritySettings: { withIPv4: true, withIPv6: true, withPort: true } }),
);

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
  let address: ServerAddress;
  try {
    address = parseServerUrl(raw);
  } catch (err) {
    if (!(err instanceof BridgeError) || err.code !== "invalid_config")
      throw new Error(`unexpected ${String(err)} for ${JSON.stringify(raw)}`);
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
  fc.assert(
    fc.property(fc.oneof(urlsWithUserInfo, noise), (raw) => checkParse(raw)),
    { seed, numRuns: 3000 },
  );
});

fuzz("redactUrl never throws and always drops user info", () => {
  fc.assert(
    fc.property(fc.oneof(urlsWithUserInfo, noise), (raw) => checkRedact(raw)),
    { seed, numRuns: 3000 },
  );
});

fuzz("createBridge({ serverUrl }) never throws, and no output channel carries user info or the token", async (ctx) => {
  let runs = 0;
  await fc.assert(
    fc.asyncProperty(fc.oneof(urlsWithUserInfo, noise), fc.boolean(), async (raw, viaEnv) => {
      runs++;
      const w = watchedBridge({
        timing: { backoffMinMs: 5, backoffMaxMs: 10, stopTimeoutMs: 200 },
        ...(viaEnv ? { env: { ENGRAM_URL: raw, ENGRAM_TOKEN: TOKEN } } : { env: {}, serverUrl: raw, token: TOKEN }),
      });
      w.bridge.start();
      await new Promise((r) => setImmediate(r));
      await w.bridge.stop();
      const leaks = findLeaks(w, [USER, PASS, TOKEN]);
      if (leaks.length > 0) throw new Error(`leaks for ${JSON.stringify(raw)}:\n${leaks.join("\n")}`);
      // What status() shows as the server is what redactUrl shows, never the placeholder for a value that has text.
      const server = w.bridge.status().server;
      if (raw.trim() !== "" && server === "<invalid-url>" && redactUrl(raw) !== "<invalid-url>")
        throw new Error(`status().server ${server} for ${JSON.stringify(raw)}`);
    }),
    { seed, numRuns: 400 },
  );
  assert.is(runs, 400);
  assert.ok(
    ctx.guard.attempts.every((a) => a.blocked),
    "every dial was refused by the guard",
  );
  console.log(
    `# URL fuzzing: 3000 + 3000 parse/redact runs, ${runs} bridges; ${ctx.guard.attempts.length} dials, all refused by the guard`,
  );
});

fuzz("an unparsable URL is shown (user info removed), never as <invalid-url> unless it holds nothing to show", () => {
  fc.assert(
    fc.property(fc.oneof(urlsWithUserInfo, noise), (raw) => {
      const shown = redactUrl(raw);
      if (shown.length > 257) throw new Error(`too long: ${shown.length}`);
      if (/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/.test(shown))
        throw new Error(`control character in ${JSON.stringify(shown)}`);
      if (shown !== "<invalid-url>") return;
      // Only an empty value, or one that is nothing but user info, has nothing to show.
      const rest = raw
        .trim()
        .replace(/^[a-z][a-z0-9+.-]*:[/\\]*/i, "")
        .replace(/^.*[@\uFF20\uFE6B]|^.*%40/is, "");
      if (rest.trim() !== "") throw new Error(`${JSON.stringify(raw)} shown as <invalid-url>`);
    }),
    { seed, numRuns: 3000 },
  );
});

fuzz("loopback is only ever an IP loopback literal or exactly localhost, after the URL parser", () => {
  const checked = { loopback: 0, other: 0 };
  fc.assert(
    fc.property(
      fc.oneof(
        lookAlikeHosts,
        hosts,
        fc.domain().map((d) => `${d}.localhost`),
        fc.constantFrom("localhost", "LOCALHOST", "LocalHost"),
      ),
      (host) => {
        let address: ServerAddress;
        try {
          address = parseServerUrl(`http://${host}:1`);
        } catch {
          return;
        }
        if (!address.loopback) {
          checked.other++;
          return;
        }
        checked.loopback++;
        const literal = isIP(address.host) !== 0;
        if (!(literal ? isLoopbackHost(address.host) : address.host === "localhost")) {
          throw new Error(`${JSON.stringify(host)} counted as loopback as ${address.host}`);
        }
        if (!address.baseUrl.startsWith(`http://${literal && address.host.includes(":") ? `[${address.host}]` : address.host}:`)) {
          throw new Error(`the dial (${address.baseUrl}) is not the host that was checked (${address.host})`);
        }
      },
    ),
    { seed, numRuns: 3000 },
  );
  assert.ok(checked.loopback > 100 && checked.other > 100, JSON.stringify(checked));
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
