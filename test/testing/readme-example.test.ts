// The example of README.md "Testing your daemon", run as it is written there:
// the block between the two "README example" markers is the README's code
// with the import paths of this repository (a test in this file checks that
// the two stay the same, so the README never shows code that does not run).
import { readFileSync } from "node:fs";
import { suite } from "uvu";
import * as assert from "uvu/assert";

// README example: start
import { createBridge, HandlerRegistry, SessionTracker } from "../../src/index.js";
import { advance, capturingLogger, createMemoryServer, recordingHandler, runUntil, SimulatedClock } from "../../src/testing/index.js";

const test = suite("a daemon's test with the testing kit");

test("the daemon hears a removal from the stream, and one made while the server was away", async () => {
  const clock = new SimulatedClock(); // epoch ms, starts at 2026-01-01; moves only when told
  const server = createMemoryServer({ clock, projects: ["alpha", "beta"] });
  const tracker = new SessionTracker();
  tracker.connect("alpha"); // the daemon has a session on alpha
  const handler = recordingHandler("sessions", () => clock.now());
  const registry = new HandlerRegistry();
  registry.register(handler);
  const bridge = createBridge({ registry, tracker, client: server.client(), clock, logger: capturingLogger(), env: {} });

  bridge.start();
  await runUntil(clock, () => bridge.status().state === "streaming");

  server.removeProject("beta"); // sent on the open stream
  const beta = await runUntil(clock, () => handler.calls.find((c) => c.projectId === "beta"));
  assert.is(beta.info.source, "stream");

  server.goDown(); // streams fail, calls are refused...
  server.removeProject("alpha"); // ...and alpha goes while nobody listens
  await advance(clock, 30_000);
  server.comeBack();
  const alpha = await runUntil(clock, () => handler.calls.find((c) => c.projectId === "alpha"));
  assert.is(alpha.info.source, "heartbeat"); // the heartbeat caught it up
  assert.ok(alpha.atMs >= Date.UTC(2026, 0, 1) + 30_000);

  const stopped = bridge.stop();
  await runUntil(clock, () => bridge.status().state === "stopped");
  await stopped;
  assert.is(server.stats().openStreams, 0);
});

test.run();
// README example: end

const readme = suite('README.md "Testing your daemon"');

readme("shows this file's example, with the package's entry points as imports", () => {
  const source = readFileSync(new URL(import.meta.url), "utf8");
  const example = source.slice(source.indexOf("// README example: start\n") + 25, source.indexOf("// README example: end"));
  const asUser = example
    .replace('"../../src/index.js"', '"engram-serverevents"')
    .replace('"../../src/testing/index.js"', '"engram-serverevents/testing"');
  const md = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
  const at = md.indexOf("## Testing your daemon");
  assert.ok(at >= 0, 'README.md has a section "Testing your daemon"');
  const block = /```ts\n([\s\S]*?)```/.exec(md.slice(at));
  assert.ok(block, "the section has a ts code block");
  assert.is(block?.[1], asUser);
});

readme.run();
