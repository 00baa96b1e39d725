// The memory server's faults the simulator added: a bounded per-stream
// buffer that drops what a slow reader has no room for (the engram server
// keeps 64), and the heartbeat book behind `unknown`.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { create } from "@bufbuild/protobuf";
import { ProjectEventsRequestSchema, SyncProjectStateRequestSchema } from "../../src/gen/engram/v1/engram_pb.js";
import { createMemoryServer, settle, SimulatedClock, type MemoryServerTraceEntry } from "../../src/testing/index.js";

const faults = suite("the memory server's stream buffer and heartbeat book");

faults("a stream its reader does not keep up with holds streamBufferSize events and drops the rest, each drop traced", async () => {
  const entries: MemoryServerTraceEntry[] = [];
  const server = createMemoryServer({ streamBufferSize: 2, onTrace: (e) => entries.push(e) });
  const client = server.client({ name: "slow" });
  const ac = new AbortController();
  const it = client.projectEvents(create(ProjectEventsRequestSchema, {}), { signal: ac.signal })[Symbol.asyncIterator]();
  const first = it.next();
  await settle();
  // Five arrive at once while the reader is busy: two fit, three are dropped.
  server.flood(5, "f", "why");
  await settle();
  const got = [(await first).value?.projectId, (await it.next()).value?.projectId];
  assert.equal(got, ["f-1", "f-2"]);
  assert.equal(
    entries.filter((e) => e.type === "event.dropped").map((e) => ("projectId" in e ? e.projectId : "")),
    ["f-3", "f-4", "f-5"],
  );
  // Read, the buffer has room again.
  server.flood(1, "g");
  await settle();
  assert.equal((await it.next()).value?.projectId, "g-6");
  assert.is(server.stats().eventsDropped, 3);
  ac.abort();
  await it.return?.(undefined);
});

faults("a live project nobody reported for unknownAfterMs is answered as unknown, and reporting it gives it its heartbeat", async () => {
  const clock = new SimulatedClock();
  const server = createMemoryServer({ clock, projects: ["a", "b"], unknownAfterMs: 1000 });
  const client = server.client();
  const sync = (ids: string[]) =>
    client.syncProjectState(create(SyncProjectStateRequestSchema, { clientId: "c", localProjectIds: ids }), {
      signal: new AbortController().signal,
      timeoutMs: 1000,
    });
  assert.equal((await sync(["a"])).unknown, []);
  clock.increment(1000);
  // Computed before this answer's heartbeats: both are a second old.
  assert.equal((await sync(["a", "gone"])).unknown, ["a", "b"]);
  clock.increment(500);
  server.createProject("c");
  assert.equal((await sync([])).unknown, ["b"]);
  const answer = await sync(["gone"]);
  assert.equal(answer.removed, ["gone"]);
  assert.not.ok(answer.unknown.includes("gone"));
});

faults.run();
