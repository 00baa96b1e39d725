/**
 * `run`'s stdout contract: one JSON line per removal, with every key always
 * present (null when the source does not carry it), so a daemon in any
 * language can read it line by line.
 */
import type { ProjectRemovalAware, RemovalInfo } from "../types.js";

/** One line of `run`'s stdout. */
export interface RemovalLine {
  projectId: string;
  source: RemovalInfo["source"];
  /** The server's event id (stream removals), else null. */
  eventId: string | null;
  /** The server's stated reason (stream removals), else null. */
  reason: string | null;
  /** When the sidecar handed the removal to its handlers, ISO 8601 UTC. */
  receivedAt: string;
}

export function formatRemovalLine(projectId: string, info: RemovalInfo, now: Date): string {
  const line: RemovalLine = {
    projectId,
    source: info.source,
    eventId: info.eventId ?? null,
    reason: info.reason ?? null,
    receivedAt: now.toISOString(),
  };
  return `${JSON.stringify(line)}\n`;
}

/**
 * A handler writing each removal as one JSON line through `write`. When
 * `write` returns a promise (the CLI's back-pressured stdout), the handler
 * resolves with it: a full pipe holds the dispatch of the next removal.
 */
export function createRemovalLineHandler(
  write: (line: string) => void | Promise<void>,
  now: () => Date = () => new Date(),
): ProjectRemovalAware {
  return {
    name: "stdout",
    onProjectRemoved(projectId, info) {
      return write(formatRemovalLine(projectId, info, now()));
    },
  };
}
