/**
 * The public HandlerRegistry: who hears about removed projects, in
 * registration order, each with the name used in logs and outcomes. The
 * fan-out of one removal to these handlers is src/removal-fan-out.ts.
 */
import { BridgeError } from "./errors.js";
import type { ProjectRemovalAware } from "./types.js";

/** A handler as the registry holds it, with the name used in logs and outcomes. */
export interface RegisteredHandler {
  readonly name: string;
  readonly handler: ProjectRemovalAware;
}

interface Entry {
  readonly registered: RegisteredHandler;
  readonly unregister: () => void;
}

/**
 * Who hears about removed projects. Handlers are kept in registration order;
 * each is named once, when registered: its `name` if it is a non-empty
 * string, else its constructor's name unless that is "Object", else
 * `handler#N` (N counts registrations from 1).
 */
export class HandlerRegistry {
  readonly #entries = new Map<ProjectRemovalAware, Entry>();
  #registrations = 0;
  /** The frozen list handlers() returns, shared until the registry changes. */
  #snapshot: readonly RegisteredHandler[] | undefined;

  /**
   * Adds `handler` and returns a function that removes it again (calling it
   * more than once, or after the handler was registered anew, does nothing).
   * Registering an object that is already registered keeps its place and
   * returns the same function. Throws a BridgeError "invalid_argument" when
   * `handler` has no `onProjectRemoved` method.
   */
  register(handler: ProjectRemovalAware): () => void {
    if (!hasRemovalMethod(handler)) {
      throw new BridgeError("a removal handler needs an onProjectRemoved(projectId, info) method", "invalid_argument");
    }
    const existing = this.#entries.get(handler);
    if (existing !== undefined) return existing.unregister;
    this.#registrations += 1;
    const registered: RegisteredHandler = Object.freeze({ name: handlerName(handler, this.#registrations), handler });
    const entry: Entry = {
      registered,
      unregister: () => {
        if (this.#entries.get(handler) !== entry) return;
        this.#entries.delete(handler);
        this.#snapshot = undefined;
      },
    };
    this.#entries.set(handler, entry);
    this.#snapshot = undefined;
    return entry.unregister;
  }

  /** How many handlers are registered. */
  get size(): number {
    return this.#entries.size;
  }

  /**
   * A snapshot of the registered handlers, in registration order. The frozen
   * array is shared between calls until a handler is registered or removed,
   * so a dispatch costs no copy.
   */
  handlers(): readonly RegisteredHandler[] {
    this.#snapshot ??= Object.freeze(Array.from(this.#entries.values(), (e) => e.registered));
    return this.#snapshot;
  }
}

function hasRemovalMethod(handler: unknown): handler is ProjectRemovalAware {
  if (handler === null || (typeof handler !== "object" && typeof handler !== "function")) return false;
  try {
    return typeof (handler as { onProjectRemoved?: unknown }).onProjectRemoved === "function";
  } catch {
    return false;
  }
}

function handlerName(handler: ProjectRemovalAware, ordinal: number): string {
  try {
    const own: unknown = handler.name;
    if (typeof own === "string" && own.trim() !== "") return own;
    const ctor: unknown = (Object.getPrototypeOf(handler) as { constructor?: unknown } | null)?.constructor;
    const ctorName: unknown = typeof ctor === "function" ? ctor.name : undefined;
    if (typeof ctorName === "string" && ctorName !== "" && ctorName !== "Object") return ctorName;
  } catch {
    // A throwing getter falls through to the ordinal name.
  }
  return `handler#${ordinal}`;
}
