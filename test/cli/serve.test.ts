import { suite } from "uvu";
import * as assert from "uvu/assert";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cleanEnv, jsonLines, killAll, startCli } from "./cli-process.js";

interface Ctx {
  dir: string;
}

const serve = suite<Ctx>("cli serve");

serve.before.each((ctx) => {
  ctx.dir = mkdtempSync(join(tmpdir(), "engram-serve-"));
});

serve.after.each(async (ctx) => {
  await killAll();
  rmSync(ctx.dir, { recursive: true, force: true });
});

serve("serves HTTPS with --tls-cert/--tls-key and a token; stdin commands drive it; run follows over TLS", async (ctx) => {
  const cert = join(ctx.dir, "cert.pem");
  const key = join(ctx.dir, "key.pem");
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-days",
      "1",
      "-subj",
      "/CN=127.0.0.1",
      "-addext",
      "subjectAltName=IP:127.0.0.1",
      "-keyout",
      key,
      "-out",
      cert,
    ],
    { stdio: "ignore" },
  );
  const server = startCli(["serve", "--port", "0", "--tls-cert", cert, "--tls-key", key, "--token", "tls-token", "--create", "p1"]);
  const url = await server.waitForLine(/^https:\/\/127\.0\.0\.1:\d+$/);
  const sidecar = startCli(
    ["run", "--open-confirm-ms", "150", "--backoff-min-ms", "50", "--backoff-max-ms", "100", "--client-id", "tls-sidecar"],
    {
      env: cleanEnv({ ENGRAM_URL: url, ENGRAM_TOKEN: "tls-token", ENGRAM_TLS_CA: cert }),
    },
  );
  await server.waitForLine(/^stream opened by "tls-sidecar" \(1 open\)$/);
  await server.waitForLine(/^heartbeat from "tls-sidecar": 0 id\(s\) reported$/);

  // A JSON-quoted id keeps its spaces; the rest of the line is the reason.
  server.send('remove "id with spaces" tidied up');
  await server.waitForLine(/^removed "id with spaces" \(event \d+, reason "tidied up"\)$/);
  const line = JSON.parse(await sidecar.waitForLine(/"projectId":"id with spaces"/)) as Record<string, unknown>;
  assert.is(line["reason"], "tidied up");

  server.send("drop");
  await server.waitForLine(/^dropped 1 stream\(s\)$/);
  await server.waitForLine(/^stream opened by "tls-sidecar" \(1 open\)$/, { after: server.stdout.length - 1 });
  server.send("fail-sync 2 internal");
  await server.waitForLine(/^the next 2 SyncProjectState call\(s\) fail with internal$/);
  server.send("nonsense");
  await server.waitForLine(/^error: unknown command "nonsense"/);
  // A number out of range is refused, never coerced (3000000000 ms used to become 1 ms).
  server.send("delay-sync 3000000000");
  await server.waitForLine(/^error: delay-sync MS: expected an integer in \[0, 2147483647\], got "3000000000"/);
  server.send("fail-sync 1e300");
  await server.waitForLine(/^error: fail-sync N: expected an integer in \[0, 2147483647\], got "1e300"/);
  server.send("reject 99");
  await server.waitForLine(/^error: unknown gRPC code "99"/);
  server.send("stats");
  const stats = JSON.parse(await server.waitForLine(/^\{"openStreams"/)) as {
    streamsOpened: number;
    authFailures: number;
    eventsSent: number;
    distinctTokensSeen: Record<string, number>;
  };
  assert.is(stats.streamsOpened, 2);
  assert.is(stats.authFailures, 0);
  assert.is(stats.eventsSent, 1);
  assert.equal(stats.distinctTokensSeen, { projectEvents: 1, syncProjectState: 1 });
  const logs = jsonLines(sidecar.stderr);
  assert.ok(
    logs.some((l) => l["msg"] === "connection backoff"),
    "the sidecar saw the drop",
  );

  server.send("quit");
  assert.is(await server.exited, 0, server.transcript());
  sidecar.child.kill("SIGINT");
  assert.is(await sidecar.exited, 0, sidecar.transcript());
  assert.not.match(server.transcript() + sidecar.transcript(), "tls-token");
});

serve.run();
