/**
 * THE PLACE WHERE `dev --inspect` PLUGS IN THE INSPECTOR.
 *
 * `dev` accepts `--inspect` / `--no-inspect` and calls `loadInspectHook()`.
 * While it returns undefined, `--inspect` only prints that no inspector is
 * available. The inspector's module makes it return a hook: `dev` then
 * calls it before creating the bridge, passes `session.observer` as the
 * bridge's `inspect` option, prints `session.url`, and awaits
 * `session.close()` after the bridge stopped.
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
export const inspectByDefault = false;

/** Returns the inspector's hook, or undefined while the project has none. */
export async function loadInspectHook(): Promise<InspectHook | undefined> {
  return undefined;
}
