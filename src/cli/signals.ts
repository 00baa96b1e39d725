/**
 * The CLI's shutdown: the first SIGINT, SIGTERM or SIGHUP (or a `quit`, or
 * an `--exit-after-ms`) asks for a graceful stop; a second signal runs the
 * registered force hooks (kill children) and exits at once with 128 + the
 * signal number. SIGHUP is a stop, not a reload: a closed terminal or a
 * supervisor's hangup must not end the process without a clean stop (Node's
 * default for SIGHUP) and leave detached children behind.
 */

const signalNumbers = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 } as const;
type HandledSignal = keyof typeof signalNumbers;

export interface Shutdown {
  /** Aborts at the first request; its reason is the signal name or the request's reason. */
  readonly signal: AbortSignal;
  /** Resolves with the reason at the first request. */
  readonly requested: Promise<string>;
  /** Asks for a graceful stop (as the first signal does). */
  request(reason: string): void;
  /** Registers a synchronous hook run before a forced exit (a second signal). */
  onForce(hook: () => void): void;
  /** Removes the signal listeners. */
  dispose(): void;
}

export interface ShutdownOptions {
  /** Where a forced exit is announced. Defaults to process.stderr. */
  write?: (line: string) => void;
  /** Ends the process. Defaults to process.exit. */
  exit?: (code: number) => never;
}

export function createShutdown(options: ShutdownOptions = {}): Shutdown {
  const write = options.write ?? ((line: string) => void process.stderr.write(line));
  const exit = options.exit ?? ((code: number) => process.exit(code));
  const controller = new AbortController();
  const hooks: Array<() => void> = [];
  let resolveRequested!: (reason: string) => void;
  const requested = new Promise<string>((resolve) => (resolveRequested = resolve));

  const request = (reason: string): void => {
    if (controller.signal.aborted) return;
    controller.abort(reason);
    resolveRequested(reason);
  };
  const onSignal = (sig: HandledSignal): void => {
    if (!controller.signal.aborted) {
      request(sig);
      return;
    }
    write(`received ${sig} again: exiting now\n`);
    for (const hook of hooks.splice(0)) {
      try {
        hook();
      } catch {
        // A forced exit goes on regardless.
      }
    }
    exit(128 + signalNumbers[sig]);
  };
  const listeners = (Object.keys(signalNumbers) as HandledSignal[]).map((sig) => {
    const fn = () => onSignal(sig);
    process.on(sig, fn);
    return () => process.off(sig, fn);
  });

  return {
    signal: controller.signal,
    requested,
    request,
    onForce: (hook) => void hooks.push(hook),
    dispose: () => {
      for (const off of listeners) off();
    },
  };
}
