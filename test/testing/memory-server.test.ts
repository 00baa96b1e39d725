// The testing kit's in-memory server on its own: the wire contract, each
// fault, the concurrency limit, onSent/onHeader and aborts, all on a
// SimulatedClock with no socket.
import { create } from "@bufbuild/protobuf";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { ServerGoawayError } from "../../src/call-errors.js";
import { ProjectEventsRequestSchema, SyncProjectStateRequestSchema, type ProjectEvent } from "../../src/gen/engram/v1/engram_pb.js";
import { advance, createMemoryServer, settle, SimulatedClock, SIMULATED_EPOCH_MS, type MemoryServer } from "../../src/testing/index.js";

const test = suite("the testing kit's in-memory server");

const syncReq = (ids: string[]) => create(SyncProjectStateRequestSchema, { clientId: "t", localProjectIds: ids });
const streamReq = create(ProjectEventsRequestSchema, { clientId: "t" });

/** Opens a stream and collects what it yields until it ends. */
function openStream(server: MemoryServer, opts: { signal?: AbortSignal; sessionEpoch?: number } = {}) {
  const got: ProjectEvent[] = [];
  const seen = { headers: 0, sent: 0, error: undefined as unknown, done: false };
  const signal = opts.signal ?? new AbortController().signal;
  const client = server.client();
  const callOpts = {
    signal,
    onHeader: () => void seen.headers++,
    onSent: () => void seen.sent++,
    ...(opts.sessionEpoch !== undefined ? { sessionEpoch: opts.sessionEpoch } : {}),
  };
  const run = (async () => {
    try {
      for await (const ev of client.projectEvents(streamReq, callOpts)) got.push(ev);
    } catch (e) {
      seen.error = e;
    } finally {
      seen.done = true;
    }
  })();
  return { got, seen, run, client };
}

test("a sync answers removed = the reported ids that are unknown or removed, with the clock's time", async () => {
  const clock = new SimulatedClock();
  const server = createMemoryServer({ clock, projects: ["a", "b"] });
  server.removeProject("b");
  const res = await server
    .client()
    .syncProjectState(syncReq(["a", "b", "never"]), { signal: new AbortController().signal, timeoutMs: 1000 });
  assert.equal(res.removed, ["b", "never"]);
  assert.equal(res.unknown, []);
  assert.is(Number(res.serverTimeUnixMs), SIMULATED_EPOCH_MS);
});

test("a stream gets headers, CREATED and REMOVED events in order with increasing ids, each half a round trip late", async () => {
  const clock = new SimulatedClock();
  const server = createMemoryServer({ clock, rttMs: 100 });
  const s = openStream(server);
  await advance(clock, 100);
  assert.is(s.seen.sent, 1);
  assert.is(s.seen.headers, 1);
  assert.is(server.stats().openStreams, 1);
  server.createProject("p");
  server.removeProject("p");
  await advance(clock, 49);
  assert.is(s.got.length, 0);
  await advance(clock, 1);
  assert.equal(
    s.got.map((e) => [e.eventId, e.eventType, e.projectId]),
    [
      ["1", 2, "p"],
      ["2", 1, "p"],
    ],
  );
});

test("with headers 'never' no header comes, and 'first-event' sends them with the first event", async () => {
  const server = createMemoryServer({ headers: "never" });
  const s = openStream(server);
  await settle();
  server.flood(1);
  await settle();
  assert.is(s.seen.headers, 0);
  assert.is(s.got.length, 1);
  server.setHeaders("first-event");
  const t = openStream(server);
  await settle();
  assert.is(t.seen.headers, 0);
  server.flood(1);
  await settle();
  assert.is(t.seen.headers, 1);
});

test("GOAWAY ends the stream with ServerGoawayError after the events in flight; mid-message they are lost", async () => {
  const clock = new SimulatedClock();
  const server = createMemoryServer({ clock, rttMs: 20 });
  const clean = openStream(server);
  await advance(clock, 20);
  server.flood(2);
  server.goaway();
  assert.is(server.stats().openStreams, 0, "closed on the server at once");
  await advance(clock, 20);
  assert.ok(clean.seen.error instanceof ServerGoawayError);
  assert.is(clean.got.length, 2);

  const cut = openStream(server);
  await advance(clock, 20);
  server.flood(2);
  server.goaway({ midMessage: true });
  await advance(clock, 20);
  assert.ok(cut.seen.error instanceof ServerGoawayError);
  assert.is(cut.got.length, 0);
});

test("dropStreams, resetStreams and endStreams end open streams with the code, INTERNAL, or OK", async () => {
  const server = createMemoryServer();
  const a = openStream(server);
  await settle();
  server.dropStreams("unauthenticated");
  await settle();
  assert.is((a.seen.error as { code?: number }).code, 16);
  const b = openStream(server);
  await settle();
  server.resetStreams();
  await settle();
  assert.is((b.seen.error as { code?: number }).code, 13);
  const c = openStream(server);
  await settle();
  server.endStreams();
  await settle();
  assert.ok(c.seen.done);
  assert.is(c.seen.error, undefined);
});

test("a hung server sends nothing and never answers a sync; the abort still ends the sync unless told to ignore it", async () => {
  const server = createMemoryServer();
  const s = openStream(server);
  await settle();
  server.hang();
  server.flood(1);
  const ctl = new AbortController();
  let settled = "";
  void server
    .client()
    .syncProjectState(syncReq(["x"]), { signal: ctl.signal, timeoutMs: 1 })
    .then(
      () => (settled = "answered"),
      () => (settled = "rejected"),
    );
  await settle();
  assert.is(s.got.length, 0);
  assert.is(settled, "");
  ctl.abort();
  await settle();
  assert.is(settled, "rejected");

  server.hang({ ignoreAbort: true });
  const deaf = new AbortController();
  let deafSettled = false;
  void server
    .client()
    .syncProjectState(syncReq(["x"]), { signal: deaf.signal, timeoutMs: 1 })
    .finally(() => (deafSettled = true));
  await settle();
  deaf.abort();
  await settle();
  assert.is(deafSettled, false);
});

test("slow syncs wait on the clock, failing syncs fail with the named code, in order", async () => {
  const clock = new SimulatedClock();
  const server = createMemoryServer({ clock });
  server.failNextSyncs(1, "deadline_exceeded");
  const signal = new AbortController().signal;
  const err = await server
    .client()
    .syncProjectState(syncReq([]), { signal, timeoutMs: 1 })
    .catch((e: unknown) => e);
  assert.is((err as { code?: number }).code, 4);
  server.slowSyncs(500);
  let done = false;
  void server
    .client()
    .syncProjectState(syncReq([]), { signal, timeoutMs: 1 })
    .then(() => (done = true));
  await advance(clock, 499);
  assert.is(done, false);
  await advance(clock, 1);
  assert.is(done, true);
});

test("under maxConcurrentStreams 1 a sync waits behind the stream, unsent, until the stream ends or the sync is aborted", async () => {
  const server = createMemoryServer({ maxConcurrentStreams: 1 });
  const s = openStream(server);
  await settle();
  const client = s.client;
  let sent = 0;
  const ctl = new AbortController();
  let outcome = "";
  void client.syncProjectState(syncReq([]), { signal: ctl.signal, timeoutMs: 1, onSent: () => void sent++ } as never).then(
    () => (outcome = "answered"),
    () => (outcome = "aborted"),
  );
  await settle();
  assert.is(sent, 0);
  assert.is(server.stats().callsQueued, 1);
  ctl.abort();
  await settle();
  assert.is(outcome, "aborted");
  assert.is(server.stats().callsQueued, 0);
});

test("duplicateNext sends a REMOVED twice, reorderNext reverses a batch, and a CREATED flushes what is held first", async () => {
  const server = createMemoryServer({ projects: ["a", "b", "c"] });
  const s = openStream(server);
  await settle();
  server.duplicateNext(1);
  server.removeProject("a");
  server.reorderNext(3);
  server.removeProject("b");
  server.removeProject("c");
  server.createProject("b");
  await settle();
  assert.equal(
    s.got.map((e) => `${e.eventType === 1 ? "-" : "+"}${e.projectId}`),
    ["-a", "-a", "-c", "-b", "+b"],
  );
});

test("an aborted stream is closed on the server at once", async () => {
  const server = createMemoryServer();
  const ctl = new AbortController();
  const s = openStream(server, { signal: ctl.signal });
  await settle();
  assert.is(server.openStreamsOf(s.client), 1);
  ctl.abort();
  await settle();
  assert.is(server.openStreamsOf(s.client), 0);
  assert.ok(s.seen.done);
});

test("fault switches, the clock and the drive helpers refuse numbers a test cannot mean (NaN, Infinity, negative, huge)", async () => {
  const clock = new SimulatedClock();
  const server = createMemoryServer({ clock });
  for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, -1, 1.5, 1e300]) {
    assert.throws(() => server.flood(bad), RangeError, `flood(${bad})`);
    assert.throws(() => server.duplicateNext(bad), RangeError, `duplicateNext(${bad})`);
    assert.throws(() => server.reorderNext(bad), RangeError, `reorderNext(${bad})`);
    assert.throws(() => server.failNextSyncs(bad, "unavailable"), RangeError, `failNextSyncs(${bad})`);
    if (bad !== 1.5) assert.throws(() => server.slowSyncs(bad), RangeError, `slowSyncs(${bad})`);
  }
  assert.throws(() => server.setMaxConcurrentStreams(-1), RangeError);
  assert.throws(() => server.setMaxConcurrentStreams(0), RangeError);
  server.setMaxConcurrentStreams(Number.POSITIVE_INFINITY);
  assert.throws(() => clock.increment(Number.NaN), RangeError);
  assert.throws(() => clock.fireNext(Number.NaN), RangeError);
  assert.ok(Number.isFinite(clock.now()), "the clock was left as it was");
  let threw = false;
  await advance(clock, 1e300).catch(() => (threw = true));
  assert.ok(threw, "advance refuses a step past Node's timer limit");
});

test.run();
