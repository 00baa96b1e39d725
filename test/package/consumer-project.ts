/**
 * A consumer of the package, as a user gets it: `npm pack` of this checkout
 * (dist/ as `npm test` built it), installed into a fresh temporary project
 * with `npm ci --offline` from npm's cache, which the checkout's `npm ci` has
 * filled. No registry is asked.
 *
 * npm needs a package's metadata to resolve a version range and `npm ci`
 * fetches none (only tarballs), so the consumer gets a lockfile: the
 * package's runtime dependency closure copied from this checkout's
 * package-lock.json. The consumer thus runs the versions the suite tested.
 */
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

export const repoRoot = fileURLToPath(new URL("../..", import.meta.url));
const exec = promisify(execFile);
/** npm as this Node runs it (npm_execpath is set under npm; else the npm on PATH). */
const npmCli = process.env.npm_execpath?.endsWith(".js") ? process.env.npm_execpath : undefined;

export interface CommandResult {
  stdout: string;
  stderr: string;
}

/** Runs a command, throwing with its output when it fails. */
export async function runCommand(
  file: string,
  args: readonly string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number },
): Promise<CommandResult> {
  try {
    const r = await exec(file, [...args], {
      cwd: options.cwd,
      env: options.env ?? process.env,
      timeout: options.timeoutMs ?? 120_000,
      maxBuffer: 64 * 1024 * 1024,
    });
    return { stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(
      `${file} ${args.join(" ")} failed in ${options.cwd}: ${e.message}\n--- stdout\n${e.stdout ?? ""}\n--- stderr\n${e.stderr ?? ""}`,
    );
  }
}

/** Runs npm with the Node that runs this test. */
export function npm(args: readonly string[], options: { cwd: string; timeoutMs?: number }): Promise<CommandResult> {
  const env = { ...process.env, npm_config_audit: "false", npm_config_fund: "false", npm_config_update_notifier: "false" };
  return npmCli === undefined
    ? runCommand("npm", args, { ...options, env })
    : runCommand(process.execPath, [npmCli, ...args], { ...options, env });
}

interface LockEntry {
  version?: string;
  resolved?: string;
  integrity?: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  [key: string]: unknown;
}

interface PackageJson {
  name: string;
  version: string;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  engines?: Record<string, string>;
  bin?: Record<string, string>;
  license?: string;
}

/** Where npm would find `name` from the package at `from` (a lockfile key), walking up as Node does. */
function lockKeyFor(packages: Record<string, LockEntry>, from: string, name: string): string | undefined {
  let base = from;
  for (;;) {
    const key = `${base === "" ? "" : `${base}/`}node_modules/${name}`;
    if (packages[key] !== undefined) return key;
    if (base === "") return undefined;
    const at = base.lastIndexOf("/node_modules/");
    base = at < 0 ? "" : base.slice(0, at);
  }
}

/**
 * A consumer lockfile for `tarball`: the package plus its runtime dependency
 * closure (dependencies, optional dependencies that are locked, required
 * peers) as this checkout locked them, without the optional peers.
 */
export function consumerLockfile(pkg: PackageJson, tarballName: string): object {
  const lock = JSON.parse(readFileSync(join(repoRoot, "package-lock.json"), "utf8")) as { packages: Record<string, LockEntry> };
  const out: Record<string, LockEntry> = {};
  const queue: Array<{ from: string; name: string }> = [];
  const wants = (
    entry: {
      dependencies?: Record<string, string>;
      optionalDependencies?: Record<string, string>;
      peerDependencies?: Record<string, string>;
      peerDependenciesMeta?: Record<string, { optional?: boolean }>;
    },
    from: string,
  ) => {
    for (const name of Object.keys(entry.dependencies ?? {})) queue.push({ from, name });
    for (const name of Object.keys(entry.optionalDependencies ?? {})) queue.push({ from, name });
    for (const name of Object.keys(entry.peerDependencies ?? {}))
      if (entry.peerDependenciesMeta?.[name]?.optional !== true) queue.push({ from, name });
  };
  wants(pkg, "");
  for (let item = queue.shift(); item; item = queue.shift()) {
    const key = lockKeyFor(lock.packages, item.from, item.name);
    if (key === undefined) {
      if (lock.packages[""]?.optionalDependencies?.[item.name] !== undefined) continue;
      throw new Error(`package-lock.json has no entry for ${item.name} (needed by ${item.from || pkg.name}): run npm install`);
    }
    if (out[key] !== undefined) continue;
    const { dev: _dev, peer: _peer, devOptional: _devOptional, ...entry } = lock.packages[key] as LockEntry;
    out[key] = entry;
    wants(entry, key);
  }
  return {
    name: "consumer",
    lockfileVersion: 3,
    requires: true,
    packages: {
      "": { name: "consumer", dependencies: { [pkg.name]: `file:${tarballName}` } },
      [`node_modules/${pkg.name}`]: {
        version: pkg.version,
        resolved: `file:${tarballName}`,
        license: pkg.license,
        dependencies: pkg.dependencies,
        bin: pkg.bin,
        engines: pkg.engines,
        peerDependencies: pkg.peerDependencies,
        peerDependenciesMeta: pkg.peerDependenciesMeta,
      },
      ...out,
    },
  };
}

export interface PackedFile {
  path: string;
  size: number;
}

export interface ConsumerProject {
  /** The temporary directory (holds the tarball and consumer/). */
  dir: string;
  /** The consumer project, with node_modules installed. */
  consumerDir: string;
  tarball: string;
  /** What npm pack put in the tarball. */
  files: PackedFile[];
  pkg: PackageJson;
  /** Removes the temporary directory. */
  remove(): void;
}

/** Packs this checkout and installs the tarball into a fresh consumer project, offline. */
export async function createConsumerProject(): Promise<ConsumerProject> {
  const dir = mkdtempSync(join(tmpdir(), "engram-consumer-"));
  try {
    // --ignore-scripts: dist/ is already built (scripts/test.mjs builds it
    // first), and rebuilding it here would pull it from under the CLI suites
    // running next to this one.
    const packed = await npm(["pack", "--ignore-scripts", "--json", "--pack-destination", dir], { cwd: repoRoot });
    const info = (JSON.parse(packed.stdout) as Array<{ filename: string; files: PackedFile[] }>)[0];
    if (info === undefined) throw new Error(`npm pack printed no package: ${packed.stdout}`);
    const pkg = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as PackageJson;
    const consumerDir = join(dir, "consumer");
    const tarballName = info.filename.replace(/^.*\//, "");
    mkdirSync(consumerDir);
    renameSync(join(dir, tarballName), join(consumerDir, tarballName));
    writeFileSync(
      join(consumerDir, "package.json"),
      `${JSON.stringify({ name: "consumer", private: true, type: "module", dependencies: { [pkg.name]: `file:${tarballName}` } }, null, 2)}\n`,
    );
    writeFileSync(join(consumerDir, "package-lock.json"), `${JSON.stringify(consumerLockfile(pkg, tarballName), null, 2)}\n`);
    try {
      await npm(["ci", "--offline", "--no-audit", "--no-fund"], { cwd: consumerDir, timeoutMs: 180_000 });
    } catch (err) {
      throw new Error(
        `installing the tarball offline failed; npm's cache must hold the runtime dependencies (run npm ci in the checkout first)\n${String(err)}`,
      );
    }
    return {
      dir,
      consumerDir,
      tarball: join(consumerDir, tarballName),
      files: info.files,
      pkg,
      remove: () => rmSync(dir, { recursive: true, force: true }),
    };
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/** Every installed package under a node_modules tree (nested ones too), as name@version. */
export function installedPackages(nodeModules: string): string[] {
  const out: string[] = [];
  const visit = (dir: string) => {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const name of names) {
      if (name.startsWith(".")) continue;
      const path = join(dir, name);
      if (name.startsWith("@")) {
        visit(path);
        continue;
      }
      try {
        const pkg = JSON.parse(readFileSync(join(path, "package.json"), "utf8")) as { name: string; version: string };
        out.push(`${pkg.name}@${pkg.version}`);
      } catch {
        continue;
      }
      visit(join(path, "node_modules"));
    }
  };
  visit(nodeModules);
  return out.sort();
}

/** Bytes of every file under `dir` (apparent size; symlinks not followed). */
export function treeBytes(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) total += treeBytes(path);
    else if (entry.isFile()) total += statSync(path).size;
  }
  return total;
}
