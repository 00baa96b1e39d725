// Inspection messages: server data cut to bounds where the copy is made,
// the Stately format as @statelyai/inspect writes it, and a history bounded
// by bytes. Issue 11 item 10 (one large heartbeat answer must not cut the
// inspector off) and item 11 (history by bytes).
import { createInspector } from "@statelyai/inspect";
import fc from "fast-check";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { WebSocket } from "ws";
import { assign, createActor, fromPromise, setup, type InspectionEvent } from "xstate";
import { createBridge, HandlerRegistry, SessionTracker, startDevServer } from "../../src/index.js";
import { startInspector } from "../../inspector/index.js";
import {
  createRedactor,
  inspectionLimits,
  toInspectionJson,
  toInspectorMessage,
  truncatedItemsKey,
} from "../../inspector/inspection-events.js";
import { capturingLogger, eventually, fastTiming } from "../helpers/e2e.js";

const events = suite("inspection messages");

function openViewer(url: string): Promise<{ ws: WebSocket; messages: string[] }> {
  const messages: string[] = [];
  const ws = new WebSocket(`${url.replace(/^http/, "ws")}events`, { origin: new URL(url).origin });
  ws.on("message", (data) => messages.push(String(data)));
  return new Promise((resolve, reject) => {
    ws.once("open", () => resolve({ ws, messages }));
    ws.once("error", reject);
  });
}

/** A machine that keeps the last heartbeat answer in its context, as the bridge's events carry it. */
const syncer = setup({
  types: { context: {} as { last: unknown; flips: number }, events: {} as { type: "SYNC"; removed: string[] } | { type: "FLIP" } },
}).createMachine({
  id: "syncer",
  context: { last: null, flips: 0 },
  on: {
    SYNC: { actions: assign({ last: ({ event }) => event }) },
    FLIP: { actions: assign({ flips: ({ context }) => context.flips + 1 }) },
  },
});

const ids = (n: number) => Array.from({ length: n }, (_, i) => `project-${String(i).padStart(32, "0")}`);

events("a heartbeat answer with 120,000 removed ids reaches the page as small messages, and the page stays live", async () => {
  const inspector = await startInspector({ machine: syncer });
  const viewer = await openViewer(inspector.url);
  const actor = createActor(syncer, { inspect: inspector.inspect });
  try {
    actor.start();
    const removed = ids(120_000); // 5 MB of ids: over any 4 MiB message cap
    actor.send({ type: "SYNC", removed });
    actor.send({ type: "FLIP" });
    await eventually("the FLIP after the big answer reached the page", () => viewer.messages.some((m) => m.includes('"type":"FLIP"')));
    const big = viewer.messages.find((m) => m.includes('"type":"@xstate.event"') && m.includes('"type":"SYNC"'));
    assert.ok(big, "the big event was relayed");
    const parsed = JSON.parse(big!) as { event: { removed: unknown[] } };
    assert.is(parsed.event.removed.length, inspectionLimits.arrayItems + 1);
    assert.equal(parsed.event.removed.slice(0, 3), removed.slice(0, 3), "the first ids as sent");
    assert.equal(parsed.event.removed.at(-1), { [truncatedItemsKey]: 120_000 - inspectionLimits.arrayItems }, "and how many were left out");
    const largest = Math.max(...viewer.messages.map((m) => m.length));
    assert.ok(largest < 64 * 1024, `largest message ${largest} chars`);
    const snapshot = viewer.messages.filter((m) => m.includes('"type":"@xstate.snapshot"')).at(-1)!;
    assert.is((JSON.parse(snapshot) as { snapshot: { context: { flips: number } } }).snapshot.context.flips, 1);
    assert.is(inspector.stats().inspectionErrors, 0);
  } finally {
    actor.stop();
    viewer.ws.terminate();
    await inspector.close();
  }
});

events("strings, objects, depth and the whole message are cut to their bounds, after redaction", () => {
  const id = (s: string) => s;
  const long = "x".repeat(5000);
  assert.is(toInspectionJson(long, id), `${"x".repeat(1024)}… [+3976 chars]`);
  // Never half a surrogate pair.
  const emoji = `${"a".repeat(1023)}😀tail`;
  assert.is(toInspectionJson(emoji, id), `${"a".repeat(1023)}… [+6 chars]`);
  // A secret across the cut is redacted before it is cut, so no prefix of it leaks.
  const secret = "s3cret-token-value";
  const cut = toInspectionJson(`${"y".repeat(1020)}${secret}`, (t) => t.split(secret).join("[redacted]")) as string;
  assert.not.match(cut, /s3cr/);
  const wide = Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`k${i}`, i]));
  const w = toInspectionJson(wide, id) as Record<string, unknown>;
  assert.is(Object.keys(w).length, 101);
  assert.is(w[truncatedItemsKey], "+200 keys");
  const map = toInspectionJson(new Map(Object.entries(wide)), id) as Record<string, unknown>;
  assert.is(map[truncatedItemsKey], "+200 keys");
  const set = toInspectionJson(new Set(ids(250)), id) as unknown[];
  assert.equal(set.at(-1), { [truncatedItemsKey]: 150 });
  let deep: unknown = "bottom";
  for (let i = 0; i < 50; i++) deep = { d: deep };
  assert.match(JSON.stringify(toInspectionJson(deep, id)), /"\[depth limit\]"/);
  // Wide and deep together cannot add up past maxChars.
  const bulky = Array.from({ length: 100 }, () => Array.from({ length: 100 }, () => "z".repeat(1024)));
  const text = JSON.stringify(toInspectionJson({ bulky }, id));
  assert.ok(text.length < inspectionLimits.maxChars + 64 * 1024, `${text.length} chars`);
  assert.match(text, /\{"…":\d+\}\]/, "the arrays past the budget say how much they left out");
  // Nothing is cut below the bounds.
  const small = { a: ids(100), s: "x".repeat(1024), n: 1, b: true, z: null };
  assert.equal(toInspectionJson(small, id), small);
});

events("history is bounded by bytes as well as by count, and late pages get only that", async () => {
  const inspector = await startInspector({ machine: syncer, historyBytes: 64 * 1024, historySize: 1000 });
  const actor = createActor(syncer, { inspect: inspector.inspect });
  try {
    actor.start();
    const chunk = Array.from({ length: 100 }, () => "r".repeat(1000)); // ~100 kB per message after the cut
    for (let i = 0; i < 40; i++) actor.send({ type: "SYNC", removed: chunk });
    await eventually("all relayed", () => inspector.stats().relayed >= 80);
    const { history } = inspector.stats();
    assert.ok(history.messages >= 1 && history.messages <= 2, `${history.messages} messages kept`);
    const late = await openViewer(inspector.url);
    await eventually("replay", () => late.messages.length >= history.messages);
    const replayed = late.messages.reduce((n, m) => n + Buffer.byteLength(m), 0);
    // The history, plus the pinned registration and snapshot of the root actor.
    assert.ok(replayed <= 64 * 1024 + 2 * 128 * 1024, `${replayed} bytes replayed`);
    late.ws.terminate();
  } finally {
    actor.stop();
    await inspector.close();
  }
});

events("messages follow @statelyai/inspect's conversion field for field", async () => {
  const machine = setup({
    actors: { work: fromPromise(async () => 42) },
    guards: { always: () => true },
  }).createMachine({
    id: "fidelity",
    initial: "idle",
    context: { n: 1n, list: [1, 2] },
    states: {
      idle: { on: { GO: { target: "busy", guard: "always" } } },
      busy: { invoke: { id: "work", src: "work", onDone: "idle" } },
    },
  });
  const ours: unknown[] = [];
  const raw: InspectionEvent[] = [];
  const theirs: unknown[] = [];
  const stately = createInspector({ send: (e: unknown) => theirs.push(e), start() {}, stop() {} });
  const actor = createActor(machine, {
    inspect: (e) => {
      raw.push(e);
      stately.inspect.next?.(e);
    },
  });
  actor.start();
  actor.send({ type: "GO" });
  await eventually("back to idle", () => actor.getSnapshot().matches("idle"));
  actor.stop();
  await new Promise((resolve) => setTimeout(resolve, 20)); // @statelyai/inspect sends on the next macrotask
  for (const e of raw) {
    const m = toInspectorMessage(e);
    if (m && m.type !== "@xstate.action") ours.push(m);
  }
  assert.is(ours.length, theirs.length, "the same messages");
  const comparable = (m: unknown) => {
    const {
      createdAt: _c,
      id: _i,
      ...rest
    } = JSON.parse(JSON.stringify(m, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v))) as Record<string, unknown>;
    if (typeof rest.definition === "string") rest.definition = JSON.parse(rest.definition);
    return rest;
  };
  for (let i = 0; i < ours.length; i++) {
    const a = comparable(ours[i]);
    const b = comparable(theirs[i]);
    assert.equal(Object.keys(a).sort(), Object.keys(b).sort(), `message ${i} (${String(a.type)}) has the same fields`);
    for (const key of ["type", "name", "sessionId", "parentId", "rootId", "sourceId", "_version", "definition", "event"]) {
      assert.equal(a[key], b[key], `message ${i} (${String(a.type)}).${key}`);
    }
  }
  assert.ok(
    ours.some(
      (m) => (m as { type: string; parentId?: string }).type === "@xstate.actor" && (m as { parentId?: string }).parentId !== undefined,
    ),
    "a child actor was compared too",
  );
});

events("a bridge that receives a 2.5 MB reason of quotes (5 MB as JSON) keeps the page live to the end", async () => {
  const server = await startDevServer();
  const inspector = await startInspector();
  const viewer = await openViewer(inspector.url);
  const bridge = createBridge({
    registry: new HandlerRegistry(),
    tracker: new SessionTracker(),
    serverUrl: server.url,
    env: {},
    logger: capturingLogger(),
    timing: fastTiming,
    clientId: "big-reason",
    inspect: inspector.inspect,
  });
  try {
    bridge.start();
    await server.waitForStreams(1);
    // Under the 4 MiB gRPC cap on the wire; every quote doubles in JSON.
    server.removeProject("p-hostile", '"'.repeat(2_500_000));
    await eventually("the removal went through", () => bridge.status().counters.removalsFromStream >= 1, 10_000);
    server.removeProject("p-after", "deleted by owner");
    await eventually("the next removal reached the page", () => viewer.messages.some((m) => m.includes('"projectId":"p-after"')), 10_000);
    await bridge.stop();
    await eventually("the page saw STOP", () => viewer.messages.some((m) => m.includes('"type":"STOP"')), 10_000);
    const hostile = viewer.messages.find((m) => m.includes('"projectId":"p-hostile"') && m.includes('"type":"@xstate.action"'));
    assert.ok(hostile, "the hostile removal was shown");
    const reason = (JSON.parse(hostile!) as { action: { params: { event: { info: { reason: string } } } } }).action.params.event.info
      .reason;
    // Cut twice over: to 1 KiB where it entered the bridge (server data is
    // bounded there), and by the inspector's own string bound.
    assert.ok(reason.startsWith('"'.repeat(1000)) && reason.length <= 1024 + 32, `reason bounded to about 1 KiB (${reason.length} chars)`);
    const largest = Math.max(...viewer.messages.map((m) => m.length));
    assert.ok(largest < 64 * 1024, `largest message ${largest} chars`);
    assert.is(inspector.stats().viewers, 1, "the page is still connected");
    assert.is(inspector.stats().inspectionErrors, 0);
  } finally {
    await bridge.stop();
    viewer.ws.terminate();
    await inspector.close();
    await server.close();
  }
});

events(
  "fuzz: server-controlled ids, reasons, event ids and metadata reach an inspection message bounded, without the secret, without a throw",
  () => {
    const SECRET = "tokMARKx9-inspector";
    const redact = createRedactor([SECRET]);
    const text = fc.oneof(
      fc.string({ unit: "binary", maxLength: 40 }),
      fc.string({ unit: "grapheme", maxLength: 3000 }),
      fc.constantFrom(SECRET, `${"a".repeat(1015)}${SECRET}`, "\u0000\u001b[31m", "--upload-pack=x", "😀".repeat(600)),
      fc
        .tuple(fc.string({ maxLength: 5 }), fc.constantFrom(SECRET, ""), fc.integer({ min: 0, max: 5000 }))
        .map(([a, b, n]) => `${a}${b}${'"'.repeat(n)}`),
    );
    const event = fc.record({
      eventId: text,
      eventType: fc.integer(),
      projectId: text,
      timestampUnixMs: fc.bigInt({ min: 0n, max: 2n ** 63n }),
      reason: text,
      metadata: fc.dictionary(text, text, { maxKeys: 150 }),
    });
    const sync = fc.record({ removed: fc.array(text, { maxLength: 300 }), unknown: fc.array(text, { maxLength: 300 }) });
    fc.assert(
      fc.property(event, sync, (e, r) => {
        const value = { type: "stream.event", event: e, result: r };
        const out = JSON.stringify(toInspectionJson(value, redact));
        assert.not.ok(out.includes(SECRET), "the secret left");
        assert.not.ok(out.includes(SECRET.slice(0, 12)), "a piece of the secret left");
        // 6 chars per escaped character at worst, plus structure.
        assert.ok(out.length <= 6 * inspectionLimits.maxChars + 64 * 1024, `${out.length} chars`);
        const parsed = JSON.parse(out) as { event: { metadata: Record<string, unknown> }; result: { removed: unknown[] } };
        assert.ok(Object.keys(parsed.event.metadata).length <= inspectionLimits.objectKeys + 1);
        assert.ok(parsed.result.removed.length <= inspectionLimits.arrayItems + 1);
        // Nothing lost that fits: short ids without the secret come through as they were.
        r.removed.slice(0, 10).forEach((id, i) => {
          if (id.length <= 100 && !id.includes(SECRET) && out.length < inspectionLimits.maxChars) assert.is(parsed.result.removed[i], id);
        });
      }),
      { numRuns: 150, seed: 11 },
    );
  },
);

events.run();
