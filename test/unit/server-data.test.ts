import fc from "fast-check";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { boundText, hasControlCharacter, refuseProjectId } from "../../src/server-data.js";

const data = suite("server data bounds");

/** The rule as a regular expression: C0, DEL, C1, and lone surrogates (the u flag matches only unpaired ones). */
const CONTROL = /[\u0000-\u001f\u007f-\u009f\ud800-\udfff]/u;

data("hasControlCharacter agrees with the rule's regular expression on any UTF-16 string", () => {
  // Any code unit, biased to the edges of each range and to surrogates, so
  // lone, paired, reversed and doubled surrogates all occur.
  const edge = fc.constantFrom(0x1f, 0x20, 0x7e, 0x7f, 0x9f, 0xa0, 0xd800, 0xd83d, 0xdbff, 0xdc00, 0xde00, 0xdfff, 0xe000, 0x41);
  const unit = fc.oneof(edge, fc.integer({ min: 0, max: 0xffff }));
  fc.assert(
    fc.property(fc.array(unit, { maxLength: 12 }), (units) => {
      const s = String.fromCharCode(...units);
      return hasControlCharacter(s) === CONTROL.test(s);
    }),
    { numRuns: 5000 },
  );
});

data("the edges of each range, and surrogates alone, paired, reversed and at the end", () => {
  const cases: Array<[string, boolean]> = [
    ["", false],
    ["plain-id_1", false],
    ["\u001f", true],
    ["\u0020", false],
    ["\u007e", false],
    ["\u007f", true],
    ["\u009f", true],
    ["\u00a0", false],
    ["a\ud83d\ude00b", false],
    ["a\ud83d", true],
    ["\ude00a", true],
    ["\ude00\ud83d", true],
    ["\ud83d\ud83d\ude00", true],
    ["\ude00\ude00", true],
    ["\ud800\ud800", true],
    ["\ufffd", false],
  ];
  for (const [s, expected] of cases) {
    assert.is(hasControlCharacter(s), expected, JSON.stringify(s));
    assert.is(hasControlCharacter(s), CONTROL.test(s), `regex agrees on ${JSON.stringify(s)}`);
  }
});

data("a short clean text passes through as the same string; a dirty one is cleaned", () => {
  const id = "evt-123";
  assert.is(boundText(id, 128), id);
  assert.is(boundText("a\u0000b", 128), "a\ufffdb");
  assert.is(boundText("a\ud83db", 128), "a\ufffdb");
});

data("refuseProjectId: control characters and lone surrogates are refused, paired ones pass", () => {
  assert.is(refuseProjectId("proj-\u0007"), "control_character");
  assert.is(refuseProjectId("proj-\ud800"), "control_character");
  assert.is(refuseProjectId("proj-\ud83d\ude00"), undefined);
  assert.is(refuseProjectId("x".repeat(513)), "too_long");
});

data.run();
