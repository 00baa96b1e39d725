/** Logs the bridge's connection state changes at info (the library logs them at debug). */
import type { Bridge } from "../bridge.js";
import { flattenConnection } from "../bridge-status.js";
import type { Logger } from "../types.js";

/** Returns the function that stops the logging. */
export function logConnectionStates(bridge: Bridge, logger: Logger): () => void {
  let last = flattenConnection(bridge.actor.getSnapshot().value);
  const sub = bridge.actor.subscribe({
    next: (snapshot) => {
      const state = flattenConnection(snapshot.value);
      if (state === last) return;
      last = state;
      const { attempt, lastError } = snapshot.context;
      logger.info({ state, attempt, ...(state === "backoff" && lastError ? { lastError: lastError.code } : {}) }, `connection ${state}`);
    },
    error: () => {},
  });
  return () => sub.unsubscribe();
}
