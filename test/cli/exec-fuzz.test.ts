/**
 * Fuzz layer for what the server controls (ids, reasons, event ids) on the
 * sidecar's sinks: exec argv and environment, log lines, the projects-file
 * and id checks. Properties: bounded, no NUL or control character where it
 * could do harm, no secret, no crash, nothing lost for a well-formed id.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createExecEnvironment, redactSecrets, redactedMark } from "../../src/cli/exec-env.js";
import { createExecHandler } from "../../src/cli/exec-handler.js";
import { envSafe, maxProjectIdBytes, previewOf, projectIdProblem } from "../../src/cli/id-rules.js";
import { parseProjectsFile } from "../../src/cli/projects-file.js";
import type { Logger } from "../../src/types.js";

const fuzz = suite("exec and id rules under hostile server data (fuzz)");

/** Strings a hostile server would send: controls, surrogates, dashes, long runs, multi-byte text. */
const hostileString = (maxLength: number) =>
  fc.oneof(
    fc.string({ unit: "binary", maxLength }),
    fc.string({ unit: "grapheme", maxLength }),
    fc.constantFrom("-", "--", "--upload-pack=touch x;false", "\u0000", "\ud800", "a\u001b[2Jb", "é".repeat(300), "x".repeat(600)),
    fc.tuple(fc.constantFrom("", "-", "\n", "\u0000"), fc.string({ unit: "binary", maxLength })).map(([a, b]) => a + b),
  );

fuzz("projectIdProblem accepts exactly the ids of at most 512 bytes without control characters or lone surrogates", () => {
  fc.assert(
    fc.property(hostileString(700), (id) => {
      const ok = projectIdProblem(id) === undefined;
      const expected = id !== "" && Buffer.byteLength(id) <= maxProjectIdBytes && !/[\p{Cc}\p{Cs}]/u.test(id);
      assert.is(ok, expected);
      const preview = previewOf(id);
      assert.ok(preview.length <= 64 * 6 + 32, "a preview is bounded");
      assert.not.match(preview, /[\p{Cc}\p{Cs}]/u);
    }),
    { numRuns: 2000 },
  );
});

fuzz("envSafe is bounded, has no control character or lone surrogate, and keeps a clean prefix", () => {
  fc.assert(
    fc.property(hostileString(9000), fc.integer({ min: 1, max: 4096 }), (text, maxBytes) => {
      const out = envSafe(text, maxBytes);
      assert.ok(Buffer.byteLength(out) <= maxBytes);
      assert.not.match(out, /[\p{Cc}\p{Cs}]/u);
      // The round trip through UTF-8 is exact: nothing the kernel would alter.
      assert.is(Buffer.from(out, "utf8").toString("utf8"), out);
      const clean = text.replace(/\p{Cc}/gu, " ").replace(/\p{Cs}/gu, "\uFFFD");
      assert.ok(clean.startsWith(out));
    }),
    { numRuns: 1000 },
  );
});

fuzz("redactSecrets leaves no secret in any text, and the child environment never holds the token", () => {
  const secret = fc.string({ unit: "grapheme-ascii", minLength: 8, maxLength: 40 }).filter((s) => /^[A-Za-z0-9._~+/-]+=*$/.test(s));
  fc.assert(
    fc.property(secret, fc.array(fc.string({ maxLength: 30 }), { maxLength: 6 }), (token, parts) => {
      const text = parts.join(token);
      const out = redactSecrets(text, [token]);
      assert.not.ok(out.includes(token), JSON.stringify({ text, out }));
      if (parts.length > 1) assert.match(out, redactedMark);
      const env = createExecEnvironment({
        base: { ENGRAM_TOKEN: token, ENGRAM_URL: `https://u:${encodeURIComponent(token)}@h/`, PATH: "/bin" },
      });
      assert.not.ok(JSON.stringify(env.env).includes(token));
      assert.not.ok(JSON.stringify(env.env).includes(encodeURIComponent(token)));
    }),
    { numRuns: 500 },
  );
});

fuzz(
  "a token with a surrounding newline or blanks (a token file, which the bridge trims) is redacted in its trimmed form too (review item 3)",
  () => {
    const secret = fc.stringMatching(/^[A-Za-z0-9._~+/-]{8,40}$/);
    fc.assert(
      fc.property(secret, fc.constantFrom("\n", "\r\n", " ", "\t\n"), fc.constantFrom("", " ", "\n"), (token, after, before) => {
        const env = createExecEnvironment({ base: { ENGRAM_TOKEN: `${before}${token}${after}`, PATH: "/bin" } });
        const out = redactSecrets(`token is ${token}; again:${token}`, env.secrets);
        assert.not.ok(out.includes(token), JSON.stringify({ token, out }));
        assert.is(out, `token is ${redactedMark}; again:${redactedMark}`);
        assert.not.ok(JSON.stringify(env.env).includes(token));
      }),
      { seed: 20, numRuns: 200 },
    );
  },
);

fuzz("parseProjectsFile never yields a newline, and only trimmed non-comment lines (a lone CR stays, and the id check refuses it)", () => {
  fc.assert(
    fc.property(fc.array(hostileString(80), { maxLength: 20 }), (lines) => {
      for (const id of parseProjectsFile(lines.join("\n"))) {
        assert.not.match(id, /\n/);
        if (/\r/.test(id)) assert.is.not(projectIdProblem(id), undefined);
        assert.is(id, id.trim());
        assert.ok(id !== "" && !id.startsWith("#"));
      }
    }),
    { numRuns: 500 },
  );
});

fuzz(
  "through real children: every well-formed id runs exactly once with bounded ENGRAM_* values; no input rejects the handler",
  async () => {
    const dir = mkdtempSync(join(tmpdir(), "engram-fuzz-"));
    const out = join(dir, "calls.jsonl");
    const logs: string[] = [];
    const logger: Logger = {
      debug: () => {},
      info: (o, m) => void logs.push(JSON.stringify([m, o])),
      warn: (o, m) => void logs.push(JSON.stringify([m, o])),
      error: (o, m) => void logs.push(JSON.stringify([m, o])),
    };
    const script = `require("fs").appendFileSync(process.env.OUT, JSON.stringify({ id: process.argv.at(-1), env: [process.env.ENGRAM_PROJECT_ID, process.env.ENGRAM_EVENT_ID, process.env.ENGRAM_REMOVAL_REASON] }) + "\\n")`;
    const handler = createExecHandler({
      command: process.execPath,
      args: ["-e", script, "--"],
      timeoutMs: 10_000,
      logger,
      env: { PATH: process.env.PATH ?? "", OUT: out },
    });
    try {
      const samples = fc.sample(
        fc.tuple(
          hostileString(600),
          fc.option(hostileString(200_000), { nil: undefined }),
          fc.option(hostileString(400), { nil: undefined }),
        ),
        { numRuns: 24, seed: 11 },
      );
      samples.push(["good-id", "r".repeat(150 * 1024), "1\u00002"], ["-dash", "x", "1"], ["ok\u0000nul", undefined, undefined]);
      const expected: string[] = [];
      for (const [id, reason, eventId] of samples) {
        const good = projectIdProblem(id) === undefined && !id.startsWith("-");
        if (good) expected.push(id);
        await handler.onProjectRemoved(id, {
          source: "stream",
          ...(reason !== undefined ? { reason } : {}),
          ...(eventId !== undefined ? { eventId } : {}),
        });
      }
      const calls = existsSync(out)
        ? readFileSync(out, "utf8")
            .split("\n")
            .filter((l) => l !== "")
            .map((l) => JSON.parse(l) as { id: string; env: [string, string, string] })
        : [];
      assert.equal(
        calls.map((c) => c.id),
        expected,
      );
      for (const c of calls) {
        assert.is(c.env[0], c.id);
        assert.ok(Buffer.byteLength(c.env[1]) <= 256 && Buffer.byteLength(c.env[2]) <= 4096);
        assert.not.match(c.env[1] + c.env[2], /[\p{Cc}]/u);
      }
      assert.is(handler.stats.refused, samples.length - expected.length);
      for (const line of logs) assert.ok(line.length < 20_000, `a log line is bounded (${line.length})`);
    } finally {
      await handler.close(100);
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

fuzz.run();
