/**
 * startInspector(): the inspector server on loopback and the XState
 * inspection observer that feeds it. Its `inspect` observer goes to
 * `createBridge({ inspect })`; every inspection event is converted to the
 * Stately inspector's protocol in process, bounded and redacted
 * (inspection-events.ts), and published to the offline page and, through
 * it, to the hosted Stately inspector. There is no producer socket between
 * the two, so nothing can be lost between them and no message is too large
 * for it; the inspector needs neither @statelyai/inspect nor elkjs at run
 * time, only ws (an optional peer dependency).
 */
import type { InspectionEvent, Observer } from "xstate";
import { BridgeError } from "../src/errors.js";
import { createRedactor, toInspectorMessage } from "./inspection-events.js";
import { startInspectorServer, type InspectorServerStats } from "./inspector-server.js";
import { validateInspectorOptions, type InspectorOptions } from "./inspector-options.js";

export interface InspectorHandle {
  /** The offline inspector page, with its key: open it in a browser; needs no internet. */
  readonly url: string;
  /** A page that shows the same session in the hosted Stately inspector (needs internet). */
  readonly statelyUrl: string;
  readonly host: string;
  readonly port: number;
  /** The XState inspection observer: pass it as `createBridge({ inspect })`. */
  readonly inspect: Observer<InspectionEvent>;
  /** The server's figures, plus inspection events that failed to convert or were dropped because too many came in one tick. */
  stats(): InspectorServerStats & { inspectionErrors: number; inspectionsDropped: number };
  /** Stops inspecting, closes every page's socket and the listener. Idempotent. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Inspection events waiting for their microtask; more in one synchronous burst are dropped and counted. */
const maxQueuedInspections = 10_000;

/** Starts the inspector on loopback; see InspectorOptions. */
export async function startInspector(options: InspectorOptions = {}): Promise<InspectorHandle> {
  const opts = validateInspectorOptions(options);
  if (opts.signal?.aborted) throw new BridgeError("inspector: aborted before it started", "canceled");
  const server = await startInspectorServer(opts);
  const redact = createRedactor(opts.redact);

  let closed = false;
  let inspectionErrors = 0;
  let inspectionsDropped = 0;
  // XState reports an actor before its first snapshot exists, so events are
  // converted on the next microtask, in order, as @statelyai/inspect does
  // on the next macrotask; the queue is bounded.
  const queue: InspectionEvent[] = [];
  const flush = () => {
    for (const event of queue.splice(0)) {
      if (closed) return;
      try {
        const message = toInspectorMessage(event, redact);
        if (message) server.publish(message);
      } catch {
        inspectionErrors++;
      }
    }
  };
  const inspect: Observer<InspectionEvent> = {
    next(event) {
      if (closed) return;
      if (queue.length >= maxQueuedInspections) {
        inspectionsDropped++;
        return;
      }
      if (queue.push(event) === 1) queueMicrotask(flush);
    },
    error: () => {},
    complete: () => {},
  };

  let closing: Promise<void> | undefined;
  const onAbort = () => void close();
  const close = (): Promise<void> => {
    closing ??= (async () => {
      opts.signal?.removeEventListener("abort", onAbort);
      // Publish what the last synchronous work reported, then stop.
      await Promise.resolve();
      closed = true;
      await server.close();
    })();
    return closing;
  };
  opts.signal?.addEventListener("abort", onAbort, { once: true });

  return {
    url: server.url,
    statelyUrl: server.statelyUrl,
    host: server.host,
    port: server.port,
    inspect,
    stats: () => ({ ...server.stats(), inspectionErrors, inspectionsDropped }),
    close,
    [Symbol.asyncDispose]: close,
  };
}
