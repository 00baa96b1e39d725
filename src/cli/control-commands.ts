/**
 * The line commands that drive a dev server from stdin (`serve`, and `dev`
 * on top of its own): a small tokenizer and the server-side commands.
 */
import { Code } from "@connectrpc/connect";
import { type DevServer, statusCodeName, toStatusCode } from "../dev-server/index.js";
import { usageError } from "./cli-args.js";
import { commandInt, maxCommandInt } from "./command-numbers.js";

export interface CommandLine {
  name: string;
  args: string[];
}

/**
 * Splits a command line on whitespace. A token may be a JSON string
 * (`"x; rm -rf /"`) to hold spaces or quotes. Returns undefined for a blank
 * line or a `#` comment.
 */
export function parseCommandLine(line: string): CommandLine | undefined {
  const tokens: string[] = [];
  const re = /"(?:[^"\\]|\\.)*"|\S+/g;
  for (const m of line.matchAll(re)) {
    const raw = m[0];
    if (raw.startsWith('"') && raw.length >= 2 && raw.endsWith('"')) {
      try {
        tokens.push(JSON.parse(raw) as string);
        continue;
      } catch {
        throw usageError(`bad quoted string ${raw}`);
      }
    }
    tokens.push(raw);
  }
  const [name, ...args] = tokens;
  if (name === undefined || name.startsWith("#")) return undefined;
  return { name: name.toLowerCase(), args };
}

/** The help lines of the server commands. */
export const serverCommandsHelp = `  create ID...           create live projects on the server (no event is sent)
  remove ID [REASON]     remove a project: the server sends a REMOVED event to every stream
  drop                   end every open stream with UNAVAILABLE (clients reconnect)
  end                    end every open stream cleanly (OK)
  fail-sync N [CODE]     fail the next N SyncProjectState calls (default CODE unavailable)
  delay-sync MS          answer SyncProjectState after MS (0 lifts it)
  reject CODE|off        refuse new ProjectEvents calls with CODE (e.g. unauthenticated), or stop refusing
  stats                  the server's counters as JSON (tokens only counted, never shown)
  (an ID with spaces or quotes can be written as a JSON string: remove "x; rm -rf /")`;

/** Runs a server command; returns what to print, or undefined when `cmd` is not one. */
export function runServerCommand(server: DevServer, cmd: CommandLine): string | undefined {
  const { name, args } = cmd;
  switch (name) {
    case "create": {
      if (args.length === 0) throw usageError("create needs at least one ID");
      for (const id of args) server.createProject(nonEmptyId(id));
      return `created ${args.join(", ")}`;
    }
    case "remove": {
      const [id, ...reasonWords] = args;
      if (id === undefined) throw usageError("remove needs an ID");
      const reason = reasonWords.join(" ");
      const event = server.removeProject(nonEmptyId(id), reason === "" ? undefined : reason);
      return `removed ${JSON.stringify(id)} (event ${event.eventId}${reason === "" ? "" : `, reason ${JSON.stringify(reason)}`})`;
    }
    case "drop":
      return `dropped ${server.dropStreams()} stream(s)`;
    case "end":
      return `ended ${server.endStreams()} stream(s)`;
    case "fail-sync": {
      const n = commandInt(args[0], "fail-sync N", { min: 0, max: maxCommandInt });
      const code = args[1] === undefined ? Code.Unavailable : codeArg(args[1]);
      server.failNextSyncs(n, code);
      return `the next ${n} SyncProjectState call(s) fail with ${codeName(code)}`;
    }
    case "delay-sync": {
      const ms = commandInt(args[0], "delay-sync MS", { min: 0, max: maxCommandInt });
      server.setSyncDelayMs(ms);
      return ms === 0 ? "SyncProjectState answers at once" : `SyncProjectState answers after ${ms} ms`;
    }
    case "reject": {
      const arg = args[0];
      if (arg === undefined) throw usageError("reject needs a CODE or off");
      if (arg === "off") {
        server.rejectStreams(undefined);
        return "new streams are accepted";
      }
      const code = codeArg(arg);
      server.rejectStreams(code);
      return `new streams are refused with ${codeName(code)}`;
    }
    case "stats": {
      // The dev server keeps the tokens it saw, for in-process tests; a terminal only gets their count.
      const { tokensSeen, ...stats } = server.stats();
      const distinctTokensSeen = Object.fromEntries(Object.entries(tokensSeen).map(([rpc, tokens]) => [rpc, tokens.length]));
      return JSON.stringify({ ...stats, distinctTokensSeen });
    }
    default:
      return undefined;
  }
}

function nonEmptyId(id: string): string {
  if (id === "") throw usageError("a project id must not be empty");
  return id;
}

/** "unavailable", "PERMISSION_DENIED", "PermissionDenied" or 7 → Code. */
export function codeArg(value: string): Code {
  const code = toStatusCode(value);
  if (code === undefined) throw usageError(`unknown gRPC code "${value}"`);
  return code;
}

function codeName(code: Code): string {
  return statusCodeName(code);
}
