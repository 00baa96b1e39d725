/**
 * Shared fixtures for end-to-end suites: a recording handler, a capturing
 * logger, and `eventually()` that waits for a condition on real sockets.
 */
import * as assert from "uvu/assert";
import { createBridge, type Bridge } from "../../src/bridge.js";
import type { BridgeOptions } from "../../src/bridge-options.js";
import { HandlerRegistry } from "../../src/handler-registry.js";
import type { BridgeTiming } from "../../src/timing.js";

/** Short real-time timings for loopback tests. */
export const fastTiming: Partial<BridgeTiming> = {
  backoffMinMs: 20,
  backoffMaxMs: 200,
  openConfirmMs: 300,
  stableAfterMs: 2000,
  heartbeatMs: 60_000,
  heartbeatJitterMs: 0,
  syncTimeoutMs: 2000,
  handlerTimeoutMs: 500,
  stopTimeoutMs: 2000,
};

// The recording handler, the capturing logger and eventually() live in the
// testing kit (engram-serverevents/testing); re-exported for the suites.
import { recordingHandler, capturingLogger, eventually, type RecordingHandler, type CapturingLogger } from "../../src/testing/index.js";
export { recordingHandler, capturingLogger, eventually };
export type { RecordedCall as Call, CapturedLine, RecordingHandler, CapturingLogger } from "../../src/testing/index.js";

/** One bridge made by a fixture, with what observes it. */
export interface TestBridge {
  bridge: Bridge;
  /** Registered last, after any handler the test's own registry holds. */
  handler: RecordingHandler;
  logger: CapturingLogger;
  registry: HandlerRegistry;
}

/** Makes bridges for a suite and stops them all in its after hook. */
export interface BridgeFixture {
  make(opts?: Partial<BridgeOptions>): TestBridge;
  /** Stops a bridge the test built itself along with the others. */
  adopt(bridge: Bridge): Bridge;
  stopAll(): Promise<void>;
}

/**
 * `defaults` is read at each make() (the server a suite points at may have
 * been restarted); a test's own options win over it, and every bridge gets
 * `env: {}` unless told, so the machine's environment never leaks in.
 */
export function createBridgeFixture(defaults: () => Partial<BridgeOptions>): BridgeFixture {
  const bridges: Bridge[] = [];
  return {
    make(opts = {}) {
      const registry = opts.registry ?? new HandlerRegistry();
      const handler = recordingHandler();
      registry.register(handler);
      const logger = capturingLogger();
      const bridge = createBridge({ env: {}, logger, timing: fastTiming, ...defaults(), ...opts, registry });
      bridges.push(bridge);
      return { bridge, handler, logger, registry };
    },
    adopt(bridge) {
      bridges.push(bridge);
      return bridge;
    },
    async stopAll() {
      await Promise.all(bridges.splice(0).map((b) => b.stop()));
    },
  };
}

/** What the shared scenarios need of a server: the dev server and the grpc-js one both offer it. */
export interface ScenarioServer {
  createProject(id: string): void;
  removeProject(id: string, reason?: string): unknown;
  dropStreams(): number;
  waitForStreams(n: number, timeoutMs?: number): Promise<void>;
  stats(): { streamsOpened: number; openStreams: number };
}

/**
 * The server drops the open stream with UNAVAILABLE: the bridge backs off,
 * reopens exactly one stream, and a removal made afterwards reaches the handler.
 */
export async function dropAndReconnect(server: ScenarioServer, { bridge, handler }: TestBridge): Promise<void> {
  bridge.start();
  await server.waitForStreams(1);
  await eventually("streaming", () => bridge.status().state === "streaming");
  assert.is(server.dropStreams(), 1);
  await eventually("second stream", () => server.stats().streamsOpened === 2 && server.stats().openStreams === 1);
  await eventually("streaming again", () => bridge.status().state === "streaming");
  server.createProject("p2");
  server.removeProject("p2");
  await eventually("removal after reconnect", () => handler.ids().includes("p2"));
  assert.is(bridge.status().counters.reconnects, 1);
  assert.is(bridge.status().lastError?.code, "unavailable");
}
