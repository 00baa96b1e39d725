import type { ProjectTracker } from "./types.js";

/**
 * A ProjectTracker that counts the daemon's sessions per project: a project
 * is reported to the heartbeat while at least one session holds it. Call
 * `connect` when a session opens a project and `disconnect` when it closes.
 */
export class SessionTracker implements ProjectTracker {
  readonly #sessions = new Map<string, number>();

  /** Counts one more session on `projectId`. An empty id is ignored. */
  connect(projectId: string): void {
    if (typeof projectId !== "string" || projectId === "") return;
    this.#sessions.set(projectId, (this.#sessions.get(projectId) ?? 0) + 1);
  }

  /**
   * Counts one session less on `projectId`; at zero the project is no longer
   * listed. A disconnect without a matching connect is ignored.
   */
  disconnect(projectId: string): void {
    const count = this.#sessions.get(projectId);
    if (count === undefined) return;
    if (count <= 1) this.#sessions.delete(projectId);
    else this.#sessions.set(projectId, count - 1);
  }

  /** Whether the project has at least one session. */
  has(projectId: string): boolean {
    return this.#sessions.has(projectId);
  }

  /** The ids with at least one session, each once, in first-connect order (a snapshot). */
  connectedProjectIds(): Iterable<string> {
    return [...this.#sessions.keys()];
  }

  /** How many sessions hold `projectId` (0 when none). */
  sessionCount(projectId: string): number {
    return this.#sessions.get(projectId) ?? 0;
  }

  /** How many projects have at least one session. */
  get size(): number {
    return this.#sessions.size;
  }
}
