/**
 * Every numeric flag (ports, --step-ms, --exit-after-ms, the timing flags,
 * the capacity flags) takes what the stdin commands take: plain decimal
 * digits within the field's range, at most 2^31 - 1 (Node's timer limit).
 * Issue 20, review item 5.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { runInProcess } from "./cli-in-process.js";
import { intFlag, isUsageError } from "../../src/cli/cli-args.js";
import { maxCommandInt } from "../../src/cli/command-numbers.js";
import { capacityFromFlags } from "../../src/cli/capacity-flags.js";
import { readTimingFlags } from "../../src/cli/timing-flags.js";

const flags = suite("numeric flags: one strict parser (issue 20 review item 5)");

const url = ["--url", "http://127.0.0.1:1"];
/** Every numeric flag of every command, with the arguments it needs to get that far. */
const numericFlags: Array<{ command: string; before: string[]; flag: string; max: number }> = [
  { command: "run", before: url, flag: "health-port", max: 65535 },
  { command: "serve", before: [], flag: "port", max: 65535 },
  { command: "dev", before: [], flag: "port", max: 65535 },
  { command: "dev", before: [], flag: "step-ms", max: maxCommandInt },
  { command: "dev", before: [], flag: "exit-after-ms", max: maxCommandInt },
  { command: "serve", before: [], flag: "max-calls-per-second", max: maxCommandInt },
  { command: "serve", before: ["--max-calls-per-second", "10"], flag: "max-queue-seconds", max: Math.floor(maxCommandInt / 1000) },
  ...["heartbeat-ms", "heartbeat-jitter-ms", "sync-timeout-ms", "handler-timeout-ms", "stop-timeout-ms", "backoff-min-ms"].flatMap(
    (flag) => [
      { command: "run", before: url, flag, max: maxCommandInt },
      { command: "dev", before: [], flag, max: maxCommandInt },
    ],
  ),
];

/** Values Number() reads as a number in range, but that are not plain decimal digits; and values out of range. */
const notPlain = fc.oneof(
  fc.integer({ min: 1, max: 9 }).map((n) => `${n}e3`),
  fc.constantFrom("1e300", "0x1F90", "0x3E8", "0b11", "0o17", "8080.0", "1.5", "+5", " 7", "7 ", "Infinity", "NaN", "", "-1", "1_000"),
  fc.integer({ min: 1, max: 65535 }).map((n) => `0x${n.toString(16)}`),
  fc.integer({ min: 1, max: 65535 }).map((n) => `${n}.0`),
  fc.bigInt({ min: 2n ** 31n, max: 10n ** 40n }).map(String),
);

flags("property: a numeric flag with a value not plainly written in range is a usage error (exit 2) naming the flag", async () => {
  const cases = fc.sample(fc.tuple(fc.constantFrom(...numericFlags), notPlain), { seed: 20, numRuns: 120 });
  for (const [{ command, before, flag }, value] of cases) {
    const { code, err } = await runInProcess([command, ...before, `--${flag}=${value}`]);
    assert.is(code, 2, `${command} --${flag}=${JSON.stringify(value)}: ${err}`);
    assert.match(err, `--${flag} must be an integer`, `${command} --${flag}=${JSON.stringify(value)}`);
    assert.match(err, "(plain decimal digits)");
  }
});

flags("the reproduced values are refused: --exit-after-ms 3000000000, --step-ms 1e300, --port 1e3, 0x1F90, 8080.0, 0b11", async () => {
  for (const args of [
    ["dev", "--exit-after-ms", "3000000000"],
    ["dev", "--step-ms", "1e300"],
    ["serve", "--port", "1e3"],
    ["serve", "--port", "8080.0"],
    ["serve", "--port", "0b11"],
    ["run", ...url, "--health-port", "0x1F90"],
    ["run", ...url, "--stop-timeout-ms", "0x3E8"],
    ["serve", "--max-calls-per-second", "10", "--max-queue-seconds", "1e300"],
  ]) {
    const { code, err } = await runInProcess(args);
    assert.is(code, 2, `${args.join(" ")}: ${err}`);
    assert.match(err, `${args.at(-2)} must be an integer`);
  }
});

flags("property: every plainly written integer in range is read as itself", () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: maxCommandInt }), fc.integer({ min: 0, max: 65535 }), (n, port) => {
      assert.is(intFlag(String(n), "x"), n);
      assert.is(intFlag(String(port), "port", 0, 65535), port);
      assert.is(readTimingFlags({ "stop-timeout-ms": String(Math.max(1, n)) }).stopTimeoutMs, Math.max(1, n));
    }),
    { seed: 20, numRuns: 200 },
  );
  assert.equal(capacityFromFlags({ "max-calls-per-second": "10", "max-queue-seconds": "2147483" }), {
    callsPerSecond: 10,
    discipline: "fifo",
    maxPendingCalls: 21474830,
  });
  assert.throws(
    () => intFlag("65536", "port", 0, 65535),
    (e: unknown) => isUsageError(e),
  );
});

flags.run();
