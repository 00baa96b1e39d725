/**
 * The dev server's state: which projects exist, which were removed, when each
 * live project last had a heartbeat, and the global event id counter. It holds
 * no sockets and reads no clock (callers pass `nowMs`), so one store can be
 * handed from a closed server to its successor and state survives a restart.
 */

interface ProjectRecord {
  /** When the project was created, or first heard of. */
  createdAtMs: number;
  /** Last SyncProjectState that reported it; undefined when never reported. */
  lastHeartbeatMs: number | undefined;
  /** Set once removed. */
  removedAtMs: number | undefined;
  removalReason: string | undefined;
}

/** What SyncProjectState answers for one call. */
export interface SyncOutcome {
  /** Reported ids that the store does not know or has removed, without duplicates. */
  removed: string[];
  /** Live projects never reported, or without a heartbeat for `unknownAfterMs`. */
  unknown: string[];
}

export class ProjectStore {
  private readonly projects = new Map<string, ProjectRecord>();
  private lastEventId = 0n;

  /**
   * Makes `id` a live project. Creating a live id again does nothing; creating
   * a removed id makes it live again (a fresh record).
   */
  create(id: string, nowMs: number): void {
    const existing = this.projects.get(id);
    if (existing !== undefined && existing.removedAtMs === undefined) return;
    this.projects.set(id, { createdAtMs: nowMs, lastHeartbeatMs: undefined, removedAtMs: undefined, removalReason: undefined });
  }

  /**
   * Marks `id` removed (recording it even when it was never created). Returns
   * false when it was already removed.
   */
  remove(id: string, nowMs: number, reason?: string): boolean {
    const existing = this.projects.get(id);
    if (existing?.removedAtMs !== undefined) return false;
    this.projects.set(id, {
      createdAtMs: existing?.createdAtMs ?? nowMs,
      lastHeartbeatMs: existing?.lastHeartbeatMs,
      removedAtMs: nowMs,
      removalReason: reason,
    });
    return true;
  }

  /** True for a live (created, not removed) project. */
  isLive(id: string): boolean {
    const record = this.projects.get(id);
    return record !== undefined && record.removedAtMs === undefined;
  }

  /** True once `id` has been removed. */
  isRemoved(id: string): boolean {
    return this.projects.get(id)?.removedAtMs !== undefined;
  }

  /** The ids of every live project, in creation order. */
  liveIds(): string[] {
    return [...this.projects].filter(([, r]) => r.removedAtMs === undefined).map(([id]) => id);
  }

  /** Stamps a heartbeat on each live id in `ids`; other ids are ignored. */
  heartbeat(ids: Iterable<string>, nowMs: number): void {
    for (const id of ids) {
      const record = this.projects.get(id);
      if (record !== undefined && record.removedAtMs === undefined) record.lastHeartbeatMs = nowMs;
    }
  }

  /**
   * Live projects whose heartbeat is missing (never reported) or
   * `unknownAfterMs` or more ago, as upstream engram answers
   * (`last_heartbeat IS NULL OR last_heartbeat < now - 24 h`): a project
   * nobody reported is unknown at once, whenever it was created.
   */
  unknown(nowMs: number, unknownAfterMs: number): string[] {
    const out: string[] = [];
    for (const [id, record] of this.projects) {
      if (record.removedAtMs !== undefined) continue;
      if (record.lastHeartbeatMs === undefined || nowMs - record.lastHeartbeatMs >= unknownAfterMs) out.push(id);
    }
    return out;
  }

  /**
   * One heartbeat: stamps the reported live ids, then answers which reported
   * ids are removed (or unknown to the store) and which live projects are quiet.
   */
  sync(ids: readonly string[], nowMs: number, unknownAfterMs: number): SyncOutcome {
    this.heartbeat(ids, nowMs);
    const removed = [...new Set(ids)].filter((id) => !this.isLive(id));
    return { removed, unknown: this.unknown(nowMs, unknownAfterMs) };
  }

  /** The next event id: an increasing decimal string, global across streams and restarts. */
  nextEventId(): string {
    this.lastEventId += 1n;
    return this.lastEventId.toString();
  }
}
