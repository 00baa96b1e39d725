/**
 * The sidecar's ProjectTracker: ids from `--project` flags plus the lines of
 * a projects file that the host daemon may rewrite at any time.
 *
 * The file is read asynchronously, never on the heartbeat's path: each
 * heartbeat takes the ids of the last completed read and starts the next
 * read (and a timer reads it every `refreshMs` too). Only a regular file of
 * at most `maxBytes` is read: it is opened non-blocking and checked with
 * fstat on the open descriptor, so a FIFO, a device or a symlink to one
 * never blocks the event loop, and a symlink to something large is refused.
 *
 * A read is believed only when it saw one stable version of the file: fstat
 * before and after the read agree (inode, size, mtime, ctime), the bytes
 * read are the file's size, and the content ends with a newline (a last line
 * without one counts only once the file has not changed for `settleMs`: a
 * writer may be in the middle of it). Otherwise the previous ids stay in
 * force, it is logged, and the file is read again shortly.
 *
 * What the reader refuses (see docs/operations.md, "The projects file"):
 * - the whole file: not a regular file, larger than `maxBytes`, owned by
 *   neither the sidecar's user, its group nor root, writable by everyone, a
 *   symlink when `noFollow` is set, a PEM block anywhere, or any secret
 *   line: a `KEY=VALUE` or `key: value` line whose key (any run of
 *   non-blank characters, quoted or not: `//registry.npmjs.org/:_authToken`,
 *   `"access_token"`) looks like a secret (TOKEN, SECRET, PASSWORD, KEY,
 *   AUTH, CREDENTIAL, …: an env file, .npmrc or JSON behind a symlink), a
 *   URL with user info (`https://user:pass@host`), or a line that holds the
 *   bridge's own token (`token`: a token file given as the projects file).
 *   Its ids are then dropped (only the --project ids count);
 * - a line: not valid UTF-8 (decoded strictly, never with U+FFFD), or not a
 *   valid id (`projectIdProblem`). The file's other lines still count.
 * Refusals are counted and logged with line numbers, never with the line.
 */
import { constants, type BigIntStats } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import type { Logger, ProjectTracker } from "../types.js";
import { projectIdProblem } from "./id-rules.js";

/** The largest projects file read, in bytes. */
export const defaultProjectsFileMaxBytes = 4 * 1024 * 1024;

/** How often the projects file is read between heartbeats, in ms. */
export const DEFAULT_REFRESH_MS = 5000;

export interface ProjectsFileTrackerOptions {
  /** Ids given on the command line (`--project`), already checked. Defaults to none. */
  fixedIds?: readonly string[];
  /** The file to read. Defaults to none. */
  path?: string | undefined;
  /** Files larger than this are refused, in bytes. Defaults to 4 MiB. */
  maxBytes?: number;
  /** How often the file is also read between heartbeats, in ms (0: only at heartbeats). Defaults to DEFAULT_REFRESH_MS (5000). */
  refreshMs?: number;
  /** Refuse the file when its path is a symlink (O_NOFOLLOW on the last component; `--projects-file-no-follow`). Defaults to false. */
  noFollow?: boolean;
  /** How long a file whose last line has no newline must be unchanged before that line counts, in ms. Defaults to DEFAULT_SETTLE_MS (1000). */
  settleMs?: number;
  /** The clock that times how long one version of the file has been seen, in ms. Defaults to performance.now. */
  now?: () => number;
  /** The bridge's bearer token: a line that equals or contains it (trimmed) is a secret line. Defaults to none. */
  token?: string | undefined;
  /** Receives a warning when the file cannot be read or holds bad lines. */
  logger: Logger;
}

/** How long an unterminated last line must stay unchanged before it counts, in ms. */
export const DEFAULT_SETTLE_MS = 1000;
/** How soon a read that met a file being written is tried again, in ms. */
const unstableRetryMs = 50;
/** Line numbers logged per kind of refused line. */
const maxLoggedLineNumbers = 20;

export interface ProjectsFileTracker extends ProjectTracker {
  /** Reads the file; resolves when a read that started after this call is done (never rejects). */
  refresh(): Promise<void>;
  /** Stops reporting a `--project` id (the server said it was removed). File ids are the daemon's to drop. */
  forgetFixed(projectId: string): void;
  /** Stops the refresh timer. */
  close(): void;
}

/**
 * Parses a projects file: one id per line; surrounding whitespace is
 * trimmed; blank lines and lines whose first non-blank character is `#`
 * are ignored. Everything else on a line is the id, taken literally.
 */
export function parseProjectsFile(text: string): string[] {
  const ids: string[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    ids.push(line);
  }
  return ids;
}

/** Why a line was refused (the line itself is never logged). */
export type RefusedLineKind = "invalid-utf8" | "invalid-id" | "secret";

export interface ParsedProjectsFile {
  ids: string[];
  /** 1-based line numbers of refused lines, by kind. */
  refused: Record<RefusedLineKind, number[]>;
}

/**
 * An assignment (`KEY=VALUE`, `export KEY=VALUE`, `- KEY=VALUE` in YAML,
 * `key: value`, `key:value`, `"key": "value"`, `{"key":"value"}`,
 * `//host/:_authToken=…`) whose key, any run of non-blank characters,
 * quoted or not, at the start of the line or after a blank, `{`, `,`, `[` or
 * `-`, looks like it names a secret.
 */
const secretAssignment =
  /(?:^|[\s{,[-])(?:export\s+)?(["']?)[^\s"'={},[\]]*(?:TOKEN|SECRET|PASSW(?:OR)?D|PASSPHRASE|PWD|KEY|AUTH|CREDENTIAL|PRIVATE|COOKIE|SESSION|BEARER)[^\s"'={},[\]]*\1\s*(?:=|:)/i;

/**
 * A secret-looking key, then blanks and a value (`ENGRAM_TOKEN abc`, netrc's
 * `password hunter2`): a key-value pair without `=` or `:`.
 */
const secretKeyValue = /(?:^|\s)[A-Za-z0-9_.-]*(?:TOKEN|SECRET|PASSW(?:OR)?D|PASSPHRASE|CREDENTIAL)[A-Za-z0-9_.-]*\s+\S/i;

/** A URL with user info (`scheme://user:password@host`, `https://TOKEN@host`), anywhere on the line. */
const urlWithUserInfo = /[a-z][a-z0-9+.-]*:\/\/[^\s/?#@]+@/i;

/** Whether a (trimmed) line looks like an assignment to a secret-looking key, or holds a URL with user info. */
export function isSecretAssignment(line: string): boolean {
  return secretAssignment.test(line) || secretKeyValue.test(line) || urlWithUserInfo.test(line);
}

/**
 * Parses a projects file's bytes: lines split at "\n" (a "\r" before it is
 * dropped), each decoded as strict UTF-8, trimmed; blank and `#` lines are
 * ignored; a line that is not valid UTF-8, looks like a secret assignment,
 * holds `token` (the bridge's bearer token, trimmed; ignored when empty) or
 * is not a valid id is refused (by line number).
 */
export function parseProjectsFileBytes(bytes: Uint8Array, token?: string): ParsedProjectsFile {
  const secret = token?.trim() ?? "";
  const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });
  const refused: ParsedProjectsFile["refused"] = { "invalid-utf8": [], "invalid-id": [], secret: [] };
  const ids: string[] = [];
  let start = 0;
  let lineNo = 0;
  while (start < bytes.length) {
    let end = bytes.indexOf(0x0a, start);
    if (end < 0) end = bytes.length;
    lineNo++;
    let stop = end;
    if (stop > start && bytes[stop - 1] === 0x0d) stop--;
    const raw = bytes.subarray(start, stop);
    start = end + 1;
    let text: string;
    try {
      text = decoder.decode(raw);
    } catch {
      refused["invalid-utf8"].push(lineNo);
      continue;
    }
    const line = text.trim();
    if (line === "" || line.startsWith("#")) continue;
    if (isSecretAssignment(line) || (secret !== "" && line.includes(secret))) refused.secret.push(lineNo);
    else if (projectIdProblem(line) !== undefined) refused["invalid-id"].push(lineNo);
    else ids.push(line);
  }
  return { ids, refused };
}

/** A read that met a file being written: keep the last ids (and read again after `retryMs`). */
interface Unstable {
  unstable: string;
  retryMs: number;
}

/** A problem reading the file: `key` decides whether it was already logged. */
interface ReadProblem {
  key: string;
  log: () => void;
}

/**
 * A tracker over `--project` ids and a projects file. A file that cannot be
 * read (missing, unreadable, not a regular file, too large) is logged at
 * warn once per distinct problem and counts as empty until it can be read
 * again; the command-line ids always count.
 */
export function createProjectsFileTracker(options: ProjectsFileTrackerOptions): ProjectsFileTracker {
  const fixed = new Set(options.fixedIds ?? []);
  const { path, logger } = options;
  const maxBytes = options.maxBytes ?? defaultProjectsFileMaxBytes;
  const refreshMs = options.refreshMs ?? DEFAULT_REFRESH_MS;
  let fromFile: string[] = [];
  let lastProblem: string | undefined;
  let lastCount: number | undefined;
  let lastRefused: number | undefined;
  let reading: Promise<void> | undefined;
  let followUp: Promise<void> | undefined;

  const noFollow = options.noFollow ?? false;
  const settleMs = options.settleMs ?? DEFAULT_SETTLE_MS;
  const now = options.now ?? (() => performance.now());
  /** The version of the file (with no final newline) first seen, and when. */
  let seenVersion: { version: string; sinceMs: number } | undefined;
  const uid = process.getuid?.();
  const groups = new Set<number>([process.getgid?.() ?? -1, ...(process.getgroups?.() ?? [])]);
  let retryTimer: NodeJS.Timeout | undefined;
  let unstableSince: string | undefined;
  let closed = false;

  const cannotRead = (file: string, err: unknown): ReadProblem => {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    if (noFollow && code === "ELOOP")
      return {
        key: "symlink",
        log: () =>
          logger.warn(
            { path: file },
            "the projects file is a symlink and --projects-file-no-follow is set: refusing it; reporting only the --project ids",
          ),
      };
    return { key: code, log: () => logger.warn({ path: file, err }, "cannot read the projects file; reporting only the --project ids") };
  };

  const refuse = (key: string, msg: string, extra: Record<string, unknown> = {}): ReadProblem => ({
    key,
    log: () => logger.warn({ path, ...extra }, `${msg}: refusing it; reporting only the --project ids`),
  });

  /** Why the file's owner or mode rules it out, if they do. */
  function ownerProblem(st: BigIntStats): ReadProblem | undefined {
    const mode = Number(st.mode);
    if ((mode & 0o002) !== 0)
      return refuse("world-writable", "the projects file is writable by every user (anyone could make the sidecar report ids)", {
        mode: (mode & 0o777).toString(8),
      });
    if (uid === undefined) return undefined;
    const owner = Number(st.uid);
    if (owner === uid || owner === 0 || groups.has(Number(st.gid))) return undefined;
    return refuse(`owner:${owner}`, "the projects file is owned by neither the sidecar's user, its group nor root", {
      uid: owner,
      gid: Number(st.gid),
    });
  }

  const sameVersion = (a: BigIntStats, b: BigIntStats): boolean =>
    a.ino === b.ino && a.dev === b.dev && a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs;

  async function readOnce(file: string): Promise<ParsedProjectsFile | ReadProblem | Unstable> {
    let handle: FileHandle;
    try {
      // O_NONBLOCK: opening a FIFO without a writer would otherwise wait for one.
      handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY | (noFollow ? constants.O_NOFOLLOW : 0));
    } catch (err) {
      return cannotRead(file, err);
    }
    try {
      const before = await handle.stat({ bigint: true });
      if (!before.isFile()) {
        return refuse(
          "not-regular",
          "the projects file is not a regular file (a FIFO, device, socket or directory, perhaps through a symlink)",
        );
      }
      const size = Number(before.size);
      if (size > maxBytes)
        return refuse(`too-large:${size}`, `the projects file is larger than ${maxBytes} bytes`, { bytes: size, maxBytes });
      const owned = ownerProblem(before);
      if (owned !== undefined) return owned;
      // Read at most maxBytes + 1: a file that grew since fstat is still bounded.
      const buf = Buffer.alloc(Math.min(maxBytes + 1, Math.max(size + 1, 64 * 1024)));
      let length = 0;
      for (;;) {
        const { bytesRead } = await handle.read(buf, length, buf.length - length, length);
        if (bytesRead === 0) break;
        length += bytesRead;
        if (length >= buf.length) break;
      }
      const after = await handle.stat({ bigint: true });
      // Changed while being read (or since fstat): not one version. Keep the last ids.
      if (!sameVersion(before, after) || length !== size) return { unstable: "changed while being read", retryMs: unstableRetryMs };
      if (length > 0 && buf[length - 1] !== 0x0a) {
        // A last line without a newline: a writer may be in the middle of it.
        // A future mtime (clock skew, touch -d, a restored backup) counts as "changed now",
        // but one version seen unchanged for settleMs by our own clock is settled too; the
        // delay stays within settleMs (a delay past 2^31 - 1 ms would fire after 1 ms).
        const version = `${after.dev}:${after.ino}:${after.size}:${after.mtimeNs}:${after.ctimeNs}`;
        if (seenVersion?.version !== version) seenVersion = { version, sinceMs: now() };
        const ageMs = Math.max(0, Date.now() - Number(after.mtimeMs), now() - seenVersion.sinceMs);
        if (ageMs < settleMs)
          return { unstable: "its last line has no newline yet", retryMs: Math.min(settleMs, Math.max(unstableRetryMs, settleMs - ageMs)) };
      }
      const bytes = buf.subarray(0, length);
      if (/^-----BEGIN [A-Z0-9 ]+-----\s*$/m.test(bytes.toString("latin1"))) {
        return {
          key: "pem",
          log: () =>
            logger.error(
              { path: file },
              "the projects file holds a PEM block (a key or certificate?): refusing it; its lines are never sent as ids",
            ),
        };
      }
      const parsed = parseProjectsFileBytes(bytes, options.token);
      if (parsed.refused.secret.length > 0) {
        const lines = parsed.refused.secret;
        return {
          key: `secret:${lines.join(",")}`,
          log: () =>
            logger.error(
              { path: file, secretLines: lines.length, lineNumbers: lines.slice(0, maxLoggedLineNumbers) },
              "the projects file has secret lines (KEY=VALUE lines with secret-looking keys, URLs with user info, or the bridge's token: an env or token file?): refusing it; its lines are never sent as ids",
            ),
        };
      }
      return parsed;
    } catch (err) {
      return cannotRead(file, err);
    } finally {
      await handle.close().catch(() => {});
    }
  }

  async function read(file: string): Promise<void> {
    const result = await readOnce(file);
    if ("unstable" in result) {
      // Logged once per run of unstable reads; the next read comes soon.
      if (unstableSince === undefined)
        logger.info(
          { path: file, why: result.unstable },
          "the projects file is being written; keeping the previous ids until a stable read",
        );
      unstableSince ??= result.unstable;
      if (!closed && retryTimer === undefined) {
        retryTimer = setTimeout(() => {
          retryTimer = undefined;
          void refresh();
        }, result.retryMs);
        retryTimer.unref();
      }
      return;
    }
    unstableSince = undefined;
    if (!("ids" in result)) {
      // A PEM block, secrets, a FIFO, too large, unreadable: the file's ids are dropped.
      if (result.key !== lastProblem) result.log();
      lastProblem = result.key;
      lastCount = undefined;
      fromFile = [];
      return;
    }
    const invalidUtf8 = result.refused["invalid-utf8"];
    const invalidId = result.refused["invalid-id"];
    const refused = invalidUtf8.length + invalidId.length;
    if (refused > 0 && refused !== lastRefused) {
      logger.warn(
        {
          path: file,
          refused,
          ...(invalidUtf8.length > 0
            ? { invalidUtf8: invalidUtf8.length, invalidUtf8Lines: invalidUtf8.slice(0, maxLoggedLineNumbers) }
            : {}),
          ...(invalidId.length > 0 ? { invalidId: invalidId.length, invalidIdLines: invalidId.slice(0, maxLoggedLineNumbers) } : {}),
        },
        "the projects file has lines that are not valid UTF-8 or not valid project ids (too long or with control characters): skipping them",
      );
    }
    lastRefused = refused;
    if (lastProblem !== undefined) logger.info({ path: file }, "projects file readable again");
    lastProblem = undefined;
    if (result.ids.length !== lastCount) logger.debug({ path: file, ids: result.ids.length }, "projects file read");
    lastCount = result.ids.length;
    fromFile = result.ids;
  }

  /** A read that starts after the call: joins the queued follow-up when a read is in flight. */
  const refresh = (): Promise<void> => {
    if (path === undefined) return Promise.resolve();
    if (reading !== undefined) {
      followUp ??= reading.then(() => {
        followUp = undefined;
        return refresh();
      });
      return followUp;
    }
    reading = read(path)
      .catch((err: unknown) => logger.warn({ path, err }, "cannot read the projects file"))
      .finally(() => (reading = undefined));
    return reading;
  };

  const timer = path !== undefined && refreshMs > 0 ? setInterval(() => void refresh(), refreshMs) : undefined;
  timer?.unref();

  return {
    connectedProjectIds(): Iterable<string> {
      if (path === undefined) return [...fixed];
      void refresh();
      return new Set([...fixed, ...fromFile]);
    },
    refresh,
    forgetFixed(projectId) {
      fixed.delete(projectId);
    },
    close() {
      closed = true;
      if (timer !== undefined) clearInterval(timer);
      if (retryTimer !== undefined) clearTimeout(retryTimer);
    },
  };
}
