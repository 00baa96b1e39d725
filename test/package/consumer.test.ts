// The package as its users get it: `npm pack`, installed offline into a
// fresh project (see consumer-project.ts), then used there the way a consumer
// would: ESM imports of every entry, a typecheck under node16 and bundler
// resolution with skipLibCheck off, the bin (--help timing, a serve + run
// round trip), the install's package count and size, publint and attw.
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createConsumerProject, installedPackages, repoRoot, runCommand, treeBytes, type ConsumerProject } from "./consumer-project.js";

/** Targets of issue 12: what a consumer install of the tarball may weigh. */
const maxPackages = 8;
const maxBytes = 15_000_000;
/** `--help` may take at most this many times as long as `node -e 0`. */
const maxHelpFactor = 3;
/** Heavy packages the issue moved out of a consumer's install (only devDependencies now). */
const notInstalled = ["@statelyai/inspect", "elkjs", "tsx", "esbuild"];

interface Ctx {
  project: ConsumerProject;
}

const pkgSuite = suite<Ctx>("the package, installed as a consumer installs it", {} as Ctx);

pkgSuite.before(async (ctx) => {
  ctx.project = await createConsumerProject();
});

pkgSuite.after((ctx) => {
  ctx.project?.remove();
});

const tsc = join(repoRoot, "node_modules/typescript/bin/tsc");
const bin = (ctx: Ctx) => join(ctx.project.consumerDir, "node_modules/engram-serverevents/bin/engram-serverevents.js");

/** Runs an ES module's source in the consumer project and returns its stdout. */
async function runModule(ctx: Ctx, name: string, source: string): Promise<string> {
  const file = join(ctx.project.consumerDir, name);
  writeFileSync(file, source);
  return (await runCommand(process.execPath, [file], { cwd: ctx.project.consumerDir, timeoutMs: 30_000 })).stdout;
}

/** Typechecks `files` in the consumer project under `resolution` with skipLibCheck off. */
async function typecheck(ctx: Ctx, resolution: "node16" | "bundler", files: string[]): Promise<void> {
  const name = `tsconfig.${resolution}.${files.join("-").replace(/\W+/g, "_")}.json`;
  const compilerOptions = {
    strict: true,
    noEmit: true,
    skipLibCheck: false,
    target: "ES2022",
    // No "lib": the default for the target, which includes DOM. Connect's own
    // declarations use fetch's HeadersInit, which @types/node does not declare
    // globally; the README says so.
    module: resolution === "node16" ? "node16" : "esnext",
    moduleResolution: resolution,
    types: ["node"],
    typeRoots: [join(repoRoot, "node_modules/@types")],
  };
  writeFileSync(join(ctx.project.consumerDir, name), JSON.stringify({ compilerOptions, files }, null, 2));
  await runCommand(process.execPath, [tsc, "-p", name], { cwd: ctx.project.consumerDir, timeoutMs: 60_000 });
}

pkgSuite("the tarball holds dist/, the bin, the proto, README, LICENSE and the statechart image, and no TypeScript sources", (ctx) => {
  const paths = ctx.project.files.map((f) => f.path);
  for (const want of [
    "package.json",
    "README.md",
    "LICENSE",
    "bin/engram-serverevents.js",
    "proto/engram/v1/engram.proto",
    "docs/bridge-machine.svg",
    "dist/src/index.js",
    "dist/src/index.d.ts",
    "dist/src/cli/main.js",
    "dist/machines/index.js",
    "dist/machines/index.d.ts",
    "dist/inspector/index.js",
    "dist/inspector/page/index.html",
  ]) {
    assert.ok(paths.includes(want), `the tarball holds ${want}`);
  }
  const sources = paths.filter((p) => /\.[cm]?tsx?$/.test(p) && !/\.d\.[cm]?ts$/.test(p));
  assert.equal(sources, [], "no .ts source besides .d.ts");
  assert.equal(
    paths.filter((p) => p.endsWith(".map")),
    [],
    "no source maps (they would point at sources not shipped)",
  );
  assert.equal(
    paths.filter((p) => /^(src|test|bench|scripts|machines|inspector)\//.test(p)),
    [],
    "only dist/ carries code",
  );
  // Every local image the README shows ships with it (npm renders the README).
  const readme = readFileSync(join(repoRoot, "README.md"), "utf8");
  const images = [...readme.matchAll(/!\[[^\]]*\]\(([^)\s]+)\)/g)].map((m) => m[1] as string).filter((u) => !/^[a-z]+:/i.test(u));
  assert.ok(images.length > 0, "the README shows the statechart");
  for (const image of images) assert.ok(paths.includes(image.replace(/^\.\//, "")), `the tarball holds ${image}, which the README shows`);
  const manifest = JSON.parse(readFileSync(join(ctx.project.consumerDir, "node_modules/engram-serverevents/package.json"), "utf8")) as {
    bin: Record<string, string>;
  };
  for (const target of Object.values(manifest.bin))
    assert.ok(target.endsWith(".js") && paths.includes(target.replace(/^\.\//, "")), `bin ${target} is shipped JavaScript`);
});

pkgSuite("the main entry and ./machines import as ESM in a project without the optional peers", async (ctx) => {
  const optionalPeers = Object.entries(ctx.project.pkg.peerDependenciesMeta ?? {})
    .filter(([, meta]) => meta.optional === true)
    .map(([name]) => name);
  for (const name of [...optionalPeers, ...notInstalled])
    assert.not.ok(existsSync(join(ctx.project.consumerDir, "node_modules", name)), `${name} is not installed in the consumer`);
  const out = await runModule(
    ctx,
    "imports.mjs",
    `import * as main from "engram-serverevents";
import * as machines from "engram-serverevents/machines";
import pkg from "engram-serverevents/package.json" with { type: "json" };
console.log(JSON.stringify({ main: Object.keys(main).sort(), machines: Object.keys(machines).sort(), version: pkg.version, machineId: machines.bridgeMachine.id }));
`,
  );
  const got = JSON.parse(out) as { main: string[]; machines: string[]; version: string; machineId: string };
  for (const name of [
    "createBridge",
    "HandlerRegistry",
    "SessionTracker",
    "BridgeError",
    "defaultBridgeTiming",
    "startDevServer",
    "createGrpcEventsClient",
    "ServerGoawayError",
    "SyncDeadlineError",
    "DEFAULT_DEDUP_CAPACITY",
    "timingBounds",
    "parseServerUrl",
    "CONNECTION_CHANGES_BUFFER",
  ]) {
    assert.ok(got.main.includes(name), `"engram-serverevents" exports ${name}`);
  }
  // The machine's values carry xstate's types: they are in ./machines, not the root (issue 22 item 6).
  for (const name of ["bridgeMachine", "createBridgeDelays"]) assert.not.ok(got.main.includes(name), `the root does not export ${name}`);
  assert.equal(
    got.machines,
    ["bridgeMachine", "createBridgeDelays"],
    `"engram-serverevents/machines" exports the machine and what provide() needs, nothing internal`,
  );
  assert.is(got.version, ctx.project.pkg.version);
});

pkgSuite(
  "./inspector imports and typechecks in a project without the optional peers (ws is loaded when an inspector starts)",
  async (ctx) => {
    const out = await runModule(
      ctx,
      "inspector.mjs",
      `import * as inspector from "engram-serverevents/inspector";\nconsole.log(JSON.stringify(Object.keys(inspector).sort()));\n`,
    );
    assert.ok((JSON.parse(out) as string[]).includes("startInspector"), `"engram-serverevents/inspector" exports startInspector`);
    writeFileSync(
      join(ctx.project.consumerDir, "uses-inspector.ts"),
      `import { startInspector, type InspectorHandle } from "engram-serverevents/inspector";
import { createBridge, HandlerRegistry } from "engram-serverevents";
export async function watch(): Promise<InspectorHandle> {
  const inspector = await startInspector();
  const bridge = createBridge({ registry: new HandlerRegistry(), inspect: inspector.inspect });
  await bridge.stop();
  return inspector;
}
`,
    );
    await typecheck(ctx, "node16", ["uses-inspector.ts"]);
    await typecheck(ctx, "bundler", ["uses-inspector.ts"]);
  },
);

pkgSuite("./testing drives a bridge on the in-memory server and a SimulatedClock, and typechecks (no xstate import)", async (ctx) => {
  const imports = `import { createBridge, HandlerRegistry, SessionTracker } from "engram-serverevents";
import { capturingLogger, createMemoryServer, recordingHandler, runUntil, SimulatedClock } from "engram-serverevents/testing";
`;
  const body = `const clock = new SimulatedClock();
const server = createMemoryServer({ clock, projects: ["alpha"] });
const tracker = new SessionTracker();
tracker.connect("alpha");
const handler = recordingHandler("h", () => clock.now());
const registry = new HandlerRegistry();
registry.register(handler);
const bridge = createBridge({ registry, tracker, client: server.client(), clock, logger: capturingLogger(), env: {} });
bridge.start();
await runUntil(clock, () => bridge.status().state === "streaming");
server.removeProject("alpha");
const call = await runUntil(clock, () => handler.calls[0]);
const stopped = bridge.stop();
await runUntil(clock, () => bridge.status().state === "stopped");
await stopped;
console.log(JSON.stringify({ id: call.projectId, source: call.info.source, epochMs: call.atMs >= Date.UTC(2026, 0, 1) }));
`;
  const out = await runModule(ctx, "uses-testing.mjs", imports + body);
  assert.equal(JSON.parse(out), { id: "alpha", source: "stream", epochMs: true });
  writeFileSync(join(ctx.project.consumerDir, "uses-testing.ts"), `${imports}export async function main(): Promise<void> {\n${body}}\n`);
  await typecheck(ctx, "node16", ["uses-testing.ts"]);
  await typecheck(ctx, "bundler", ["uses-testing.ts"]);
});

pkgSuite("a consumer typechecks under node16 and bundler resolution with skipLibCheck off", async (ctx) => {
  writeFileSync(
    join(ctx.project.consumerDir, "uses-bridge.ts"),
    `import { BridgeError, createBridge, defaultBridgeTiming, HandlerRegistry, SessionTracker, type BridgeStatus, type ProjectRemovalAware, type RemovalInfo } from "engram-serverevents";
import { bridgeMachine, createBridgeDelays, type BridgeContext, type BridgeEvent } from "engram-serverevents/machines";

const removed: Array<[string, RemovalInfo["source"]]> = [];
const handler: ProjectRemovalAware = {
  name: "workspace-cleanup",
  onProjectRemoved(projectId: string, info: RemovalInfo) {
    removed.push([projectId, info.source]);
  },
};
const registry = new HandlerRegistry();
const unregister: () => void = registry.register(handler);
const tracker = new SessionTracker();
tracker.connect("p1");
const bridge = createBridge({ registry, tracker, serverUrl: "http://127.0.0.1:37777", timing: { heartbeatMs: defaultBridgeTiming.heartbeatMs } });
const status: BridgeStatus = bridge.status();
const machine = bridgeMachine.provide({ delays: createBridgeDelays(Math.random) });
const event: BridgeEvent = { type: "STOP" } as BridgeEvent;
export async function cleanUp(context?: BridgeContext): Promise<unknown> {
  try {
    await bridge.stop();
  } catch (err) {
    if (err instanceof BridgeError) return err.code;
  }
  unregister();
  return [status, machine.id, event, context?.attempt, removed];
}
`,
  );
  await typecheck(ctx, "node16", ["uses-bridge.ts"]);
  await typecheck(ctx, "bundler", ["uses-bridge.ts"]);
});

/**
 * A strict consumer (issue 22 item 6): nodenext, strict,
 * exactOptionalPropertyTypes, `lib` without DOM, skipLibCheck off. It uses
 * every function of the root entry it can and names each type they return,
 * so a return type the root does not export fails to compile.
 */
const strictConsumer = `import {
  BridgeError, CONNECTION_CHANGES_BUFFER, createBearerInterceptor, createBridge, createGrpcEventsClient, createStderrLogger,
  defaultBridgeTiming, HandlerRegistry, parseServerUrl, SessionTracker, timingBounds,
  type BearerInterceptor, type Bridge, type BridgeActor, type BridgeActorSnapshot, type BridgeContext, type BridgeOptions,
  type BridgeStatus, type BridgeSubscription, type ConnectionChange, type EventsClient, type Logger, type RegisteredHandler,
  type ServerAddress, type TimingBound,
} from "engram-serverevents";

const registry = new HandlerRegistry();
const unregister: () => void = registry.register({ name: "cleanup", onProjectRemoved(projectId) { void projectId; } });
const handlers: readonly RegisteredHandler[] = registry.handlers();
const tracker = new SessionTracker();
tracker.connect("p1");
const logger: Logger = createStderrLogger({ level: "info" });
const options: BridgeOptions = { registry, tracker, logger, timing: { heartbeatMs: 3000 }, env: {}, inspect: (e) => void e.type };
const bridge: Bridge = createBridge(options);
const status: BridgeStatus = bridge.status();
const actor: BridgeActor = bridge.actor;
const snapshot: BridgeActorSnapshot = actor.getSnapshot();
const context: BridgeContext = snapshot.context;
const sub: BridgeSubscription = actor.on("syncCompleted", (e) => void e.result.unknown.length);
const off: () => void = bridge.on("connection", (c: ConnectionChange) => void (c.error?.code ?? c.retryInMs ?? c.atMs));
const changes: AsyncIterableIterator<ConnectionChange> = bridge.changes(AbortSignal.timeout(1000));
const ready: Promise<void> = bridge.ready();
const address: ServerAddress = parseServerUrl("http://127.0.0.1:37777");
const client: EventsClient & { close(): void } = createGrpcEventsClient({ address });
const interceptor: BearerInterceptor = createBearerInterceptor(async () => "t0ken");
const bound: TimingBound = timingBounds.heartbeatMs;
export async function cleanUp(): Promise<unknown> {
  bridge.start();
  try {
    await bridge.stop();
  } catch (err) {
    if (err instanceof BridgeError) return err.code;
  }
  sub.unsubscribe();
  off();
  unregister();
  client.close();
  await changes.return?.();
  return [status, context.timing.heartbeatJitterMs, ready, handlers, interceptor, bound, CONNECTION_CHANGES_BUFFER, defaultBridgeTiming];
}
`;

pkgSuite(
  "the root entry typechecks in a strict nodenext project: exactOptionalPropertyTypes, no DOM in lib, skipLibCheck off",
  async (ctx) => {
    const dir = ctx.project.consumerDir;
    writeFileSync(join(dir, "uses-root-strictly.ts"), strictConsumer);
    const compilerOptions = {
      strict: true,
      exactOptionalPropertyTypes: true,
      noUncheckedIndexedAccess: true,
      noEmit: true,
      skipLibCheck: false,
      target: "ES2022",
      lib: ["ES2023", "ESNext.Disposable"],
      module: "nodenext",
      moduleResolution: "nodenext",
      types: ["node"],
      typeRoots: [join(repoRoot, "node_modules/@types")],
    };
    writeFileSync(join(dir, "tsconfig.strict.json"), JSON.stringify({ compilerOptions, files: ["uses-root-strictly.ts"] }, null, 2));
    let output = "";
    try {
      await runCommand(process.execPath, [tsc, "-p", "tsconfig.strict.json"], { cwd: dir, timeoutMs: 90_000 });
    } catch (err) {
      output = String(err);
    }
    const errors = output.split("\n").filter((l) => /error TS\d+/.test(l));
    // No error at all: not xstate's (exactOptionalPropertyTypes), not connect's (HeadersInit without DOM).
    assert.equal(errors, [], `the strict consumer does not compile:\n${output}`);
    assert.not.match(output, "node_modules/xstate", "no error from xstate's declarations");
  },
);

/** Wall time of one run of this Node with `args`, in ms. */
async function timeMs(args: string[], cwd: string): Promise<number> {
  const t0 = performance.now();
  await runCommand(process.execPath, args, { cwd, timeoutMs: 30_000 });
  return performance.now() - t0;
}

pkgSuite(`the installed bin prints --help within ${maxHelpFactor}× the time of node -e 0`, async (ctx) => {
  const cwd = ctx.project.consumerDir;
  const viaLink = await runCommand(join(cwd, "node_modules/.bin/engram-serverevents"), ["--help"], { cwd, timeoutMs: 30_000 });
  assert.match(viaLink.stdout, "Usage: engram-serverevents <command>");
  for (const name of ["start", "dev", "run", "serve"]) assert.match(viaLink.stdout, new RegExp(`^  ${name} `, "m"));
  // Interleaved, and the fastest of each: what the load of the machine
  // (other suites run beside this one) cannot inflate.
  let nodeMs = Number.POSITIVE_INFINITY;
  let helpMs = Number.POSITIVE_INFINITY;
  for (let i = 0; i < 15; i++) {
    nodeMs = Math.min(nodeMs, await timeMs(["-e", "0"], cwd));
    helpMs = Math.min(helpMs, await timeMs([bin(ctx), "--help"], cwd));
  }
  console.log(`# --help ${helpMs.toFixed(0)} ms, node -e 0 ${nodeMs.toFixed(0)} ms (fastest of 15 each, Node ${process.versions.node})`);
  assert.ok(
    helpMs <= maxHelpFactor * nodeMs,
    `--help took ${helpMs.toFixed(0)} ms, more than ${maxHelpFactor}× node -e 0 (${nodeMs.toFixed(0)} ms)`,
  );
});

/** A process of the installed bin with its output collected line by line. */
function startBin(ctx: Ctx, args: string[]) {
  const child: ChildProcessWithoutNullStreams = spawn(process.execPath, [bin(ctx), ...args], {
    cwd: ctx.project.consumerDir,
    env: { PATH: process.env.PATH ?? "", NO_COLOR: "1" },
    stdio: ["pipe", "pipe", "pipe"],
  });
  const lines = { stdout: [] as string[], stderr: [] as string[] };
  const listeners = new Set<() => void>();
  for (const stream of ["stdout", "stderr"] as const) {
    let partial = "";
    child[stream].setEncoding("utf8");
    child[stream].on("data", (chunk: string) => {
      const parts = (partial + chunk).split("\n");
      partial = parts.pop() ?? "";
      lines[stream].push(...parts);
      for (const l of [...listeners]) l();
    });
  }
  const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  const transcript = () => `--- stdout\n${lines.stdout.join("\n")}\n--- stderr\n${lines.stderr.join("\n")}`;
  return {
    child,
    lines,
    exited,
    transcript,
    waitFor(stream: "stdout" | "stderr", match: RegExp, timeoutMs = 15_000): Promise<string> {
      return new Promise((resolve, reject) => {
        const check = () => {
          const hit = lines[stream].find((l) => match.test(l));
          if (hit === undefined) return;
          clearTimeout(timer);
          listeners.delete(check);
          resolve(hit);
        };
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`timed out waiting for ${String(match)} on ${stream}\n${transcript()}`));
        }, timeoutMs);
        listeners.add(check);
        check();
      });
    },
  };
}

pkgSuite("the installed bin: serve and run round trip a removal", async (ctx) => {
  const serve = startBin(ctx, ["serve", "--port", "0", "--create", "p-gone", "--create", "p-kept"]);
  try {
    const url = (await serve.waitFor("stdout", /^https?:\/\//)).trim();
    const sidecar = startBin(ctx, [
      "run",
      "--url",
      url,
      "--project",
      "p-gone",
      "--project",
      "p-kept",
      "--open-confirm-ms",
      "200",
      "--log-level",
      "warn",
    ]);
    try {
      await serve.waitFor("stdout", /^stream opened/);
      serve.child.stdin.write("remove p-gone deleted\n");
      const line = await sidecar.waitFor("stdout", /"projectId":"p-gone"/);
      const removal = JSON.parse(line) as { projectId: string; source: string; reason: string };
      assert.equal(
        { projectId: removal.projectId, source: removal.source, reason: removal.reason },
        { projectId: "p-gone", source: "stream", reason: "deleted" },
      );
      sidecar.child.kill("SIGINT");
      assert.is(await sidecar.exited, 0, `run exits 0 on SIGINT\n${sidecar.transcript()}`);
      assert.not.ok(
        sidecar.lines.stdout.some((l) => l.includes("p-kept")),
        "a kept project is not reported",
      );
    } finally {
      sidecar.child.kill("SIGKILL");
      await sidecar.exited;
    }
    serve.child.stdin.end("quit\n");
    assert.is(await serve.exited, 0, `serve exits 0 on quit\n${serve.transcript()}`);
  } finally {
    serve.child.kill("SIGKILL");
    await serve.exited;
  }
});

pkgSuite(
  "the README's supervisor script: an exec'd installed bin is the process $! names, and kill $! stops it gracefully",
  async (ctx) => {
    // Issue 22 item 10: no npx (which stays the parent); the README's wrapper exec's the installed bin.
    const readme = readFileSync(join(repoRoot, "README.md"), "utf8");
    const execLine = readme.split("\n").find((l) => l.startsWith("exec node_modules/.bin/engram-serverevents run "));
    assert.ok(execLine !== undefined, "the README's supervisor script exec's node_modules/.bin/engram-serverevents");
    assert.not.match(readme, /npx engram-serverevents run/, "the README never runs the sidecar through npx");
    const dir = ctx.project.consumerDir;
    writeFileSync(
      join(dir, "sidecar.sh"),
      `#!/bin/sh\nexec node_modules/.bin/engram-serverevents run --url "$1" --project p1 --open-confirm-ms 200 --log-level info\n`,
    );
    const serve = startBin(ctx, ["serve", "--port", "0", "--create", "p1"]);
    try {
      const url = (await serve.waitFor("stdout", /^https?:\/\//)).trim();
      const shell = spawn("sh", ["-c", 'sh ./sidecar.sh "$0" & echo "pid $!"; wait $!; echo "exit $?"', url], {
        cwd: dir,
        env: { PATH: process.env.PATH ?? "", NO_COLOR: "1" },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let out = "";
      let err = "";
      shell.stdout.setEncoding("utf8").on("data", (c: string) => (out += c));
      shell.stderr.setEncoding("utf8").on("data", (c: string) => (err += c));
      const exited = new Promise<void>((resolve) => shell.on("exit", () => resolve()));
      let pid: number | undefined;
      try {
        const until = async (what: string, check: () => boolean) => {
          for (let i = 0; i < 300 && !check(); i++) await new Promise((r) => setTimeout(r, 50));
          assert.ok(check(), `${what}\n--- stdout\n${out}\n--- stderr\n${err}`);
        };
        await until("the sidecar streams", () => err.includes('"msg":"connection streaming"'));
        pid = Number(/pid (\d+)/.exec(out)?.[1]);
        const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
        assert.ok(
          cmdline.some((a) => /engram-serverevents(\.js)?$/.test(a)) && cmdline.includes("run"),
          `$! is the sidecar itself: ${cmdline.join(" ")}`,
        );
        process.kill(pid, "SIGTERM");
        await until("the sidecar exits", () => /exit \d+/.test(out));
        assert.match(out, "exit 0", `kill $! stopped the sidecar gracefully\n${err}`);
        assert.match(err, '"msg":"bridge stopped"');
      } finally {
        // The sidecar too: a failed assertion leaves it running, holding the pipes.
        for (const p of [pid, shell.pid]) {
          try {
            if (p !== undefined && p > 0) process.kill(p, "SIGKILL");
          } catch {
            // Already gone.
          }
        }
        await exited;
      }
    } finally {
      serve.child.kill("SIGKILL");
      await serve.exited;
    }
  },
);

pkgSuite("the README says that stream removals of untracked projects reach every handler and --exec", () => {
  // Issue 22 item 9: today's behaviour, documented (test/unit/connection-events.test.ts shows it for handlers).
  const readme = readFileSync(join(repoRoot, "README.md"), "utf8").replace(/\s+/g, " ");
  assert.match(readme, "A stream removal reaches every handler whether or not this daemon tracks the project");
  assert.match(readme, "Every stream removal is printed and exec'd, tracked or not.");
});

pkgSuite(`the consumer install weighs at most ${maxPackages} packages and ${maxBytes / 1e6} MB`, (ctx) => {
  const nodeModules = join(ctx.project.consumerDir, "node_modules");
  const packages = installedPackages(nodeModules);
  const bytes = treeBytes(nodeModules);
  console.log(`# consumer install: ${packages.length} packages, ${(bytes / 1e6).toFixed(1)} MB (${packages.join(", ")})`);
  assert.ok(packages.includes(`engram-serverevents@${ctx.project.pkg.version}`), "the package itself is installed");
  assert.ok(packages.length <= maxPackages, `${packages.length} packages: ${packages.join(", ")}`);
  assert.ok(bytes <= maxBytes, `${(bytes / 1e6).toFixed(1)} MB`);
});

pkgSuite("publint and attw --profile esm-only find nothing to report", async (ctx) => {
  const publint = await runCommand(process.execPath, [join(repoRoot, "node_modules/publint/src/cli.js"), "--strict", ctx.project.tarball], {
    cwd: ctx.project.dir,
    timeoutMs: 60_000,
  });
  assert.match(publint.stdout + publint.stderr, "All good!", `publint:\n${publint.stdout}${publint.stderr}`);
  // Exits non-zero on any problem that the esm-only profile does not ignore.
  await runCommand(
    process.execPath,
    [
      join(repoRoot, "node_modules/@arethetypeswrong/cli/dist/index.js"),
      ctx.project.tarball,
      "--profile",
      "esm-only",
      "--format",
      "table-flipped",
    ],
    { cwd: ctx.project.dir, timeoutMs: 120_000 },
  );
});

pkgSuite.run();
