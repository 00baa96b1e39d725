import { suite } from "uvu";
import * as assert from "uvu/assert";
import { runInProcess } from "./cli-in-process.js";

const usage = suite("run: usage errors of the hardening flags");

usage("bad ids, an empty client id and misplaced health or exec flags are usage errors (exit 2) that say what is wrong", async () => {
  const url = ["--url", "http://127.0.0.1:1"];
  const cases: Array<{ args: string[]; says: RegExp }> = [
    { args: [...url, "--client-id", ""], says: /--client-id must not be empty/ },
    { args: [...url, "--client-id", "a\u0007b"], says: /--client-id: contains a control character/ },
    { args: [...url, "--project", "bad\u001bid"], says: /--project bad\\u001bid: contains a control character/ },
    { args: [...url, "--project", "x".repeat(600)], says: /longer than 512 bytes/ },
    { args: [...url, "--health-port", "70000"], says: /--health-port must be an integer >= 0 and <= 65535/ },
    { args: [...url, "--health-port=-1"], says: /--health-port must be an integer >= 0/ },
    { args: [...url, "--health-host", "0.0.0.0"], says: /--health-host needs --health-port/ },
    { args: [...url, "--exec-env-token"], says: /need --exec/ },
    { args: [...url, "--exec-allow-dash-ids"], says: /need --exec/ },
  ];
  for (const { args, says } of cases) {
    const { code, err } = await runInProcess(["run", ...args]);
    assert.is(code, 2, `${args.join(" ")}: ${err}`);
    assert.match(err, says);
    assert.ok(err.length < 600, "the error does not echo a long id whole");
  }
});

usage("run --help documents the exec safety rules, the projects file bounds and the health endpoint", async () => {
  const { code, out } = await runInProcess(["run", "--help"]);
  assert.is(code, 0);
  for (const text of [
    'starts with "-"',
    "control character",
    "512",
    "--exec-env-token",
    "--exec-allow-dash-ids",
    "process group",
    "regular file",
    "4 MiB",
    "--health-port",
    "/healthz",
    "/metrics",
    "SIGHUP",
  ]) {
    assert.match(out, text);
  }
});

usage.run();
