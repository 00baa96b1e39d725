/**
 * The machine's dedup window. It lives in the JSON-serialisable context as a
 * plain array of keys (`removed:<projectId>`, oldest first) so that it shows
 * in the inspector and survives a persisted snapshot; a hit moves its key to
 * the end (LRU), a miss appends and evicts the oldest beyond capacity.
 *
 * Lookups are O(1): each window array has a `Set` of its keys beside it, in a
 * WeakMap keyed by the array itself (never in context). Admitting hands the
 * set over to the new array, so a batch costs one array copy plus O(1) per
 * id; an array with no set (a restored snapshot, or an older window someone
 * admits into again) gets one built from its keys. Windows are never mutated.
 */
export function removalKey(projectId: string): string {
  return `removed:${projectId}`;
}

export interface AdmitResult {
  keys: string[];
  fresh: string[];
  duplicates: string[];
}

const keySets = new WeakMap<readonly string[], Set<string>>();

/** The set of a window's keys: the one handed over, or built from the array. */
function keySetOf(window: readonly string[]): Set<string> {
  const set = keySets.get(window);
  if (set === undefined) return new Set(window);
  // The set now belongs to the window being built; the old array gets a
  // fresh one if it is ever admitted into again.
  keySets.delete(window);
  return set;
}

/** Admits project ids in order; returns the new window and which ids were new. */
export function admitRemovals(window: readonly string[], projectIds: readonly string[], capacity: number): AdmitResult {
  const set = keySetOf(window);
  const result = admitAllFresh(window, projectIds, capacity, set) ?? admitWithDuplicates(window, projectIds, capacity, set);
  keySets.set(result.keys, set);
  return result;
}

/**
 * The common case, every id new and distinct: the new window is built at its
 * exact size in one allocation (no copy that push() then grows). Undefined,
 * with the set as it was, when some id is already in the window or repeats
 * within the batch.
 */
function admitAllFresh(
  window: readonly string[],
  projectIds: readonly string[],
  capacity: number,
  set: Set<string>,
): AdmitResult | undefined {
  const added: string[] = new Array(projectIds.length);
  for (let i = 0; i < projectIds.length; i++) {
    const key = removalKey(projectIds[i] as string);
    if (set.has(key)) {
      for (let j = 0; j < i; j++) set.delete(added[j] as string);
      return undefined;
    }
    set.add(key);
    added[i] = key;
  }
  // The window then the batch, oldest first; the oldest beyond capacity go.
  const total = window.length + added.length;
  const drop = Math.max(0, total - capacity);
  const at = (i: number): string => (i < window.length ? window[i] : added[i - window.length]) as string;
  for (let i = 0; i < drop; i++) set.delete(at(i));
  const keys: string[] = new Array(total - drop);
  for (let i = drop; i < total; i++) keys[i - drop] = at(i);
  return { keys, fresh: projectIds.slice(), duplicates: [] };
}

/** Any batch: one copy of the window, then each id in order (a hit moves to the end). */
function admitWithDuplicates(window: readonly string[], projectIds: readonly string[], capacity: number, set: Set<string>): AdmitResult {
  const keys = window.slice();
  const fresh: string[] = [];
  const duplicates: string[] = [];
  for (const id of projectIds) {
    const key = removalKey(id);
    if (set.has(key)) {
      duplicates.push(id);
      // LRU refresh: only a duplicate pays a scan, and only if it is not the newest.
      if (keys[keys.length - 1] !== key) {
        keys.splice(keys.lastIndexOf(key), 1);
        keys.push(key);
      }
      continue;
    }
    fresh.push(id);
    keys.push(key);
    set.add(key);
    while (keys.length > capacity) set.delete(keys.shift() as string);
  }
  return { keys, fresh, duplicates };
}
