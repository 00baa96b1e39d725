/**
 * The reference model: what must have happened, checked against what did.
 * It is fed, in order, everything the run observes (server trace entries,
 * tracker reads, handler calls, status samples) and records violations of
 * the delivery contract:
 *
 * - A LIFE of a project id (for this bridge) starts when a CREATED event for
 *   it reaches the bridge's stream, when a heartbeat answer does not list it
 *   as removed although it was reported (the server says it is live), or
 *   when the tracker lists it in a round after a round that did not, or
 *   lists it in a round after the removal of the current life was delivered
 *   (the daemon opened it again).
 * - Every handler call has a SOURCE: a REMOVED event that reached the
 *   bridge's stream (matched by event id), or a heartbeat answer that listed
 *   the id as removed; the server only says so while the id is not live,
 *   so "a delivery with no source" is "a delivery for a live project".
 *   A delivery belongs to the life its source arrived in.
 * - At most one delivery per life (across both paths).
 * - Every removal of a project the tracker holds (at the removal, and until
 *   delivery) is delivered within `boundMs` of max(removal, heal), unless
 *   the project was created again or the daemon dropped it first. While
 *   the tracker cannot be read (connectedProjectIds() throws) no heartbeat
 *   round can report the project, so a removal the stream lost is owed only
 *   `boundMs` after the tracker reads again (a blind window that starts
 *   before the deadline moves it). A REMOVED event the server dropped for a
 *   slow stream (its buffer full) is owed all the same: by the heartbeat.
 * - A project the server answered as `unknown` (live, nobody heartbeats it)
 *   is never delivered on that answer's account.
 * - A heartbeat that never reached the wire (queued behind the stream
 *   under a concurrency limit) never makes the bridge call the link suspect.
 * - A reopen never cancels a heartbeat round in progress: a sync the
 *   bridge aborts before its deadline (and not for stop()) breaks this.
 * - The dispatch queue stays within the bounds status().dispatch shows: the
 *   count within maxQueued, the bytes within maxQueuedBytes plus one
 *   removal's estimate (`removalBytesSlack`), and the bounds are the ones
 *   the options asked for.
 * - status() is never `streaming` for longer than openConfirmMs + 2 RTT
 *   while the server holds no stream for the bridge.
 * - After stop(): it resolved within stopTimeoutMs, no timer of the bridge
 *   is left on the clock, no stream is left open on the server.
 */
import type { RemovalInfo } from "../../src/index.js";
import type { MemoryServerTraceEntry } from "../../src/testing/index.js";

export interface Violation {
  /** A stable class name, used to group failures and to shrink. */
  kind: string;
  atMs: number;
  detail: string;
}

interface Source {
  seq: number;
  life: number;
  path: "stream" | "heartbeat";
  eventId?: string;
}

interface Obligation {
  id: string;
  removedAtMs: number;
  open: boolean;
}

export interface ModelOptions {
  client: string;
  /** When every fault is lifted. */
  healAtMs: number;
  boundMs: number;
  streamingSlackMs: number;
  /** The bridge's sync deadline: a sync aborted sooner was canceled by the bridge, not timed out. */
  syncTimeoutMs: number;
  /**
   * The bridge's dedup window (BridgeOptions.dedupCapacity). The contract is
   * per window: a second call in one life is allowed only when at least this
   * many other removals were handed on between the two (the first one's
   * entry was evicted). Defaults to 256.
   */
  dedupCapacity?: number;
  /** How far the queue's bytes may pass maxQueuedBytes: one removal's estimate at its largest. Defaults to 0. */
  removalBytesSlack?: number;
}

export class DeliveryModel {
  readonly violations: Violation[] = [];
  #seq = 0;
  readonly #life = new Map<string, number>();
  readonly #sources = new Map<string, Source[]>();
  readonly #consumed = new Map<string, Set<number>>();
  /** Handler calls so far, and the count at which each (id, life) was consumed. */
  #calls = 0;
  readonly #consumedAt = new Map<string, number>();
  /** Second calls in one life the window's bound allowed (a flood evicted the entry). */
  windowEvictedRepeats = 0;
  readonly #obligations: Obligation[] = [];
  #lastRead: Set<string> | undefined;
  #streamingWithoutStreamSince: number | undefined;
  #reportedStatus = false;
  /** Whether the last sync call of the bridge went on the wire. */
  #lastSyncSent = true;
  #suspects = 0;
  #syncCalledAt = 0;
  #stopping = false;
  readonly #reported = new Set<string>();
  /** Ids the server answered as unknown, and not removed, at least once. */
  readonly #unknownListed = new Set<string>();
  /** Windows [fromMs, untilMs) when the tracker could not be read. */
  readonly #blind: Array<{ fromMs: number; untilMs: number }> = [];

  constructor(readonly options: ModelOptions) {}

  #violate(kind: string, atMs: number, detail: string): void {
    this.violations.push({ kind, atMs, detail });
  }

  /** Records a violation class at most once per run (for checks that would repeat every step). */
  #violateOnce(kind: string, atMs: number, detail: string): void {
    if (this.#reported.has(kind)) return;
    this.#reported.add(kind);
    this.#violate(kind, atMs, detail);
  }

  /** status().dispatch, when the bridge has one: the queue within its bounds. */
  queue(queued: number, maxQueued: number, queuedBytes: number, maxQueuedBytes: number, atMs: number, note = ""): void {
    if (queued > maxQueued) this.#violateOnce("queue-over-count-bound", atMs, `${queued} removals queued, bound ${maxQueued}${note}`);
    const slack = this.options.removalBytesSlack ?? 0;
    if (queuedBytes > maxQueuedBytes + slack)
      this.#violateOnce(
        "queue-over-byte-bound",
        atMs,
        `${queuedBytes} bytes queued, bound ${maxQueuedBytes} (+ ${slack} for one removal)${note}`,
      );
  }

  /** status().dispatch shows other bounds than the options asked for. */
  configMismatch(detail: string, atMs: number): void {
    this.#violateOnce("bounds-not-applied", atMs, detail);
  }

  /** The tracker throws when read from `fromMs` until `untilMs`. */
  trackerBlind(fromMs: number, untilMs: number): void {
    this.#blind.push({ fromMs, untilMs });
  }

  #newLife(id: string): void {
    this.#life.set(id, (this.#life.get(id) ?? 0) + 1);
  }

  #addSource(id: string, source: Omit<Source, "seq" | "life">): void {
    let list = this.#sources.get(id);
    if (!list) this.#sources.set(id, (list = []));
    list.push({ ...source, seq: ++this.#seq, life: this.#life.get(id) ?? 0 });
  }

  /** A step of the memory server (only this bridge's client counts for stream and sync entries). */
  serverTrace(e: MemoryServerTraceEntry): void {
    this.#seq++;
    if (e.client !== undefined && e.client !== this.options.client) return;
    if (e.type === "sync.called") {
      this.#lastSyncSent = false;
      this.#syncCalledAt = e.atMs;
    } else if (e.type === "sync.aborted") {
      if (!this.#stopping && e.atMs - this.#syncCalledAt < this.options.syncTimeoutMs) {
        this.#violateOnce(
          "round-canceled",
          e.atMs,
          `a heartbeat round in progress (${e.sent ? "sent" : "not yet sent"} at +${this.#syncCalledAt}) was canceled by the bridge before its deadline (a reopen restarted it)`,
        );
      }
    } else if (e.type === "sync.sent") this.#lastSyncSent = true;
    else if (e.type === "event.delivered") {
      if (e.eventType === "created") this.#newLife(e.projectId);
      else this.#addSource(e.projectId, { path: "stream", eventId: e.eventId });
    } else if (e.type === "sync.answered") {
      const removed = new Set(e.removed);
      for (const id of e.unknown) if (!removed.has(id)) this.#unknownListed.add(id);
      for (const id of e.reported) {
        if (removed.has(id)) this.#addSource(id, { path: "heartbeat" });
        else this.#newLife(id);
      }
    }
  }

  /** The tracker was read (one heartbeat round). */
  trackerRead(ids: readonly string[]): void {
    this.#seq++;
    for (const id of ids) {
      // The brief's rule (absent from the previous round) or the (listed again after
      // the removal of this life was delivered): either starts a new life, so the model
      // never blames a bridge for following one of them.
      const delivered = this.#consumed.get(id)?.has(this.#life.get(id) ?? 0) === true;
      if (this.#lastRead === undefined || !this.#lastRead.has(id) || delivered) this.#newLife(id);
    }
    this.#lastRead = new Set(ids);
  }

  /** A handler call. */
  delivered(id: string, info: RemovalInfo, atMs: number): void {
    const seq = ++this.#seq;
    for (const o of this.#obligations) {
      if (!o.open || o.id !== id || o.removedAtMs > atMs) continue;
      o.open = false;
      // Delivered, but past its bound: as much a breach as never (finish() sees only those still open).
      const due = this.#dueMs(o.removedAtMs);
      if (atMs > due)
        this.#violate("removal-late", atMs, `${id}: removed at +${o.removedAtMs} while tracked, delivered at +${atMs}, due by +${due}`);
    }
    const sources = (this.#sources.get(id) ?? []).filter((s) => s.seq < seq && s.path === info.source);
    let consumed = this.#consumed.get(id);
    if (!consumed) this.#consumed.set(id, (consumed = new Set()));
    let life: number | undefined;
    if (info.source === "stream") {
      const match = sources.filter((s) => s.eventId === info.eventId).at(-1);
      if (match === undefined) {
        this.#violate(
          "delivery-without-source",
          atMs,
          `${id}: stream delivery of event ${info.eventId ?? "?"} that never reached the stream`,
        );
        return;
      }
      life = match.life;
    } else {
      const lives = sources.map((s) => s.life).filter((l) => !consumed.has(l));
      if (sources.length === 0) {
        if (this.#unknownListed.has(id))
          this.#violate(
            "delivered-unknown",
            atMs,
            `${id}: heartbeat delivery of a project the server answered as unknown (live), never as removed`,
          );
        else this.#violate("delivery-without-source", atMs, `${id}: heartbeat delivery but no heartbeat answer listed it as removed`);
        return;
      }
      life = lives.length > 0 ? Math.min(...lives) : sources.at(-1)?.life;
    }
    this.#calls += 1;
    if (life === undefined) return;
    const key = `${id}\u0000${life}`;
    if (consumed.has(life)) {
      const between = this.#calls - 1 - (this.#consumedAt.get(key) ?? 0);
      if (between >= (this.options.dedupCapacity ?? 256)) {
        // The window is bounded: the first call's entry was evicted by `between` others.
        this.windowEvictedRepeats += 1;
        this.#consumedAt.set(key, this.#calls);
        return;
      }
      this.#violate(
        "twice-in-one-life",
        atMs,
        `${id}: a second handler call (${info.source}) in life ${life} of the id, ${between} other removals after the first`,
      );
      return;
    }
    consumed.add(life);
    this.#consumedAt.set(key, this.#calls);
  }

  /** The server removed `id` while the tracker held it. */
  trackedRemoval(id: string, atMs: number): void {
    this.#obligations.push({ id, removedAtMs: atMs, open: true });
  }

  /** The project was created again, or the daemon let go of it: an open removal need not be delivered. */
  release(id: string): void {
    for (const o of this.#obligations) if (o.id === id) o.open = false;
  }

  /** The bridge stopped: nothing more is owed. */
  stopped(): void {
    this.#stopping = true;
    for (const o of this.#obligations) o.open = false;
  }

  /**
   * A status sample after a step. `streamPaused`: the bridge has stopped
   * reading the stream (its share of the dispatch queue is full), so what
   * the server sent, its end included, is still in flight to it: the check
   * of a stream that is gone waits until it reads again.
   */
  status(state: string, serverStreams: number, atMs: number, suspects = 0, streamPaused = false): void {
    if (suspects > this.#suspects && !this.#lastSyncSent) {
      this.#violate(
        "suspect-on-unsent-sync",
        atMs,
        "the bridge took a heartbeat that never went on the wire as a dead link (suspect) and tore the stream down",
      );
    }
    this.#suspects = suspects;
    if (state !== "streaming" || serverStreams > 0 || streamPaused) {
      this.#streamingWithoutStreamSince = undefined;
      return;
    }
    this.#streamingWithoutStreamSince ??= atMs;
    const forMs = atMs - this.#streamingWithoutStreamSince;
    if (forMs > this.options.streamingSlackMs && !this.#reportedStatus) {
      this.#reportedStatus = true;
      this.#violate(
        "streaming-without-stream",
        atMs,
        `status() says streaming, but the server has held no stream for this bridge for ${forMs} ms (since +${this.#streamingWithoutStreamSince})`,
      );
    }
  }

  /** When a removal at `removedAtMs` is owed: the bound after the heal, moved past every blind window of the tracker it meets. */
  #dueMs(removedAtMs: number): number {
    let due = Math.max(removedAtMs, this.options.healAtMs) + this.options.boundMs;
    for (const w of [...this.#blind].sort((a, b) => a.fromMs - b.fromMs)) {
      if (w.fromMs < due && w.untilMs > removedAtMs) due = Math.max(due, w.untilMs + this.options.boundMs);
    }
    return due;
  }

  /** At the end of the run (the clock at `nowMs`): removals owed and not delivered in time. */
  finish(nowMs: number): void {
    for (const o of this.#obligations) {
      if (!o.open) continue;
      const due = this.#dueMs(o.removedAtMs);
      if (due <= nowMs)
        this.#violate("removal-not-delivered", due, `${o.id}: removed at +${o.removedAtMs} while tracked, not delivered by +${due}`);
    }
  }
}
