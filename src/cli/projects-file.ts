/**
 * The sidecar's ProjectTracker: ids from `--project` flags plus the lines of
 * a projects file, read again at every heartbeat so the host daemon can
 * rewrite it at any time.
 */
import { readFileSync } from "node:fs";
import type { Logger, ProjectTracker } from "../types.js";

export interface ProjectsFileTrackerOptions {
  /** Ids given on the command line (`--project`). Defaults to none. */
  fixedIds?: readonly string[];
  /** The file to read at every heartbeat. Defaults to none. */
  path?: string | undefined;
  /** Receives a warning when the file cannot be read. */
  logger: Logger;
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

/**
 * A tracker over `--project` ids and a projects file. A file that cannot be
 * read (missing, unreadable) is logged at warn once per distinct error and
 * counts as empty until it can be read again; the command-line ids always
 * count.
 */
export function createProjectsFileTracker(options: ProjectsFileTrackerOptions): ProjectTracker {
  const fixed = [...(options.fixedIds ?? [])];
  const { path, logger } = options;
  let lastProblem: string | undefined;
  let lastCount: number | undefined;
  return {
    connectedProjectIds(): Iterable<string> {
      if (path === undefined) return fixed;
      let fromFile: string[] = [];
      try {
        fromFile = parseProjectsFile(readFileSync(path, "utf8"));
        if (lastProblem !== undefined) logger.info({ path }, "projects file readable again");
        lastProblem = undefined;
        if (fromFile.length !== lastCount) logger.debug({ path, ids: fromFile.length }, "projects file read");
        lastCount = fromFile.length;
      } catch (err) {
        const problem = (err as NodeJS.ErrnoException).code ?? String(err);
        if (problem !== lastProblem) logger.warn({ path, err }, "cannot read the projects file; reporting only the --project ids");
        lastProblem = problem;
        lastCount = undefined;
      }
      return new Set([...fixed, ...fromFile]);
    },
  };
}
