/**
 * The inspector's HTTP and WebSocket server (node:http + ws), on loopback.
 *
 * Everything lives under a random key in the path, `/<key>/`, printed as
 * the page URL: a request without the key gets a bare 404, whatever it asks
 * for, so another local process learns nothing, not even that the path
 * exists.
 *
 * - `GET /<key>/` is the offline inspector page (page/index.html and its
 *   assets); `GET /<key>/statechart.svg` the machine's diagram (the committed
 *   layout for the bridge machine; elkjs, loaded on demand, for others).
 * - `GET /<key>/stately` embeds the hosted Stately inspector and relays the
 *   same messages to it from the browser.
 * - `WS /<key>/events` sends every published message to each page (at most
 *   `maxViewers` at a time), after the recent history.
 *
 * Every request must carry an allowed Host header (DNS rebinding) and every
 * WebSocket upgrade an absent or same-origin Origin header. Messages are
 * published in process (`publish()`), so there is no producer socket to lose.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { readFile } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { WebSocket, WebSocketServer } from "ws";
import { BridgeError } from "../src/errors.js";
import { createHardenedHttpServer } from "../src/listener/http-limits.js";
import { isAllowedHostHeader, isAllowedOrigin } from "./host-check.js";
import type { InspectorMessage } from "./inspection-events.js";
import type { ResolvedInspectorOptions } from "./inspector-options.js";
import { statechartSvg } from "./statechart-diagram.js";
import { statechartStyle } from "./statechart-svg.js";

/** A page that falls this far behind is disconnected rather than buffered without end. */
const maxViewerBufferBytes = 4 * 1024 * 1024;
/** Root actors whose registration and latest snapshot are kept beyond the history. */
const maxPinnedRoots = 8;
/** WebSocket readyState values (the ws constants, without loading ws for them). */
const wsOpen = 1;
const wsClosed = 3;

export interface InspectorServerStats {
  /** Pages connected now. */
  viewers: number;
  /** Messages relayed so far. */
  relayed: number;
  /** Messages kept for pages that connect later, and their size in bytes. */
  history: { messages: number; bytes: number };
  /** HTTP requests and upgrades refused for their Host or Origin header or a missing key. */
  refused: number;
  /** Pages refused because `maxViewers` were connected (HTTP 503). */
  viewersRefused: number;
  /** Pages disconnected because they fell too far behind. */
  viewersDropped: number;
}

export interface InspectorServer {
  /** The offline page, with its key, e.g. "http://127.0.0.1:40123/3fa9…/". */
  readonly url: string;
  /** The page that embeds the hosted Stately inspector. */
  readonly statelyUrl: string;
  readonly host: string;
  readonly port: number;
  /** Sends `message` to every page and keeps it in the history. */
  publish(message: InspectorMessage): void;
  stats(): InspectorServerStats;
  /** Closes every socket and the listener. Idempotent. */
  close(): Promise<void>;
}

/** One relayed message, as sent; entries are compared by identity. */
interface Entry {
  text: string;
  bytes: number;
}

interface PinnedRoot {
  actor: Entry;
  snapshot?: Entry;
}

const pageDir = new URL("./page/", import.meta.url);
const assets = {
  "": { file: "index.html", type: "text/html; charset=utf-8" },
  "index.html": { file: "index.html", type: "text/html; charset=utf-8" },
  "inspector.js": { file: "inspector.js", type: "text/javascript; charset=utf-8" },
  "inspector.css": { file: "inspector.css", type: "text/css; charset=utf-8" },
  "stately.js": { file: "stately.js", type: "text/javascript; charset=utf-8" },
} as const satisfies Record<string, { file: string; type: string }>;

/** Loads ws, which the inspector needs and nothing else does: an optional peer dependency. */
async function loadWs(): Promise<typeof import("ws")> {
  try {
    return await import("ws");
  } catch (err) {
    throw new BridgeError(
      "inspector: the inspector needs the ws package, which is not installed (it is an optional peer dependency): npm install ws",
      "unavailable",
      { cause: err },
    );
  }
}

/** Starts the inspector server; see the module comment. */
export async function startInspectorServer(options: ResolvedInspectorOptions): Promise<InspectorServer> {
  const ws = await loadWs();
  const files = new Map<string, Buffer>();
  for (const { file } of Object.values(assets)) {
    if (!files.has(file)) files.set(file, await readFile(new URL(file, pageDir)));
  }
  const statelyTemplate = await readFile(new URL("stately.html", pageDir), "utf8");
  const key = randomBytes(18).toString("base64url");
  const history: Entry[] = [];
  let historyBytes = 0;
  const pinned = new Map<string, PinnedRoot>();
  const viewers = new Set<WebSocket>();
  const stats = { relayed: 0, refused: 0, viewersRefused: 0, viewersDropped: 0 };
  let svg: Promise<string> | undefined;
  let port = 0;

  const diagram = (): Promise<string> => {
    svg ??= statechartSvg(options.machine);
    svg.catch(() => (svg = undefined));
    return svg;
  };

  const hostOk = (req: IncomingMessage) => isAllowedHostHeader(req.headers.host, options.allowedHostNames, port);

  /** The path below `/<key>/`, or undefined when the request does not carry the key. */
  const keyedPath = (req: IncomingMessage): string | undefined => {
    const path = new URL(req.url ?? "/", "http://inspector.invalid").pathname;
    const slash = path.indexOf("/", 1);
    const given = slash < 0 ? path.slice(1) : path.slice(1, slash);
    if (!keyMatches(given, key)) return undefined;
    return slash < 0 ? "/" : path.slice(slash + 1);
  };

  // The shared listener limits (src/listener/): headers within a second,
  // idle and slow connections shed for new ones; a viewer's WebSocket is kept.
  const hardened = createHardenedHttpServer((req, res) => {
    if (!hostOk(req)) {
      stats.refused++;
      send(
        res,
        403,
        "text/plain; charset=utf-8",
        "Forbidden: this host name is not allowed (the inspector answers on 127.0.0.1 and localhost)\n",
      );
      return;
    }
    void handle(req, res).catch(() => {
      if (!res.headersSent) send(res, 500, "text/plain; charset=utf-8", "internal error\n");
      else res.destroy();
    });
  });
  const { server } = hardened;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = keyedPath(req);
    if (path === undefined) {
      stats.refused++;
      send(res, 404, "text/plain; charset=utf-8", "not found\n");
      return;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.setHeader("allow", "GET, HEAD");
      send(res, 405, "text/plain; charset=utf-8", "method not allowed\n");
      return;
    }
    if (path === "/") {
      // "/<key>" without its slash: the page's relative links need it.
      res.setHeader("location", `/${key}/`);
      send(res, 308, "text/plain; charset=utf-8", "");
      return;
    }
    const asset = (assets as Record<string, { file: string; type: string }>)[path];
    if (asset) {
      send(res, 200, asset.type, files.get(asset.file) ?? "", pageCsp(req));
      return;
    }
    switch (path) {
      case "statechart.svg": {
        let text: string;
        try {
          text = await diagram();
        } catch (err) {
          send(
            res,
            503,
            "text/plain; charset=utf-8",
            `${err instanceof BridgeError ? err.rawMessage : "the diagram could not be drawn"}\n`,
          );
          return;
        }
        send(res, 200, "image/svg+xml; charset=utf-8", text, "default-src 'none'; style-src 'unsafe-inline'");
        return;
      }
      case "stately":
        send(res, 200, "text/html; charset=utf-8", statelyPage(statelyTemplate, options.statelyUrl), statelyCsp(req, options.statelyUrl));
        return;
      default:
        send(res, 404, "text/plain; charset=utf-8", "not found\n");
    }
  }

  const wss: WebSocketServer = new ws.WebSocketServer({ noServer: true, maxPayload: 4096, perMessageDeflate: false });

  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on("error", () => socket.destroy());
    if (!hostOk(req) || !isAllowedOrigin(header(req, "origin"), options.allowedHostNames, port)) {
      stats.refused++;
      refuse(socket, 403, "Forbidden");
      return;
    }
    const path = keyedPath(req);
    if (path !== "events") {
      if (path === undefined) stats.refused++;
      refuse(socket, 404, "Not Found");
      return;
    }
    if (viewers.size >= options.maxViewers) {
      stats.viewersRefused++;
      refuse(socket, 503, "Service Unavailable");
      return;
    }
    hardened.keep(socket as Socket);
    wss.handleUpgrade(req, socket, head, (socketWs) => addViewer(socketWs));
  });

  function addViewer(viewer: WebSocket): void {
    viewers.add(viewer);
    viewer.on("close", () => viewers.delete(viewer));
    viewer.on("error", () => viewer.terminate());
    // Pages only listen; anything they send is ignored.
    const inHistory = new Set(history);
    for (const root of pinned.values()) {
      for (const entry of [root.actor, root.snapshot]) if (entry && !inHistory.has(entry)) sendTo(viewer, entry.text);
    }
    for (const entry of history) sendTo(viewer, entry.text);
  }

  function publish(m: InspectorMessage): void {
    const text = JSON.stringify(m);
    const entry: Entry = { text, bytes: Buffer.byteLength(text) };
    stats.relayed++;
    history.push(entry);
    historyBytes += entry.bytes;
    while (history.length > 1 && (history.length > options.historySize || historyBytes > options.historyBytes)) {
      historyBytes -= history.shift()!.bytes;
    }
    if (m.type === "@xstate.actor" && m.parentId === undefined) {
      pinned.set(m.sessionId, { actor: entry });
      if (pinned.size > maxPinnedRoots) pinned.delete(pinned.keys().next().value as string);
    } else if (m.type === "@xstate.snapshot") {
      const root = pinned.get(m.sessionId);
      if (root) root.snapshot = entry;
    }
    for (const viewer of viewers) sendTo(viewer, entry.text);
  }

  function sendTo(viewer: WebSocket, text: string): void {
    if (viewer.readyState !== wsOpen) return;
    if (viewer.bufferedAmount > maxViewerBufferBytes) {
      stats.viewersDropped++;
      viewer.terminate();
      return;
    }
    viewer.send(text);
  }

  await new Promise<void>((resolve, reject) => {
    const fail = (err: Error) =>
      reject(
        new BridgeError(`inspector: cannot listen on ${urlHost(options.host)}:${options.port}: ${err.message}`, "unavailable", {
          cause: err,
        }),
      );
    server.once("error", fail);
    server.listen(options.port, options.host, () => {
      server.off("error", fail);
      resolve();
    });
  });
  port = (server.address() as AddressInfo).port;
  const authority = `${urlHost(options.host)}:${port}`;

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const viewer of viewers) viewer.close(1001, "inspector closing");
      await settle([...viewers], 500);
      for (const viewer of viewers) viewer.terminate();
      wss.close();
      server.closeAllConnections();
      await closed;
    })();
    return closing;
  };

  return {
    url: `http://${authority}/${key}/`,
    statelyUrl: `http://${authority}/${key}/stately`,
    host: options.host,
    port,
    publish,
    stats: () => ({ viewers: viewers.size, history: { messages: history.length, bytes: historyBytes }, ...stats }),
    close,
  };
}

function send(res: ServerResponse, status: number, type: string, body: string | Buffer, csp?: string): void {
  res.statusCode = status;
  res.setHeader("content-type", type);
  res.setHeader("cache-control", "no-store");
  res.setHeader("x-content-type-options", "nosniff");
  res.setHeader("referrer-policy", "no-referrer");
  res.setHeader("content-security-policy", csp ?? "default-src 'none'");
  res.setHeader("x-frame-options", "DENY");
  res.end(res.req.method === "HEAD" ? undefined : body);
}

/** The one inline style the page may hold: the diagram's own stylesheet. */
const diagramStyleHash = `'sha256-${createHash("sha256").update(statechartStyle).digest("base64")}'`;

/** The offline page loads only from this server: no internet needed, nothing else allowed. */
function pageCsp(req: IncomingMessage): string {
  const host = req.headers.host ?? "";
  return [
    "default-src 'none'",
    "script-src 'self'",
    `style-src 'self' ${diagramStyleHash}`,
    "img-src 'self' data:",
    `connect-src 'self' ws://${host}`,
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join("; ");
}

function statelyCsp(req: IncomingMessage, statelyUrl: URL): string {
  return `${pageCsp(req)}; frame-src ${statelyUrl.origin}`;
}

function statelyPage(template: string, statelyUrl: URL): string {
  return template
    .replaceAll("{{STATELY_URL}}", escapeHtml(statelyUrl.href))
    .replaceAll("{{STATELY_ORIGIN}}", escapeHtml(statelyUrl.origin));
}

function escapeHtml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&#39;");
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function refuse(socket: Duplex, status: number, text: string): void {
  socket.end(`HTTP/1.1 ${status} ${text}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
}

function keyMatches(given: string, expected: string): boolean {
  const a = createHash("sha256").update(given).digest();
  const b = createHash("sha256").update(expected).digest();
  return timingSafeEqual(a, b) && given === expected;
}

function urlHost(host: string): string {
  return host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
}

/** Resolves when every socket has closed, or after `timeoutMs`. */
function settle(sockets: readonly WebSocket[], timeoutMs: number): Promise<void> {
  const open = sockets.filter((s) => s.readyState !== wsClosed);
  if (open.length === 0) return Promise.resolve();
  return new Promise<void>((resolve) => {
    let left = open.length;
    const timer = setTimeout(resolve, timeoutMs);
    for (const s of open) {
      s.once("close", () => {
        if (--left === 0) {
          clearTimeout(timer);
          resolve();
        }
      });
    }
  });
}
