/**
 * The machine's dedup window over plain arrays, so that it stays in the
 * JSON-serialisable context and shows in the inspector. Keys are
 * `removed:<projectId>`; the array is oldest first; a hit moves its key to the
 * end (LRU), a miss appends and evicts the oldest beyond capacity.
 */
export function removalKey(projectId: string): string {
  return `removed:${projectId}`;
}

export interface AdmitResult {
  keys: string[];
  fresh: string[];
  duplicates: string[];
}

/** Admits project ids in order; returns the new window and which ids were new. */
export function admitRemovals(window: readonly string[], projectIds: readonly string[], capacity: number): AdmitResult {
  const keys = window.slice();
  const fresh: string[] = [];
  const duplicates: string[] = [];
  for (const id of projectIds) {
    const key = removalKey(id);
    const at = keys.lastIndexOf(key);
    if (at >= 0) {
      duplicates.push(id);
      if (at !== keys.length - 1) {
        keys.splice(at, 1);
        keys.push(key);
      }
      continue;
    }
    fresh.push(id);
    keys.push(key);
    if (keys.length > capacity) keys.splice(0, keys.length - capacity);
  }
  return { keys, fresh, duplicates };
}
