/**
 * The CLI's output channels, made safe for a reader that is slow, paused or
 * gone.
 *
 * `createLineOutput` (stdout, the removal lines) honours back-pressure: a
 * line is handed to the stream in order, and its write() promise resolves
 * only once the stream took it without asking to wait (write() returned
 * true, or its 'drain' came). A caller that awaits it (the stdout removal
 * handler) therefore pauses while the pipe is full. A caller that stops
 * waiting (the dispatcher timed the handler out) loses nothing: its line
 * stays queued in order. The queue is bounded (`maxQueuedLines`): past it a
 * line is dropped and counted, never buffered without bound. flush() waits,
 * up to a deadline, until every line is written to the descriptor and says
 * how many were not.
 *
 * `createLogSink` (stderr, the logs) never waits: past `maxBufferedBytes`
 * of unwritten log text a line is dropped and counted; an error (EPIPE, a
 * closed pipe) turns logging off for good, never the process.
 *
 * Neither throws, and both listen for the stream's asynchronous 'error'
 * events, so EPIPE and EAGAIN never become an uncaught exception.
 */

/** Lines held for stdout beyond what the stream took, by default. */
export const DEFAULT_MAX_QUEUED_LINES = 10_000;
/** Unwritten log text held for stderr before log lines are dropped, by default, in bytes. */
export const DEFAULT_MAX_LOG_BUFFER_BYTES = 1024 * 1024;

export interface LineOutputOptions {
  /** Lines queued (not yet taken by the stream) before new lines are dropped and counted. Defaults to DEFAULT_MAX_QUEUED_LINES (10,000). */
  maxQueuedLines?: number;
  /** Called once when the stream fails (EPIPE, destroyed, …). Defaults to nothing. */
  onError?: (err: Error) => void;
}

export interface LineOutputStats {
  /** Lines the descriptor took (their write callback came without error). */
  written: number;
  /** Lines dropped because the queue was full. */
  dropped: number;
  /** Lines lost because the stream failed before writing them. */
  lost: number;
}

export interface LineOutput {
  /**
   * Queues `text` (whole lines); resolves once the stream took it without
   * back-pressure, or at once when it was dropped or the stream has failed.
   * Never rejects.
   */
  write(text: string): Promise<void>;
  /** Lines not yet written to the descriptor: queued plus handed to the stream but not flushed. */
  readonly unwritten: number;
  /** Whether the stream failed (no line is written after that). */
  readonly failed: boolean;
  readonly stats: Readonly<LineOutputStats>;
  /**
   * Waits until every line is written, the stream failed, or `deadline`
   * (a performance.now() time) passed; resolves with the lines not written
   * (unwritten + dropped + lost).
   */
  flush(deadline: number): Promise<number>;
  /** Stops listening to the stream (its 'error' listener stays, so a late EPIPE is still harmless). */
  dispose(): void;
}

interface Queued {
  text: string;
  resolve: () => void;
}

export function createLineOutput(stream: NodeJS.WritableStream, options: LineOutputOptions = {}): LineOutput {
  const maxQueuedLines = options.maxQueuedLines ?? DEFAULT_MAX_QUEUED_LINES;
  let queue: Queued[] = [];
  let head = 0;
  /** Resolvers of lines the stream took while asking to wait: resolved at 'drain'. */
  let awaitingDrain: Array<() => void> = [];
  let blocked = false;
  let failed = false;
  /** Lines handed to stream.write() whose callback has not come yet. */
  let inStream = 0;
  const stats: LineOutputStats = { written: 0, dropped: 0, lost: 0 };
  const idleWaiters = new Set<() => void>();

  const queued = (): number => queue.length - head;
  const wakeIdle = (): void => {
    for (const w of [...idleWaiters]) w();
  };

  const fail = (err: Error): void => {
    if (failed) return;
    failed = true;
    stats.lost += queued() + inStream;
    inStream = 0;
    for (let i = head; i < queue.length; i++) queue[i]?.resolve();
    queue = [];
    head = 0;
    for (const r of awaitingDrain.splice(0)) r();
    wakeIdle();
    try {
      options.onError?.(err);
    } catch {
      // The output's owner decides what a failure means; it cannot break the output.
    }
  };

  const onWritten = (err?: Error | null): void => {
    if (failed) return;
    inStream--;
    if (err) fail(err);
    else stats.written++;
    if (inStream === 0 && queued() === 0) wakeIdle();
  };

  const pump = (): void => {
    while (!blocked && !failed && head < queue.length) {
      const item = queue[head++] as Queued;
      if (head >= 1024 && head * 2 >= queue.length) {
        queue = queue.slice(head);
        head = 0;
      }
      inStream++;
      let accepted: boolean;
      try {
        accepted = stream.write(item.text, onWritten);
      } catch (err) {
        // write() after end() or on a destroyed stream may throw synchronously on some streams.
        item.resolve();
        fail(err instanceof Error ? err : new Error(String(err)));
        return;
      }
      if (accepted) item.resolve();
      else {
        blocked = true;
        awaitingDrain.push(item.resolve);
      }
    }
  };

  const onDrain = (): void => {
    blocked = false;
    const ready = awaitingDrain;
    awaitingDrain = [];
    for (const r of ready) r();
    pump();
  };
  const onError = (err: Error): void => fail(err);
  const onClose = (): void => {
    if (queued() + inStream > 0) fail(new Error("the stream closed with lines not written"));
  };
  stream.on("drain", onDrain);
  stream.on("error", onError);
  stream.on("close", onClose);

  return {
    write(text) {
      if (failed) {
        stats.lost++;
        return Promise.resolve();
      }
      if (queued() >= maxQueuedLines) {
        stats.dropped++;
        return Promise.resolve();
      }
      return new Promise<void>((resolve) => {
        queue.push({ text, resolve });
        pump();
      });
    },
    get unwritten() {
      return queued() + inStream;
    },
    get failed() {
      return failed;
    },
    stats,
    flush(deadline) {
      const notWritten = (): number => queued() + inStream + stats.dropped + stats.lost;
      if (failed || queued() + inStream === 0) return Promise.resolve(notWritten());
      return new Promise<number>((resolve) => {
        const finish = (): void => {
          clearTimeout(timer);
          idleWaiters.delete(wake);
          resolve(notWritten());
        };
        const wake = (): void => {
          if (failed || queued() + inStream === 0) finish();
        };
        // The timer ends the wait whatever performance.now() says (a timer may fire a little early).
        const timer = setTimeout(finish, Math.max(0, deadline - performance.now()));
        idleWaiters.add(wake);
      });
    },
    dispose() {
      stream.off("drain", onDrain);
      stream.off("close", onClose);
    },
  };
}

export interface LogSinkOptions {
  /** Unwritten log text the stream may hold before lines are dropped, in bytes. Defaults to DEFAULT_MAX_LOG_BUFFER_BYTES (1 MiB). */
  maxBufferedBytes?: number;
}

export interface LogSink {
  /** Writes one log line, or drops it (full buffer) or ignores it (dead stream). Never throws. */
  write(line: string): void;
  /** Whether the stream failed: logging is off. */
  readonly dead: boolean;
  /** Log lines dropped because the stream was behind or dead. */
  readonly dropped: number;
  /** Waits until the stream has written what it holds, it died, or `deadline` (performance.now()) passed. */
  flush(deadline: number): Promise<void>;
}

/** A writer for logs: bounded, never waiting, and silent once its stream fails. */
export function createLogSink(stream: NodeJS.WritableStream, options: LogSinkOptions = {}): LogSink {
  const maxBufferedBytes = options.maxBufferedBytes ?? DEFAULT_MAX_LOG_BUFFER_BYTES;
  let dead = false;
  let dropped = 0;
  const kill = (): void => {
    dead = true;
  };
  stream.on("error", kill);
  stream.on("close", kill);
  const buffered = (): number => (stream as NodeJS.WritableStream & { writableLength?: number }).writableLength ?? 0;
  return {
    write(line) {
      if (dead) {
        dropped++;
        return;
      }
      if (buffered() > maxBufferedBytes) {
        dropped++;
        return;
      }
      try {
        stream.write(line, (err) => {
          if (err) kill();
        });
      } catch {
        kill();
        dropped++;
      }
    },
    get dead() {
      return dead;
    },
    get dropped() {
      return dropped;
    },
    async flush(deadline) {
      while (!dead && buffered() > 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    },
  };
}
