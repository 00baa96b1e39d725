/** Passed to onSyncCall listeners when a SyncProjectState call arrives (past authentication). */
export interface SyncCallInfo {
  clientId: string;
  /** How many ids the call reported. */
  reportedIds: number;
}

/** The last client_id each RPC presented; null before the first call. */
export interface LastClientIds {
  projectEvents: string | null;
  syncProjectState: string | null;
}

/** Counters of the RPC handlers, plain JSON. */
export interface CallLogStats {
  syncCalls: number;
  syncIdsReported: number;
  streamsRejected: number;
  lastClientIds: LastClientIds;
}

/** What the RPC handlers saw: call counts, reported ids, client ids. */
export class CallLog {
  private syncCalls = 0;
  private syncIdsReported = 0;
  private streamsRejected = 0;
  private readonly lastClientIds: LastClientIds = { projectEvents: null, syncProjectState: null };
  private readonly syncListeners = new Set<(info: SyncCallInfo) => void>();

  /** A SyncProjectState call arrived and passed authentication. */
  syncReceived(clientId: string, reportedIds: number): void {
    this.syncCalls++;
    this.lastClientIds.syncProjectState = clientId;
    const info: SyncCallInfo = { clientId, reportedIds };
    for (const listener of [...this.syncListeners]) listener(info);
  }

  /** A SyncProjectState call is being answered with `count` reported ids. */
  syncAnswered(count: number): void {
    this.syncIdsReported += count;
  }

  /** A ProjectEvents call was accepted. */
  streamAccepted(clientId: string): void {
    this.lastClientIds.projectEvents = clientId;
  }

  /** A ProjectEvents call was refused by rejectStreams(). */
  streamRejected(): void {
    this.streamsRejected++;
  }

  get syncCallCount(): number {
    return this.syncCalls;
  }

  /** Calls `listener` for each SyncProjectState call; returns the unsubscribe function. */
  onSyncCall(listener: (info: SyncCallInfo) => void): () => void {
    this.syncListeners.add(listener);
    return () => this.syncListeners.delete(listener);
  }

  stats(): CallLogStats {
    return {
      syncCalls: this.syncCalls,
      syncIdsReported: this.syncIdsReported,
      streamsRejected: this.streamsRejected,
      lastClientIds: { ...this.lastClientIds },
    };
  }
}
