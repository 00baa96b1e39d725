/**
 * `serve`: the reference engram server alone, for daemons in other
 * languages and for tests. Prints its URL as the first stdout line, then
 * what happens (streams, heartbeats, command results); stdin takes the
 * control commands (create, remove, drop, …).
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { defaultHttpPort, isLoopbackHost } from "../server-url.js";
import { startDevServer, type DevServer } from "../dev-server/index.js";
import { BridgeError } from "../errors.js";
import { capacityFlagOptions, capacityFlagsHelp, capacityFromFlags } from "./capacity-flags.js";
import { exitCodes, intFlag, isUsageError, parseOrUsage, usageError } from "./cli-args.js";
import type { CliCommand, CliContext } from "./cli-context.js";
import { parseCommandLine, runServerCommand, serverCommandsHelp } from "./control-commands.js";
import { readCommandLines } from "./line-reader.js";

const help = `Usage: engram-serverevents serve [options]

Runs the reference engram server (engram.v1.EngramService over gRPC/HTTP/2)
alone, for a daemon in another language or a test. The first line on stdout
is its URL; later lines report streams, heartbeats and command results.
Commands are read from stdin, one per line; reaching the end of stdin does
not stop the server (SIGINT/SIGTERM or "quit" does). A stop is graceful: the
server sends GOAWAY, refuses new calls and gives open calls up to 5 s to end
(a bridge ends its stream at once) before it resets them.

Options:
  --port N              port to listen on, 0 for a free one (default 37777, the engram default)
  --host HOST           address to listen on (default 127.0.0.1; anything else is reachable from the network)
  --token TOKEN         require "authorization: Bearer TOKEN" on every RPC but Ping
  --tls-cert FILE       serve HTTPS with this PEM certificate (needs --tls-key)
  --tls-key FILE        the PEM private key of --tls-cert
  --create ID           create a live project at start (repeatable)
  --quiet               print only the URL and command results, not streams and heartbeats
${capacityFlagsHelp}
  -h, --help            this help

stdin commands:
${serverCommandsHelp}
  help                   list the commands
  quit                   stop the server and exit

Exit codes: 0 stopped by quit or the first SIGINT, SIGTERM or SIGHUP; 1 cannot
listen or read a TLS file; 2 usage error; 129/130/143 a second
SIGHUP/SIGINT/SIGTERM (stops at once).`;

/** How long open calls get to end after a stop request before they are reset. */
const shutdownTimeoutMs = 5000;

export const serveCommand: CliCommand = {
  name: "serve",
  summary: "the dev server alone, printing its URL (for other daemons and tests)",
  help,
  async run(argv, ctx) {
    const { values } = parseOrUsage(() =>
      parseArgs({
        args: argv,
        strict: true,
        allowPositionals: false,
        options: {
          port: { type: "string" },
          host: { type: "string" },
          token: { type: "string" },
          "tls-cert": { type: "string" },
          "tls-key": { type: "string" },
          create: { type: "string", multiple: true },
          quiet: { type: "boolean" },
          ...capacityFlagOptions,
          help: { type: "boolean", short: "h" },
        },
      }),
    );
    if (values.help) {
      ctx.out(`${help}\n`);
      return exitCodes.ok;
    }
    const port = intFlag(values.port, "port", 0, 65535) ?? defaultHttpPort;
    const host = values.host ?? "127.0.0.1";
    if ((values["tls-cert"] === undefined) !== (values["tls-key"] === undefined)) {
      throw usageError("--tls-cert and --tls-key go together");
    }
    if (values.token === "") throw usageError("--token must not be empty");
    const capacity = capacityFromFlags(values);
    let tls: { cert: Buffer; key: Buffer } | undefined;
    if (values["tls-cert"] !== undefined && values["tls-key"] !== undefined) {
      try {
        tls = { cert: readFileSync(values["tls-cert"]), key: readFileSync(values["tls-key"]) };
      } catch (err) {
        ctx.err(`serve: cannot read the TLS files: ${(err as Error).message}\n`);
        return exitCodes.failure;
      }
    }
    if (!isLoopbackHost(host)) ctx.err(`serve: listening on ${host}: reachable from the network, not just this machine\n`);

    let server: DevServer;
    try {
      server = await startDevServer({ port, host, token: values.token, tls, capacity });
    } catch (err) {
      ctx.err(`serve: cannot listen on ${host}:${port}: ${err instanceof BridgeError ? err.rawMessage : (err as Error).message}\n`);
      return exitCodes.failure;
    }
    ctx.out(`${server.url}\n`);
    for (const id of values.create ?? []) server.createProject(id);
    const unsubscribe: Array<() => void> = [];
    if (!values.quiet) {
      unsubscribe.push(
        server.onStreamOpened((i) => ctx.out(`stream opened by ${JSON.stringify(i.clientId)} (${i.openStreams} open)\n`)),
        server.onStreamClosed((i) => ctx.out(`stream closed for ${JSON.stringify(i.clientId)} (${i.openStreams} open)\n`)),
        server.onSyncCall((i) => ctx.out(`heartbeat from ${JSON.stringify(i.clientId)}: ${i.reportedIds} id(s) reported\n`)),
      );
    }
    const reader = readCommandLines({
      input: ctx.stdin,
      onLine: (line) => handleLine(line, ctx, () => ctx.shutdown.request("quit"), server),
    });
    const reason = await ctx.shutdown.requested;
    reader.close();
    for (const off of unsubscribe) off();
    const open = server.stats().openStreams;
    const stopped = server.shutdown({ timeoutMs: shutdownTimeoutMs });
    if (open > 0) ctx.err(`serve: stopping (${reason}): GOAWAY sent, ${open} stream(s) get up to ${shutdownTimeoutMs} ms to end\n`);
    const { callsReset } = await stopped;
    ctx.err(`serve: stopped (${reason})${callsReset > 0 ? `; ${callsReset} call(s) still open were reset` : ""}\n`);
    return exitCodes.ok;
  },
};

function handleLine(line: string, ctx: CliContext, quit: () => void, server: Parameters<typeof runServerCommand>[0]): void {
  try {
    const cmd = parseCommandLine(line);
    if (cmd === undefined) return;
    if (cmd.name === "quit" || cmd.name === "exit") return quit();
    if (cmd.name === "help") return ctx.out(`${serverCommandsHelp}\n  help\n  quit\n`);
    const result = runServerCommand(server, cmd);
    ctx.out(result === undefined ? `error: unknown command "${cmd.name}" (try help)\n` : `${result}\n`);
  } catch (err) {
    ctx.out(`error: ${isUsageError(err) ? err.rawMessage : (err as Error).message}\n`);
  }
}
