/**
 * The user's `inspect` observer, made harmless: XState calls it inside the
 * bridge's own machine steps, so a throw would surface in whatever sent the
 * event (the stream reader: a message lost, the call left open). A throw is
 * caught and logged (the first at warn, later ones at debug, counted); a
 * returned promise is not awaited and its rejection is caught.
 */
import type { InspectionEvent, Observer } from "xstate";
import type { Logger } from "./types.js";

type Inspect = Observer<InspectionEvent> | ((event: InspectionEvent) => void);

export function safeInspect(inspect: Inspect, logger: Logger): (event: InspectionEvent) => void {
  let failures = 0;
  const failed = (reason: unknown) => {
    failures += 1;
    const what = reason instanceof Error ? reason.name : typeof reason;
    const fields = { failures, error: what };
    if (failures === 1) logger.warn(fields, "the inspect observer threw; the bridge goes on without it (later failures at debug)");
    else logger.debug(fields, "the inspect observer threw again");
  };
  return (event) => {
    try {
      const result: unknown = typeof inspect === "function" ? inspect(event) : inspect.next?.(event);
      if (result instanceof Promise) result.catch(failed);
    } catch (reason) {
      failed(reason);
    }
  };
}
