/**
 * The server process dies mid stream (SIGKILL: no GOAWAY, no trailers) and a
 * new one comes up on the same port without the old one's state. The bridge
 * must see the failure, back off (not spin) while nothing listens, reconnect,
 * and learn from the reopen sync what it missed.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createBridge, HandlerRegistry, SessionTracker, type Bridge } from "../../src/index.js";
import { capturingLogger, eventually, fastTiming, recordingHandler } from "../helpers/e2e.js";
import { spawnDevServer, type ChildDevServer } from "../helpers/child-dev-server.js";

interface Ctx {
  servers: ChildDevServer[];
  bridge: Bridge | undefined;
}

const crash = suite<Ctx>("server crash");

crash.before.each((ctx) => {
  ctx.servers = [];
  ctx.bridge = undefined;
});

crash.after.each(async (ctx) => {
  await ctx.bridge?.stop();
  await Promise.all(ctx.servers.map((s) => s.close()));
});

crash("a SIGKILLed server mid stream: failure seen, backoff while down, recovery on restart, nothing lost", async (ctx) => {
  const first = await spawnDevServer({ projects: ["kept", "gone-while-down"] });
  ctx.servers.push(first);
  const tracker = new SessionTracker();
  for (const id of ["kept", "gone-while-down"]) tracker.connect(id);
  const registry = new HandlerRegistry();
  const handler = recordingHandler();
  registry.register({
    name: "daemon",
    onProjectRemoved: (id, info) => {
      tracker.disconnect(id);
      return handler.onProjectRemoved(id, info);
    },
  });
  const logger = capturingLogger();
  const timing = { ...fastTiming, backoffMinMs: 50, backoffMaxMs: 400, openConfirmMs: 100 };
  const bridge = createBridge({ registry, tracker, serverUrl: first.url, env: {}, logger, timing, clientId: "crash" });
  ctx.bridge = bridge;
  bridge.start();
  await eventually(
    "streaming with a first sync",
    () => bridge.status().state === "streaming" && bridge.status().counters.syncs >= 1,
    10_000,
  );

  const t0 = performance.now();
  await first.crash();
  await eventually("failure seen", () => bridge.status().counters.streamFailures >= 1, 5000);
  const detectedMs = performance.now() - t0;
  const failure = logger.at("warn").find((l) => /ProjectEvents failed/.test(l.msg ?? ""));
  assert.ok(failure, "the crash is logged at warn");
  console.log(`# server crash: seen after ${detectedMs.toFixed(0)} ms as ${JSON.stringify((failure!.obj as { err?: unknown }).err)}`);

  // Down for a while: attempts must back off exponentially, not spin. The
  // first three failures wait 50, 100 and 200 ms (±20 % jitter) before the
  // next attempt, so the fourth failure comes at least 280 ms after the first.
  const firstFailureAt = performance.now();
  const failuresWhileDown = 4;
  await eventually(
    `${failuresWhileDown} failed attempts while down`,
    () => bridge.status().counters.streamFailures >= failuresWhileDown,
    5000,
  );
  const downMs = performance.now() - firstFailureAt;
  assert.ok(
    downMs >= (50 + 100 + 200) * 0.8 - 10,
    `${failuresWhileDown} attempts within ${downMs.toFixed(0)} ms: the bridge does not back off`,
  );
  assert.ok(["backoff", "connecting"].includes(bridge.status().state));

  // A new process on the same port, without the old one's store.
  const second = await spawnDevServer({ port: first.port, projects: ["kept"] });
  ctx.servers.push(second);
  const t1 = performance.now();
  await eventually("streaming again", () => bridge.status().state === "streaming", 5000);
  const reconnectMs = performance.now() - t1;
  await eventually("missed removal from the reopen sync", () => handler.ids().includes("gone-while-down"), 5000);
  assert.is(handler.calls.find((c) => c.projectId === "gone-while-down")!.info.source, "heartbeat");
  second.removeProject("kept", "after restart");
  await eventually("stream removal on the new server", () => handler.ids().includes("kept"), 5000);
  assert.equal(handler.ids().sort(), ["gone-while-down", "kept"]);
  // The longest backoff at the cap is 400 ms × 1.2, plus open confirmation.
  assert.ok(reconnectMs < 480 + 100 + 1500, `reconnected ${reconnectMs} ms after the restart`);
  console.log(
    `# server crash: ${failuresWhileDown} attempts in ${downMs.toFixed(0)} ms while down; streaming ${reconnectMs.toFixed(0)} ms after the restart (backoff cap 400 ms)`,
  );
});

crash.run();
