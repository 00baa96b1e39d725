/**
 * A TCP fault proxy for tests: listens on 127.0.0.1 and forwards every
 * connection to a loopback target, with a fault mode that can be switched at
 * run time:
 *
 * - `pass`: forward both ways.
 * - `cut`: reset (RST) every open link, and every new one as it arrives.
 * - `blackhole`: accept and keep connections but forward nothing, a half-open
 *   link. A link that was blackholed stays dead when the mode changes (its
 *   bytes were dropped, as on a real half-open link); only new connections
 *   follow the new mode. Bytes a dead link receives are read and discarded,
 *   so the proxy can tell when a peer gives up on it (`deadClosedByClient`).
 * - `delay`: forward every chunk `delayMs` late, in order.
 * - `refuse`: stop listening, so new connections get ECONNREFUSED; open
 *   links keep passing. Listening resumes on the same port when the mode
 *   changes.
 *
 * With `http2Tap` the proxy reads the HTTP/2 frames of each h2c link and
 * counts them per type and direction (PINGs, GOAWAYs with their error codes).
 * With `pingPolicy` it also enforces a gRPC server's keepalive policy on
 * client PINGs, as gRPC core's chttp2 transport does
 * (`grpc.http2.min_ping_interval_without_data_ms`,
 * `grpc.http2.max_ping_strikes`, `grpc.keepalive_permit_without_calls`): a
 * PING that comes sooner than allowed is a strike, strikes reset whenever the
 * server sends HEADERS or DATA, and one strike too many is answered with
 * GOAWAY ENHANCE_YOUR_CALM "too_many_pings" and the link is closed.
 *
 * Only loopback targets are accepted.
 */
import * as net from "node:net";
import { isLoopbackHost } from "../../src/server-url.js";

export type FaultMode = "pass" | "cut" | "blackhole" | "delay" | "refuse";

/** gRPC core's server keepalive enforcement; the defaults are gRPC core's. */
export interface PingPolicy {
  /** Least time between client PINGs while the server sends nothing. Defaults to 300000 (5 minutes). */
  minPingIntervalWithoutDataMs?: number;
  /** Strikes tolerated before GOAWAY ENHANCE_YOUR_CALM; 0 tolerates any number. Defaults to 2. */
  maxPingStrikes?: number;
  /** Whether PINGs are allowed with no call open; if not, one per 2 hours is. Defaults to false. */
  permitWithoutCalls?: boolean;
}

export interface FaultProxyOptions {
  /** The loopback port to forward to. */
  targetPort: number;
  /** The loopback host to forward to. Defaults to "127.0.0.1". */
  targetHost?: string;
  /** Port to listen on (127.0.0.1). Defaults to 0: a free one. */
  port?: number;
  /** Mode at start. Defaults to "pass". */
  mode?: FaultMode;
  /** Lateness of every chunk in "delay" mode. Defaults to 100. */
  delayMs?: number;
  /** Count the HTTP/2 frames of h2c links. Defaults to false (true when pingPolicy is set). */
  http2Tap?: boolean;
  /** Enforce gRPC core's ping policy on client PINGs. Defaults to none. */
  pingPolicy?: PingPolicy;
}

/** One GOAWAY seen on a link, or sent by the proxy's ping policy. */
export interface GoawaySeen {
  from: "client" | "server" | "proxy";
  errorCode: number;
  debug: string;
}

export interface Http2TapStats {
  /** Frames by type name ("DATA", "PING", …) sent by the client. */
  framesFromClient: Record<string, number>;
  /** Frames by type name sent by the server. */
  framesFromServer: Record<string, number>;
  /** PING frames without ACK sent by the client (keepalive pings). */
  clientPings: number;
  /** PING frames without ACK sent by the server. */
  serverPings: number;
  goaways: GoawaySeen[];
  /** Ping strikes counted by the ping policy, over all links. */
  pingStrikes: number;
  /** Links that did not start with the HTTP/2 client preface (not counted). */
  notHttp2: number;
}

export interface FaultProxyStats {
  mode: FaultMode;
  /** Connections accepted so far. */
  accepted: number;
  /** Links open now (dead ones included). */
  open: number;
  /** Links reset by "cut". */
  reset: number;
  /** Links made dead by "blackhole". */
  blackholed: number;
  /** Dead links that their client closed (gave up on). */
  deadClosedByClient: number;
  /** Links whose upstream connection failed (the target is down). */
  upstreamFailures: number;
  bytesFromClient: number;
  bytesFromServer: number;
  http2: Http2TapStats;
}

export interface FaultProxy {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  readonly port: number;
  readonly mode: FaultMode;
  /** Switches the mode; see the file comment for what each does to open links. */
  setMode(mode: FaultMode, options?: { delayMs?: number }): Promise<void>;
  pass(): Promise<void>;
  cut(): Promise<void>;
  blackhole(): Promise<void>;
  delay(ms: number): Promise<void>;
  refuse(): Promise<void>;
  /** Makes every open link dead (half-open) without changing the mode for new connections. */
  blackholeOpenLinks(): number;
  /** Makes the open link accepted `index`-th (0: the oldest still open) dead, the others untouched; false when there is none. */
  blackholeOpenLink(index: number): boolean;
  /**
   * Sends GOAWAY (NO_ERROR, last stream id = the link's highest) to the
   * client of every open h2c link, as a server about to shut down or
   * recycle a connection does, without closing anything: the server behind
   * knows nothing of it and keeps the link's streams open. Needs http2Tap
   * (frames are only injected between whole frames). Returns how many links
   * got one.
   */
  goawayClients(): number;
  /** Forwards new connections to another loopback port (a restarted server). */
  setTargetPort(port: number): void;
  stats(): FaultProxyStats;
  /** Resolves once `n` connections were accepted in total; rejects after timeoutMs (default 5000). */
  waitForAccepted(n: number, timeoutMs?: number): Promise<void>;
  /** Destroys every link and stops listening. Idempotent. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

const frameTypeNames = [
  "DATA",
  "HEADERS",
  "PRIORITY",
  "RST_STREAM",
  "SETTINGS",
  "PUSH_PROMISE",
  "PING",
  "GOAWAY",
  "WINDOW_UPDATE",
  "CONTINUATION",
];
const clientPreface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");
const FRAME_HEADER_BYTES = 9;
const FLAG_END_STREAM = 0x1;
const FLAG_ACK = 0x1;
const ENHANCE_YOUR_CALM = 0xb;
const TWO_HOURS_MS = 2 * 60 * 60 * 1000;

interface Frame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
}

/** Splits a byte stream into HTTP/2 frames (after the client preface when asked). */
class FrameReader {
  private pending: Buffer = Buffer.alloc(0);
  private prefaceLeft: number;
  valid = true;

  constructor(expectPreface: boolean) {
    this.prefaceLeft = expectPreface ? clientPreface.length : 0;
  }

  /** Returns the complete units (preface, then whole frames) now available, raw, with the parsed frame. */
  push(chunk: Buffer): Array<{ raw: Buffer; frame: Frame | undefined }> {
    const out: Array<{ raw: Buffer; frame: Frame | undefined }> = [];
    if (!this.valid) return [{ raw: chunk, frame: undefined }];
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    if (this.prefaceLeft > 0) {
      const offset = clientPreface.length - this.prefaceLeft;
      const n = Math.min(this.prefaceLeft, this.pending.length);
      if (!this.pending.subarray(0, n).equals(clientPreface.subarray(offset, offset + n))) {
        this.valid = false;
        const rest = this.pending;
        this.pending = Buffer.alloc(0);
        return [{ raw: rest, frame: undefined }];
      }
      this.prefaceLeft -= n;
      out.push({ raw: this.pending.subarray(0, n), frame: undefined });
      this.pending = this.pending.subarray(n);
    }
    while (this.pending.length >= FRAME_HEADER_BYTES) {
      const length = this.pending.readUIntBE(0, 3);
      if (this.pending.length < FRAME_HEADER_BYTES + length) break;
      const raw = this.pending.subarray(0, FRAME_HEADER_BYTES + length);
      out.push({
        raw,
        frame: {
          type: raw[3] ?? 0,
          flags: raw[4] ?? 0,
          streamId: raw.readUInt32BE(5) & 0x7fffffff,
          payload: raw.subarray(FRAME_HEADER_BYTES),
        },
      });
      this.pending = this.pending.subarray(FRAME_HEADER_BYTES + length);
    }
    return out;
  }
}

function goawayFrame(lastStreamId: number, errorCode: number, debug: string): Buffer {
  const data = Buffer.from(debug, "ascii");
  const frame = Buffer.alloc(FRAME_HEADER_BYTES + 8 + data.length);
  frame.writeUIntBE(8 + data.length, 0, 3);
  frame[3] = 7;
  frame[4] = 0;
  frame.writeUInt32BE(0, 5);
  frame.writeUInt32BE(lastStreamId & 0x7fffffff, 9);
  frame.writeUInt32BE(errorCode, 13);
  data.copy(frame, 17);
  return frame;
}

interface DelayQueue {
  items: Array<{ dueMs: number; data: Buffer }>;
  timer: ReturnType<typeof setTimeout> | undefined;
}

interface Link {
  client: net.Socket;
  upstream: net.Socket | undefined;
  dead: boolean;
  closed: boolean;
  /** Chunks waiting for the upstream connection. */
  early: Buffer[];
  upReader: FrameReader | undefined;
  downReader: FrameReader | undefined;
  openStreams: Set<number>;
  highestStreamId: number;
  lastPingAtMs: number;
  strikes: number;
  /** Delayed chunks per direction, in order, each with the time it is due. */
  late: { up: DelayQueue; down: DelayQueue };
  /** Whether the server's SETTINGS frame (its first) went to the client: a GOAWAY may only follow it. */
  serverPrefaceSent: boolean;
  /** A GOAWAY waiting for the server's SETTINGS to go out first. */
  pendingGoaway: Buffer | undefined;
}

/** Starts a fault proxy on 127.0.0.1 in front of a loopback target. */
export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const targetHost = options.targetHost ?? "127.0.0.1";
  if (!isLoopbackHost(targetHost)) throw new Error(`fault proxy: target ${targetHost} is not loopback`);
  let targetPort = options.targetPort;
  let mode: FaultMode = options.mode ?? "pass";
  let delayMs = options.delayMs ?? 100;
  const policy =
    options.pingPolicy === undefined
      ? undefined
      : {
          minPingIntervalWithoutDataMs: options.pingPolicy.minPingIntervalWithoutDataMs ?? 300_000,
          maxPingStrikes: options.pingPolicy.maxPingStrikes ?? 2,
          permitWithoutCalls: options.pingPolicy.permitWithoutCalls ?? false,
        };
  const tap = options.http2Tap === true || policy !== undefined;
  const links = new Set<Link>();
  const acceptedWaiters = new Set<() => void>();
  const counters = {
    accepted: 0,
    reset: 0,
    blackholed: 0,
    deadClosedByClient: 0,
    upstreamFailures: 0,
    bytesFromClient: 0,
    bytesFromServer: 0,
  };
  const h2: Http2TapStats = {
    framesFromClient: {},
    framesFromServer: {},
    clientPings: 0,
    serverPings: 0,
    goaways: [],
    pingStrikes: 0,
    notHttp2: 0,
  };
  let server: net.Server | undefined;
  let port = options.port ?? 0;
  let closed = false;

  function countFrame(into: Record<string, number>, type: number): void {
    const name = frameTypeNames[type] ?? `TYPE_${type}`;
    into[name] = (into[name] ?? 0) + 1;
  }

  function destroyLink(link: Link, how: "reset" | "destroy"): void {
    if (link.closed) return;
    link.closed = true;
    clearLate(link);
    if (how === "reset" && !link.client.destroyed) link.client.resetAndDestroy();
    else link.client.destroy();
    link.upstream?.destroy();
    links.delete(link);
  }

  function makeDead(link: Link): void {
    if (link.dead || link.closed) return;
    link.dead = true;
    link.early = [];
    counters.blackholed++;
    clearLate(link);
  }

  function clearLate(link: Link): void {
    for (const q of [link.late.up, link.late.down]) {
      clearTimeout(q.timer);
      q.timer = undefined;
      q.items = [];
    }
  }

  /**
   * Writes `data` to `to`, now or `delayMs` late in "delay" mode. One queue
   * and one timer per direction keep the bytes in order (timers of different
   * durations due at the same time may fire in any order).
   */
  function deliver(link: Link, to: net.Socket, data: Buffer, dir: "up" | "down"): void {
    if (link.dead || link.closed || to.destroyed) return;
    const q = link.late[dir];
    if (mode !== "delay" && q.items.length === 0) {
      to.write(data);
      return;
    }
    q.items.push({ dueMs: performance.now() + (mode === "delay" ? delayMs : 0), data });
    const pump = (): void => {
      q.timer = undefined;
      const now = performance.now();
      while (q.items.length > 0 && (q.items[0]?.dueMs ?? 0) <= now + 1) {
        const item = q.items.shift();
        if (item && !link.dead && !link.closed && !to.destroyed) to.write(item.data);
      }
      const head = q.items[0];
      if (head) q.timer = setTimeout(pump, Math.max(0, head.dueMs - now));
    };
    if (q.timer === undefined) q.timer = setTimeout(pump, Math.max(0, (q.items[0]?.dueMs ?? 0) - performance.now()));
  }

  function onClientFrame(link: Link, frame: Frame): void {
    countFrame(h2.framesFromClient, frame.type);
    if (frame.type === 1 && frame.streamId % 2 === 1) {
      link.openStreams.add(frame.streamId);
      link.highestStreamId = Math.max(link.highestStreamId, frame.streamId);
    } else if (frame.type === 3) {
      link.openStreams.delete(frame.streamId);
    } else if (frame.type === 7) {
      h2.goaways.push(parseGoaway("client", frame.payload));
    } else if (frame.type === 6 && (frame.flags & FLAG_ACK) === 0) {
      h2.clientPings++;
      if (policy) enforcePingPolicy(link);
    }
  }

  function onServerFrame(link: Link, frame: Frame): void {
    countFrame(h2.framesFromServer, frame.type);
    if (frame.type === 0 || frame.type === 1) {
      // gRPC core resets the strikes whenever it sends headers or data.
      link.strikes = 0;
      link.lastPingAtMs = Number.NEGATIVE_INFINITY;
      if ((frame.flags & FLAG_END_STREAM) !== 0) link.openStreams.delete(frame.streamId);
    } else if (frame.type === 3) {
      link.openStreams.delete(frame.streamId);
    } else if (frame.type === 7) {
      h2.goaways.push(parseGoaway("server", frame.payload));
    } else if (frame.type === 6 && (frame.flags & FLAG_ACK) === 0) {
      h2.serverPings++;
    }
  }

  function enforcePingPolicy(link: Link): void {
    if (!policy) return;
    const now = performance.now();
    const idle = link.openStreams.size === 0;
    const interval = idle && !policy.permitWithoutCalls ? TWO_HOURS_MS : policy.minPingIntervalWithoutDataMs;
    const nextAllowed = link.lastPingAtMs + interval;
    link.lastPingAtMs = now;
    if (nextAllowed <= now) return;
    link.strikes++;
    h2.pingStrikes++;
    if (policy.maxPingStrikes !== 0 && link.strikes > policy.maxPingStrikes) {
      h2.goaways.push({ from: "proxy", errorCode: ENHANCE_YOUR_CALM, debug: "too_many_pings" });
      link.pendingGoaway = goawayFrame(link.highestStreamId, ENHANCE_YOUR_CALM, "too_many_pings");
      if (link.serverPrefaceSent) sendPendingGoaway(link);
    }
  }

  /** Sends the policy's GOAWAY, then closes the link as gRPC core closes the transport. */
  function sendPendingGoaway(link: Link): void {
    const frame = link.pendingGoaway;
    if (frame === undefined || link.dead) return;
    link.pendingGoaway = undefined;
    link.dead = true; // forward nothing more
    const client = link.client;
    client.write(frame, () => {
      client.end();
      link.upstream?.destroy();
    });
  }

  function onAccept(client: net.Socket): void {
    counters.accepted++;
    for (const w of acceptedWaiters) w();
    if (closed) {
      client.destroy();
      return;
    }
    client.on("error", () => {});
    // Forward small writes at once, as the endpoints do (Nagle + delayed ACKs would add ~40 ms).
    client.setNoDelay(true);
    const link: Link = {
      client,
      upstream: undefined,
      dead: false,
      closed: false,
      early: [],
      upReader: tap ? new FrameReader(true) : undefined,
      downReader: tap ? new FrameReader(false) : undefined,
      openStreams: new Set(),
      highestStreamId: 0,
      lastPingAtMs: Number.NEGATIVE_INFINITY,
      strikes: 0,
      late: { up: { items: [], timer: undefined }, down: { items: [], timer: undefined } },
      serverPrefaceSent: false,
      pendingGoaway: undefined,
    };
    links.add(link);
    client.on("close", () => {
      if (link.dead && !link.closed) counters.deadClosedByClient++;
      destroyLink(link, "destroy");
    });
    if (mode === "cut") {
      counters.reset++;
      destroyLink(link, "reset");
      return;
    }
    client.on("data", (chunk: Buffer) => {
      counters.bytesFromClient += chunk.length;
      if (link.dead) return;
      let units: Array<{ raw: Buffer; frame: Frame | undefined }> = [{ raw: chunk, frame: undefined }];
      if (link.upReader) {
        const wasValid = link.upReader.valid;
        units = link.upReader.push(chunk);
        if (wasValid && !link.upReader.valid) h2.notHttp2++;
        for (const u of units) if (u.frame) onClientFrame(link, u.frame);
        if (link.dead) return;
      }
      for (const u of units) {
        if (link.upstream === undefined || link.upstream.connecting) link.early.push(u.raw);
        else deliver(link, link.upstream, u.raw, "up");
      }
    });
    client.on("end", () => {
      if (!link.dead) link.upstream?.end();
    });
    if (mode === "blackhole") {
      makeDead(link);
      return;
    }
    const upstream = net.connect({ host: targetHost, port: targetPort, noDelay: true });
    link.upstream = upstream;
    upstream.on("error", () => {});
    upstream.on("connect", () => {
      for (const raw of link.early.splice(0)) deliver(link, upstream, raw, "up");
    });
    upstream.on("data", (chunk: Buffer) => {
      counters.bytesFromServer += chunk.length;
      if (link.dead) return;
      if (!link.downReader) {
        deliver(link, client, chunk, "down");
        return;
      }
      for (const u of link.downReader.push(chunk)) {
        if (u.frame) onServerFrame(link, u.frame);
        if (link.dead) return;
        deliver(link, client, u.raw, "down");
        if (u.frame?.type === 4 && !link.serverPrefaceSent) {
          link.serverPrefaceSent = true;
          sendPendingGoaway(link);
        }
      }
    });
    upstream.on("end", () => {
      if (!link.dead) client.end();
    });
    upstream.on("close", (hadError) => {
      if (link.dead || link.closed) return;
      if (hadError && upstream.bytesRead === 0 && upstream.bytesWritten === 0) counters.upstreamFailures++;
      // The server went away: hand the client what it sent, then close.
      if (link.late.down.items.length === 0) client.end();
      setTimeout(() => destroyLink(link, hadError ? "reset" : "destroy"), 20).unref();
    });
  }

  async function listen(): Promise<void> {
    const s = net.createServer({ pauseOnConnect: false }, onAccept);
    s.on("error", () => {});
    await new Promise<void>((resolve, reject) => {
      s.once("error", reject);
      s.listen(port, "127.0.0.1", () => {
        s.off("error", reject);
        resolve();
      });
    });
    port = (s.address() as net.AddressInfo).port;
    server = s;
  }

  function stopListening(): void {
    server?.close();
    server = undefined;
  }

  async function setMode(next: FaultMode, opts: { delayMs?: number } = {}): Promise<void> {
    if (closed) return;
    if (opts.delayMs !== undefined) delayMs = opts.delayMs;
    const prev = mode;
    mode = next;
    if (next === "cut") {
      for (const link of [...links]) {
        counters.reset++;
        destroyLink(link, "reset");
      }
    } else if (next === "blackhole") {
      for (const link of links) makeDead(link);
    }
    if (next === "refuse" && prev !== "refuse") stopListening();
    if (next !== "refuse" && server === undefined) await listen();
  }

  await listen();
  if (mode === "refuse") stopListening();

  const proxy: FaultProxy = {
    get url() {
      return `http://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    get mode() {
      return mode;
    },
    setMode,
    pass: () => setMode("pass"),
    cut: () => setMode("cut"),
    blackhole: () => setMode("blackhole"),
    delay: (ms) => setMode("delay", { delayMs: ms }),
    refuse: () => setMode("refuse"),
    blackholeOpenLinks() {
      let n = 0;
      for (const link of links) {
        if (!link.dead) n++;
        makeDead(link);
      }
      return n;
    },
    blackholeOpenLink(index) {
      const link = [...links].filter((l) => !l.dead)[index];
      if (link === undefined) return false;
      makeDead(link);
      return true;
    },
    goawayClients() {
      if (!tap) throw new Error("fault proxy: goawayClients() needs http2Tap");
      let n = 0;
      for (const link of links) {
        if (link.dead || link.closed || !link.serverPrefaceSent || link.client.destroyed) continue;
        // Delayed chunks would put the frame out of order; links here pass at once.
        if (link.late.down.items.length > 0) continue;
        h2.goaways.push({ from: "proxy", errorCode: 0, debug: "" });
        link.client.write(goawayFrame(link.highestStreamId, 0, ""));
        n++;
      }
      return n;
    },
    setTargetPort(p) {
      targetPort = p;
    },
    stats: () => ({
      mode,
      ...counters,
      open: links.size,
      http2: {
        ...h2,
        framesFromClient: { ...h2.framesFromClient },
        framesFromServer: { ...h2.framesFromServer },
        goaways: [...h2.goaways],
      },
    }),
    waitForAccepted(n, timeoutMs = 5000) {
      if (counters.accepted >= n) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const check = () => {
          if (counters.accepted < n) return;
          done();
          resolve();
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`fault proxy: ${counters.accepted} of ${n} connections accepted after ${timeoutMs} ms`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          acceptedWaiters.delete(check);
        };
        acceptedWaiters.add(check);
      });
    },
    async close() {
      if (closed) return;
      closed = true;
      const s = server;
      server = undefined;
      for (const link of [...links]) destroyLink(link, "destroy");
      if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
    },
    [Symbol.asyncDispose]: () => proxy.close(),
  };
  return proxy;
}

function parseGoaway(from: GoawaySeen["from"], payload: Buffer): GoawaySeen {
  return {
    from,
    errorCode: payload.length >= 8 ? payload.readUInt32BE(4) : -1,
    debug: payload.subarray(8).toString("latin1"),
  };
}
