/**
 * Smoke test of the benchmarks: `bench/run.ts --quick` and `bench/fleet.ts
 * --quick` run every case with tiny sizes into a temporary directory. It
 * checks that they finish, that nothing was lost on the way (the cases'
 * own counts), and the fleet's deterministic properties on the simulated
 * clock. It asserts no timing: benchmarks are not timed tests.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import type { FleetResults, RunResults } from "../../bench/lib/report.js";

const root = new URL("../..", import.meta.url).pathname;

function run(script: string, out: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", join(root, script), "--quick", `--out=${out}`], {
      cwd: root,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (d) => (output += d));
    child.stderr.on("data", (d) => (output += d));
    child.on("close", (code) => resolve({ code, output }));
  });
}

interface Ctx {
  dir: string;
}
const smoke = suite<Ctx>("bench smoke (quick sizes)");

smoke.before((ctx) => {
  ctx.dir = mkdtempSync(join(tmpdir(), "bench-smoke-"));
});
smoke.after((ctx) => {
  rmSync(ctx.dir, { recursive: true, force: true });
});

smoke("npm run bench --quick runs every case, loses nothing and writes the report", async (ctx) => {
  const r = await run("bench/run.ts", ctx.dir);
  assert.is(r.code, 0, r.output);
  const results = JSON.parse(readFileSync(join(ctx.dir, "results", "run.json"), "utf8")) as RunResults;
  const c = results.cases;
  assert.ok(c.throughput && c.latency && c.stop && c.reconnect && c.heartbeat && c.memory && c.dedup && c.breakdown, "every case ran");
  assert.is(c.throughput.verified.dropped, 0);
  assert.is(c.throughput.verified.received, c.throughput.verified.expected);
  assert.is(c.throughput.verified.sent, c.throughput.verified.expected);
  assert.ok(c.throughput.profile && c.throughput.profile.topSelf.length > 0, "the throughput case profiled the bridge");
  // The same comparison against the fast bench server (bench/lib/fast-server-process.ts).
  const fast = c.throughput.byServer?.fast;
  assert.ok(fast, "the throughput case ran against the fast server");
  assert.is(fast.verified.received, fast.verified.expected);
  assert.is(fast.verified.sent, fast.verified.expected);
  assert.is(c.throughput.profileServer, "fast");
  assert.is(c.latency.verified.received, c.latency.verified.expected);
  const fastLatency = c.latency.byServer?.fast;
  assert.ok(fastLatency, "the latency case ran against the fast server");
  assert.is(fastLatency.verified.received, fastLatency.verified.expected);
  assert.is(c.stop.verified.stopped, c.stop.verified.expected);
  assert.equal(c.heartbeat.verified.idsReportedPerRound, { "100": 100, "10001": 10001 });
  assert.ok(c.memory.idleBridgeHeapBytes.median > 0);
  for (const w of Object.values(c.dedup.verified))
    assert.is(new Set(Object.values(w)).size, 1, "every dedup implementation admitted the same ids");
  assert.is(c.breakdown.verified.bridgeDelivered, c.breakdown.verified.expected);
  const report = readFileSync(join(ctx.dir, "REPORT.md"), "utf8");
  assert.match(report, /## 1\. Throughput/);
  assert.match(report, /### Against a server that is not the bottleneck/);
  assert.match(report, /## 8\. Where the time goes/);
});

smoke("npm run bench:fleet --quick: removals delivered after one resync, seed retries in lockstep", async (ctx) => {
  const r = await run("bench/fleet.ts", ctx.dir);
  assert.is(r.code, 0, r.output);
  const f = JSON.parse(readFileSync(join(ctx.dir, "results", "fleet.json"), "utf8")) as FleetResults;
  const b = f.outage.bridge;
  const s = f.outage.seed;
  assert.is(b.streamingAtEnd, f.bridges);
  assert.is(s.streamingAtEnd, f.bridges);
  // The bridge's resync on open delivers every removal made during the outage
  // one open plus one sync round trip after the bridge's reconnect call.
  assert.ok(b.delivery.expected > 0);
  assert.is(b.delivery.delivered, b.delivery.expected);
  assert.is(b.delivery.lateBeyondBound, 0);
  assert.ok(b.delivery.afterReconnectCallMaxMs <= 2 * f.rttMs + 1);
  // The seed's policy has no jitter: every wave is one second wide and holds the whole fleet.
  for (const w of s.waves) {
    assert.is(w.toS, w.fromS);
    assert.is(w.attempts, f.bridges);
  }
  // ... and no resync: it waits for a heartbeat, later than the bound.
  assert.is(s.delivery.delivered, s.delivery.expected);
  assert.ok(s.delivery.lateBeyondBound > 0);
  // The bridge's jitter spreads the wave that meets the returning server.
  assert.ok(b.returnWave && b.returnWave.toS > b.returnWave.fromS);
  for (const name of ["fleet-reconnects.svg", "fleet-syncs.svg", "fleet-heartbeat-hour.svg", "REPORT.md"])
    assert.ok(existsSync(join(ctx.dir, name)), name);
  assert.match(readFileSync(join(ctx.dir, "fleet-reconnects.svg"), "utf8"), /^<svg/);
});

smoke.run();
