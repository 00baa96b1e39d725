/** A real bridge (createBridge, connect-node client) against a bench server, with a counting handler. */
import { createBridge, HandlerRegistry, type Bridge, type BridgeTiming, type Logger, type ProjectTracker } from "../../src/index.js";
import { createStderrLogger } from "../../src/logger.js";

export interface BenchBridge {
  bridge: Bridge;
  /** Called by the handler with the project id and the event's reason. */
  onRemoval: (projectId: string, reason: string | undefined) => void;
}

export interface BenchBridgeOptions {
  url: string;
  onRemoval?: (projectId: string, reason: string | undefined) => void;
  timing?: Partial<BridgeTiming>;
  tracker?: ProjectTracker;
  logger?: Logger;
}

/** Lines the bench bridges logged (warn and above), kept out of the bench's output. */
export const loggedLines: string[] = [];

/**
 * The default logger (warn and above, JSON lines), as a daemon gets it without
 * configuring one, writing to a list instead of stderr so that expected
 * warnings (a restarted server) do not clutter the bench output.
 */
export const defaultLogger = createStderrLogger({ write: (line) => void (loggedLines.length < 1000 && loggedLines.push(line)) });

export function createBenchBridge(options: BenchBridgeOptions): BenchBridge {
  const registry = new HandlerRegistry();
  const holder: BenchBridge = { bridge: undefined as unknown as Bridge, onRemoval: options.onRemoval ?? (() => {}) };
  registry.register({
    name: "bench-counter",
    onProjectRemoved(projectId, info) {
      holder.onRemoval(projectId, info.reason);
    },
  });
  holder.bridge = createBridge({
    registry,
    serverUrl: options.url,
    env: {},
    clientId: "bench-bridge",
    logger: options.logger ?? defaultLogger,
    ...(options.timing ? { timing: options.timing } : {}),
    ...(options.tracker ? { tracker: options.tracker } : {}),
  });
  return holder;
}

/** Waits until `bridge.status().state` is `state`, polling every ms. */
export async function waitForState(bridge: Bridge, state: string, timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (bridge.status().state !== state) {
    if (performance.now() > deadline) throw new Error(`bridge did not reach ${state} within ${timeoutMs} ms (is ${bridge.status().state})`);
    await new Promise((r) => setTimeout(r, 1));
  }
}
