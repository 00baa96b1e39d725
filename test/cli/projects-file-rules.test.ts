import { suite } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { chmodSync, chownSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  createProjectsFileTracker,
  isSecretAssignment,
  parseProjectsFileBytes,
  type ProjectsFileTracker,
} from "../../src/cli/projects-file.js";
import { projectIdProblem } from "../../src/cli/id-rules.js";
import type { Logger } from "../../src/types.js";

interface Ctx {
  dir: string;
  logs: Array<{ level: string; obj: Record<string, unknown>; msg: string | undefined }>;
  logger: Logger;
  trackers: ProjectsFileTracker[];
}

const rules = suite<Ctx>("projects file: stable reads, strict UTF-8 and what is refused (issue 20 items 3, 4, 8)");

rules.before.each((ctx) => {
  ctx.dir = mkdtempSync(join(tmpdir(), "engram-pfr-"));
  const logs: Ctx["logs"] = [];
  ctx.logs = logs;
  const at = (level: string) => (obj: object, msg?: string) => void logs.push({ level, obj: obj as Record<string, unknown>, msg });
  ctx.logger = { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
  ctx.trackers = [];
});

rules.after.each((ctx) => {
  for (const t of ctx.trackers) t.close();
  rmSync(ctx.dir, { recursive: true, force: true });
});

function tracker(ctx: Ctx, path: string, extra: { fixedIds?: string[]; noFollow?: boolean; settleMs?: number } = {}): ProjectsFileTracker {
  const t = createProjectsFileTracker({ path, logger: ctx.logger, refreshMs: 0, ...extra });
  ctx.trackers.push(t);
  return t;
}

const ids = (t: ProjectsFileTracker): string[] => [...t.connectedProjectIds()];

/** Sets a file's times `ms` into the past (a file nobody has written for that long). */
function age(path: string, ms: number): void {
  const then = new Date(Date.now() - ms);
  utimesSync(path, then, then);
}

rules("a file caught mid-write (its last line cut, no newline yet) is not believed: the previous ids stay (item 3)", async (ctx) => {
  const file = join(ctx.dir, "projects.txt");
  writeFileSync(file, "p1\nproject-number-2\n");
  const t = tracker(ctx, file);
  await t.refresh();
  assert.equal(ids(t), ["p1", "project-number-2"]);
  // The daemon rewrites in place and is between two writes.
  writeFileSync(file, "p1\npro");
  await t.refresh();
  assert.equal(ids(t), ["p1", "project-number-2"], "a cut line is never sent");
  assert.ok(
    ctx.logs.some((l) => l.level === "info" && /being written/.test(String(l.msg))),
    JSON.stringify(ctx.logs),
  );
  assert.not.match(JSON.stringify(ctx.logs), '"pro"');
  // A file without a final newline that nobody has touched for a while is whole.
  age(file, 5000);
  await t.refresh();
  assert.equal(ids(t), ["p1", "pro"]);
});

rules("lines that are not valid UTF-8 are refused, counted and logged by line number without being echoed (item 4)", async (ctx) => {
  const file = join(ctx.dir, "projects.txt");
  writeFileSync(
    file,
    Buffer.concat([Buffer.from("good-1\ncaf"), Buffer.from([0xe9]), Buffer.from("-secretish\n\u00e9t\u00e9\r\ngood-2\n")]),
  );
  const t = tracker(ctx, file);
  await t.refresh();
  assert.equal(ids(t), ["good-1", "\u00e9t\u00e9", "good-2"]);
  const warn = ctx.logs.find((l) => l.level === "warn");
  assert.is(warn?.obj["invalidUtf8"], 1);
  assert.equal(warn?.obj["invalidUtf8Lines"], [2]);
  assert.not.match(JSON.stringify(ctx.logs), "secretish");
  assert.not.ok(ids(t).some((id) => id.includes("\uFFFD")));
});

rules(
  "an env file (behind a symlink) with secret-looking keys is refused whole, logged by line number, never echoed (item 8)",
  async (ctx) => {
    const env = join(ctx.dir, "service.env");
    writeFileSync(env, "ENGRAM_URL=http://engram:8080\nENGRAM_TOKEN=tok-abc123-secret\n# comment\nexport DB_PASSWORD=hunter2\n");
    const link = join(ctx.dir, "projects.txt");
    symlinkSync(env, link);
    const t = tracker(ctx, link, { fixedIds: ["flag"] });
    await t.refresh();
    assert.equal(ids(t), ["flag"]);
    const err = ctx.logs.find((l) => l.level === "error");
    assert.match(String(err?.msg), /secret-looking keys/);
    assert.is(err?.obj["secretLines"], 2);
    assert.equal(err?.obj["lineNumbers"], [2, 4]);
    const logged = JSON.stringify(ctx.logs);
    for (const secret of ["tok-abc123", "hunter2", "engram:8080"]) assert.not.match(logged, secret);
  },
);

rules("a world-writable file, or one owned by another user, is refused; fixed, it is read again (item 8)", async (ctx) => {
  const file = join(ctx.dir, "projects.txt");
  writeFileSync(file, "a\nb\n");
  chmodSync(file, 0o666);
  const t = tracker(ctx, file, { fixedIds: ["flag"] });
  await t.refresh();
  assert.equal(ids(t), ["flag"]);
  assert.ok(ctx.logs.some((l) => l.level === "warn" && /writable by every user/.test(String(l.msg))));
  chmodSync(file, 0o644);
  await t.refresh();
  assert.equal(ids(t).sort(), ["a", "b", "flag"]);
  if (process.getuid?.() === 0) {
    // Only root may give a file away: owned by nobody (neither our user, our group nor root).
    chownSync(file, 65534, 65534);
    await t.refresh();
    assert.equal(ids(t), ["flag"]);
    assert.ok(ctx.logs.some((l) => /owned by neither/.test(String(l.msg))));
  }
});

rules("with noFollow (--projects-file-no-follow) a symlink is refused and a plain file is read (item 8)", async (ctx) => {
  const real = join(ctx.dir, "real.txt");
  writeFileSync(real, "x\n");
  const link = join(ctx.dir, "projects.txt");
  symlinkSync(real, link);
  const linked = tracker(ctx, link, { noFollow: true });
  await linked.refresh();
  assert.equal(ids(linked), []);
  assert.ok(ctx.logs.some((l) => /is a symlink/.test(String(l.msg))));
  const plain = tracker(ctx, real, { noFollow: true });
  await plain.refresh();
  assert.equal(ids(plain), ["x"]);
});

rules("what counts as a secret assignment", () => {
  for (const line of [
    "ENGRAM_TOKEN=x",
    "export AWS_SECRET_ACCESS_KEY=y",
    "password: hunter2",
    "api_key = z",
    "Authorization: Bearer q",
    "KEY=1",
    // Review item 2: .npmrc, JSON, quoted keys, tabs, URLs with user info.
    "//registry.npmjs.org/:_authToken=npm_SECRETSECRET",
    '"access_token": "ya29.SECRET",',
    '"auth": "dXNlcjpwYXNz"',
    "'api-key': x",
    "ENGRAM_TOKEN='abc'",
    "DB_PASSWORD =x",
    "api-key=SECRET",
    "X_API_KEY\t=SECRET",
    "token\t: abc",
    "aws_secret_access_key = SECRET",
    "https://user:ghp_SECRET@github.com",
    "https://ghp_SECRET@github.com/org/repo",
    "remote = https://u:p@h/x",
    // Second review: JSON on one line, YAML lists, no blank after the colon, key and value, netrc.
    '{"access_token":"ya29.SUPERSECRET","token_type":"Bearer"}',
    "- ENGRAM_TOKEN=tok-SECRET-2",
    '"token":"abc"',
    "token:abc",
    "- TOKEN=abc",
    "ENGRAM_TOKEN abc",
    "machine h login u password pw",
  ])
    assert.ok(isSecretAssignment(line), line);
  for (const line of [
    "project-1",
    "org/key-rotation",
    "a=b",
    "ENGRAM_URL=http://h",
    "tokens-team",
    "monkey",
    "https://github.com/org/repo",
    "team@example.com",
    '"project": "p1"',
    "keyboard-team",
    "monkey-island",
    "tokens",
  ])
    assert.not.ok(isSecretAssignment(line), line);
});

rules(
  "a token file passed as the projects file: the line holding the bridge's token is refused as a secret, the file dropped, never echoed (review item 1)",
  async (ctx) => {
    const token = "s3cr3t-Token_abcdefghijklmnop";
    const file = join(ctx.dir, "engram_token");
    writeFileSync(file, `${token}\n`, { mode: 0o600 });
    const t = createProjectsFileTracker({ path: file, logger: ctx.logger, refreshMs: 0, fixedIds: ["flag"], token: `${token}\n` });
    ctx.trackers.push(t);
    await t.refresh();
    assert.equal(ids(t), ["flag"]);
    const err = ctx.logs.find((l) => l.level === "error");
    assert.match(String(err?.msg), /secret lines/);
    assert.is(err?.obj["secretLines"], 1);
    assert.equal(err?.obj["lineNumbers"], [1]);
    assert.not.match(JSON.stringify(ctx.logs), token);
    // A line that only contains the token is a secret too; other lines are not.
    const parsed = parseProjectsFileBytes(Buffer.from(`p1\nx-${token}-y\n${token}\np2\n`), ` ${token}\n`);
    assert.equal(parsed.refused.secret, [2, 3]);
    assert.equal(parsed.ids, ["p1", "p2"]);
    // Without a token (none set), nothing changes.
    assert.equal(parseProjectsFileBytes(Buffer.from("p1\n"), "").ids, ["p1"]);
  },
);

rules(
  "a file with a far-future mtime and no final newline: retries stay within settleMs (no 1 ms spin), and it settles by the reader's own clock (review item 4)",
  async (ctx) => {
    const file = join(ctx.dir, "projects.txt");
    writeFileSync(file, "alpha\nbeta");
    const future = new Date(Date.now() + 30 * 86_400_000);
    utimesSync(file, future, future);
    let clockMs = 0;
    const delays: number[] = [];
    const realSetTimeout = globalThis.setTimeout;
    // Record the retry delays the reader asks for (and do not let them run: the test drives the reads).
    globalThis.setTimeout = ((_fn: () => void, ms?: number) => {
      delays.push(ms ?? 0);
      return realSetTimeout(() => {}, 0);
    }) as typeof setTimeout;
    try {
      const t = createProjectsFileTracker({ path: file, logger: ctx.logger, refreshMs: 0, settleMs: 1000, now: () => clockMs });
      ctx.trackers.push(t);
      await t.refresh();
      assert.equal(ids(t), [], "a last line without a newline, changed 'now': not yet believed");
      clockMs += 999;
      await t.refresh();
      assert.equal(ids(t), []);
      clockMs += 1;
      await t.refresh();
      assert.equal(ids(t), ["alpha", "beta"], "unchanged for settleMs by the reader's clock: settled");
    } finally {
      globalThis.setTimeout = realSetTimeout;
    }
    assert.ok(delays.length > 0);
    for (const ms of delays) assert.ok(ms >= 1 && ms <= 1000, `retry delay ${ms} ms`);
  },
);

/** The trimmed lines of `bytes` that are valid UTF-8: what a whole line of this version can be. */
function wholeLines(bytes: Uint8Array): Set<string> {
  const out = new Set<string>();
  let start = 0;
  while (start <= bytes.length) {
    let end = bytes.indexOf(0x0a, start);
    if (end < 0) end = bytes.length;
    const raw = Buffer.from(bytes.subarray(start, end));
    const text = raw.toString("utf8");
    if (Buffer.from(text, "utf8").equals(raw)) out.add(text.replace(/\r$/, "").trim());
    start = end + 1;
  }
  return out;
}

rules("property: every id parsed from any bytes is a whole, valid UTF-8, valid-id line of them, and never a secret assignment", () => {
  const line = fc.oneof(
    fc.stringMatching(/^[a-z0-9-]{1,12}$/),
    fc.constantFrom("# c", "", "  x  ", "TOKEN=t", "caf\u00e9", "a\rb"),
    fc.uint8Array({ maxLength: 16 }).map((b) => Buffer.from(b).toString("latin1")),
  );
  fc.assert(
    fc.property(
      fc.array(
        fc.oneof(
          line.map((l) => Buffer.from(l, "latin1")),
          fc.uint8Array({ maxLength: 24 }),
        ),
        { maxLength: 20 },
      ),
      (parts) => {
        const bytes = Buffer.concat(parts.flatMap((p) => [Buffer.from(p), Buffer.from("\n")]));
        const allowed = wholeLines(bytes);
        for (const id of parseProjectsFileBytes(bytes).ids) {
          assert.ok(allowed.has(id), `not a whole line: ${JSON.stringify(id)}`);
          assert.is(projectIdProblem(id), undefined);
          assert.not.ok(isSecretAssignment(id));
          assert.not.ok(id.includes("\uFFFD") && !allowed.has(id));
        }
      },
    ),
    { seed: 20, numRuns: 300 },
  );
});

rules.run();
