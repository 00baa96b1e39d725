import { suite } from "uvu";
import * as assert from "uvu/assert";
import { create } from "@bufbuild/protobuf";
import { createActor, createMachine, SimulatedClock, type AnyEventObject } from "xstate";
import {
  collectProjectIds,
  createProjectEventsActor,
  createSyncProjectStateActor,
  SYNC_CHUNK_SIZE,
  toStreamEvent,
} from "../../src/bridge-actors.js";
import { SyncDeadlineError } from "../../src/call-errors.js";
import { EVENT_ID_MAX_BYTES, PROJECT_ID_MAX_BYTES, REASON_MAX_BYTES } from "../../src/server-data.js";
import { SYNC_REMOVED_BATCH } from "../../machines/bridge.types.js";
import { BridgeError } from "../../src/errors.js";
import { ProjectEventSchema, SyncProjectStateResponseSchema, type ProjectEvent } from "../../src/gen/engram/v1/engram_pb.js";
import type { EventsClient } from "../../src/types.js";

const actors = suite("bridge actors");

/** A parent that records what the actor sends it. */
/** A parent that records what the actor sends it; stream.sent is recorded apart, in `sent`. */
function recordingParent() {
  const got: AnyEventObject[] = [];
  const sent: AnyEventObject[] = [];
  const parent = createActor(
    createMachine({ on: { "*": { actions: ({ event }) => (event.type === "stream.sent" ? sent : got).push(event) } } }),
  );
  parent.start();
  return { parent, got, sent };
}

function streamClient(run: (opts: { signal: AbortSignal; onHeader?: (h: Headers) => void }) => AsyncIterable<ProjectEvent>): EventsClient {
  return {
    projectEvents: (_req, opts) => run(opts),
    syncProjectState: () => Promise.reject(new Error("unused")),
  };
}

/** A client whose stream is never read; `sync` answers the heartbeat. */
function syncClient(sync: EventsClient["syncProjectState"]): EventsClient {
  return {
    projectEvents: () => ({ [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(new Error("unused")) }) }),
    syncProjectState: sync,
  };
}

/** Starts one SyncProjectState round on `client`; `settled` says how it ended. */
function startSync(client: EventsClient, options: { ids?: string[]; clock?: SimulatedClock; wallNow?: number; timeoutMs?: number } = {}) {
  const { parent, got } = recordingParent();
  const ids = options.ids;
  const actor = createActor(
    createSyncProjectStateActor({
      client: () => client,
      monotonicNow: () => 0,
      tracker: ids === undefined ? undefined : { connectedProjectIds: () => ids },
      clock: options.clock ?? new SimulatedClock(),
      wallNow: () => options.wallNow ?? 0,
    }),
    { input: { clientId: "c", sessionEpoch: 0, timeoutMs: options.timeoutMs ?? 1000, parent } },
  );
  const settled = new Promise<{ ok: boolean; value?: unknown; error?: unknown }>((resolve) =>
    actor.subscribe({
      complete: () => resolve({ ok: true, value: actor.getSnapshot().output }),
      error: (error) => resolve({ ok: false, error }),
    }),
  );
  actor.start();
  return { got, settled };
}

async function runStream(client: EventsClient) {
  const { parent, got } = recordingParent();
  const actor = createActor(createProjectEventsActor({ client: () => client, monotonicNow: () => 7 }), {
    input: { clientId: "c", sessionEpoch: 0, parent },
  });
  const done = new Promise<{ status: string; error?: unknown }>((resolve) =>
    actor.subscribe({ complete: () => resolve({ status: "done" }), error: (error) => resolve({ status: "error", error }) }),
  );
  actor.start();
  return { got, result: await done };
}

actors("a trailers-only refusal (grpc-status in the headers) does not count as an open stream", async () => {
  const { got, result } = await runStream(
    // biome-ignore lint/correctness/useYield: a stream that fails before its first message
    streamClient(async function* (opts) {
      opts.onHeader?.(new Headers({ "grpc-status": "14", "grpc-message": "go away" }));
      throw new BridgeError("go away", "unavailable");
    }),
  );
  assert.equal(
    got.map((e) => e.type),
    [],
  );
  assert.is(result.status, "error");
  assert.is((result.error as BridgeError).code, "unavailable");
});

actors("headers then messages: opened once, each message forwarded as plain JSON", async () => {
  const { got, result } = await runStream(
    streamClient(async function* (opts) {
      opts.onHeader?.(new Headers({ "content-type": "application/grpc" }));
      opts.onHeader?.(new Headers({ "content-type": "application/grpc" }));
      yield create(ProjectEventSchema, { eventId: "9", eventType: 1, projectId: "p", timestampUnixMs: 12n, reason: "r" });
    }),
  );
  assert.equal(
    got.map((e) => e.type),
    ["stream.opened", "stream.events"],
  );
  assert.equal(got[1]!.events, [{ eventId: "9", eventType: 1, projectId: "p", timestampUnixMs: 12, reason: "r", receivedAtMs: 7 }]);
  assert.is(result.status, "done", "a clean end resolves (the machine backs off on done)");
});

actors("messages that arrive in one event-loop turn reach the machine as one stream.events, in order", async () => {
  const { got, result } = await runStream(
    streamClient(async function* () {
      for (let i = 0; i < 5; i++) yield create(ProjectEventSchema, { eventId: `a${i}`, eventType: 1, projectId: `p${i}` });
      // The next turn: a second batch.
      await new Promise((resolve) => setImmediate(resolve));
      await new Promise((resolve) => setImmediate(resolve));
      yield create(ProjectEventSchema, { eventId: "b0", eventType: 1, projectId: "q" });
    }),
  );
  assert.equal(
    got.map((e) => e.type),
    ["stream.events", "stream.events"],
  );
  assert.equal(
    (got[0]!.events as { eventId: string }[]).map((e) => e.eventId),
    ["a0", "a1", "a2", "a3", "a4"],
  );
  assert.equal(
    (got[1]!.events as { eventId: string }[]).map((e) => e.eventId),
    ["b0"],
  );
  assert.is(result.status, "done");
});

actors("what arrived before the stream failed reaches the machine before the failure", async () => {
  const { parent, got } = recordingParent();
  const client = streamClient(async function* () {
    yield create(ProjectEventSchema, { eventId: "1", eventType: 1, projectId: "p" });
    yield create(ProjectEventSchema, { eventId: "2", eventType: 1, projectId: "q" });
    throw new BridgeError("reset", "unavailable");
  });
  const actor = createActor(createProjectEventsActor({ client: () => client, monotonicNow: () => 7 }), {
    input: { clientId: "c", sessionEpoch: 0, parent },
  });
  let sentAtFailure = -1;
  const done = new Promise<void>((resolve) =>
    actor.subscribe({
      error: () => {
        sentAtFailure = got.length;
        resolve();
      },
    }),
  );
  actor.start();
  await done;
  assert.is(sentAtFailure, 1, "the batch was sent before the actor failed");
  assert.equal(
    (got[0]!.events as { projectId: string }[]).map((e) => e.projectId),
    ["p", "q"],
  );
});

actors("a CANCELED from the server is a failure, not our own stop", async () => {
  const { result } = await runStream(
    // biome-ignore lint/correctness/useYield: a stream that fails before its first message
    streamClient(async function* () {
      throw Object.assign(new Error("http/2 stream closed with error code CANCEL (0x8)"), { code: 1 });
    }),
  );
  assert.is(result.status, "error");
  assert.is((result.error as BridgeError).code, "canceled");
});

actors("collectProjectIds keeps unique non-empty ids", () => {
  assert.equal(collectProjectIds({ connectedProjectIds: () => ["a", "", "b", "a"] }), ["a", "b"]);
  assert.equal(collectProjectIds(undefined), []);
});

actors("a heartbeat of 25,000 ids goes out in chunks of at most 10,000 and merges the answers", async () => {
  const sizes: number[] = [];
  const client = syncClient(async (req) => {
    sizes.push(req.localProjectIds.length);
    return create(SyncProjectStateResponseSchema, {
      removed: req.localProjectIds.filter((id) => id.endsWith("0000")),
      unknown: ["u1"],
      serverTimeUnixMs: 1000n,
    });
  });
  const ids = Array.from({ length: 25_000 }, (_, i) => `p${i}`);
  const { got, settled } = startSync(client, { ids, wallNow: 500 });
  const result = (await settled).value as { removed: string[]; unknown: string[]; skewMs: number; reported: number };
  assert.equal(sizes, [SYNC_CHUNK_SIZE, SYNC_CHUNK_SIZE, 5_000]);
  assert.equal(result.removed, ["p10000", "p20000"]);
  assert.equal(
    got.map((e) => e.projectIds),
    [["p10000"], ["p20000"]],
    "each chunk's removals were forwarded as it was answered",
  );
  assert.equal(result.unknown, ["u1"]);
  assert.is(result.skewMs, 500);
  assert.is(result.reported, 25_000);
});

actors("a sync with no answer fails DEADLINE_EXCEEDED on the bridge clock", async () => {
  let signalSeen: AbortSignal | undefined;
  const client = syncClient(
    (_req, opts) =>
      new Promise((_, reject) => {
        signalSeen = opts.signal;
        opts.signal.addEventListener("abort", () => reject(opts.signal.reason));
      }),
  );
  const clock = new SimulatedClock();
  const { settled } = startSync(client, { clock });
  await Promise.resolve();
  clock.increment(999);
  assert.not.ok(signalSeen?.aborted);
  clock.increment(1);
  const error = (await settled).error as BridgeError;
  assert.is(error.code, "deadline_exceeded");
});

actors("a huge removed list reaches the machine in batches of at most SYNC_REMOVED_BATCH ids", async () => {
  const removed = Array.from({ length: 2 * SYNC_REMOVED_BATCH + 500 }, (_, i) => `r${i}`);
  const client = syncClient(async () => create(SyncProjectStateResponseSchema, { removed }));
  const { got, settled } = startSync(client, { ids: removed });
  assert.ok((await settled).ok);
  assert.equal(
    got.map((e) => (e.projectIds as string[]).length),
    [SYNC_REMOVED_BATCH, SYNC_REMOVED_BATCH, 500],
  );
  assert.equal(
    got.flatMap((e) => e.projectIds as string[]),
    removed,
  );
});

actors("each chunk of a round has its own deadline: 3 calls of 4 s complete under syncTimeoutMs 10 s (issue 10 item 5)", async () => {
  const ids = Array.from({ length: 2 * SYNC_CHUNK_SIZE + 5 }, (_, i) => `p${i}`);
  const clock = new SimulatedClock();
  let calls = 0;
  const client = syncClient(
    (_req, opts) =>
      new Promise((resolve, reject) => {
        calls++;
        const t = clock.setTimeout(() => resolve(create(SyncProjectStateResponseSchema, {})), 4000);
        opts.signal.addEventListener("abort", () => {
          clock.clearTimeout(t);
          reject(opts.signal.reason);
        });
      }),
  );
  const { settled: out } = startSync(client, { ids, clock, timeoutMs: 10_000 });
  for (let i = 0; i < 3; i++) {
    for (let k = 0; k < 5; k++) await new Promise((r) => setImmediate(r));
    clock.increment(4000);
  }
  const result = await out;
  assert.ok(result.ok, `the round completed (${String(result.error)})`);
  assert.is(calls, 3);
  assert.is((result.value as { reported: number }).reported, ids.length);
});

actors("the bridge's own deadline is a SyncDeadlineError; a DEADLINE_EXCEEDED from the server is not (issue 10 item 5)", async () => {
  const run = async (server: "hang" | "deadline") => {
    const clock = new SimulatedClock();
    const client = syncClient((_req, opts) =>
      server === "deadline"
        ? Promise.reject(new BridgeError("deadline from the server", "deadline_exceeded"))
        : new Promise((_, reject) => opts.signal.addEventListener("abort", () => reject(opts.signal.reason))),
    );
    const { settled } = startSync(client, { clock });
    await Promise.resolve();
    clock.increment(1000);
    return (await settled).error;
  };
  const own = await run("hang");
  assert.ok(own instanceof SyncDeadlineError);
  const sent = await run("deadline");
  assert.ok(sent instanceof BridgeError);
  assert.not.ok(sent instanceof SyncDeadlineError);
  assert.is((sent as BridgeError).code, "deadline_exceeded");
});

actors("server data is bounded where it enters: ids refused, reasons and event ids cut (issue 11 item 1)", () => {
  const ev = (init: { projectId: string; reason?: string; eventId?: string }) =>
    create(ProjectEventSchema, { eventId: "1", eventType: 1, ...init });
  const long = toStreamEvent(ev({ projectId: "x".repeat(3 * 1024 * 1024), reason: "r".repeat(200_000), eventId: "9".repeat(10_000) }), 0);
  assert.is(long.refused, "too_long");
  assert.ok(long.projectId.length < 100, "only a preview of the id goes on");
  assert.ok(Buffer.byteLength(long.reason) <= REASON_MAX_BYTES);
  assert.ok(Buffer.byteLength(long.eventId) <= EVENT_ID_MAX_BYTES);
  const ctl = toStreamEvent(ev({ projectId: "--upload-pack=x\n\u0000", reason: "a\u0000b" }), 0);
  assert.is(ctl.refused, "control_character");
  assert.not.ok(/[\u0000\n]/.test(ctl.projectId), "the preview is escaped");
  assert.is(ctl.reason, "a\ufffdb");
  const edge = toStreamEvent(ev({ projectId: "é".repeat(PROJECT_ID_MAX_BYTES / 2) }), 0);
  assert.is(edge.refused, undefined, "exactly 512 bytes passes");
  assert.is(toStreamEvent(ev({ projectId: `${"é".repeat(PROJECT_ID_MAX_BYTES / 2)}x` }), 0).refused, "too_long");
});

actors("heartbeat removals: bad ids refused, ids never reported dropped, both counted with previews (issue 11 items 1-2)", async () => {
  const client = syncClient(async () =>
    create(SyncProjectStateResponseSchema, { removed: ["mine", "not-mine", "y".repeat(600), "bad\u0007", "mine-too"] }),
  );
  const { got, settled } = startSync(client, { ids: ["mine", "mine-too", "y".repeat(600), "bad\u0007"] });
  const result = await settled;
  assert.ok(result.ok);
  assert.equal(
    got.flatMap((e) => e.projectIds as string[]),
    ["mine", "mine-too"],
  );
  const refused = got.flatMap((e) => (e.refused as Array<{ why: string; count: number; previews: string[] }> | undefined) ?? []);
  assert.equal(refused.map((r) => [r.why, r.count]).sort(), [
    ["control_character", 1],
    ["not_reported", 1],
    ["too_long", 1],
  ]);
  assert.ok(refused.every((r) => r.previews.every((p) => p.length < 100 && !p.includes("\u0007"))));
  assert.equal((result.value as { removed: string[] }).removed, ["mine", "mine-too"]);
});

actors.run();
