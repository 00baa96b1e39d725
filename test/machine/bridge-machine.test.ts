import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createActor } from "xstate";
import { createMachineHarness, flush } from "../helpers/machine-harness.js";
import { PROJECT_EVENT_TYPE_REMOVED, type StreamEvent } from "../../machines/bridge.types.js";
import { admitRemovals, removalKey } from "../../machines/dedup-window.js";
import { ProjectEventType } from "../../src/gen/engram/v1/engram_pb.js";
import { defaultBridgeTiming } from "../../src/timing.js";
import { pushbackMsOf } from "../../src/errors.js";
import { Code, ConnectError } from "@connectrpc/connect";
import { streamEvent } from "../helpers/graph-model.js";

const machine = suite("bridge machine");

machine("starts idle and opens one stream on START", () => {
  const h = createMachineHarness();
  assert.is(h.connection(), "idle");
  h.actor.send({ type: "START" });
  assert.is(h.connection(), "connecting");
  assert.is(h.streams.length, 1);
  assert.is(h.lastStream().input.clientId, "test-client");
});

machine("goes streaming on headers, on a first message, or after openConfirmMs", () => {
  const a = createMachineHarness();
  a.actor.send({ type: "START" });
  a.sendHeaders();
  assert.is(a.connection(), "streaming");

  const b = createMachineHarness();
  b.actor.send({ type: "START" });
  b.sendEvent({ projectId: "p1" });
  assert.is(b.connection(), "streaming");
  assert.equal(b.removals(), ["stream:p1"]);

  const c = createMachineHarness({ timing: { openConfirmMs: 2000 } });
  c.actor.send({ type: "START" });
  c.clock.increment(1999);
  assert.is(c.connection(), "connecting");
  c.clock.increment(1);
  assert.is(c.connection(), "streaming");
});

machine("backs off 1 s doubling to the 60 s cap while the server keeps failing", async () => {
  const h = createMachineHarness({ random: () => 0.5 });
  h.actor.send({ type: "START" });
  const waits: number[] = [];
  for (let i = 0; i < 9; i++) {
    h.failStream();
    await flush();
    assert.is(h.connection(), "backoff");
    const wait = h.delaysAsked.filter((d) => d.name === "backoffDelay").at(-1)!.ms;
    waits.push(wait);
    h.clock.increment(wait - 1);
    assert.is(h.connection(), "backoff", "not before the wait is over");
    h.clock.increment(1);
    assert.is(h.connection(), "connecting");
  }
  assert.equal(waits, [1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000]);
  assert.is(h.actor.getSnapshot().context.counters.reconnects, 9);
});

machine("keeps every backoff wait inside the jitter bounds", async () => {
  for (const r of [0, 0.999999]) {
    const h = createMachineHarness({ random: () => r });
    h.actor.send({ type: "START" });
    for (let n = 1; n <= 8; n++) {
      h.failStream();
      await flush();
      const wait = h.delaysAsked.filter((d) => d.name === "backoffDelay").at(-1)!.ms;
      const base = Math.min(60000, 1000 * 2 ** (n - 1));
      assert.ok(wait >= base * 0.8 && wait <= base * 1.2, `attempt ${n}: ${wait} within ±20% of ${base}`);
      h.clock.increment(wait);
    }
  }
});

machine("resets the attempt counter on the first message, not on mere open", async () => {
  const h = createMachineHarness();
  h.actor.send({ type: "START" });
  h.failStream();
  await flush();
  h.clock.increment(1200);
  h.sendHeaders();
  assert.is(h.actor.getSnapshot().context.attempt, 1, "headers alone do not reset");
  h.sendEvent({ projectId: "x", eventType: 2 });
  assert.is(h.actor.getSnapshot().context.attempt, 0);
});

machine("resets the attempt counter after stableAfterMs of streaming", async () => {
  const h = createMachineHarness({ timing: { stableAfterMs: 10000 } });
  h.actor.send({ type: "START" });
  h.failStream();
  await flush();
  h.clock.increment(1200);
  h.sendHeaders();
  h.clock.increment(9999);
  assert.is(h.actor.getSnapshot().context.attempt, 1);
  h.clock.increment(1);
  assert.is(h.actor.getSnapshot().context.attempt, 0);
});

machine("a server that accepts then fails cannot pin retries at the minimum", async () => {
  const h = createMachineHarness();
  h.actor.send({ type: "START" });
  const waits: number[] = [];
  for (let i = 0; i < 4; i++) {
    h.sendHeaders();
    h.failStream();
    await flush();
    const wait = h.delaysAsked.filter((d) => d.name === "backoffDelay").at(-1)!.ms;
    waits.push(wait);
    h.clock.increment(wait);
  }
  assert.equal(waits, [1000, 2000, 4000, 8000]);
});

machine("heartbeat waits stay within 60 s ± 5 s", async () => {
  for (const [r, expected] of [
    [0, 55000],
    [1, 65000],
    [0.5, 60000],
  ] as const) {
    const h = createMachineHarness({ random: () => r });
    h.clock.increment(expected - 1);
    assert.is(h.heartbeat(), "waiting");
    h.clock.increment(1);
    assert.is(h.heartbeat(), "syncing");
    h.answerSync();
    await flush();
    assert.is(h.heartbeat(), "waiting");
  }
});

machine("the wait after a stream-open sync is spread over [5 s, 65 s]; after a timer sync it is back to 60 s ± 5 s", async () => {
  for (const [r, spread, regular] of [
    [0, 5000, 55000],
    [1, 65000, 65000],
  ] as const) {
    const h = createMachineHarness({ random: () => r });
    h.actor.send({ type: "START" });
    h.sendHeaders();
    assert.is(h.actor.getSnapshot().context.lastSyncCause, "stream-open");
    h.answerSync();
    await flush();
    assert.is(h.delaysAsked.filter((d) => d.name === "heartbeatDelay").at(-1)!.ms, spread);
    h.clock.increment(spread);
    assert.is(h.heartbeat(), "syncing");
    assert.is(h.actor.getSnapshot().context.lastSyncCause, "timer");
    h.answerSync();
    await flush();
    assert.is(h.delaysAsked.filter((d) => d.name === "heartbeatDelay").at(-1)!.ms, regular);
  }
});

machine("every stream open, the first included, asks for an immediate sync", async () => {
  const h = createMachineHarness();
  h.actor.send({ type: "START" });
  assert.is(h.syncs.length, 0);
  h.sendHeaders();
  assert.is(h.syncs.length, 1);
  assert.is(h.heartbeat(), "syncing");
  h.answerSync();
  await flush();
  h.failStream();
  await flush();
  h.clock.increment(1200);
  h.sendHeaders();
  assert.is(h.syncs.length, 2);
});

machine("SYNC.NOW starts a heartbeat at once", () => {
  const h = createMachineHarness();
  h.actor.send({ type: "SYNC.NOW" });
  assert.is(h.heartbeat(), "syncing");
  assert.is(h.syncs.length, 1);
});

machine("removals from stream and heartbeat pass one dedup step", async () => {
  const h = createMachineHarness();
  h.actor.send({ type: "START" });
  h.sendEvent({ projectId: "a" });
  h.sendEvent({ projectId: "a" });
  assert.is(h.heartbeat(), "syncing");
  h.answerSync(["a", "b", "b", ""]);
  await flush();
  assert.equal(h.removals(), ["stream:a", "heartbeat:b"]);
  const c = h.actor.getSnapshot().context.counters;
  assert.is(c.duplicatesSuppressed, 3, "a (stream), a and b (heartbeat)");
  assert.is(c.ignoredEvents, 1);
});

machine("drops empty project ids and event types other than REMOVED", () => {
  const h = createMachineHarness();
  h.actor.send({ type: "START" });
  h.sendEvent({ projectId: "" });
  h.sendEvent({ projectId: "p", eventType: 2 });
  h.sendEvent({ projectId: "p", eventType: 99 });
  h.sendEvent({ projectId: "p", eventType: 1 });
  assert.equal(h.removals(), ["stream:p"]);
  assert.is(h.actor.getSnapshot().context.counters.ignoredEvents, 3);
});

machine("the dedup window evicts the oldest key at capacity, however often a duplicate repeated it", () => {
  const h = createMachineHarness({ dedupCapacity: 2 });
  h.actor.send({ type: "START" });
  for (const id of ["a", "b", "a", "c", "a", "b"]) h.sendEvent({ projectId: id });
  // a, b admitted; a suppressed (no refresh); c evicts a; a new again (evicts b); b new again.
  assert.equal(h.removals(), ["stream:a", "stream:b", "stream:c", "stream:a", "stream:b"]);
});

machine("a heartbeat deadline while streaming marks the connection suspect", async () => {
  const h = createMachineHarness();
  h.actor.send({ type: "START" });
  h.sendHeaders();
  const first = h.lastStream();
  h.timeOutSync();
  await flush();
  assert.ok(first.signal.aborted, "the stream is aborted");
  assert.is(h.connection(), "backoff");
  const ctx = h.actor.getSnapshot().context;
  assert.is(ctx.sessionEpoch, 1);
  assert.is(ctx.counters.suspects, 1);
  h.clock.increment(1200);
  assert.is(h.lastStream().input.sessionEpoch, 1, "the next call asks for a fresh session");
});

machine("an UNAVAILABLE heartbeat answer does not mark the connection suspect", async () => {
  const h = createMachineHarness();
  h.actor.send({ type: "START" });
  h.sendHeaders();
  h.failSync("unavailable");
  await flush();
  assert.is(h.connection(), "streaming");
  assert.is(h.actor.getSnapshot().context.sessionEpoch, 0);
});

machine("a heartbeat deadline while not streaming is only a failed sync", async () => {
  const h = createMachineHarness();
  h.actor.send({ type: "START" });
  h.actor.send({ type: "SYNC.NOW" });
  h.timeOutSync();
  await flush();
  assert.is(h.connection(), "connecting");
  assert.is(h.actor.getSnapshot().context.counters.suspects, 0);
});

machine("counts the error streak per code for once-per-streak logging", async () => {
  const h = createMachineHarness();
  h.actor.send({ type: "START" });
  for (let i = 0; i < 3; i++) {
    h.failStream("unauthenticated");
    await flush();
    h.clock.increment(120_000);
  }
  const streaks = h.emitted.flatMap((e) => (e.type === "streamFailed" ? [e.streak] : []));
  assert.equal(streaks, [1, 2, 3]);
});

const stopFrom: Record<string, (h: ReturnType<typeof createMachineHarness>) => Promise<void> | void> = {
  idle: () => {},
  connecting: (h) => h.actor.send({ type: "START" }),
  streaming: (h) => {
    h.actor.send({ type: "START" });
    h.sendHeaders();
  },
  backoff: async (h) => {
    h.actor.send({ type: "START" });
    h.failStream();
    await flush();
  },
};
for (const [name, reach] of Object.entries(stopFrom)) {
  machine(`STOP from ${name} reaches the final state and aborts what runs`, async () => {
    const h = createMachineHarness();
    await reach(h);
    assert.is(h.connection(), name);
    h.actor.send({ type: "SYNC.NOW" });
    h.actor.send({ type: "STOP" });
    await flush();
    assert.is(h.actor.getSnapshot().status, "done");
    assert.is(h.openStreams(), 0);
    assert.ok(h.syncs.every((s) => s.signal.aborted));
  });
}

machine("stopping waits for dispatch to drain, up to the budget", async () => {
  let release!: () => void;
  const h = createMachineHarness({ timing: { stopTimeoutMs: 5000 }, drain: () => new Promise<void>((r) => (release = r)) });
  h.actor.send({ type: "START" });
  h.actor.send({ type: "STOP" });
  await flush();
  assert.is(h.connection(), "stopping");
  h.actor.send({ type: "STOP" });
  h.clock.increment(4749);
  assert.is(h.connection(), "stopping");
  h.clock.increment(1);
  assert.is(h.actor.getSnapshot().status, "done");
  release();

  const g = createMachineHarness({ drain: () => new Promise<void>((r) => (release = r)) });
  g.actor.send({ type: "STOP" });
  await flush();
  assert.is(g.connection(), "stopping");
  release();
  await flush();
  assert.is(g.actor.getSnapshot().status, "done");
});

machine("context stays JSON-serialisable", async () => {
  const h = createMachineHarness();
  h.actor.send({ type: "START" });
  h.sendEvent({ projectId: "p" });
  h.failStream();
  await flush();
  const ctx = h.actor.getSnapshot().context;
  assert.equal(JSON.parse(JSON.stringify(ctx)), ctx);
});

machine("a DEADLINE_EXCEEDED the server sent does not mark the connection suspect (issue 10 item 5)", async () => {
  const h = createMachineHarness();
  h.actor.send({ type: "START" });
  h.sendHeaders();
  const first = h.lastStream();
  h.failSync("deadline_exceeded");
  await flush();
  assert.not.ok(first.signal.aborted, "the stream stays open");
  assert.is(h.connection(), "streaming");
  assert.is(h.actor.getSnapshot().context.counters.suspects, 0);
  assert.is(h.actor.getSnapshot().context.counters.syncFailures, 1);
});

machine("against a server that never answers the backoff grows to its cap (issue 10 item 6)", async () => {
  // Defaults: openConfirm 2 s, stableAfter 10 s, sync deadline 10 s. The
  // stream is accepted and never answers; every sync hangs until its deadline.
  const h = createMachineHarness({ random: () => 0.5 });
  h.actor.send({ type: "START" });
  const waits: number[] = [];
  const attempts: number[] = [];
  for (let round = 0; round < 9; round++) {
    assert.is(h.connection(), "connecting");
    h.clock.increment(2000); // openConfirm: streaming, a sync starts
    assert.is(h.connection(), "streaming");
    h.clock.increment(10_000); // stableAfter and the sync's deadline together
    h.timeOutSync();
    await flush();
    assert.is(h.connection(), "backoff", `round ${round + 1}: suspect`);
    attempts.push(h.actor.getSnapshot().context.attempt);
    const wait = h.delaysAsked.filter((d) => d.name === "backoffDelay").at(-1)!.ms;
    waits.push(wait);
    h.clock.increment(wait);
  }
  assert.equal(attempts, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.equal(waits, [1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000]);
});

machine(
  "stableAfter resets the attempt only once the open proved itself: headers, a message or a completed sync (issue 10 item 6)",
  async () => {
    // Headers before openConfirm: reset at stableAfter.
    const a = createMachineHarness();
    a.actor.send({ type: "START" });
    a.failStream();
    await flush();
    a.clock.increment(1200);
    a.sendHeaders();
    a.clock.increment(10_000);
    assert.is(a.actor.getSnapshot().context.attempt, 0, "headers proved it");

    // openConfirm and no proof: no reset at stableAfter; a sync completing later resets at once.
    const b = createMachineHarness();
    b.actor.send({ type: "START" });
    b.failStream();
    await flush();
    b.clock.increment(1200);
    b.clock.increment(2000);
    assert.is(b.connection(), "streaming");
    b.clock.increment(10_000);
    assert.is(b.actor.getSnapshot().context.attempt, 1, "the timer alone resets nothing");
    b.answerSync();
    await flush();
    assert.is(b.actor.getSnapshot().context.attempt, 0, "a completed sync on this open proves it");

    // A sync that completed before this open does not count for it.
    const c = createMachineHarness();
    c.actor.send({ type: "START" });
    c.failStream();
    await flush();
    c.actor.send({ type: "SYNC.NOW" });
    c.answerSync();
    await flush();
    c.clock.increment(1200);
    c.clock.increment(2000);
    assert.is(c.connection(), "streaming");
    c.clock.increment(10_000);
    assert.is(c.actor.getSnapshot().context.attempt, 1, "proof from a previous open does not carry over");
  },
);

machine("syncNow() during a round asks for one follow-up round and does not restart the deadline (issue 10 item 7)", async () => {
  const h = createMachineHarness();
  h.actor.send({ type: "START" });
  h.sendHeaders(); // streaming: a round starts
  assert.is(h.syncs.length, 1);
  // A caller asks every second, faster than the 10 s deadline.
  for (let i = 0; i < 9; i++) {
    h.clock.increment(1000);
    h.actor.send({ type: "SYNC.NOW" });
  }
  assert.is(h.syncs.length, 1, "no restart");
  assert.not.ok(h.syncs[0]!.signal.aborted);
  h.clock.increment(1000);
  h.timeOutSync();
  await flush();
  assert.is(h.actor.getSnapshot().context.counters.suspects, 1, "the half-open link is still found");

  // A round that completes with a follow-up asked starts exactly one more.
  const g = createMachineHarness();
  g.actor.send({ type: "START" });
  g.sendHeaders();
  g.actor.send({ type: "SYNC.NOW" });
  g.actor.send({ type: "SYNC.NOW" });
  g.answerSync();
  await flush();
  assert.is(g.syncs.length, 2, "one follow-up round");
  assert.is(g.heartbeat(), "syncing");
  g.answerSync();
  await flush();
  assert.is(g.syncs.length, 2);
  assert.is(g.heartbeat(), "waiting");
});

machine("a GOAWAY ends the stream and reopens after a short jittered wait without counting a failure (issue 10 item 4)", async () => {
  const h = createMachineHarness({ random: () => 0.5 });
  h.actor.send({ type: "START" });
  h.sendEvent({ projectId: "a" });
  // The open proved itself (a message) and stayed up stableAfterMs.
  h.clock.increment(h.actor.getSnapshot().context.timing.stableAfterMs);
  h.goawayStream();
  await flush();
  assert.is(h.connection(), "reopening");
  assert.is(h.status(), "backoff", "status() shows it as a backoff");
  const ctx = h.actor.getSnapshot().context;
  assert.is(ctx.attempt, 0, "not a failure");
  assert.is(ctx.counters.goaways, 1);
  assert.is(ctx.counters.streamFailures, 0);
  const wait = h.delaysAsked.filter((d) => d.name === "reopenDelay").at(-1)!.ms;
  assert.is(wait, 500, "uniform in [0, backoffMinMs]");
  h.clock.increment(499);
  assert.is(h.streams.length, 1);
  h.clock.increment(1);
  assert.is(h.connection(), "connecting");
  assert.is(h.streams.length, 2);
  assert.is(h.emitted.filter((e) => e.type === "serverGoaway").length, 1);
  // A GOAWAY on this open, which has not been up stableAfterMs: a failure (issue 19 item 5).
  h.sendEvent({ projectId: "b" });
  h.goawayStream();
  await flush();
  assert.is(h.connection(), "backoff", "GOAWAY churn is not free");
  assert.is(h.actor.getSnapshot().context.attempt, 1);
  h.clock.increment(h.delaysAsked.filter((d) => d.name === "backoffDelay").at(-1)!.ms);
  // The streak goes on: a failure now is attempt 2.
  h.failStream();
  await flush();
  assert.is(h.actor.getSnapshot().context.attempt, 2);
});

machine(
  "a GOAWAY on an open that never proved itself is a failure: a server that answers every open with GOAWAY gets the growing backoff",
  async () => {
    const h = createMachineHarness({ random: () => 0.5 });
    h.actor.send({ type: "START" });
    const waits: number[] = [];
    for (let i = 0; i < 5; i++) {
      h.goawayStream();
      await flush();
      assert.is(h.connection(), "backoff");
      const wait = h.delaysAsked.filter((d) => d.name === "backoffDelay").at(-1)!.ms;
      waits.push(wait);
      h.clock.increment(wait);
    }
    assert.equal(waits, [1000, 2000, 4000, 8000, 16000]);
    const counters = h.actor.getSnapshot().context.counters;
    assert.is(counters.goaways, 5, "each GOAWAY is counted");
    assert.is(counters.streamFailures, 5, "and each is a failure of its open");
  },
);

machine("heartbeat failures carry a streak per code (issue 10 item 10)", async () => {
  const h = createMachineHarness();
  h.actor.send({ type: "START" });
  const streaks: number[] = [];
  for (const code of ["unauthenticated", "unauthenticated", "unauthenticated", "unavailable"] as const) {
    h.actor.send({ type: "SYNC.NOW" });
    h.failSync(code);
    await flush();
    streaks.push((h.emitted.filter((e) => e.type === "syncFailed").at(-1) as { streak: number }).streak);
  }
  h.actor.send({ type: "SYNC.NOW" });
  h.answerSync();
  await flush();
  h.actor.send({ type: "SYNC.NOW" });
  h.failSync("unauthenticated");
  await flush();
  streaks.push((h.emitted.filter((e) => e.type === "syncFailed").at(-1) as { streak: number }).streak);
  assert.equal(streaks, [1, 2, 3, 1, 1]);
});

machine("refused ids are counted, never deduplicated or handed on (issue 11 item 1)", async () => {
  const h = createMachineHarness();
  h.actor.send({ type: "START" });
  h.sendEvent({ projectId: "bad\\u000aid", refused: "control_character" });
  assert.equal(h.removals(), []);
  assert.equal(h.actor.getSnapshot().context.recentRemovals, []);
  h.actor.send({ type: "SYNC.NOW" });
  h.lastSync().input.parent.send({
    type: "sync.removed",
    projectIds: ["ok"],
    receivedAtMs: 0,
    refused: [
      { why: "too_long", count: 2, previews: ["x…"] },
      { why: "not_reported", count: 3, previews: ["y"] },
    ],
  });
  const c = h.actor.getSnapshot().context.counters;
  assert.is(c.refusedIds, 3);
  assert.is(c.unreportedRemovals, 3);
  assert.equal(h.removals(), ["heartbeat:ok"]);
  assert.is(h.emitted.filter((e) => e.type === "idsRefused").length, 3);
});

const ev = (eventId: string, projectId: string, eventType = 1): StreamEvent => streamEvent(eventType, projectId, eventId);

machine("a batch of stream messages is one step: removals, duplicates and ignored events in message order, counted once", () => {
  // (p2's CREATED finds no p2 in the window: it changes nothing there.)
  const h = createMachineHarness();
  h.actor.send({ type: "START" });
  h.sendHeaders();
  let steps = 0;
  const sub = h.actor.subscribe(() => (steps += 1));
  h.lastStream().input.parent.send({
    type: "stream.events",
    events: [ev("1", "p1"), ev("2", "p1"), ev("3", "p2", 2), ev("4", ""), ev("5", "p3"), ev("6", "p1")],
  });
  sub.unsubscribe();
  assert.is(steps, 1, "one snapshot for the whole batch");
  const order = h.emitted.map((e) =>
    e.type === "projectRemoved" || e.type === "duplicateSuppressed" ? `${e.type}:${e.projectId}` : e.type,
  );
  assert.equal(order, [
    "projectRemoved:p1",
    "duplicateSuppressed:p1",
    "eventIgnored",
    "eventIgnored",
    "projectRemoved:p3",
    "duplicateSuppressed:p1",
  ]);
  const c = h.actor.getSnapshot().context;
  assert.is(c.counters.eventsReceived, 6);
  assert.is(c.counters.ignoredEvents, 2);
  assert.is(c.counters.removalsFromStream, 2);
  assert.is(c.counters.duplicatesSuppressed, 2);
  assert.equal(c.recentRemovals, [removalKey("p1"), removalKey("p3")], "the FIFO window, oldest first, as JSON");
});

machine("the machine's REMOVED wire value is the generated ProjectEventType.REMOVED", () => {
  assert.is(PROJECT_EVENT_TYPE_REMOVED, ProjectEventType.REMOVED);
});

machine("a snapshot restored from JSON keeps deduplicating against its window", async () => {
  const h = createMachineHarness();
  h.actor.send({ type: "START" });
  h.sendEvent({ projectId: "p1" });
  const persisted = JSON.parse(JSON.stringify(h.actor.getPersistedSnapshot()));
  const restored = createActor(h.actor.logic, {
    snapshot: persisted,
    input: { clientId: "test-client", timing: defaultBridgeTiming, dedupCapacity: 256 },
  });
  const seen: string[] = [];
  restored.on("projectRemoved", (e) => seen.push(`removed:${e.projectId}`));
  restored.on("duplicateSuppressed", (e) => seen.push(`duplicate:${e.projectId}`));
  restored.start();
  restored.send({ type: "stream.events", events: [ev("9", "p1"), ev("10", "p2")] });
  assert.equal(seen, ["duplicate:p1", "removed:p2"]);
  restored.stop();
  h.actor.stop();
});

machine("an older window admitted into again answers from its own keys, not from a newer window's", () => {
  const w0 = admitRemovals([], ["a"], 4).keys;
  const w1 = admitRemovals(w0, ["b"], 4).keys;
  // w0 handed its key set on to w1; admitting into w0 again must not see b.
  const again = admitRemovals(w0, ["b", "a"], 4);
  assert.equal(again.fresh, ["b"]);
  assert.equal(again.duplicates, ["a"]);
  assert.equal(admitRemovals(w1, ["b", "c"], 4).duplicates, ["b"]);
  const evicting = admitRemovals(w1, ["c", "d", "e"], 4);
  assert.equal(evicting.keys, [removalKey("b"), removalKey("c"), removalKey("d"), removalKey("e")]);
  assert.equal(admitRemovals(evicting.keys, ["a"], 4).fresh, ["a"], "an evicted key is new again");
});

machine("a server's pushback (grpc-retry-pushback-ms) is a floor under the backoff and the next heartbeat (issue 21)", async () => {
  const h = createMachineHarness({ random: () => 0.5 });
  h.actor.send({ type: "START" });
  const pushback = (ms: string) => new ConnectError("overloaded", Code.ResourceExhausted, new Headers({ "grpc-retry-pushback-ms": ms }));
  h.lastStream().reject(pushback("30000"));
  await flush();
  assert.is(h.connection(), "backoff");
  assert.is(h.delaysAsked.filter((d) => d.name === "backoffDelay").at(-1)!.ms, 30_000, "not the 1 s the first backoff would be");
  assert.is(h.actor.getSnapshot().context.lastError?.retryAfterMs, 30_000);
  h.clock.increment(30_000);
  // A malformed value is ignored: the bridge's own backoff stands.
  h.lastStream().reject(pushback("-5"));
  await flush();
  assert.is(h.delaysAsked.filter((d) => d.name === "backoffDelay").at(-1)!.ms, 2000);
  // A heartbeat refused with pushback waits at least that long for the next round.
  h.clock.increment(2000);
  h.sendHeaders();
  h.lastSync().reject(pushback("120000"));
  await flush();
  assert.ok(h.delaysAsked.filter((d) => d.name === "heartbeatDelay").at(-1)!.ms >= 120_000);
});

machine("a pushback is capped: never past the longest backoff, nor the slowest heartbeat (second review)", async () => {
  const h = createMachineHarness({ random: () => 0.5 });
  h.actor.send({ type: "START" });
  const pushback = (ms: string) => new ConnectError("overloaded", Code.ResourceExhausted, new Headers({ "grpc-retry-pushback-ms": ms }));
  h.lastStream().reject(pushback("2147483647"));
  await flush();
  const timing = h.actor.getSnapshot().context.timing;
  assert.is(h.delaysAsked.filter((d) => d.name === "backoffDelay").at(-1)!.ms, timing.backoffMaxMs);
  h.clock.increment(timing.backoffMaxMs);
  h.sendHeaders();
  h.lastSync().reject(pushback("2147483647"));
  await flush();
  assert.ok(h.delaysAsked.filter((d) => d.name === "heartbeatDelay").at(-1)!.ms <= 4 * timing.heartbeatMs);
});

machine('a pushback sent in headers and trailers alike (connect joins them: "3000, 3000") is read (second review)', () => {
  assert.is(
    pushbackMsOf(
      new ConnectError(
        "x",
        Code.Unavailable,
        new Headers([
          ["grpc-retry-pushback-ms", "3000"],
          ["grpc-retry-pushback-ms", "3000"],
        ]),
      ),
    ),
    3000,
  );
  assert.is(pushbackMsOf(new ConnectError("x", Code.Unavailable, new Headers({ "grpc-retry-pushback-ms": "-1" }))), undefined);
  assert.is(pushbackMsOf(new ConnectError("x", Code.Unavailable, new Headers({ "grpc-retry-pushback-ms": "1e3" }))), undefined);
});

machine(
  "a heartbeat deadline on a connection that still answers is a slow server: the stream is kept, the round runs on and the heartbeat slows down (issue 21)",
  async () => {
    const h = createMachineHarness({ random: () => 0.5, linkAnswers: true });
    h.actor.send({ type: "START" });
    h.sendHeaders();
    const stream = h.lastStream();
    const sync = h.lastSync();
    h.timeOutSync();
    await flush();
    await flush();
    assert.not.ok(stream.signal.aborted, "the stream is not torn down");
    assert.not.ok(sync.signal.aborted, "the late round is not abandoned: it runs on");
    assert.is(h.connection(), "streaming");
    assert.is(h.heartbeat(), "syncing");
    assert.equal(h.actor.getSnapshot().value, {
      connection: { open: "streaming" },
      heartbeat: { syncing: { asked: "round", deadline: "runningOn" } },
    });
    const ctx = h.actor.getSnapshot().context;
    assert.is(ctx.counters.suspects, 0);
    assert.is(ctx.counters.slowServer, 1);
    assert.is(ctx.counters.syncFailures, 0, "a round that runs on has not failed");
    assert.is(ctx.heartbeatSlowdown, 2);
    assert.is(h.emitted.filter((e) => e.type === "serverSlow").length, 1);
    assert.is(sync.input.runOnMs, 2 * defaultBridgeTiming.heartbeatMs, "it may run on for two heartbeat periods (the slowest heartbeat)");
    // The slow server answers at last (30 s): the answer does not slow the heartbeat down a second time.
    h.clock.increment(20_000);
    sync.resolve({ removed: [], unknown: [], serverTimeUnixMs: 0, skewMs: 0, reported: 0, receivedAtMs: 0, roundMs: 30_000 });
    await flush();
    assert.is(h.heartbeat(), "waiting");
    assert.is(h.actor.getSnapshot().context.heartbeatSlowdown, 2);
    const wait = h.delaysAsked.filter((d) => d.name === "heartbeatDelay").at(-1)!.ms;
    assert.is(wait, 60_000 + 35_000, "one period later than the wait it would be (after a stream-open round: 35 s at random 0.5)");
    // A round answered in time halves the slowdown again.
    h.clock.increment(wait);
    h.answerSync();
    await flush();
    assert.is(h.actor.getSnapshot().context.heartbeatSlowdown, 1);
  },
);

machine(
  "a late round that runs on past runOnMs fails and makes the streaming connection suspect (the link may have died since its PING)",
  async () => {
    const h = createMachineHarness({ linkAnswers: true });
    h.actor.send({ type: "START" });
    h.sendHeaders();
    const stream = h.lastStream();
    h.timeOutSync();
    await flush();
    await flush();
    h.giveUpSync();
    await flush();
    assert.is(h.heartbeat(), "waiting");
    assert.is(h.connection(), "backoff");
    assert.ok(stream.signal.aborted, "the stream is reopened on a fresh session");
    const ctx = h.actor.getSnapshot().context;
    assert.is(ctx.counters.syncFailures, 1);
    assert.is(ctx.counters.suspects, 1);
  },
);

machine(
  "a late round that started while connecting and runs out makes the stream suspect: it shares the stream's session (fourth review of issue 21)",
  async () => {
    const h = createMachineHarness({ linkAnswers: true, random: () => 0.5 });
    h.actor.send({ type: "START" });
    h.actor.send({ type: "SYNC.NOW" }); // a round before the stream opens
    await flush();
    h.sendHeaders(); // the stream opens beside it; its resync is a follow-up
    await flush();
    assert.is(h.syncs.length, 1);
    h.timeOutSync();
    await flush();
    await flush();
    h.giveUpSync();
    await flush();
    await flush();
    assert.is(h.connection(), "backoff", "suspect");
    assert.is(h.actor.getSnapshot().context.counters.suspects, 1);
    assert.is(h.syncs.length, 1, "the suspect reopen's resync stands in for the follow-up: no round at the dead link");
  },
);

for (const ending of ["its run-on limit", "a probe that is not answered"] as const) {
  machine(
    `a follow-up asked during a late round that ends at ${ending} while streaming waits for the suspect reopen's resync (fourth review)`,
    async () => {
      const h = createMachineHarness({ linkAnswers: ending === "its run-on limit", random: () => 0.5 });
      h.actor.send({ type: "START" });
      h.sendHeaders();
      h.actor.send({ type: "SYNC.NOW" }); // asks a follow-up of the stream-open round
      await flush();
      assert.is(h.syncs.length, 1);
      h.timeOutSync();
      await flush();
      await flush();
      if (ending === "its run-on limit") h.giveUpSync();
      await flush();
      await flush();
      assert.is(h.connection(), "backoff", "suspect");
      assert.is(h.syncs.length, 1, "no follow-up round at the connection just found suspect");
      // The reopen's resync is the follow-up.
      h.clock.increment(h.delaysAsked.filter((d) => d.name === "backoffDelay").at(-1)!.ms);
      await flush();
      h.sendHeaders();
      await flush();
      assert.is(h.syncs.length, 2);
    },
  );
}

machine("a stream that reopens while a round runs on gives the late round up and resyncs at once", async () => {
  const h = createMachineHarness({ linkAnswers: true, random: () => 0.5 });
  const late = await h.lateRound();
  assert.equal((h.actor.getSnapshot().value as { heartbeat: unknown }).heartbeat, { syncing: { asked: "round", deadline: "runningOn" } });
  // The stream fails and reopens (a new connection) while the late call still hangs on the old one.
  h.failStream();
  await flush();
  h.clock.increment(h.delaysAsked.filter((d) => d.name === "backoffDelay").at(-1)!.ms);
  await flush();
  h.sendHeaders();
  await flush();
  assert.ok(late.signal.aborted, "the late round is given up");
  assert.is(h.syncs.length, 2, "the reopen's resync started at once, not after the late round");
  assert.equal((h.actor.getSnapshot().value as { heartbeat: unknown }).heartbeat, { syncing: { asked: "round", deadline: "inTime" } });
  const ctx = h.actor.getSnapshot().context;
  assert.is(ctx.lastSyncCause, "stream-open");
  assert.is(ctx.counters.syncFailures, 1);
  const failed = h.emitted.filter((e) => e.type === "syncFailed");
  assert.match(failed.at(-1)!.type === "syncFailed" ? failed.at(-1)!.error.message : "", /given up for the resync/);
});

/** The open has been stable for stableAfterMs; the server sends GOAWAY; after the reopen delay the stream reopens (headers). */
async function reopenAfterGoaway(h: ReturnType<typeof createMachineHarness>): Promise<void> {
  h.clock.increment(defaultBridgeTiming.stableAfterMs);
  h.goawayStream();
  await flush();
  h.clock.increment(h.delaysAsked.filter((d) => d.name === "reopenDelay").at(-1)!.ms);
  await flush();
  h.sendHeaders();
  await flush();
}

machine(
  "a GOAWAY reopen while a round runs on keeps the late round and asks for a follow-up (connection recycling cannot starve the heartbeat)",
  async () => {
    const h = createMachineHarness({ linkAnswers: true, random: () => 0.5 });
    const late = await h.lateRound();
    await reopenAfterGoaway(h);
    assert.not.ok(late.signal.aborted, "the late round runs on on the drained session");
    assert.is(h.syncs.length, 1);
    assert.equal((h.actor.getSnapshot().value as { heartbeat: unknown }).heartbeat, {
      syncing: { asked: "followUp", deadline: "runningOn" },
    });
    // It completes; the follow-up (the reopen's resync) goes out at once.
    late.resolve({ removed: [], unknown: [], serverTimeUnixMs: 0, skewMs: 0, reported: 0, receivedAtMs: 0, roundMs: 20_000 });
    await flush();
    assert.is(h.syncs.length, 2);
    assert.is(h.actor.getSnapshot().context.counters.syncs, 1);
  },
);

machine("a late round kept over a GOAWAY that runs out does not make the new stream suspect (third review of issue 21)", async () => {
  const h = createMachineHarness({ linkAnswers: true, random: () => 0.5 });
  await h.lateRound();
  await reopenAfterGoaway(h);
  const fresh = h.lastStream();
  // The late call on the drained session reaches its run-on limit.
  h.giveUpSync();
  await flush();
  assert.is(h.connection(), "streaming", "the new session never carried the call");
  assert.not.ok(fresh.signal.aborted);
  const ctx = h.actor.getSnapshot().context;
  assert.is(ctx.counters.suspects, 0);
  assert.is(ctx.counters.syncFailures, 1);
  // The follow-up the reopen asked for goes out at once.
  assert.is(h.syncs.length, 2);
  assert.is(ctx.lastSyncCause, "stream-open");
});

for (const ending of ["its run-on limit", "a probe that is not answered"] as const) {
  machine(
    `syncNow() during a late round is not lost when the round ends at ${ending} while reconnecting (third review of issue 21)`,
    async () => {
      const h = createMachineHarness({
        linkAnswers: ending === "its run-on limit",
        random: () => 0.5,
        timing: { backoffMinMs: 600_000, backoffMaxMs: 600_000 },
      });
      let before: number;
      if (ending === "its run-on limit") {
        await h.lateRound();
        h.actor.send({ type: "SYNC.NOW" });
        h.failStream(); // a long backoff: no reopen brings a resync soon
        await flush();
        before = h.syncs.length;
        h.giveUpSync();
      } else {
        h.actor.send({ type: "START" });
        h.sendHeaders();
        h.answerSync();
        await flush();
        h.actor.send({ type: "SYNC.NOW" });
        h.failStream(); // a long backoff: no reopen brings a resync soon
        await flush();
        h.actor.send({ type: "SYNC.NOW" });
        before = h.syncs.length;
        // The round is late and its probe is not answered.
        h.timeOutSync();
      }
      await flush();
      await flush();
      assert.is(h.syncs.length, before + 1, "the follow-up round starts at once");
      assert.is(h.actor.getSnapshot().context.lastSyncCause, "request");
      assert.is(h.connection(), "backoff");
    },
  );
}

machine("a regular round due while the connection reconnects is held for the reopen's resync (issue 21)", async () => {
  const h = createMachineHarness({ random: () => 0.5 });
  h.actor.send({ type: "START" });
  h.sendHeaders();
  h.answerSync();
  await flush();
  assert.is(h.syncs.length, 1);
  // The stream fails and backs off for long (a server that keeps failing): the heartbeat comes due meanwhile.
  for (let i = 0; i < 6; i++) {
    h.failStream();
    await flush();
    h.clock.increment(h.delaysAsked.filter((d) => d.name === "backoffDelay").at(-1)!.ms - 1);
    if (i < 5) {
      h.clock.increment(1);
      await flush();
    }
  }
  assert.is(h.connection(), "backoff");
  assert.equal((h.actor.getSnapshot().value as { heartbeat: unknown }).heartbeat, "held", "the round is held");
  assert.is(h.heartbeat(), "waiting", "status() shows a held round as waiting");
  assert.is(h.syncs.length, 1, "no regular round while reconnecting");
  // The reopen's resync replaces the held round: one round, caused by the open.
  h.clock.increment(1);
  await flush();
  h.sendHeaders();
  await flush();
  assert.is(h.syncs.length, 2);
  assert.is(h.actor.getSnapshot().context.lastSyncCause, "stream-open");
});

machine("a held round goes out after one more heartbeat wait when no stream opens (the fallback)", async () => {
  const h = createMachineHarness({ random: () => 0.5, timing: { backoffMinMs: 600_000, backoffMaxMs: 600_000 } });
  h.actor.send({ type: "START" });
  h.failStream();
  await flush();
  assert.is(h.connection(), "backoff");
  // The first regular wait (60 s at random 0.5) comes due in backoff: held.
  h.clock.increment(60_000);
  await flush();
  assert.equal((h.actor.getSnapshot().value as { heartbeat: unknown }).heartbeat, "held");
  assert.is(h.syncs.length, 0);
  // One more wait: the round goes out though no stream opened.
  h.clock.increment(60_000);
  await flush();
  assert.is(h.heartbeat(), "syncing");
  assert.is(h.syncs.length, 1);
  assert.is(h.actor.getSnapshot().context.lastSyncCause, "timer");
});

machine("a heartbeat deadline on a connection that does not answer the probe makes the link suspect, as before", async () => {
  const h = createMachineHarness({ linkAnswers: false });
  h.actor.send({ type: "START" });
  h.sendHeaders();
  h.timeOutSync();
  await flush();
  await flush();
  assert.is(h.connection(), "backoff");
  assert.is(h.actor.getSnapshot().context.counters.suspects, 1);
});

machine(
  "a full window evicts removals that came for projects nobody held, never those the daemon held and let go (second review)",
  async () => {
    const h = createMachineHarness({ dedupCapacity: 4 });
    h.actor.send({ type: "START" });
    h.sendHeaders();
    // The heartbeat delivers two held projects; the daemon lets them go (has() false when their handlers settle).
    h.answerSync(["h1", "h2"]);
    await flush();
    for (const projectId of ["h1", "h2"]) h.actor.send({ type: "removal.released", projectId });
    // A flood of removals for projects nobody holds fills the window.
    for (const id of ["u1", "u2", "u3", "u4", "u5"]) h.sendEvent({ projectId: id, untracked: true });
    const window = h.actor.getSnapshot().context.recentRemovals;
    assert.ok(window.includes(removalKey("h1")) && window.includes(removalKey("h2")), `held entries kept: ${window.join(",")}`);
    // The stream's own copy of a held removal arrives late: still suppressed.
    h.sendEvent({ projectId: "h1" });
    assert.equal(
      h.removals().filter((r) => r.endsWith(":h1")),
      ["heartbeat:h1"],
    );
  },
);

machine.run();
