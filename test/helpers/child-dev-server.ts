/**
 * The dev server in a child process, so a test can crash it for real
 * (SIGKILL: no GOAWAY, no graceful close, the kernel tears the sockets down).
 * Run as a script it is the child; imported it gives the parent's
 * `spawnDevServer()`. The child listens on 127.0.0.1 only.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

const selfPath = fileURLToPath(import.meta.url);

type Command = { op: "createProject" | "removeProject"; id: string; reason?: string };

export interface ChildDevServer {
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  createProject(id: string): void;
  removeProject(id: string, reason?: string): void;
  /** Kills the child with SIGKILL and resolves when it is gone. */
  crash(): Promise<void>;
  /** Ends the child gracefully (idempotent). */
  close(): Promise<void>;
}

/**
 * Starts the dev server in a child process on `port` (0: a free one) with
 * `projects` created before it listens; resolves once it listens.
 */
export async function spawnDevServer(options: { port?: number; projects?: string[]; timeoutMs?: number } = {}): Promise<ChildDevServer> {
  const child: ChildProcess = spawn(process.execPath, ["--import", "tsx", selfPath], {
    env: {
      ...process.env,
      CHILD_DEV_SERVER_PORT: String(options.port ?? 0),
      CHILD_DEV_SERVER_PROJECTS: JSON.stringify(options.projects ?? []),
    },
    stdio: ["ignore", "pipe", "inherit", "ipc"],
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error("child dev server did not start in time"));
    }, options.timeoutMs ?? 15_000);
    child.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /READY (\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`child dev server exited with ${code} before it listened: ${out}`));
    });
  });
  const send = (cmd: Command) => {
    if (child.connected) child.send(cmd);
  };
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    pid: child.pid ?? -1,
    createProject: (id) => send({ op: "createProject", id }),
    removeProject: (id, reason) => send({ op: "removeProject", id, ...(reason === undefined ? {} : { reason }) }),
    async crash() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await exited;
    },
    async close() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      await exited;
    },
  };
}

async function runChild(): Promise<void> {
  const { startDevServer } = await import("../../src/dev-server/index.js");
  const { ProjectStore } = await import("../../src/dev-server/index.js");
  const store = new ProjectStore();
  for (const id of JSON.parse(process.env["CHILD_DEV_SERVER_PROJECTS"] ?? "[]") as string[]) store.create(id, Date.now());
  const server = await startDevServer({ port: Number(process.env["CHILD_DEV_SERVER_PORT"] ?? 0), store });
  process.on("message", (msg: Command) => {
    if (msg.op === "createProject") server.createProject(msg.id);
    else if (msg.op === "removeProject") server.removeProject(msg.id, msg.reason);
  });
  process.on("SIGTERM", () => {
    void server.close().then(() => process.exit(0));
  });
  // Leave with the parent.
  process.on("disconnect", () => process.exit(0));
  process.stdout.write(`READY ${server.port}\n`);
}

if (process.argv[1] === selfPath) void runChild();
