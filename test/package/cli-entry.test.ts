// The CLI's entry keeps its command list without loading the commands (so
// --help stays fast, see consumer.test.ts): the list must still say what
// each command's own module says.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { commands } from "../../src/cli/main.js";

const entry = suite("cli entry: lazy command list");

entry("each listed name and summary is the loaded command's own", async () => {
  assert.equal(
    commands.map((c) => c.name),
    ["start", "dev", "run", "serve"],
  );
  for (const lazy of commands) {
    const command = await lazy.load();
    assert.is(command.name, lazy.name);
    assert.is(lazy.summary, command.summary, `the summary of "${lazy.name}" in src/cli/main.ts matches its module`);
  }
});

entry.run();
