import { suite } from "uvu";
import * as assert from "uvu/assert";
import { BridgeError } from "../../src/errors.js";
import { isLoopbackHost, parseServerUrl, redactUrl } from "../../src/server-url.js";

const serverUrl = suite("server-url");

const password = "s3cretPassw0rd";

function parseError(raw: string): BridgeError {
  try {
    parseServerUrl(raw);
  } catch (err) {
    assert.instance(err, BridgeError);
    return err as BridgeError;
  }
  throw new Error(`expected parseServerUrl to throw for a test input`);
}

serverUrl("http without a port defaults to 37777", () => {
  const a = parseServerUrl("http://engram.example");
  assert.is(a.port, 37777);
  assert.is(a.baseUrl, "http://engram.example:37777");
  assert.is(a.secure, false);
  assert.is(a.host, "engram.example");
  assert.is(a.loopback, false);
});

serverUrl("https without a port defaults to 443 and is secure", () => {
  const a = parseServerUrl("https://engram.example/");
  assert.is(a.port, 443);
  assert.is(a.baseUrl, "https://engram.example:443");
  assert.is(a.secure, true);
});

serverUrl("an explicit port is kept, even the scheme's usual one", () => {
  assert.is(parseServerUrl("http://engram.example:80").port, 80);
  assert.is(parseServerUrl("https://engram.example:8443").baseUrl, "https://engram.example:8443");
});

serverUrl("a value without a scheme is read as http", () => {
  const a = parseServerUrl("localhost:8080");
  assert.is(a.baseUrl, "http://localhost:8080");
  assert.is(a.loopback, true);
  assert.is(parseServerUrl("engram.internal").baseUrl, "http://engram.internal:37777");
  assert.is(parseServerUrl("[::1]:9000").baseUrl, "http://[::1]:9000");
});

serverUrl("IPv6 hosts keep brackets in baseUrl and lose them in host", () => {
  const a = parseServerUrl("http://[::1]:37777");
  assert.is(a.host, "::1");
  assert.is(a.baseUrl, "http://[::1]:37777");
  assert.is(a.loopback, true);
  const b = parseServerUrl("https://[2001:DB8::1]");
  assert.is(b.host, "2001:db8::1");
  assert.is(b.baseUrl, "https://[2001:db8::1]:443");
  assert.is(b.loopback, false);
});

serverUrl("scheme and host are lower-cased and a trailing slash is dropped", () => {
  const a = parseServerUrl("  HTTPS://Engram.Example:9443/api/v1/  ");
  assert.is(a.baseUrl, "https://engram.example:9443/api/v1");
  assert.is(a.host, "engram.example");
});

serverUrl("user info is dropped from every field", () => {
  const a = parseServerUrl(`https://alice:${password}@engram.example:8443/x?debug=1`);
  assert.is(a.baseUrl, "https://engram.example:8443/x");
  assert.is(a.redacted, "https://engram.example:8443/x?debug=1");
  assert.not.match(JSON.stringify(a), password);
  assert.not.match(JSON.stringify(a), "alice");
});

serverUrl("an unsupported scheme is refused by name", () => {
  const e = parseError("ftp://engram.example");
  assert.is(e.code, "invalid_config");
  assert.match(e.message, '"ftp:"');
  assert.match(parseError("grpc:engram.example").message, '"grpc:"');
  assert.match(parseError("unix:/var/run/engram.sock").message, '"unix:"');
});

serverUrl("a URL without a host is refused", () => {
  const e = parseError("http://:8080");
  assert.is(e.code, "invalid_config");
  assert.match(e.message, "no host");
  assert.match(parseError(`http://bob:${password}@/path`).message, "no host");
});

serverUrl("a port outside 1-65535 is refused", () => {
  assert.match(parseError("http://engram.example:0").message, "out of range");
  assert.match(parseError("http://engram.example:65536").message, "out of range");
  assert.is(parseServerUrl("http://engram.example:65535").port, 65535);
  assert.match(parseError("http://engram.example:80x").message, "not a number");
});

serverUrl("an unparsable URL is shown without its user info, never as <invalid-url>", () => {
  for (const [raw, shown] of [
    [`http://bob:${password}@exa mple.com`, "http://exa mple.com"],
    [`http://bob:${password}@[::1`, "http://[::1"],
    [`bob:${password}@exa mple.com:80`, "exa mple.com:80"],
    ["http://[::1:x", "http://[::1:x"],
    ["http://a::1", "http://a::1"],
  ] as const) {
    const e = parseError(raw);
    assert.is(e.code, "invalid_config");
    assert.is(e.message, `[invalid_config] server URL ${shown} cannot be parsed`, raw);
    assert.not.match(e.message, password);
    assert.not.match(e.message, "bob");
  }
});

serverUrl("an empty value is refused as empty", () => {
  assert.match(parseError("   ").message, "empty");
});

serverUrl("no thrown message ever contains the password", () => {
  const inputs = [
    `ftp://bob:${password}@engram.example`,
    `http://bob:${password}@:1`,
    `http://bob:${password}@engram.example:99999`,
    `http://bob:${password}@engram.example:port`,
    `http://bob:${password}@exa mple.com`,
    `bob:${password}@exa mple.com`,
    `http://bob:${password}@[::1`,
  ];
  for (const raw of inputs) {
    const e = parseError(raw);
    assert.not.match(e.message, password);
    assert.not.match(e.message, "bob");
  }
});

serverUrl("redactUrl drops user info and keeps the rest as written", () => {
  assert.is(redactUrl(`https://alice:${password}@engram.example:8443/p?q=1#f`), "https://engram.example:8443/p?q=1#f");
  assert.is(redactUrl(`alice:${password}@localhost:8080`), "localhost:8080");
  assert.is(redactUrl("http://engram.example"), "http://engram.example");
  assert.is(redactUrl(`ftp://alice:${password}@files.example/x`), "ftp://files.example/x");
});

serverUrl("redactUrl shows what it cannot parse with user info removed, and never throws", () => {
  assert.is(redactUrl(`http://alice:${password}@exa mple.com`), "http://exa mple.com");
  assert.is(redactUrl(`http://alice:${password}@engram.example:99999`), "http://engram.example:99999");
  // The parser would read "/:pass" as user info after the extra slash; cut it all.
  assert.is(redactUrl(`http:///:${password}@engram.example`), "http:///engram.example");
  // A password with a raw "/" or "@" in it still goes entirely.
  assert.is(redactUrl(`http://alice:pa/ss@w@rd${password}@exa mple.com`), "http://exa mple.com");
  // Look-alikes of "@" count as one when nothing parses.
  assert.is(redactUrl(`http://alice:${password}\uFF20exa mple.com`), "http://exa mple.com");
  assert.is(redactUrl(`http://alice%3A${password}%40exa mple.com`), "http://exa mple.com");
  // Without slashes, a "scheme" may be a user name: dropped unless it is http(s).
  assert.is(redactUrl(`alice:${password}@exa mple.com`), "exa mple.com");
  assert.is(redactUrl(`http:alice:${password}@exa mple.com`), "http:exa mple.com");
  assert.is(redactUrl(""), "<invalid-url>");
  assert.is(redactUrl(undefined as unknown as string), "<invalid-url>");
});

serverUrl("redactUrl neutralises control characters and bounds the length", () => {
  assert.is(redactUrl('http://exa mple.com/\n{"level":"error"}'), 'http://exa mple.com/?{"level":"error"}');
  assert.is(redactUrl("http://host\u202e/x"), "http://host?/x");
  const long = redactUrl(`http://exa mple.com/${"a".repeat(1000)}`);
  assert.is(long.length, 257);
  assert.ok(long.endsWith("…"));
});

serverUrl("a value without a scheme is read as http: and flagged", () => {
  const a = parseServerUrl("localhost:37777");
  assert.is(a.baseUrl, "http://localhost:37777");
  assert.is(a.implicitScheme, true);
  assert.is(parseServerUrl("engram.example.com").baseUrl, "http://engram.example.com:37777");
  assert.is(parseServerUrl("http://engram.example.com").implicitScheme, false);
  assert.is(parseServerUrl("https://engram.example.com").implicitScheme, false);
});

serverUrl("redactUrl output never contains the password", () => {
  const inputs = [
    `http://bob:${password}@engram.example`,
    `https://bob:${password}@[::1]:443/a`,
    `bob:${password}@engram.example`,
    `http://bob:${password}@exa mple.com`,
    `mailto:bob:${password}@engram.example`,
  ];
  for (const raw of inputs) assert.not.match(redactUrl(raw), password);
});

serverUrl("isLoopbackHost knows exactly localhost and IP loopback literals", () => {
  for (const host of [
    "localhost",
    "LOCALHOST",
    "LocalHost",
    "127.0.0.1",
    "127.255.0.9",
    "::1",
    "[::1]",
    "0:0:0:0:0:0:0:1",
    "::ffff:127.0.0.1",
    "[::ffff:7f00:1]",
    "::1%lo",
  ]) {
    assert.ok(isLoopbackHost(host), host);
  }
});

serverUrl("isLoopbackHost refuses names a resolver decides, and everything else", () => {
  for (const host of [
    "localhost.",
    "api.localhost",
    "foo.localhost.",
    "localhost.example.com",
    "127.0.0.1.nip.io",
    "ｌｏｃａｌｈｏｓｔ",
    "%6cocalhost",
    "local%68ost",
    "localhost%00",
    "lo\u00adcalhost",
    "localhost\u200b",
    "0x7f000001",
    "2130706433",
    "0177.0.0.1",
    "127.1",
    "127.0.0.1.",
    "xn--localhost",
    " localhost",
    "127.0.0.1 ",
    " [::1]",
    "example.com",
    "128.0.0.1",
    "10.0.0.1",
    "0.0.0.0",
    "::",
    "::2",
    "::ffff:10.0.0.1",
    "::7f00:1",
    "fe80::1",
    "",
    "127.0.0.256",
  ]) {
    assert.not.ok(isLoopbackHost(host), host);
  }
});

serverUrl.run();
