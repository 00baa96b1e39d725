/** Reads command lines from stdin (`serve`, `dev`), with an optional prompt on a TTY. */
import { createInterface, type Interface } from "node:readline";

export interface LineReaderOptions {
  input: NodeJS.ReadableStream & { isTTY?: boolean };
  /** Where the prompt goes; a prompt is shown only when given and input is a TTY. */
  promptOutput?: NodeJS.WritableStream | undefined;
  prompt?: string;
  onLine: (line: string) => void | Promise<void>;
  /** Called once when the input ends (after its last line was handled). Defaults to nothing. */
  onEnd?: () => void;
}

export interface LineReader {
  /** Shows the prompt again (after output). */
  prompt(): void;
  close(): void;
}

/** Lines are handled one at a time, in order; stdin reaching its end just stops the reading. */
export function readCommandLines(options: LineReaderOptions): LineReader {
  const tty = options.input.isTTY === true && options.promptOutput !== undefined;
  const rl: Interface = createInterface({
    input: options.input,
    ...(tty && options.promptOutput ? { output: options.promptOutput, terminal: true } : { terminal: false }),
  });
  if (tty) rl.setPrompt(options.prompt ?? "> ");
  let chain = Promise.resolve();
  let closed = false;
  rl.on("line", (line) => {
    chain = chain
      .then(() => options.onLine(line))
      .catch(() => {})
      .then(() => {
        if (tty && !closed) rl.prompt();
      });
  });
  rl.on("close", () => {
    const ended = !closed;
    closed = true;
    if (ended && options.onEnd) void chain.then(options.onEnd);
  });
  // On a TTY, readline turns Ctrl-C into its own event: make it the real signal again.
  rl.on("SIGINT", () => process.kill(process.pid, "SIGINT"));
  if (tty) rl.prompt();
  return {
    prompt: () => {
      if (tty && !closed) rl.prompt(true);
    },
    close: () => {
      closed = true;
      rl.close();
      if ("pause" in options.input && typeof options.input.pause === "function") options.input.pause();
    },
  };
}
