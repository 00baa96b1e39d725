/**
 * Runs the CLI's main() in the test's own process with captured output: for
 * usage errors and help texts, which need no process of their own.
 */
import { PassThrough, Writable } from "node:stream";
import { main } from "../../src/cli/main.js";

export /** Runs main() in this process with captured output (for what needs no process of its own). */
async function runInProcess(args: string[], env: Record<string, string | undefined> = {}) {
  let out = "";
  let err = "";
  const sink = (append: (s: string) => void) =>
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        append(chunk.toString());
        cb();
      },
    });
  const stdin = new PassThrough();
  stdin.end();
  const code = await main(args, { stdout: sink((s) => (out += s)), stderr: sink((s) => (err += s)), stdin, env });
  return { code, out, err };
}
