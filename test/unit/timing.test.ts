import fc from "fast-check";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { validateBridgeOptions } from "../../src/bridge-options.js";
import { BridgeError } from "../../src/errors.js";
import { HandlerRegistry } from "../../src/handler-registry.js";
import { noopLogger } from "../../src/logger.js";
import { backoffDelayMs, defaultBridgeTiming, heartbeatDelayMs, timingBounds, type BridgeTiming } from "../../src/timing.js";

const timing = suite("timing");

timing("backoff doubles from 1 s and caps at 60 s with no jitter at the midpoint", () => {
  const got = [1, 2, 3, 4, 5, 6, 7, 8, 20].map((n) => backoffDelayMs(n, defaultBridgeTiming, 0.5));
  assert.equal(got, [1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000]);
});

timing("backoff jitter stays within [1-j, 1+j] of the base", () => {
  assert.is(backoffDelayMs(1, defaultBridgeTiming, 0), 800);
  assert.is(backoffDelayMs(1, defaultBridgeTiming, 1), 1200);
  assert.is(backoffDelayMs(10, defaultBridgeTiming, 1), 72000);
});

timing("heartbeat waits are uniform in [55 s, 65 s]", () => {
  assert.is(heartbeatDelayMs(defaultBridgeTiming, 0), 55000);
  assert.is(heartbeatDelayMs(defaultBridgeTiming, 1), 65000);
  assert.is(heartbeatDelayMs(defaultBridgeTiming, 0.5), 60000);
});

const resolved = (timing: Partial<BridgeTiming>): BridgeTiming =>
  validateBridgeOptions({ registry: new HandlerRegistry(), logger: noopLogger, env: {}, timing }).timing;

/** The message of the BridgeError `f` throws. */
function thrown(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    assert.instance(e, BridgeError);
    return (e as BridgeError).message;
  }
  throw new assert.Assertion({ message: "expected a BridgeError", operator: "throws", actual: undefined, expects: BridgeError });
}

/** Any value in a timing field's own range (as timingBounds states it). */
function validValue(field: keyof BridgeTiming): fc.Arbitrary<number> {
  const b = timingBounds[field];
  if (field === "backoffJitter") return fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true });
  return fc.oneof(
    fc.integer({ min: b.min, max: b.max }),
    fc.constantFrom(b.min, b.max),
    fc.double({ min: b.min, max: b.max, noNaN: true }),
  );
}

timing("any single timing field set to any value in its own range never throws (issue 22 item 5)", () => {
  const fields = Object.keys(timingBounds) as (keyof BridgeTiming)[];
  fc.assert(
    fc.property(
      fc.constantFrom(...fields).chain((field) => validValue(field).map((value) => ({ field, value }))),
      ({ field, value }) => {
        const t = resolved({ [field]: value });
        assert.is(t[field], value, "a field that was set is kept as set");
        assert.ok(t.heartbeatJitterMs <= t.heartbeatMs && t.backoffMinMs <= t.backoffMaxMs);
      },
    ),
    { numRuns: 2000 },
  );
});

timing("a heartbeat period alone gets a jitter of period/12; a jitter alone raises the period to fit", () => {
  assert.equal(resolved({ heartbeatMs: 3000 }), { ...defaultBridgeTiming, heartbeatMs: 3000, heartbeatJitterMs: 250 });
  assert.equal(resolved({ heartbeatMs: 100 }).heartbeatJitterMs, 8);
  assert.equal(resolved({ heartbeatMs: 60_000 }), { ...defaultBridgeTiming });
  assert.equal(resolved({ heartbeatJitterMs: 90_000 }).heartbeatMs, 90_000);
  assert.equal(resolved({ heartbeatJitterMs: 100 }).heartbeatMs, 60_000);
});

timing("a backoff bound alone clamps the other one: backoffMaxMs 500 lowers the min, backoffMinMs 90 s raises the max", () => {
  assert.equal(resolved({ backoffMaxMs: 500 }), { ...defaultBridgeTiming, backoffMinMs: 500, backoffMaxMs: 500 });
  assert.equal(resolved({ backoffMinMs: 90_000 }), { ...defaultBridgeTiming, backoffMinMs: 90_000, backoffMaxMs: 90_000 });
  assert.equal(resolved({ backoffMaxMs: 5000 }).backoffMinMs, 1000);
  assert.equal(resolved({ backoffMinMs: 10 }).backoffMaxMs, 60_000);
});

timing("an error names the related field only when the user set both", () => {
  assert.match(
    thrown(() => resolved({ backoffMinMs: 10, backoffMaxMs: 5 })),
    "timing.backoffMaxMs must be a number in [backoffMinMs = 10, 2147483647] (ms), got 5",
  );
  assert.match(
    thrown(() => resolved({ heartbeatMs: 1000, heartbeatJitterMs: 2000 })),
    "timing.heartbeatJitterMs must be a number in [0, heartbeatMs = 1000] (ms), got 2000",
  );
  const alone = thrown(() => resolved({ heartbeatJitterMs: -1 }));
  assert.match(alone, "timing.heartbeatJitterMs must be a number in [0, 2147483647] (ms), got -1");
  assert.not.match(alone, "heartbeatMs =");
  const maxAlone = thrown(() => resolved({ backoffMaxMs: 0 }));
  assert.match(maxAlone, "timing.backoffMaxMs must be a number in [1, 2147483647] (ms), got 0");
  // A bad value alone is reported on its own field, never on the derived one.
  assert.match(
    thrown(() => resolved({ backoffMaxMs: Number.NaN })),
    /^\[invalid_config\] timing\.backoffMaxMs /,
  );
  assert.match(
    thrown(() => resolved({ heartbeatMs: 50 })),
    /^\[invalid_config\] timing\.heartbeatMs /,
  );
});

timing.run();
