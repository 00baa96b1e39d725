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
 * Every id is checked (`projectIdProblem`); refused lines are counted and
 * logged without being echoed whole. A file holding a PEM block (a symlink
 * to a key, say) is refused whole, so its lines never reach the server.
 */
import { constants } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import type { Logger, ProjectTracker } from "../types.js";
import { previewOf, projectIdProblem } from "./id-rules.js";

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
  /** Receives a warning when the file cannot be read or holds bad lines. */
  logger: Logger;
}

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

/** A read that met a file being written: keep the last ids. */
const changing = Symbol("changing");

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

  async function readOnce(file: string): Promise<string[] | ReadProblem | typeof changing> {
    let handle: FileHandle;
    try {
      // O_NONBLOCK: opening a FIFO without a writer would otherwise wait for one.
      handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      return { key: code, log: () => logger.warn({ path: file, err }, "cannot read the projects file; reporting only the --project ids") };
    }
    try {
      const st = await handle.stat();
      if (!st.isFile()) {
        return {
          key: "not-regular",
          log: () =>
            logger.warn(
              { path: file },
              "the projects file is not a regular file (a FIFO, device, socket or directory, perhaps through a symlink): refusing it; reporting only the --project ids",
            ),
        };
      }
      if (st.size > maxBytes) {
        return {
          key: `too-large:${st.size}`,
          log: () =>
            logger.warn(
              { path: file, bytes: st.size, maxBytes },
              `the projects file is larger than ${maxBytes} bytes: refusing it; reporting only the --project ids`,
            ),
        };
      }
      // Read at most maxBytes + 1: a file that grew since fstat is still bounded.
      const buf = Buffer.alloc(Math.min(maxBytes + 1, Math.max(st.size + 1, 64 * 1024)));
      let length = 0;
      for (;;) {
        const { bytesRead } = await handle.read(buf, length, buf.length - length, length);
        if (bytesRead === 0) break;
        length += bytesRead;
        if (length >= buf.length) break;
      }
      if (length > maxBytes) {
        return {
          key: "grew-too-large",
          log: () =>
            logger.warn(
              { path: file, maxBytes },
              `the projects file grew past ${maxBytes} bytes while being read: refusing it; reporting only the --project ids`,
            ),
        };
      }
      // Filled the buffer: it grew while being read, and its last line may be cut. Keep the last ids.
      if (length === buf.length) return changing;
      const text = buf.toString("utf8", 0, length);
      if (/^-----BEGIN [A-Z0-9 ]+-----\s*$/m.test(text)) {
        return {
          key: "pem",
          log: () =>
            logger.error(
              { path: file },
              "the projects file holds a PEM block (a key or certificate?): refusing it; its lines are never sent as ids",
            ),
        };
      }
      return parseProjectsFile(text);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      return { key: code, log: () => logger.warn({ path: file, err }, "cannot read the projects file; reporting only the --project ids") };
    } finally {
      await handle.close().catch(() => {});
    }
  }

  async function read(file: string): Promise<void> {
    const result = await readOnce(file);
    if (result === changing) {
      logger.debug({ path: file }, "the projects file changed while being read; keeping the last ids until the next read");
      return;
    }
    if (!Array.isArray(result)) {
      // A PEM block, a FIFO, too large, unreadable: the file's ids are dropped.
      if (result.key !== lastProblem) result.log();
      lastProblem = result.key;
      lastCount = undefined;
      fromFile = [];
      return;
    }
    const ids: string[] = [];
    let refused = 0;
    let example: { preview: string; problem: string } | undefined;
    for (const id of result) {
      const problem = projectIdProblem(id);
      if (problem === undefined) ids.push(id);
      else {
        refused++;
        example ??= { preview: previewOf(id), problem };
      }
    }
    if (refused > 0 && refused !== lastRefused) {
      logger.warn(
        { path: file, refused, example },
        "the projects file has lines that are not valid project ids (too long or with control characters): skipping them",
      );
    }
    lastRefused = refused;
    if (lastProblem !== undefined) logger.info({ path: file }, "projects file readable again");
    lastProblem = undefined;
    if (ids.length !== lastCount) logger.debug({ path: file, ids: ids.length }, "projects file read");
    lastCount = ids.length;
    fromFile = ids;
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
      if (timer !== undefined) clearInterval(timer);
    },
  };
}
