/** `start` (what `npm start` runs): `dev` without ENGRAM_URL, else the `run` sidecar. */
import { exitCodes } from "./cli-args.js";
import type { CliCommand, CliContext } from "./cli-context.js";
import { devCommand } from "./dev-command.js";
import { runCommand } from "./run-command.js";

const help = `Usage: engram-serverevents start [options]

What "npm start" runs. Without ENGRAM_URL (or the deprecated
ENGRAM_SERVER_URL) in the environment it runs "dev": a dev server on
loopback, a bridge against it and a demo you can watch or drive. With
ENGRAM_URL set it runs "run", the sidecar. The options are those of the
command it picks: see "dev --help" and "run --help".

Exit codes: those of the command it runs.`;

export function pickStartTarget(env: CliContext["env"]): "dev" | "run" {
  const set = (v: string | undefined) => v !== undefined && v.trim() !== "";
  return set(env.ENGRAM_URL) || set(env.ENGRAM_SERVER_URL) ? "run" : "dev";
}

export const startCommand: CliCommand = {
  name: "start",
  summary: "dev without ENGRAM_URL, else run (what npm start runs)",
  help,
  async run(argv, ctx) {
    if (argv.length === 1 && (argv[0] === "--help" || argv[0] === "-h")) {
      ctx.out(`${help}\n`);
      return exitCodes.ok;
    }
    const target = pickStartTarget(ctx.env) === "run" ? runCommand : devCommand;
    return target.run(argv, ctx);
  },
};
