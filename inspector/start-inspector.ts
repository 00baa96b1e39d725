/**
 * startInspector(): the inspector server on loopback plus an
 * @statelyai/inspect WebSocket inspector connected to it. Its `inspect`
 * observer goes to `createBridge({ inspect })`; every inspection event is
 * serialised by @statelyai/inspect, made safe (inspection-events.ts) and
 * relayed to the offline page and to the hosted Stately inspector.
 */
import { createWebSocketInspector, type StatelyInspectionEvent } from "@statelyai/inspect";
import type { InspectionEvent, Observer } from "xstate";
import { BridgeError } from "../src/errors.js";
import { createRedactor, emittedMessage, toInspectionJson } from "./inspection-events.js";
import { startInspectorServer, type InspectorServerStats } from "./inspector-server.js";
import { validateInspectorOptions, type InspectorOptions } from "./inspector-options.js";

export interface InspectorHandle {
  /** The offline inspector page: open it in a browser; needs no internet. */
  readonly url: string;
  /** A page that shows the same session in the hosted Stately inspector (needs internet). */
  readonly statelyUrl: string;
  readonly host: string;
  readonly port: number;
  /** The XState inspection observer: pass it as `createBridge({ inspect })`. */
  readonly inspect: Observer<InspectionEvent>;
  stats(): InspectorServerStats;
  /** Stops inspecting, closes every page's socket and the listener. Idempotent. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Starts the inspector on loopback; see InspectorOptions. */
export async function startInspector(options: InspectorOptions = {}): Promise<InspectorHandle> {
  const opts = validateInspectorOptions(options);
  if (opts.signal?.aborted) throw new BridgeError("inspector: aborted before it started", "canceled");
  const server = await startInspectorServer(opts);
  const redact = createRedactor(opts.redact);
  const stately = createWebSocketInspector({
    url: server.producerUrl,
    serialize: (event) => toInspectionJson(event, redact) as StatelyInspectionEvent,
  });
  try {
    await server.waitForProducer(opts.connectTimeoutMs);
  } catch (reason) {
    stately.stop();
    await server.close();
    throw new BridgeError(`inspector: ${reason instanceof Error ? reason.message : String(reason)}`, "unavailable", { cause: reason });
  }

  let closed = false;
  const inspect: Observer<InspectionEvent> = {
    next(event) {
      if (closed) return;
      stately.inspect.next?.(event);
      // @statelyai/inspect drops emitted events and sends the rest on the
      // next macrotask; send emitted events the same way to keep the order.
      if (event.type === "@xstate.action" && event.action.type === "xstate.emit") {
        setTimeout(() => {
          const emitted = closed ? undefined : emittedMessage(event, redact);
          if (emitted) stately.adapter.send(emitted as unknown as StatelyInspectionEvent);
        }, 0);
      }
    },
    error: () => {},
    complete: () => {},
  };

  let closing: Promise<void> | undefined;
  const onAbort = () => void close();
  const close = (): Promise<void> => {
    closing ??= (async () => {
      opts.signal?.removeEventListener("abort", onAbort);
      // Let the messages already scheduled go out first.
      await new Promise((resolve) => setTimeout(resolve, 5));
      closed = true;
      stately.stop();
      await server.waitForNoProducer(1000);
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
    stats: () => server.stats(),
    close,
    [Symbol.asyncDispose]: close,
  };
}
