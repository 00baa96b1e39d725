/**
 * The sidecar's connection log, on the bridge's public connection API. Each
 * connection change is already one info line of the bridge's own log policy
 * (`connection streaming`, `connection backoff` with `err` and `retryInMs`),
 * written through the logger the sidecar gives the bridge; this adds the
 * line an operator waits for after a start: `bridge ready` once the bridge
 * is streaming and its first heartbeat is done (`bridge.ready()`).
 */
import type { Bridge } from "../bridge.js";
import type { Logger } from "../types.js";

/** Returns the function that stops the logging. */
export function logConnectionStates(bridge: Bridge, logger: Logger): () => void {
  const done = new AbortController();
  const startedAt = performance.now();
  bridge.ready(done.signal).then(
    () => {
      const { attempt, state } = bridge.status();
      logger.info({ state, attempt, afterMs: Math.round(performance.now() - startedAt) }, "bridge ready: streaming and synced once");
    },
    // Stopped, aborted, or refused to start (which the bridge logged itself).
    () => {},
  );
  return () => done.abort();
}
