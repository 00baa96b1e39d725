/**
 * `dev`: a dev server on loopback, a bridge against it, demo projects and
 * sessions, and either a prompt (stdin a terminal, or --interactive) or a
 * scripted demo, so a person can watch every path of the bridge happen.
 */
import { parseArgs } from "node:util";
import { createBridge } from "../bridge.js";
import { startDevServer, type DevServer } from "../dev-server/index.js";
import { BridgeError } from "../errors.js";
import { HandlerRegistry } from "../handler-registry.js";
import { SessionTracker } from "../session-tracker.js";
import type { BridgeTiming } from "../timing.js";
import type { RemovalInfo } from "../types.js";
import { exitCodes, intFlag, isUsageError, parseOrUsage, usageError } from "./cli-args.js";
import type { CliCommand, CliContext } from "./cli-context.js";
import { parseCommandLine, runServerCommand, serverCommandsHelp } from "./control-commands.js";
import { demoProjects, ghostProject, runDemoScript } from "./demo-script.js";
import { createDevLinePrinter, createDevLogger, printBridgeActivity } from "./dev-printer.js";
import { inspectByDefault, loadInspectHook, type InspectSession } from "./inspect-hook.js";
import { readCommandLines } from "./line-reader.js";
import { readTimingFlags, timingFlagOptions, timingFlagsHelp } from "./timing-flags.js";

/** dev's timing: short enough to watch every path within seconds. */
export const devTiming: Partial<BridgeTiming> = {
  backoffMinMs: 500,
  backoffMaxMs: 5000,
  openConfirmMs: 500,
  heartbeatMs: 10_000,
  heartbeatJitterMs: 1000,
  syncTimeoutMs: 3000,
  handlerTimeoutMs: 3000,
  stopTimeoutMs: 3000,
};

const promptCommandsHelp = `  create ID...           create projects on the server
  remove ID [REASON]     remove a project on the server: the stream delivers it
  connect ID             open a session on ID (the heartbeat reports the ids with sessions)
  disconnect ID          close one session on ID
  drop                   drop every stream: watch the backoff, the reconnect and the resync
  fail-sync N [CODE]     fail the next N heartbeats on the server
  sync                   ask the bridge for a heartbeat now
  status                 the bridge's status()
  help                   this list
  quit                   stop the bridge and the server and exit (Ctrl-C or Ctrl-D too)
more server commands:
${serverCommandsHelp
  .split("\n")
  .filter((l) => /^\s+(end|delay-sync|reject|stats)\b/.test(l))
  .join("\n")}`;

const help = `Usage: engram-serverevents dev [options]

Starts a dev server on loopback and a bridge against it, with demo projects
(${demoProjects.join(", ")}) and sessions on them plus one on "${ghostProject}", a project the
server never heard of (the first heartbeat reports it removed). Prints what
happens: connection states, heartbeats, removals with their source and
delivery latency, duplicates, warnings and errors.

On a terminal it reads commands from a prompt:
${promptCommandsHelp}

When stdin is not a terminal it runs a scripted demo instead: a removal every
--step-ms, one stream drop and the reconnect, one failed heartbeat, then a
new project created and removed every other step, until Ctrl-C or SIGTERM.

Options:
  --port N              dev server port (default 0: a free one)
  --token TOKEN         dev server token, also used by the bridge (default: none)
  --interactive         read commands from stdin even when it is not a terminal
  --demo                run the scripted demo even on a terminal
  --step-ms N           time between demo steps (default 2000)
  --exit-after-ms N     stop by itself after N ms, as on SIGTERM (default: never)
  --inspect / --no-inspect   attach the statechart inspector on loopback and print its URL (default: on)
  --verbose             also print the bridge's debug and info log lines
  -h, --help            this help

${timingFlagsHelp}
(dev's own defaults: heartbeat 10 s ± 1 s, backoff 0.5–5 s, handler and stop budgets 3 s.)

Exit codes: 0 stopped by quit, --exit-after-ms or the first SIGINT, SIGTERM
or SIGHUP; 1 the dev server could not listen; 2 usage error; 129/130/143 a
second SIGHUP/SIGINT/SIGTERM.`;

export const devCommand: CliCommand = {
  name: "dev",
  summary: "dev server + bridge + demo on loopback, with a prompt or a scripted demo",
  help,
  async run(argv, ctx) {
    const { values } = parseOrUsage(() =>
      parseArgs({
        args: argv,
        strict: true,
        allowPositionals: false,
        options: {
          port: { type: "string" },
          token: { type: "string" },
          interactive: { type: "boolean" },
          demo: { type: "boolean" },
          "step-ms": { type: "string" },
          "exit-after-ms": { type: "string" },
          inspect: { type: "boolean" },
          "no-inspect": { type: "boolean" },
          verbose: { type: "boolean" },
          help: { type: "boolean", short: "h" },
          ...timingFlagOptions,
        },
      }),
    );
    if (values.help) {
      ctx.out(`${help}\n`);
      return exitCodes.ok;
    }
    if (values.interactive && values.demo) throw usageError("--interactive and --demo exclude each other");
    if (values.inspect && values["no-inspect"]) throw usageError("--inspect and --no-inspect exclude each other");
    if (values.token === "") throw usageError("--token must not be empty");
    const port = intFlag(values.port, "port", 0, 65535) ?? 0;
    const stepMs = intFlag(values["step-ms"], "step-ms", 1) ?? 2000;
    const exitAfterMs = intFlag(values["exit-after-ms"], "exit-after-ms", 1);
    const timing = readTimingFlags(values, devTiming);
    const interactive = values.interactive === true || (values.demo !== true && ctx.stdin.isTTY === true);
    const inspect = values.inspect === true || (values["no-inspect"] !== true && inspectByDefault);

    // On a terminal, output arriving while the prompt shows replaces the prompt line and redraws it after.
    let redrawPrompt: (() => void) | undefined;
    const write = (text: string): void => {
      if (redrawPrompt === undefined) return ctx.out(text);
      ctx.out(`\r\x1b[2K${text}`);
      redrawPrompt();
    };
    const print = createDevLinePrinter(write);
    const logger = createDevLogger(print, values.verbose === true);

    let server: DevServer;
    try {
      server = await startDevServer({ port, host: "127.0.0.1", token: values.token });
    } catch (err) {
      ctx.err(`dev: cannot start the dev server: ${err instanceof BridgeError ? err.rawMessage : (err as Error).message}\n`);
      return exitCodes.failure;
    }

    let inspector: InspectSession | undefined;
    if (inspect) {
      const hook = await loadInspectHook();
      if (hook === undefined) print("inspect", "no inspector in this build: going on without it");
      else {
        inspector = await hook({ logger, signal: ctx.shutdown.signal });
        print("inspect", inspector.url === undefined ? "inspector attached" : `watch the statechart at ${inspector.url}`);
      }
    }

    // What the dev CLI removed and when, for the end-to-end latency of each removal.
    const issuedAt = new Map<string, number>();
    const sessions = new SessionTracker();
    const registry = new HandlerRegistry();
    registry.register({
      name: "dev-console",
      onProjectRemoved(projectId: string, info: RemovalInfo) {
        print("REMOVED", `${projectId} via ${info.source}${describeInfo(info)}${latencyOf(projectId, info, issuedAt)}`);
        let closed = 0;
        while (sessions.sessionCount(projectId) > 0) {
          sessions.disconnect(projectId);
          closed++;
        }
        if (closed > 0) print("handler", `closed ${closed} session(s) on ${projectId}`);
      },
    });

    for (const id of demoProjects) server.createProject(id);
    for (const id of [...demoProjects, "beta", ghostProject]) sessions.connect(id);

    const bridge = createBridge({
      registry,
      tracker: sessions,
      serverUrl: server.url,
      token: values.token,
      env: {},
      logger,
      timing,
      clientId: `dev-${process.pid}`,
      inspect: inspector?.observer,
    });
    const stopPrinting = printBridgeActivity(bridge, print);
    const remove = (projectId: string, reason: string) => {
      issuedAt.set(projectId, performance.now());
      const event = server.removeProject(projectId, reason);
      print("server", `removed ${projectId} (event ${event.eventId}, reason "${reason}")`);
    };

    const t = bridge.actor.getSnapshot().context.timing;
    print("server", `dev server on ${server.url} (loopback only${values.token ? ", token required" : ""})`);
    print(
      "dev",
      `projects on the server: ${demoProjects.join(", ")}; sessions on each (two on beta) and on ${ghostProject}, which the server does not know`,
    );
    print(
      "dev",
      `heartbeat every ${t.heartbeatMs / 1000} s ± ${t.heartbeatJitterMs / 1000} s, handler budget ${t.handlerTimeoutMs} ms, stop budget ${t.stopTimeoutMs} ms`,
    );
    print("dev", interactive ? `type "help" for the commands; Ctrl-C stops` : `scripted demo, a step every ${stepMs} ms; Ctrl-C stops`);

    const exitTimer = exitAfterMs === undefined ? undefined : setTimeout(() => ctx.shutdown.request("exit-after"), exitAfterMs);
    bridge.start();

    let demo: Promise<void> | undefined;
    let reader: ReturnType<typeof readCommandLines> | undefined;
    if (interactive) {
      reader = readCommandLines({
        input: ctx.stdin,
        promptOutput: process.stdout,
        prompt: "engram> ",
        onLine: (line) => handlePromptLine(line, { ctx, server, bridge, sessions, issuedAt, print, remove }),
        onEnd: () => ctx.shutdown.request("end of input"),
      });
      if (ctx.stdin.isTTY === true) redrawPrompt = () => reader?.prompt();
    } else {
      demo = runDemoScript({ server, bridge, sessions, remove, print, stepMs, signal: ctx.shutdown.signal });
    }

    const reason = await ctx.shutdown.requested;
    clearTimeout(exitTimer);
    if (redrawPrompt !== undefined) ctx.out("\r\x1b[2K");
    redrawPrompt = undefined;
    reader?.close();
    await demo;
    print("dev", `stopping (${reason}): the bridge first, then the server`);
    const t0 = performance.now();
    await bridge.stop();
    print("dev", `bridge stopped in ${Math.round(performance.now() - t0)} ms`);
    stopPrinting();
    await inspector?.close();
    await server.close();
    return exitCodes.ok;
  },
};

interface PromptDeps {
  ctx: CliContext;
  server: DevServer;
  bridge: ReturnType<typeof createBridge>;
  sessions: SessionTracker;
  issuedAt: Map<string, number>;
  print: (tag: string, message: string) => void;
  remove: (projectId: string, reason: string) => void;
}

function handlePromptLine(line: string, d: PromptDeps): void {
  const { print } = d;
  try {
    const cmd = parseCommandLine(line);
    if (cmd === undefined) return;
    const [id] = cmd.args;
    switch (cmd.name) {
      case "help":
        d.ctx.out(`${promptCommandsHelp}\n`);
        return;
      case "quit":
      case "exit":
        d.ctx.shutdown.request("quit");
        return;
      case "remove": {
        if (id === undefined || id === "") throw usageError("remove needs an ID");
        d.remove(id, cmd.args.slice(1).join(" "));
        return;
      }
      case "connect":
        if (id === undefined || id === "") throw usageError("connect needs an ID");
        d.sessions.connect(id);
        print("sessions", `opened a session on ${id} (${d.sessions.sessionCount(id)} now); the next heartbeat reports it`);
        return;
      case "disconnect":
        if (id === undefined || id === "") throw usageError("disconnect needs an ID");
        d.sessions.disconnect(id);
        print("sessions", `${d.sessions.sessionCount(id)} session(s) left on ${id}`);
        return;
      case "sync":
        d.bridge.syncNow();
        print("dev", "heartbeat requested");
        return;
      case "status":
        d.ctx.out(`${JSON.stringify(d.bridge.status(), null, 2)}\n`);
        return;
      default: {
        const result = runServerCommand(d.server, cmd);
        if (result === undefined) throw usageError(`unknown command "${cmd.name}" (try help)`);
        print("server", result);
        if (cmd.name === "fail-sync") print("dev", `type "sync" to heartbeat now`);
      }
    }
  } catch (err) {
    print("error", isUsageError(err) ? err.rawMessage : (err as Error).message);
  }
}

function describeInfo(info: RemovalInfo): string {
  const parts: string[] = [];
  if (info.eventId !== undefined) parts.push(`event ${info.eventId}`);
  if (info.reason !== undefined) parts.push(`reason "${info.reason}"`);
  return parts.length === 0 ? "" : ` (${parts.join(", ")})`;
}

function latencyOf(projectId: string, info: RemovalInfo, issuedAt: Map<string, number>): string {
  const at = issuedAt.get(projectId);
  if (at !== undefined) {
    issuedAt.delete(projectId);
    return `, delivered ${(performance.now() - at).toFixed(1)} ms after the server removed it`;
  }
  if (info.timestampUnixMs !== undefined)
    return `, delivered ${Math.max(0, Date.now() - info.timestampUnixMs)} ms after the server's timestamp`;
  return "";
}
