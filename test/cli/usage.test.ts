import { suite } from "uvu";
import * as assert from "uvu/assert";
import { runInProcess } from "./cli-in-process.js";
import { cleanEnv, killAll, startCli } from "./cli-process.js";

const usage = suite("cli usage and exit codes");

usage.after.each(async () => {
  await killAll();
});

usage("--help on every command prints its usage and exit codes, and exits 0", async () => {
  for (const cmd of [[], ["start"], ["dev"], ["run"], ["serve"]]) {
    const { code, out } = await runInProcess([...cmd, "--help"]);
    assert.is(code, 0, cmd.join(" "));
    assert.match(out, cmd.length === 0 ? "Usage: engram-serverevents <command>" : `Usage: engram-serverevents ${cmd[0]}`);
    assert.match(out, "Exit codes:");
    // SIGHUP stops as SIGINT/SIGTERM do (src/cli/signals.ts); a second one exits 129.
    if (cmd[0] !== "start") assert.match(out, /SIGHUP[\s\S]*129/, `${cmd.join(" ")}: SIGHUP and 129 in the exit codes`);
  }
  const run = (await runInProcess(["run", "--help"])).out;
  for (const flag of ["--project", "--projects-file", "--exec", "--log-level", "--heartbeat-ms", "ENGRAM_TOKEN"]) assert.match(run, flag);
  const dev = (await runInProcess(["dev", "--help"])).out;
  for (const word of ["--inspect", "--exit-after-ms", "fail-sync", "disconnect", "connect ID"]) assert.match(dev, word);
  // start --help goes to start, not to the command it would pick.
  assert.match((await runInProcess(["start", "--help"], { ENGRAM_URL: "http://127.0.0.1:1" })).out, "Usage: engram-serverevents start");
});

usage("usage errors exit 2 and say what is wrong", async () => {
  const cases: Array<{ args: string[]; says: RegExp }> = [
    { args: [], says: /no command given/ },
    { args: ["bogus"], says: /unknown command "bogus"/ },
    { args: ["run", "--bogus"], says: /Unknown option '--bogus'/ },
    { args: ["run"], says: /set ENGRAM_URL or pass --url/ },
    { args: ["run", "--url", "http://127.0.0.1:1", "--heartbeat-ms", "soon"], says: /--heartbeat-ms must be an integer/ },
    // The library's own ranges (timingBounds), said in the flag's name.
    {
      args: ["run", "--url", "http://127.0.0.1:1", "--heartbeat-ms", "50"],
      says: /--heartbeat-ms must be an integer in \[100, 2147483647\], got "50"/,
    },
    {
      args: ["run", "--url", "http://127.0.0.1:1", "--sync-timeout-ms", "5"],
      says: /--sync-timeout-ms must be an integer in \[10, 2147483647\]/,
    },
    {
      args: ["run", "--url", "http://127.0.0.1:1", "--stop-timeout-ms", "3000000000"],
      says: /--stop-timeout-ms must be an integer in \[1, 2147483647\]/,
    },
    { args: ["run", "--url", "http://127.0.0.1:1", "--log-level", "loud"], says: /--log-level must be one of/ },
    { args: ["run", "--url", "http://127.0.0.1:1", "--exec"], says: /--exec needs a command/ },
    { args: ["run", "--url", "http://127.0.0.1:1", "--project", ""], says: /--project must not be empty/ },
    { args: ["serve", "--tls-cert", "x.pem"], says: /--tls-cert and --tls-key go together/ },
    { args: ["serve", "--port", "70000"], says: /--port must be an integer >= 0 and <= 65535/ },
    { args: ["dev", "--inspect", "--no-inspect"], says: /exclude each other/ },
    { args: ["dev", "--interactive", "--demo"], says: /exclude each other/ },
  ];
  for (const { args, says } of cases) {
    const { code, err } = await runInProcess(args);
    assert.is(code, 2, `${args.join(" ")}: ${err}`);
    assert.match(err, says, args.join(" "));
  }
  // The same through the real binary: the exit code reaches the shell.
  const proc = startCli(["run", "--log-level", "loud"], { env: cleanEnv({ ENGRAM_URL: "http://127.0.0.1:1" }) });
  assert.is(await proc.exited, 2, proc.transcript());
  assert.match(proc.stderr.join("\n"), /Run "engram-serverevents run --help" for usage/);
});

usage("a configuration the bridge refuses exits 1 after one error line", async () => {
  // An unsupported scheme, and a token that would go in plaintext to a
  // non-loopback host: both are refused before any socket is opened.
  const scheme = startCli(["run", "--url", "ftp://127.0.0.1:1"]);
  const insecure = startCli(["run", "--url", "http://engram.invalid:1"], { env: cleanEnv({ ENGRAM_TOKEN: "s3cret-token" }) });
  assert.is(await scheme.exited, 1, scheme.transcript());
  assert.is(await insecure.exited, 1, insecure.transcript());
  const line = JSON.parse(insecure.stderr.find((l) => l.includes("refuses")) ?? "{}") as { level?: number; msg?: string };
  assert.is(line.level, 50);
  assert.match(line.msg ?? "", /plaintext/);
  assert.not.match(insecure.transcript(), "s3cret-token");
});

usage("--version prints the package version", async () => {
  const { code, out } = await runInProcess(["--version"]);
  assert.is(code, 0);
  assert.match(out, /^\d+\.\d+\.\d+\n$/);
});

usage.run();
