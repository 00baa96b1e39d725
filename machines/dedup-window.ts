/**
 * The machine's dedup window. It lives in the JSON-serialisable context as a
 * plain array of keys (`removed:<projectId>`, oldest first) so that it shows
 * in the inspector and survives a persisted snapshot. It is first in, first
 * out: a miss appends and evicts the oldest beyond capacity; a hit (a
 * suppressed duplicate) changes nothing, so a server that keeps repeating a
 * removal can never keep its entry alive forever. An entry leaves early when
 * the project starts a new life (`forgetRemovals`: docs/design.md "Delivery
 * semantics").
 *
 * Lookups are O(1): each window array has a `Set` of its keys beside it, in a
 * WeakMap keyed by the array itself (never in context). Admitting hands the
 * set over to the new array, so a batch costs one array copy plus O(1) per
 * id; an array with no set (a restored snapshot, or an older window someone
 * admits into again) gets one built from its keys. Windows are never mutated.
 */
export function removalKey(projectId: string): string {
  return `${KEY_PREFIX}${projectId}`;
}

const KEY_PREFIX = "removed:";

/** The project ids of a window's keys, oldest first. */
export function windowProjectIds(window: readonly string[]): string[] {
  return window.map((key) => key.slice(KEY_PREFIX.length));
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

/** Any batch: one copy of the window, then each id in order (a hit leaves the window as it is). */
function admitWithDuplicates(window: readonly string[], projectIds: readonly string[], capacity: number, set: Set<string>): AdmitResult {
  const keys = window.slice();
  const fresh: string[] = [];
  const duplicates: string[] = [];
  for (const id of projectIds) {
    const key = removalKey(id);
    if (set.has(key)) {
      duplicates.push(id);
      continue;
    }
    fresh.push(id);
    keys.push(key);
    set.add(key);
    while (keys.length > capacity) set.delete(keys.shift() as string);
  }
  return { keys, fresh, duplicates };
}

/**
 * The window without the given projects' entries (each starts a new life);
 * the same array when none of them is in it.
 */
export function forgetRemovals(window: readonly string[], projectIds: readonly string[]): { keys: string[]; forgotten: string[] } {
  const set = keySetOf(window);
  const forgotten: string[] = [];
  const drop = new Set<string>();
  for (const id of projectIds) {
    const key = removalKey(id);
    if (set.has(key) && !drop.has(key)) {
      drop.add(key);
      forgotten.push(id);
    }
  }
  if (forgotten.length === 0) {
    // Nothing changes: the set goes back to the window it came from.
    keySets.set(window, set);
    return { keys: window as string[], forgotten };
  }
  for (const key of drop) set.delete(key);
  const keys = window.filter((k) => !drop.has(k));
  keySets.set(keys, set);
  return { keys, forgotten };
}
