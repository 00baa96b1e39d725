/**
 * The file harness of issue 20's "Tests that hunt": a writer rewrites in
 * place (truncate, then chunks), truncates, renames new files over, swaps
 * symlinks and writes random bytes, while the tracker reads again and
 * again. Whatever the interleaving, no id the tracker ever reports may be
 * other than a whole, valid line of some version of the file (a version is
 * what a writer meant to write: the states between its steps are not).
 * Seeded: the writer's steps are reproducible; the interleaving with the
 * reads (thread-pool I/O) is not, which is the point.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import {
  closeSync,
  ftruncateSync,
  mkdtempSync,
  openSync,
  renameSync,
  rmSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createProjectsFileTracker } from "../../src/cli/projects-file.js";
import { noopLogger } from "../../src/logger.js";
import { seededRandom } from "../helpers/seeded-random.js";

const fuzz = suite("projects file harness: rewrites, truncations, symlink swaps and random bytes while reading (issue 20)");

/** The trimmed lines of a version that are valid UTF-8. */
function wholeLines(bytes: Uint8Array, into: Set<string>): void {
  let start = 0;
  while (start <= bytes.length) {
    let end = bytes.indexOf(0x0a, start);
    if (end < 0) end = bytes.length;
    const raw = Buffer.from(bytes.subarray(start, end));
    const text = raw.toString("utf8");
    if (Buffer.from(text, "utf8").equals(raw)) into.add(text.replace(/\r$/, "").trim());
    start = end + 1;
  }
}

const yieldToReader = (): Promise<void> => new Promise((r) => setImmediate(r));

async function runHarness(seed: number, steps: number): Promise<{ reads: number; idsSeen: number; versions: number }> {
  const rand = seededRandom(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
  const dir = mkdtempSync(join(tmpdir(), "engram-pffuzz-"));
  const path = join(dir, "projects.txt");
  const targets = [join(dir, "a.txt"), join(dir, "b.txt")];
  const allowed = new Set<string>();
  let versions = 0;
  /** A new version: a few ids (some long, some sharing prefixes), comments, CRLF, or random bytes. */
  const newVersion = (): Buffer => {
    if (rand() < 0.2) {
      const bytes = Buffer.alloc(1 + Math.floor(rand() * 200));
      for (let i = 0; i < bytes.length; i++) bytes[i] = rand() < 0.1 ? 0x0a : Math.floor(rand() * 256);
      return bytes;
    }
    const lines: string[] = [];
    const n = 1 + Math.floor(rand() * 12);
    for (let i = 0; i < n; i++) {
      const r = rand();
      if (r < 0.1) lines.push("# comment");
      else if (r < 0.15) lines.push("");
      else
        lines.push(`${pick(["p", "pro", "project", "project-number"])}-${Math.floor(rand() * 1000)}${"x".repeat(Math.floor(rand() * 40))}`);
    }
    return Buffer.from(`${lines.join(rand() < 0.2 ? "\r\n" : "\n")}\n`);
  };
  const remember = (v: Buffer): void => {
    versions++;
    wholeLines(v, allowed);
  };
  const current = new Map<string, Buffer>();
  for (const t of targets) {
    const v = newVersion();
    remember(v);
    writeFileSync(t, v);
    current.set(t, v);
  }
  symlinkSync(targets[0] as string, path);
  let linkTarget = targets[0] as string;

  const tracker = createProjectsFileTracker({ path, logger: noopLogger, refreshMs: 0 });
  let done = false;
  let reads = 0;
  const seen = new Set<string>();
  const bad: string[] = [];
  const reader = (async () => {
    while (!done) {
      await tracker.refresh();
      reads++;
      for (const id of tracker.connectedProjectIds()) {
        seen.add(id);
        if (!allowed.has(id)) bad.push(id);
      }
    }
  })();

  try {
    for (let step = 0; step < steps; step++) {
      const op = rand();
      const file = rand() < 0.7 ? linkTarget : pick(targets);
      if (op < 0.35) {
        // In place: truncate, then write the new version in chunks, the reader running in between.
        const v = newVersion();
        remember(v);
        const fd = openSync(file, "r+");
        try {
          ftruncateSync(fd, 0);
          let at = 0;
          while (at < v.length) {
            const n = Math.min(v.length - at, 1 + Math.floor(rand() * 24));
            writeSync(fd, v, at, n, at);
            at += n;
            await yieldToReader();
          }
        } finally {
          closeSync(fd);
        }
        current.set(file, v);
      } else if (op < 0.5) {
        // A torn moment: cut somewhere, then the writer finishes the same version.
        const v = current.get(file) as Buffer;
        truncateSync(file, Math.floor(rand() * v.length));
        await yieldToReader();
        writeFileSync(file, v);
      } else if (op < 0.7) {
        // The safe way: a new file renamed over the target.
        const v = newVersion();
        remember(v);
        const tmp = `${file}.tmp`;
        writeFileSync(tmp, v);
        renameSync(tmp, file);
        current.set(file, v);
      } else if (op < 0.85) {
        // The symlink swapped to the other file, atomically.
        linkTarget = targets.find((t) => t !== linkTarget) as string;
        const tmp = join(dir, "link.tmp");
        symlinkSync(linkTarget, tmp);
        renameSync(tmp, path);
      } else {
        // Random bytes written whole.
        const v = newVersion();
        remember(v);
        writeFileSync(file, v);
        current.set(file, v);
      }
      await yieldToReader();
    }
  } finally {
    done = true;
    await reader;
    tracker.close();
    rmSync(dir, { recursive: true, force: true });
  }
  assert.equal(bad.slice(0, 5), [], `seed ${seed}: ids that are no whole line of any version`);
  return { reads, idsSeen: seen.size, versions };
}

fuzz("no id the reader ever reports is other than a whole, valid line of some version of the file", async () => {
  const started = performance.now();
  const results = [];
  for (const seed of [1, 2, 3, 20]) results.push(await runHarness(seed, 250));
  const reads = results.reduce((n, r) => n + r.reads, 0);
  const idsSeen = results.reduce((n, r) => n + r.idsSeen, 0);
  console.log(
    `# projects-file harness: 4 seeds x 250 writer steps, ${reads} reads, ${idsSeen} distinct ids reported, ${Math.round(performance.now() - started)} ms`,
  );
  // The harness must exercise the reader, not only the writer.
  assert.ok(reads > 100, `only ${reads} reads`);
  assert.ok(idsSeen > 20, `only ${idsSeen} ids ever reported`);
});

fuzz.run();
