// The connection harness: every listener (the health server, the inspector,
// the dev server's HTTP/2 listener) under idle sockets, slow (slowloris)
// headers, half-open requests and many streams at once, generated at random
// sizes. After each attack begins, a fresh probe must still be answered
// within a second, and memory must stay bounded. Loopback only, bounded
// loops; every socket it opens is closed in the end.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { readFileSync } from "node:fs";
import { request } from "node:http";
import * as http2 from "node:http2";
import { connect, type Socket } from "node:net";
import type { BridgeStatus } from "../../src/bridge-status.js";
import { startHealthServer } from "../../src/health/health-server.js";
import { startInspector } from "../../inspector/index.js";
import { spawnDevServer } from "../helpers/child-dev-server.js";

const harness = suite("connection harness: no listener can be stalled or made to grow");

/** An attack's sizes, drawn by fast-check (seeded, so a failure replays). */
interface Attack {
  idle: number;
  slow: number;
  halfOpen: number;
}

const attacks: Attack[] = fc.sample(
  fc.record({ idle: fc.integer({ min: 65, max: 120 }), slow: fc.integer({ min: 5, max: 30 }), halfOpen: fc.integer({ min: 5, max: 30 }) }),
  { numRuns: 2, seed: 20 },
);

/** Sockets the harness opened; closed after each test. */
const opened: Array<{ destroy(): void }> = [];
const timers: NodeJS.Timeout[] = [];

harness.after.each(() => {
  for (const t of timers.splice(0)) clearInterval(t);
  for (const s of opened.splice(0)) s.destroy();
});

function tcp(port: number): Promise<Socket> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: "127.0.0.1" }, () => resolve(socket));
    socket.on("error", () => {});
    opened.push(socket);
  });
}

/** Opens the attack's sockets: idle ones, ones trickling header bytes, and ones whose request body never comes. */
async function attackHttp1(port: number, attack: Attack): Promise<void> {
  await Promise.all(Array.from({ length: attack.idle }, () => tcp(port)));
  for (const socket of await Promise.all(Array.from({ length: attack.slow }, () => tcp(port)))) {
    socket.write(`GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n`);
    timers.push(setInterval(() => socket.write("x-slow: 1\r\n"), 100));
  }
  for (const socket of await Promise.all(Array.from({ length: attack.halfOpen }, () => tcp(port)))) {
    socket.write(`POST /healthz HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Length: 100000\r\n\r\n`);
  }
}

/** A fresh HTTP/1 GET on its own connection: its status and how long it took. */
function probeHttp1(url: string): Promise<{ status: number; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false, timeout: 3000 }, (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - t0 }));
    });
    req.on("timeout", () => req.destroy(new Error(`no answer from ${url} in 3 s`)));
    req.on("error", reject);
    req.end();
  });
}

async function probeThrice(url: string, expected: number): Promise<void> {
  for (let i = 0; i < 3; i++) {
    const { status, ms } = await probeHttp1(url);
    assert.is(status, expected);
    assert.ok(ms < 1000, `probe ${i} of ${url} took ${Math.round(ms)} ms`);
  }
}

const streaming = { state: "streaming", idleReason: null, lastError: null } as unknown as BridgeStatus;

harness("the health server answers a fresh /healthz within a second under idle, slow and half-open connections", async () => {
  const rssBefore = process.memoryUsage().rss;
  for (const attack of attacks) {
    const server = await startHealthServer({ port: 0, status: () => streaming });
    try {
      await attackHttp1(server.port, attack);
      await probeThrice(`${server.url}/healthz`, 200);
      const stats = server.stats();
      assert.ok(stats.openConnections <= 64, `${stats.openConnections} connections held`);
      assert.ok(stats.connectionsShed > 0);
    } finally {
      for (const t of timers.splice(0)) clearInterval(t);
      for (const s of opened.splice(0)) s.destroy();
      await server.close();
    }
  }
  assert.ok(process.memoryUsage().rss - rssBefore < 64 * 1024 * 1024, "memory stays bounded");
});

harness("the inspector answers a fresh page request within a second under idle, slow and half-open connections", async () => {
  for (const attack of attacks) {
    const inspector = await startInspector();
    try {
      await attackHttp1(inspector.port, attack);
      await probeThrice(inspector.url, 200);
    } finally {
      for (const t of timers.splice(0)) clearInterval(t);
      for (const s of opened.splice(0)) s.destroy();
      await inspector.close();
    }
  }
});

function childRssMb(pid: number): number {
  const kb = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
  return Number(kb) / 1024;
}

/** A Ping on a fresh HTTP/2 session: how long until it was answered. */
function probeHttp2(url: string): Promise<number> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const session = http2.connect(url);
    opened.push(session);
    session.on("error", reject);
    const req = session.request({
      ":method": "POST",
      ":path": "/engram.v1.EngramService/Ping",
      "content-type": "application/grpc",
      te: "trailers",
    });
    req.on("data", () => {});
    req.on("error", reject);
    req.on("close", () => {
      session.close();
      resolve(performance.now() - t0);
    });
    req.setTimeout(3000, () => req.close(http2.constants.NGHTTP2_CANCEL));
    req.end(Buffer.alloc(5));
  });
}

harness(
  "the dev server answers a fresh Ping within a second under idle sockets, 5,000 half-open streams on one session and many sessions, and its memory stays bounded",
  async () => {
    const server = await spawnDevServer();
    try {
      const rssBefore = childRssMb(server.pid);
      const attack = attacks[0]!;
      // Idle sockets (no HTTP/2 preface): more than one client may hold sessions.
      await Promise.all(Array.from({ length: attack.idle }, () => tcp(server.port)));
      // Many streams on one session, none ever sending its request message.
      const flood = http2.connect(server.url);
      flood.on("error", () => {});
      opened.push(flood);
      for (let i = 0; i < 5000; i++) {
        const stream = flood.request(
          { ":method": "POST", ":path": "/engram.v1.EngramService/ProjectEvents", "content-type": "application/grpc", te: "trailers" },
          { endStream: false },
        );
        stream.on("error", () => {});
      }
      // Slow sessions: a preface trickled byte by byte.
      const preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
      for (const socket of await Promise.all(Array.from({ length: attack.slow }, () => tcp(server.port)))) {
        let at = 0;
        timers.push(setInterval(() => at < preface.length && socket.write(preface.subarray(at, ++at)), 100));
      }
      for (let i = 0; i < 3; i++) {
        const ms = await probeHttp2(server.url);
        assert.ok(ms < 1000, `probe ${i} took ${Math.round(ms)} ms`);
      }
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const grownMb = childRssMb(server.pid) - rssBefore;
      // Before the stream cap and the request timeout, 5,000 half-open streams cost about +270 MB.
      assert.ok(grownMb < 48, `the dev server grew by ${grownMb.toFixed(0)} MB`);
    } finally {
      for (const t of timers.splice(0)) clearInterval(t);
      for (const s of opened.splice(0)) s.destroy();
      await server.close();
    }
  },
);

harness.run();
