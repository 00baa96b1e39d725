import { ConnectError } from "@connectrpc/connect";
import type { ProjectEvent } from "../gen/engram/v1/engram_pb.js";
import { EventStream } from "./event-stream.js";

/** Passed to onStreamOpened listeners. */
export interface StreamOpenedInfo {
  /** The client_id the stream was opened with. */
  clientId: string;
  /** Open streams, this one included. */
  openStreams: number;
}

/** Passed to onStreamClosed listeners. */
export interface StreamClosedInfo {
  clientId: string;
  /** Open streams left. */
  openStreams: number;
}

/** Counters of the hub, plain JSON. */
export interface EventHubStats {
  openStreams: number;
  streamsOpened: number;
  eventsSent: number;
  eventsDropped: number;
}

/**
 * Fans every published event out to all open ProjectEvents streams, each
 * through its own bounded buffer, and counts what was sent and dropped.
 * Listeners must not throw: a throw fails the RPC that triggered them.
 */
export class EventHub {
  private readonly streams = new Set<EventStream>();
  private readonly openedListeners = new Set<(info: StreamOpenedInfo) => void>();
  private readonly closedListeners = new Set<(info: StreamClosedInfo) => void>();
  private streamsOpened = 0;
  private eventsSent = 0;
  private eventsDropped = 0;

  /** @param bufferSize events buffered per stream before dropping. */
  constructor(private readonly bufferSize: number) {}

  get openStreams(): number {
    return this.streams.size;
  }

  /** Offers `event` to every open stream; a full buffer drops it for that stream. */
  publish(event: ProjectEvent): void {
    for (const stream of this.streams) {
      if (!stream.offer(event)) this.eventsDropped++;
    }
  }

  /**
   * Ends every open stream after its buffered events, with `error` as status
   * or cleanly without. They stop counting as open at once. Returns how many.
   */
  endAll(error?: Error): number {
    // An Error, not connect's type, in this signature: the root entry's declarations reach it and must not need connect's.
    const status = error === undefined ? undefined : ConnectError.from(error);
    const ended = [...this.streams];
    for (const stream of ended) {
      stream.end(status);
      this.detach(stream);
    }
    return ended.length;
  }

  /** Calls `listener` each time a stream opens; returns the unsubscribe function. */
  onStreamOpened(listener: (info: StreamOpenedInfo) => void): () => void {
    this.openedListeners.add(listener);
    return () => this.openedListeners.delete(listener);
  }

  /**
   * Calls `listener` each time a stream stops counting as open (ended by the
   * server, cancelled by the client, or its connection died); returns the
   * unsubscribe function.
   */
  onStreamClosed(listener: (info: StreamClosedInfo) => void): () => void {
    this.closedListeners.add(listener);
    return () => this.closedListeners.delete(listener);
  }

  /**
   * Opens a stream for `clientId` and yields its events until it is ended or
   * `signal` aborts; leaving the generator in any way unsubscribes it.
   * `onOpen` runs once the stream is subscribed, before any listener hears of it.
   */
  async *subscribe(clientId: string, signal: AbortSignal, onOpen: () => void = () => {}): AsyncGenerator<ProjectEvent, void, undefined> {
    const stream = new EventStream(clientId, this.bufferSize, () => this.eventsSent++);
    this.streams.add(stream);
    this.streamsOpened++;
    try {
      onOpen();
      const info: StreamOpenedInfo = { clientId, openStreams: this.streams.size };
      for (const listener of [...this.openedListeners]) listener(info);
      yield* stream.drain(signal);
    } finally {
      this.detach(stream);
    }
  }

  /** Removes `stream` from the open set, telling listeners once. */
  private detach(stream: EventStream): void {
    if (!this.streams.delete(stream)) return;
    const info: StreamClosedInfo = { clientId: stream.clientId, openStreams: this.streams.size };
    for (const listener of [...this.closedListeners]) listener(info);
  }

  stats(): EventHubStats {
    return {
      openStreams: this.streams.size,
      streamsOpened: this.streamsOpened,
      eventsSent: this.eventsSent,
      eventsDropped: this.eventsDropped,
    };
  }
}
