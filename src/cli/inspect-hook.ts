/**
 * Where `dev --inspect` plugs in the inspector (inspector/).
 *
 * `dev` accepts `--inspect` / `--no-inspect` and calls `loadInspectHook()`;
 * it then calls the hook before creating the bridge, passes
 * `session.observer` as the bridge's `inspect` option, prints
 * `session.url`, and awaits `session.close()` after the bridge stopped.
 */
import type { InspectionObserver } from "../bridge-options.js";
import type { Logger } from "../types.js";

export interface InspectSession {
  /** Given to createBridge({ inspect }). */
  observer: InspectionObserver;
  /** Where a person can watch, printed by dev. Defaults to none. */
  url?: string;
  /** Closes what the inspector opened (servers, sockets). */
  close(): Promise<void>;
}

export interface InspectHookOptions {
  /** Lines for the person watching (dev's readable logger). */
  logger: Logger;
  /** Aborts when dev shuts down. */
  signal: AbortSignal;
}

export type InspectHook = (options: InspectHookOptions) => Promise<InspectSession>;

/** Whether dev inspects when neither --inspect nor --no-inspect is given. */
export const inspectByDefault = true;

/** Returns the inspector's hook (loaded lazily: only `--inspect` pays for it). */
export async function loadInspectHook(): Promise<InspectHook | undefined> {
  const { startInspector } = await import("../../inspector/index.js");
  return async ({ logger, signal }) => {
    const inspector = await startInspector({ signal });
    logger.info({}, `hosted Stately inspector (needs internet): ${inspector.statelyUrl}`);
    return { observer: inspector.inspect, url: inspector.url, close: () => inspector.close() };
  };
}
