/**
 * The inspector's HTTP and WebSocket server (node:http + ws), on loopback.
 *
 * - `GET /` is the offline inspector page (page/index.html and its assets);
 *   `GET /statechart.svg` the machine's diagram, laid out with elkjs here.
 * - `GET /stately` embeds the hosted Stately inspector and relays the same
 *   messages to it, as @statelyai/inspect's own server does.
 * - `WS /producer/<key>` receives inspection messages from this process's
 *   @statelyai/inspect WebSocket inspector (the key is random per server);
 *   `WS /events` sends them to every page, after the recent history.
 *
 * Every request must carry an allowed Host header (DNS rebinding) and every
 * WebSocket upgrade an absent or same-origin Origin header.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { readFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { WebSocket, WebSocketServer, type RawData } from "ws";
import { BridgeError } from "../src/errors.js";
import { isAllowedHostHeader, isAllowedOrigin } from "./host-check.js";
import { parseInspectorMessage, type InspectorMessage } from "./inspection-events.js";
import type { ResolvedInspectorOptions } from "./inspector-options.js";
import { createStateGraph } from "./statechart-graph.js";
import { layoutStatechart } from "./statechart-layout.js";
import { renderStatechartSvg, statechartStyle } from "./statechart-svg.js";

/** Largest inspection message accepted from the producer. */
const maxMessageBytes = 4 * 1024 * 1024;
/** A page that falls this far behind is disconnected rather than buffered without end. */
const maxViewerBufferBytes = 16 * 1024 * 1024;
/** Root actors whose registration and latest snapshot are kept beyond the history. */
const maxPinnedRoots = 8;

export interface InspectorServerStats {
  /** Pages connected now. */
  viewers: number;
  /** Producer sockets connected now. */
  producers: number;
  /** Messages relayed so far. */
  relayed: number;
  /** Producer messages dropped as malformed. */
  malformed: number;
  /** HTTP requests and upgrades refused for their Host or Origin header. */
  refused: number;
}

export interface InspectorServer {
  /** The offline page, e.g. "http://127.0.0.1:40123/". */
  readonly url: string;
  /** The page that embeds the hosted Stately inspector. */
  readonly statelyUrl: string;
  /** Where the @statelyai/inspect WebSocket inspector sends its messages (holds the producer key). */
  readonly producerUrl: string;
  readonly host: string;
  readonly port: number;
  /** Resolves when a producer is connected; rejects after `timeoutMs`. */
  waitForProducer(timeoutMs: number): Promise<void>;
  /** Resolves when no producer is connected, or after `timeoutMs`. */
  waitForNoProducer(timeoutMs: number): Promise<void>;
  stats(): InspectorServerStats;
  /** Closes every socket and the listener. Idempotent. */
  close(): Promise<void>;
}

/** One relayed message, as sent; entries are compared by identity. */
interface Entry {
  text: string;
}

interface PinnedRoot {
  actor: Entry;
  snapshot?: Entry;
}

const pageDir = new URL("./page/", import.meta.url);
const assets = {
  "/": { file: "index.html", type: "text/html; charset=utf-8" },
  "/index.html": { file: "index.html", type: "text/html; charset=utf-8" },
  "/inspector.js": { file: "inspector.js", type: "text/javascript; charset=utf-8" },
  "/inspector.css": { file: "inspector.css", type: "text/css; charset=utf-8" },
  "/stately.js": { file: "stately.js", type: "text/javascript; charset=utf-8" },
} as const satisfies Record<string, { file: string; type: string }>;

/** Starts the inspector server; see the module comment. */
export async function startInspectorServer(options: ResolvedInspectorOptions): Promise<InspectorServer> {
  const files = new Map<string, Buffer>();
  for (const { file } of Object.values(assets)) {
    if (!files.has(file)) files.set(file, await readFile(new URL(file, pageDir)));
  }
  const statelyTemplate = await readFile(new URL("stately.html", pageDir), "utf8");
  const producerKey = randomBytes(24).toString("hex");
  const history: Entry[] = [];
  const pinned = new Map<string, PinnedRoot>();
  const viewers = new Set<WebSocket>();
  const producers = new Set<WebSocket>();
  const producerWaiters = new Set<() => void>();
  const stats = { relayed: 0, malformed: 0, refused: 0 };
  let svg: Promise<string> | undefined;
  let port = 0;

  const diagram = (): Promise<string> => {
    svg ??= layoutStatechart(createStateGraph(options.machine)).then((layout) => renderStatechartSvg(layout));
    return svg;
  };

  const hostOk = (req: IncomingMessage) => isAllowedHostHeader(req.headers.host, options.allowedHostNames, port);

  const server = createServer((req, res) => {
    if (!hostOk(req)) {
      stats.refused++;
      send(res, 403, "text/plain; charset=utf-8", "Forbidden: this host name is not allowed (the inspector answers on 127.0.0.1 and localhost)\n");
      return;
    }
    void handle(req, res).catch(() => {
      if (!res.headersSent) send(res, 500, "text/plain; charset=utf-8", "internal error\n");
      else res.destroy();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.setHeader("allow", "GET, HEAD");
      send(res, 405, "text/plain; charset=utf-8", "method not allowed\n");
      return;
    }
    const path = new URL(req.url ?? "/", "http://inspector.invalid").pathname;
    const asset = (assets as Record<string, { file: string; type: string }>)[path];
    if (asset) {
      send(res, 200, asset.type, files.get(asset.file) ?? "", pageCsp(req));
      return;
    }
    switch (path) {
      case "/statechart.svg":
        send(res, 200, "image/svg+xml; charset=utf-8", await diagram(), "default-src 'none'; style-src 'unsafe-inline'");
        return;
      case "/stately":
        send(res, 200, "text/html; charset=utf-8", statelyPage(statelyTemplate, options.statelyUrl), statelyCsp(req, options.statelyUrl));
        return;
      case "/favicon.ico":
        send(res, 204, "text/plain", "");
        return;
      default:
        send(res, 404, "text/plain; charset=utf-8", "not found\n");
    }
  }

  const wss = new WebSocketServer({ noServer: true, maxPayload: maxMessageBytes, perMessageDeflate: false });

  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on("error", () => socket.destroy());
    if (!hostOk(req) || !isAllowedOrigin(header(req, "origin"), options.allowedHostNames, port)) {
      stats.refused++;
      refuse(socket, 403, "Forbidden");
      return;
    }
    const path = new URL(req.url ?? "/", "http://inspector.invalid").pathname;
    if (path === "/events") {
      wss.handleUpgrade(req, socket, head, (ws) => addViewer(ws));
    } else if (path.startsWith("/producer/") && keyMatches(path.slice("/producer/".length), producerKey)) {
      wss.handleUpgrade(req, socket, head, (ws) => addProducer(ws));
    } else {
      refuse(socket, 404, "Not Found");
    }
  });

  function addViewer(ws: WebSocket): void {
    viewers.add(ws);
    ws.on("close", () => viewers.delete(ws));
    ws.on("error", () => ws.terminate());
    // Pages only listen; anything they send is ignored.
    const inHistory = new Set(history);
    for (const root of pinned.values()) {
      for (const entry of [root.actor, root.snapshot]) if (entry && !inHistory.has(entry)) sendTo(ws, entry.text);
    }
    for (const entry of history) sendTo(ws, entry.text);
  }

  function addProducer(ws: WebSocket): void {
    producers.add(ws);
    for (const wake of producerWaiters) wake();
    ws.on("close", () => {
      producers.delete(ws);
      for (const wake of producerWaiters) wake();
    });
    ws.on("error", () => ws.terminate());
    ws.on("message", (data: RawData, isBinary: boolean) => {
      const text = isBinary ? "" : rawText(data);
      const message = parseInspectorMessage(text);
      if (!message) {
        stats.malformed++;
        return;
      }
      relay(text, message);
    });
  }

  function relay(text: string, m: InspectorMessage): void {
    const entry: Entry = { text };
    stats.relayed++;
    history.push(entry);
    if (history.length > options.historySize) history.shift();
    if (m.type === "@xstate.actor" && m.parentId === undefined) {
      pinned.set(m.sessionId, { actor: entry });
      if (pinned.size > maxPinnedRoots) pinned.delete(pinned.keys().next().value as string);
    } else if (m.type === "@xstate.snapshot") {
      const root = pinned.get(m.sessionId);
      if (root) root.snapshot = entry;
    }
    for (const ws of viewers) sendTo(ws, entry.text);
  }

  function sendTo(ws: WebSocket, text: string): void {
    if (ws.readyState !== WebSocket.OPEN) return;
    if (ws.bufferedAmount > maxViewerBufferBytes) {
      ws.terminate();
      return;
    }
    ws.send(text);
  }

  await new Promise<void>((resolve, reject) => {
    const fail = (err: Error) =>
      reject(new BridgeError(`inspector: cannot listen on ${urlHost(options.host)}:${options.port}: ${err.message}`, "unavailable", { cause: err }));
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
      for (const ws of [...viewers, ...producers]) ws.close(1001, "inspector closing");
      await settle([...viewers, ...producers], 500);
      for (const ws of [...viewers, ...producers]) ws.terminate();
      wss.close();
      server.closeAllConnections();
      await closed;
    })();
    return closing;
  };

  const waitFor = (ready: () => boolean, timeoutMs: number, fail: boolean): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      if (ready()) return resolve();
      const done = (ok: boolean) => {
        clearTimeout(timer);
        producerWaiters.delete(check);
        if (ok || !fail) resolve();
        else reject(new Error(`the inspection socket did not connect within ${timeoutMs} ms`));
      };
      const check = () => {
        if (ready()) done(true);
      };
      const timer = setTimeout(() => done(false), timeoutMs);
      producerWaiters.add(check);
    });

  return {
    url: `http://${authority}/`,
    statelyUrl: `http://${authority}/stately`,
    producerUrl: `ws://${authority}/producer/${producerKey}`,
    host: options.host,
    port,
    waitForProducer: (timeoutMs) => waitFor(() => producers.size > 0, timeoutMs, true),
    waitForNoProducer: (timeoutMs) => waitFor(() => producers.size === 0, timeoutMs, false),
    stats: () => ({ viewers: viewers.size, producers: producers.size, ...stats }),
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
  return template.replaceAll("{{STATELY_URL}}", escapeHtml(statelyUrl.href)).replaceAll("{{STATELY_ORIGIN}}", escapeHtml(statelyUrl.origin));
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
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

function rawText(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString("utf8");
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString("utf8");
  return data.toString("utf8");
}

function urlHost(host: string): string {
  return host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
}

/** Resolves when every socket has closed, or after `timeoutMs`. */
function settle(sockets: readonly WebSocket[], timeoutMs: number): Promise<void> {
  const open = sockets.filter((ws) => ws.readyState !== WebSocket.CLOSED);
  if (open.length === 0) return Promise.resolve();
  return new Promise<void>((resolve) => {
    let left = open.length;
    const timer = setTimeout(resolve, timeoutMs);
    for (const ws of open) {
      ws.once("close", () => {
        if (--left === 0) {
          clearTimeout(timer);
          resolve();
        }
      });
    }
  });
}
