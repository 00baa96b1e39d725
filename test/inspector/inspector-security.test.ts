import { request } from "node:http";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { WebSocket } from "ws";
import type { InspectionEvent } from "xstate";
import { createBridge, HandlerRegistry, SessionTracker, startDevServer } from "../../src/index.js";
import { BridgeError } from "../../src/errors.js";
import { startInspector, validateInspectorOptions } from "../../inspector/index.js";
import { isAllowedHostHeader, isAllowedOrigin } from "../../inspector/host-check.js";
import { createRedactor, toInspectionJson } from "../../inspector/inspection-events.js";
import { capturingLogger, eventually, fastTiming, recordingHandler } from "../helpers/e2e.js";

const TOKEN = "engram-inspector-test-token-4f9c2a7e";
const security = suite("inspector security");

/** A page's socket, as the browser opens it (same-origin Origin header). */
function openViewer(pageUrl: string, origin = new URL(pageUrl).origin): Promise<{ ws: WebSocket; messages: string[] }> {
  const messages: string[] = [];
  const ws = new WebSocket(`${pageUrl.replace(/^http/, "ws")}events`, { origin });
  ws.on("message", (data) => messages.push(String(data)));
  return new Promise((resolve, reject) => {
    ws.once("open", () => resolve({ ws, messages }));
    ws.once("error", reject);
    ws.once("unexpected-response", (_req, res) => reject(new Error(`upgrade refused: HTTP ${res.statusCode}`)));
  });
}

/** Paths at which `secret` occurs in what a serialiser can see of `value` (enumerable data, toJSON). */
function findSecret(value: unknown, secret: string, path = "$", seen = new Set<object>(), depth = 0): string[] {
  if (typeof value === "string") return value.includes(secret) ? [path] : [];
  if (value === null || typeof value !== "object" || depth > 24 || seen.has(value)) return [];
  seen.add(value);
  const toJSON = (value as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === "function") {
    const replaced: unknown = toJSON.call(value);
    if (replaced !== value) return findSecret(replaced, secret, `${path}.toJSON()`, seen, depth + 1);
  }
  const hits: string[] = [];
  if (value instanceof Error) hits.push(...findSecret(`${value.message} ${String(value.stack)}`, secret, `${path}.message`));
  for (const key of Object.keys(value)) {
    if (key.includes(secret)) hits.push(`${path}[key]`);
    hits.push(...findSecret((value as Record<string, unknown>)[key], secret, `${path}.${key}`, seen, depth + 1));
  }
  return hits;
}

function httpGet(url: string, headers: Record<string, string>, method = "GET"): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, agent: false }, (res) => {
      let body = "";
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

security("inspection events and every message a page receives never carry the token", async () => {
  const server = await startDevServer({ token: TOKEN });
  const inspector = await startInspector();
  const viewer = await openViewer(inspector.url);
  const registry = new HandlerRegistry();
  const handler = recordingHandler();
  registry.register(handler);
  const tracker = new SessionTracker();
  tracker.connect("quiet");
  const rawHits: string[] = [];
  let rawEvents = 0;
  const bridge = createBridge({
    registry,
    tracker,
    serverUrl: server.url,
    token: TOKEN,
    env: {},
    logger: capturingLogger(),
    timing: fastTiming,
    clientId: "inspector-security",
    inspect: {
      next(event: InspectionEvent) {
        rawEvents++;
        rawHits.push(...findSecret(event, TOKEN).map((p) => `${event.type} ${p}`));
        inspector.inspect.next?.(event);
      },
    },
  });
  try {
    server.createProject("quiet");
    server.removeProject("quiet");
    bridge.start();
    await server.waitForStreams(1);
    server.createProject("p1");
    server.removeProject("p1", "deleted by owner");
    await eventually("both removals dispatched", () => handler.ids().includes("p1") && handler.ids().includes("quiet"));
    // A wrong token on the server: every call now fails UNAUTHENTICATED.
    server.setToken("some-other-token");
    server.dropStreams();
    await eventually("unauthenticated", () => bridge.status().lastError?.code === "unauthenticated");
    bridge.syncNow();
    await eventually("a failed heartbeat", () => bridge.status().counters.syncFailures >= 1);
    server.setToken(TOKEN);
    await eventually("streaming again", () => bridge.status().state === "streaming");
    await bridge.stop();
    await eventually("the page saw STOP", () => viewer.messages.some((m) => m.includes('"type":"STOP"')));
  } finally {
    await bridge.stop();
    viewer.ws.close();
    await inspector.close();
    await server.close();
  }

  assert.equal(rawHits, [], "an XState inspection event reaches the token");
  assert.equal(findSecret({ a: [{ b: new Error(`x ${TOKEN}`) }] }, TOKEN), ["$.a.0.b.message"], "the scanner finds what it looks for");
  // The token, or a recognisable piece of it (a truncated copy leaks too).
  const pageHits = viewer.messages.filter((m) => m.includes(TOKEN.slice(0, 16)) || m.includes(TOKEN.slice(-16)));
  assert.equal(pageHits, [], "a message sent to the page carries the token");
  // The scan covered the paths that could leak: context, errors, emitted events.
  const parsed = viewer.messages.map(
    (m) => JSON.parse(m) as { type: string; event?: { type?: string }; action?: { params?: { event?: { type?: string } } } },
  );
  const types = new Set(parsed.map((m) => m.type));
  for (const t of ["@xstate.actor", "@xstate.event", "@xstate.snapshot", "@xstate.action"]) assert.ok(types.has(t), `saw ${t}`);
  assert.ok(
    viewer.messages.some((m) => m.includes('"code":"unauthenticated"')),
    "error events were relayed",
  );
  assert.ok(
    parsed.some((m) => m.action?.params?.event?.type === "projectRemoved"),
    "emitted removals were relayed",
  );
  assert.ok(
    parsed.some((m) => m.event?.type === "xstate.done.actor.syncProjectState"),
    "heartbeats were relayed",
  );
  assert.ok(server.stats().tokensSeen.projectEvents.includes(TOKEN), "the bridge did send the token to the server");
  console.log(`# token scan: ${rawEvents} XState inspection events, ${viewer.messages.length} page messages, 0 hits`);
});

security("errors are reduced to name, code and message; secrets listed in redact never leave", () => {
  const redact = createRedactor(["s3cret"]);
  const cause = new Error("authorization: Bearer s3cret");
  const error = new BridgeError("call failed", "unauthenticated", { cause });
  const out = toInspectionJson({ type: "xstate.error.actor.x", error, note: "token=s3cret", s3cret: 1, n: 1n, f: () => 1 }, redact);
  assert.equal(out, {
    type: "xstate.error.actor.x",
    error: { name: "BridgeError", code: "unauthenticated", message: "call failed" },
    note: "token=[redacted]",
    "[redacted]": 1,
    n: "1",
  });
  const cyclic: Record<string, unknown> = { a: 1 };
  cyclic.self = cyclic;
  assert.equal(
    toInspectionJson(cyclic, (s) => s),
    { a: 1, self: "[circular]" },
  );
});

security("the inspector binds to loopback and refuses other addresses unless told", () => {
  for (const host of ["0.0.0.0", "::", "192.168.1.10", "example.com"]) {
    try {
      validateInspectorOptions({ host });
      assert.unreachable(`${host} was accepted`);
    } catch (err) {
      assert.instance(err, BridgeError);
      assert.is((err as BridgeError).code, "invalid_config");
    }
  }
  assert.is(validateInspectorOptions().host, "127.0.0.1");
  assert.is(validateInspectorOptions({ host: "::1" }).host, "::1");
  const open = validateInspectorOptions({ host: "0.0.0.0", allowNonLoopback: true, allowedHosts: ["devbox.lan"] });
  assert.ok(open.allowedHostNames.has("devbox.lan") && open.allowedHostNames.has("0.0.0.0"));
});

security("Host and Origin checks accept this server's names and port only", () => {
  const names = validateInspectorOptions().allowedHostNames;
  assert.ok(isAllowedHostHeader("127.0.0.1:4000", names, 4000));
  assert.ok(isAllowedHostHeader("localhost:4000", names, 4000));
  assert.ok(isAllowedHostHeader("[::1]:4000", names, 4000));
  assert.ok(isAllowedHostHeader("LOCALHOST:4000", names, 4000));
  for (const bad of [
    undefined,
    "",
    "evil.example:4000",
    "127.0.0.1:4001",
    "127.0.0.1",
    "localhost.evil.example:4000",
    "127.0.0.1:4000:1",
    "[::1]x:4000",
    "127.0.0.1 :4000",
  ]) {
    assert.not.ok(isAllowedHostHeader(bad, names, 4000), `Host ${JSON.stringify(bad)}`);
  }
  assert.ok(isAllowedOrigin(undefined, names, 4000));
  assert.ok(isAllowedOrigin("http://127.0.0.1:4000", names, 4000));
  for (const bad of ["null", "http://evil.example:4000", "https://127.0.0.1:4000", "http://127.0.0.1:4001", "file://"]) {
    assert.not.ok(isAllowedOrigin(bad, names, 4000), `Origin ${bad}`);
  }
});

security("the server refuses a rebound Host and a foreign Origin", async () => {
  const inspector = await startInspector({ allowedHosts: ["devbox.lan"] });
  try {
    const base = inspector.url;
    const port = inspector.port;
    assert.is((await httpGet(base, { host: `127.0.0.1:${port}` })).status, 200);
    assert.is((await httpGet(base, { host: `localhost:${port}` })).status, 200);
    assert.is((await httpGet(base, { host: `devbox.lan:${port}` })).status, 200, "a configured host name is accepted");
    const rebound = await httpGet(base, { host: `attacker.example:${port}` });
    assert.is(rebound.status, 403);
    assert.match(rebound.body, /not allowed/);
    assert.is((await httpGet(`${base}statechart.svg`, { host: `attacker.example:${port}` })).status, 403);

    (await openViewer(base)).ws.close();
    try {
      await openViewer(base, "http://attacker.example");
      assert.unreachable("a cross-site page opened the event socket");
    } catch (err) {
      assert.match(String(err), /403/);
    }
    assert.ok(inspector.stats().refused >= 3);
    assert.is((await httpGet(`${base}statechart.svg`, { host: `127.0.0.1:${port}` })).status, 200);
  } finally {
    await inspector.close();
  }
});

/** The status of a WebSocket upgrade to `url` (101 when it opened). */
function upgradeStatus(url: string, origin?: string): Promise<number> {
  const ws = new WebSocket(url, origin === undefined ? {} : { origin });
  return new Promise<number>((resolve) => {
    ws.once("unexpected-response", (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.once("open", () => {
      resolve(101);
      ws.terminate();
    });
    ws.once("error", () => resolve(-1));
  });
}

security("without the random key in the path every request and upgrade gets the same bare 404", async () => {
  const inspector = await startInspector();
  try {
    const { port } = inspector;
    const key = new URL(inspector.url).pathname.split("/")[1]!;
    assert.match(key, /^[A-Za-z0-9_-]{24}$/, "a random key of 18 bytes");
    const other = await startInspector();
    const otherKey = new URL(other.url).pathname.split("/")[1]!;
    await other.close();
    assert.is.not(otherKey, key, "each inspector has its own key");
    const origin = `http://127.0.0.1:${port}`;
    const wrongKey = `${key.slice(0, -1)}${key.endsWith("A") ? "B" : "A"}`;
    const bodies = new Set<string>();
    for (const path of [
      "/",
      "/index.html",
      "/inspector.js",
      "/statechart.svg",
      "/stately",
      "/events",
      "/favicon.ico",
      `/${wrongKey}/`,
      `/${wrongKey}/statechart.svg`,
      `/${key.slice(0, 8)}/`,
      `/x/${key}/`,
      `/${key}x/`,
    ]) {
      const res = await httpGet(`${origin}${path}`, { host: `127.0.0.1:${port}` });
      assert.is(res.status, 404, `GET ${path}`);
      bodies.add(res.body);
      assert.is(
        await upgradeStatus(`ws://127.0.0.1:${port}${path.endsWith("/") ? `${path}events` : `${path}/events`}`, origin),
        404,
        `upgrade under ${path}`,
      );
    }
    assert.equal([...bodies], ["not found\n"], "nothing tells a wrong key from a wrong path");
    assert.is(await upgradeStatus(`ws://127.0.0.1:${port}/events`, origin), 404, "the old unkeyed event socket is gone");
    // With the key: the page, its socket, and /<key> redirected to /<key>/.
    assert.is((await httpGet(inspector.url, { host: `127.0.0.1:${port}` })).status, 200);
    assert.is((await httpGet(`${origin}/${key}/stately`, { host: `127.0.0.1:${port}` })).status, 200);
    assert.is((await httpGet(`${origin}/${key}`, { host: `127.0.0.1:${port}` })).status, 308);
    assert.is(await upgradeStatus(`${inspector.url.replace(/^http/, "ws")}events`, origin), 101);
  } finally {
    await inspector.close();
  }
});

security("at most maxViewers pages at once: one more gets 503 until one leaves", async () => {
  const inspector = await startInspector({ maxViewers: 3 });
  const viewers: WebSocket[] = [];
  try {
    for (let i = 0; i < 3; i++) viewers.push((await openViewer(inspector.url)).ws);
    const eventsUrl = `${inspector.url.replace(/^http/, "ws")}events`;
    const origin = new URL(inspector.url).origin;
    assert.is(await upgradeStatus(eventsUrl, origin), 503);
    assert.is(await upgradeStatus(eventsUrl, origin), 503);
    assert.is(inspector.stats().viewersRefused, 2);
    assert.is(inspector.stats().viewers, 3);
    viewers.shift()!.close();
    await eventually("a viewer left", () => inspector.stats().viewers === 2);
    viewers.push((await openViewer(inspector.url)).ws);
    assert.is(inspector.stats().viewers, 3);
    assert.is(validateInspectorOptions().maxViewers, 8, "the default cap");
  } finally {
    for (const ws of viewers) ws.terminate();
    await inspector.close();
  }
});

security.run();
