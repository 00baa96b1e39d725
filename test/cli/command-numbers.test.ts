import { suite } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import type { DevServer } from "../../src/dev-server/index.js";
import { codeArg, parseCommandLine, runServerCommand } from "../../src/cli/control-commands.js";
import { commandInt, maxCommandInt } from "../../src/cli/command-numbers.js";
import { isUsageError } from "../../src/cli/cli-args.js";

const numbers = suite("numbers typed into the serve and dev stdin commands");

/** A DevServer whose number-taking switches record what they were given. */
function recordingServer(): { server: DevServer; calls: string[] } {
  const calls: string[] = [];
  const server = {
    setSyncDelayMs: (ms: number) => void calls.push(`delay ${ms}`),
    failNextSyncs: (n: number, code?: unknown) => void calls.push(`fail ${n} ${String(code)}`),
    rejectStreams: (code: unknown) => void calls.push(`reject ${String(code)}`),
  } as unknown as DevServer;
  return { server, calls };
}

const refused = ["3000000000", "2147483648", "-1", "NaN", "1e300", "1e3", "0x10", "1.5", "+5", " 7", "Infinity", "", "9".repeat(400)];

numbers("delay-sync and fail-sync refuse every number out of range or not plainly written, and touch nothing", () => {
  const { server, calls } = recordingServer();
  for (const name of ["delay-sync", "fail-sync"]) {
    for (const value of refused) {
      try {
        runServerCommand(server, { name, args: [value] });
        assert.unreachable(`${name} ${JSON.stringify(value)} was accepted`);
      } catch (e) {
        assert.ok(isUsageError(e), `${name} ${value}: ${String(e)}`);
        assert.match((e as Error).message, /expected an integer in \[0, 2147483647\], got ("|nothing)/);
        assert.ok((e as Error).message.length < 200, "a long value is not quoted whole");
      }
    }
    assert.throws(() => runServerCommand(server, { name, args: [] }), /got nothing/);
  }
  assert.equal(calls, []);
  assert.match(String(runServerCommand(server, parseCommandLine("delay-sync 2147483647")!)), "after 2147483647 ms");
  assert.match(String(runServerCommand(server, parseCommandLine("delay-sync 0")!)), "at once");
  assert.match(String(runServerCommand(server, parseCommandLine("fail-sync 0 permission-denied")!)), "fail with permission_denied");
  assert.equal(calls, ["delay 2147483647", "delay 0", "fail 0 7"]);
});

numbers("a status code is a name in any spelling or 1 to 16, nothing else", () => {
  assert.is(codeArg("PERMISSION_DENIED"), 7);
  assert.is(codeArg("PermissionDenied"), 7);
  assert.is(codeArg("16"), 16);
  for (const bad of ["0", "17", "ok", "07x", "1e1", ""]) assert.throws(() => codeArg(bad), /unknown gRPC code/, bad);
});

numbers("commandInt accepts exactly the plain decimal integers in range (property)", () => {
  fc.assert(
    fc.property(fc.oneof(fc.string(), fc.integer().map(String), fc.double().map(String)), (text) => {
      let n: number;
      try {
        n = commandInt(text, "x", { min: 0, max: maxCommandInt });
      } catch (e) {
        assert.ok(isUsageError(e));
        assert.not.ok(/^\d+$/.test(text) && Number(text) <= maxCommandInt, `refused ${JSON.stringify(text)}`);
        return;
      }
      assert.ok(Number.isInteger(n) && n >= 0 && n <= maxCommandInt);
      assert.is(String(n), text.replace(/^0+(?=\d)/, ""));
    }),
  );
});

numbers.run();
