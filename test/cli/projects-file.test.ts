import { suite } from "uvu";
import * as assert from "uvu/assert";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, symlinkSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createProjectsFileTracker, type ProjectsFileTracker } from "../../src/cli/projects-file.js";
import type { Logger } from "../../src/types.js";

interface Ctx {
  dir: string;
  logs: Array<{ level: string; obj: Record<string, unknown>; msg: string | undefined }>;
  logger: Logger;
  trackers: ProjectsFileTracker[];
}

const pf = suite<Ctx>("projects file tracker (run --projects-file)");

pf.before.each((ctx) => {
  ctx.dir = mkdtempSync(join(tmpdir(), "engram-pf-"));
  // Each test's logger writes to that test's own array: a read still in
  // flight from the test before (connectedProjectIds() starts one) must not
  // log into the next test's lines.
  const logs: Ctx["logs"] = [];
  ctx.logs = logs;
  const at = (level: string) => (obj: object, msg?: string) => void logs.push({ level, obj: obj as Record<string, unknown>, msg });
  ctx.logger = { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
  ctx.trackers = [];
});

pf.after.each((ctx) => {
  for (const t of ctx.trackers) t.close();
  rmSync(ctx.dir, { recursive: true, force: true });
});

function tracker(ctx: Ctx, path: string, extra: { maxBytes?: number; fixedIds?: string[] } = {}): ProjectsFileTracker {
  const t = createProjectsFileTracker({ path, logger: ctx.logger, refreshMs: 0, ...extra });
  ctx.trackers.push(t);
  return t;
}

/** Resolves with what `p` resolved with, or rejects when it takes longer than ms (a blocked read). */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} took over ${ms} ms`)), ms))),
  ]).finally(() => clearTimeout(timer));
}

pf("a FIFO (directly or through a symlink) is refused at once with a clear log line, and never blocks (issue 11 item 8)", async (ctx) => {
  const fifo = join(ctx.dir, "ids.fifo");
  execFileSync("mkfifo", [fifo]);
  const link = join(ctx.dir, "projects.txt");
  symlinkSync(fifo, link);
  const t = tracker(ctx, link, { fixedIds: ["flag-id"] });
  // The event loop stays free: a timer fires while the read is pending or done.
  let ticked = false;
  const tick = setTimeout(() => (ticked = true), 1);
  await within(t.refresh(), 2000, "reading a FIFO");
  await new Promise((r) => setTimeout(r, 5));
  clearTimeout(tick);
  assert.ok(ticked);
  assert.equal([...t.connectedProjectIds()], ["flag-id"]);
  const warn = ctx.logs.find((l) => l.level === "warn");
  assert.match(String(warn?.msg), /not a regular file/);
  // Logged once per problem, not at every read.
  await t.refresh();
  assert.is(ctx.logs.filter((l) => l.level === "warn").length, 1);
});

pf("a file over the size cap (here behind a symlink) is refused and says so; a file under it is read", async (ctx) => {
  const big = join(ctx.dir, "big.txt");
  writeFileSync(big, "a\n");
  truncateSync(big, 5 * 1024 * 1024);
  const link = join(ctx.dir, "projects.txt");
  symlinkSync(big, link);
  const t = tracker(ctx, link);
  await t.refresh();
  assert.equal([...t.connectedProjectIds()], []);
  const warn = ctx.logs.find((l) => l.level === "warn");
  assert.match(String(warn?.msg), /larger than 4194304 bytes/);
  assert.is(warn?.obj["bytes"], 5 * 1024 * 1024);

  const small = join(ctx.dir, "small.txt");
  writeFileSync(small, "one\ntwo\n");
  const ok = tracker(ctx, small, { maxBytes: 8 });
  await ok.refresh();
  assert.equal([...ok.connectedProjectIds()], ["one", "two"]);
  writeFileSync(small, "one\ntwo\nthree\n");
  await ok.refresh();
  assert.equal([...ok.connectedProjectIds()], [], "grown past maxBytes: refused");
});

pf("a directory is refused, a missing file counts as empty, and ids come back once it is readable", async (ctx) => {
  const t = tracker(ctx, ctx.dir);
  await t.refresh();
  assert.match(String(ctx.logs.at(-1)?.msg), /not a regular file/);
  const missing = join(ctx.dir, "later.txt");
  const m = tracker(ctx, missing, { fixedIds: ["f"] });
  await m.refresh();
  assert.equal([...m.connectedProjectIds()], ["f"]);
  writeFileSync(missing, "x\n");
  await m.refresh();
  assert.equal([...m.connectedProjectIds()], ["f", "x"]);
  assert.ok(ctx.logs.some((l) => l.msg === "projects file readable again"));
});

pf(
  "lines that are not valid ids (control characters, over 512 bytes) are skipped, counted and logged without being echoed whole",
  async (ctx) => {
    const file = join(ctx.dir, "projects.txt");
    const long = "k".repeat(600);
    writeFileSync(file, `good-1\nbad\u0007bell\n${long}\n# comment\ngood-2\n`);
    const t = tracker(ctx, file);
    await t.refresh();
    assert.equal([...t.connectedProjectIds()], ["good-1", "good-2"]);
    const warn = ctx.logs.find((l) => l.level === "warn");
    assert.is(warn?.obj["refused"], 2);
    assert.not.match(JSON.stringify(ctx.logs), long);
  },
);

pf("a symlink to a private key is refused whole: none of its lines is sent as an id", async (ctx) => {
  const key = join(ctx.dir, "id_ed25519");
  writeFileSync(
    key,
    "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n-----END OPENSSH PRIVATE KEY-----\n",
  );
  const link = join(ctx.dir, "projects.txt");
  symlinkSync(key, link);
  const t = tracker(ctx, link, { fixedIds: ["flag"] });
  await t.refresh();
  assert.equal([...t.connectedProjectIds()], ["flag"]);
  const err = ctx.logs.find((l) => l.level === "error");
  assert.match(String(err?.msg), /PEM block/);
  assert.not.match(JSON.stringify(ctx.logs), "b3BlbnNza");
});

pf("connectedProjectIds never reads on the heartbeat's path: it answers from the last read and starts the next", async (ctx) => {
  const file = join(ctx.dir, "projects.txt");
  writeFileSync(file, "a\n");
  const t = tracker(ctx, file);
  await t.refresh();
  writeFileSync(file, "a\nb\n");
  assert.equal([...t.connectedProjectIds()], ["a"], "the last completed read");
  await t.refresh();
  assert.equal([...t.connectedProjectIds()], ["a", "b"]);
});

pf("forgetFixed drops a --project id; file ids stay the daemon's", async (ctx) => {
  const file = join(ctx.dir, "projects.txt");
  writeFileSync(file, "both\nfile-only\n");
  const t = tracker(ctx, file, { fixedIds: ["both", "flag-only"] });
  await t.refresh();
  t.forgetFixed("flag-only");
  t.forgetFixed("both");
  t.forgetFixed("file-only");
  assert.equal([...t.connectedProjectIds()].sort(), ["both", "file-only"]);
});

pf.run();
