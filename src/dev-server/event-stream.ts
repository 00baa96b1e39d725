import { Code, ConnectError } from "@connectrpc/connect";
import type { ProjectEvent } from "../gen/engram/v1/engram_pb.js";

/** How an ended stream finishes: cleanly, or with an error status. */
type Ending = { error: ConnectError | undefined };

/**
 * The bounded buffer of one open ProjectEvents stream: events wait here until
 * the RPC handler takes them (which it does only as fast as the HTTP/2 stream
 * drains). When it is full, further events are refused, which is how a slow
 * consumer loses events.
 */
export class EventStream {
  private readonly queue: ProjectEvent[] = [];
  private ending: Ending | undefined;
  private wake: (() => void) | undefined;

  /**
   * @param capacity most events buffered at once.
   * @param onTaken called as each event leaves the buffer for the wire.
   */
  constructor(
    readonly clientId: string,
    private readonly capacity: number,
    private readonly onTaken: () => void,
  ) {}

  /** Buffers `event`; false when the buffer is full or the stream is ending. */
  offer(event: ProjectEvent): boolean {
    if (this.ending !== undefined || this.queue.length >= this.capacity) return false;
    this.queue.push(event);
    this.wake?.();
    return true;
  }

  /**
   * Ends the stream after the events already buffered: cleanly without
   * `error`, else with it as the RPC's status. Later calls do nothing.
   */
  end(error?: ConnectError): void {
    if (this.ending !== undefined) return;
    this.ending = { error };
    this.wake?.();
  }

  /**
   * Yields buffered events as they come until the stream is ended or `signal`
   * aborts (the call was cancelled, timed out or its connection died).
   */
  async *drain(signal: AbortSignal): AsyncGenerator<ProjectEvent, void, undefined> {
    for (;;) {
      if (signal.aborted) throw ConnectError.from(signal.reason, Code.Canceled);
      const next = this.queue.shift();
      if (next !== undefined) {
        this.onTaken();
        yield next;
        continue;
      }
      if (this.ending !== undefined) {
        if (this.ending.error !== undefined) throw this.ending.error;
        return;
      }
      await this.nextWake(signal);
    }
  }

  /** Resolves on the next offer(), end() or abort. */
  private nextWake(signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = (): void => {
        this.wake = undefined;
        signal.removeEventListener("abort", done);
        resolve();
      };
      this.wake = done;
      signal.addEventListener("abort", done, { once: true });
    });
  }
}
