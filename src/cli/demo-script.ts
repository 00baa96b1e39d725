/**
 * `dev`'s scripted demo (stdin not a terminal, or --demo): a removal every
 * step, one stream drop and the reconnect, one failed heartbeat, then a new
 * project created and removed every other step until the shutdown.
 */
import type { Bridge } from "../bridge.js";
import type { DevServer } from "../dev-server/index.js";
import type { SessionTracker } from "../session-tracker.js";

export interface DemoScriptOptions {
  server: DevServer;
  bridge: Bridge;
  sessions: SessionTracker;
  /** Removes a project on the server, recording when (for the latency). */
  remove: (projectId: string, reason: string) => void;
  print: (tag: string, message: string) => void;
  /** Time between steps, in ms. */
  stepMs: number;
  /** Ends the demo (the shutdown). */
  signal: AbortSignal;
}

/** The demo's projects: created on the server and opened by a session before the bridge starts. */
export const demoProjects = ["alpha", "beta", "gamma", "delta"] as const;
/** A session on a project the server never heard of: the first heartbeat reports it removed. */
export const ghostProject = "ghost";

/** Runs until `signal` aborts; resolves then (never rejects). */
export async function runDemoScript(o: DemoScriptOptions): Promise<void> {
  const steps: Array<() => void> = [
    () => o.remove("alpha", "deleted by its owner"),
    () => o.remove("beta", "archived"),
    () => {
      o.print("demo", "dropping every stream: watch the bridge back off, reconnect and resync");
      o.server.dropStreams();
    },
    () => o.remove("gamma", "deleted by its owner"),
    () => {
      o.print("demo", "the next heartbeat fails on the server; asking for one now");
      o.server.failNextSyncs(1);
      o.bridge.syncNow();
    },
    () => o.remove("delta", "moved to another server"),
  ];
  for (let i = 0; ; i++) {
    if (!(await sleep(o.stepMs, o.signal))) return;
    const step = steps[i];
    if (step !== undefined) {
      step();
      continue;
    }
    const n = Math.floor((i - steps.length) / 2) + 1;
    const id = `demo-${n}`;
    if ((i - steps.length) % 2 === 0) {
      o.server.createProject(id);
      o.sessions.connect(id);
      o.print("demo", `created ${id} on the server and opened a session on it`);
    } else {
      o.remove(id, "demo cleanup");
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve(true);
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
