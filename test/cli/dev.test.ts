import { suite } from "uvu";
import * as assert from "uvu/assert";
import { killAll, startCli } from "./cli-process.js";

const dev = suite("cli dev");

dev.after.each(async () => {
  await killAll();
});

dev("the scripted demo shows a connect, removals from both paths, a drop and the reconnect; SIGTERM exits 0", async () => {
  const proc = startCli(["dev", "--step-ms", "400", "--backoff-min-ms", "100", "--backoff-max-ms", "200"]);
  await proc.waitForLine(/bridge\s+streaming: connected/);
  // ghost has a session but the server never heard of it: the heartbeat on open reports it.
  await proc.waitForLine(/REMOVED\s+ghost via heartbeat/);
  const alpha = await proc.waitForLine(/REMOVED\s+alpha via stream \(event \d+, reason "deleted by its owner"\), delivered [\d.]+ ms/);
  const ms = Number(/delivered ([\d.]+) ms/.exec(alpha)?.[1]);
  assert.ok(ms >= 0 && ms < 1000, `end-to-end latency ${ms} ms`);
  console.log(`# dev: alpha delivered ${ms} ms after the server removed it`);
  await proc.waitForLine(/handler\s+closed 2 session\(s\) on beta/);
  const drop = proc.stdout.length;
  await proc.waitForLine(/dropping every stream/, { after: drop });
  await proc.waitForLine(/WARN\s+ProjectEvents failed; reconnecting after backoff \(unavailable/, { after: drop });
  await proc.waitForLine(/bridge\s+backoff: reconnecting in \d+ ms/, { after: drop });
  await proc.waitForLine(/bridge\s+reconnecting \(attempt 1\)/, { after: drop });
  await proc.waitForLine(/bridge\s+streaming/, { after: drop });
  await proc.waitForLine(/REMOVED\s+gamma via stream/);
  await proc.waitForLine(/WARN\s+heartbeat failed \(unavailable/);
  const t0 = performance.now();
  proc.child.kill("SIGTERM");
  assert.is(await proc.exited, 0, proc.transcript());
  const stopMs = performance.now() - t0;
  assert.ok(stopMs < 3000 + 2000, `stopped in ${stopMs} ms`);
  assert.ok(proc.stdout.some((l) => /dev\s+stopping \(SIGTERM\)/.test(l)));
  assert.ok(proc.stdout.some((l) => /bridge\s+stopped$/.test(l)));
});

dev("--exit-after-ms stops the scripted demo by itself with exit 0; --inspect prints a loopback inspector URL", async () => {
  const proc = startCli(["dev", "--exit-after-ms", "1500", "--inspect"]);
  assert.is(await proc.exited, 0, proc.transcript());
  assert.ok(
    proc.stdout.some((l) => /stopping \(exit-after\)/.test(l)),
    proc.transcript(),
  );
  assert.ok(
    proc.stdout.some((l) => /^\[\s*[\d.]+s\] inspect\s.*http:\/\/127\.0\.0\.1:\d+\//.test(l)),
    proc.transcript(),
  );
});

dev("the prompt drives every path: create, remove, connect, sync, fail-sync, drop, status, quit", async () => {
  const proc = startCli(["dev", "--interactive", "--backoff-min-ms", "100", "--backoff-max-ms", "200"]);
  await proc.waitForLine(/bridge\s+streaming/);
  await proc.waitForLine(/REMOVED\s+ghost via heartbeat/);

  proc.send("create x1");
  await proc.waitForLine(/server\s+created x1/);
  proc.send("connect x1");
  await proc.waitForLine(/sessions\s+opened a session on x1 \(1 now\)/);
  proc.send("remove x1 no longer needed");
  await proc.waitForLine(/REMOVED\s+x1 via stream \(event \d+, reason "no longer needed"\), delivered/);
  await proc.waitForLine(/handler\s+closed 1 session\(s\) on x1/);

  // A session on an id the server does not know: the next heartbeat removes it.
  proc.send("connect nowhere");
  proc.send("sync");
  await proc.waitForLine(/REMOVED\s+nowhere via heartbeat/);

  proc.send("delay-sync 3000000000");
  await proc.waitForLine(/delay-sync MS: expected an integer in \[0, 2147483647\], got "3000000000"/);
  proc.send("fail-sync 1");
  await proc.waitForLine(/server\s+the next 1 SyncProjectState call\(s\) fail with unavailable/);
  proc.send("sync");
  await proc.waitForLine(/WARN\s+heartbeat failed \(unavailable/);

  // Removing x1 again sends another REMOVED event: the dedup window suppresses it.
  proc.send("remove x1");
  await proc.waitForLine(/dedup\s+x1 via stream already delivered: suppressed/);

  proc.send("drop");
  await proc.waitForLine(/server\s+dropped 1 stream\(s\)/);
  await proc.waitForLine(/bridge\s+reconnecting \(attempt 1\)/);
  const afterDrop = proc.stdout.length;
  await proc.waitForLine(/bridge\s+streaming/, { after: afterDrop });

  proc.send("bogus");
  await proc.waitForLine(/error\s+unknown command "bogus"/);

  proc.send("status");
  await proc.waitForLine(/"state": "streaming"/);
  await proc.waitForLine(/"reconnects": 1/);

  proc.send("quit");
  assert.is(await proc.exited, 0, proc.transcript());
  assert.ok(proc.stdout.some((l) => /stopping \(quit\)/.test(l)));
});

dev.run();
